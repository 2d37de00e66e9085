//! How an order is laid out as a DynamoDB item (see docs/data-design.md).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::domain::Contact;
use crate::domain::billing::{Discount, Parts, Pricing, ShippingLine, TaxLine, TaxRate};
use crate::domain::payment::RefundHold;
use crate::domain::time::timestamp;
use crate::domain::{
    Currency, HistoryEntry, LineItem, Money, Order, OrderId, OrderStatus, Payment, PaymentMethod,
    PaymentStatus, Refund, Role, ShippingAddress, ShippingStatus,
};
use crate::ports::{IdempotencyKey, IdempotencyRecord, StoreError};

pub type Item = HashMap<String, AttributeValue>;

pub const PK: &str = "PK";
pub const SK: &str = "SK";
/// Marks order items; with the order's shard (`order#<shard>`) it is the partition
/// of the `by_created` index.
pub const ENTITY_ORDER: &str = "order";
/// `<status>#<shard>`: the partition of the `by_status` index.
pub const STATUS_SHARD: &str = "status_shard";
const ORDER_SK: &str = "ORDER";
const IDEMPOTENCY_SK: &str = "IDEMPOTENCY";

pub fn order_key(id: &OrderId) -> Item {
    HashMap::from([
        (PK.into(), s(format!("ORDER#{id}"))),
        (SK.into(), s(ORDER_SK)),
    ])
}

/// Keys are hashed so that any key text a client sends fits DynamoDB's key rules
/// and two callers' keys can never collide.
pub fn idempotency_key(key: &IdempotencyKey) -> Item {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{}\0{}", key.caller, key.key).as_bytes(),
    );
    HashMap::from([
        (
            PK.into(),
            s(format!("IDEMPOTENCY#{}", hex(digest.as_ref()))),
        ),
        (SK.into(), s(IDEMPOTENCY_SK)),
    ])
}

/// A caller's create counter for the window starting at `window_start` (Unix
/// seconds). It carries no index attributes, so no list ever sees it.
pub fn rate_counter_key(caller: &str, window_start: i64) -> Item {
    HashMap::from([
        (PK.into(), s(format!("RATE#{caller}"))),
        (SK.into(), s(format!("WINDOW#{window_start}"))),
    ])
}

/// How many partitions (shards) the `by_status` and `by_created` indexes spread each
/// of their keys over (`LIST_INDEX_SHARDS`). One partition takes 1,000 write units a
/// second; the arithmetic behind the default is in docs/data-design.md ("Sharded
/// indexes"). Shards may be added later (an order keeps the shard it was written with
/// and the list reads every shard up to the count), never removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListShards(u16);

impl ListShards {
    pub const DEFAULT: ListShards = ListShards(16);
    /// A list page costs one Query per shard; past this the page is the cost.
    pub const MAX: u16 = 64;

    pub fn new(count: u16) -> Option<ListShards> {
        (1..=Self::MAX)
            .contains(&count)
            .then_some(ListShards(count))
    }

    pub fn count(self) -> u16 {
        self.0
    }

    /// An order's shard, from its id alone (FNV-1a, stable across builds and
    /// versions), so every write of an order lands in the same shard and no reader
    /// has to look it up.
    pub fn of(self, id: &OrderId) -> u16 {
        let hash = id.as_str().bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        (hash % u64::from(self.0)) as u16
    }
}

impl Default for ListShards {
    fn default() -> Self {
        ListShards::DEFAULT
    }
}

/// The `by_created` partition of one shard.
pub fn created_partition(shard: u16) -> String {
    format!("{ENTITY_ORDER}#{shard}")
}

/// The `by_status` partition of one status and shard.
pub fn status_partition(status: OrderStatus, shard: u16) -> String {
    format!("{}#{shard}", status.as_str())
}

/// Sort key of the list indexes: newest first by time, order id as tie-breaker.
pub fn created_key(order: &Order) -> String {
    format!("{}#{}", timestamp(order.created_at), order.id)
}

/// Which create request wrote an order: its creation instant to the nanosecond (the
/// item's `created_at` keeps milliseconds) and who sent it. A retry of the same write
/// carries the same token; another request for the same cart, another one.
pub const CREATION: &str = "creation";

pub fn creation_token(order: &Order) -> String {
    let actor = order.history.first().map(|h| h.actor.as_str());
    format!(
        "{}#{}",
        order.created_at.unix_timestamp_nanos(),
        actor.unwrap_or_default()
    )
}

pub fn order_to_item(order: &Order, shards: ListShards) -> Item {
    let shard = shards.of(&order.id);
    let mut item = order_key(&order.id);
    item.insert(CREATION.into(), s(creation_token(order)));
    item.insert("entity".into(), s(created_partition(shard)));
    item.insert(
        STATUS_SHARD.into(),
        s(status_partition(order.status, shard)),
    );
    item.insert("order_id".into(), s(order.id.as_str()));
    item.insert("user_id".into(), s(&order.user_id));
    item.insert("cart_id".into(), s(&order.cart_id));
    item.insert("status".into(), s(order.status.as_str()));
    item.insert("payment_status".into(), s(order.payment_status.as_str()));
    item.insert("shipping_status".into(), s(order.shipping_status.as_str()));
    item.insert("payment_method".into(), s(order.payment_method.as_str()));
    item.insert("currency".into(), s(order.total.currency().code()));
    item.insert("total".into(), n(order.total.minor()));
    item.insert(
        "items".into(),
        AttributeValue::L(order.items.iter().map(line_to_value).collect()),
    );
    item.insert(
        "shipping_address".into(),
        address_to_value(&order.shipping_address),
    );
    pricing_to_item(&order.pricing, &mut item);
    if let Some(t) = &order.tracking_number {
        item.insert("tracking_number".into(), s(t));
    }
    if let Some(c) = &order.carrier {
        item.insert("carrier".into(), s(c));
    }
    if let Some(payment) = &order.payment {
        item.insert(PAYMENT.into(), payment_to_value(payment));
    }
    if let Some(email) = &order.contact.email {
        item.insert("contact_email".into(), s(email));
        if order.contact.email_verified {
            item.insert("contact_email_verified".into(), AttributeValue::Bool(true));
        }
    }
    if let Some(phone) = &order.contact.phone {
        item.insert("contact_phone".into(), s(phone));
    }
    item.insert("created_at".into(), s(timestamp(order.created_at)));
    item.insert("updated_at".into(), s(timestamp(order.updated_at)));
    item.insert("created_key".into(), s(created_key(order)));
    item.insert("version".into(), n(order.version));
    item.insert(
        "history".into(),
        AttributeValue::L(order.history.iter().map(history_to_value).collect()),
    );
    if !order.shipments.is_empty() {
        item.insert(
            super::shipment_item::SHIPMENTS.into(),
            super::shipment_item::shipments_to_value(&order.shipments),
        );
    }
    if let Some(failure) = &order.label_failure {
        item.insert(
            super::shipment_item::LABEL_FAILURE.into(),
            super::shipment_item::label_failure_to_value(failure),
        );
    }
    if !order.returns.is_empty() {
        item.insert(
            super::return_item::RETURNS.into(),
            super::return_item::returns_to_value(&order.returns),
        );
    }
    item
}

fn line_to_value(line: &LineItem) -> AttributeValue {
    let mut map = HashMap::from([
        ("product_id".into(), s(&line.product_id)),
        ("name".into(), s(&line.name)),
        ("quantity".into(), n(line.quantity)),
        ("price".into(), n(line.price.minor())),
    ]);
    // Written only when there is one, so an order without money lines (the seed's)
    // is the item it always was: its size is the cost of every write.
    if line.discount.minor() != 0 {
        map.insert("discount".into(), n(line.discount.minor()));
    }
    if !line.tax_lines.is_empty() {
        map.insert("tax_lines".into(), taxes_to_value(&line.tax_lines));
    }
    AttributeValue::M(map)
}

/// Shipping, discounts and `taxes_included`, each only when the order has it.
fn pricing_to_item(pricing: &Pricing, item: &mut Item) {
    if pricing.taxes_included {
        item.insert("taxes_included".into(), AttributeValue::Bool(true));
    }
    if let Some(shipping) = &pricing.shipping {
        let mut map = HashMap::from([
            ("method".into(), s(&shipping.method)),
            ("name".into(), s(&shipping.name)),
            ("amount".into(), n(shipping.amount.minor())),
        ]);
        if !shipping.tax_lines.is_empty() {
            map.insert("tax_lines".into(), taxes_to_value(&shipping.tax_lines));
        }
        item.insert("shipping".into(), AttributeValue::M(map));
    }
    if !pricing.discounts.is_empty() {
        let discounts = pricing.discounts.iter().map(|d| {
            AttributeValue::M(HashMap::from([
                ("code".into(), s(&d.code)),
                ("amount".into(), n(d.amount.minor())),
            ]))
        });
        item.insert("discounts".into(), AttributeValue::L(discounts.collect()));
    }
}

/// A rate is kept as its decimal text (`0.19`), as documents print it.
fn taxes_to_value(taxes: &[TaxLine]) -> AttributeValue {
    AttributeValue::L(
        taxes
            .iter()
            .map(|t| {
                AttributeValue::M(HashMap::from([
                    ("name".into(), s(&t.name)),
                    ("rate".into(), s(t.rate.to_string())),
                    ("amount".into(), n(t.amount.minor())),
                ]))
            })
            .collect(),
    )
}

fn taxes_from(fields: &Fields<'_>, currency: Currency) -> Result<Vec<TaxLine>, StoreError> {
    let Some(list) = fields.0.get("tax_lines") else {
        return Ok(Vec::new());
    };
    list.as_l()
        .map_err(|_| corrupt("tax_lines", "not a list"))?
        .iter()
        .map(|v| {
            let t = Fields(as_map(v, "tax_lines")?);
            Ok(TaxLine {
                name: t.string("name")?,
                rate: TaxRate::parse(t.str("rate")?)
                    .map_err(|_| corrupt("tax_lines", "bad rate"))?,
                amount: Money::from_minor(t.number("amount")?, currency),
            })
        })
        .collect()
}

fn pricing_from(f: &Fields<'_>, currency: Currency) -> Result<Pricing, StoreError> {
    let money = |minor| Money::from_minor(minor, currency);
    let shipping = match f.0.get("shipping") {
        None => None,
        Some(v) => {
            let m = Fields(as_map(v, "shipping")?);
            Some(ShippingLine {
                method: m.string("method")?,
                name: m.string("name")?,
                amount: money(m.number("amount")?),
                tax_lines: taxes_from(&m, currency)?,
            })
        }
    };
    let discounts = match f.0.get("discounts") {
        None => Vec::new(),
        Some(_) => f
            .list("discounts")?
            .iter()
            .map(|v| {
                let d = Fields(as_map(v, "discounts")?);
                Ok(Discount {
                    code: d.string("code")?,
                    amount: money(d.number("amount")?),
                })
            })
            .collect::<Result<_, StoreError>>()?,
    };
    Ok(Pricing {
        taxes_included: matches!(f.0.get("taxes_included"), Some(AttributeValue::Bool(true))),
        shipping,
        discounts,
    })
}

pub fn address_to_value(a: &ShippingAddress) -> AttributeValue {
    let mut map = HashMap::from([
        ("name".into(), s(&a.name)),
        ("address".into(), s(&a.address)),
        ("city".into(), s(&a.city)),
        ("zip".into(), s(&a.zip)),
        ("country".into(), s(&a.country)),
    ]);
    if let Some(state) = &a.state {
        map.insert("state".into(), s(state));
    }
    AttributeValue::M(map)
}

/// The order's online payment: one map, so that a payment change is one `SET` of
/// its parts.
pub const PAYMENT: &str = "payment";

pub fn payment_to_value(p: &Payment) -> AttributeValue {
    let mut map = HashMap::from([
        ("intent_id".into(), s(&p.intent_id)),
        ("client_secret".into(), s(&p.client_secret)),
        (
            "refunds".into(),
            AttributeValue::L(p.refunds.iter().map(refund_to_value).collect()),
        ),
        (
            "applied_events".into(),
            AttributeValue::L(p.applied_events.iter().map(s).collect()),
        ),
    ]);
    if let Some(received) = &p.received {
        map.insert("received".into(), money_to_value(received));
    }
    if let Some(hold) = &p.refund_in_flight {
        map.insert("refund_in_flight".into(), hold_to_value(hold));
    }
    if let Some(problem) = &p.problem {
        map.insert("problem".into(), s(problem));
    }
    AttributeValue::M(map)
}

pub fn money_to_value(m: &Money) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("amount".into(), n(m.minor())),
        ("currency".into(), s(m.currency().code())),
    ]))
}

pub fn refund_to_value(r: &Refund) -> AttributeValue {
    let mut map = HashMap::from([
        ("key".into(), s(&r.key)),
        ("refund_id".into(), s(&r.refund_id)),
        ("amount".into(), money_to_value(&r.amount)),
        ("actor".into(), s(&r.actor)),
        ("at".into(), s(timestamp(r.at))),
    ]);
    if let Some(reason) = &r.reason {
        map.insert("reason".into(), s(reason));
    }
    if let Some(parts) = &r.parts {
        map.insert("parts".into(), parts_to_value(parts));
    }
    AttributeValue::M(map)
}

/// A refund's allocation as its amounts alone, in minor units, in the order of
/// `Parts::amounts` (each line's net and taxes, then the shipping's): the lines are
/// the order's, which never change, so they are not copied into every refund.
fn parts_to_value(parts: &Parts) -> AttributeValue {
    AttributeValue::L(parts.amounts().into_iter().map(n).collect())
}

fn parts_from(
    fields: &Fields<'_>,
    charged: &Parts,
    field: &str,
) -> Result<Option<Parts>, StoreError> {
    if fields.0.get("parts").is_none() {
        return Ok(None);
    }
    let amounts = fields
        .list("parts")?
        .iter()
        .map(|v| {
            v.as_n()
                .ok()
                .and_then(|n| n.parse::<i64>().ok())
                .ok_or_else(|| corrupt(field, "a part that is not a whole number"))
        })
        .collect::<Result<Vec<i64>, StoreError>>()?;
    charged
        .holding(&amounts)
        .map(Some)
        .ok_or_else(|| corrupt(field, "parts that are not the order's"))
}

pub fn hold_to_value(h: &RefundHold) -> AttributeValue {
    let mut map = HashMap::from([
        ("key".into(), s(&h.key)),
        ("amount".into(), money_to_value(&h.amount)),
        ("actor".into(), s(&h.actor)),
        ("at".into(), s(timestamp(h.at))),
    ]);
    if let Some(reason) = &h.reason {
        map.insert("reason".into(), s(reason));
    }
    if let Some(parts) = &h.parts {
        map.insert("parts".into(), parts_to_value(parts));
    }
    AttributeValue::M(map)
}

fn money_from(value: &AttributeValue, field: &str) -> Result<Money, StoreError> {
    let m = Fields(as_map(value, field)?);
    let currency = Currency::from_code(m.str("currency")?)
        .ok_or_else(|| corrupt(field, "unknown currency"))?;
    Ok(Money::from_minor(m.number("amount")?, currency))
}

/// The order's payment; `charged`, the order's parts, gives its refunds' allocations
/// their shape.
fn payment_from(value: &AttributeValue, charged: &Parts) -> Result<Payment, StoreError> {
    let p = Fields(as_map(value, PAYMENT)?);
    let refunds = p
        .list("refunds")?
        .iter()
        .map(|v| {
            let r = Fields(as_map(v, "refunds")?);
            Ok(Refund {
                key: r.string("key")?,
                refund_id: r.string("refund_id")?,
                amount: money_from(r.get("amount")?, "refunds")?,
                parts: parts_from(&r, charged, "refunds")?,
                reason: r.optional("reason")?,
                actor: r.string("actor")?,
                at: r.time("at")?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    let refund_in_flight =
        p.0.get("refund_in_flight")
            .map(|v| {
                let h = Fields(as_map(v, "refund_in_flight")?);
                Ok::<_, StoreError>(RefundHold {
                    key: h.string("key")?,
                    amount: money_from(h.get("amount")?, "refund_in_flight")?,
                    parts: parts_from(&h, charged, "refund_in_flight")?,
                    reason: h.optional("reason")?,
                    actor: h.string("actor")?,
                    at: h.time("at")?,
                })
            })
            .transpose()?;
    let applied_events = p
        .list("applied_events")?
        .iter()
        .map(|v| {
            v.as_s()
                .cloned()
                .map_err(|_| corrupt("applied_events", "not a string"))
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(Payment {
        intent_id: p.string("intent_id")?,
        client_secret: p.string("client_secret")?,
        received: p
            .0
            .get("received")
            .map(|v| money_from(v, "received"))
            .transpose()?,
        refunds,
        refund_in_flight,
        problem: p.optional("problem")?,
        applied_events,
    })
}

pub fn history_to_value(entry: &HistoryEntry) -> AttributeValue {
    let mut map = HashMap::from([
        ("at".into(), s(timestamp(entry.at))),
        ("actor".into(), s(&entry.actor)),
        ("role".into(), s(entry.role.as_str())),
        ("status".into(), s(entry.status.as_str())),
    ]);
    if let Some(shipping) = entry.shipping_status {
        map.insert("shipping_status".into(), s(shipping.as_str()));
    }
    if let Some(payment) = entry.payment_status {
        map.insert("payment_status".into(), s(payment.as_str()));
    }
    if let Some(reason) = &entry.reason {
        map.insert("reason".into(), s(reason));
    }
    AttributeValue::M(map)
}

pub fn order_from_item(item: &Item) -> Result<Order, StoreError> {
    let f = Fields(item);
    let currency = Currency::from_code(f.str("currency")?)
        .ok_or_else(|| corrupt("currency", "unknown code"))?;
    let items = f
        .list("items")?
        .iter()
        .map(|v| {
            let line = Fields(as_map(v, "items")?);
            let discount = match line.0.get("discount") {
                None => 0,
                Some(_) => line.number("discount")?,
            };
            Ok(LineItem {
                product_id: line.string("product_id")?,
                name: line.string("name")?,
                quantity: line.number("quantity")?,
                price: Money::from_minor(line.number("price")?, currency),
                discount: Money::from_minor(discount, currency),
                tax_lines: taxes_from(&line, currency)?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    let address = Fields(as_map(f.get("shipping_address")?, "shipping_address")?);
    let user_id = f.string("user_id")?;
    let history = f
        .list("history")?
        .iter()
        .map(|v| {
            let entry = Fields(as_map(v, "history")?);
            let actor = entry.string("actor")?;
            let role = match entry.optional("role")? {
                Some(role) => {
                    Role::parse(&role).ok_or_else(|| corrupt("history", "unknown role"))?
                }
                // Written before roles were recorded: the customer, fulfillment's
                // consumer (whose actor is `fulfillment`), or else support.
                None if actor == user_id => Role::Owner,
                None if actor == Role::Fulfillment.as_str() => Role::Fulfillment,
                None => Role::Admin,
            };
            Ok(HistoryEntry {
                at: entry.time("at")?,
                actor,
                role,
                status: entry.parsed("status", OrderStatus::parse)?,
                shipping_status: entry
                    .optional("shipping_status")?
                    .map(|s| {
                        ShippingStatus::parse(&s)
                            .ok_or_else(|| corrupt("history", "unknown shipping status"))
                    })
                    .transpose()?,
                payment_status: entry
                    .optional("payment_status")?
                    .map(|s| {
                        PaymentStatus::parse(&s)
                            .ok_or_else(|| corrupt("history", "unknown payment status"))
                    })
                    .transpose()?,
                reason: entry.optional("reason")?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    let mut order = Order {
        id: f.parsed("order_id", OrderId::parse)?,
        user_id,
        cart_id: f.string("cart_id")?,
        status: f.parsed("status", OrderStatus::parse)?,
        payment_status: f.parsed("payment_status", PaymentStatus::parse)?,
        shipping_status: f.parsed("shipping_status", ShippingStatus::parse)?,
        payment_method: f.parsed("payment_method", PaymentMethod::parse)?,
        items,
        pricing: pricing_from(&f, currency)?,
        total: Money::from_minor(f.number("total")?, currency),
        shipping_address: ShippingAddress {
            name: address.string("name")?,
            address: address.string("address")?,
            city: address.string("city")?,
            state: address.optional("state")?,
            zip: address.string("zip")?,
            country: address.string("country")?,
        },
        tracking_number: f.optional("tracking_number")?,
        carrier: f.optional("carrier")?,
        payment: None,
        contact: Contact {
            email: f.optional("contact_email")?,
            phone: f.optional("contact_phone")?,
            email_verified: item
                .get("contact_email_verified")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
        },
        created_at: f.time("created_at")?,
        updated_at: f.time("updated_at")?,
        version: f.number("version")?,
        history,
        shipments: super::shipment_item::shipments_from_item(item, currency)?,
        label_failure: super::shipment_item::label_failure_from_item(item)?,
        returns: super::return_item::returns_from_item(item, currency)?,
    };
    // Read once the lines are: a refund's allocation is stored as amounts of them.
    if let Some(payment) = item.get(PAYMENT) {
        order.payment = Some(payment_from(payment, &Parts::charged(&order))?);
    }
    Ok(order)
}

pub fn idempotency_to_item(record: &IdempotencyRecord) -> Item {
    let mut item = idempotency_key(&record.key);
    item.insert("fingerprint".into(), s(&record.fingerprint));
    item.insert("order_id".into(), s(record.order_id.as_str()));
    // DynamoDB's TTL deletes the record a while after this; reads check it too.
    item.insert("expires_at".into(), n(record.expires_at.unix_timestamp()));
    item
}

pub fn idempotency_from_item(
    key: &IdempotencyKey,
    item: &Item,
) -> Result<IdempotencyRecord, StoreError> {
    let f = Fields(item);
    let expires_at: i64 = f.number("expires_at")?;
    Ok(IdempotencyRecord {
        key: key.clone(),
        fingerprint: f.string("fingerprint")?,
        order_id: f.parsed("order_id", OrderId::parse)?,
        expires_at: OffsetDateTime::from_unix_timestamp(expires_at)
            .map_err(|_| corrupt("expires_at", "out of range"))?,
    })
}

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn corrupt(field: &str, why: &str) -> StoreError {
    StoreError::Corrupt(format!("{field}: {why}"))
}

fn as_map<'a>(value: &'a AttributeValue, field: &str) -> Result<&'a Item, StoreError> {
    value.as_m().map_err(|_| corrupt(field, "not a map"))
}

/// Typed reads of an item's attributes, naming the attribute when one is off.
struct Fields<'a>(&'a Item);

impl<'a> Fields<'a> {
    fn get(&self, name: &str) -> Result<&'a AttributeValue, StoreError> {
        self.0.get(name).ok_or_else(|| corrupt(name, "missing"))
    }

    fn str(&self, name: &str) -> Result<&'a str, StoreError> {
        self.get(name)?
            .as_s()
            .map(String::as_str)
            .map_err(|_| corrupt(name, "not a string"))
    }

    fn string(&self, name: &str) -> Result<String, StoreError> {
        self.str(name).map(str::to_string)
    }

    fn optional(&self, name: &str) -> Result<Option<String>, StoreError> {
        match self.0.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(_) => self.string(name).map(Some),
        }
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<T, StoreError> {
        self.get(name)?
            .as_n()
            .map_err(|_| corrupt(name, "not a number"))?
            .parse()
            .map_err(|_| corrupt(name, "number out of range"))
    }

    fn list(&self, name: &str) -> Result<&'a Vec<AttributeValue>, StoreError> {
        self.get(name)?
            .as_l()
            .map_err(|_| corrupt(name, "not a list"))
    }

    fn time(&self, name: &str) -> Result<OffsetDateTime, StoreError> {
        OffsetDateTime::parse(self.str(name)?, &Rfc3339).map_err(|_| corrupt(name, "not a time"))
    }

    fn parsed<T>(&self, name: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T, StoreError> {
        parse(self.str(name)?).ok_or_else(|| corrupt(name, "unknown value"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const SHARD_OF_ABC123: u16 = 8;

    #[test]
    fn an_orders_shard_is_stable_and_orders_spread_over_every_shard() {
        let shards = ListShards::DEFAULT;
        // Written into stored items: a change of the hash would strand them.
        assert_eq!(shards.of(&OrderId::for_cart("abc123")), SHARD_OF_ABC123);
        let mut counts = vec![0u32; usize::from(shards.count())];
        for n in 0..1600 {
            let id = OrderId::for_cart(&format!("cart-{n}"));
            counts[usize::from(shards.of(&id))] += 1;
        }
        // 100 each on average; none starved or doubled.
        assert!(
            counts.iter().all(|&c| (60..=140).contains(&c)),
            "{counts:?}"
        );
        assert_eq!(ListShards::new(0), None);
        assert_eq!(ListShards::new(ListShards::MAX + 1), None);
    }

    #[test]
    fn timestamps_have_fixed_width_so_they_sort_as_text() {
        assert_eq!(
            timestamp(datetime!(2026-11-25 20:31:00 UTC)),
            "2026-11-25T20:31:00.000Z"
        );
        assert_eq!(
            timestamp(datetime!(2026-11-25 20:31:00.5 UTC)),
            "2026-11-25T20:31:00.500Z"
        );
        assert_eq!(
            timestamp(datetime!(2026-11-25 20:31:00.123456 UTC)),
            "2026-11-25T20:31:00.123Z"
        );
        assert_eq!(
            timestamp(datetime!(2026-11-25 21:31:00.1 +01:00)),
            "2026-11-25T20:31:00.100Z"
        );
    }
}
