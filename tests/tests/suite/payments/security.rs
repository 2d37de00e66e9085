//! Issue 23's payment findings, each a test that fails without its fix: reserved
//! refund keys (2), admins' refund reasons (4), provider error texts (6), an admin's
//! confirmation of a card order (1) and resumed refund holds (3).

use super::*;

/// Defect 2: an admin's `Idempotency-Key: cancellation` is the admin's, not the
/// system's; the cancellation that follows still refunds the rest.
#[tokio::test]
async fn a_caller_cannot_take_the_cancellation_refund_key() {
    let p = payments().await;
    let (order_id, intent) = p.paid_order().await;
    let partial = p.refund(&order_id, "25.00", "cancellation").await;
    assert_eq!(partial.status, 201, "{partial:?}");
    let cancel = p
        .stack
        .send(
            Call::new("DELETE", &format!("/api/orders/{order_id}")).bearer(&token("admin", ADMIN)),
        )
        .await;
    assert_eq!(cancel.status, 200, "{cancel:?}");
    assert!(
        matches!(p.settle(&order_id).await, Settled::Refunded(_)),
        "the cancellation must refund what is left"
    );
    let refunds = p.stripe.refunds_of(&intent).await;
    let total: i64 = refunds.iter().map(|r| r["amount"].as_i64().unwrap()).sum();
    assert_eq!((refunds.len(), total), (2, 7500), "{refunds:#?}");
    assert_eq!(p.order(&order_id).await.payment_status.as_str(), "refunded");
    // The admin's key still replays the admin's refund.
    let replay = p.refund(&order_id, "25.00", "cancellation").await;
    assert_eq!(replay.status, 200, "{replay:?}");
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
}
