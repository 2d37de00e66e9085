//! Paying for an order online: the payment a provider (Stripe) takes for it, the refunds
//! made against it, and what a provider's notice means for the order. No I/O: the
//! services decide with these rules, the store records the outcome in one conditional
//! write.

use time::OffsetDateTime;

use super::money::{Currency, Money};
use super::order::{HistoryEntry, Order, OrderStatus, PaymentStatus, Role};

/// The actor of every change a payment notice makes.
pub const PAYMENTS_ACTOR: &str = "payments";
/// The actor of the expiry sweep.
pub const SYSTEM_ACTOR: &str = "system";
/// The reason the expiry sweep gives.
pub const PAYMENT_TIMEOUT: &str = "payment_timeout";
/// The refund key of the full refund that follows a cancellation.
pub const CANCELLATION_REFUND: &str = "cancellation";

/// The provider's payment for one order, created at checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// Stripe's PaymentIntent id (`pi_…`).
    pub intent_id: String,
    /// What the customer's browser needs to pay the intent; shown to the owner only.
    pub client_secret: String,
    /// What the provider reported received, matching the order or not.
    pub received: Option<Money>,
    /// Refunds made, oldest first.
    pub refunds: Vec<Refund>,
    /// A refund asked of the provider and not yet recorded: at most one at a time, so
    /// that two refunds can never both pass the check of what remains.
    pub refund_in_flight: Option<RefundHold>,
    /// Why the last attempt failed, or why a payment did not confirm the order.
    pub problem: Option<String>,
    /// The provider events applied to the order (`evt_…`): each has one effect.
    pub applied_events: Vec<String>,
}

/// One refund, as the provider made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// The caller's key for it (its `Idempotency-Key`, or [`CANCELLATION_REFUND`]).
    pub key: String,
    /// Stripe's refund id (`re_…`).
    pub refund_id: String,
    pub amount: Money,
    pub reason: Option<String>,
    pub actor: String,
    pub at: OffsetDateTime,
}

/// How long a refund in flight is its holder's: past it, another request (a retry, the
/// cancellation's consumer) may finish it, with the same provider key.
pub const REFUND_HOLD_LEASE_SECONDS: i64 = 30;

/// A refund reserved on the order before the provider is asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundHold {
    pub key: String,
    pub amount: Money,
    pub reason: Option<String>,
    pub actor: String,
    pub at: OffsetDateTime,
}

impl RefundHold {
    /// Whether its holder has had its time: a holder that died left it in flight.
    pub fn abandoned(&self, now: OffsetDateTime) -> bool {
        (now - self.at).whole_seconds() > REFUND_HOLD_LEASE_SECONDS
    }
}

impl Payment {
    pub fn new(intent_id: String, client_secret: String) -> Payment {
        Payment {
            intent_id,
            client_secret,
            received: None,
            refunds: Vec::new(),
            refund_in_flight: None,
            problem: None,
            applied_events: Vec::new(),
        }
    }

    /// What has been refunded, in minor units of what was received.
    pub fn refunded_minor(&self) -> i64 {
        self.refunds.iter().map(|r| r.amount.minor()).sum()
    }

    /// What may still be refunded: received, less refunds made and the one in flight.
    pub fn refundable(&self) -> Option<Money> {
        let received = self.received?;
        let held = self
            .refund_in_flight
            .as_ref()
            .map_or(0, |h| h.amount.minor());
        let left = received.minor() - self.refunded_minor() - held;
        Some(Money::from_minor(left.max(0), received.currency()))
    }

    /// The payment status once `refund` is recorded.
    pub fn status_after_refund(&self, refund: &Money) -> PaymentStatus {
        let received = self.received.map_or(0, |m| m.minor());
        if self.refunded_minor() + refund.minor() >= received {
            PaymentStatus::Refunded
        } else {
            PaymentStatus::PartiallyRefunded
        }
    }
}

/// Statuses in which money has been received and not all of it given back.
pub const REFUNDABLE: [PaymentStatus; 3] = [
    PaymentStatus::Paid,
    PaymentStatus::PartiallyRefunded,
    PaymentStatus::Mismatched,
];

/// Statuses in which no money has been received.
pub const UNPAID: [PaymentStatus; 2] = [PaymentStatus::Unpaid, PaymentStatus::Failed];

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
                    _ => NoticeEffect::Ignore("the order is paid already"),
                }
            }
            NoticeOutcome::Failed { reason } => match (order.status, unpaid) {
                (OrderStatus::Pending, true) => change(
                    OrderStatus::Pending,
                    PaymentStatus::Failed,
                    None,
                    Some(reason.clone()),
                ),
                // A failure reported after a success (events come in any order) or
                // for an order no longer waiting for payment changes nothing.
                _ => NoticeEffect::Ignore("the order is not waiting for payment"),
            },
        }
    }
}

/// Why a refund cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefundRefusal {
    #[error("the order has no online payment to refund")]
    NoPayment,
    #[error("the order has not been paid")]
    NotPaid,
    #[error("another refund of this order is in progress; retry when it is done")]
    InProgress,
    #[error("at most {0} can be refunded")]
    TooMuch(String),
    #[error("the amount must be more than zero")]
    Nothing,
}

/// Checks a refund of `amount` against what `order` has left to give back.
pub fn check_refund(order: &Order, amount: &Money) -> Result<(), RefundRefusal> {
    let payment = order.payment.as_ref().ok_or(RefundRefusal::NoPayment)?;
    if !REFUNDABLE.contains(&order.payment_status)
        && order.payment_status != PaymentStatus::Refunded
    {
        return Err(RefundRefusal::NotPaid);
    }
    if payment.refund_in_flight.is_some() {
        return Err(RefundRefusal::InProgress);
    }
    let left = payment.refundable().ok_or(RefundRefusal::NotPaid)?;
    if amount.minor() <= 0 {
        return Err(RefundRefusal::Nothing);
    }
    if amount.currency() != left.currency() || amount.minor() > left.minor() {
        return Err(RefundRefusal::TooMuch(format!(
            "{} {}",
            left.to_decimal_string(),
            left.currency().code()
        )));
    }
    Ok(())
}
