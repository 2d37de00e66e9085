//! How an order's parcels are laid out inside its item: the `shipments` list
//! (docs/data-design.md). Kept apart from the store so that `order_item` can read and
//! write it without importing the store.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::domain::fulfillment::label_failure::LabelFailure;
use crate::domain::fulfillment::{
    Shipment, ShipmentId, ShipmentLine, ShipmentStatus, TrackingEvent,
};
use crate::domain::time::timestamp;
use crate::domain::{Currency, Money};
use crate::ports::StoreError;

type Item = HashMap<String, AttributeValue>;

/// The order item's attribute holding its parcels.
pub const SHIPMENTS: &str = "shipments";

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub fn shipments_to_value(shipments: &[Shipment]) -> AttributeValue {
    AttributeValue::L(shipments.iter().map(shipment_to_value).collect())
}

fn shipment_to_value(shipment: &Shipment) -> AttributeValue {
    let mut map = HashMap::from([
        ("shipment_id".into(), s(shipment.shipment_id.as_str())),
        (
            "items".into(),
            AttributeValue::L(
                shipment
                    .items
                    .iter()
                    .map(|l| {
                        AttributeValue::M(HashMap::from([
                            ("product_id".into(), s(&l.product_id)),
                            ("quantity".into(), n(l.quantity)),
                        ]))
                    })
                    .collect(),
            ),
        ),
        ("status".into(), s(shipment.status.as_str())),
        (
            "tracking".into(),
            AttributeValue::L(shipment.tracking.iter().map(tracking_to_value).collect()),
        ),
        ("created_at".into(), s(timestamp(shipment.created_at))),
    ]);
    let optional = [
        ("carrier", &shipment.carrier),
        ("servicelevel", &shipment.servicelevel),
        ("tracking_number", &shipment.tracking_number),
        ("tracking_url", &shipment.tracking_url),
        ("label_url", &shipment.label_url),
        ("fingerprint", &shipment.fingerprint),
        ("label_transaction", &shipment.label_transaction),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            map.insert(name.into(), s(value));
        }
    }
    if let Some(cost) = &shipment.cost {
        map.insert(
            "cost".into(),
            AttributeValue::M(HashMap::from([
                ("amount".into(), n(cost.minor())),
                ("currency".into(), s(cost.currency().code())),
            ])),
        );
    }
    AttributeValue::M(map)
}

fn tracking_to_value(event: &TrackingEvent) -> AttributeValue {
    let mut map = HashMap::from([
        ("status".into(), s(&event.status)),
        ("status_date".into(), s(timestamp(event.status_date))),
    ]);
    if let Some(details) = &event.details {
        map.insert("details".into(), s(details));
    }
    if let Some(location) = &event.location {
        map.insert("location".into(), s(location));
    }
    AttributeValue::M(map)
}

/// The order item's parcels; none on orders written before shipments existed.
pub fn shipments_from_item(item: &Item, currency: Currency) -> Result<Vec<Shipment>, StoreError> {
    let Some(value) = item.get(SHIPMENTS) else {
        return Ok(Vec::new());
    };
    value
        .as_l()
        .map_err(|_| corrupt(SHIPMENTS, "not a list"))?
        .iter()
        .map(|v| shipment_from(map(v, SHIPMENTS)?, currency))
        .collect()
}

fn shipment_from(m: &Item, currency: Currency) -> Result<Shipment, StoreError> {
    let items = list(m, "items")?
        .iter()
        .map(|v| {
            let line = map(v, "items")?;
            Ok(ShipmentLine {
                product_id: text(line, "product_id")?,
                quantity: number(line, "quantity")?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    let tracking = list(m, "tracking")?
        .iter()
        .map(|v| {
            let event = map(v, "tracking")?;
            Ok(TrackingEvent {
                status: text(event, "status")?,
                status_date: time(event, "status_date")?,
                details: optional(event, "details")?,
                location: optional(event, "location")?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    let cost = match m.get("cost") {
        None => None,
        Some(v) => {
            let cost = map(v, "cost")?;
            let code = text(cost, "currency")?;
            let currency = Currency::from_code(&code).unwrap_or(currency);
            Some(Money::from_minor(number(cost, "amount")?, currency))
        }
    };
    Ok(Shipment {
        shipment_id: ShipmentId::parse(&text(m, "shipment_id")?)
            .ok_or_else(|| corrupt("shipment_id", "not a shipment id"))?,
        items,
        carrier: optional(m, "carrier")?,
        servicelevel: optional(m, "servicelevel")?,
        tracking_number: optional(m, "tracking_number")?,
        tracking_url: optional(m, "tracking_url")?,
        label_url: optional(m, "label_url")?,
        cost,
        status: ShipmentStatus::parse(&text(m, "status")?)
            .ok_or_else(|| corrupt("status", "unknown shipment status"))?,
        tracking,
        created_at: time(m, "created_at")?,
        fingerprint: optional(m, "fingerprint")?,
        label_transaction: optional(m, "label_transaction")?,
    })
}

/// The order item's attribute holding why its automatic label was refused.
pub const LABEL_FAILURE: &str = "label_failure";

pub fn label_failure_to_value(failure: &LabelFailure) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        (
            "messages".into(),
            AttributeValue::L(failure.messages.iter().map(s).collect()),
        ),
        ("at".into(), s(timestamp(failure.at))),
    ]))
}

/// The refusal of the order's automatic label, if it has one.
pub fn label_failure_from_item(item: &Item) -> Result<Option<LabelFailure>, StoreError> {
    let Some(value) = item.get(LABEL_FAILURE) else {
        return Ok(None);
    };
    let m = map(value, LABEL_FAILURE)?;
    let messages = list(m, "messages")?
        .iter()
        .map(|v| {
            v.as_s()
                .cloned()
                .map_err(|_| corrupt("messages", "not a string"))
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(Some(LabelFailure {
        messages,
        at: time(m, "at")?,
    }))
}

fn corrupt(field: &str, why: &str) -> StoreError {
    StoreError::Corrupt(format!("shipments.{field}: {why}"))
}

fn map<'a>(value: &'a AttributeValue, field: &str) -> Result<&'a Item, StoreError> {
    value.as_m().map_err(|_| corrupt(field, "not a map"))
}

fn list<'a>(m: &'a Item, field: &str) -> Result<&'a Vec<AttributeValue>, StoreError> {
    m.get(field)
        .ok_or_else(|| corrupt(field, "missing"))?
        .as_l()
        .map_err(|_| corrupt(field, "not a list"))
}

fn text(m: &Item, field: &str) -> Result<String, StoreError> {
    m.get(field)
        .ok_or_else(|| corrupt(field, "missing"))?
        .as_s()
        .cloned()
        .map_err(|_| corrupt(field, "not a string"))
}

fn optional(m: &Item, field: &str) -> Result<Option<String>, StoreError> {
    m.get(field).map(|_| text(m, field)).transpose()
}

fn number<T: std::str::FromStr>(m: &Item, field: &str) -> Result<T, StoreError> {
    m.get(field)
        .ok_or_else(|| corrupt(field, "missing"))?
        .as_n()
        .map_err(|_| corrupt(field, "not a number"))?
        .parse()
        .map_err(|_| corrupt(field, "out of range"))
}

fn time(m: &Item, field: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(&text(m, field)?, &Rfc3339).map_err(|_| corrupt(field, "not a time"))
}
