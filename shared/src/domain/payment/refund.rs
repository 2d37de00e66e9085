//! What may be refunded of an order's payment.

use super::{PaymentStatus, REFUNDABLE};
use crate::domain::money::Money;
use crate::domain::order::Order;

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
