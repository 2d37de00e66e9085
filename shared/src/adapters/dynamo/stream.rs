//! The table's change stream, as Lambda's DynamoDB event source delivers it: each
//! record of an order item becomes the change it records (the order before and
//! after). Everything else in the table (idempotency records, stock, webhooks) is
//! skipped.

use std::collections::HashMap;

use aws_lambda_events::event::dynamodb::EventRecord;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::{Map, Value};

use super::order_item::{Item, PK, SK, order_from_item};
use crate::domain::Order;
use crate::ports::StoreError;

/// The keys of an order item, as `order_item::order_key` writes them.
const ORDER_PK_PREFIX: &str = "ORDER#";
const ORDER_SK: &str = "ORDER";

/// One recorded change of an order: `before` is `None` for a new order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedChange {
    pub before: Option<Order>,
    pub after: Order,
}

/// Why a record cannot be read, ever: a poison record.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("unreadable image: {0}")]
    Image(String),
    #[error("the image is not an order: {0}")]
    Order(#[from] StoreError),
}

/// The change a record stands for; `None` for records of other items and removals.
pub fn recorded_change(record: &EventRecord) -> Result<Option<RecordedChange>, RecordError> {
    if !is_order_item(&sdk_item(&record.change.keys)?) {
        return Ok(None);
    }
    match record.event_name.as_str() {
        "INSERT" => Ok(Some(RecordedChange {
            before: None,
            after: order(&record.change.new_image)?,
        })),
        "MODIFY" => Ok(Some(RecordedChange {
            before: Some(order(&record.change.old_image)?),
            after: order(&record.change.new_image)?,
        })),
        // Orders are never deleted; idempotency records expire by TTL.
        "REMOVE" => Ok(None),
        other => {
            tracing::warn!(event_name = other, "unknown stream event name; skipped");
            Ok(None)
        }
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
    use crate::adapters::dynamo::order_item::order_key;
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
