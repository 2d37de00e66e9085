//! The fulfillment consumer: SQS batches of EventBridge events, as Lambda delivers
//! them, against a fresh table on the emulator. Each test checks what is stored: the
//! stock, the reservation, the order's shipping status and its history.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use orders::adapters::dynamo::DynamoOrderStore;
use orders::adapters::dynamo::inventory::{DynamoInventory, ReservationState};
use orders::domain::stock::StockLine;
use orders::domain::{Order, OrderId, OrderStatus};
use orders::events::{Envelope, OrderEvent, SOURCE};
use orders::inbound::sqs;
use orders::ports::{Inventory, OrderStore};
use orders::services::fulfillment::Fulfillment;
use orders_tests::{ADMIN, Call, Stack, checkout, token};
use serde_json::{Value, json};

// ----------------------------------------------------------------------------------
// Harness
// ----------------------------------------------------------------------------------

/// The consumer on the stack's table, with its inventory for seeding and checks.
struct Consumer {
    fulfillment: Fulfillment,
    inventory: Arc<DynamoInventory>,
    store: Arc<DynamoOrderStore>,
}

fn consumer(stack: &Stack) -> Consumer {
    let store = Arc::new(DynamoOrderStore::new(stack.dynamodb.clone(), &stack.table));
    let inventory = Arc::new(DynamoInventory::new(stack.dynamodb.clone(), &stack.table));
    Consumer {
        fulfillment: Fulfillment::new(store.clone(), inventory.clone()),
        inventory,
        store,
    }
}

impl Consumer {
    async fn order(&self, id: &str) -> Order {
        self.store
            .get(&OrderId::parse(id).unwrap())
            .await
            .unwrap()
            .expect("order stored")
    }

    async fn stock(&self, product: &str) -> Option<u64> {
        self.inventory.available(product).await.unwrap()
    }

    async fn reservation_state(&self, id: &str) -> Option<ReservationState> {
        self.inventory
            .reservation(&OrderId::parse(id).unwrap())
            .await
            .unwrap()
            .map(|r| r.state)
    }

    /// The `order.confirmed` message the pipeline would deliver for an order that
    /// has just been confirmed.
    async fn confirmed_message(&self, id: &str) -> SqsMessage {
        let after = self.order(id).await;
        assert_eq!(after.status, OrderStatus::Confirmed);
        let mut before = after.clone();
        before.status = OrderStatus::Pending;
        before.version -= 1;
        message(&envelope(&before, &after))
    }

    /// The `order.cancelled` message for an order cancelled from `confirmed`.
    async fn cancelled_message(&self, id: &str) -> SqsMessage {
        let after = self.order(id).await;
        assert_eq!(after.status, OrderStatus::Cancelled);
        let mut before = after.clone();
        before.status = OrderStatus::Confirmed;
        before.version -= 1;
        message(&envelope(&before, &after))
    }

    async fn handle(&self, messages: Vec<SqsMessage>) -> Vec<String> {
        failures(sqs::fulfill(&self.fulfillment, batch(messages)).await)
    }
}

fn envelope(before: &Order, after: &Order) -> Envelope {
    let detail = OrderEvent::for_change(Some(before), after).expect("a recorded change");
    Envelope {
        id: format!("evt-{}", detail.event_id),
        detail_type: detail.detail_type(),
        source: SOURCE.to_string(),
        time: detail.occurred_at.clone(),
        detail,
    }
}

fn message(envelope: &Envelope) -> SqsMessage {
    raw_message(
        &format!("msg-{}", envelope.detail.event_id),
        Some(&serde_json::to_string(envelope).unwrap()),
    )
}

fn raw_message(id: &str, body: Option<&str>) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(id.to_string());
    message.body = body.map(str::to_string);
    message.event_source = Some("aws:sqs".into());
    message
}

fn batch(messages: Vec<SqsMessage>) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages;
    event
}

fn failures(response: SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect()
}

fn admin() -> String {
    token("admin", ADMIN)
}

/// A confirmed order for `user` of `lines` (product, quantity).
async fn confirmed_order(stack: &Stack, user: &str, cart: &str, lines: &[(&str, u32)]) -> String {
    let lines: Vec<_> = lines
        .iter()
        .map(|(product, quantity)| (*product, "Thing", *quantity, "10.00"))
        .collect();
    stack.put_cart(cart, user, &lines).await;
    let reply = stack
        .send(
            Call::new("POST", "/api/orders")
                .bearer(&token(user, ""))
                .json(&checkout(cart)),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let id = reply.body["order_id"].as_str().unwrap().to_string();
    stack.advance(&id, &["confirmed"]).await;
    id
}

async fn cancel(stack: &Stack, id: &str) {
    let reply = stack
        .send(
            Call::new("DELETE", &format!("/api/orders/{id}"))
                .bearer(&admin())
                .json(&json!({ "reason": "customer called" })),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

async fn history(stack: &Stack, id: &str) -> Vec<Value> {
    let reply = stack
        .send(Call::new("GET", &format!("/api/orders/{id}/history")).bearer(&admin()))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["history"].as_array().unwrap().clone()
}

// ----------------------------------------------------------------------------------
// order.confirmed
// ----------------------------------------------------------------------------------

#[tokio::test]
async fn a_confirmed_order_in_stock_is_reserved_and_processing() {
    let stack = Stack::new().await;
    let c = consumer(&stack);
    c.inventory.set_stock("p001", 5).await.unwrap();
    let id = stack.order_for("ann", "cart-1").await; // 2 x p001
    stack.advance(&id, &["confirmed"]).await;

    let failed = c.handle(vec![c.confirmed_message(&id).await]).await;

    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(c.stock("p001").await, Some(3));
    let reservation = c
        .inventory
        .reservation(&OrderId::parse(&id).unwrap())
        .await
        .unwrap()
        .expect("reservation stored");
    assert_eq!(reservation.state, ReservationState::Reserved);
    assert_eq!(
        reservation.lines,
        [StockLine {
            product_id: "p001".into(),
            quantity: 2
        }]
    );

    let stored = stack.stored_order(&id).await.unwrap();
    assert_eq!(stored["shipping_status"].as_s().unwrap(), "processing");
    assert_eq!(stored["status"].as_s().unwrap(), "confirmed");
    assert_eq!(stored["version"].as_n().unwrap(), "3");

    let trail = history(&stack, &id).await;
    assert_eq!(trail.len(), 3, "{trail:?}");
    let last = &trail[2];
    assert_eq!(last["version"], 3);
    assert_eq!(last["actor"], "fulfillment");
    assert_eq!(last["from"], "confirmed");
    assert_eq!(last["to"], "confirmed");
    assert_eq!(last["shipping_status"], "processing");
    assert_eq!(last["reason"], "stock reserved; awaiting manual shipment");

    let got = stack
        .send(Call::new("GET", &format!("/api/orders/{id}")).bearer(&admin()))
        .await;
    assert_eq!(got.body["shipping_status"], "processing");
    assert_eq!(got.header("etag"), Some("\"3\""));
}

#[tokio::test]
async fn a_redelivered_confirmation_has_no_second_effect() {
    let stack = Stack::new().await;
    let c = consumer(&stack);
    c.inventory.set_stock("p001", 5).await.unwrap();
    let id = stack.order_for("ann", "cart-1").await;
    stack.advance(&id, &["confirmed"]).await;
    let confirmed = c.confirmed_message(&id).await;

    // Twice in one batch (SQS at-least-once), and once more later.
    let failed = c.handle(vec![confirmed.clone(), confirmed.clone()]).await;
    assert!(failed.is_empty(), "{failed:?}");
    let failed = c.handle(vec![confirmed]).await;
    assert!(failed.is_empty(), "{failed:?}");

    assert_eq!(c.stock("p001").await, Some(3));
    let order = c.order(&id).await;
    assert_eq!(order.version, 3);
    assert_eq!(history(&stack, &id).await.len(), 3);
    let reservations = stack
        .all_items()
        .await
        .into_iter()
        .filter(|item| item["PK"].as_s().unwrap().starts_with("RESERVATION#"))
        .count();
    assert_eq!(reservations, 1);
}

#[tokio::test]
async fn short_stock_backorders_the_order_and_takes_nothing() {
    let stack = Stack::new().await;
    let c = consumer(&stack);
    c.inventory.set_stock("p001", 10).await.unwrap();
    c.inventory.set_stock("p002", 1).await.unwrap();
    // Enough p001, too few p002, no p003 at all: the whole order waits.
    let id = confirmed_order(
        &stack,
        "ann",
        "cart-1",
        &[("p001", 2), ("p002", 3), ("p003", 1)],
    )
    .await;

    let confirmed = c.confirmed_message(&id).await;
    let failed = c.handle(vec![confirmed.clone()]).await;

    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(c.stock("p001").await, Some(10));
    assert_eq!(c.stock("p002").await, Some(1));
    assert_eq!(c.stock("p003").await, None);
    assert_eq!(c.reservation_state(&id).await, None);
    let order = c.order(&id).await;
    assert_eq!(order.shipping_status.as_str(), "backordered");
    assert_eq!(order.version, 3);
    let trail = history(&stack, &id).await;
    assert_eq!(trail[2]["shipping_status"], "backordered");
    assert_eq!(
        trail[2]["reason"],
        "insufficient stock: p002 (3 wanted, 1 available), p003 (1 wanted, 0 available)"
    );
    // The customer learns that its order waits, not the warehouse's stock levels.
    let mine = stack
        .send(Call::new("GET", &format!("/api/orders/{id}/history")).bearer(&token("ann", "")))
        .await;
    let entry = &mine.body["history"][2];
    assert_eq!(entry["shipping_status"], "backordered", "{mine:?}");
    assert_eq!(entry["actor"], "fulfillment");
    assert!(entry.get("reason").is_none(), "{entry}");
    assert!(!mine.text.contains("available"), "{}", mine.text);

    // Redelivered while still short: nothing new.
    assert!(c.handle(vec![confirmed.clone()]).await.is_empty());
    assert_eq!(c.order(&id).await.version, 3);

    // Restocked, then delivered again (a replay from the DLQ): now it goes ahead.
    c.inventory.set_stock("p002", 3).await.unwrap();
    c.inventory.set_stock("p003", 1).await.unwrap();
    assert!(c.handle(vec![confirmed]).await.is_empty());
    let order = c.order(&id).await;
    assert_eq!(order.shipping_status.as_str(), "processing");
    assert_eq!(order.version, 4);
    assert_eq!(
        (
            c.stock("p001").await,
            c.stock("p002").await,
            c.stock("p003").await
        ),
        (Some(8), Some(0), Some(0))
    );
}

#[tokio::test]
async fn a_backordered_order_cannot_be_shipped_until_its_stock_is_reserved() {
    let stack = Stack::new().await;
    let c = consumer(&stack);
    c.inventory.set_stock("p001", 1).await.unwrap();
    let id = stack.order_for("ann", "cart-1").await; // 2 x p001
    stack.advance(&id, &["confirmed"]).await;
    let confirmed = c.confirmed_message(&id).await;
    assert!(c.handle(vec![confirmed.clone()]).await.is_empty());
    assert_eq!(c.order(&id).await.shipping_status.as_str(), "backordered");

    let ship = |bearer: String| {
        Call::new("PUT", &format!("/api/orders/{id}/status"))
            .bearer(&bearer)
            .json(&json!({ "status": "shipped", "tracking_number": "1Z999AA10123456784" }))
    };
    for bearer in [admin(), token("warehouse", orders_tests::FULFILL)] {
        let reply = stack.send(ship(bearer).header("if-match", "\"3\"")).await;
        assert_eq!(reply.status, 409, "{reply:?}");
        assert_eq!(reply.body["code"], "order_backordered");
        assert_eq!(reply.body["current_status"], "confirmed");
        assert_eq!(reply.body["shipping_status"], "backordered");
        assert_eq!(reply.body["version"], 3);
    }
    let order = c.order(&id).await;
    assert_eq!(
        (order.status, order.shipping_status.as_str(), order.version),
        (OrderStatus::Confirmed, "backordered", 3)
    );
    assert_eq!(order.tracking_number, None);

    // Restocked and reserved: now it ships.
    c.inventory.set_stock("p001", 2).await.unwrap();
    assert!(c.handle(vec![confirmed]).await.is_empty());
    assert_eq!(c.order(&id).await.shipping_status.as_str(), "processing");
    let reply = stack.send(ship(admin())).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["shipping_status"], "shipped");
}

#[tokio::test]
async fn lines_of_the_same_product_are_reserved_as_one() {
    let stack = Stack::new().await;
    let c = consumer(&stack);
    c.inventory.set_stock("p001", 3).await.unwrap();
    let id = confirmed_order(&stack, "ann", "cart-1", &[("p001", 2), ("p001", 1)]).await;

    assert!(
        c.handle(vec![c.confirmed_message(&id).await])
            .await
            .is_empty()
    );

    assert_eq!(c.stock("p001").await, Some(0));
    assert_eq!(c.order(&id).await.shipping_status.as_str(), "processing");
}

#[tokio::test]
async fn two_orders_racing_for_the_last_units_one_wins() {
    let stack = Stack::new().await;
    let c = consumer(&stack);
    c.inventory.set_stock("p001", 2).await.unwrap();
    let a = stack.order_for("ann", "cart-a").await; // 2 x p001 each
    let b = stack.order_for("bob", "cart-b").await;
    stack.advance(&a, &["confirmed"]).await;
    stack.advance(&b, &["confirmed"]).await;
    let (ma, mb) = (c.confirmed_message(&a).await, c.confirmed_message(&b).await);

    // Two Lambda invocations at once, one message each.
    let (fa, fb) = tokio::join!(c.handle(vec![ma]), c.handle(vec![mb]));

    assert!(fa.is_empty() && fb.is_empty(), "{fa:?} {fb:?}");
    let mut statuses = vec![
        c.order(&a).await.shipping_status.as_str(),
        c.order(&b).await.shipping_status.as_str(),
    ];
    statuses.sort();
    assert_eq!(statuses, ["backordered", "processing"]);
    assert_eq!(c.stock("p001").await, Some(0));
}

// ----------------------------------------------------------------------------------
// Forged events: the stored order decides, never the event's copy
// ----------------------------------------------------------------------------------

/// `message`'s body with `change` applied to its JSON.
fn forged(message: &SqsMessage, id: &str, change: impl FnOnce(&mut Value)) -> SqsMessage {
    let mut body: Value = serde_json::from_str(message.body.as_deref().unwrap()).unwrap();
    change(&mut body);
    raw_message(id, Some(&body.to_string()))
}

#[tokio::test]
async fn a_forged_confirmation_of_a_pending_order_reserves_and_ships_nothing() {
    let stack = Stack::new().await;
    let c = consumer(&stack);
    c.inventory.set_stock("p001", 5).await.unwrap();
    let id = stack.order_for("ann", "cart-1").await; // pending, version 1

    // What a publisher would have sent had the order been confirmed, at version 2.
    let mut confirmed = c.order(&id).await;
    let created = confirmed.clone();
    confirmed.status = OrderStatus::Confirmed;
    confirmed.version = 2;
    let mut entry = confirmed.history[0].clone();
    entry.status = OrderStatus::Confirmed;
    confirmed.history.push(entry);
    let at_version_2 = message(&envelope(&created, &confirmed));
    // The same claim at the order's own version: still not confirmed in the store.
    let at_version_1 = forged(&at_version_2, "forged-v1", |body| {
        body["detail"]["sequence"] = json!(1);
    });

    let failed = c
        .handle(vec![at_version_2.clone(), at_version_1.clone()])
        .await;

    assert_eq!(
        failed,
        [at_version_2.message_id.clone().unwrap(), "forged-v1".into()],
        "forgeries go to the dead-letter queue"
    );
    assert_eq!(c.stock("p001").await, Some(5));
    assert_eq!(c.reservation_state(&id).await, None);
    let order = c.order(&id).await;
    assert_eq!(
        (order.status, order.shipping_status.as_str(), order.version),
        (OrderStatus::Pending, "not_started", 1)
    );

    // Once really confirmed, the real event goes ahead.
    stack.advance(&id, &["confirmed"]).await;
    assert!(
        c.handle(vec![c.confirmed_message(&id).await])
            .await
            .is_empty()
    );
    assert_eq!(c.stock("p001").await, Some(3));
}

#[tokio::test]
async fn a_confirmation_with_other_lines_or_address_than_stored_has_no_effect() {
    let stack = Stack::new().await;
    let c = consumer(&stack);
    c.inventory.set_stock("p001", 5).await.unwrap();
    c.inventory.set_stock("p002", 5).await.unwrap();
    let id = stack.order_for("ann", "cart-1").await; // 2 x p001
    stack.advance(&id, &["confirmed"]).await;
    let real = c.confirmed_message(&id).await;

    let more = forged(&real, "more-lines", |body| {
        let items = &mut body["detail"]["order"]["items"];
        items[0]["quantity"] = json!(5);
        items
            .as_array_mut()
            .unwrap()
            .push(json!({ "product_id": "p002", "name": "Thing", "quantity": 5, "price": 1.0 }));
    });
    let elsewhere = forged(&real, "other-address", |body| {
        body["detail"]["order"]["shipping_address"]["address"] = json!("1 Attacker Way");
        body["detail"]["order"]["shipping_address"]["city"] = json!("Elsewhere");
    });

    let failed = c.handle(vec![more, elsewhere]).await;

    assert_eq!(failed, ["more-lines", "other-address"]);
    assert_eq!(
        (c.stock("p001").await, c.stock("p002").await),
        (Some(5), Some(5))
    );
    assert_eq!(c.reservation_state(&id).await, None);
    let order = c.order(&id).await;
    assert_eq!(
        (order.shipping_status.as_str(), order.version),
        ("not_started", 2)
    );

    // The real event still works, and ships to the stored address.
    assert!(c.handle(vec![real]).await.is_empty());
    assert_eq!(
        (c.stock("p001").await, c.stock("p002").await),
        (Some(3), Some(5))
    );
    assert_eq!(c.order(&id).await.shipping_status.as_str(), "processing");
}

#[tokio::test]
async fn a_forged_cancellation_of_a_live_order_releases_nothing() {
    let stack = Stack::new().await;
    let c = consumer(&stack);
    c.inventory.set_stock("p001", 5).await.unwrap();
    let id = stack.order_for("ann", "cart-1").await;
    stack.advance(&id, &["confirmed"]).await;
    let confirmed = c.confirmed_message(&id).await;
    assert!(c.handle(vec![confirmed.clone()]).await.is_empty());
    assert_eq!(c.stock("p001").await, Some(3));

    let cancelled = forged(&confirmed, "forged-cancel", |body| {
        body["detail-type"] = json!("order.cancelled");
        body["detail"]["previous_status"] = json!("confirmed");
        body["detail"]["status"] = json!("cancelled");
    });
    assert_eq!(c.handle(vec![cancelled]).await, ["forged-cancel"]);

    assert_eq!(c.stock("p001").await, Some(3));
    assert_eq!(
        c.reservation_state(&id).await,
        Some(ReservationState::Reserved)
    );
    assert_eq!(c.order(&id).await.status, OrderStatus::Confirmed);
}

// ----------------------------------------------------------------------------------
// order.cancelled
// ----------------------------------------------------------------------------------

#[tokio::test]
async fn cancelling_a_reserved_order_releases_its_stock_once() {
    let stack = Stack::new().await;
    let c = consumer(&stack);
    c.inventory.set_stock("p001", 5).await.unwrap();
    let id = stack.order_for("ann", "cart-1").await;
    stack.advance(&id, &["confirmed"]).await;
    let confirmed = c.confirmed_message(&id).await;
    assert!(c.handle(vec![confirmed.clone()]).await.is_empty());
    assert_eq!(c.stock("p001").await, Some(3));

    cancel(&stack, &id).await;
    let cancelled = c.cancelled_message(&id).await;
    assert!(c.handle(vec![cancelled.clone()]).await.is_empty());

    assert_eq!(c.stock("p001").await, Some(5));
    assert_eq!(
        c.reservation_state(&id).await,
        Some(ReservationState::Released)
    );

    // A redelivered cancellation, and a late confirmation: neither touches the stock.
    let failed = c.handle(vec![cancelled, confirmed]).await;
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(c.stock("p001").await, Some(5));
    assert_eq!(
        c.reservation_state(&id).await,
        Some(ReservationState::Released)
    );
    let order = c.order(&id).await;
    assert_eq!(order.status, OrderStatus::Cancelled);
    assert_eq!(order.shipping_status.as_str(), "cancelled");
}

#[tokio::test]
async fn an_order_cancelled_before_fulfillment_ran_keeps_no_stock() {
    let stack = Stack::new().await;
    let c = consumer(&stack);
    c.inventory.set_stock("p001", 5).await.unwrap();
    let id = stack.order_for("ann", "cart-1").await;
    stack.advance(&id, &["confirmed"]).await;
    let confirmed = c.confirmed_message(&id).await;
    cancel(&stack, &id).await;
    let cancelled = c.cancelled_message(&id).await;

    // The cancellation overtakes the confirmation on the queue.
    assert!(c.handle(vec![cancelled]).await.is_empty());
    assert!(c.handle(vec![confirmed]).await.is_empty());

    assert_eq!(c.stock("p001").await, Some(5));
    // The stored order is cancelled: the late confirmation never takes the stock.
    assert_eq!(c.reservation_state(&id).await, None);
    let order = c.order(&id).await;
    assert_eq!(order.status, OrderStatus::Cancelled);
    assert_eq!(
        order.version, 3,
        "no fulfillment entry after the cancellation"
    );
}

// ----------------------------------------------------------------------------------
// Failures: poison and transient
// ----------------------------------------------------------------------------------

#[tokio::test]
async fn poison_messages_fail_alone_and_the_rest_of_the_batch_goes_ahead() {
    let stack = Stack::new().await;
    let c = consumer(&stack);
    c.inventory.set_stock("p001", 5).await.unwrap();
    let id = stack.order_for("ann", "cart-1").await;
    stack.advance(&id, &["confirmed"]).await;
    let good = c.confirmed_message(&id).await;

    let mut bad_id: Value = serde_json::from_str(good.body.as_deref().unwrap()).unwrap();
    bad_id["detail"]["order_id"] = json!("ORD12345");
    let mut no_order: Value = serde_json::from_str(good.body.as_deref().unwrap()).unwrap();
    no_order["detail"]["order"] = json!({ "items": "none" });
    let mut created: Value = serde_json::from_str(good.body.as_deref().unwrap()).unwrap();
    created["detail-type"] = json!("order.created");

    let failed = c
        .handle(vec![
            raw_message("not-json", Some("{this is not json")),
            raw_message("no-body", None),
            raw_message("bad-id", Some(&bad_id.to_string())),
            raw_message("bad-order", Some(&no_order.to_string())),
            raw_message("created", Some(&created.to_string())),
            good,
        ])
        .await;

    assert_eq!(failed, ["not-json", "no-body", "bad-id", "bad-order"]);
    assert_eq!(c.order(&id).await.shipping_status.as_str(), "processing");
    assert_eq!(c.stock("p001").await, Some(3));
}

#[tokio::test]
async fn an_unreachable_table_fails_the_message_and_a_retry_completes_it() {
    let stack = Stack::new().await;
    let c = consumer(&stack);
    c.inventory.set_stock("p001", 5).await.unwrap();
    let id = stack.order_for("ann", "cart-1").await;
    stack.advance(&id, &["confirmed"]).await;
    let confirmed = c.confirmed_message(&id).await;

    // The same consumer with DynamoDB gone (nothing listens on the discard port).
    let sdk = orders::adapters::aws::sdk_config().await;
    let gone = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .endpoint_url("http://127.0.0.1:9")
            .build(),
    );
    let offline = Fulfillment::new(
        Arc::new(DynamoOrderStore::new(gone.clone(), &stack.table)),
        Arc::new(DynamoInventory::new(gone, &stack.table)),
    );
    let failed = failures(sqs::fulfill(&offline, batch(vec![confirmed.clone()])).await);
    assert_eq!(failed, [confirmed.message_id.clone().unwrap()]);
    assert_eq!(c.order(&id).await.version, 2);

    assert!(c.handle(vec![confirmed]).await.is_empty());
    assert_eq!(c.order(&id).await.shipping_status.as_str(), "processing");
    assert_eq!(c.stock("p001").await, Some(3));
}

#[test]
fn the_sample_event_is_an_sqs_batch_of_one_order_confirmed() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/fulfill-orders.json");
    let event: SqsEvent = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(event.records.len(), 1);
    let envelope: Envelope =
        serde_json::from_str(event.records[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(envelope.detail_type, "order.confirmed");
    assert_eq!(envelope.detail.detail_type(), "order.confirmed");
    assert_eq!(envelope.source, SOURCE);
    assert_eq!(
        envelope.detail.order_id,
        OrderId::for_cart("abc123").as_str()
    );
    assert!(envelope.detail.order.as_str().contains(r#""total":75.00"#));
}

#[tokio::test]
async fn an_order_of_more_products_than_one_transaction_holds_is_backordered() {
    let stack = Stack::new().await;
    let c = consumer(&stack);
    // DynamoDB allows 100 actions per transaction: 99 products and the reservation.
    // (The emulator copies the table for every action of a transaction, so a 99-product
    // reservation is too slow to run here; the limit is DynamoDB's documented one.)
    let products: Vec<String> = (0..100).map(|i| format!("sku-{i:03}")).collect();
    let lines: Vec<(&str, u32)> = products.iter().map(|p| (p.as_str(), 1)).collect();
    let id = confirmed_order(&stack, "ann", "cart-100", &lines).await;

    assert!(
        c.handle(vec![c.confirmed_message(&id).await])
            .await
            .is_empty()
    );

    let order = c.order(&id).await;
    assert_eq!(order.shipping_status.as_str(), "backordered");
    assert_eq!(
        order.history.last().unwrap().reason.as_deref(),
        Some("100 products are more than one reservation holds; reserve by hand")
    );
    assert_eq!(c.reservation_state(&id).await, None);
}
