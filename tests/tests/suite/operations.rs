//! Running it: the event schema as the registry holds it (template.yaml's draft 4 copy
//! of docs/events.schema.json), the alarms and the archive the template declares, the
//! metrics' EMF lines, and redriving a dead-letter queue (`make redrive`) against the
//! emulator: every message lands once, run twice, at once, or after a failed send.

use std::collections::BTreeMap;
use std::time::Duration;

use orders::domain::{Cart, CartLine};
use orders::events::OrderEvent;
use orders_dev::pipeline;
use orders_dev::redrive::{Redriven, redrive, source_of};
use orders_dev::schema::{draft4, with_registered_schema};
use orders_tests::{template, template_path, unique};
use serde_json::{Value, json};

fn docs_schema() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/events.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn raw_template() -> serde_norway::Value {
    serde_norway::from_str(&std::fs::read_to_string(template_path()).unwrap()).unwrap()
}

fn resources_of_type(kind: &str) -> Vec<(String, serde_norway::Value)> {
    raw_template()["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(name, r)| (name.as_str().unwrap().to_string(), r.clone()))
        .collect()
}

/// A created order's event, as the publisher would publish it.
fn an_event() -> Value {
    let cart = Cart {
        cart_id: "abc123".into(),
        user_id: "user789".into(),
        currency: "USD".into(),
        items: vec![CartLine {
            product_id: "p1".into(),
            name: "Cable".into(),
            quantity: 2,
            price: "10.00".into(),
            currency: None,
            tax_lines: vec![],
        }],
        charges: Default::default(),
    };
    let mut body = orders_tests::checkout("abc123");
    body["user_id"] = "user789".into();
    let order = orders::inbound::http::request::checkout(body.as_object().unwrap())
        .unwrap()
        .place(&cart, "user789", "user789", time::OffsetDateTime::now_utc())
        .unwrap();
    serde_json::to_value(OrderEvent::for_change(None, &order).unwrap()).unwrap()
}

// ----------------------------------------------------------------------------------
// The schema registry's copy
// ----------------------------------------------------------------------------------

/// template.yaml's `OrderEventSchema` is docs/events.schema.json in draft 4, exactly
/// as `make schema` writes it.
#[test]
fn the_registered_schema_is_docs_events_schema() {
    let text = std::fs::read_to_string(template_path()).unwrap();
    let expected = with_registered_schema(&text, &draft4(&docs_schema())).unwrap();
    assert!(
        expected == text,
        "template.yaml's OrderEventSchema differs from docs/events.schema.json: run `make schema`"
    );
    let (_, resource) = resources_of_type("AWS::EventSchemas::Schema").remove(0);
    assert_eq!(
        resource["Properties"]["Type"].as_str(),
        Some("JSONSchemaDraft4")
    );
    let content: Value =
        serde_json::from_str(resource["Properties"]["Content"].as_str().unwrap()).unwrap();
    assert_eq!(content, draft4(&docs_schema()));
}

/// The draft 4 copy says what the 2020-12 original says: it accepts an event and
/// refuses each of the same broken ones.
#[test]
fn the_draft_4_copy_judges_events_as_the_original_does() {
    let original = jsonschema::draft202012::new(&docs_schema()).unwrap();
    let registered = jsonschema::draft4::new(&draft4(&docs_schema())).unwrap();
    let good = an_event();
    assert!(original.is_valid(&good));
    assert!(registered.is_valid(&good));
    let mut cases = Vec::new();
    for (pointer, value) in [
        ("/status", json!("lost")),
        ("/sequence", json!(0)),
        ("/sequence", json!(2)),
        ("/previous_status", json!("pending")),
        ("/order/total", json!("75.00")),
        ("/order/items", json!([])),
        ("/occurred_at", json!("yesterday")),
    ] {
        let mut event = good.clone();
        *event.pointer_mut(pointer).unwrap() = value.clone();
        cases.push((format!("{pointer} = {value}"), event));
    }
    let mut extra = good.clone();
    extra["surprise"] = json!(true);
    cases.push(("an unknown member".into(), extra));
    for (what, event) in cases {
        assert!(!original.is_valid(&event), "the original accepts {what}");
        assert!(
            !registered.is_valid(&event),
            "the registered copy accepts {what}"
        );
    }
}

// ----------------------------------------------------------------------------------
// Alarms, archive, dashboard
// ----------------------------------------------------------------------------------

/// Every dead-letter queue (a queue's redrive target, or the publisher's on-failure
/// destination) has an alarm that fires on its first message; the stream's iterator
/// age, the API's 5xx rate and p99 latency and throttles have one too; each notifies
/// the alarm topic; the bus is archived.
#[test]
fn every_dead_letter_queue_and_health_signal_has_an_alarm() {
    let queues = template().queues();
    let mut dead_letters: Vec<String> = queues
        .iter()
        .filter_map(|q| q.dead_letter.as_ref().map(|(dlq, _)| dlq.clone()))
        .collect();
    dead_letters.push("PublisherFailures".into());
    let alarms = resources_of_type("AWS::CloudWatch::Alarm");
    let text = |v: &serde_norway::Value| serde_norway::to_string(v).unwrap();
    for dlq in &dead_letters {
        let alarm = alarms.iter().find(|(_, a)| {
            a["Properties"]["MetricName"].as_str() == Some("ApproximateNumberOfMessagesVisible")
                && text(&a["Properties"]["Dimensions"]).contains(&format!("{dlq}.QueueName"))
        });
        let (name, alarm) = alarm.unwrap_or_else(|| panic!("no alarm on {dlq}"));
        assert_eq!(alarm["Properties"]["Threshold"].as_u64(), Some(0), "{name}");
    }
    for signal in [
        "IteratorAge",
        "5xx",
        "Latency",
        "WriteThrottleEvents",
        "Throttles",
    ] {
        assert!(
            alarms.iter().any(|(_, a)| text(a).contains(signal)),
            "no alarm on {signal}"
        );
    }
    for (name, alarm) in &alarms {
        assert!(
            text(&alarm["Properties"]["AlarmActions"]).contains("AlarmTopic"),
            "{name} notifies nobody"
        );
    }
    let archives = resources_of_type("AWS::Events::Archive");
    assert_eq!(archives.len(), 1);
    assert!(text(&archives[0].1["Properties"]["SourceArn"]).contains("OrdersBus"));
    assert_eq!(resources_of_type("AWS::CloudWatch::Dashboard").len(), 1);
}

// ----------------------------------------------------------------------------------
// Redrive, against the emulator
// ----------------------------------------------------------------------------------

struct Queues {
    sqs: aws_sdk_sqs::Client,
    source: String,
    dead_letters: String,
}

/// template.yaml's fulfillment queue and its dead-letter queue, on the emulator, with
/// `count` messages in the dead-letter queue; their bodies.
async fn dead_letters_with(count: usize) -> (Queues, Vec<String>) {
    let sdk = orders::adapters::aws::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let prefix = unique("redrive-");
    let queues: Vec<_> = template()
        .queues()
        .into_iter()
        .filter(|q| ["FulfillmentQueue", "FulfillmentDeadLetters"].contains(&q.logical_id.as_str()))
        .collect();
    let created = pipeline::provision(&sqs, &events, &unique("bus"), &prefix, &queues, &[])
        .await
        .unwrap();
    let queues = Queues {
        sqs,
        source: created["FulfillmentQueue"].0.clone(),
        dead_letters: created["FulfillmentDeadLetters"].0.clone(),
    };
    let mut bodies = Vec::new();
    for n in 0..count {
        let mut event = an_event();
        event["event_id"] = json!(format!("{}:{n}", event["order_id"].as_str().unwrap()));
        let body = json!({ "detail-type": "order.confirmed", "source": "orders", "detail": event })
            .to_string();
        queues
            .sqs
            .send_message()
            .queue_url(&queues.dead_letters)
            .message_body(&body)
            .send()
            .await
            .unwrap();
        bodies.push(body);
    }
    (queues, bodies)
}

/// Every body in `queue` and how often, received until two receives find nothing
/// (each deleted as it is read).
async fn drain(sqs: &aws_sdk_sqs::Client, queue: &str) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    let mut empty = 0;
    while empty < 2 {
        let out = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            empty += 1;
        }
        for m in messages {
            *seen.entry(m.body.clone().unwrap()).or_insert(0) += 1;
            sqs.delete_message()
                .queue_url(queue)
                .receipt_handle(m.receipt_handle.unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    seen
}

fn once_each(bodies: &[String]) -> BTreeMap<String, usize> {
    bodies.iter().map(|b| (b.clone(), 1)).collect()
}

/// Two redrivers at once, then a third: the 35 dead letters land in the fulfillment
/// queue once each, and the dead-letter queue is empty. The source is found from the
/// redrive policy, as `make redrive QUEUE=…` finds it.
#[tokio::test]
async fn redriving_lands_every_dead_letter_once_even_run_twice_at_once() {
    let (queues, bodies) = dead_letters_with(35).await;
    let source = source_of(&queues.sqs, &queues.dead_letters).await.unwrap();
    assert_eq!(source, queues.source);

    let hold = Duration::from_secs(60);
    let (a, b) = tokio::join!(
        redrive(&queues.sqs, &queues.dead_letters, &source, hold),
        redrive(&queues.sqs, &queues.dead_letters, &source, hold),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.moved + b.moved, bodies.len(), "{a:?} {b:?}");
    assert_eq!(a.failed + b.failed + a.not_deleted + b.not_deleted, 0);
    let again = redrive(&queues.sqs, &queues.dead_letters, &source, hold)
        .await
        .unwrap();
    assert_eq!(again, Redriven::default());

    assert_eq!(drain(&queues.sqs, &queues.source).await, once_each(&bodies));
    assert!(drain(&queues.sqs, &queues.dead_letters).await.is_empty());
}

/// A source queue that refuses the sends (here: one that does not exist) takes
/// nothing, so nothing leaves the dead-letter queue; once the messages show again,
/// a redrive to the right queue moves each once.
#[tokio::test]
async fn a_failed_send_leaves_the_dead_letter_where_it_was() {
    let (queues, bodies) = dead_letters_with(12).await;
    let hold = Duration::from_secs(1);
    let gone = format!("{}-gone", queues.source);
    let failed = redrive(&queues.sqs, &queues.dead_letters, &gone, hold)
        .await
        .unwrap();
    assert_eq!(failed.moved, 0);
    assert!(failed.failed > 0, "{failed:?}");

    // Poll until the held messages show again, then move them all.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut moved = 0;
    while moved < bodies.len() {
        assert!(tokio::time::Instant::now() < deadline, "moved {moved}");
        let done = redrive(&queues.sqs, &queues.dead_letters, &queues.source, hold)
            .await
            .unwrap();
        assert_eq!(done.failed + done.not_deleted, 0);
        moved += done.moved;
    }
    assert_eq!(moved, bodies.len());
    assert_eq!(drain(&queues.sqs, &queues.source).await, once_each(&bodies));
}
