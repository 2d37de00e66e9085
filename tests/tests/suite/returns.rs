//! Returns against the emulator (and localstripe for refunds): a customer sends part
//! of a delivered order back, support approves, the warehouse receives it, and the
//! goods go back in stock and the money back to the customer, each exactly once. Each
//! test checks what users rely on: the answers, what is stored (the order, its
//! returns, the stock, the queue) and what Stripe made.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event;
use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::future::join_all;
use orders::adapters::dynamo::DynamoInventory;
use orders::adapters::dynamo::order_item::{order_from_item, order_to_item};
use orders::adapters::dynamo::stream::recorded_change;
use orders::domain::Principal;
use orders::domain::fulfillment::returns::ReceiveRequest;
use orders::events::OrderEvent;
use orders::ports::Inventory;
use orders::wiring::{Settings, Wiring};
use orders_tests::{ADMIN, Call, FULFILL, Reply, Stack, checkout, token, unique};
use serde_json::{Value, json};
use time::OffsetDateTime;

const OWNER: &str = "rita";

fn admin() -> String {
    token("support", ADMIN)
}

fn warehouse() -> String {
    token("warehouse", FULFILL)
}

fn owner() -> String {
    token(OWNER, "")
}

/// EUR, VAT on top, shipping with its VAT and a 6.00 code split over the lines by
/// value (20.00 : 55.00 → 1.60 and 4.40): 89.08 in all.
fn priced_cart(cart_id: &str) -> Value {
    json!({
        "cart_id": cart_id, "user_id": OWNER, "currency": "EUR", "taxes_included": false,
        "items": [
            {"product_id": "p001", "name": "USB Cable", "quantity": 2, "price": "10.00",
             "tax_lines": [{"name": "VAT", "rate": "0.19", "amount": "3.80"}]},
            {"product_id": "p002", "name": "Keyboard", "quantity": 1, "price": "55.00",
             "tax_lines": [{"name": "VAT", "rate": "0.19", "amount": "10.45"}]}
        ],
        "shipping": {"method": "dhl_paket", "name": "DHL Paket", "amount": "4.90",
                     "tax_lines": [{"name": "VAT", "rate": "0.19", "amount": "0.93"}]},
        "discounts": [{"code": "SPRING6", "amount": "6.00"}]
    })
}

/// Places the priced cart (paid by hand: no online payment), confirms it as support
/// would, with stock for it.
async fn confirmed(stack: &Stack) -> String {
    let cart = priced_cart(&unique("cart"));
    stack.put_cart_json(&cart).await;
    let reply = stack
        .send(
            Call::new("POST", "/api/orders")
                .bearer(&owner())
                .json(&checkout(cart["cart_id"].as_str().unwrap())),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let id = reply.body["order_id"].as_str().unwrap().to_string();
    stack.advance(&id, &["confirmed"]).await;
    id
}

/// Ships everything unshipped as one parcel and marks it delivered.
async fn ship_and_deliver(stack: &Stack, id: &str) {
    let inventory = DynamoInventory::new(stack.dynamodb.clone(), &stack.table);
    for product in ["p001", "p002"] {
        if inventory.available(product).await.unwrap().is_none() {
            inventory.set_stock(product, 10).await.unwrap();
        }
    }
    let shipped = stack
        .send(
            Call::new("POST", &format!("/api/orders/{id}/shipments"))
                .bearer(&admin())
                .json(&json!({"carrier": "usps", "tracking_number": unique("TRK")})),
        )
        .await;
    assert_eq!(shipped.status, 201, "{shipped:?}");
    let delivered = stack.set_status(id, "delivered", &admin()).await;
    assert_eq!(delivered.status, 200, "{delivered:?}");
}

async fn delivered(stack: &Stack) -> String {
    let id = confirmed(stack).await;
    ship_and_deliver(stack, &id).await;
    id
}

fn ask(id: &str, body: &Value, bearer: &str) -> Call {
    Call::new("POST", &format!("/api/orders/{id}/returns"))
        .bearer(bearer)
        .json(body)
}

fn step(id: &str, return_id: &str, action: &str, body: &Value, bearer: &str) -> Call {
    Call::new(
        "POST",
        &format!("/api/orders/{id}/returns/{return_id}/{action}"),
    )
    .bearer(bearer)
    .json(body)
}

fn one(product: &str, quantity: u32) -> Value {
    json!({"items": [{"product_id": product, "quantity": quantity, "reason": "damaged"}]})
}

/// Asks for a return as the owner; its id.
async fn requested(stack: &Stack, id: &str, body: &Value) -> String {
    let reply = stack.send(ask(id, body, &owner())).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    reply.body["return_id"].as_str().unwrap().to_string()
}

async fn order(stack: &Stack, id: &str) -> Value {
    let reply = stack
        .send(Call::new("GET", &format!("/api/orders/{id}")).bearer(&admin()))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body
}

async fn available(stack: &Stack, product: &str) -> u64 {
    DynamoInventory::new(stack.dynamodb.clone(), &stack.table)
        .available(product)
        .await
        .unwrap()
        .unwrap()
}

fn returned(order: &Value) -> Vec<(String, u64)> {
    order["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["product_id"].as_str().unwrap().to_string(),
                l["quantity_returned"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The events the table's stream becomes, in order, each checked against the schema.
async fn events(stack: &Stack) -> Vec<OrderEvent> {
    let records = crate::publisher::stream_records(stack).await;
    let batch: Event = serde_json::from_value(json!({ "Records": records })).unwrap();
    let events: Vec<OrderEvent> = batch
        .records
        .iter()
        .filter_map(|r| recorded_change(r).unwrap())
        .filter_map(|c| OrderEvent::for_change(c.before.as_ref(), &c.after))
        .collect();
    for event in &events {
        let value: Value = serde_json::from_str(&serde_json::to_string(event).unwrap()).unwrap();
        crate::publisher::assert_valid("OrderEvent", &value);
    }
    events
}

#[tokio::test]
async fn a_partial_then_a_full_return_refund_the_lines_exactly_and_restock_them() {
    let stack = Stack::new().await;
    let id = delivered(&stack).await;
    assert_eq!(order(&stack, &id).await["total"], json!(89.08));
    assert_eq!(available(&stack, "p001").await, 8);

    // One cable back: requested, approved, received.
    let asked = stack
        .send(ask(
            &id,
            &json!({"items": [{"product_id": "p001", "quantity": 1, "reason": "defective",
                               "note": "does not charge"}],
                    "note": "please hurry"}),
            &owner(),
        ))
        .await;
    assert_eq!(asked.status, 201, "{asked:?}");
    assert_eq!(asked.body["status"], "requested");
    assert_eq!(asked.body["items"][0]["reason"], "defective");
    assert_eq!(asked.body["steps"][0]["by"], "owner");
    let first = asked.body["return_id"].as_str().unwrap().to_string();
    assert_eq!(order(&stack, &id).await["return_status"], "requested");

    let approved = stack
        .send(step(&id, &first, "approve", &json!({}), &admin()))
        .await;
    assert_eq!(approved.status, 200, "{approved:?}");
    assert_eq!(approved.body["status"], "approved");
    assert_eq!(order(&stack, &id).await["return_status"], "in_progress");

    let received = stack
        .send(step(&id, &first, "receive", &json!({}), &warehouse()))
        .await;
    assert_eq!(received.status, 200, "{received:?}");
    assert_eq!(received.body["status"], "received");
    assert_eq!(received.body["receipt"]["restocked"], true);
    // Half the cable line: (20.00 − 1.60) / 2 + 3.80 / 2 = 9.20 + 1.90. Paid by hand,
    // so the money is due from a person.
    let refund = &received.body["refund"];
    assert_eq!(refund["amount"], json!(11.10), "{received:?}");
    assert_eq!(refund["status"], "refund_due");
    assert_eq!(
        refund["allocation"],
        json!([{"part": "p001", "net": 9.20, "tax": 1.90}])
    );
    assert_eq!(available(&stack, "p001").await, 9);
    let view = order(&stack, &id).await;
    assert_eq!(view["return_status"], "partially_returned");
    assert_eq!(view["status"], "delivered");
    assert_eq!(
        returned(&view),
        [("p001".to_string(), 1), ("p002".to_string(), 0)]
    );

    // The rest, asked for by support, received with the shipping refunded: 9.20 +
    // 1.90 (the other cable), 50.60 + 10.45 (the keyboard), 4.90 + 0.93.
    let rest = stack
        .send(ask(
            &id,
            &json!({"items": [
                {"product_id": "p001", "quantity": 1, "reason": "no_longer_needed"},
                {"product_id": "p002", "quantity": 1, "reason": "size_or_fit"}]}),
            &admin(),
        ))
        .await;
    assert_eq!(rest.status, 201, "{rest:?}");
    let second = rest.body["return_id"].as_str().unwrap().to_string();
    let received = stack
        .send(step(
            &id,
            &second,
            "receive",
            &json!({"refund_shipping": true}),
            &admin(),
        ))
        .await;
    assert_eq!(received.status, 200, "{received:?}");
    assert_eq!(received.body["refund"]["amount"], json!(77.98));
    assert_eq!(
        received.body["refund"]["allocation"],
        json!([
            {"part": "p001", "net": 9.20, "tax": 1.90},
            {"part": "p002", "net": 50.60, "tax": 10.45},
            {"part": "shipping", "net": 4.90, "tax": 0.93}
        ])
    );
    // Both refunds together are the order's total, to the cent.
    assert_eq!(11_10 + 77_98, 89_08);
    let view = order(&stack, &id).await;
    assert_eq!(view["return_status"], "returned");
    assert_eq!(
        returned(&view),
        [("p001".to_string(), 2), ("p002".to_string(), 1)]
    );
    assert_eq!(
        (
            available(&stack, "p001").await,
            available(&stack, "p002").await
        ),
        (10, 10)
    );
    // Nothing more can be asked for.
    let more = stack.send(ask(&id, &one("p001", 1), &admin())).await;
    assert_eq!(
        (more.status, more.code()),
        (409, "quantity_exceeds_returnable")
    );

    let listed = stack
        .send(Call::new("GET", &format!("/api/orders/{id}/returns")).bearer(&owner()))
        .await;
    assert_eq!(listed.status, 200, "{listed:?}");
    let statuses: Vec<&str> = listed.body["returns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["received", "received"]);

    // One event per step, each with its return.
    let events = events(&stack).await;
    let steps: Vec<(String, Option<String>)> = events
        .iter()
        .filter(|e| e.return_id.is_some())
        .map(|e| (e.detail_type(), e.return_id.clone()))
        .collect();
    let (a, b) = (Some(first.clone()), Some(second.clone()));
    assert_eq!(
        steps,
        [
            ("order.return_requested".to_string(), a.clone()),
            ("order.return_approved".to_string(), a.clone()),
            ("order.return_received".to_string(), a.clone()),
            ("order.return_updated".to_string(), a),
            ("order.return_requested".to_string(), b.clone()),
            ("order.return_received".to_string(), b.clone()),
            ("order.return_updated".to_string(), b),
        ]
    );
}

/// The stored order item, to check a refusal wrote nothing.
async fn stored(stack: &Stack, id: &str) -> HashMap<String, AttributeValue> {
    stack.stored_order(id).await.unwrap()
}

#[tokio::test]
async fn every_refusal_has_its_code_and_writes_nothing() {
    let stack = Stack::new().await;
    // A pending order: nothing shipped.
    let cart = priced_cart(&unique("cart"));
    stack.put_cart_json(&cart).await;
    let pending = stack
        .send(
            Call::new("POST", "/api/orders")
                .bearer(&owner())
                .json(&checkout(cart["cart_id"].as_str().unwrap())),
        )
        .await
        .body["order_id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = stored(&stack, &pending).await;
    let refused = stack.send(ask(&pending, &one("p001", 1), &owner())).await;
    assert_eq!(
        (refused.status, refused.code()),
        (409, "order_not_returnable"),
        "{refused:?}"
    );
    assert_eq!(refused.body["current_status"], "pending");
    assert_eq!(stored(&stack, &pending).await, before);

    let id = delivered(&stack).await;
    let before = stored(&stack, &id).await;
    let refusals: Vec<(Call, u16, &str)> = vec![
        // More than shipped.
        (
            ask(&id, &one("p001", 3), &owner()),
            409,
            "quantity_exceeds_returnable",
        ),
        // Someone else's order: as for reads, it does not exist for them.
        (
            ask(&id, &one("p001", 1), &token("mallory", "")),
            404,
            "order_not_found",
        ),
        // The warehouse does not ask for returns.
        (ask(&id, &one("p001", 1), &warehouse()), 403, "forbidden"),
        // Not in the order; no reason; a zero quantity; an unknown member.
        (
            ask(
                &id,
                &json!({"items": [
                    {"product_id": "p999", "quantity": 1, "reason": "damaged"},
                    {"product_id": "p001", "quantity": 0},
                    {"product_id": "p002", "quantity": 1, "reason": "bored"}],
                    "colour": "red"}),
                &owner(),
            ),
            400,
            "validation_failed",
        ),
        (
            ask(&id, &json!({"items": []}), &owner()),
            400,
            "validation_failed",
        ),
        // No such return.
        (
            step(&id, "RET0000000000000000", "receive", &json!({}), &admin()),
            404,
            "return_not_found",
        ),
    ];
    for (call, status, code) in refusals {
        let reply = stack.send(call).await;
        assert_eq!((reply.status, reply.code()), (status, code), "{reply:?}");
        if code == "validation_failed" && reply.body["errors"].as_array().unwrap().len() > 1 {
            assert_eq!(
                reply.error_fields(),
                [
                    "colour",
                    "items[1].quantity",
                    "items[1].reason",
                    "items[2].reason"
                ]
            );
        }
        assert_eq!(stored(&stack, &id).await, before, "{code} wrote something");
    }

    // A declined and a cancelled return cannot be received.
    let declined = requested(&stack, &id, &one("p001", 1)).await;
    let no_reason = stack
        .send(step(&id, &declined, "decline", &json!({}), &admin()))
        .await;
    assert_eq!(no_reason.error_fields(), ["reason"], "{no_reason:?}");
    let reply = stack
        .send(step(
            &id,
            &declined,
            "decline",
            &json!({"reason": "bought 40 days ago"}),
            &admin(),
        ))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["decline_reason"], "bought 40 days ago");
    let cancelled = requested(&stack, &id, &one("p002", 1)).await;
    let someone = stack
        .send(step(
            &id,
            &cancelled,
            "cancel",
            &json!({}),
            &token("mallory", ""),
        ))
        .await;
    assert_eq!(someone.status, 404, "{someone:?}");
    let reply = stack
        .send(step(&id, &cancelled, "cancel", &json!({}), &owner()))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["status"], "cancelled");
    let before = stored(&stack, &id).await;
    let stock = available(&stack, "p001").await;
    for return_id in [&declined, &cancelled] {
        let reply = stack
            .send(step(&id, return_id, "receive", &json!({}), &warehouse()))
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (409, "return_status_conflict"),
            "{reply:?}"
        );
        let approve = stack
            .send(step(&id, return_id, "approve", &json!({}), &admin()))
            .await;
        assert_eq!(approve.code(), "return_status_conflict", "{approve:?}");
    }
    assert_eq!(stored(&stack, &id).await, before);
    assert_eq!(available(&stack, "p001").await, stock);
    // Declined and cancelled returns free their units again.
    requested(&stack, &id, &one("p001", 2)).await;

    // Delivered 40 days ago: the customer's window (30 days) is closed, support's not.
    let late = delivered(&stack).await;
    let item = stored(&stack, &late).await;
    let mut order = order_from_item(&item).unwrap();
    let long_ago = OffsetDateTime::now_utc() - time::Duration::days(40);
    for shipment in &mut order.shipments {
        for report in &mut shipment.tracking {
            report.status_date = long_ago;
        }
        shipment.created_at = long_ago;
    }
    stack
        .dynamodb
        .put_item()
        .table_name(&stack.table)
        .set_item(Some(order_to_item(&order, Default::default())))
        .send()
        .await
        .unwrap();
    let before = stored(&stack, &late).await;
    let closed = stack.send(ask(&late, &one("p001", 1), &owner())).await;
    assert_eq!(
        (closed.status, closed.code()),
        (409, "return_window_closed"),
        "{closed:?}"
    );
    assert_eq!(closed.body["return_window_days"], 30);
    assert_eq!(stored(&stack, &late).await, before);
    let support = stack.send(ask(&late, &one("p001", 1), &admin())).await;
    assert_eq!(support.status, 201, "{support:?}");
}

#[tokio::test]
async fn a_retried_request_makes_one_return() {
    let stack = Stack::new().await;
    let id = delivered(&stack).await;
    let keyed = |body: &Value| ask(&id, body, &owner()).header("idempotency-key", "ret-1");
    let replies = join_all((0..4).map(|_| stack.send(keyed(&one("p001", 1))))).await;
    let ids: Vec<&str> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, 201, "{r:?}");
            r.body["return_id"].as_str().unwrap()
        })
        .collect();
    assert!(ids.iter().all(|r| *r == ids[0]), "{ids:?}");
    let replayed = replies
        .iter()
        .filter(|r| r.header("idempotent-replayed") == Some("true"))
        .count();
    assert_eq!(replayed, 3);
    let stored = order_from_item(&stack.stored_order(&id).await.unwrap()).unwrap();
    assert_eq!(stored.returns.len(), 1);
    let other = stack.send(keyed(&one("p001", 2))).await;
    assert_eq!(
        (other.status, other.code()),
        (422, "idempotency_key_reused")
    );
}

/// The queue of returns to handle: oldest first, in pages, one status at a time.
#[tokio::test]
async fn the_queue_lists_requested_returns_oldest_first_in_pages() {
    let stack = Stack::new().await;
    let id = delivered(&stack).await;
    let first = requested(&stack, &id, &one("p001", 1)).await;
    let second = requested(&stack, &id, &one("p001", 1)).await;
    let third = requested(&stack, &id, &one("p002", 1)).await;
    let page = |query: &str, bearer: &str| {
        stack.send(Call::new("GET", &format!("/api/returns{query}")).bearer(bearer))
    };
    let one_page = page("?status=requested&limit=2", &warehouse()).await;
    assert_eq!(one_page.status, 200, "{one_page:?}");
    let ids = |reply: &Reply| -> Vec<String> {
        reply.body["returns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["return_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&one_page), [first.clone(), second.clone()]);
    assert_eq!(one_page.body["returns"][0]["order_id"], id.as_str());
    assert_eq!(one_page.body["returns"][0]["user_id"], OWNER);
    let cursor = one_page.body["next_cursor"].as_str().unwrap().to_string();
    let rest = page(
        &format!("?status=requested&limit=2&cursor={cursor}"),
        &admin(),
    )
    .await;
    assert_eq!(ids(&rest), std::slice::from_ref(&third), "{rest:?}");

    // Approved, it leaves the requested queue for the approved one.
    let approved = stack
        .send(step(&id, &second, "approve", &json!({}), &admin()))
        .await;
    assert_eq!(approved.status, 200, "{approved:?}");
    assert_eq!(ids(&page("", &admin()).await), [first.clone(), third]);
    assert_eq!(ids(&page("?status=approved", &admin()).await), [second]);

    let customer = page("", &owner()).await;
    assert_eq!(customer.status, 403, "{customer:?}");
    let bad = page("?status=lost&cursor=%21%21", &admin()).await;
    assert_eq!(bad.error_fields(), ["status"], "{bad:?}");
    // A cursor only pages within the queue asked for.
    let forged = page("?status=approved&cursor=0", &admin()).await;
    assert_eq!(forged.status, 200, "{forged:?}");
    assert!(ids(&forged).iter().all(|r| r != &first), "{forged:?}");
}

/// Refunds through Stripe (localstripe), over the payments tests' harness.
mod stripe {
    use super::*;
    use crate::payments::payments;

    /// A card order of the demo cart (2 × p001 at 10.00, p002 at 55.00), paid,
    /// shipped and delivered; its id and intent.
    async fn paid_and_delivered(p: &crate::payments::Payments) -> (String, String) {
        let (id, intent) = p.paid_order().await;
        ship_and_deliver(&p.stack, &id).await;
        (id, intent)
    }

    async fn requested_by(stack: &Stack, id: &str, body: &Value) -> String {
        let reply = stack.send(ask(id, body, &token("user789", ""))).await;
        assert_eq!(reply.status, 201, "{reply:?}");
        reply.body["return_id"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn concurrent_receives_make_one_restock_and_one_refund() {
        let p = payments().await;
        let (id, intent) = paid_and_delivered(&p).await;
        let return_id = requested_by(&p.stack, &id, &one("p002", 1)).await;
        let stock = available(&p.stack, "p002").await;
        let replies = join_all((0..4).map(|_| {
            p.stack
                .send(step(&id, &return_id, "receive", &json!({}), &warehouse()))
        }))
        .await;
        let won: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
        assert_eq!(won.len(), 1, "{replies:?}");
        for lost in replies.iter().filter(|r| r.status != 200) {
            assert_eq!(
                (lost.status, lost.code()),
                (409, "return_already_received"),
                "{lost:?}"
            );
        }
        assert_eq!(won[0].body["refund"]["amount"], json!(55.00));
        assert_eq!(won[0].body["refund"]["status"], "refunded");
        let refunds = p.stripe.refunds_of(&intent).await;
        let amounts: Vec<i64> = refunds
            .iter()
            .map(|r| r["amount"].as_i64().unwrap())
            .collect();
        assert_eq!(amounts, [5500], "{refunds:#?}");
        assert_eq!(
            won[0].body["refund"]["refund_id"], refunds[0]["id"],
            "the return names Stripe's refund"
        );
        assert_eq!(available(&p.stack, "p002").await, stock + 1);
        assert_eq!(
            order(&p.stack, &id).await["payment_status"],
            "partially_refunded"
        );
        // Later, without the first request's key: refused, nothing more made.
        let again = p
            .stack
            .send(step(&id, &return_id, "receive", &json!({}), &admin()))
            .await;
        assert_eq!(again.code(), "return_already_received", "{again:?}");
        assert_eq!(p.stripe.refunds_of(&intent).await.len(), 1);
    }

    #[tokio::test]
    async fn a_refund_cut_off_after_the_restock_is_finished_once_by_the_retry() {
        let p = payments().await;
        let (id, intent) = paid_and_delivered(&p).await;
        let return_id = requested_by(&p.stack, &id, &one("p001", 2)).await;
        let stock = available(&p.stack, "p001").await;

        // The first attempt dies after the restock, before it asks Stripe (here: a
        // function without payments): received and restocked, the refund pending.
        let settings = Settings::default().with("TABLE_NAME", &p.stack.table);
        let cut_off = Wiring::new(settings, orders::adapters::aws::sdk_config().await)
            .return_service()
            .unwrap();
        let warehouse = Principal {
            user_id: "warehouse".into(),
            admin: false,
            fulfillment: true,
            refunds: false,
            webhooks: false,
            email: None,
            phone: None,
        };
        let body = json!({"restocking_fee": "2.00"});
        let first = cut_off
            .receive(
                &warehouse,
                &id,
                &return_id,
                ReceiveRequest::default(),
                Some("2.00".into()),
                Some(orders::services::returns::IdempotentReturn {
                    key: "rcv-1".into(),
                    fingerprint: orders::inbound::http::request::fingerprint(
                        body.as_object().unwrap(),
                    ),
                }),
            )
            .await
            .unwrap();
        let receipt = first
            .order
            .return_of(&first.return_id)
            .unwrap()
            .receipt
            .clone()
            .unwrap();
        assert!(receipt.restocked);
        assert_eq!(receipt.refund_state.as_str(), "pending");
        assert_eq!(receipt.refund.minor(), 18_00);
        assert!(p.stripe.refunds_of(&intent).await.is_empty());
        assert_eq!(available(&p.stack, "p001").await, stock + 2);

        // The same request again, Stripe reachable: the refund is made, once, and the
        // stock is not added twice.
        let retry = || {
            step(
                &id,
                &return_id,
                "receive",
                &body,
                &token("warehouse", FULFILL),
            )
            .header("idempotency-key", "rcv-1")
        };
        let replayed = p.stack.send(retry()).await;
        assert_eq!(replayed.status, 200, "{replayed:?}");
        assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
        assert_eq!(replayed.body["refund"]["status"], "refunded");
        assert_eq!(replayed.body["refund"]["amount"], json!(18.00));
        let again = p.stack.send(retry()).await;
        assert_eq!(again.status, 200, "{again:?}");
        let refunds = p.stripe.refunds_of(&intent).await;
        let amounts: Vec<i64> = refunds
            .iter()
            .map(|r| r["amount"].as_i64().unwrap())
            .collect();
        assert_eq!(amounts, [1800], "{refunds:#?}");
        assert_eq!(available(&p.stack, "p001").await, stock + 2);
        let refund = p
            .stack
            .send(step(&id, &return_id, "refund", &json!({}), &admin()))
            .await;
        assert_eq!(
            (refund.status, refund.code()),
            (409, "refund_not_deferred"),
            "{refund:?}"
        );
    }

    #[tokio::test]
    async fn a_refund_left_for_later_is_made_by_post_refund() {
        let p = payments().await;
        let (id, intent) = paid_and_delivered(&p).await;
        let return_id = requested_by(
            &p.stack,
            &id,
            &json!({"items": [
                {"product_id": "p001", "quantity": 2, "reason": "wrong_item"},
                {"product_id": "p002", "quantity": 1, "reason": "not_as_described"}]}),
        )
        .await;
        let received = p
            .stack
            .send(step(
                &id,
                &return_id,
                "receive",
                &json!({"refund": false, "items": [
                    {"product_id": "p001", "quantity": 2, "restock": false},
                    {"product_id": "p002", "quantity": 1}]}),
                &admin(),
            ))
            .await;
        assert_eq!(received.status, 200, "{received:?}");
        assert_eq!(received.body["refund"]["status"], "deferred");
        assert_eq!(received.body["refund"]["amount"], json!(75.00));
        assert!(p.stripe.refunds_of(&intent).await.is_empty());
        // The customer cannot release it; support can, once.
        let customer = p
            .stack
            .send(step(
                &id,
                &return_id,
                "refund",
                &json!({}),
                &token("user789", ""),
            ))
            .await;
        assert_eq!(customer.status, 403, "{customer:?}");
        let refunded = p
            .stack
            .send(step(&id, &return_id, "refund", &json!({}), &admin()))
            .await;
        assert_eq!(refunded.status, 200, "{refunded:?}");
        assert_eq!(refunded.body["refund"]["status"], "refunded");
        let again = p
            .stack
            .send(step(&id, &return_id, "refund", &json!({}), &admin()))
            .await;
        assert_eq!(again.code(), "refund_not_deferred", "{again:?}");
        let refunds = p.stripe.refunds_of(&intent).await;
        assert_eq!(refunds.len(), 1, "{refunds:#?}");
        assert_eq!(refunds[0]["amount"], 7500);
        let view = order(&p.stack, &id).await;
        assert_eq!(view["payment_status"], "refunded");
        assert_eq!(view["return_status"], "returned");
    }
}

/// Return labels bought through Shippo (the stand-in `make test` starts), and their
/// tracking through Shippo's webhook.
mod labels {
    use super::*;
    use crate::shipping::{carrier_moves, fault, shippo_url, webhook, webhook_token};
    use orders::adapters::dynamo::DynamoOrderStore;
    use orders::domain::OrderId;
    use orders::domain::fulfillment::returns::ReturnId;
    use orders::ports::{ShipmentStore, TrackingOf};

    async fn shippo_stack() -> Stack {
        Stack::with_settings(orders_tests::with_shippo).await
    }

    async fn shippo_get(path: &str) -> Value {
        let text = reqwest::Client::new()
            .get(format!("{}{path}", shippo_url()))
            .header(
                "authorization",
                format!("ShippoToken {}", std::env::var("SHIPPO_API_TOKEN").unwrap()),
            )
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// The stand-in's labels whose metadata names `return_id`: bought, and of those
    /// bought as returns (`extra.is_return`).
    async fn labels_of(return_id: &str) -> (u64, u64) {
        let answer = shippo_get(&format!("/_control/labels?metadata_contains={return_id}")).await;
        (
            answer["purchased"].as_u64().unwrap(),
            answer["returns"].as_u64().unwrap(),
        )
    }

    async fn the_return(stack: &Stack, id: &str, return_id: &str) -> Value {
        let listed = stack
            .send(Call::new("GET", &format!("/api/orders/{id}/returns")).bearer(&owner()))
            .await;
        assert_eq!(listed.status, 200, "{listed:?}");
        listed.body["returns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["return_id"] == return_id)
            .cloned()
            .unwrap()
    }

    #[tokio::test]
    async fn approving_buys_one_return_label_whose_tracking_moves_the_return_only() {
        let stack = Arc::new(shippo_stack().await);
        let id = delivered(&stack).await;
        let return_id = requested(&stack, &id, &one("p002", 1)).await;

        // Three approvals at once: one label, whoever wins.
        let call = step(&id, &return_id, "approve", &json!({}), &admin());
        let replies = join_all((0..3).map(|_| {
            let (stack, call) = (stack.clone(), call.clone());
            async move { stack.send(call).await }
        }))
        .await;
        for reply in &replies {
            assert!(
                reply.status == 200 || (reply.status, reply.code()) == (409, "label_in_progress"),
                "{reply:?}"
            );
        }
        let approved = stack.send(call).await;
        assert_eq!(approved.status, 200, "{approved:?}");
        assert_eq!(approved.body["status"], "approved");
        let label = &approved.body["label"];
        assert_eq!(label["carrier"], "usps", "{approved:?}");
        assert_eq!(label["status"], "label_created");
        assert!(label["label_url"].as_str().unwrap().ends_with(".pdf"));
        let number = label["tracking_number"].as_str().unwrap().to_string();
        assert_eq!(
            labels_of(&return_id).await,
            (1, 1),
            "one label, a return label"
        );
        for reply in replies.iter().filter(|r| r.status == 200) {
            assert_eq!(reply.body["label"]["tracking_number"], number.as_str());
        }

        // Shippo was given the outbound addresses as they were (it swaps them itself).
        let track = shippo_get(&format!("/tracks/usps/{number}/")).await;
        let warehouse: Value =
            serde_json::from_str(&std::env::var("SHIPPO_ADDRESS_FROM").unwrap()).unwrap();
        assert_eq!(track["address_from"]["city"], warehouse["city"], "{track}");
        assert_eq!(track["address_to"]["city"], "New York", "{track}");

        // Its number is indexed beside the parcels', pointing at the return.
        let store = DynamoOrderStore::new(stack.dynamodb.clone(), &stack.table);
        assert_eq!(
            store.find_tracking("usps", &number).await.unwrap(),
            [TrackingOf::Return(
                OrderId::parse(&id).unwrap(),
                ReturnId::parse(&return_id).unwrap()
            )]
        );

        // The carrier's reports move the return's label; the order and the return stay.
        let token = webhook_token();
        // Later than the label's own report (now): whole seconds, as carriers report.
        let later = |hours: i64| {
            let at = OffsetDateTime::now_utc() + time::Duration::hours(hours);
            let at = at.replace_nanosecond(0).unwrap();
            at.format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        };
        let delivered_at = later(2);
        for (status, date, ours) in [
            ("TRANSIT", later(1), "in_transit"),
            ("DELIVERED", delivered_at.clone(), "delivered"),
        ] {
            let body = carrier_moves("usps", &number, status, &date).await;
            let moved = stack.send(webhook(&body, &token)).await;
            assert_eq!(moved.body["outcome"], "recorded", "{moved:?}");
            let ret = the_return(&stack, &id, &return_id).await;
            assert_eq!(ret["label"]["status"], ours, "{ret}");
            assert_eq!(ret["status"], "approved", "receiving stays a person's act");
            let view = order(&stack, &id).await;
            assert_eq!(view["status"], "delivered");
            assert_eq!(view["return_status"], "in_progress");
        }
        let resent = carrier_moves("usps", &number, "DELIVERED", &delivered_at).await;
        let again = stack.send(webhook(&resent, &token)).await;
        assert_eq!(again.body["outcome"], "duplicate", "{again:?}");

        let types: Vec<String> = events(&stack)
            .await
            .iter()
            .filter(|e| e.order_id == id)
            .map(OrderEvent::detail_type)
            .collect();
        assert_eq!(
            types[types.len() - 4..],
            [
                "order.return_requested",
                "order.return_approved",
                "order.return_updated",
                "order.return_updated"
            ]
        );
        // Approved already: no second label, however often asked.
        let later = stack
            .send(step(&id, &return_id, "approve", &json!({}), &admin()))
            .await;
        assert_eq!(later.status, 200, "{later:?}");
        assert_eq!(labels_of(&return_id).await, (1, 1));
    }

    #[tokio::test]
    async fn a_label_lost_or_refused_leaves_the_return_requested_and_the_retry_buys_one() {
        let stack = shippo_stack().await;
        let id = delivered(&stack).await;
        let return_id = requested(&stack, &id, &one("p001", 1)).await;
        let before = stored(&stack, &id).await;

        // Shippo buys the label and its answer is lost.
        fault("/transactions", &return_id, "after").await;
        let call = step(&id, &return_id, "approve", &json!({}), &admin());
        let lost = stack.send(call.clone()).await;
        assert_eq!(
            (lost.status, lost.code()),
            (503, "shipping_provider_unavailable"),
            "{lost:?}"
        );
        assert_eq!(stored(&stack, &id).await, before, "nothing written");
        assert_eq!(labels_of(&return_id).await, (1, 1));

        // The retry finds the label bought at the rate it remembered.
        let retried = stack.send(call).await;
        assert_eq!(retried.status, 200, "{retried:?}");
        assert_eq!(retried.body["label"]["status"], "label_created");
        assert_eq!(labels_of(&return_id).await, (1, 1));

        // Told not to: approved without a label, nothing bought.
        let second = requested(&stack, &id, &one("p002", 1)).await;
        let bare = stack
            .send(step(
                &id,
                &second,
                "approve",
                &json!({"label": false}),
                &admin(),
            ))
            .await;
        assert_eq!(bare.status, 200, "{bare:?}");
        assert!(bare.body.get("label").is_none(), "{bare:?}");
        assert_eq!(labels_of(&second).await, (0, 0));
    }
}

/// The customer hears of each step of a return once (the notifications consumer,
/// SES on the emulator).
mod notices {
    use super::*;
    use crate::notifications::{address, message, notify, sent_emails, token_with_contact};
    use orders::events::{Envelope, SOURCE};

    #[tokio::test]
    async fn each_step_is_told_once_with_the_label_the_reason_and_the_amount() {
        let stack = Stack::with_settings(orders_tests::with_shippo).await;
        let email = address("returns");
        // The order's contact: the customer's verified address, from the token.
        let cart = priced_cart(&unique("cart"));
        stack.put_cart_json(&cart).await;
        let placed = stack
            .send(
                Call::new("POST", "/api/orders")
                    .bearer(&token_with_contact(OWNER, Some(&email), None))
                    .json(&checkout(cart["cart_id"].as_str().unwrap())),
            )
            .await;
        assert_eq!(placed.status, 201, "{placed:?}");
        let id = placed.body["order_id"].as_str().unwrap().to_string();
        stack.advance(&id, &["confirmed"]).await;
        ship_and_deliver(&stack, &id).await;

        let kept = requested(&stack, &id, &one("p001", 1)).await;
        let approved = stack
            .send(step(&id, &kept, "approve", &json!({}), &admin()))
            .await;
        assert_eq!(approved.status, 200, "{approved:?}");
        let declined = requested(&stack, &id, &one("p002", 1)).await;
        let reply = stack
            .send(step(
                &id,
                &declined,
                "decline",
                &json!({"reason": "Opened software cannot be returned"}),
                &admin(),
            ))
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let withdrawn = requested(&stack, &id, &one("p001", 1)).await;
        let reply = stack
            .send(step(&id, &withdrawn, "cancel", &json!({}), &owner()))
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let reply = stack
            .send(step(&id, &kept, "receive", &json!({}), &warehouse()))
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        // One cable of the discounted, taxed order: 10.00 - 0.80 + 1.90.
        assert_eq!(reply.body["refund"]["amount"], json!(11.10));

        // Every event of the order, each delivered twice (a redelivery).
        let notifications = stack.wiring.notifications().unwrap();
        let envelopes: Vec<Envelope> = events(&stack)
            .await
            .into_iter()
            .filter(|e| e.order_id == id && e.return_id.is_some())
            .map(|detail| Envelope {
                id: format!("evt-{}", detail.event_id),
                detail_type: detail.detail_type(),
                source: SOURCE.to_string(),
                time: detail.occurred_at.clone(),
                detail,
            })
            .collect();
        for _ in 0..2 {
            for envelope in &envelopes {
                let failed = notify(&notifications, vec![message(envelope)]).await;
                assert!(failed.is_empty(), "{}", envelope.detail_type);
            }
        }
        let emails = sent_emails(&email).await;
        let subjects: Vec<&str> = emails
            .iter()
            .map(|e| e["subject"].as_str().unwrap())
            .collect();
        let received = format!("We received your return request for order {id}");
        assert_eq!(
            subjects,
            [
                received.as_str(),
                &format!("Your return for order {id} is approved"),
                &received,
                &format!("Your return for order {id} was declined"),
                &received,
                &format!("Your return for order {id} was cancelled"),
                &format!("We received your return for order {id}"),
            ],
            "once per step, however often delivered"
        );
        let text = |i: usize| emails[i]["text"].as_str().unwrap().to_string();
        let label = &approved.body["label"];
        let approval = text(1);
        assert!(
            approval.contains(label["label_url"].as_str().unwrap()),
            "{approval}"
        );
        assert!(
            approval.contains(&format!(
                "Tracking number: {} (USPS)",
                label["tracking_number"].as_str().unwrap()
            )),
            "{approval}"
        );
        assert!(approval.contains("1 x USB Cable (damaged)"), "{approval}");
        assert!(
            text(3).contains("Reason: Opened software cannot be returned"),
            "{}",
            text(3)
        );
        // Paid by hand: the shop pays it back.
        assert!(
            text(6).contains("refund of 11.10 EUR back the way you paid"),
            "{}",
            text(6)
        );
        assert!(
            emails[1]["html"]
                .as_str()
                .unwrap()
                .contains("<a href=\"http")
        );
    }
}

/// The payments queue's backstop of a receive whose refund did not finish (202), and
/// a refund recorded late never shrinking another return's.
mod backstop {
    use super::*;
    use crate::notifications::message;
    use crate::payments::payments;
    use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
    use orders::events::{Envelope, SOURCE};
    use orders::services::returns::{IdempotentReturn, ReturnService};

    fn warehouse_principal() -> Principal {
        Principal {
            user_id: "warehouse".into(),
            admin: false,
            fulfillment: true,
            refunds: false,
            webhooks: false,
            email: None,
            phone: None,
        }
    }

    /// Return services of `stack`'s table without payments: a receive through one
    /// stops before the refund, as a request cut off there would.
    async fn cut_off(stack: &Stack) -> ReturnService {
        let settings = Settings::default().with("TABLE_NAME", &stack.table);
        Wiring::new(settings, orders::adapters::aws::sdk_config().await)
            .return_service()
            .unwrap()
    }

    /// The `order.return_received` event of `return_id`, as the rule puts it on the
    /// payments queue.
    async fn received_message(stack: &Stack, return_id: &str) -> SqsMessage {
        let detail = events(stack)
            .await
            .into_iter()
            .find(|e| {
                e.return_id.as_deref() == Some(return_id)
                    && e.detail_type() == "order.return_received"
            })
            .expect("the receive's event");
        message(&Envelope {
            id: format!("evt-{}", detail.event_id),
            detail_type: detail.detail_type(),
            source: SOURCE.to_string(),
            time: detail.occurred_at.clone(),
            detail,
        })
    }

    /// Hands `messages` to `settle-payments`; the ids that failed.
    async fn settle(stack: &Stack, messages: Vec<SqsMessage>) -> usize {
        let payments = stack.wiring.payment_service().unwrap();
        let returns = stack.wiring.return_service().unwrap();
        let mut event = SqsEvent::default();
        event.records = messages;
        orders::inbound::sqs::settle(&payments, Some(&returns), event)
            .await
            .batch_item_failures
            .len()
    }

    /// The amounts of the intent's refunds at Stripe, smallest first (localstripe lists
    /// refunds made in the same second in no fixed order).
    async fn amounts(p: &crate::payments::Payments, intent: &str) -> Vec<i64> {
        let mut amounts: Vec<i64> = p
            .stripe
            .refunds_of(intent)
            .await
            .iter()
            .map(|r| r["amount"].as_i64().unwrap())
            .collect();
        amounts.sort_unstable();
        amounts
    }

    #[tokio::test]
    async fn the_payments_queue_finishes_a_pending_refund_once_racing_the_retry() {
        let p = payments().await;
        let (id, intent) = p.paid_order().await;
        ship_and_deliver(&p.stack, &id).await;
        let customer = token("user789", "");
        let reply = p.stack.send(ask(&id, &one("p001", 2), &customer)).await;
        assert_eq!(reply.status, 201, "{reply:?}");
        let return_id = reply.body["return_id"].as_str().unwrap().to_string();

        // Cut off before the refund: received and restocked, the refund pending.
        let body = json!({});
        let key = IdempotentReturn {
            key: "rcv-backstop".into(),
            fingerprint: orders::inbound::http::request::fingerprint(body.as_object().unwrap()),
        };
        let first = cut_off(&p.stack)
            .await
            .receive(
                &warehouse_principal(),
                &id,
                &return_id,
                ReceiveRequest::default(),
                None,
                Some(key),
            )
            .await
            .unwrap();
        let receipt = first
            .order
            .return_of(&first.return_id)
            .unwrap()
            .receipt
            .clone()
            .unwrap();
        assert_eq!(receipt.refund_state.as_str(), "pending");
        assert!(amounts(&p, &intent).await.is_empty());

        // The queue's consumer and the request's retry at once: one refund.
        let received = received_message(&p.stack, &return_id).await;
        let retry = step(&id, &return_id, "receive", &body, &warehouse())
            .header("idempotency-key", "rcv-backstop");
        let (failed, replayed) = tokio::join!(
            settle(&p.stack, vec![received.clone()]),
            p.stack.send(retry.clone())
        );
        assert!(
            replayed.status == 200 || replayed.status == 202,
            "{replayed:?}"
        );
        // Whichever found the other's refund in flight finishes on its next turn.
        if failed > 0 {
            assert_eq!(settle(&p.stack, vec![received.clone()]).await, 0);
        }
        assert_eq!(amounts(&p, &intent).await, [2000]);
        let after = p.stack.send(retry).await;
        assert_eq!(after.status, 200, "{after:?}");
        assert_eq!(after.body["refund"]["status"], "refunded");
        assert_eq!(
            after.body["refund"]["refund_id"],
            p.stripe.refunds_of(&intent).await[0]["id"]
        );
        // Redelivered: nothing more.
        assert_eq!(settle(&p.stack, vec![received]).await, 0);
        assert_eq!(amounts(&p, &intent).await, [2000]);
        assert_eq!(
            order(&p.stack, &id).await["payment_status"],
            "partially_refunded"
        );
    }

    #[tokio::test]
    async fn a_refund_made_but_not_yet_recorded_on_its_return_shrinks_no_other() {
        let p = payments().await;
        let (id, intent) = p.paid_order().await;
        ship_and_deliver(&p.stack, &id).await;
        let customer = token("user789", "");
        let mut ids = Vec::new();
        for product in ["p001", "p002"] {
            let quantity = if product == "p001" { 2 } else { 1 };
            let reply = p
                .stack
                .send(ask(&id, &one(product, quantity), &customer))
                .await;
            assert_eq!(reply.status, 201, "{reply:?}");
            ids.push(reply.body["return_id"].as_str().unwrap().to_string());
        }
        // The cables' return is received and its refund made at Stripe and on the
        // payment, but the return does not know yet (its request died right there).
        let first = cut_off(&p.stack)
            .await
            .receive(
                &warehouse_principal(),
                &id,
                &ids[0],
                ReceiveRequest::default(),
                None,
                None,
            )
            .await
            .unwrap();
        let receipt = first
            .order
            .return_of(&first.return_id)
            .unwrap()
            .receipt
            .clone()
            .unwrap();
        let payments = p.stack.wiring.payment_service().unwrap();
        payments
            .refund_return(
                first.order.clone(),
                orders::domain::fulfillment::returns::refund_key(&first.return_id),
                receipt.refund,
                "warehouse",
                format!("return {}", first.return_id),
                receipt.allocation.clone(),
            )
            .await
            .unwrap();
        assert_eq!(amounts(&p, &intent).await, [2000]);

        // The keyboard's return now: all of its 55.00, not 55.00 less the cables twice.
        let keyboard = p
            .stack
            .send(step(&id, &ids[1], "receive", &json!({}), &warehouse()))
            .await;
        assert_eq!(keyboard.status, 200, "{keyboard:?}");
        assert_eq!(keyboard.body["refund"]["amount"], json!(55.00));
        assert_eq!(keyboard.body["refund"]["status"], "refunded");

        // The cables' return is then recorded with the refund Stripe made: no second.
        let received = received_message(&p.stack, &ids[0]).await;
        assert_eq!(settle(&p.stack, vec![received]).await, 0);
        assert_eq!(amounts(&p, &intent).await, [2000, 5500]);
        let view = order(&p.stack, &id).await;
        assert_eq!(view["payment_status"], "refunded");
        assert_eq!(view["return_status"], "returned");
    }
}

/// Counts the DynamoDB requests a client sends, by operation (`x-amz-target`).
#[derive(Debug, Default, Clone)]
struct Requests(Arc<std::sync::Mutex<Vec<String>>>);

impl aws_sdk_dynamodb::config::Intercept for Requests {
    fn name(&self) -> &'static str {
        "Requests"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_dynamodb::config::RuntimeComponents,
        _: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or_default();
        let operation = target.rsplit('.').next().unwrap_or_default().to_string();
        self.0.lock().unwrap().push(operation);
        Ok(())
    }
}

#[tokio::test]
async fn the_queue_of_returns_to_handle_is_one_query() {
    use orders::adapters::dynamo::DynamoOrderStore;
    use orders::domain::fulfillment::returns::ReturnStatus;
    use orders::services::returns::ReturnService;

    let stack = Stack::new().await;
    let id = delivered(&stack).await;
    let mut asked = Vec::new();
    for body in [one("p001", 1), one("p002", 1), one("p001", 1)] {
        asked.push(requested(&stack, &id, &body).await);
    }
    // The service `GET /api/returns` calls, over a client that counts its requests.
    let requests = Requests::default();
    let config =
        aws_sdk_dynamodb::config::Builder::from(&orders::adapters::aws::sdk_config().await)
            .interceptor(requests.clone())
            .build();
    let store = Arc::new(DynamoOrderStore::new(
        aws_sdk_dynamodb::Client::from_conf(config),
        &stack.table,
    ));
    let returns = ReturnService::new(store.clone(), store.clone(), store, 30);
    let support = Principal {
        user_id: "support".into(),
        admin: true,
        fulfillment: false,
        refunds: true,
        webhooks: false,
        email: None,
        phone: None,
    };
    let page = returns
        .queue(&support, ReturnStatus::Requested, 50, None)
        .await
        .unwrap();
    let listed: Vec<String> = page
        .returns
        .iter()
        .map(|r| r.return_id.to_string())
        .collect();
    assert_eq!(listed, asked, "oldest first, each with what the list shows");
    assert!(page.returns.iter().all(|r| !r.items.is_empty()));
    assert_eq!(*requests.0.lock().unwrap(), ["Query"]);

    // And through the API, as the route answers it.
    let reply = stack
        .send(Call::new("GET", "/api/returns?status=requested").bearer(&admin()))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
}
