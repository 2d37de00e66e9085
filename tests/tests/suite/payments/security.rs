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

/// Defect 4: an admin's reason for a refund is a note for staff. Admins see it; the
/// owner's view, the refund's event (and so every webhook) do not.
#[tokio::test]
async fn an_admins_refund_reason_is_shown_to_admins_only() {
    let p = payments().await;
    let (order_id, _) = p.paid_order().await;
    let note = "damaged in transit";
    let made = p.refund(&order_id, "25.00", "r-note").await;
    assert_eq!(made.status, 201, "{made:?}");
    assert_eq!(
        made.body["payment"]["refunds"][0]["reason"], note,
        "{made:?}"
    );
    let uri = format!("/api/orders/{order_id}");
    let admin = p
        .stack
        .send(Call::new("GET", &uri).bearer(&token("admin", ADMIN)))
        .await;
    assert_eq!(admin.body["payment"]["refunds"][0]["reason"], note);
    let owner = p
        .stack
        .send(Call::new("GET", &uri).bearer(&token(USER, "")))
        .await;
    assert_eq!(owner.status, 200, "{owner:?}");
    assert!(!owner.text.contains(note), "{owner:?}");
    assert!(owner.body["payment"]["refunds"][0]["refund_id"].is_string());
    // The refund's event, as the publisher makes it and webhooks deliver it.
    let event = OrderEvent::for_change(None, &p.order(&order_id).await).unwrap();
    let text = serde_json::to_string(&event).unwrap();
    assert!(!text.contains(note), "{text}");
    let reason = event.reason.unwrap_or_default();
    assert!(
        reason.starts_with("refund re_") && reason.ends_with("of 25.00 USD"),
        "{reason}"
    );
    // The history still tells staff why.
    let history = p
        .stack
        .send(Call::new("GET", &format!("{uri}/history")).bearer(&token("admin", ADMIN)))
        .await;
    assert!(history.text.contains(note), "{history:?}");
}

/// Defect 6: a provider's refusal (here an API key localstripe does not accept, as
/// Stripe answers a revoked one) is logged; the customer gets a generic 502 and no
/// order.
#[tokio::test]
async fn a_providers_refusal_at_checkout_is_a_generic_502() {
    let stack = Stack::with_settings(|s| {
        s.with("STRIPE_SECRET_KEY", "rk_revoked")
            .with("STRIPE_API_BASE", stripe_base())
            .with("STRIPE_WEBHOOK_SECRET", "whsec_unused")
    })
    .await;
    stack.put_demo_cart().await;
    let reply = stack
        .send(
            Call::new("POST", "/api/orders")
                .bearer(&token(USER, ""))
                .json(&checkout("abc123")),
        )
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (502, "payment_provider_refused"),
        "{reply:?}"
    );
    assert_eq!(
        reply.body["detail"],
        "The payment provider refused the request; it has been logged."
    );
    assert!(!reply.text.contains("401"), "{reply:?}");
    let orders = stack.stored_orders().await;
    assert!(orders.is_empty(), "{orders:?}");
}

/// Defect 1: an admin's confirmation of a card order confirms it (as integrations and
/// the seed's walk-through use it) but claims no money; the payment that arrives
/// afterwards is recorded, and a cancellation refunds it. An intent never paid is
/// withdrawn on cancellation.
#[tokio::test]
async fn a_card_order_confirmed_by_hand_is_paid_only_by_the_provider() {
    let p = payments().await;
    let admin = token("admin", ADMIN);
    let (order_id, intent) = p.card_order().await;
    let confirmed = p.stack.set_status(&order_id, "confirmed", &admin).await;
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
    assert_eq!(confirmed.body["status"], "confirmed", "{confirmed:?}");
    let order = p.order(&order_id).await;
    assert_eq!(
        (order.status.as_str(), order.payment_status.as_str()),
        ("confirmed", "unpaid")
    );
    assert_eq!(order.history.last().unwrap().payment_status, None);
    // The customer pays with the secret its browser still holds: recorded.
    assert_eq!(p.stripe.pay(&intent, "pm_card_visa").await, 200);
    let order = p
        .until(&order_id, |o| o.payment_status.as_str() == "paid")
        .await;
    assert_eq!(order.status.as_str(), "confirmed");
    assert_eq!(
        order.payment.unwrap().received.unwrap().to_decimal_string(),
        "75.00"
    );
    // Cancelled: what was received goes back.
    let cancel = p
        .stack
        .send(Call::new("DELETE", &format!("/api/orders/{order_id}")).bearer(&admin))
        .await;
    assert_eq!(cancel.status, 200, "{cancel:?}");
    assert!(matches!(p.settle(&order_id).await, Settled::Refunded(_)));
    let refunds = p.stripe.refunds_of(&intent).await;
    assert_eq!(refunds.len(), 1, "{refunds:#?}");
    assert_eq!(refunds[0]["amount"], 7500);

    // Confirmed by hand, never paid, cancelled: the intent is withdrawn.
    let (unpaid, unpaid_intent) = p.card_order().await;
    p.stack.advance(&unpaid, &["confirmed", "cancelled"]).await;
    assert_eq!(p.order(&unpaid).await.payment_status.as_str(), "unpaid");
    assert_eq!(p.settle(&unpaid).await, Settled::IntentCancelled);
    assert_eq!(p.stripe.intent(&unpaid_intent).await["status"], "canceled");
}

/// Defect 3: a hold whose holder died after Stripe made the refund, resumed more than
/// a day later (Stripe no longer knows the idempotency key; here the refund was made
/// without one), is completed with the refund Stripe has, found by its metadata, not
/// refunded again. A caller with another key finishes it but gets 409, not a 201 for a
/// refund that was not its own; its own refund follows on retry.
#[tokio::test]
async fn a_resumed_refund_hold_finds_the_refund_stripe_made() {
    use orders::domain::payment::{REFUND_HOLD_LEASE_SECONDS, RefundHold, caller_refund_key};
    use orders::ports::PaymentLedger;
    let p = payments().await;
    let ledger =
        orders::adapters::dynamo::DynamoOrderStore::new(p.stack.dynamodb.clone(), &p.stack.table);
    // A hold its holder abandoned after Stripe made the refund.
    let lost = async |order_id: &str, intent: &str, key: &str| {
        let order = p.order(order_id).await;
        let hold = RefundHold {
            key: caller_refund_key(key),
            amount: orders::domain::Money::parse("30.00", order.total.currency()).unwrap(),
            parts: None,
            reason: None,
            actor: "admin".into(),
            at: OffsetDateTime::now_utc() - time::Duration::seconds(REFUND_HOLD_LEASE_SECONDS + 5),
        };
        ledger
            .hold_refund(&order.id, &hold, order.version)
            .await
            .unwrap();
        let metadata = format!("refund-{order_id}-{}", hold.key);
        let (status, made) = p
            .stripe
            .call(
                reqwest::Method::POST,
                "/v1/refunds",
                &[
                    ("payment_intent", intent),
                    ("amount", "3000"),
                    ("metadata[refund_key]", &metadata),
                ],
            )
            .await;
        assert_eq!(status, 200, "{made}");
        made["id"].as_str().unwrap().to_string()
    };

    // The same key resumes it: Stripe's refund is recorded, none is added.
    let (order_id, intent) = p.paid_order().await;
    let made = lost(&order_id, &intent, "late-1").await;
    let resumed = p.refund(&order_id, "30.00", "late-1").await;
    assert_eq!(resumed.status, 201, "{resumed:?}");
    assert_eq!(p.stripe.refunds_of(&intent).await.len(), 1);
    let refunds = p.order(&order_id).await.payment.unwrap().refunds;
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].refund_id, made);

    // Another key: 409 while the lost refund is finished; then its own refund.
    let (order_id, intent) = p.paid_order().await;
    let made = lost(&order_id, &intent, "late-2").await;
    let other = p.refund(&order_id, "10.00", "late-other").await;
    assert_eq!(
        (other.status, other.code()),
        (409, "refund_in_progress"),
        "{other:?}"
    );
    let order = p.order(&order_id).await;
    let payment = order.payment.unwrap();
    assert!(payment.refund_in_flight.is_none());
    assert_eq!(payment.refunds.len(), 1);
    assert_eq!(payment.refunds[0].refund_id, made);
    assert_eq!(p.stripe.refunds_of(&intent).await.len(), 1);
    let retried = p.refund(&order_id, "10.00", "late-other").await;
    assert_eq!(retried.status, 201, "{retried:?}");
    let amounts: Vec<i64> = p
        .stripe
        .refunds_of(&intent)
        .await
        .iter()
        .map(|r| r["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts.iter().sum::<i64>(), 4000, "{amounts:?}");
}

/// Defect 11: `orders:refund` refunds and does nothing else; `orders:webhooks` manages
/// webhooks and cannot refund; `orders:admin` still does both.
#[tokio::test]
async fn refund_and_webhooks_scopes_each_grant_only_their_own() {
    let p = payments().await;
    let (order_id, _) = p.paid_order().await;
    let refund = |bearer: String, key: &'static str| {
        let stack = &p.stack;
        let uri = format!("/api/orders/{order_id}/refunds");
        async move {
            stack
                .send(
                    Call::new("POST", &uri)
                        .bearer(&bearer)
                        .header("idempotency-key", key)
                        .json(&json!({ "amount": "5.00" })),
                )
                .await
        }
    };
    let refunder = token("support-1", "orders:refund");
    let integrator = token("erp", "orders:webhooks");
    assert_eq!(refund(refunder.clone(), "s-1").await.status, 201);
    assert_eq!(refund(integrator.clone(), "s-2").await.status, 403);
    assert_eq!(refund(token("admin", ADMIN), "s-3").await.status, 201);
    // The refund scope reads no order and manages no webhook; the webhooks scope
    // manages webhooks and reads no order.
    let get = Call::new("GET", &format!("/api/orders/{order_id}"));
    assert_eq!(
        p.stack.send(get.clone().bearer(&refunder)).await.status,
        404
    );
    assert_eq!(p.stack.send(get.bearer(&integrator)).await.status, 404);
    let subscribe = Call::new("POST", "/api/webhooks")
        .json(&json!({ "url": "https://hooks.example.com/erp", "events": ["order.confirmed"] }));
    assert_eq!(
        p.stack
            .send(subscribe.clone().bearer(&refunder))
            .await
            .status,
        403
    );
    let made = p.stack.send(subscribe.bearer(&integrator)).await;
    assert_eq!(made.status, 201, "{made:?}");
}
