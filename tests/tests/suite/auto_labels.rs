//! Automatic labels (`SHIPPING_LABELS=auto`): the fulfillment consumer buys a confirmed
//! order's label once its stock is reserved, against the emulator and the Shippo
//! stand-in `make test` starts. Each test checks what users rely on: labels bought at
//! Shippo (the stand-in counts them), the stored order, the events its changes
//! become, the answers of `GET /api/orders/{id}`, and which messages fail. Also here:
//! a label whose parcel loses its race is refunded.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use orders::adapters::dynamo::DynamoOrderStore;
use orders::adapters::dynamo::inventory::DynamoInventory;
use orders::adapters::dynamo::stream::recorded_change;
use orders::adapters::http::shippo::{ShippoAddress, ShippoLabels};
use orders::domain::fulfillment::{Parcel, TrackingEvent};
use orders::domain::{Order, OrderId, OrderStatus, Principal, ShippingAddress};
use orders::events::{Envelope, OrderEvent, SOURCE};
use orders::inbound::sqs;
use orders::ports::{
    Inventory, Label, LabelDirection, LabelError, LabelProvider, LabelRate, Metric, MetricSet,
    Metrics, OrderStore,
};
use orders::services::fulfillment::Fulfillment;
use orders::services::shipping::{Labels, ShipmentError, ShipmentRequest, ShippingService};
use orders_tests::{ADMIN, Call, FULFILL, Stack, checkout, token, with_shippo};
use serde_json::{Value, json};

const OWNER: &str = "dana";

fn admin() -> String {
    token("admin", ADMIN)
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name}: run with `make test`"))
}

/// Figures the services report, kept to be counted.
#[derive(Default)]
struct Recorded(Mutex<Vec<MetricSet>>);

impl Metrics for Recorded {
    fn record(&self, set: MetricSet) {
        self.0.lock().unwrap().push(set);
    }
}

impl Recorded {
    fn total(&self, metric: Metric) -> f64 {
        self.0
            .lock()
            .unwrap()
            .iter()
            .flat_map(|set| set.values.iter())
            .filter(|(m, _)| *m == metric)
            .map(|(_, v)| v)
            .sum()
    }
}

/// The stand-in as the deployed functions reach it.
fn shippo() -> ShippoLabels {
    let from: ShippoAddress = serde_json::from_str(&env("SHIPPO_ADDRESS_FROM")).unwrap();
    ShippoLabels::new(&env("SHIPPO_API_URL"), env("SHIPPO_API_TOKEN"), from).unwrap()
}

/// The shipping service on the stack's table, buying labels through `provider`.
fn shipping_service(
    stack: &Stack,
    provider: Arc<dyn LabelProvider>,
    metrics: Arc<Recorded>,
) -> ShippingService {
    let store = Arc::new(DynamoOrderStore::new(stack.dynamodb.clone(), &stack.table));
    let inventory = Arc::new(DynamoInventory::new(stack.dynamodb.clone(), &stack.table));
    ShippingService::new(store.clone(), store.clone(), inventory, metrics).with_labels(Labels {
        provider,
        claims: store,
        default_parcel: Parcel::default(),
    })
}

/// The fulfillment consumer with `SHIPPING_LABELS=auto`, built as `wiring` builds it
/// but reporting its figures here.
fn automatic(stack: &Stack, metrics: Arc<Recorded>) -> Fulfillment {
    let store = Arc::new(DynamoOrderStore::new(stack.dynamodb.clone(), &stack.table));
    let inventory = Arc::new(DynamoInventory::new(stack.dynamodb.clone(), &stack.table));
    let shipping = shipping_service(stack, Arc::new(shippo()), metrics.clone());
    Fulfillment::new(store, inventory)
        .with_metrics(metrics)
        .with_automatic_labels(Arc::new(shipping))
}

async fn shippo_stack() -> Stack {
    Stack::with_settings(with_shippo).await
}

/// A confirmed order of two cables to `zip` (the stand-in refuses some), with stock.
async fn confirmed_order(stack: &Stack, cart_id: &str, zip: &str) -> String {
    stack
        .put_cart(cart_id, OWNER, &[("p001", "USB Cable", 2, "10.00")])
        .await;
    let mut body = checkout(cart_id);
    body["shipping_address"]["zip"] = json!(zip);
    let reply = stack
        .send(
            Call::new("POST", "/api/orders")
                .bearer(&token(OWNER, ""))
                .json(&body),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let id = reply.body["order_id"].as_str().unwrap().to_string();
    stack.advance(&id, &["confirmed"]).await;
    DynamoInventory::new(stack.dynamodb.clone(), &stack.table)
        .set_stock("p001", 10)
        .await
        .unwrap();
    id
}

async fn stored(stack: &Stack, id: &str) -> Order {
    DynamoOrderStore::new(stack.dynamodb.clone(), &stack.table)
        .get(&OrderId::parse(id).unwrap())
        .await
        .unwrap()
        .expect("order stored")
}

/// The `order.confirmed` message the pipeline delivers for an order just confirmed.
async fn confirmed_message(stack: &Stack, id: &str) -> SqsMessage {
    let after = stored(stack, id).await;
    assert_eq!(after.status, OrderStatus::Confirmed);
    let mut before = after.clone();
    before.status = OrderStatus::Pending;
    before.version -= 1;
    let detail = OrderEvent::for_change(Some(&before), &after).unwrap();
    let envelope = Envelope {
        id: format!("evt-{}", detail.event_id),
        detail_type: detail.detail_type(),
        source: SOURCE.to_string(),
        time: detail.occurred_at.clone(),
        detail,
    };
    let mut message = SqsMessage::default();
    message.message_id = Some(format!("msg-{}", envelope.detail.event_id));
    message.body = Some(serde_json::to_string(&envelope).unwrap());
    message.event_source = Some("aws:sqs".into());
    message
}

/// Hands `message` to the consumer as one Lambda invocation; the ids that failed.
async fn handle(fulfillment: &Fulfillment, message: &SqsMessage) -> Vec<String> {
    let mut event = SqsEvent::default();
    event.records = vec![message.clone()];
    let response: SqsBatchResponse = sqs::fulfill(fulfillment, event).await;
    response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect()
}

/// (bought, refunded) at the stand-in, of labels whose metadata names `text`.
async fn labels(text: &str) -> (u64, u64) {
    let body = reqwest::Client::new()
        .get(format!(
            "{}/_control/labels?metadata_contains={text}",
            env("SHIPPO_API_URL")
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let answer: Value = serde_json::from_str(&body).unwrap();
    (
        answer["purchased"].as_u64().unwrap(),
        answer["refunded"].as_u64().unwrap(),
    )
}

/// Makes the stand-in's next matching Shippo call answer 503 (`when`: before doing
/// it, or after: done, its answer lost).
async fn fault(path: &str, contains: &str, when: &str) {
    let reply = reqwest::Client::new()
        .post(format!("{}/_control/faults", env("SHIPPO_API_URL")))
        .header("content-type", "application/json")
        .body(json!({"method": "POST", "path": path, "contains": contains, "status": 503, "times": 1, "when": when}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 201);
}

/// The detail-types of the order's events, in order, each checked against the schema.
async fn detail_types(stack: &Stack, id: &str) -> Vec<(String, Option<String>)> {
    let records = crate::publisher::stream_records(stack).await;
    let batch: Event = serde_json::from_value(json!({ "Records": records })).unwrap();
    batch
        .records
        .iter()
        .filter_map(|r| recorded_change(r).unwrap())
        .filter_map(|c| OrderEvent::for_change(c.before.as_ref(), &c.after))
        .filter(|e| e.order_id == id)
        .map(|event| {
            let value: Value =
                serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
            crate::publisher::assert_valid("OrderEvent", &value);
            (event.detail_type(), event.reason.clone())
        })
        .collect()
}

async fn view(stack: &Stack, id: &str, bearer: &str) -> Value {
    let reply = stack
        .send(Call::new("GET", &format!("/api/orders/{id}")).bearer(bearer))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body
}

// ----------------------------------------------------------------------------------
// SHIPPING_LABELS=auto
// ----------------------------------------------------------------------------------

#[tokio::test]
async fn one_label_is_bought_under_a_redelivered_message_and_a_concurrent_admin_call() {
    let stack = shippo_stack().await;
    let metrics = Arc::new(Recorded::default());
    let consumer = automatic(&stack, metrics.clone());
    let id = confirmed_order(&stack, "auto-once", "10001").await;
    let message = confirmed_message(&stack, &id).await;

    // Two deliveries of the message and an admin's own label, at once.
    let admin_call = stack.send(
        Call::new("POST", &format!("/api/orders/{id}/shipments"))
            .bearer(&admin())
            .json(&json!({})),
    );
    let (first, second, by_hand) = tokio::join!(
        handle(&consumer, &message),
        handle(&consumer, &message),
        admin_call
    );
    // Whoever found the label being bought is told to come back (409, a failed
    // message); nothing else fails.
    assert!(
        by_hand.status == 201
            || (by_hand.status, by_hand.code()) == (409, "label_in_progress")
            || (by_hand.status, by_hand.code()) == (409, "order_not_shippable"),
        "{by_hand:?}"
    );
    // The queue redelivers what failed until it is handled.
    let mut failed = [first, second].concat();
    for _ in 0..3 {
        if failed.is_empty() {
            break;
        }
        failed = handle(&consumer, &message).await;
    }
    assert!(failed.is_empty(), "{failed:?}");
    assert!(handle(&consumer, &message).await.is_empty());

    assert_eq!(labels(&id).await, (1, 0), "one label bought, none refunded");
    let order = stored(&stack, &id).await;
    assert_eq!(order.status, OrderStatus::Shipped);
    assert_eq!(order.shipments.len(), 1);
    assert_eq!(order.shipments[0].status.as_str(), "label_created");
    assert_eq!(metrics.total(Metric::LabelFailures), 0.0);
    // The consumer's own label: reserved and processing, then shipped with its parcel.
    if by_hand.status != 201 {
        let types: Vec<String> = detail_types(&stack, &id)
            .await
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert_eq!(
            types,
            [
                "order.created",
                "order.confirmed",
                "order.shipping_status_changed",
                "order.shipped"
            ]
        );
        assert_eq!(order.history[3].actor, "fulfillment");
    }
}

#[tokio::test]
async fn a_refused_label_leaves_the_order_label_failed_with_shippos_messages() {
    let stack = shippo_stack().await;
    let metrics = Arc::new(Recorded::default());
    let consumer = automatic(&stack, metrics.clone());
    // Zip 00001: the stand-in quotes, then refuses the purchase (an address USPS
    // cannot find), as Shippo does.
    let id = confirmed_order(&stack, "auto-refused", "00001").await;
    let message = confirmed_message(&stack, &id).await;

    assert!(
        handle(&consumer, &message).await.is_empty(),
        "a refusal is no retry"
    );

    let order = stored(&stack, &id).await;
    assert_eq!(
        (order.status, order.shipping_status.as_str(), order.version),
        (OrderStatus::Confirmed, "label_failed", 4)
    );
    assert!(order.shipments.is_empty());
    assert_eq!(labels(&id).await, (0, 0));
    assert_eq!(metrics.total(Metric::LabelFailures), 1.0);
    let events = detail_types(&stack, &id).await;
    let (last, reason) = events.last().unwrap();
    assert_eq!(last, "order.shipment_failed");
    assert!(
        reason
            .as_deref()
            .unwrap()
            .contains("USPS: The address as submitted could not be found"),
        "{reason:?}"
    );
    // Staff read Shippo's messages on the order; its customer does not.
    for bearer in [admin(), token("warehouse", FULFILL)] {
        let seen = view(&stack, &id, &bearer).await;
        assert_eq!(seen["shipping_status"], "label_failed");
        let messages = seen["label_failure"]["messages"].as_array().unwrap();
        assert!(
            messages[0]
                .as_str()
                .unwrap()
                .starts_with("USPS: The address as submitted could not be found"),
            "{seen}"
        );
        assert!(seen["label_failure"]["at"].is_string());
    }
    let owners = view(&stack, &id, &token(OWNER, "")).await;
    assert_eq!(owners["shipping_status"], "label_failed");
    assert!(owners.get("label_failure").is_none(), "{owners}");

    // Redelivered: nothing more bought, written or counted.
    assert!(handle(&consumer, &message).await.is_empty());
    assert_eq!(stored(&stack, &id).await.version, 4);
    assert_eq!(metrics.total(Metric::LabelFailures), 1.0);

    // A person ships it by hand; the refusal is behind it.
    let reply = stack
        .send(
            Call::new("POST", &format!("/api/orders/{id}/shipments"))
                .bearer(&admin())
                .json(&json!({"carrier": "usps", "tracking_number": "9400111899223197428499"})),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let seen = view(&stack, &id, &admin()).await;
    assert_eq!(
        (seen["status"].as_str(), seen["shipping_status"].as_str()),
        (Some("shipped"), Some("shipped"))
    );
    assert!(seen.get("label_failure").is_none(), "{seen}");
}

#[tokio::test]
async fn no_rate_for_the_address_is_a_refusal_too() {
    let stack = shippo_stack().await;
    let metrics = Arc::new(Recorded::default());
    let consumer = automatic(&stack, metrics.clone());
    // Zip 00000: no carrier quotes it (the stand-in's test address).
    let id = confirmed_order(&stack, "auto-no-rate", "00000").await;

    assert!(
        handle(&consumer, &confirmed_message(&stack, &id).await)
            .await
            .is_empty()
    );

    let order = stored(&stack, &id).await;
    assert_eq!(order.shipping_status.as_str(), "label_failed");
    let messages = &order.label_failure.as_ref().unwrap().messages;
    assert_eq!(messages[0], "no rate for this parcel", "{messages:?}");
    assert!(
        messages.iter().any(|m| m.contains("No rates")),
        "{messages:?}"
    );
    assert_eq!(labels(&id).await, (0, 0));
    assert_eq!(metrics.total(Metric::LabelFailures), 1.0);
}

#[tokio::test]
async fn a_shippo_outage_fails_the_message_and_a_retry_buys_the_label_once() {
    let stack = shippo_stack().await;
    let metrics = Arc::new(Recorded::default());
    let consumer = automatic(&stack, metrics.clone());
    let id = confirmed_order(&stack, "auto-outage", "10001").await;
    let message = confirmed_message(&stack, &id).await;
    let failed = vec![message.message_id.clone().unwrap()];

    // Shippo out before the quote: the message fails; the order waits, processing,
    // with no parcel and nothing bought.
    fault("/shipments", &id, "before").await;
    assert_eq!(handle(&consumer, &message).await, failed);
    let waiting = stored(&stack, &id).await;
    assert_eq!(
        (
            waiting.status,
            waiting.shipping_status.as_str(),
            waiting.version
        ),
        (OrderStatus::Confirmed, "processing", 3)
    );
    assert!(waiting.shipments.is_empty() && waiting.label_failure.is_none());
    assert_eq!(labels(&id).await, (0, 0));

    // Then the label bought and its answer lost: the message fails again, nothing
    // written.
    fault("/transactions", &id, "after").await;
    assert_eq!(handle(&consumer, &message).await, failed);
    assert_eq!(stored(&stack, &id).await, waiting);
    assert_eq!(labels(&id).await, (1, 0));

    // The next delivery finds that label instead of buying another.
    assert!(handle(&consumer, &message).await.is_empty());
    let order = stored(&stack, &id).await;
    assert_eq!(order.status, OrderStatus::Shipped);
    assert_eq!(order.shipments.len(), 1);
    assert_eq!(labels(&id).await, (1, 0));
    assert_eq!(metrics.total(Metric::LabelFailures), 0.0);
}

#[tokio::test]
async fn with_manual_labels_fulfillment_buys_none() {
    let stack = shippo_stack().await;
    // As deployed by default: Shippo on, SHIPPING_LABELS unset.
    let consumer = stack.wiring.fulfillment().unwrap();
    let id = confirmed_order(&stack, "auto-manual", "10001").await;

    assert!(
        handle(&consumer, &confirmed_message(&stack, &id).await)
            .await
            .is_empty()
    );

    let order = stored(&stack, &id).await;
    assert_eq!(
        (order.status, order.shipping_status.as_str()),
        (OrderStatus::Confirmed, "processing")
    );
    assert_eq!(
        order.history.last().unwrap().reason.as_deref(),
        Some("stock reserved; awaiting manual shipment")
    );
    assert!(order.shipments.is_empty());
    assert_eq!(labels(&id).await, (0, 0));
}

#[tokio::test]
async fn the_wiring_buys_labels_only_when_told_and_refuses_other_values() {
    let stack = Stack::with_settings(|s| with_shippo(s).with("SHIPPING_LABELS", "auto")).await;
    let consumer = stack.wiring.fulfillment().expect("auto with Shippo");
    let id = confirmed_order(&stack, "auto-wired", "10001").await;
    assert!(
        handle(&consumer, &confirmed_message(&stack, &id).await)
            .await
            .is_empty()
    );
    assert_eq!(stored(&stack, &id).await.status, OrderStatus::Shipped);
    assert_eq!(labels(&id).await, (1, 0));

    let refused = Stack::with_settings(|s| with_shippo(s).with("SHIPPING_LABELS", "yes"))
        .await
        .wiring
        .fulfillment()
        .err()
        .expect("refused at init")
        .to_string();
    assert!(refused.starts_with("SHIPPING_LABELS: "), "{refused}");
}

#[tokio::test]
async fn a_forged_confirmation_buys_no_label() {
    let stack = shippo_stack().await;
    let consumer = automatic(&stack, Arc::default());
    stack
        .put_cart("auto-forged", OWNER, &[("p001", "USB Cable", 2, "10.00")])
        .await;
    let reply = stack
        .send(
            Call::new("POST", "/api/orders")
                .bearer(&token(OWNER, ""))
                .json(&checkout("auto-forged")),
        )
        .await;
    let id = reply.body["order_id"].as_str().unwrap().to_string();
    // What the publisher would send had the pending order been confirmed.
    let pending = stored(&stack, &id).await;
    let mut confirmed = pending.clone();
    confirmed.status = OrderStatus::Confirmed;
    confirmed.version = 2;
    let mut entry = confirmed.history[0].clone();
    entry.status = OrderStatus::Confirmed;
    confirmed.history.push(entry);
    let detail = OrderEvent::for_change(Some(&pending), &confirmed).unwrap();
    let envelope = Envelope {
        id: "evt-forged".into(),
        detail_type: detail.detail_type(),
        source: SOURCE.to_string(),
        time: detail.occurred_at.clone(),
        detail,
    };
    let mut forged = SqsMessage::default();
    forged.message_id = Some("forged".into());
    forged.body = Some(serde_json::to_string(&envelope).unwrap());

    assert_eq!(handle(&consumer, &forged).await, ["forged"]);

    assert_eq!(labels(&id).await, (0, 0));
    let order = stored(&stack, &id).await;
    assert_eq!(
        (order.status, order.version, order.shipments.len()),
        (OrderStatus::Pending, 1, 0)
    );
}

// ----------------------------------------------------------------------------------
// A label whose parcel loses its race
// ----------------------------------------------------------------------------------

/// Shippo, except that right after a label is bought a person ships the whole order
/// by hand (`PUT …/status` shipped): the parcel the label was bought for loses.
struct ShippedMeanwhile {
    shippo: ShippoLabels,
    stack: Arc<Stack>,
    order_id: String,
}

#[async_trait]
impl LabelProvider for ShippedMeanwhile {
    async fn quote(
        &self,
        reference: &str,
        to: &ShippingAddress,
        parcel: &Parcel,
        servicelevel: Option<&str>,
        direction: LabelDirection,
    ) -> Result<LabelRate, LabelError> {
        self.shippo
            .quote(reference, to, parcel, servicelevel, direction)
            .await
    }

    async fn purchase(&self, rate: &LabelRate, reference: &str) -> Result<Label, LabelError> {
        let label = self.shippo.purchase(rate, reference).await?;
        let reply = self
            .stack
            .send(
                Call::new("PUT", &format!("/api/orders/{}/status", self.order_id))
                    .bearer(&admin())
                    .json(&json!({"status": "shipped", "carrier": "ups", "tracking_number": "1Z999AA10123456784"})),
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        Ok(label)
    }

    async fn purchased(&self, rate: &LabelRate) -> Result<Option<Label>, LabelError> {
        self.shippo.purchased(rate).await
    }

    async fn register_tracking(
        &self,
        carrier: &str,
        tracking_number: &str,
        reference: &str,
    ) -> Result<(), LabelError> {
        self.shippo
            .register_tracking(carrier, tracking_number, reference)
            .await
    }

    async fn refund(&self, transaction_id: &str) -> Result<(), LabelError> {
        self.shippo.refund(transaction_id).await
    }

    async fn tracking(
        &self,
        carrier: &str,
        tracking_number: &str,
    ) -> Result<Vec<TrackingEvent>, LabelError> {
        self.shippo.tracking(carrier, tracking_number).await
    }
}

#[tokio::test]
async fn a_label_whose_lines_shipped_meanwhile_is_refunded_before_the_409() {
    let stack = Arc::new(shippo_stack().await);
    let id = confirmed_order(&stack, "stuck-label", "10001").await;
    let provider = ShippedMeanwhile {
        shippo: shippo(),
        stack: stack.clone(),
        order_id: id.clone(),
    };
    let shipping = shipping_service(&stack, Arc::new(provider), Arc::default());
    let caller = Principal {
        user_id: "warehouse".into(),
        admin: false,
        fulfillment: true,
        refunds: false,
        webhooks: false,
        email: None,
        phone: None,
    };

    let refused = shipping
        .create(&caller, &id, ShipmentRequest::default(), None)
        .await;

    assert!(
        matches!(refused, Err(ShipmentError::NotShippable { .. })),
        "{refused:?}"
    );
    assert_eq!(labels(&id).await, (1, 1), "bought, then refunded");
    // Only the parcel shipped by hand is on the order.
    let order = stored(&stack, &id).await;
    assert_eq!(order.status, OrderStatus::Shipped);
    assert_eq!(order.shipments.len(), 1);
    assert_eq!(order.shipments[0].carrier.as_deref(), Some("ups"));
}

#[tokio::test]
async fn a_label_an_earlier_attempt_left_behind_is_refunded_when_the_retry_cannot_ship() {
    let stack = shippo_stack().await;
    let id = confirmed_order(&stack, "left-behind", "10001").await;
    let ship = |key: &str| {
        Call::new("POST", &format!("/api/orders/{id}/shipments"))
            .bearer(&admin())
            .header("idempotency-key", key)
            .json(&json!({}))
    };
    // The label is bought and Shippo's answer lost: 503, nothing recorded.
    let shipment_id = orders::domain::fulfillment::ShipmentId::for_request(&id, "admin", "lost");
    fault("/transactions", shipment_id.as_str(), "after").await;
    let lost = stack.send(ship("lost")).await;
    assert_eq!(lost.status, 503, "{lost:?}");
    assert_eq!(labels(&id).await, (1, 0));
    // Meanwhile the order ships by hand.
    let by_hand = stack
        .set_status(&id, "shipped", &token("warehouse", FULFILL))
        .await;
    assert_eq!(by_hand.status, 200, "{by_hand:?}");

    // The retry cannot ship anything: the label its first attempt bought goes back.
    let retried = stack.send(ship("lost")).await;
    assert_eq!(
        (retried.status, retried.code()),
        (409, "order_not_shippable"),
        "{retried:?}"
    );
    assert_eq!(labels(&id).await, (1, 1));
}

#[tokio::test]
async fn an_automatic_label_left_behind_is_refunded_once_the_order_ships_by_hand() {
    let stack = shippo_stack().await;
    let consumer = automatic(&stack, Arc::default());
    let id = confirmed_order(&stack, "auto-left-behind", "10001").await;
    let message = confirmed_message(&stack, &id).await;
    fault("/transactions", &id, "after").await;
    assert_eq!(handle(&consumer, &message).await.len(), 1);
    assert_eq!(labels(&id).await, (1, 0));

    // A person ships part of it by hand before the message comes back.
    let reply = stack
        .send(
            Call::new("POST", &format!("/api/orders/{id}/shipments"))
                .bearer(&admin())
                .json(&json!({"items": [{"product_id": "p001", "quantity": 1}], "carrier": "usps", "tracking_number": "9400111899223197428111"})),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");

    assert!(handle(&consumer, &message).await.is_empty());
    assert_eq!(labels(&id).await, (1, 1), "the unused label refunded");
    let order = stored(&stack, &id).await;
    assert_eq!(order.shipping_status.as_str(), "partially_shipped");
    assert_eq!(order.shipments.len(), 1);
    // Again: nothing more to give back.
    assert!(handle(&consumer, &message).await.is_empty());
    assert_eq!(labels(&id).await, (1, 1));
}
