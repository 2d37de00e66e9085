//! The events this service publishes: exactly one for every recorded change of an
//! order, derived from the change itself (the table's stream), never written twice.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub mod return_view;
pub mod view;

use crate::domain::time::timestamp;
use crate::domain::{HistoryEntry, Order, Role};
use view::OrderView;

/// EventBridge `source` of every event.
pub const SOURCE: &str = "orders";

/// `detail-type` of a change that moved the shipping status but not the order status
/// (fulfillment: processing, backordered).
pub const SHIPPING_STATUS_CHANGED: &str = "order.shipping_status_changed";

/// `detail-type` of a change of the payment that did not move the order status: a
/// failed attempt, a mismatched amount, a payment after cancellation, a refund.
pub const PAYMENT_STATUS_CHANGED: &str = "order.payment_status_changed";

/// `detail-type` of a parcel added to an order that does not ship it whole (the one
/// that does is `order.shipped`, naming it in `shipment_id`).
pub const SHIPMENT_CREATED: &str = "order.shipment_created";

/// `detail-type` of a parcel's change that did not move the order status (the
/// carrier's tracking, a voided label).
pub const SHIPMENT_UPDATED: &str = "order.shipment_updated";

/// `detail-type` of an automatic label the provider refused: the order stays
/// `confirmed` with `shipping_status: label_failed`, the provider's messages in
/// `reason`, for a person to ship it by hand.
pub const SHIPMENT_FAILED: &str = "order.shipment_failed";

/// `detail-type`s of a return's steps (`order.return_<step>`), and of any other
/// change of a return: its label's tracking, its restock and refund carried out, a
/// refund released.
pub const RETURN_REQUESTED: &str = "order.return_requested";
pub const RETURN_APPROVED: &str = "order.return_approved";
pub const RETURN_DECLINED: &str = "order.return_declined";
pub const RETURN_CANCELLED: &str = "order.return_cancelled";
pub const RETURN_RECEIVED: &str = "order.return_received";
pub const RETURN_UPDATED: &str = "order.return_updated";

/// `detail-type` of an erasure of the customer's personal data on the order
/// (`POST /api/customers/{user_id}/erasure`): its `order` carries the erased address,
/// so that integrators who kept a copy erase theirs (GDPR article 19).
pub const PERSONAL_DATA_ERASED: &str = "order.personal_data_erased";

/// `detail-type` of the note that a message to the customer was withheld: their
/// address bounced or complained (`services::suppressions`).
pub const CONTACT_UNREACHABLE: &str = "order.contact_unreachable";

/// The event types a subscription may ask for (the events' `detail-type`s).
pub const EVENT_TYPES: [&str; 18] = [
    "order.created",
    "order.confirmed",
    "order.shipped",
    "order.delivered",
    "order.cancelled",
    SHIPPING_STATUS_CHANGED,
    PAYMENT_STATUS_CHANGED,
    SHIPMENT_CREATED,
    SHIPMENT_UPDATED,
    SHIPMENT_FAILED,
    RETURN_REQUESTED,
    RETURN_APPROVED,
    RETURN_DECLINED,
    RETURN_CANCELLED,
    RETURN_RECEIVED,
    RETURN_UPDATED,
    PERSONAL_DATA_ERASED,
    CONTACT_UNREACHABLE,
];

/// The `detail` of an event. Documented in `docs/events.schema.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderEvent {
    /// `<order_id>:<sequence>`: the same change always has the same id, so a consumer
    /// can drop a redelivery.
    pub event_id: String,
    pub order_id: String,
    pub user_id: String,
    /// The order's version after the change: 1, 2, 3… per order, without gaps.
    pub sequence: u64,
    pub occurred_at: String,
    pub previous_status: Option<String>,
    pub status: String,
    pub previous_shipping_status: Option<String>,
    pub shipping_status: String,
    /// Absent from events published before payments: read as unknown.
    #[serde(default)]
    pub previous_payment_status: Option<String>,
    #[serde(default)]
    pub payment_status: String,
    /// The `sub` of whoever made the change.
    pub actor: String,
    pub reason: Option<String>,
    /// The order after the change, as `GET /api/orders/{order_id}` renders it.
    pub order: OrderJson,
    /// The parcel the change added or changed, if it concerned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipment_id: Option<String>,
    /// What the change did to that parcel: `created` or `updated`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipment_change: Option<String>,
    /// The return the change concerned, if it concerned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_id: Option<String>,
    /// What the change did to that return: `requested`, `approved`, `declined`,
    /// `cancelled`, `received`, or `updated`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_change: Option<String>,
}

impl OrderEvent {
    /// The event for the change from `before` (none for a new order) to `after`;
    /// `None` when nothing was recorded (the same version).
    pub fn for_change(before: Option<&Order>, after: &Order) -> Option<OrderEvent> {
        if before.is_some_and(|b| b.version >= after.version) {
            return None;
        }
        let entry = after.history.last()?;
        let (shipment_id, shipment_change) = match shipment_change(before, after) {
            Some((id, what)) => (Some(id), Some(what.to_string())),
            None => (None, None),
        };
        let (return_id, return_change) = match return_change(before, after) {
            Some((id, what)) => (Some(id), Some(what.to_string())),
            None => (None, None),
        };
        Some(OrderEvent {
            event_id: format!("{}:{}", after.id, after.version),
            order_id: after.id.to_string(),
            user_id: after.user_id.clone(),
            sequence: after.version,
            occurred_at: timestamp(entry.at),
            previous_status: before.map(|b| b.status.as_str().to_string()),
            status: after.status.as_str().to_string(),
            previous_shipping_status: before.map(|b| b.shipping_status.as_str().to_string()),
            shipping_status: after.shipping_status.as_str().to_string(),
            previous_payment_status: before.map(|b| b.payment_status.as_str().to_string()),
            payment_status: after.payment_status.as_str().to_string(),
            actor: entry.actor.clone(),
            reason: event_reason(entry, after),
            order: OrderJson::of(after),
            shipment_id,
            shipment_change,
            return_id,
            return_change,
        })
    }

    /// Whether `order`, as stored, went through this change: the same order and
    /// user, a version it reached, the status its history records at that version,
    /// and the lines and address it has (they never change after checkout). An
    /// event put on the bus by anyone but the publisher fails this unless it copies
    /// a real one, and the consumers act on the stored order anyway.
    pub fn recorded_in(&self, order: &Order) -> bool {
        self.went_through(order, true)
    }

    /// [`OrderEvent::recorded_in`], or a change of `order` from before its personal data
    /// was erased: everything but the address (erased since) must match. For stock,
    /// which must still be released or reserved for an erased order; a webhook or a
    /// message of an erased order's old events is never sent.
    pub fn recorded_in_erased(&self, order: &Order) -> bool {
        self.recorded_in(order)
            || (crate::domain::privacy::is_erased(order) && self.went_through(order, false))
    }

    fn went_through(&self, order: &Order, with_address: bool) -> bool {
        let Some(entry) = (self.sequence as usize)
            .checked_sub(1)
            .and_then(|i| order.history.get(i))
        else {
            return false;
        };
        let Ok(snapshot) = serde_json::from_str::<OrderSnapshot>(self.order.as_str()) else {
            return false;
        };
        self.order_id == order.id.as_str()
            && self.user_id == order.user_id
            && self.sequence <= order.version
            && self.status == entry.status.as_str()
            && snapshot.describes(order, with_address)
    }

    /// `order.created`, `order.<status>` when the status moved, otherwise
    /// `order.payment_status_changed` for a change of the payment (a second partial
    /// refund leaves the status word alone but is one) and
    /// `order.shipping_status_changed` for fulfillment's.
    pub fn detail_type(&self) -> String {
        match &self.previous_status {
            None => "order.created".to_string(),
            Some(_) if self.return_change.is_some() => {
                format!(
                    "order.return_{}",
                    self.return_change.as_deref().unwrap_or("updated")
                )
            }
            // A voided label takes a shipped order back to confirmed: not a confirmation.
            Some(_) if self.shipment_change.as_deref() == Some("voided") => {
                SHIPMENT_UPDATED.to_string()
            }
            Some(previous) if *previous != self.status => format!("order.{}", self.status),
            Some(_) if self.reason.as_deref() == Some(crate::domain::privacy::ERASURE_NOTE) => {
                PERSONAL_DATA_ERASED.to_string()
            }
            Some(_)
                if self.actor == crate::domain::suppression::NOTIFICATIONS_ACTOR
                    && self.reason.as_deref().is_some_and(|r| {
                        r.starts_with(crate::domain::suppression::UNREACHABLE_NOTE)
                    }) =>
            {
                CONTACT_UNREACHABLE.to_string()
            }
            Some(_) if self.shipment_change.as_deref() == Some("created") => {
                SHIPMENT_CREATED.to_string()
            }
            Some(_) if self.shipment_change.is_some() => SHIPMENT_UPDATED.to_string(),
            Some(_) if self.is_label_failure() => SHIPMENT_FAILED.to_string(),
            Some(_) if self.is_payment_change() => PAYMENT_STATUS_CHANGED.to_string(),
            Some(_) => SHIPPING_STATUS_CHANGED.to_string(),
        }
    }

    fn is_label_failure(&self) -> bool {
        self.shipping_status == "label_failed"
            && self.previous_shipping_status.as_deref() != Some("label_failed")
    }

    fn is_payment_change(&self) -> bool {
        self.previous_payment_status.as_deref() != Some(self.payment_status.as_str())
            || self.previous_shipping_status.as_deref() == Some(self.shipping_status.as_str())
    }
}

/// The reason an event gives for the change `entry` records: the entry's, except
/// that of an admin's refund, whose reason is a note for staff (the history shows it to
/// them): the event says only what was refunded.
fn event_reason(entry: &HistoryEntry, order: &Order) -> Option<String> {
    let refund = order
        .payment
        .as_ref()
        .and_then(|p| p.refunds.last())
        .filter(|r| {
            entry.role == Role::Admin && entry.payment_status.is_some() && r.at == entry.at
        });
    match refund {
        Some(refund) => Some(refund.summary()),
        None => entry.reason.clone(),
    }
}

/// The parcel a change concerned: one new in `after` (`created`), or else one that
/// differs from its `before` (`updated`), or one taken away (`voided`).
fn shipment_change(before: Option<&Order>, after: &Order) -> Option<(String, &'static str)> {
    let before = before?;
    let old = |id| before.shipments.iter().find(|s| &s.shipment_id == id);
    if let Some(new) = after
        .shipments
        .iter()
        .find(|s| old(&s.shipment_id).is_none())
    {
        return Some((new.shipment_id.to_string(), "created"));
    }
    let changed = after
        .shipments
        .iter()
        .find(|s| old(&s.shipment_id) != Some(*s))
        .map(|s| s.shipment_id.to_string())
        .map(|id| (id, "updated"))
        .or_else(|| {
            before
                .shipments
                .iter()
                .find(|s| after.shipment(&s.shipment_id).is_none())
                .map(|s| (s.shipment_id.to_string(), "voided"))
        })?;
    Some(changed)
}

/// The return a change concerned: one new in `after` (`requested`), or one whose
/// status moved (to that status), or one otherwise changed (`updated`).
fn return_change(before: Option<&Order>, after: &Order) -> Option<(String, &'static str)> {
    let before = before?;
    after.returns.iter().find_map(|r| {
        let what = match before.return_of(&r.return_id) {
            None => "requested",
            Some(old) if old.status != r.status => r.status.as_str(),
            Some(old) if old != r => "updated",
            Some(_) => return None,
        };
        Some((r.return_id.to_string(), what))
    })
}

/// The parts of an event's order (`GET /api/orders/{id}`'s rendering) checked
/// against the stored order.
#[derive(Deserialize)]
struct OrderSnapshot {
    user_id: String,
    items: Vec<SnapshotLine>,
    shipping_address: SnapshotAddress,
}

#[derive(Deserialize)]
struct SnapshotLine {
    product_id: String,
    quantity: u32,
}

#[derive(Deserialize)]
struct SnapshotAddress {
    name: String,
    address: String,
    city: String,
    #[serde(default)]
    state: Option<String>,
    zip: String,
    country: String,
}

impl OrderSnapshot {
    fn describes(&self, order: &Order, with_address: bool) -> bool {
        let lines_match = self.items.len() == order.items.len()
            && self
                .items
                .iter()
                .zip(&order.items)
                .all(|(a, b)| a.product_id == b.product_id && a.quantity == b.quantity);
        let a = &self.shipping_address;
        let b = &order.shipping_address;
        self.user_id == order.user_id
            && lines_match
            && a.country == b.country
            && (!with_address
                || (&a.name, &a.address, &a.city, &a.state, &a.zip)
                    == (&b.name, &b.address, &b.city, &b.state, &b.zip))
    }
}

/// An order as JSON text, exactly as `GET /api/orders/{order_id}` renders it.
///
/// Kept as text because a `serde_json::Value` holds numbers as floats: money would be
/// converted to `f64` and `75.00` published as `75.0`. Being raw JSON, it deserializes
/// with `serde_json::from_str`/`from_slice` only (not `from_value`); that is how an
/// SQS body or a stream payload arrives anyway.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderJson(Box<RawValue>);

impl OrderJson {
    pub fn of(order: &Order) -> OrderJson {
        // Cannot fail: every field of the view is a string, an integer or a decimal
        // rendered by `Money`.
        let raw = serde_json::value::to_raw_value(&OrderView::from(order))
            .unwrap_or_else(|_| RawValue::NULL.to_owned());
        OrderJson(raw)
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The order parsed, to read its fields (amounts become floats).
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(self.0.get()).unwrap_or_default()
    }
}

/// The same order, however its JSON is spaced or its numbers written (an event bus
/// may re-render `75.00` as `75.0` on the way).
impl PartialEq for OrderJson {
    fn eq(&self, other: &Self) -> bool {
        self.value() == other.value()
    }
}

/// An EventBridge event as a rule delivers it to an SQS queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    pub time: String,
    pub detail: OrderEvent,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::privacy::{erase, tests::order};
    use time::macros::datetime;

    #[test]
    fn an_erased_orders_earlier_events_are_its_own_for_its_stock_only() {
        let stored = order();
        let event = OrderEvent::for_change(None, &stored).unwrap();
        let erased = erase(&stored, "admin-1", datetime!(2026-11-26 10:00 UTC)).unwrap();
        assert!(event.recorded_in(&stored));
        // Webhooks and messages: the address it carried is gone from the order.
        assert!(!event.recorded_in(&erased));
        // Fulfillment: the same order, version, status, lines and country.
        assert!(event.recorded_in_erased(&erased));
        assert!(event.recorded_in_erased(&stored));

        let mut moved = erased.clone();
        moved.shipping_address.country = "DE".into();
        assert!(!event.recorded_in_erased(&moved));
        let mut someone_elses = erased.clone();
        someone_elses.user_id = "user-2".into();
        assert!(!event.recorded_in_erased(&someone_elses));
        // Not erased: the address must match.
        let mut readdressed = stored.clone();
        readdressed.shipping_address.city = "Chicago".into();
        assert!(!event.recorded_in_erased(&readdressed));
    }
}
