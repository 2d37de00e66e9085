//! Returns against the emulator (and localstripe for refunds): a customer sends part
//! of a delivered order back, support approves, the warehouse receives it, and the
//! goods go back in stock and the money back to the customer, each exactly once. Each
//! test checks what users rely on: the answers, what is stored (the order, its
//! returns, the stock, the queue) and what Stripe made.

use std::collections::HashMap;

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
