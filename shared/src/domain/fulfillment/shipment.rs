//! Shipments: an order ships in one or more parcels, line by line. Each parcel has
//! a hand-entered tracking number or a bought label, and moves through the carrier's
//! statuses. The order's own status follows its parcels: `shipped` once nothing is
//! left unshipped, `delivered` once every parcel is.
//!
//! Everything here is a pure function of the order as read: the service plans a
//! change, the store writes it in one conditional write on the version it was
//! planned from.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::domain::lifecycle::Role;
use crate::domain::money::Money;
use crate::domain::order::{HistoryEntry, Order, OrderStatus, ShippingStatus};
use crate::domain::validation::FieldErrors;

named_enum! {
    /// Where a parcel is: Shippo's tracking statuses, in our words.
    ShipmentStatus {
        LabelCreated => "label_created",
        InTransit => "in_transit",
        Delivered => "delivered",
        Returned => "returned",
        Failure => "failure",
    }
}

/// `SHP` and 16 Crockford base32 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShipmentId(String);

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl ShipmentId {
    /// The shipment an idempotent request makes: the same order, caller and key name
    /// the same shipment, so a retry finds the one its first attempt wrote.
    pub fn for_request(order: &str, caller: &str, key: &str) -> ShipmentId {
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            format!("shipment:{order}\0{caller}\0{key}").as_bytes(),
        );
        ShipmentId::from_bytes(digest.as_ref())
    }

    /// A shipment of its own (no idempotency key).
    pub fn fresh() -> ShipmentId {
        let mut bytes = [0u8; 10];
        // Only fails when the OS has no randomness, and then nothing else works either.
        let _ = crate::domain::random::fill(&mut bytes);
        ShipmentId::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8]) -> ShipmentId {
        let mut bits: u128 = 0;
        for byte in &bytes[..10] {
            bits = (bits << 8) | u128::from(*byte);
        }
        let mut id = String::from("SHP");
        for i in (0..16).rev() {
            id.push(CROCKFORD[((bits >> (i * 5)) & 31) as usize] as char);
        }
        ShipmentId(id)
    }

    pub fn parse(text: &str) -> Option<ShipmentId> {
        let rest = text.strip_prefix("SHP")?;
        (rest.len() == 16 && rest.bytes().all(|b| CROCKFORD.contains(&b)))
            .then(|| ShipmentId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ShipmentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A product and how many of it go in one parcel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipmentLine {
    pub product_id: String,
    pub quantity: u32,
}

/// One status report of the carrier, as Shippo's `tracking_history` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingEvent {
    /// Shippo's word: `PRE_TRANSIT`, `TRANSIT`, `DELIVERED`, `RETURNED`, `FAILURE`.
    pub status: String,
    pub status_date: OffsetDateTime,
    pub details: Option<String>,
    pub location: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipment {
    pub shipment_id: ShipmentId,
    pub items: Vec<ShipmentLine>,
    /// Shippo's carrier token, lower case (`usps`, `ups`).
    pub carrier: Option<String>,
    pub servicelevel: Option<String>,
    pub tracking_number: Option<String>,
    pub tracking_url: Option<String>,
    pub label_url: Option<String>,
    /// What the label cost.
    pub cost: Option<Money>,
    pub status: ShipmentStatus,
    /// The carrier's reports, oldest first.
    pub tracking: Vec<TrackingEvent>,
    pub created_at: OffsetDateTime,
    /// The canonical request body's hash, so a replay with another body is told apart.
    pub fingerprint: Option<String>,
    /// Shippo's transaction of a bought label (to void it).
    pub label_transaction: Option<String>,
}

/// A box as Shippo's Parcel object describes it: decimal dimensions and weight with
/// their units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parcel {
    pub length: String,
    pub width: String,
    pub height: String,
    pub distance_unit: String,
    pub weight: String,
    pub mass_unit: String,
}

impl Default for Parcel {
    /// A medium box of 2 lb, when neither the request nor the settings name one.
    fn default() -> Self {
        Parcel {
            length: "10".into(),
            width: "8".into(),
            height: "4".into(),
            distance_unit: "in".into(),
            weight: "2".into(),
            mass_unit: "lb".into(),
        }
    }
}

/// Shippo's units.
pub const DISTANCE_UNITS: [&str; 6] = ["cm", "in", "ft", "m", "mm", "yd"];
pub const MASS_UNITS: [&str; 4] = ["g", "kg", "lb", "oz"];

impl Parcel {
    /// A parcel from its six members (numbers as decimal text), every problem named
    /// under `prefix` (`parcel.weight`).
    pub fn parse(
        prefix: &str,
        member: impl Fn(&str) -> Option<String>,
        errors: &mut FieldErrors,
    ) -> Option<Parcel> {
        let before = errors.0.len();
        let mut number = |name: &str| {
            let value = member(name).unwrap_or_default();
            // 1 to 8 digits, then optionally a point and 1 to 20 more.
            let (whole, fraction) = match value.split_once('.') {
                Some((whole, fraction)) => (whole, Some(fraction)),
                None => (value.as_str(), None),
            };
            let digits = |text: &str, most: usize| {
                (1..=most).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit())
            };
            if !(digits(whole, 8) && fraction.is_none_or(|f| digits(f, 20))) {
                errors.add(
                    format!("{prefix}.{name}"),
                    "must be a decimal number (up to 8 digits before the point)",
                );
            }
            value
        };
        let (length, width, height, weight) = (
            number("length"),
            number("width"),
            number("height"),
            number("weight"),
        );
        let mut unit = |name: &str, allowed: &[&str]| {
            let value = member(name).unwrap_or_default();
            if !allowed.contains(&value.as_str()) {
                errors.add(
                    format!("{prefix}.{name}"),
                    format!("must be one of {}", allowed.join(", ")),
                );
            }
            value
        };
        let distance_unit = unit("distance_unit", &DISTANCE_UNITS);
        let mass_unit = unit("mass_unit", &MASS_UNITS);
        (errors.0.len() == before).then_some(Parcel {
            length,
            width,
            height,
            distance_unit,
            weight,
            mass_unit,
        })
    }
}

/// A tracking number to index, so the carrier's reports find their parcel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    pub carrier: String,
    pub tracking_number: String,
    pub shipment_id: ShipmentId,
}

/// What a shipping change writes: the order's shipments, status and shipping status
/// as they become, with one history entry, on the version they were planned from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippingChange {
    pub seen_version: u64,
    pub status: OrderStatus,
    pub shipping_status: ShippingStatus,
    pub shipments: Vec<Shipment>,
    pub entry: HistoryEntry,
    /// Tracking numbers new with this change.
    pub indexed: Vec<Tracked>,
}

impl ShippingChange {
    /// The order as this change leaves it (the store writes exactly this).
    pub fn apply(&self, order: &Order) -> Order {
        let mut after = order.clone();
        after.status = self.status;
        after.shipping_status = self.shipping_status;
        after.shipments = self.shipments.clone();
        after.version = self.seen_version + 1;
        after.updated_at = self.entry.at;
        after.history.push(self.entry.clone());
        // A parcel made: an automatic label's refusal is behind it.
        after.label_failure = None;
        // The order's own carrier and tracking number name its latest parcel.
        if let Some(latest) = self
            .shipments
            .last()
            .filter(|s| s.tracking_number.is_some())
        {
            after.carrier = latest.carrier.clone();
            after.tracking_number = latest.tracking_number.clone();
        }
        after
    }
}

/// Why a shipment cannot be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShipmentRefusal {
    /// Only a confirmed order ships (partly shipped ones stay confirmed).
    NotShippable(OrderStatus),
    /// Fulfillment found no stock for it.
    Backordered,
    /// Lines that do not fit the order: unknown products, zero quantities, repeats.
    Invalid(FieldErrors),
    /// A line asks for more than is left unshipped of its product.
    TooMany {
        field: String,
        product_id: String,
        requested: u32,
        unshipped: u32,
    },
    /// Every line has shipped already.
    NothingToShip,
}

impl Order {
    /// How many of `product_id` the order holds.
    pub fn quantity_ordered(&self, product_id: &str) -> u32 {
        self.items
            .iter()
            .filter(|l| l.product_id == product_id)
            .map(|l| l.quantity)
            .sum()
    }

    /// How many of `product_id` are in its parcels.
    pub fn quantity_shipped(&self, product_id: &str) -> u32 {
        self.shipped_where(product_id, |_| true)
    }

    /// How many of `product_id` are in delivered parcels.
    pub fn quantity_delivered(&self, product_id: &str) -> u32 {
        self.shipped_where(product_id, |s| s.status == ShipmentStatus::Delivered)
    }

    fn shipped_where(&self, product_id: &str, counts: impl Fn(&Shipment) -> bool) -> u32 {
        self.shipments
            .iter()
            .filter(|s| counts(s))
            .flat_map(|s| &s.items)
            .filter(|l| l.product_id == product_id)
            .map(|l| l.quantity)
            .sum()
    }

    /// What is left to ship, per product in the order's line order.
    pub fn unshipped(&self) -> Vec<ShipmentLine> {
        let mut seen = Vec::new();
        self.items
            .iter()
            .filter(|l| {
                let first = !seen.contains(&l.product_id);
                seen.push(l.product_id.clone());
                first
            })
            .filter_map(|l| {
                let left = self
                    .quantity_ordered(&l.product_id)
                    .saturating_sub(self.quantity_shipped(&l.product_id));
                (left > 0).then(|| ShipmentLine {
                    product_id: l.product_id.clone(),
                    quantity: left,
                })
            })
            .collect()
    }

    pub fn shipment(&self, id: &ShipmentId) -> Option<&Shipment> {
        self.shipments.iter().find(|s| &s.shipment_id == id)
    }
}

/// The lines of a new parcel: `asked` checked against the order, or, left out,
/// everything still unshipped.
pub fn parcel_lines(
    order: &Order,
    asked: Option<&[ShipmentLine]>,
) -> Result<Vec<ShipmentLine>, ShipmentRefusal> {
    let Some(asked) = asked else {
        let rest = order.unshipped();
        return if rest.is_empty() {
            Err(ShipmentRefusal::NothingToShip)
        } else {
            Ok(rest)
        };
    };
    let mut errors = FieldErrors::default();
    let mut per_product: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, line) in asked.iter().enumerate() {
        let field = format!("items[{i}]");
        if order.quantity_ordered(&line.product_id) == 0 {
            errors.add(
                format!("{field}.product_id"),
                format!("{} is not in order {}", line.product_id, order.id),
            );
        } else if per_product.insert(&line.product_id, i).is_some() {
            errors.add(
                format!("{field}.product_id"),
                format!("{} is named twice", line.product_id),
            );
        }
        if line.quantity == 0 {
            errors.add(format!("{field}.quantity"), "must be at least 1");
        }
    }
    if !errors.is_empty() {
        return Err(ShipmentRefusal::Invalid(errors));
    }
    for (i, line) in asked.iter().enumerate() {
        let unshipped = order
            .quantity_ordered(&line.product_id)
            .saturating_sub(order.quantity_shipped(&line.product_id));
        if line.quantity > unshipped {
            return Err(ShipmentRefusal::TooMany {
                field: format!("items[{i}].quantity"),
                product_id: line.product_id.clone(),
                requested: line.quantity,
                unshipped,
            });
        }
    }
    Ok(asked.to_vec())
}

/// Only a confirmed order ships (it stays confirmed while partly shipped), and not
/// while fulfillment found no stock for it.
pub fn shippable(order: &Order) -> Result<(), ShipmentRefusal> {
    if order.status != OrderStatus::Confirmed {
        return Err(ShipmentRefusal::NotShippable(order.status));
    }
    if order.shipping_status == ShippingStatus::Backordered {
        return Err(ShipmentRefusal::Backordered);
    }
    Ok(())
}

/// Adds `shipment` to `order`: refused unless the order is confirmed and not
/// backordered. The order ships (`shipped`) when nothing is left unshipped, and is
/// otherwise `partially_shipped`.
pub fn add_shipment(
    order: &Order,
    shipment: Shipment,
    actor: &str,
    role: Role,
) -> Result<ShippingChange, ShipmentRefusal> {
    shippable(order)?;
    let mut after = order.clone();
    after.shipments.push(shipment.clone());
    let done = after.unshipped().is_empty();
    let (status, shipping_status) = if done {
        (OrderStatus::Shipped, ShippingStatus::Shipped)
    } else {
        (OrderStatus::Confirmed, ShippingStatus::PartiallyShipped)
    };
    let indexed = tracked(&shipment).into_iter().collect();
    Ok(ShippingChange {
        seen_version: order.version,
        status,
        shipping_status,
        entry: HistoryEntry {
            at: shipment.created_at,
            actor: actor.to_string(),
            role,
            status,
            shipping_status: Some(shipping_status),
            payment_status: None,
            reason: Some(describe(&shipment)),
        },
        shipments: after.shipments,
        indexed,
    })
}

/// `PUT /status` to `shipped`: everything unshipped as one parcel with the given
/// carrier and tracking number (both optional), buying no label. `None` when every
/// line is in a parcel already.
pub fn remaining_parcel(
    order: &Order,
    carrier: Option<&str>,
    tracking_number: Option<&str>,
    at: OffsetDateTime,
) -> Option<Shipment> {
    let rest = order.unshipped();
    (!rest.is_empty()).then(|| Shipment {
        shipment_id: ShipmentId::fresh(),
        items: rest,
        carrier: carrier.map(str::to_ascii_lowercase),
        servicelevel: None,
        tracking_number: tracking_number.map(str::to_string),
        tracking_url: None,
        label_url: None,
        cost: None,
        status: ShipmentStatus::InTransit,
        tracking: Vec::new(),
        created_at: at,
        fingerprint: None,
        label_transaction: None,
    })
}

/// An admin's `delivered` for carriers that never report: every parcel delivered.
pub fn all_delivered(order: &Order, at: OffsetDateTime) -> Vec<Shipment> {
    order
        .shipments
        .iter()
        .cloned()
        .map(|mut s| {
            if s.status != ShipmentStatus::Delivered {
                s.status = ShipmentStatus::Delivered;
                s.tracking.push(TrackingEvent {
                    status: "DELIVERED".into(),
                    status_date: at,
                    details: Some("marked delivered by hand".into()),
                    location: None,
                });
            }
            s
        })
        .collect()
}

/// Why a parcel cannot be voided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoidRefusal {
    NotFound,
    /// Only a bought label the carrier does not have yet can be voided.
    NotVoidable(ShipmentStatus),
}

/// The order without parcel `shipment`, whose label is refunded: its items unshipped
/// again, a shipped order back to `confirmed`.
pub fn void(
    order: &Order,
    shipment: &ShipmentId,
    actor: &str,
    role: Role,
    at: OffsetDateTime,
) -> Result<Order, VoidRefusal> {
    let parcel = order.shipment(shipment).ok_or(VoidRefusal::NotFound)?;
    if parcel.status != ShipmentStatus::LabelCreated || parcel.label_transaction.is_none() {
        return Err(VoidRefusal::NotVoidable(parcel.status));
    }
    let mut after = order.clone();
    after.shipments.retain(|s| &s.shipment_id != shipment);
    if after.status == OrderStatus::Shipped {
        after.status = OrderStatus::Confirmed;
    }
    after.shipping_status = if after.shipments.is_empty() {
        // Its stock stays reserved: the goods are back on the shelf for this order.
        ShippingStatus::Processing
    } else {
        ShippingStatus::PartiallyShipped
    };
    after.version += 1;
    after.updated_at = at;
    after.history.push(HistoryEntry {
        at,
        actor: actor.to_string(),
        role,
        status: after.status,
        shipping_status: Some(after.shipping_status),
        payment_status: None,
        reason: Some(format!(
            "shipment {shipment} voided: its label refunded, its items unshipped"
        )),
    });
    Ok(after)
}

/// The tracking number a parcel is found by, when it has one and a carrier.
pub fn tracked(shipment: &Shipment) -> Option<Tracked> {
    match (&shipment.carrier, &shipment.tracking_number) {
        (Some(carrier), Some(number)) => Some(Tracked {
            carrier: carrier.clone(),
            tracking_number: number.clone(),
            shipment_id: shipment.shipment_id.clone(),
        }),
        _ => None,
    }
}

/// The history entry's words for a new parcel.
fn describe(shipment: &Shipment) -> String {
    let count: u32 = shipment.items.iter().map(|l| l.quantity).sum();
    let mut text = format!("shipment {}: {count} item(s)", shipment.shipment_id);
    if let Some(carrier) = &shipment.carrier {
        text.push_str(&format!(", {carrier}"));
    }
    if let Some(number) = &shipment.tracking_number {
        text.push_str(&format!(" {number}"));
    }
    text
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::money::Currency;
    use crate::domain::order::{LineItem, OrderId, PaymentMethod, PaymentStatus, ShippingAddress};

    pub(crate) fn order(lines: &[(&str, u32)]) -> Order {
        let usd = Currency::from_code("USD").unwrap();
        Order {
            id: OrderId::for_cart("abc123"),
            user_id: "user789".into(),
            cart_id: "abc123".into(),
            status: OrderStatus::Confirmed,
            payment_status: PaymentStatus::Paid,
            shipping_status: ShippingStatus::Processing,
            payment_method: PaymentMethod::CreditCard,
            items: lines
                .iter()
                .map(|(p, q)| LineItem {
                    product_id: p.to_string(),
                    name: p.to_string(),
                    quantity: *q,
                    price: Money::from_minor(100, usd),
                    discount: Money::zero(usd),
                    tax_lines: vec![],
                })
                .collect(),
            pricing: Default::default(),
            total: Money::from_minor(100, usd),
            shipping_address: ShippingAddress {
                name: "Jane Doe".into(),
                address: "123 Main St".into(),
                city: "New York".into(),
                state: None,
                zip: "10001".into(),
                country: "US".into(),
            },
            tracking_number: None,
            carrier: None,
            payment: None,
            contact: Default::default(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            version: 3,
            history: vec![],
            shipments: vec![],
            label_failure: None,
            returns: vec![],
        }
    }

    fn parcel(lines: Vec<ShipmentLine>) -> Shipment {
        remaining_parcel(
            &order(&[("x", 1)]),
            Some("usps"),
            Some("9400"),
            OffsetDateTime::UNIX_EPOCH,
        )
        .map(|mut s| {
            s.items = lines;
            s
        })
        .unwrap()
    }

    fn line(product_id: &str, quantity: u32) -> ShipmentLine {
        ShipmentLine {
            product_id: product_id.into(),
            quantity,
        }
    }

    #[test]
    fn two_parcels_ship_the_order_only_when_nothing_is_left() {
        let mut o = order(&[("p001", 2), ("p002", 1)]);
        let first = parcel_lines(&o, Some(&[line("p001", 1)])).unwrap();
        let change = add_shipment(&o, parcel(first), "admin", Role::Admin).unwrap();
        assert_eq!(change.status, OrderStatus::Confirmed);
        assert_eq!(change.shipping_status, ShippingStatus::PartiallyShipped);
        assert_eq!(change.seen_version, 3);
        o.shipments = change.shipments;
        assert_eq!(o.unshipped(), vec![line("p001", 1), line("p002", 1)]);
        let rest = parcel_lines(&o, None).unwrap();
        let change = add_shipment(&o, parcel(rest), "admin", Role::Admin).unwrap();
        assert_eq!(change.status, OrderStatus::Shipped);
        assert_eq!(change.shipping_status, ShippingStatus::Shipped);
        o.shipments = change.shipments;
        assert_eq!(parcel_lines(&o, None), Err(ShipmentRefusal::NothingToShip));
        assert_eq!(o.quantity_shipped("p001"), 2);
        assert_eq!(o.quantity_delivered("p001"), 0);
    }

    #[test]
    fn bad_lines_are_named() {
        let o = order(&[("p001", 2)]);
        let Err(ShipmentRefusal::Invalid(errors)) =
            parcel_lines(&o, Some(&[line("p009", 1), line("p001", 0)]))
        else {
            panic!("refused as invalid")
        };
        let fields: Vec<_> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["items[0].product_id", "items[1].quantity"]);
        assert_eq!(
            parcel_lines(&o, Some(&[line("p001", 3)])),
            Err(ShipmentRefusal::TooMany {
                field: "items[0].quantity".into(),
                product_id: "p001".into(),
                requested: 3,
                unshipped: 2
            })
        );
    }

    #[test]
    fn only_confirmed_orders_ship() {
        let mut o = order(&[("p001", 1)]);
        o.status = OrderStatus::Pending;
        assert_eq!(
            add_shipment(&o, parcel(vec![line("p001", 1)]), "a", Role::Admin),
            Err(ShipmentRefusal::NotShippable(OrderStatus::Pending))
        );
        o.status = OrderStatus::Confirmed;
        o.shipping_status = ShippingStatus::Backordered;
        assert_eq!(
            add_shipment(&o, parcel(vec![line("p001", 1)]), "a", Role::Admin),
            Err(ShipmentRefusal::Backordered)
        );
    }

    #[test]
    fn shipment_ids_are_stable_per_request_and_parse_back() {
        let a = ShipmentId::for_request("ORD1", "admin", "key-1");
        assert_eq!(a, ShipmentId::for_request("ORD1", "admin", "key-1"));
        assert_ne!(a, ShipmentId::for_request("ORD1", "other", "key-1"));
        assert_eq!(ShipmentId::parse(a.as_str()), Some(a));
        assert_ne!(ShipmentId::fresh(), ShipmentId::fresh());
        assert_eq!(ShipmentId::parse("SHP123"), None);
    }
}
