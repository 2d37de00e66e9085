//! Shipments: an order ships in parcels, line by line, against a fresh table on the
//! emulator. Each test checks what users rely on: the answers, what is stored (the
//! order's parcels, its status, the tracking index, the stock) and the events the
//! table's stream becomes.

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event;
use orders::adapters::dynamo::DynamoOrderStore;
use orders::adapters::dynamo::inventory::DynamoInventory;
use orders::adapters::dynamo::stream::recorded_change;
use orders::domain::OrderId;
use orders::domain::fulfillment::ShipmentId;
use orders::events::OrderEvent;
use orders::ports::{Inventory, ShipmentStore, TrackingOf};
use orders_tests::{ADMIN, Call, FULFILL, Reply, Stack, checkout, token};
use serde_json::{Value, json};

const OWNER: &str = "dana";
const WAREHOUSE: &str = "warehouse";

fn admin() -> String {
    token("admin", ADMIN)
}

fn warehouse() -> String {
    token(WAREHOUSE, FULFILL)
}

/// A confirmed order of two cables (p001) and one keyboard (p002), with stock for it.
async fn confirmed_order(stack: &Stack, cart_id: &str) -> String {
    stack
        .put_cart(
            cart_id,
            OWNER,
            &[
                ("p001", "USB Cable", 2, "10.00"),
                ("p002", "Keyboard", 1, "55.00"),
            ],
        )
        .await;
    let reply = stack
        .send(
            Call::new("POST", "/api/orders")
                .bearer(&token(OWNER, ""))
                .json(&checkout(cart_id)),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let id = reply.body["order_id"].as_str().unwrap().to_string();
    stack.advance(&id, &["confirmed"]).await;
    let inventory = DynamoInventory::new(stack.dynamodb.clone(), &stack.table);
    inventory.set_stock("p001", 10).await.unwrap();
    inventory.set_stock("p002", 10).await.unwrap();
    id
}

fn ship(id: &str, body: &Value, bearer: &str) -> Call {
    Call::new("POST", &format!("/api/orders/{id}/shipments"))
        .bearer(bearer)
        .json(body)
}

async fn order(stack: &Stack, id: &str) -> Reply {
    let reply = stack
        .send(Call::new("GET", &format!("/api/orders/{id}")).bearer(&admin()))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply
}

/// (product, shipped, delivered) per line of the order view.
fn line_counts(order: &Value) -> Vec<(String, u64, u64)> {
    order["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["product_id"].as_str().unwrap().to_string(),
                l["quantity_shipped"].as_u64().unwrap(),
                l["quantity_delivered"].as_u64().unwrap(),
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

fn detail_types(events: &[OrderEvent]) -> Vec<String> {
    events.iter().map(OrderEvent::detail_type).collect()
}

#[tokio::test]
async fn two_parcels_ship_the_order_and_an_admin_delivers_them() {
    let stack = Stack::new().await;
    let id = confirmed_order(&stack, "two-parcels").await;

    let first = stack
        .send(ship(
            &id,
            &json!({
                "items": [{"product_id": "p001", "quantity": 1}],
                "carrier": "USPS",
                "tracking_number": "9400111899223197428490"
            }),
            &warehouse(),
        ))
        .await;
    assert_eq!(first.status, 201, "{first:?}");
    assert_eq!(first.body["status"], "in_transit");
    assert_eq!(first.body["carrier"], "usps");
    assert_eq!(
        first.body["items"],
        json!([{"product_id": "p001", "quantity": 1}])
    );
    let view = order(&stack, &id).await.body;
    assert_eq!(view["status"], "confirmed");
    assert_eq!(view["shipping_status"], "partially_shipped");
    assert_eq!(
        line_counts(&view),
        [("p001".into(), 1, 0), ("p002".into(), 0, 0)]
    );
    assert_eq!(
        view["shipments"][0]["tracking_number"],
        "9400111899223197428490"
    );

    // Everything left: the order ships in the same write.
    let second = stack.send(ship(&id, &json!({}), &admin())).await;
    assert_eq!(second.status, 201, "{second:?}");
    assert_eq!(
        second.body["items"],
        json!([{"product_id": "p001", "quantity": 1}, {"product_id": "p002", "quantity": 1}])
    );
    let view = order(&stack, &id).await.body;
    assert_eq!(view["status"], "shipped");
    assert_eq!(view["shipping_status"], "shipped");
    assert_eq!(
        line_counts(&view),
        [("p001".into(), 2, 0), ("p002".into(), 1, 0)]
    );

    // Nothing is left: a third parcel is refused.
    let third = stack.send(ship(&id, &json!({}), &admin())).await;
    assert_eq!(third.status, 409, "{third:?}");
    assert_eq!(third.code(), "order_not_shippable");
    assert_eq!(third.body["current_status"], "shipped");

    // The owner reads the parcels with their histories.
    let listed = stack
        .send(Call::new("GET", &format!("/api/orders/{id}/shipments")).bearer(&token(OWNER, "")))
        .await;
    assert_eq!(listed.status, 200, "{listed:?}");
    let shipments = listed.body["shipments"].as_array().unwrap();
    assert_eq!(shipments.len(), 2);
    assert_eq!(shipments[0]["shipment_id"], first.body["shipment_id"]);
    assert_eq!(shipments[1]["shipment_id"], second.body["shipment_id"]);
    let stranger = stack
        .send(Call::new("GET", &format!("/api/orders/{id}/shipments")).bearer(&token("eve", "")))
        .await;
    assert_eq!(stranger.status, 404, "{stranger:?}");

    // A carrier that never reports: the admin's `delivered` delivers every parcel.
    let delivered = stack
        .send(
            Call::new("PUT", &format!("/api/orders/{id}/status"))
                .bearer(&admin())
                .json(&json!({"status": "delivered", "reason": "courier confirmed by phone"})),
        )
        .await;
    assert_eq!(delivered.status, 200, "{delivered:?}");
    assert_eq!(
        line_counts(&delivered.body),
        [("p001".into(), 2, 2), ("p002".into(), 1, 1)]
    );
    let listed = stack
        .send(Call::new("GET", &format!("/api/orders/{id}/shipments")).bearer(&admin()))
        .await;
    for shipment in listed.body["shipments"].as_array().unwrap() {
        assert_eq!(shipment["status"], "delivered", "{shipment}");
        assert_eq!(shipment["tracking_history"][0]["status"], "DELIVERED");
    }

    // One event per change: the first parcel is `order.shipment_created`, the one
    // that ships the rest is `order.shipped`, naming it.
    let events = events(&stack).await;
    assert_eq!(
        detail_types(&events),
        [
            "order.created",
            "order.confirmed",
            "order.shipment_created",
            "order.shipped",
            "order.delivered"
        ]
    );
    assert_eq!(
        events[2].shipment_id.as_deref(),
        first.body["shipment_id"].as_str()
    );
    assert_eq!(
        events[3].shipment_id.as_deref(),
        second.body["shipment_id"].as_str()
    );
    let shipped = events[3].order.value();
    assert_eq!(shipped["shipments"][0]["carrier"], "usps");
    assert_eq!(
        shipped["shipments"][0]["tracking_number"],
        "9400111899223197428490"
    );
}

#[tokio::test]
async fn a_parcel_is_found_by_carrier_and_tracking_number_and_its_goods_leave_the_stock() {
    let stack = Stack::new().await;
    let id = confirmed_order(&stack, "tracked").await;
    let reply = stack
        .send(ship(
            &id,
            &json!({"items": [{"product_id": "p002", "quantity": 1}], "carrier": "ups", "tracking_number": "1Z999AA10123456784"}),
            &warehouse(),
        ))
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let shipment = ShipmentId::parse(reply.body["shipment_id"].as_str().unwrap()).unwrap();
    let order_id = OrderId::parse(&id).unwrap();

    let store = DynamoOrderStore::new(stack.dynamodb.clone(), &stack.table);
    let found = store
        .find_tracking("ups", "1Z999AA10123456784")
        .await
        .unwrap();
    assert_eq!(found, vec![TrackingOf::Parcel(order_id.clone(), shipment)]);
    assert!(
        store
            .find_tracking("usps", "1Z999AA10123456784")
            .await
            .unwrap()
            .is_empty()
    );

    // The order's whole reservation was made when its first goods left (fulfillment,
    // coming later, finds it made).
    let inventory = DynamoInventory::new(stack.dynamodb.clone(), &stack.table);
    assert!(inventory.reservation(&order_id).await.unwrap().is_some());
    assert_eq!(inventory.available("p001").await.unwrap(), Some(8));
    assert_eq!(inventory.available("p002").await.unwrap(), Some(9));
}

#[tokio::test]
async fn bad_shipments_are_refused_naming_the_line_and_write_nothing() {
    let stack = Stack::new().await;
    let id = confirmed_order(&stack, "refusals").await;
    let before = stack.stored_order(&id).await.unwrap();

    let cases: Vec<(Value, String, u16, &str, Vec<&str>)> = vec![
        (
            json!({"items": [{"product_id": "p404", "quantity": 1}]}),
            admin(),
            400,
            "validation_failed",
            vec!["items[0].product_id"],
        ),
        (
            json!({"items": [{"product_id": "p001", "quantity": 0}]}),
            admin(),
            400,
            "validation_failed",
            vec!["items[0].quantity"],
        ),
        (
            json!({"items": [{"product_id": "p002", "quantity": 1}, {"product_id": "p001", "quantity": 3}]}),
            admin(),
            409,
            "quantity_exceeds_unshipped",
            vec!["items[1].quantity"],
        ),
        (
            json!({"items": [{"product_id": "p001", "quantity": 1}, {"product_id": "p001", "quantity": 1}]}),
            admin(),
            400,
            "validation_failed",
            vec!["items[1].product_id"],
        ),
        (
            json!({"items": []}),
            admin(),
            400,
            "validation_failed",
            vec!["items"],
        ),
        (
            json!({"items": [{"product_id": "p001", "quantity": -1}]}),
            admin(),
            400,
            "validation_failed",
            vec!["items[0].quantity"],
        ),
        (
            json!({"tracking_number": "9400111899223197428490"}),
            admin(),
            400,
            "validation_failed",
            vec!["carrier"],
        ),
        (
            json!({"carrier": "us ps", "tracking_number": "94 00"}),
            admin(),
            400,
            "validation_failed",
            vec!["carrier", "tracking_number"],
        ),
        (
            json!({"box": true}),
            admin(),
            400,
            "validation_failed",
            vec!["box"],
        ),
        (json!({}), token(OWNER, ""), 403, "forbidden", vec![]),
    ];
    for (body, bearer, status, code, fields) in cases {
        let reply = stack.send(ship(&id, &body, &bearer)).await;
        assert_eq!(
            (reply.status, reply.code()),
            (status, code),
            "{body}: {reply:?}"
        );
        assert_eq!(reply.error_fields(), fields, "{body}: {reply:?}");
    }
    let too_many = stack
        .send(ship(
            &id,
            &json!({"items": [{"product_id": "p001", "quantity": 3}]}),
            &admin(),
        ))
        .await;
    assert_eq!(too_many.body["product_id"], "p001");
    assert_eq!(too_many.body["unshipped"], 2);

    // Unknown orders and a pending one.
    let unknown = stack
        .send(ship("ORD0000000000000000", &json!({}), &admin()))
        .await;
    assert_eq!((unknown.status, unknown.code()), (404, "order_not_found"));
    let pending = stack.order_for(OWNER, "still-pending").await;
    let reply = stack.send(ship(&pending, &json!({}), &admin())).await;
    assert_eq!(
        (reply.status, reply.code()),
        (409, "order_not_shippable"),
        "{reply:?}"
    );
    assert_eq!(reply.body["current_status"], "pending");

    // Nothing of any of them was written.
    assert_eq!(stack.stored_order(&id).await.unwrap(), before);
    let tracking = stack
        .all_items()
        .await
        .into_iter()
        .filter(|i| i["PK"].as_s().unwrap().starts_with("TRACKING#"))
        .count();
    assert_eq!(tracking, 0);
}

#[tokio::test]
async fn an_idempotency_key_makes_one_parcel_however_often_and_concurrently_it_is_sent() {
    let stack = Arc::new(Stack::new().await);
    let id = confirmed_order(&stack, "idempotent").await;
    let body = json!({"items": [{"product_id": "p001", "quantity": 1}], "carrier": "usps", "tracking_number": "9400100000000000000001"});
    let call = ship(&id, &body, &warehouse()).header("idempotency-key", "parcel-1");

    let replies = futures_util::future::join_all((0..5).map(|_| {
        let (stack, call) = (stack.clone(), call.clone());
        async move { stack.send(call).await }
    }))
    .await;
    let ids: std::collections::BTreeSet<&str> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, 201, "{r:?}");
            r.body["shipment_id"].as_str().unwrap()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{replies:?}");
    let fresh = replies
        .iter()
        .filter(|r| r.header("idempotent-replayed").is_none())
        .count();
    assert_eq!(fresh, 1, "{replies:?}");

    // Later, the same again: the same parcel, replayed.
    let again = stack.send(call).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body["shipment_id"].as_str(), ids.first().copied());

    // The same key with another body.
    let other = stack
        .send(
            ship(
                &id,
                &json!({"items": [{"product_id": "p002", "quantity": 1}]}),
                &warehouse(),
            )
            .header("idempotency-key", "parcel-1"),
        )
        .await;
    assert_eq!(
        (other.status, other.code()),
        (422, "idempotency_key_reused"),
        "{other:?}"
    );

    let view = order(&stack, &id).await.body;
    assert_eq!(view["shipments"].as_array().unwrap().len(), 1, "{view}");
    assert_eq!(
        line_counts(&view),
        [("p001".into(), 1, 0), ("p002".into(), 0, 0)]
    );
}

#[tokio::test]
async fn concurrent_parcels_never_ship_a_line_twice() {
    let stack = Arc::new(Stack::new().await);
    let id = confirmed_order(&stack, "racing-parcels").await;
    // Three parcels of one cable each, for two cables.
    let replies = futures_util::future::join_all((0..3).map(|n| {
        let stack = stack.clone();
        let call = ship(
            &id,
            &json!({"items": [{"product_id": "p001", "quantity": 1}], "carrier": "usps", "tracking_number": format!("94001000000000000000{n}")}),
            &admin(),
        );
        async move { stack.send(call).await }
    }))
    .await;
    let made = replies.iter().filter(|r| r.status == 201).count();
    assert_eq!(made, 2, "{replies:?}");
    for refused in replies.iter().filter(|r| r.status != 201) {
        assert_eq!(
            (refused.status, refused.code()),
            (409, "quantity_exceeds_unshipped"),
            "{refused:?}"
        );
    }
    let view = order(&stack, &id).await.body;
    assert_eq!(view["shipments"].as_array().unwrap().len(), 2);
    assert_eq!(line_counts(&view)[0], ("p001".into(), 2, 0));
}

#[tokio::test]
async fn shipping_by_status_ships_everything_left_as_one_parcel() {
    let stack = Stack::new().await;
    let id = confirmed_order(&stack, "by-status").await;
    let first = stack
        .send(ship(
            &id,
            &json!({"items": [{"product_id": "p002", "quantity": 1}]}),
            &admin(),
        ))
        .await;
    assert_eq!(first.status, 201, "{first:?}");

    let reply = stack
        .send(
            Call::new("PUT", &format!("/api/orders/{id}/status"))
                .bearer(&warehouse())
                .json(&json!({"status": "shipped", "carrier": "UPS", "tracking_number": "1Z999AA10123456784"})),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["status"], "shipped");
    // The order's own fields as before; the parcel has the carrier's token.
    assert_eq!(reply.body["carrier"], "UPS");
    assert_eq!(reply.body["tracking_number"], "1Z999AA10123456784");
    let shipments = reply.body["shipments"].as_array().unwrap();
    assert_eq!(shipments.len(), 2);
    assert_eq!(shipments[1]["carrier"], "ups");
    assert_eq!(
        shipments[1]["items"],
        json!([{"product_id": "p001", "quantity": 2}])
    );
    let store = DynamoOrderStore::new(stack.dynamodb.clone(), &stack.table);
    let found = store
        .find_tracking("ups", "1Z999AA10123456784")
        .await
        .unwrap();
    assert_eq!(found.len(), 1);

    // The same move again is the no-op it always was.
    let again = stack
        .send(
            Call::new("PUT", &format!("/api/orders/{id}/status"))
                .bearer(&warehouse())
                .json(&json!({"status": "shipped"})),
        )
        .await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.body["version"], reply.body["version"]);
    assert_eq!(again.body["shipments"].as_array().unwrap().len(), 2);
}

// ----------------------------------------------------------------------------------
// Labels bought through Shippo (the stand-in `make test` starts)
// ----------------------------------------------------------------------------------

pub(crate) fn shippo_url() -> String {
    std::env::var("SHIPPO_API_URL").expect("SHIPPO_API_URL: run with `make test`")
}

/// The stand-in's count of labels bought whose metadata names `shipment_id`.
async fn labels_bought(shipment_id: &str) -> u64 {
    // Shipment ids are URL-safe as they are.
    let text = reqwest::Client::new()
        .get(format!(
            "{}/_control/labels?metadata_contains={shipment_id}",
            shippo_url()
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let answer: Value = serde_json::from_str(&text).unwrap();
    answer["purchased"].as_u64().unwrap()
}

/// Makes the stand-in's next matching call fail (`when`: before doing it, or after).
pub(crate) async fn fault(path: &str, contains: &str, when: &str) {
    let reply = reqwest::Client::new()
        .post(format!("{}/_control/faults", shippo_url()))
        .header("content-type", "application/json")
        .body(json!({"method": "POST", "path": path, "contains": contains, "status": 503, "times": 1, "when": when}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 201);
}

async fn shippo_stack() -> Stack {
    Stack::with_settings(orders_tests::with_shippo).await
}

/// The shipment a key makes on an order, as the service names it.
fn keyed_shipment(order_id: &str, caller: &str, key: &str) -> String {
    ShipmentId::for_request(order_id, caller, key).to_string()
}

#[tokio::test]
async fn a_label_is_bought_at_the_cheapest_rate_or_the_service_level_asked_for() {
    let stack = shippo_stack().await;
    let id = confirmed_order(&stack, "label-cheapest").await;
    let reply = stack
        .send(
            ship(
                &id,
                &json!({"items": [{"product_id": "p001", "quantity": 2}]}),
                &warehouse(),
            )
            .header("idempotency-key", "label-1"),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(reply.body["status"], "label_created");
    assert_eq!(reply.body["carrier"], "usps");
    assert_eq!(reply.body["servicelevel"], "usps_ground_advantage");
    assert!(reply.text.contains("\"amount\":6.05"), "{}", reply.text);
    assert_eq!(reply.body["cost"]["currency"], "USD");
    assert!(
        reply.body["tracking_number"]
            .as_str()
            .unwrap()
            .starts_with("9400")
    );
    assert!(reply.body["label_url"].as_str().unwrap().ends_with(".pdf"));
    assert!(reply.body["tracking_url"].is_string());
    let shipment_id = keyed_shipment(&id, WAREHOUSE, "label-1");
    assert_eq!(reply.body["shipment_id"], shipment_id.as_str());
    assert_eq!(labels_bought(&shipment_id).await, 1);

    // The carrier reports on it by its tracking number.
    let store = DynamoOrderStore::new(stack.dynamodb.clone(), &stack.table);
    let found = store
        .find_tracking("usps", reply.body["tracking_number"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(found.len(), 1);

    let priority = stack
        .send(ship(&id, &json!({"servicelevel": "usps_priority", "parcel": {"length": 12, "width": "9", "height": "6", "distance_unit": "in", "weight": "3", "mass_unit": "lb"}}), &admin()))
        .await;
    assert_eq!(priority.status, 201, "{priority:?}");
    assert_eq!(priority.body["servicelevel"], "usps_priority");
    assert_eq!(order(&stack, &id).await.body["status"], "shipped");
}

#[tokio::test]
async fn retried_and_concurrent_requests_buy_one_label() {
    let stack = Arc::new(shippo_stack().await);
    let id = confirmed_order(&stack, "label-once").await;
    let call = ship(&id, &json!({}), &warehouse()).header("idempotency-key", "label-once");
    let replies = futures_util::future::join_all((0..4).map(|_| {
        let (stack, call) = (stack.clone(), call.clone());
        async move { stack.send(call).await }
    }))
    .await;
    for reply in &replies {
        assert!(
            reply.status == 201 || (reply.status, reply.code()) == (409, "label_in_progress"),
            "{reply:?}"
        );
    }
    // Whoever was told to retry gets the parcel the first one made.
    let again = stack.send(call).await;
    assert_eq!(again.status, 201, "{again:?}");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let shipment_id = keyed_shipment(&id, WAREHOUSE, "label-once");
    assert_eq!(again.body["shipment_id"], shipment_id.as_str());
    assert_eq!(labels_bought(&shipment_id).await, 1);
    assert_eq!(
        order(&stack, &id).await.body["shipments"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_label_whose_answer_was_lost_is_found_not_bought_again() {
    let stack = shippo_stack().await;
    let id = confirmed_order(&stack, "label-lost").await;
    let shipment_id = keyed_shipment(&id, WAREHOUSE, "label-lost");
    // Shippo buys the label, and its answer never arrives: as if the function died
    // between Shippo's answer and its own write.
    fault("/transactions", &shipment_id, "after").await;
    let call = ship(&id, &json!({}), &warehouse()).header("idempotency-key", "label-lost");
    let lost = stack.send(call.clone()).await;
    assert_eq!(
        (lost.status, lost.code()),
        (503, "shipping_provider_unavailable"),
        "{lost:?}"
    );
    assert!(lost.header("retry-after").is_some());
    assert_eq!(order(&stack, &id).await.body["shipments"], json!([]));
    assert_eq!(labels_bought(&shipment_id).await, 1);

    let retried = stack.send(call).await;
    assert_eq!(retried.status, 201, "{retried:?}");
    assert_eq!(retried.body["status"], "label_created");
    assert_eq!(labels_bought(&shipment_id).await, 1);
    assert_eq!(order(&stack, &id).await.body["status"], "shipped");
}

#[tokio::test]
async fn shippo_refusals_and_outages_record_nothing() {
    let stack = shippo_stack().await;
    // No carrier quotes zip 00000 (the stand-in's test address).
    stack
        .put_cart("nowhere", OWNER, &[("p001", "USB Cable", 1, "10.00")])
        .await;
    let mut body = checkout("nowhere");
    body["shipping_address"]["zip"] = json!("00000");
    let reply = stack
        .send(
            Call::new("POST", "/api/orders")
                .bearer(&token(OWNER, ""))
                .json(&body),
        )
        .await;
    let id = reply.body["order_id"].as_str().unwrap().to_string();
    stack.advance(&id, &["confirmed"]).await;
    let before = stack.stored_order(&id).await.unwrap();
    let refused = stack.send(ship(&id, &json!({}), &admin())).await;
    assert_eq!(
        (refused.status, refused.code()),
        (422, "label_refused"),
        "{refused:?}"
    );
    let messages = refused.body["messages"].as_array().unwrap();
    assert!(
        messages
            .iter()
            .any(|m| m.as_str().unwrap().contains("No rates")),
        "{messages:?}"
    );
    let unknown_level = stack
        .send(ship(
            &id,
            &json!({"servicelevel": "fedex_overnight"}),
            &admin(),
        ))
        .await;
    assert_eq!(unknown_level.status, 422, "{unknown_level:?}");
    assert_eq!(stack.stored_order(&id).await.unwrap(), before);

    // An outage: 503, and nothing recorded either.
    let id = confirmed_order(&stack, "label-outage").await;
    let shipment_id = keyed_shipment(&id, "admin", "outage");
    fault("/shipments", &shipment_id, "before").await;
    let before = stack.stored_order(&id).await.unwrap();
    let down = stack
        .send(ship(&id, &json!({}), &admin()).header("idempotency-key", "outage"))
        .await;
    assert_eq!(
        (down.status, down.code()),
        (503, "shipping_provider_unavailable"),
        "{down:?}"
    );
    assert_eq!(stack.stored_order(&id).await.unwrap(), before);
    assert_eq!(labels_bought(&shipment_id).await, 0);
}

#[tokio::test]
async fn a_hand_entered_number_is_registered_with_shippo() {
    let stack = shippo_stack().await;
    let id = confirmed_order(&stack, "hand-tracked").await;
    let number = format!("9400{}", &OrderId::parse(&id).unwrap().as_str()[3..]);
    let reply = stack
        .send(ship(
            &id,
            &json!({"carrier": "usps", "tracking_number": number}),
            &admin(),
        ))
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(reply.body["status"], "in_transit");
    assert_eq!(
        labels_bought(reply.body["shipment_id"].as_str().unwrap()).await,
        0
    );
    let text = reqwest::Client::new()
        .get(format!("{}/tracks/usps/{number}", shippo_url()))
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
    let track: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(track["metadata"], reply.body["shipment_id"], "{track}");
}

// ----------------------------------------------------------------------------------
// Shippo's tracking webhook
// ----------------------------------------------------------------------------------

/// Moves `number` at the stand-in (Shippo's test mode), sending nothing; answers the
/// `track_updated` body Shippo would send.
pub(crate) async fn carrier_moves(carrier: &str, number: &str, status: &str, date: &str) -> Value {
    let text = reqwest::Client::new()
        .post(format!(
            "{}/_control/tracks/{carrier}/{number}",
            shippo_url()
        ))
        .header("content-type", "application/json")
        .body(json!({"status": status, "status_date": date, "deliver": false}).to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let answer: Value = serde_json::from_str(&text).unwrap();
    answer["webhook"].clone()
}

pub(crate) fn webhook(body: &Value, token: &str) -> Call {
    Call::new(
        "POST",
        &format!("/api/shipping/shippo/webhook?token={token}"),
    )
    .json(body)
}

pub(crate) fn webhook_token() -> String {
    std::env::var("SHIPPO_WEBHOOK_TOKEN").unwrap()
}

/// A number no other test uses.
fn tracking_number(order_id: &str, n: u8) -> String {
    format!("9400{n}{}", &order_id[3..])
}

async fn parcel_statuses(stack: &Stack, id: &str) -> Vec<String> {
    let listed = stack
        .send(Call::new("GET", &format!("/api/orders/{id}/shipments")).bearer(&admin()))
        .await;
    listed.body["shipments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_carriers_tracking_delivers_the_order_once_every_parcel_is_delivered() {
    let stack = shippo_stack().await;
    let id = confirmed_order(&stack, "tracked-delivery").await;
    let (one, two) = (tracking_number(&id, 1), tracking_number(&id, 2));
    for (items, number) in [
        (json!([{"product_id": "p001", "quantity": 2}]), &one),
        (json!([{"product_id": "p002", "quantity": 1}]), &two),
    ] {
        let reply = stack
            .send(ship(
                &id,
                &json!({"items": items, "carrier": "usps", "tracking_number": number}),
                &admin(),
            ))
            .await;
        assert_eq!(reply.status, 201, "{reply:?}");
    }
    let token = webhook_token();
    let send = |body: Value| stack.send(webhook(&body, &token));

    let moved = send(carrier_moves("usps", &one, "DELIVERED", "2026-12-03T12:00:00Z").await).await;
    assert_eq!(
        (moved.status, moved.body["outcome"].clone()),
        (200, json!("recorded")),
        "{moved:?}"
    );
    let view = order(&stack, &id).await.body;
    assert_eq!(view["status"], "shipped");
    assert_eq!(view["shipping_status"], "partially_delivered");
    assert_eq!(
        line_counts(&view),
        [("p001".into(), 2, 2), ("p002".into(), 1, 0)]
    );
    let version = view["version"].clone();

    // Shippo resends: the same report is nothing new.
    let resent = send(carrier_moves("usps", &one, "DELIVERED", "2026-12-03T12:00:00Z").await).await;
    assert_eq!(resent.body["outcome"], "duplicate", "{resent:?}");
    // A late scan, older than the delivery: history only.
    let late = send(carrier_moves("usps", &one, "TRANSIT", "2026-12-02T08:00:00Z").await).await;
    assert_eq!(late.body["outcome"], "recorded", "{late:?}");
    assert_eq!(
        parcel_statuses(&stack, &id).await,
        ["delivered", "in_transit"]
    );
    let view = order(&stack, &id).await.body;
    assert_eq!(view["version"], version.as_u64().unwrap() + 1);

    let last = send(carrier_moves("usps", &two, "DELIVERED", "2026-12-03T15:00:00Z").await).await;
    assert_eq!(last.body["outcome"], "recorded", "{last:?}");
    let view = order(&stack, &id).await.body;
    assert_eq!(view["status"], "delivered");
    assert_eq!(view["shipping_status"], "delivered");
    let listed = stack
        .send(Call::new("GET", &format!("/api/orders/{id}/shipments")).bearer(&admin()))
        .await;
    let history: Vec<&str> = listed.body["shipments"][0]["tracking_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["TRANSIT", "DELIVERED"]);

    let events = events(&stack).await;
    assert_eq!(
        detail_types(&events)[2..],
        [
            "order.shipment_created",
            "order.shipped",
            "order.shipment_updated",
            "order.shipment_updated",
            "order.delivered"
        ]
    );
    assert_eq!(events.last().unwrap().actor, "shippo");
}

#[tokio::test]
async fn a_forged_webhook_changes_nothing() {
    let stack = shippo_stack().await;
    let id = confirmed_order(&stack, "forged").await;
    let number = tracking_number(&id, 1);
    let reply = stack
        .send(ship(
            &id,
            &json!({"carrier": "usps", "tracking_number": number}),
            &admin(),
        ))
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let before = stack.stored_order(&id).await.unwrap();

    // Shippo says TRANSIT; the body says DELIVERED.
    let mut body = carrier_moves("usps", &number, "TRANSIT", "2026-12-03T09:00:00Z").await;
    body["data"]["tracking_status"]["status"] = json!("DELIVERED");
    for token in ["", "wrong-token-of-some-length", &webhook_token()[1..]] {
        let refused = stack.send(webhook(&body, token)).await;
        assert_eq!(
            (refused.status, refused.code()),
            (401, "invalid_webhook_token"),
            "{refused:?}"
        );
    }
    let no_token = stack
        .send(Call::new("POST", "/api/shipping/shippo/webhook").json(&body))
        .await;
    assert_eq!(no_token.status, 401, "{no_token:?}");
    assert_eq!(stack.stored_order(&id).await.unwrap(), before);

    let believed = stack.send(webhook(&body, &webhook_token())).await;
    assert_eq!(believed.status, 200, "{believed:?}");
    assert_eq!(parcel_statuses(&stack, &id).await, ["in_transit"]);
    let view = order(&stack, &id).await.body;
    assert_eq!(view["status"], "shipped");
    assert_eq!(view["shipping_status"], "shipped");

    // Unknown numbers are ignored; a malformed body is 400.
    let mut unknown = body.clone();
    unknown["data"]["tracking_number"] = json!("9400999999999999999999");
    let ignored = stack.send(webhook(&unknown, &webhook_token())).await;
    assert_eq!(
        (ignored.status, ignored.body["outcome"].clone()),
        (200, json!("ignored"))
    );
    for bad in [
        json!({"event": "track_updated"}),
        json!({"event": "track_updated", "data": {"carrier": "usps"}}),
        json!([1]),
    ] {
        let reply = stack.send(webhook(&bad, &webhook_token())).await;
        assert_eq!(reply.status, 400, "{bad}: {reply:?}");
    }
}

#[tokio::test]
async fn a_returned_parcel_is_an_exception_for_an_admin() {
    let stack = shippo_stack().await;
    let id = confirmed_order(&stack, "returned").await;
    let number = tracking_number(&id, 1);
    let reply = stack
        .send(ship(&id, &json!({"items": [{"product_id": "p002", "quantity": 1}], "carrier": "usps", "tracking_number": number}), &admin()))
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let moved = stack
        .send(webhook(
            &carrier_moves("usps", &number, "RETURNED", "2026-12-03T10:00:00Z").await,
            &webhook_token(),
        ))
        .await;
    assert_eq!(moved.status, 200, "{moved:?}");
    let view = order(&stack, &id).await.body;
    assert_eq!(view["status"], "confirmed");
    assert_eq!(view["shipping_status"], "exception");
    assert_eq!(parcel_statuses(&stack, &id).await, ["returned"]);
}

#[tokio::test]
async fn a_label_is_voided_until_the_carrier_has_it() {
    let stack = shippo_stack().await;
    let id = confirmed_order(&stack, "voided").await;
    let bought = stack.send(ship(&id, &json!({}), &admin())).await;
    assert_eq!(bought.status, 201, "{bought:?}");
    let shipment_id = bought.body["shipment_id"].as_str().unwrap().to_string();
    assert_eq!(order(&stack, &id).await.body["status"], "shipped");
    let void = |bearer: String| {
        stack.send(
            Call::new(
                "POST",
                &format!("/api/orders/{id}/shipments/{shipment_id}/void"),
            )
            .bearer(&bearer),
        )
    };
    assert_eq!(void(warehouse()).await.status, 403);
    let voided = void(admin()).await;
    assert_eq!(voided.status, 200, "{voided:?}");
    assert_eq!(voided.body["status"], "confirmed");
    assert_eq!(voided.body["shipments"], json!([]));
    assert_eq!(
        line_counts(&voided.body),
        [("p001".into(), 0, 0), ("p002".into(), 0, 0)]
    );
    let labels: Value = serde_json::from_str(
        &reqwest::Client::new()
            .get(format!(
                "{}/_control/labels?metadata_contains={shipment_id}",
                shippo_url()
            ))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (labels["purchased"].as_u64(), labels["refunded"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(void(admin()).await.code(), "shipment_not_found");
    let events = events(&stack).await;
    let last = events.last().unwrap();
    assert_eq!(last.detail_type(), "order.shipment_updated");
    assert_eq!(last.shipment_change.as_deref(), Some("voided"));

    // Once the carrier has the parcel, it stays.
    let again = stack.send(ship(&id, &json!({}), &admin())).await;
    assert_eq!(again.status, 201, "{again:?}");
    let number = again.body["tracking_number"].as_str().unwrap().to_string();
    let moved = stack
        .send(webhook(
            &carrier_moves("usps", &number, "TRANSIT", "2026-12-03T09:00:00Z").await,
            &webhook_token(),
        ))
        .await;
    assert_eq!(moved.status, 200, "{moved:?}");
    let refused = stack
        .send(
            Call::new(
                "POST",
                &format!(
                    "/api/orders/{id}/shipments/{}/void",
                    again.body["shipment_id"].as_str().unwrap()
                ),
            )
            .bearer(&admin()),
        )
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (409, "shipment_not_voidable"),
        "{refused:?}"
    );
}
