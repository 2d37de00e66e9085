//! What may be refunded of an order's payment.

use super::{PaymentStatus, REFUNDABLE};
use crate::domain::billing::{AllocationError, Parts, check_allocation, split_refund};
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
    #[error(transparent)]
    Allocation(#[from] AllocationError),
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

/// What each earlier refund of `order` gave back per part: as recorded, or, for a
/// refund made before refunds were allocated, split pro rata over what remained then.
pub fn refunded_parts(order: &Order, charged: &Parts) -> Vec<Parts> {
    let mut earlier: Vec<Parts> = Vec::new();
    for refund in order.payment.iter().flat_map(|p| &p.refunds) {
        let parts = match &refund.parts {
            Some(parts) => Some(parts.clone()),
            None => split_refund(charged, &earlier, refund.amount),
        };
        earlier.extend(parts);
    }
    earlier
}

/// How a refund of `amount` (checked by [`check_refund`]) gives back `order`'s
/// lines, shipping and taxes: `given` when a caller allocated it (checked against
/// what remains of each part), else `amount` split pro rata over what remains.
/// `Ok(None)`: `amount` is more than the order's parts have left, which only money
/// received beyond the total (a mismatched payment) can be; no line accounts for it.
pub fn allocate_refund(
    order: &Order,
    amount: &Money,
    given: Option<Parts>,
) -> Result<Option<Parts>, RefundRefusal> {
    let charged = Parts::charged(order);
    let earlier = refunded_parts(order, &charged);
    match given {
        Some(given) => {
            check_allocation(&charged, &earlier, &given, *amount)?;
            Ok(Some(given))
        }
        None => Ok(split_refund(&charged, &earlier, *amount)),
    }
}

/// The refund the change at `sequence` (an event's) recorded, if it recorded one: a
/// refund is written with the history entry of its change, at the same instant.
pub fn refund_of_change(order: &Order, sequence: u64) -> Option<&super::Refund> {
    let entry = order.history.get((sequence as usize).checked_sub(1)?)?;
    entry.payment_status?;
    order
        .payment
        .as_ref()?
        .refunds
        .iter()
        .find(|r| r.at == entry.at)
}
