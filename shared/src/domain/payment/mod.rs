//! Paying for an order online: the payment a provider (Stripe) takes for it and the
//! refunds made against it; `notice` says what a provider's notice does to an order,
//! `refund` what may be refunded. No I/O: the services decide with these rules, the
//! store records the outcome in one conditional write.

use time::OffsetDateTime;

use super::billing::Parts;
use super::money::Money;

pub mod notice;
pub mod refund;

named_enum! {
    /// Whether the order has been paid for. `failed`: an attempt failed and the
    /// customer may try again; `mismatched`: money arrived that does not match the
    /// total, so the order was not confirmed.
    PaymentStatus {
        Unpaid => "unpaid",
        Failed => "failed",
        Paid => "paid",
        Mismatched => "mismatched",
        PartiallyRefunded => "partially_refunded",
        Refunded => "refunded",
    }
}

/// The actor of every change a payment notice makes.
pub const PAYMENTS_ACTOR: &str = "payments";
/// The actor of the expiry sweep.
pub const SYSTEM_ACTOR: &str = "system";
/// The reason the expiry sweep gives.
pub const PAYMENT_TIMEOUT: &str = "payment_timeout";
/// The refund key of the full refund that follows a cancellation.
pub const CANCELLATION_REFUND: &str = "cancellation";

/// The refund key a caller's `Idempotency-Key` is kept under: in a namespace of its
/// own, so that no caller can take a key the system reserves ([`CANCELLATION_REFUND`])
/// and make a later cancellation believe it has refunded already.
pub fn caller_refund_key(idempotency_key: &str) -> String {
    format!("caller:{idempotency_key}")
}

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
    /// Its key: [`caller_refund_key`] of the caller's `Idempotency-Key`, or
    /// [`CANCELLATION_REFUND`].
    pub key: String,
    /// Stripe's refund id (`re_…`).
    pub refund_id: String,
    pub amount: Money,
    /// What it gave back per line, shipping and tax rate (its credit note's lines);
    /// `None` for refunds made before refunds were allocated, and for money received
    /// beyond the order's total (a mismatched payment), which no line accounts for.
    pub parts: Option<Parts>,
    pub reason: Option<String>,
    pub actor: String,
    pub at: OffsetDateTime,
}

impl Refund {
    /// What was refunded, without the reason: `refund re_1 of 25.00 USD`. An admin's
    /// reason is a note for staff, so this is what events say of an admin's refund.
    pub fn summary(&self) -> String {
        format!(
            "refund {} of {} {}",
            self.refund_id,
            self.amount.to_decimal_string(),
            self.amount.currency().code()
        )
    }
}

/// How long a refund in flight is its holder's: past it, another request (a retry, the
/// cancellation's consumer) may finish it, with the same provider key.
pub const REFUND_HOLD_LEASE_SECONDS: i64 = 30;

/// A refund reserved on the order before the provider is asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundHold {
    pub key: String,
    pub amount: Money,
    /// How `amount` is given back per part. Asked for with `None`, the refund path
    /// splits it pro rata over what remains refundable; a caller that knows better (a
    /// return: the lines sent back) gives its own, which is checked. Held, it is the
    /// allocation the refund records.
    pub parts: Option<Parts>,
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
