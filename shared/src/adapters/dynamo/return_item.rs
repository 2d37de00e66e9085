//! How an order's returns are laid out inside its item: the `returns` list
//! (docs/data-design.md). Kept apart from the store so that `order_item` can read and
//! write it without importing the store.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::domain::billing::refund::{LinePart, ShippingPart};
use crate::domain::billing::{Parts, TaxLine, TaxRate};
use crate::domain::fulfillment::ShipmentStatus;
use crate::domain::fulfillment::TrackingEvent;
use crate::domain::fulfillment::returns::{
    Receipt, ReceivedLine, RefundState, Return, ReturnId, ReturnLabel, ReturnLine, ReturnReason,
    ReturnStatus, Step,
};
use crate::domain::time::timestamp;
use crate::domain::{Currency, Money, Role};
use crate::ports::StoreError;

type Item = HashMap<String, AttributeValue>;

/// The order item's attribute holding its returns.
pub const RETURNS: &str = "returns";

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn m(entries: Vec<(&str, AttributeValue)>) -> AttributeValue {
    AttributeValue::M(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

fn l<T>(items: &[T], each: impl Fn(&T) -> AttributeValue) -> AttributeValue {
    AttributeValue::L(items.iter().map(each).collect())
}

pub fn returns_to_value(returns: &[Return]) -> AttributeValue {
    l(returns, return_to_value)
}

fn step_to_value(step: &Step) -> AttributeValue {
    m(vec![
        ("at", s(timestamp(step.at))),
        ("actor", s(&step.actor)),
        ("role", s(step.role.as_str())),
    ])
}

fn return_to_value(ret: &Return) -> AttributeValue {
    let mut map = HashMap::from([
        ("return_id".to_string(), s(ret.return_id.as_str())),
        (
            "items".to_string(),
            l(&ret.items, |line| {
                let mut entries = vec![
                    ("product_id", s(&line.product_id)),
                    ("quantity", n(line.quantity)),
                    ("reason", s(line.reason.as_str())),
                ];
                if let Some(note) = &line.note {
                    entries.push(("note", s(note)));
                }
                m(entries)
            }),
        ),
        ("status".to_string(), s(ret.status.as_str())),
        ("requested".to_string(), step_to_value(&ret.requested)),
    ]);
    let steps = [
        ("approved", &ret.approved),
        ("declined", &ret.declined),
        ("cancelled", &ret.cancelled),
        ("received", &ret.received),
    ];
    for (name, step) in steps {
        if let Some(step) = step {
            map.insert(name.into(), step_to_value(step));
        }
    }
    for (name, value) in [
        ("note", &ret.note),
        ("decline_reason", &ret.decline_reason),
        ("fingerprint", &ret.fingerprint),
    ] {
        if let Some(value) = value {
            map.insert(name.into(), s(value));
        }
    }
    if let Some(receipt) = &ret.receipt {
        map.insert("receipt".into(), receipt_to_value(receipt));
    }
    if let Some(label) = &ret.label {
        map.insert("label".into(), label_to_value(label));
    }
    AttributeValue::M(map)
}

fn receipt_to_value(r: &Receipt) -> AttributeValue {
    let mut entries = vec![
        (
            "lines",
            l(&r.lines, |line| {
                m(vec![
                    ("product_id", s(&line.product_id)),
                    ("quantity", n(line.quantity)),
                    ("restock", AttributeValue::Bool(line.restock)),
                ])
            }),
        ),
        ("refund_shipping", AttributeValue::Bool(r.refund_shipping)),
        ("restocking_fee", n(r.restocking_fee.minor())),
        ("refund", n(r.refund.minor())),
        ("allocation", parts_to_value(&r.allocation)),
        ("refund_state", s(r.refund_state.as_str())),
        ("restocked", AttributeValue::Bool(r.restocked)),
    ];
    if let Some(id) = &r.refund_id {
        entries.push(("refund_id", s(id)));
    }
    if let Some(fingerprint) = &r.fingerprint {
        entries.push(("fingerprint", s(fingerprint)));
    }
    m(entries)
}

fn taxes_to_value(taxes: &[TaxLine]) -> AttributeValue {
    l(taxes, |t| {
        m(vec![
            ("name", s(&t.name)),
            ("rate", s(t.rate.to_string())),
            ("amount", n(t.amount.minor())),
        ])
    })
}

fn parts_to_value(parts: &Parts) -> AttributeValue {
    let mut entries = vec![(
        "lines",
        l(&parts.lines, |line| {
            m(vec![
                ("product_id", s(&line.product_id)),
                ("description", s(&line.description)),
                ("net", n(line.net.minor())),
                ("tax_lines", taxes_to_value(&line.tax_lines)),
            ])
        }),
    )];
    if let Some(shipping) = &parts.shipping {
        entries.push((
            "shipping",
            m(vec![
                ("description", s(&shipping.description)),
                ("net", n(shipping.net.minor())),
                ("tax_lines", taxes_to_value(&shipping.tax_lines)),
            ]),
        ));
    }
    m(entries)
}

fn label_to_value(label: &ReturnLabel) -> AttributeValue {
    let mut entries = vec![
        ("carrier", s(&label.carrier)),
        ("tracking_number", s(&label.tracking_number)),
        ("transaction_id", s(&label.transaction_id)),
        ("status", s(label.status.as_str())),
        (
            "tracking",
            l(&label.tracking, |t| {
                let mut entries = vec![
                    ("status", s(&t.status)),
                    ("status_date", s(timestamp(t.status_date))),
                ];
                if let Some(details) = &t.details {
                    entries.push(("details", s(details)));
                }
                if let Some(location) = &t.location {
                    entries.push(("location", s(location)));
                }
                m(entries)
            }),
        ),
    ];
    if let Some(url) = &label.tracking_url {
        entries.push(("tracking_url", s(url)));
    }
    if let Some(url) = &label.label_url {
        entries.push(("label_url", s(url)));
    }
    m(entries)
}

/// The order item's returns; none on orders written before returns existed.
pub fn returns_from_item(item: &Item, currency: Currency) -> Result<Vec<Return>, StoreError> {
    let Some(value) = item.get(RETURNS) else {
        return Ok(Vec::new());
    };
    value
        .as_l()
        .map_err(|_| corrupt(RETURNS, "not a list"))?
        .iter()
        .map(|v| return_from(map(v, RETURNS)?, currency))
        .collect()
}

fn return_from(r: &Item, currency: Currency) -> Result<Return, StoreError> {
    let items = list(r, "items")?
        .iter()
        .map(|v| {
            let line = map(v, "items")?;
            Ok(ReturnLine {
                product_id: text(line, "product_id")?,
                quantity: number(line, "quantity")?,
                reason: ReturnReason::parse(&text(line, "reason")?)
                    .ok_or_else(|| corrupt("reason", "unknown reason"))?,
                note: optional(line, "note")?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    let step = |name: &str| r.get(name).map(|v| step_from(map(v, name)?)).transpose();
    Ok(Return {
        return_id: ReturnId::parse(&text(r, "return_id")?)
            .ok_or_else(|| corrupt("return_id", "not a return id"))?,
        items,
        note: optional(r, "note")?,
        status: ReturnStatus::parse(&text(r, "status")?)
            .ok_or_else(|| corrupt("status", "unknown return status"))?,
        requested: step("requested")?.ok_or_else(|| corrupt("requested", "missing"))?,
        approved: step("approved")?,
        declined: step("declined")?,
        decline_reason: optional(r, "decline_reason")?,
        cancelled: step("cancelled")?,
        received: step("received")?,
        receipt: r
            .get("receipt")
            .map(|v| receipt_from(map(v, "receipt")?, currency))
            .transpose()?,
        label: r
            .get("label")
            .map(|v| label_from(map(v, "label")?))
            .transpose()?,
        fingerprint: optional(r, "fingerprint")?,
    })
}

fn step_from(m: &Item) -> Result<Step, StoreError> {
    Ok(Step {
        at: time(m, "at")?,
        actor: text(m, "actor")?,
        role: Role::parse(&text(m, "role")?).ok_or_else(|| corrupt("role", "unknown role"))?,
    })
}

fn receipt_from(r: &Item, currency: Currency) -> Result<Receipt, StoreError> {
    let money = |field: &str| Ok::<_, StoreError>(Money::from_minor(number(r, field)?, currency));
    let lines = list(r, "lines")?
        .iter()
        .map(|v| {
            let line = map(v, "lines")?;
            Ok(ReceivedLine {
                product_id: text(line, "product_id")?,
                quantity: number(line, "quantity")?,
                restock: flag(line, "restock")?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(Receipt {
        lines,
        refund_shipping: flag(r, "refund_shipping")?,
        restocking_fee: money("restocking_fee")?,
        refund: money("refund")?,
        allocation: parts_from(
            map(
                r.get("allocation")
                    .ok_or_else(|| corrupt("allocation", "missing"))?,
                "allocation",
            )?,
            currency,
        )?,
        refund_state: RefundState::parse(&text(r, "refund_state")?)
            .ok_or_else(|| corrupt("refund_state", "unknown refund state"))?,
        refund_id: optional(r, "refund_id")?,
        restocked: flag(r, "restocked")?,
        fingerprint: optional(r, "fingerprint")?,
    })
}

fn taxes_from(m: &Item, currency: Currency) -> Result<Vec<TaxLine>, StoreError> {
    list(m, "tax_lines")?
        .iter()
        .map(|v| {
            let t = map(v, "tax_lines")?;
            Ok(TaxLine {
                name: text(t, "name")?,
                rate: TaxRate::parse(&text(t, "rate")?)
                    .map_err(|_| corrupt("tax_lines", "bad rate"))?,
                amount: Money::from_minor(number(t, "amount")?, currency),
            })
        })
        .collect()
}

fn parts_from(p: &Item, currency: Currency) -> Result<Parts, StoreError> {
    let lines = list(p, "lines")?
        .iter()
        .map(|v| {
            let line = map(v, "lines")?;
            Ok(LinePart {
                product_id: text(line, "product_id")?,
                description: text(line, "description")?,
                net: Money::from_minor(number(line, "net")?, currency),
                tax_lines: taxes_from(line, currency)?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    let shipping = p
        .get("shipping")
        .map(|v| {
            let shipping = map(v, "shipping")?;
            Ok::<_, StoreError>(ShippingPart {
                description: text(shipping, "description")?,
                net: Money::from_minor(number(shipping, "net")?, currency),
                tax_lines: taxes_from(shipping, currency)?,
            })
        })
        .transpose()?;
    Ok(Parts {
        currency,
        lines,
        shipping,
    })
}

fn label_from(m: &Item) -> Result<ReturnLabel, StoreError> {
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
    Ok(ReturnLabel {
        carrier: text(m, "carrier")?,
        tracking_number: text(m, "tracking_number")?,
        tracking_url: optional(m, "tracking_url")?,
        label_url: optional(m, "label_url")?,
        transaction_id: text(m, "transaction_id")?,
        status: ShipmentStatus::parse(&text(m, "status")?)
            .ok_or_else(|| corrupt("label.status", "unknown status"))?,
        tracking,
    })
}

fn corrupt(field: &str, why: &str) -> StoreError {
    StoreError::Corrupt(format!("returns.{field}: {why}"))
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

fn flag(m: &Item, field: &str) -> Result<bool, StoreError> {
    m.get(field)
        .ok_or_else(|| corrupt(field, "missing"))?
        .as_bool()
        .copied()
        .map_err(|_| corrupt(field, "not a boolean"))
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
