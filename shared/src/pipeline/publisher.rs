//! The stream publisher: the orders table's stream is the outbox, and every recorded
//! change of an order becomes exactly one event on the bus.
//!
//! How a batch from Lambda's DynamoDB event source (with `ReportBatchItemFailures`) is
//! handled, and why:
//!
//! - **Which records.** Only order items (`PK` = `ORDER#<id>`, `SK` = `ORDER`);
//!   idempotency records and anything else in the table are skipped. `INSERT` is
//!   `order.created`; `MODIFY` is the change from the old image to the new one, and no
//!   event when the version did not move; `REMOVE` is skipped (orders are never
//!   deleted; idempotency records expire by TTL).
//! - **Order.** A shard's records arrive in order and are published in that order.
//!   PutEvents entries that fail are retried with backoff (50, 100, 200 ms).
//! - **Failures.** The sequence number of the first record whose event still could not
//!   be published is the batch's single item failure: Lambda checkpoints before it and
//!   retries from it, so every record after it is published again, even one that went
//!   out already. That is why an event's id is derived from the change
//!   (`<order_id>:<sequence>`) and consumers drop ids they have seen.
//! - **Poison.** A record whose image is not a readable order cannot succeed on retry.
//!   It is logged with `tracing::error` and reported as the failure too, so that the
//!   template's bisect-on-error, `MaximumRetryAttempts` and on-failure destination
//!   isolate it and hand its coordinates to the failure queue instead of blocking the
//!   shard forever. Records after it are left for the retry (publishing them now would
//!   only publish them twice).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::adapters::aws;
use crate::adapters::event_bus::{EventBridgeBus, EventBus};
use crate::adapters::order_item::{Item, PK, SK, order_from_item};
use crate::config::ConfigError;
use crate::domain::Order;
use crate::events::OrderEvent;
use crate::ports::StoreError;

/// Pauses before the retries of the entries that failed.
const BACKOFF: [Duration; 3] = [
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(200),
];

/// The keys of an order item, as `order_item::order_key` writes them.
const ORDER_PK_PREFIX: &str = "ORDER#";
const ORDER_SK: &str = "ORDER";

pub struct Publisher {
    bus: Arc<dyn EventBus>,
}

impl Publisher {
    pub fn new(bus: Arc<dyn EventBus>) -> Publisher {
        Publisher { bus }
    }

    /// Publishes on EventBridge, on the bus named by `EVENT_BUS_NAME`.
    pub async fn from_env() -> Result<Publisher, ConfigError> {
        let bus_name = std::env::var("EVENT_BUS_NAME")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .ok_or(ConfigError::Missing("EVENT_BUS_NAME"))?;
        let bus = EventBridgeBus::from_sdk(&aws::sdk_config().await, bus_name);
        Ok(Publisher::new(Arc::new(bus)))
    }

    /// Handles one batch of stream records (see the module documentation).
    pub async fn handle(&self, event: Event) -> DynamoDbEventResponse {
        // The events of the records, in order, up to the first poison record, with
        // the sequence numbers of their records.
        let mut events = Vec::new();
        let mut sequences = Vec::new();
        let mut poison = None;
        for record in &event.records {
            let sequence = record.change.sequence_number.as_deref();
            match event_of(record) {
                Ok(Some(event)) => {
                    events.push(event);
                    sequences.push(sequence);
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::error!(
                        sequence,
                        event_id = %record.event_id,
                        error = %err,
                        "unreadable stream record; reported as failed until it is set aside"
                    );
                    poison = Some(sequence);
                    break;
                }
            }
        }

        let unpublished = self.publish(&events).await.map(|i| sequences[i]);
        match unpublished.or(poison) {
            Some(sequence) => failed_at(sequence),
            None => DynamoDbEventResponse::default(),
        }
    }

    /// Publishes `events` in order, retrying the entries that fail. Answers the index
    /// of the first event that never went out.
    async fn publish(&self, events: &[OrderEvent]) -> Option<usize> {
        let mut unpublished: Vec<usize> = (0..events.len()).collect();
        // Each attempt but the last is followed by a pause before the next.
        for pause in BACKOFF.iter().map(Some).chain([None]) {
            if unpublished.is_empty() {
                return None;
            }
            let batch: Vec<OrderEvent> = unpublished.iter().map(|&i| events[i].clone()).collect();
            let outcomes = self.bus.publish(&batch).await;
            unpublished = unpublished
                .iter()
                .enumerate()
                .filter_map(|(at, &i)| {
                    let error = match outcomes.get(at) {
                        Some(Ok(())) => return None,
                        Some(Err(err)) => err.to_string(),
                        None => "the bus gave no outcome".to_string(),
                    };
                    let event_id = &events[i].event_id;
                    match pause {
                        Some(_) => tracing::warn!(event_id, error, "publishing failed; retrying"),
                        None => tracing::error!(event_id, error, "publishing failed"),
                    }
                    Some(i)
                })
                .collect();
            if let (Some(pause), false) = (pause, unpublished.is_empty()) {
                tokio::time::sleep(*pause).await;
            }
        }
        unpublished.first().copied()
    }
}

/// The one batch item failure: Lambda retries from this record on.
fn failed_at(sequence: Option<&str>) -> DynamoDbEventResponse {
    let mut failure = DynamoDbBatchItemFailure::default();
    // Without a sequence number Lambda counts the whole batch as failed, which is
    // still correct, only slower.
    failure.item_identifier = sequence.map(str::to_string);
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures.push(failure);
    response
}

/// Why a record cannot be published, ever: a poison record.
#[derive(Debug, thiserror::Error)]
enum RecordError {
    #[error("unreadable image: {0}")]
    Image(String),
    #[error("the image is not an order: {0}")]
    Order(#[from] StoreError),
    #[error("the order's change has no history entry")]
    NoHistory,
}

/// The event a record stands for, if any.
fn event_of(record: &EventRecord) -> Result<Option<OrderEvent>, RecordError> {
    if !is_order_item(&sdk_item(&record.change.keys)?) {
        return Ok(None);
    }
    let (before, after) = match record.event_name.as_str() {
        "INSERT" => (None, order(&record.change.new_image)?),
        "MODIFY" => (
            Some(order(&record.change.old_image)?),
            order(&record.change.new_image)?,
        ),
        "REMOVE" => return Ok(None),
        other => {
            tracing::warn!(event_name = other, "unknown stream event name; skipped");
            return Ok(None);
        }
    };
    match OrderEvent::for_change(before.as_ref(), &after) {
        Some(event) => Ok(Some(event)),
        // Rewritten without a recorded change: nothing happened to the order.
        None if before.is_some_and(|b| b.version >= after.version) => Ok(None),
        None => Err(RecordError::NoHistory),
    }
}

fn is_order_item(keys: &Item) -> bool {
    let key = |name| keys.get(name).and_then(|v| v.as_s().ok());
    key(PK).is_some_and(|pk| pk.starts_with(ORDER_PK_PREFIX))
        && key(SK).is_some_and(|sk| sk == ORDER_SK)
}

fn order(image: &impl Serialize) -> Result<Order, RecordError> {
    let item = sdk_item(image)?;
    if item.is_empty() {
        return Err(RecordError::Image(
            "missing (is the stream's view type NEW_AND_OLD_IMAGES?)".into(),
        ));
    }
    Ok(order_from_item(&item)?)
}

/// A stream image as the SDK's attribute values, which `order_item` reads.
///
/// Lambda's event holds images as `serde_dynamo` values, a crate `aws_lambda_events`
/// uses but does not re-export; their serde form is DynamoDB's JSON, so the image goes
/// through that: `{"name": {"S": "text"}, "n": {"N": "1"}, ...}`.
fn sdk_item(image: &impl Serialize) -> Result<Item, RecordError> {
    match serde_json::to_value(image) {
        Ok(Value::Object(map)) => sdk_map(map),
        Ok(Value::Null) => Ok(HashMap::new()),
        Ok(other) => Err(RecordError::Image(format!("not a map: {other}"))),
        Err(err) => Err(RecordError::Image(err.to_string())),
    }
}

fn sdk_map(map: Map<String, Value>) -> Result<Item, RecordError> {
    map.into_iter()
        .map(|(name, value)| Ok((name, attribute(value)?)))
        .collect()
}

/// One attribute value: an object with exactly one type tag.
fn attribute(value: Value) -> Result<AttributeValue, RecordError> {
    let malformed = |what: &str| RecordError::Image(format!("malformed attribute value: {what}"));
    let Value::Object(tagged) = value else {
        return Err(malformed("not an object"));
    };
    let mut tags = tagged.into_iter();
    let (Some((tag, inner)), None) = (tags.next(), tags.next()) else {
        return Err(malformed("not exactly one type tag"));
    };
    let texts = |items: Vec<Value>| -> Result<Vec<String>, RecordError> {
        items
            .into_iter()
            .map(|v| match v {
                Value::String(text) => Ok(text),
                _ => Err(malformed("a set member that is not text")),
            })
            .collect()
    };
    let blob = |text: String| -> Result<Blob, RecordError> {
        STANDARD
            .decode(text)
            .map(Blob::new)
            .map_err(|_| malformed("binary that is not base64"))
    };
    Ok(match (tag.as_str(), inner) {
        ("S", Value::String(text)) => AttributeValue::S(text),
        ("N", Value::String(number)) => AttributeValue::N(number),
        ("B", Value::String(text)) => AttributeValue::B(blob(text)?),
        ("BOOL", Value::Bool(b)) => AttributeValue::Bool(b),
        ("NULL", Value::Bool(b)) => AttributeValue::Null(b),
        ("L", Value::Array(items)) => {
            AttributeValue::L(items.into_iter().map(attribute).collect::<Result<_, _>>()?)
        }
        ("M", Value::Object(map)) => AttributeValue::M(sdk_map(map)?),
        ("SS", Value::Array(items)) => AttributeValue::Ss(texts(items)?),
        ("NS", Value::Array(items)) => AttributeValue::Ns(texts(items)?),
        ("BS", Value::Array(items)) => AttributeValue::Bs(
            texts(items)?
                .into_iter()
                .map(blob)
                .collect::<Result<_, _>>()?,
        ),
        (tag, _) => return Err(malformed(tag)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::order_item::order_key;
    use crate::domain::OrderId;
    use serde_json::json;

    #[test]
    fn every_attribute_type_converts() {
        let image = json!({
            "s": {"S": "text"},
            "n": {"N": "12.50"},
            "b": {"B": "AAEqQQ=="},
            "t": {"BOOL": true},
            "z": {"NULL": true},
            "l": {"L": [{"S": "a"}, {"N": "1"}]},
            "m": {"M": {"inner": {"M": {"deep": {"S": "x"}}}}},
            "ss": {"SS": ["a", "b"]},
            "ns": {"NS": ["1", "2.5"]},
            "bs": {"BS": ["AAEqQQ==", "QSoBAA=="]}
        });
        let item = sdk_item(&image).unwrap();
        assert_eq!(item["s"], AttributeValue::S("text".into()));
        assert_eq!(item["n"], AttributeValue::N("12.50".into()));
        assert_eq!(item["b"], AttributeValue::B(Blob::new(vec![0, 1, 42, 65])));
        assert_eq!(item["t"], AttributeValue::Bool(true));
        assert_eq!(item["z"], AttributeValue::Null(true));
        assert_eq!(
            item["l"],
            AttributeValue::L(vec![
                AttributeValue::S("a".into()),
                AttributeValue::N("1".into())
            ])
        );
        assert_eq!(
            item["m"],
            AttributeValue::M(HashMap::from([(
                "inner".into(),
                AttributeValue::M(HashMap::from([(
                    "deep".into(),
                    AttributeValue::S("x".into())
                )]))
            )]))
        );
        assert_eq!(item["ss"], AttributeValue::Ss(vec!["a".into(), "b".into()]));
        assert_eq!(
            item["ns"],
            AttributeValue::Ns(vec!["1".into(), "2.5".into()])
        );
        assert_eq!(
            item["bs"],
            AttributeValue::Bs(vec![
                Blob::new(vec![0, 1, 42, 65]),
                Blob::new(vec![65, 42, 1, 0])
            ])
        );
    }

    #[test]
    fn malformed_attributes_are_errors_not_panics() {
        for image in [
            json!({"a": "bare"}),
            json!({"a": {}}),
            json!({"a": {"S": "x", "N": "1"}}),
            json!({"a": {"S": 1}}),
            json!({"a": {"B": "not base64!"}}),
            json!({"a": {"SS": [1]}}),
            json!({"a": {"X": "x"}}),
            json!(["not", "a", "map"]),
        ] {
            assert!(sdk_item(&image).is_err(), "{image}");
        }
        assert!(sdk_item(&Value::Null).unwrap().is_empty());
    }

    #[test]
    fn order_items_are_recognised_by_the_layouts_own_keys() {
        let id = OrderId::for_cart("abc123");
        assert!(is_order_item(&order_key(&id)));
        let mut other = order_key(&id);
        other.insert(SK.into(), AttributeValue::S("RESERVATION#p001".into()));
        assert!(!is_order_item(&other));
        let idempotency = HashMap::from([
            (PK.into(), AttributeValue::S("IDEMPOTENCY#00ff".into())),
            (SK.into(), AttributeValue::S("IDEMPOTENCY".into())),
        ]);
        assert!(!is_order_item(&idempotency));
    }
}
