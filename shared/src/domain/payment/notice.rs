//! What a payment provider's notice (a verified webhook event) does to an order.

use time::OffsetDateTime;

use super::{PAYMENTS_ACTOR, PaymentStatus, UNPAID};
use crate::domain::money::{Currency, Money};
use crate::domain::order::{HistoryEntry, Order, OrderStatus, Role};

/// A provider's word about one payment, as its (verified) webhook event said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentNotice {
    /// The provider's event id (`evt_…`): one effect per id.
    pub event_id: String,
    pub intent_id: String,
    pub outcome: NoticeOutcome,
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeOutcome {
    /// The money arrived: `amount` in minor units of `currency` (an ISO code, any case).
    Succeeded { amount: i64, currency: String },
    /// An attempt failed; the customer may try again.
    Failed { reason: String },
}

/// What a notice does to the order, decided on the order as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeEffect {
    /// Record this change (one conditional write at the version read).
    Record(PaymentChange),
    /// This event was applied already.
    Duplicate,
    /// Nothing to record, and why (logged, acknowledged).
    Ignore(&'static str),
}

/// A change of an order's payment, recorded like a move: one history entry, one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentChange {
    /// The order's status afterwards (`confirmed` for a payment that confirms it).
    pub status: OrderStatus,
    pub payment_status: PaymentStatus,
    pub received: Option<Money>,
    pub problem: Option<String>,
    /// The provider event applied, so that it is never applied twice.
    pub event_id: Option<String>,
    /// The version the decision was made at: the write is refused at any other.
    pub expected_version: u64,
    pub entry: HistoryEntry,
}

impl PaymentNotice {
    /// The effect of this notice on `order`.
    pub fn effect(&self, order: &Order) -> NoticeEffect {
        let Some(payment) = &order.payment else {
            return NoticeEffect::Ignore("the order takes no online payment");
        };
        if payment.intent_id != self.intent_id {
            return NoticeEffect::Ignore("the payment intent is not the order's");
        }
        if payment.applied_events.contains(&self.event_id) {
            return NoticeEffect::Duplicate;
        }
        let unpaid = UNPAID.contains(&order.payment_status);
        let change = |status, payment_status, received, problem: Option<String>| {
            NoticeEffect::Record(PaymentChange {
                status,
                payment_status,
                received,
                problem: problem.clone(),
                event_id: Some(self.event_id.clone()),
                expected_version: order.version,
                entry: HistoryEntry {
                    at: self.at,
                    actor: PAYMENTS_ACTOR.into(),
                    role: Role::Payments,
                    status,
                    shipping_status: None,
                    payment_status: Some(payment_status),
                    reason: problem,
                },
            })
        };
        match &self.outcome {
            NoticeOutcome::Succeeded { amount, currency } => {
                let received = Currency::from_code(&currency.to_ascii_uppercase())
                    .map(|c| Money::from_minor(*amount, c));
                match (order.status, unpaid) {
                    (OrderStatus::Pending, true) if received == Some(order.total) => {
                        change(OrderStatus::Confirmed, PaymentStatus::Paid, received, None)
                    }
                    (OrderStatus::Pending, true) => change(
                        OrderStatus::Pending,
                        PaymentStatus::Mismatched,
                        received,
                        Some(format!(
                            "received {amount} {} (minor units), the order's total is {} {}",
                            currency.to_ascii_uppercase(),
                            order.total.minor(),
                            order.total.currency().code()
                        )),
                    ),
                    // Paid after the order was cancelled: recorded, so the refund
                    // consumer gives the money back.
                    (OrderStatus::Cancelled, true) => change(
                        OrderStatus::Cancelled,
                        PaymentStatus::Paid,
                        received,
                        Some("paid after the order was cancelled; refunding".into()),
                    ),
                    // Paid after an admin confirmed the order by hand: the money is
                    // recorded (so a cancellation refunds it); the status stays.
                    (status, true) if received == Some(order.total) => {
                        change(status, PaymentStatus::Paid, received, None)
                    }
                    (status, true) => change(
                        status,
                        PaymentStatus::Mismatched,
                        received,
                        Some(format!(
                            "received {amount} {} (minor units), the order's total is {} {}",
                            currency.to_ascii_uppercase(),
                            order.total.minor(),
                            order.total.currency().code()
                        )),
                    ),
                    _ => NoticeEffect::Ignore("the order is paid already"),
                }
            }
            NoticeOutcome::Failed { reason } => match (order.status, unpaid) {
                // Pending, or confirmed by hand and still unpaid.
                (status, true) if status != OrderStatus::Cancelled => {
                    change(status, PaymentStatus::Failed, None, Some(reason.clone()))
                }
                // A failure reported after a success (events come in any order) or
                // for an order no longer waiting for payment changes nothing.
                _ => NoticeEffect::Ignore("the order is not waiting for payment"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::order::{LineItem, OrderId, PaymentMethod, ShippingAddress, ShippingStatus};
    use crate::domain::payment::Payment;

    fn order(status: OrderStatus, payment_status: PaymentStatus) -> Order {
        let usd = Currency::from_code("USD").unwrap();
        let at = OffsetDateTime::UNIX_EPOCH;
        Order {
            id: OrderId::for_cart("c1"),
            user_id: "u".into(),
            cart_id: "c1".into(),
            status,
            payment_status,
            shipping_status: ShippingStatus::NotStarted,
            payment_method: PaymentMethod::CreditCard,
            items: vec![LineItem {
                product_id: "p".into(),
                name: "P".into(),
                quantity: 1,
                price: Money::from_minor(7500, usd),
                discount: Money::zero(usd),
                tax_lines: vec![],
            }],
            pricing: Default::default(),
            total: Money::from_minor(7500, usd),
            shipping_address: ShippingAddress {
                name: "n".into(),
                address: "a".into(),
                city: "c".into(),
                state: None,
                zip: "z".into(),
                country: "US".into(),
            },
            tracking_number: None,
            carrier: None,
            payment: Some(Payment::new("pi_1".into(), "pi_1_secret".into())),
            contact: Default::default(),
            created_at: at,
            updated_at: at,
            version: 1,
            history: vec![],
            shipments: vec![],
            label_failure: None,
            returns: vec![],
        }
    }

    fn notice(id: &str, outcome: NoticeOutcome) -> PaymentNotice {
        PaymentNotice {
            event_id: id.into(),
            intent_id: "pi_1".into(),
            outcome,
            at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn succeeded(amount: i64, currency: &str) -> NoticeOutcome {
        NoticeOutcome::Succeeded {
            amount,
            currency: currency.into(),
        }
    }

    fn recorded(effect: NoticeEffect) -> (OrderStatus, PaymentStatus) {
        match effect {
            NoticeEffect::Record(c) => (c.status, c.payment_status),
            other => panic!("not recorded: {other:?}"),
        }
    }

    #[test]
    fn a_matching_payment_confirms_a_pending_order() {
        let pending = order(OrderStatus::Pending, PaymentStatus::Unpaid);
        let effect = notice("evt_1", succeeded(7500, "usd")).effect(&pending);
        assert_eq!(
            recorded(effect),
            (OrderStatus::Confirmed, PaymentStatus::Paid)
        );
        // After a declined attempt too.
        let failed = order(OrderStatus::Pending, PaymentStatus::Failed);
        let effect = notice("evt_2", succeeded(7500, "USD")).effect(&failed);
        assert_eq!(
            recorded(effect),
            (OrderStatus::Confirmed, PaymentStatus::Paid)
        );
    }

    #[test]
    fn another_amount_or_currency_is_a_mismatch_not_a_confirmation() {
        let pending = order(OrderStatus::Pending, PaymentStatus::Unpaid);
        for outcome in [
            succeeded(7499, "usd"),
            succeeded(7500, "eur"),
            succeeded(7500, "xyz"),
        ] {
            let effect = notice("evt_1", outcome).effect(&pending);
            assert_eq!(
                recorded(effect),
                (OrderStatus::Pending, PaymentStatus::Mismatched)
            );
        }
    }

    #[test]
    fn duplicates_strangers_and_late_failures_change_nothing() {
        let mut pending = order(OrderStatus::Pending, PaymentStatus::Unpaid);
        pending.payment.as_mut().unwrap().applied_events = vec!["evt_1".into()];
        let effect = notice("evt_1", succeeded(7500, "usd")).effect(&pending);
        assert_eq!(effect, NoticeEffect::Duplicate);
        let mut stranger = notice("evt_2", succeeded(7500, "usd"));
        stranger.intent_id = "pi_other".into();
        assert!(matches!(stranger.effect(&pending), NoticeEffect::Ignore(_)));
        let paid = order(OrderStatus::Confirmed, PaymentStatus::Paid);
        let late = notice(
            "evt_3",
            NoticeOutcome::Failed {
                reason: "declined".into(),
            },
        );
        assert!(matches!(late.effect(&paid), NoticeEffect::Ignore(_)));
        let again = notice("evt_4", succeeded(7500, "usd"));
        assert!(matches!(again.effect(&paid), NoticeEffect::Ignore(_)));
    }

    /// Issue 23, defect 1: an order an admin confirmed by hand is still unpaid; the
    /// payment that arrives later is recorded without moving it.
    #[test]
    fn a_payment_after_a_confirmation_by_hand_is_recorded() {
        let confirmed = order(OrderStatus::Confirmed, PaymentStatus::Unpaid);
        let effect = notice("evt_1", succeeded(7500, "usd")).effect(&confirmed);
        assert_eq!(
            recorded(effect),
            (OrderStatus::Confirmed, PaymentStatus::Paid)
        );
        let effect = notice("evt_2", succeeded(100, "usd")).effect(&confirmed);
        assert_eq!(
            recorded(effect),
            (OrderStatus::Confirmed, PaymentStatus::Mismatched)
        );
    }

    #[test]
    fn a_payment_for_a_cancelled_order_is_recorded_to_be_refunded() {
        let cancelled = order(OrderStatus::Cancelled, PaymentStatus::Unpaid);
        let effect = notice("evt_1", succeeded(7500, "usd")).effect(&cancelled);
        assert_eq!(
            recorded(effect),
            (OrderStatus::Cancelled, PaymentStatus::Paid)
        );
        let failed = notice("evt_2", NoticeOutcome::Failed { reason: "x".into() });
        assert!(matches!(failed.effect(&cancelled), NoticeEffect::Ignore(_)));
    }
}
