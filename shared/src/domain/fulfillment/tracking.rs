//! What a carrier's report does to a parcel and its order. Shippo's statuses map to
//! ours (`PRE_TRANSIT` label created, `TRANSIT` in transit, `DELIVERED`, `RETURNED`,
//! `FAILURE`; `UNKNOWN` changes nothing). Reports are merged into the parcel's
//! history by (status, status date): the same report twice is one, a different status
//! at the same second is new (carriers report in whole seconds). The parcel takes the
//! status of its latest report, so a late report of an older scan goes into the
//! history and moves nothing back.

use time::OffsetDateTime;

use super::shipment::{ShipmentId, ShipmentStatus, TrackingEvent};
use crate::domain::lifecycle::Role;
use crate::domain::order::{HistoryEntry, Order, OrderStatus, ShippingStatus};

/// The actor of the changes the carrier's reports make.
pub const CARRIER_ACTOR: &str = "shippo";

/// Our status for Shippo's word; `None` for `UNKNOWN` (and anything unheard of).
pub fn status_of(shippo: &str) -> Option<ShipmentStatus> {
    match shippo {
        "PRE_TRANSIT" => Some(ShipmentStatus::LabelCreated),
        "TRANSIT" => Some(ShipmentStatus::InTransit),
        "DELIVERED" => Some(ShipmentStatus::Delivered),
        "RETURNED" => Some(ShipmentStatus::Returned),
        "FAILURE" => Some(ShipmentStatus::Failure),
        _ => None,
    }
}

/// The order after `reports` (Shippo's tracking, as read back from Shippo) reach
/// parcel `shipment`; `None` when they tell nothing new (a resend, or only
/// `UNKNOWN`).
pub fn track(
    order: &Order,
    shipment: &ShipmentId,
    reports: &[TrackingEvent],
    at: OffsetDateTime,
) -> Option<Order> {
    let mut after = order.clone();
    let parcel = after
        .shipments
        .iter_mut()
        .find(|s| &s.shipment_id == shipment)?;
    let previous = parcel.status;
    if !merge(&mut parcel.tracking, &mut parcel.status, reports) {
        return None;
    }
    let moved = parcel.status;
    let everything_shipped = after.unshipped().is_empty();
    let statuses: Vec<ShipmentStatus> = after.shipments.iter().map(|s| s.status).collect();
    let all_delivered = statuses.iter().all(|s| *s == ShipmentStatus::Delivered);
    let some_delivered = statuses.contains(&ShipmentStatus::Delivered);
    let trouble = statuses
        .iter()
        .any(|s| matches!(s, ShipmentStatus::Returned | ShipmentStatus::Failure));
    if after.status == OrderStatus::Shipped && everything_shipped && all_delivered {
        after.status = OrderStatus::Delivered;
        after.shipping_status = ShippingStatus::Delivered;
    } else if matches!(after.status, OrderStatus::Confirmed | OrderStatus::Shipped) {
        after.shipping_status = if trouble {
            ShippingStatus::Exception
        } else if some_delivered {
            ShippingStatus::PartiallyDelivered
        } else if everything_shipped {
            ShippingStatus::Shipped
        } else {
            ShippingStatus::PartiallyShipped
        };
    }
    let reason = if moved == previous {
        format!("shipment {shipment}: tracking updated ({moved})")
    } else {
        format!("shipment {shipment}: {previous} → {moved}")
    };
    after.version += 1;
    after.updated_at = at;
    after.history.push(HistoryEntry {
        at,
        actor: CARRIER_ACTOR.to_string(),
        role: Role::Fulfillment,
        status: after.status,
        shipping_status: Some(after.shipping_status),
        payment_status: None,
        reason: Some(reason),
    });
    Some(after)
}

/// Merges `reports` into `tracking` (a parcel's or a return label's), moving
/// `status` to that of the latest report. `false`: nothing new.
pub(crate) fn merge(
    tracking: &mut Vec<TrackingEvent>,
    status: &mut ShipmentStatus,
    reports: &[TrackingEvent],
) -> bool {
    let mut news = false;
    for report in reports.iter().filter(|r| status_of(&r.status).is_some()) {
        let known = tracking
            .iter()
            .any(|t| t.status == report.status && t.status_date == report.status_date);
        if !known {
            tracking.push(report.clone());
            news = true;
        }
    }
    if !news {
        return false;
    }
    tracking.sort_by_key(|t| t.status_date);
    // The latest report by its date; of reports at the same second, the one heard last.
    if let Some(latest) = tracking
        .iter()
        // `max_by_key` answers the last of equal keys: the report heard last.
        .max_by_key(|t| t.status_date)
        .and_then(|t| status_of(&t.status))
    {
        *status = latest;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fulfillment::shipment::remaining_parcel;
    use time::macros::datetime;

    fn report(status: &str, at: OffsetDateTime) -> TrackingEvent {
        TrackingEvent {
            status: status.into(),
            status_date: at,
            details: None,
            location: None,
        }
    }

    fn shipped_order() -> (Order, ShipmentId) {
        let mut order = crate::domain::fulfillment::shipment::tests::order(&[("p001", 1)]);
        let parcel =
            remaining_parcel(&order, Some("usps"), Some("9400"), order.created_at).unwrap();
        let id = parcel.shipment_id.clone();
        order.shipments.push(parcel);
        order.status = OrderStatus::Shipped;
        order.shipping_status = ShippingStatus::Shipped;
        (order, id)
    }

    #[test]
    fn a_resend_is_one_change_and_an_older_report_moves_nothing_back() {
        let (order, id) = shipped_order();
        let (t1, t2) = (
            datetime!(2026-12-04 10:00 UTC),
            datetime!(2026-12-04 12:00 UTC),
        );
        let now = datetime!(2026-12-04 13:00 UTC);
        let delivered = track(&order, &id, &[report("DELIVERED", t2)], now).unwrap();
        assert_eq!(delivered.status, OrderStatus::Delivered);
        assert_eq!(delivered.version, order.version + 1);
        assert_eq!(
            track(&delivered, &id, &[report("DELIVERED", t2)], now),
            None
        );
        let late = track(&delivered, &id, &[report("TRANSIT", t1)], now).unwrap();
        assert_eq!(late.shipments[0].status, ShipmentStatus::Delivered);
        assert_eq!(late.shipments[0].tracking.len(), 2);
        assert_eq!(late.status, OrderStatus::Delivered);
        // The same second, another status: new.
        let (order, id) = shipped_order();
        let transit = track(&order, &id, &[report("TRANSIT", t1)], now).unwrap();
        let failed = track(&transit, &id, &[report("FAILURE", t1)], now).unwrap();
        assert_eq!(failed.shipments[0].status, ShipmentStatus::Failure);
        assert_eq!(failed.shipping_status, ShippingStatus::Exception);
        assert_eq!(failed.status, OrderStatus::Shipped);
        assert_eq!(track(&order, &id, &[report("UNKNOWN", t1)], now), None);
    }
}
