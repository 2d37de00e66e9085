//! What the customer is told, and how: one notice per key change of an order, on
//! one or two channels.

/// How a message reaches the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub fn as_str(&self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

/// How many messages one address gets a day about orders not paid for: the contact of
/// a create is whatever the caller sent, so without a cap the shop's address would mail
/// strangers for free. Paid orders (someone's money moved) are not counted.
pub const UNPAID_MESSAGES_PER_RECIPIENT_PER_DAY: u32 = 5;

/// A change the customer hears about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// `order.created`: received, pending payment.
    Placed,
    /// `order.confirmed`: payment received; the invoice goes with it.
    Confirmed,
    /// `order.shipped`, with carrier and tracking number when the order has them.
    Shipped,
    Delivered,
    Cancelled,
    /// `order.payment_status_changed` to `refunded` or `partially_refunded`.
    Refunded {
        partial: bool,
    },
    /// A step of one of the order's returns (`order.return_<step>`; the event names
    /// the return). Its refund is told by `Refunded`, with its credit note.
    Return(ReturnNotice),
}

/// The steps of a return the customer hears about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnNotice {
    Requested,
    /// With the return label's link and tracking number when one was bought.
    Approved,
    /// With support's reason.
    Declined,
    Cancelled,
    /// What was received and what its refund is (made, pending, left for later).
    Received,
}

/// `detail-type` of a payment change that does not move the order's status (the
/// payments feature publishes it).
pub const PAYMENT_STATUS_CHANGED: &str = "order.payment_status_changed";

impl Notice {
    /// The notice for an event, from its `detail-type` and, for a payment change,
    /// the `payment_status` its order has now. `None`: nothing to tell (shipping
    /// progress, a failed payment attempt, an event type this service does not know).
    pub fn for_event(detail_type: &str, payment_status: Option<&str>) -> Option<Notice> {
        match detail_type {
            "order.created" => Some(Notice::Placed),
            "order.confirmed" => Some(Notice::Confirmed),
            "order.shipped" => Some(Notice::Shipped),
            "order.delivered" => Some(Notice::Delivered),
            "order.cancelled" => Some(Notice::Cancelled),
            "order.return_requested" => Some(Notice::Return(ReturnNotice::Requested)),
            "order.return_approved" => Some(Notice::Return(ReturnNotice::Approved)),
            "order.return_declined" => Some(Notice::Return(ReturnNotice::Declined)),
            "order.return_cancelled" => Some(Notice::Return(ReturnNotice::Cancelled)),
            "order.return_received" => Some(Notice::Return(ReturnNotice::Received)),
            PAYMENT_STATUS_CHANGED => match payment_status {
                Some("refunded") => Some(Notice::Refunded { partial: false }),
                Some("partially_refunded") => Some(Notice::Refunded { partial: true }),
                _ => None,
            },
            _ => None,
        }
    }

    /// The channels it goes out on, where the contact has an address for them: email
    /// always, SMS only when the parcel moves.
    pub fn channels(&self) -> &'static [Channel] {
        match self {
            Notice::Shipped | Notice::Delivered => &[Channel::Email, Channel::Sms],
            _ => &[Channel::Email],
        }
    }

    /// The name of its templates (`shared/templates/<name>.{subject,txt,html,sms}`).
    pub fn template(&self) -> &'static str {
        match self {
            Notice::Placed => "placed",
            Notice::Confirmed => "confirmed",
            Notice::Shipped => "shipped",
            Notice::Delivered => "delivered",
            Notice::Cancelled => "cancelled",
            Notice::Refunded { .. } => "refunded",
            Notice::Return(ReturnNotice::Requested) => "return_requested",
            Notice::Return(ReturnNotice::Approved) => "return_approved",
            Notice::Return(ReturnNotice::Declined) => "return_declined",
            Notice::Return(ReturnNotice::Cancelled) => "return_cancelled",
            Notice::Return(ReturnNotice::Received) => "return_received",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_change_has_its_notice() {
        let cases = [
            ("order.created", None, Some(Notice::Placed)),
            ("order.confirmed", None, Some(Notice::Confirmed)),
            ("order.shipped", None, Some(Notice::Shipped)),
            ("order.delivered", None, Some(Notice::Delivered)),
            ("order.cancelled", None, Some(Notice::Cancelled)),
            (
                "order.return_approved",
                None,
                Some(Notice::Return(ReturnNotice::Approved)),
            ),
            (
                "order.return_received",
                None,
                Some(Notice::Return(ReturnNotice::Received)),
            ),
            // The label's tracking, the restock and refund carried out: not told.
            ("order.return_updated", None, None),
            ("order.shipping_status_changed", None, None),
            ("order.something_new", None, None),
        ];
        for (detail_type, payment, expected) in cases {
            assert_eq!(
                Notice::for_event(detail_type, payment),
                expected,
                "{detail_type}"
            );
        }
    }

    /// Refunds arrive as payment changes; only the refunded states are told.
    #[test]
    fn refunds_are_read_from_the_payment_status() {
        let refund = |status| Notice::for_event(PAYMENT_STATUS_CHANGED, status);
        assert_eq!(
            refund(Some("refunded")),
            Some(Notice::Refunded { partial: false })
        );
        assert_eq!(
            refund(Some("partially_refunded")),
            Some(Notice::Refunded { partial: true })
        );
        for other in [Some("failed"), Some("paid"), Some("unpaid"), None] {
            assert_eq!(refund(other), None, "{other:?}");
        }
    }

    #[test]
    fn sms_only_when_the_parcel_moves() {
        assert_eq!(Notice::Shipped.channels(), [Channel::Email, Channel::Sms]);
        assert_eq!(Notice::Delivered.channels(), [Channel::Email, Channel::Sms]);
        for notice in [Notice::Placed, Notice::Confirmed, Notice::Cancelled] {
            assert_eq!(notice.channels(), [Channel::Email]);
        }
    }
}
