//! The stream publisher: each recorded change of an order becomes exactly one event on
//! the bus, as an integrator subscribed to it receives it.
//!
//! Against the emulator, the lifecycle runs through the API handlers, the table's
//! stream records are read with the DynamoDB Streams API and handed to the publisher as
//! Lambda's event source would hand them, and a queue subscribed to the bus by a rule
//! shows what an integrator gets. A fake bus stands in where the emulator cannot go:
//! PutEvents answering per-entry failures.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use orders::adapters::event_bus::EventBridgeBus;
use orders::events::{Envelope, OrderEvent, SOURCE};
use orders::ports::{EventBus, PublishError};
use orders::services::publisher::Publisher;
use orders_tests::{ADMIN, Call, FULFILL, Stack, subscribe_queue, token, unique};
use serde_json::{Value, json};

/// The publisher as its Lambda runs it: a stream batch in, partial failures out.
trait StreamBatch {
    async fn handle(&self, event: Event) -> DynamoDbEventResponse;
}

impl StreamBatch for Publisher {
    async fn handle(&self, event: Event) -> DynamoDbEventResponse {
        orders::inbound::stream::publish(self, event).await
    }
}

const OWNER: &str = "alice";
const WAREHOUSE: &str = "warehouse";

// ----------------------------------------------------------------------------------
// The schema
// ----------------------------------------------------------------------------------

fn schema() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/events.schema.json");
    let text = std::fs::read_to_string(path).expect("docs/events.schema.json");
    serde_json::from_str(&text).expect("the schema is JSON")
}

/// Checks `instance` against the schema's definition `def` (`OrderEvent`, `Envelope`).
pub(crate) fn assert_valid(def: &str, instance: &Value) {
    let mut schema = schema();
    schema["$ref"] = json!(format!("#/$defs/{def}"));
    let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{def} invalid: {errors:#?}\n{instance:#}"
    );
}

#[tokio::test]
async fn the_schema_refuses_what_is_not_an_event() {
    let event = published_sample().await.remove(0);
    let good = serde_json::to_value(&event).unwrap();
    assert_valid("OrderEvent", &good);
    let validator = jsonschema::draft202012::new(&schema()).unwrap();
    let mut bad = Vec::new();
    for (pointer, value) in [
        ("/event_id", json!("ORD1:1")),
        ("/status", json!("lost")),
        ("/sequence", json!(0)),
        ("/sequence", json!(2)), // a creation is sequence 1
        ("/order/total", json!("75.00")),
        ("/order/items", json!([])),
        ("/occurred_at", json!("yesterday")),
    ] {
        let mut event = good.clone();
        *event.pointer_mut(pointer).unwrap() = value.clone();
        bad.push((format!("{pointer} = {value}"), event));
    }
    let mut extra = good.clone();
    extra["surprise"] = json!(true);
    bad.push(("an unknown member".into(), extra));
    for (what, event) in bad {
        assert!(!validator.is_valid(&event), "accepted {what}");
    }
}

// ----------------------------------------------------------------------------------
// A fake bus: per-entry failures on demand
// ----------------------------------------------------------------------------------

/// Records every call; fails an event a given number of times (or always).
#[derive(Default)]
struct FakeBus {
    calls: Mutex<Vec<Vec<String>>>,
    published: Mutex<Vec<OrderEvent>>,
    failures: Mutex<HashMap<String, u32>>,
}

impl FakeBus {
    fn failing(fail: &[(&str, u32)]) -> Arc<FakeBus> {
        let bus = FakeBus::default();
        *bus.failures.lock().unwrap() = fail.iter().map(|(id, n)| (id.to_string(), *n)).collect();
        Arc::new(bus)
    }

    /// The event ids of each call, in order.
    fn calls(&self) -> Vec<Vec<String>> {
        self.calls.lock().unwrap().clone()
    }

    fn published(&self) -> Vec<OrderEvent> {
        self.published.lock().unwrap().clone()
    }
}

#[async_trait]
impl EventBus for FakeBus {
    async fn publish(&self, events: &[OrderEvent]) -> Vec<Result<(), PublishError>> {
        self.calls
            .lock()
            .unwrap()
            .push(events.iter().map(|e| e.event_id.clone()).collect());
        let mut failures = self.failures.lock().unwrap();
        events
            .iter()
            .map(|event| match failures.get_mut(&event.event_id) {
                Some(left) if *left > 0 => {
                    *left -= 1;
                    Err(PublishError::Rejected {
                        code: "ThrottlingException".into(),
                        message: "Rate exceeded".into(),
                    })
                }
                _ => {
                    self.published.lock().unwrap().push(event.clone());
                    Ok(())
                }
            })
            .collect()
    }
}

// ----------------------------------------------------------------------------------
// Stream records, as Lambda delivers them
// ----------------------------------------------------------------------------------

/// events/publish-events.json: an INSERT of order ORDKT9Y9G7TXGSP1QME and its
/// MODIFY pending → confirmed.
fn sample() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/publish-events.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

const SAMPLE_ORDER: &str = "ORDKT9Y9G7TXGSP1QME";

fn sample_records() -> (Value, Value) {
    let records = sample()["Records"].as_array().unwrap().clone();
    (records[0].clone(), records[1].clone())
}

/// A sample record for another order (another cart), at another sequence number.
fn record_for(record: &Value, cart_id: &str, sequence: &str) -> Value {
    let id = orders::domain::OrderId::for_cart(cart_id);
    let mut record: Value =
        serde_json::from_str(&record.to_string().replace(SAMPLE_ORDER, id.as_str())).unwrap();
    record["dynamodb"]["SequenceNumber"] = json!(sequence);
    record
}

fn resequenced(record: &Value, sequence: &str) -> Value {
    let mut record = record.clone();
    record["dynamodb"]["SequenceNumber"] = json!(sequence);
    record
}

fn lambda_event(records: &[Value]) -> Event {
    serde_json::from_value(json!({ "Records": records })).expect("a DynamoDB stream event")
}

/// The sequence numbers reported as batch item failures.
fn failures(response: &DynamoDbEventResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap_or_default())
        .collect()
}

fn event_id(cart_id: &str, sequence: u64) -> String {
    format!("{}:{sequence}", orders::domain::OrderId::for_cart(cart_id))
}

/// The events the sample becomes, through a bus that accepts everything.
async fn published_sample() -> Vec<OrderEvent> {
    let bus = FakeBus::failing(&[]);
    let response = Publisher::new(bus.clone())
        .handle(lambda_event(sample()["Records"].as_array().unwrap()))
        .await;
    assert!(failures(&response).is_empty(), "{response:?}");
    bus.published()
}

// ----------------------------------------------------------------------------------
// The publisher's batch semantics, on the fake bus
// ----------------------------------------------------------------------------------

#[tokio::test]
async fn the_sample_event_becomes_created_then_confirmed() {
    let bus = FakeBus::failing(&[]);
    let response = Publisher::new(bus.clone())
        .handle(lambda_event(sample()["Records"].as_array().unwrap()))
        .await;
    assert!(failures(&response).is_empty(), "{response:?}");

    let events = bus.published();
    assert_eq!(
        events.iter().map(summary).collect::<Vec<_>>(),
        [
            json!(["order.created", 1, null, "pending", "user789", null]),
            json!([
                "order.confirmed",
                2,
                "pending",
                "confirmed",
                "payments-service",
                "payment captured"
            ]),
        ]
    );
    assert_eq!(events[1].event_id, format!("{SAMPLE_ORDER}:2"));
    for event in &events {
        assert_valid("OrderEvent", &serde_json::to_value(event).unwrap());
    }
    // Money leaves exactly as the API renders it, with the currency's minor digits.
    let detail = serde_json::to_string(&events[1]).unwrap();
    assert!(detail.contains(r#""total":75.00"#), "{detail}");
    assert!(detail.contains(r#""price":10.00"#), "{detail}");
    assert_eq!(events[1].occurred_at, "2026-11-25T14:05:42.318Z");
    assert_eq!(events[1].order.value()["status"], "confirmed");
}

#[tokio::test]
async fn failed_entries_are_retried_until_they_go_out() {
    let confirmed = format!("{SAMPLE_ORDER}:2");
    let bus = FakeBus::failing(&[(&confirmed, 2)]);
    let response = Publisher::new(bus.clone())
        .handle(lambda_event(sample()["Records"].as_array().unwrap()))
        .await;
    assert!(failures(&response).is_empty(), "{response:?}");
    // Only the failed entry is sent again.
    let created = format!("{SAMPLE_ORDER}:1");
    assert_eq!(
        bus.calls(),
        [
            vec![created.clone(), confirmed.clone()],
            vec![confirmed.clone()],
            vec![confirmed.clone()]
        ]
    );
    let published: Vec<_> = bus.published().into_iter().map(|e| e.event_id).collect();
    assert_eq!(published, [created, confirmed]);
}

#[tokio::test]
async fn an_entry_that_keeps_failing_is_the_batch_item_failure() {
    let (insert, modify) = sample_records();
    let records = [
        resequenced(&insert, "100"),
        resequenced(&modify, "200"),
        record_for(&insert, "another-cart", "300"),
    ];
    let stuck = format!("{SAMPLE_ORDER}:2");
    let bus = FakeBus::failing(&[(&stuck, u32::MAX)]);

    let started = Instant::now();
    let response = Publisher::new(bus.clone())
        .handle(lambda_event(&records))
        .await;

    // Lambda retries from the stuck record: it and everything after it.
    assert_eq!(failures(&response), ["200"]);
    // One attempt and three retries, after a pause each.
    let calls = bus.calls();
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert!(
        calls[1..].iter().all(|c| *c == [stuck.clone()]),
        "{calls:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(350));
    // The record after it went out too, and will again on the retry: consumers
    // drop the duplicate by its event id.
    let published: Vec<_> = bus.published().into_iter().map(|e| e.event_id).collect();
    assert_eq!(
        published,
        [format!("{SAMPLE_ORDER}:1"), event_id("another-cart", 1)]
    );
}

#[tokio::test]
async fn a_bus_that_is_down_fails_the_batch_at_its_first_record() {
    let (insert, modify) = sample_records();
    let records = [resequenced(&insert, "7"), resequenced(&modify, "8")];
    let bus = FakeBus::failing(&[
        (&format!("{SAMPLE_ORDER}:1"), u32::MAX),
        (&format!("{SAMPLE_ORDER}:2"), u32::MAX),
    ]);
    let response = Publisher::new(bus.clone())
        .handle(lambda_event(&records))
        .await;
    assert_eq!(failures(&response), ["7"]);
    assert!(bus.published().is_empty());
}

#[tokio::test]
async fn a_poison_record_is_the_failure_and_nothing_after_it_is_published() {
    let (insert, modify) = sample_records();
    let mut poison = resequenced(&modify, "2");
    poison["dynamodb"]["NewImage"]["status"] = json!({ "S": "lost" });
    let after = record_for(&insert, "another-cart", "3");

    let bus = FakeBus::failing(&[]);
    let publisher = Publisher::new(bus.clone());
    let response = publisher
        .handle(lambda_event(&[
            resequenced(&insert, "1"),
            poison.clone(),
            after.clone(),
        ]))
        .await;
    assert_eq!(failures(&response), ["2"]);
    let published: Vec<_> = bus.published().into_iter().map(|e| e.event_id).collect();
    assert_eq!(published, [format!("{SAMPLE_ORDER}:1")]);

    // Bisected down to the poison alone, it fails alone (and after the last retry
    // Lambda sends it to the on-failure destination); the rest goes through.
    let response = publisher.handle(lambda_event(&[poison])).await;
    assert_eq!(failures(&response), ["2"]);
    let response = publisher.handle(lambda_event(&[after])).await;
    assert!(failures(&response).is_empty());

    // Other shapes of poison: an image that is missing, or not DynamoDB JSON at all.
    let mut no_image = resequenced(&modify, "4");
    no_image["dynamodb"]
        .as_object_mut()
        .unwrap()
        .remove("OldImage");
    let response = publisher.handle(lambda_event(&[no_image])).await;
    assert_eq!(failures(&response), ["4"]);
    let mut no_history = resequenced(&insert, "5");
    no_history["dynamodb"]["NewImage"]["history"] = json!({ "L": [] });
    let response = publisher.handle(lambda_event(&[no_history])).await;
    assert_eq!(failures(&response), ["5"]);
}

#[tokio::test]
async fn records_that_are_not_changes_of_an_order_publish_nothing() {
    let (insert, modify) = sample_records();
    let idempotency_keys = json!({
        "PK": { "S": "IDEMPOTENCY#6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b" },
        "SK": { "S": "IDEMPOTENCY" }
    });
    let mut idempotency_image = idempotency_keys.clone();
    idempotency_image["fingerprint"] = json!({ "S": "00ff" });
    idempotency_image["order_id"] = json!({ "S": SAMPLE_ORDER });
    idempotency_image["expires_at"] = json!({ "N": "1795701787" });
    let mut idempotency = resequenced(&insert, "1");
    idempotency["dynamodb"]["Keys"] = idempotency_keys;
    idempotency["dynamodb"]["NewImage"] = idempotency_image.clone();
    // Its expiry: a REMOVE by DynamoDB's TTL.
    let mut expired = resequenced(&insert, "2");
    expired["eventName"] = json!("REMOVE");
    expired["userIdentity"] = json!({ "type": "Service", "principalId": "dynamodb.amazonaws.com" });
    expired["dynamodb"]["Keys"] = idempotency["dynamodb"]["Keys"].clone();
    expired["dynamodb"]["OldImage"] = idempotency_image;
    expired["dynamodb"]
        .as_object_mut()
        .unwrap()
        .remove("NewImage");
    // An order rewritten without a recorded change (same version).
    let mut rewritten = resequenced(&modify, "3");
    rewritten["dynamodb"]["OldImage"] = rewritten["dynamodb"]["NewImage"].clone();
    // Another item in the order's partition.
    let mut beside = resequenced(&insert, "4");
    beside["dynamodb"]["Keys"]["SK"] = json!({ "S": "RESERVATION" });

    let bus = FakeBus::failing(&[]);
    let response = Publisher::new(bus.clone())
        .handle(lambda_event(&[idempotency, expired, rewritten, beside]))
        .await;
    assert!(failures(&response).is_empty(), "{response:?}");
    assert!(bus.calls().is_empty(), "{:?}", bus.calls());
}

// ----------------------------------------------------------------------------------
// On the emulator: an integrator's queue subscribed to the bus
// ----------------------------------------------------------------------------------

/// A bus of its own, and an integrator's queue subscribed to every event of
/// `source: orders` on it by a rule (the harness's `subscribe_queue`).
struct Integrator {
    bus: String,
    events: aws_sdk_eventbridge::Client,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl Integrator {
    async fn subscribe() -> Integrator {
        let sdk = orders::adapters::aws::sdk_config().await;
        let events = aws_sdk_eventbridge::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let bus = unique("orders-bus");
        let queue_url = subscribe_queue(&sqs, &events, &bus, &unique("integrator"))
            .await
            .unwrap();
        Integrator {
            bus,
            events,
            sqs,
            queue_url,
        }
    }

    fn event_bus(&self) -> EventBridgeBus {
        EventBridgeBus::new(self.events.clone(), &self.bus)
    }

    fn publisher(&self) -> Publisher {
        Publisher::new(Arc::new(self.event_bus()))
    }

    /// Receives `count` messages (long polls until a deadline, no sleeps), then makes
    /// sure no other one follows. Answers the bodies, parsed, in arrival order.
    async fn receive_exactly(&self, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut bodies = Vec::new();
        while bodies.len() < count && Instant::now() < deadline {
            bodies.extend(self.receive().await);
        }
        assert_eq!(bodies.len(), count, "messages received: {bodies:#?}");
        let more = self.receive().await;
        assert!(more.is_empty(), "unexpected messages: {more:#?}");
        bodies
    }

    async fn receive(&self) -> Vec<Value> {
        let page = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let mut bodies = Vec::new();
        for message in page.messages() {
            bodies.push(serde_json::from_str(message.body().unwrap()).unwrap());
            self.sqs
                .delete_message()
                .queue_url(&self.queue_url)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
        bodies
    }
}

/// Every record of the table's stream so far, as Lambda's event source delivers them.
///
/// Records are shaped as Lambda delivers them by the local stack's own converter
/// (dev/src/pipeline.rs); this reads the whole stream at once, which a test needs and
/// a poller does not.
pub(crate) async fn stream_records(stack: &Stack) -> Vec<Value> {
    let arn = stack
        .orders_table()
        .await
        .latest_stream_arn
        .expect("the orders table has a stream");
    let streams = aws_sdk_dynamodbstreams::Client::new(&orders::adapters::aws::sdk_config().await);
    let shards = streams
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap()
        .stream_description
        .and_then(|d| d.shards)
        .unwrap_or_default();
    let mut records = Vec::new();
    for shard in shards {
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id.unwrap())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator;
        while let Some(current) = iterator {
            let page = streams
                .get_records()
                .shard_iterator(current)
                .send()
                .await
                .unwrap();
            let batch = page.records.unwrap_or_default();
            if batch.is_empty() {
                break;
            }
            // What the publisher's event source mapping hands over: its filter
            // (template.yaml) keeps order items only, not create counters or
            // idempotency records.
            records.extend(
                batch
                    .iter()
                    .map(|r| orders_dev::pipeline::record_json(r, &arn))
                    .filter(|r| r["dynamodb"]["Keys"]["SK"]["S"] == "ORDER"),
            );
            iterator = page.next_shard_iterator;
        }
    }
    records
}

fn put_status(id: &str, body: Value, bearer: &str) -> Call {
    Call::new("PUT", &format!("/api/orders/{id}/status"))
        .bearer(bearer)
        .json(&body)
}

/// What an event says, in short: detail-type, sequence, previous status, status,
/// actor, reason.
fn summary(event: &OrderEvent) -> Value {
    json!([
        event.detail_type(),
        event.sequence,
        event.previous_status,
        event.status,
        event.actor,
        event.reason
    ])
}

#[tokio::test]
async fn a_lifecycle_reaches_an_integrators_queue_as_one_event_per_change() {
    let stack = Stack::new().await;
    let integrator = Integrator::subscribe().await;
    let admin = token("admin", ADMIN);
    let warehouse = token(WAREHOUSE, FULFILL);

    let shipped = stack.order_for(OWNER, "lifecycle").await;
    let reply = stack
        .send(put_status(
            &shipped,
            json!({ "status": "confirmed", "reason": "payment captured" }),
            &admin,
        ))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    // A no-op (the status the order already has) writes nothing, so the stream has
    // nothing to publish.
    let before_noop = stream_records(&stack).await.len();
    let reply = stack
        .send(put_status(
            &shipped,
            json!({ "status": "confirmed" }),
            &admin,
        ))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(stream_records(&stack).await.len(), before_noop);
    for body in [
        json!({ "status": "shipped", "tracking_number": "1Z999AA10123456784", "carrier": "UPS" }),
        json!({ "status": "delivered" }),
    ] {
        let reply = stack.send(put_status(&shipped, body, &warehouse)).await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    let cancelled = stack.order_for(OWNER, "second-thoughts").await;
    let reply = stack
        .send(
            Call::new("DELETE", &format!("/api/orders/{cancelled}"))
                .bearer(&token(OWNER, ""))
                .json(&json!({ "reason": "changed my mind" })),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");

    // Six changes, six records; Lambda would hand them over in one batch.
    let records = stream_records(&stack).await;
    assert_eq!(records.len(), 6, "{records:#?}");
    let response = integrator.publisher().handle(lambda_event(&records)).await;
    assert!(failures(&response).is_empty(), "{response:?}");

    // The integrator's queue gets exactly six events, each valid, in its envelope.
    let mut by_order: BTreeMap<String, Vec<OrderEvent>> = BTreeMap::new();
    for body in integrator.receive_exactly(6).await {
        assert_valid("Envelope", &body);
        let envelope: Envelope = serde_json::from_str(&body.to_string()).unwrap();
        assert_eq!(envelope.source, SOURCE);
        assert_eq!(envelope.detail_type, envelope.detail.detail_type());
        let detail = &envelope.detail;
        assert_eq!(
            detail.event_id,
            format!("{}:{}", detail.order_id, detail.sequence)
        );
        assert_eq!(detail.user_id, OWNER);
        let order = detail.order.value();
        assert_eq!(order["order_id"], detail.order_id.as_str());
        assert_eq!(order["version"], detail.sequence);
        assert_eq!(order["status"], detail.status.as_str());
        assert_eq!(order["shipping_status"], detail.shipping_status.as_str());
        by_order
            .entry(detail.order_id.clone())
            .or_default()
            .push(envelope.detail);
    }
    for events in by_order.values_mut() {
        events.sort_by_key(|e| e.sequence);
    }

    // One event per change, sequence 1..n, each chained from the previous status.
    let lifecycle = &by_order[&shipped];
    assert_eq!(
        lifecycle.iter().map(summary).collect::<Vec<_>>(),
        [
            json!(["order.created", 1, null, "pending", OWNER, null]),
            json!([
                "order.confirmed",
                2,
                "pending",
                "confirmed",
                "admin",
                "payment captured"
            ]),
            json!(["order.shipped", 3, "confirmed", "shipped", WAREHOUSE, null]),
            json!([
                "order.delivered",
                4,
                "shipped",
                "delivered",
                WAREHOUSE,
                null
            ]),
        ]
    );
    assert_eq!(
        by_order[&cancelled].iter().map(summary).collect::<Vec<_>>(),
        [
            json!(["order.created", 1, null, "pending", OWNER, null]),
            json!([
                "order.cancelled",
                2,
                "pending",
                "cancelled",
                OWNER,
                "changed my mind"
            ]),
        ]
    );
    let shipped_event = lifecycle[2].order.value();
    assert_eq!(shipped_event["tracking_number"], "1Z999AA10123456784");
    assert_eq!(shipped_event["carrier"], "UPS");

    // Each event carries the order as the API shows it after that change, without
    // the contact (only its owner and admins see that), and the time its history
    // entry records.
    let owner = token(OWNER, "");
    let mut current = stack
        .send(Call::new("GET", &format!("/api/orders/{shipped}")).bearer(&owner))
        .await;
    assert!(current.body.get("contact").is_some(), "the owner sees it");
    current.body.as_object_mut().unwrap().remove("contact");
    assert_eq!(lifecycle[3].order.value(), current.body);
    let history = stack
        .send(Call::new("GET", &format!("/api/orders/{shipped}/history")).bearer(&owner))
        .await;
    let times: Vec<&str> = history.body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["at"].as_str().unwrap())
        .collect();
    assert_eq!(
        lifecycle
            .iter()
            .map(|e| e.occurred_at.as_str())
            .collect::<Vec<_>>(),
        times
    );
}

#[tokio::test]
async fn a_record_published_twice_is_the_same_event_twice() {
    let stack = Stack::new().await;
    let integrator = Integrator::subscribe().await;
    let id = stack.order_for(OWNER, "twice").await;
    let records = stream_records(&stack).await;
    assert_eq!(records.len(), 1);

    // Lambda retrying a batch, or a batch retried from an earlier failure.
    let publisher = integrator.publisher();
    for _ in 0..2 {
        let response = publisher.handle(lambda_event(&records)).await;
        assert!(failures(&response).is_empty(), "{response:?}");
    }

    let bodies = integrator.receive_exactly(2).await;
    let envelopes: Vec<Envelope> = bodies
        .iter()
        .map(|b| serde_json::from_str(&b.to_string()).unwrap())
        .collect();
    assert_eq!(envelopes[0].detail.event_id, format!("{id}:1"));
    assert_eq!(envelopes[0].detail, envelopes[1].detail);
    // EventBridge's own ids differ: deduplicate on the detail's event_id.
    assert_ne!(envelopes[0].id, envelopes[1].id);
}

#[tokio::test]
async fn the_eventbridge_adapter_sends_any_number_of_events_in_order() {
    let integrator = Integrator::subscribe().await;
    let template = published_sample().await.remove(1);
    // 23 events: three PutEvents requests of at most ten entries.
    let mut events: Vec<OrderEvent> = (1..=23)
        .map(|n| OrderEvent {
            event_id: format!("{SAMPLE_ORDER}:{n}"),
            sequence: n,
            ..template.clone()
        })
        .collect();
    // One too large for any request fails alone.
    events[11].reason = Some("x".repeat(300 * 1024));

    let outcomes = integrator.event_bus().publish(&events).await;
    assert_eq!(outcomes.len(), 23);
    for (i, outcome) in outcomes.iter().enumerate() {
        match i {
            11 => assert!(
                matches!(outcome, Err(PublishError::Invalid(_))),
                "{outcome:?}"
            ),
            _ => assert_eq!(outcome, &Ok(()), "event {i}"),
        }
    }

    let mut received: Vec<String> = integrator
        .receive_exactly(22)
        .await
        .iter()
        .map(|b| b["detail"]["event_id"].as_str().unwrap().to_string())
        .collect();
    received.sort_by_key(|id| id.split(':').nth(1).unwrap().parse::<u64>().unwrap());
    let expected: Vec<String> = events
        .iter()
        .filter(|e| e.sequence != 12)
        .map(|e| e.event_id.clone())
        .collect();
    assert_eq!(received, expected);
}

#[tokio::test]
async fn an_unknown_bus_fails_every_entry() {
    let integrator = Integrator::subscribe().await;
    let bus = EventBridgeBus::new(integrator.events.clone(), unique("no-such-bus"));
    let outcomes = bus.publish(&published_sample().await).await;
    assert_eq!(outcomes.len(), 2);
    assert!(outcomes.iter().all(Result::is_err), "{outcomes:?}");
}
