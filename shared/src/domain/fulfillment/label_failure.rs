//! A label the provider refused to sell for an automatic shipment (`SHIPPING_LABELS=auto`):
//! the order stays `confirmed` with `shipping_status: label_failed`, and the provider's
//! messages stay on it for a person to read, until a parcel is made by hand.

use time::OffsetDateTime;

use crate::domain::lifecycle::Role;
use crate::domain::order::{HistoryEntry, Order, OrderStatus, ShippingStatus};

/// Why the last automatic label was refused, as the provider put it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelFailure {
    pub messages: Vec<String>,
    pub at: OffsetDateTime,
}

/// The order after its automatic label was refused with `messages`; `None` when it no
/// longer waits for one (shipped meanwhile, even in part, cancelled, or already
/// marked): a person made the call, and the refusal changes nothing.
pub fn label_failed(
    order: &Order,
    messages: Vec<String>,
    actor: &str,
    role: Role,
    at: OffsetDateTime,
) -> Option<Order> {
    let waiting = order.status == OrderStatus::Confirmed
        && order.shipments.is_empty()
        && matches!(
            order.shipping_status,
            ShippingStatus::NotStarted | ShippingStatus::Processing
        );
    if !waiting {
        return None;
    }
    let mut after = order.clone();
    after.shipping_status = ShippingStatus::LabelFailed;
    after.version += 1;
    after.updated_at = at;
    after.history.push(HistoryEntry {
        at,
        actor: actor.to_string(),
        role,
        status: after.status,
        shipping_status: Some(ShippingStatus::LabelFailed),
        payment_status: None,
        reason: Some(format!(
            "the shipping provider refused the label: {}; ship it by hand",
            messages.join("; ")
        )),
    });
    after.label_failure = Some(LabelFailure { messages, at });
    Some(after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fulfillment::shipment::tests::order;

    #[test]
    fn only_an_order_still_waiting_for_its_label_is_marked() {
        let at = OffsetDateTime::UNIX_EPOCH;
        let confirmed = order(&[("p001", 2)]);
        let failed = label_failed(
            &confirmed,
            vec!["USPS: address not found".into()],
            "fulfillment",
            Role::Fulfillment,
            at,
        )
        .expect("marked");
        assert_eq!(failed.status, OrderStatus::Confirmed);
        assert_eq!(failed.shipping_status, ShippingStatus::LabelFailed);
        assert_eq!(failed.version, confirmed.version + 1);
        assert_eq!(
            failed.label_failure.as_ref().unwrap().messages,
            ["USPS: address not found"]
        );
        assert!(
            failed
                .history
                .last()
                .unwrap()
                .reason
                .as_deref()
                .unwrap()
                .contains("USPS: address not found")
        );
        // Marked already, or moved on: nothing to write.
        assert_eq!(
            label_failed(&failed, vec![], "fulfillment", Role::Fulfillment, at),
            None
        );
        let mut shipped = confirmed.clone();
        shipped.status = OrderStatus::Shipped;
        assert_eq!(
            label_failed(&shipped, vec![], "fulfillment", Role::Fulfillment, at),
            None
        );
    }
}
