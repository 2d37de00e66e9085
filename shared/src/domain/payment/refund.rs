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

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::domain::billing::{TaxLine, TaxRate};
    use crate::domain::payment::{Payment, Refund};
    use crate::domain::{
        Contact, Currency, HistoryEntry, LineItem, OrderId, OrderStatus, PaymentMethod,
        PaymentStatus, Role, ShippingAddress, ShippingStatus,
    };

    fn eur(minor: i64) -> Money {
        Money::from_minor(minor, Currency::from_code("EUR").unwrap())
    }

    /// Two lines, 20.00 at 19 % VAT added (3.80) and 10.00 untaxed: 33.80, paid.
    fn paid_order(refunds: Vec<Refund>) -> Order {
        let line = |id: &str, price, tax_lines| LineItem {
            product_id: id.into(),
            name: id.into(),
            quantity: 1,
            price: eur(price),
            discount: eur(0),
            tax_lines,
        };
        let vat = vec![TaxLine {
            name: "VAT".into(),
            rate: TaxRate::parse("0.19").unwrap(),
            amount: eur(380),
        }];
        let at = OffsetDateTime::UNIX_EPOCH;
        let entry = |seconds: i64, payment_status| HistoryEntry {
            at: at + time::Duration::seconds(seconds),
            actor: "payments".into(),
            role: Role::Payments,
            status: OrderStatus::Confirmed,
            shipping_status: None,
            payment_status,
            reason: None,
        };
        let mut payment = Payment::new("pi_1".into(), "secret".into());
        payment.received = Some(eur(3380));
        payment.refunds = refunds;
        Order {
            id: OrderId::for_cart("c1"),
            user_id: "u1".into(),
            cart_id: "c1".into(),
            status: OrderStatus::Confirmed,
            payment_status: PaymentStatus::PartiallyRefunded,
            shipping_status: ShippingStatus::NotStarted,
            payment_method: PaymentMethod::CreditCard,
            items: vec![line("a", 2000, vat), line("b", 1000, vec![])],
            pricing: Default::default(),
            total: eur(3380),
            shipping_address: ShippingAddress {
                name: "Jane Doe".into(),
                address: "1 Main St".into(),
                city: "Berlin".into(),
                state: None,
                zip: "10115".into(),
                country: "DE".into(),
            },
            tracking_number: None,
            carrier: None,
            payment: Some(payment),
            contact: Contact::default(),
            created_at: at,
            updated_at: at,
            version: 3,
            history: vec![
                entry(0, None),
                entry(1, Some(PaymentStatus::Paid)),
                entry(2, Some(PaymentStatus::PartiallyRefunded)),
            ],
            shipments: vec![],
            label_failure: None,
            returns: vec![],
        }
    }

    fn refund(amount: i64, parts: Option<Parts>, seconds: i64) -> Refund {
        Refund {
            key: format!("caller:{seconds}"),
            refund_id: format!("re_{seconds}"),
            amount: eur(amount),
            parts,
            reason: None,
            actor: "admin".into(),
            at: OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(seconds),
        }
    }

    #[test]
    fn earlier_refunds_without_an_allocation_are_taken_as_split_pro_rata() {
        // 16.90 made before refunds were allocated: half of every part.
        let order = paid_order(vec![refund(1690, None, 2)]);
        let charged = Parts::charged(&order);
        assert_eq!(charged.amounts(), [2000, 380, 1000]);
        let earlier = refunded_parts(&order, &charged);
        assert_eq!(earlier[0].amounts(), [1000, 190, 500]);
        // The rest is exactly what remains of each part.
        let rest = allocate_refund(&order, &eur(1690), None).unwrap().unwrap();
        assert_eq!(rest.amounts(), [1000, 190, 500]);
        // A caller may give back the untaxed line alone, not more of it than remains.
        let line_b = charged.holding(&[0, 0, 500]).unwrap();
        assert!(allocate_refund(&order, &eur(500), Some(line_b)).is_ok());
        let too_much = charged.holding(&[0, 0, 501]).unwrap();
        assert_eq!(
            allocate_refund(&order, &eur(501), Some(too_much)),
            Err(RefundRefusal::Allocation(AllocationError::Beyond))
        );
    }

    #[test]
    fn a_change_finds_the_refund_it_recorded() {
        let order = paid_order(vec![refund(100, None, 2)]);
        assert_eq!(
            refund_of_change(&order, 3).map(|r| r.refund_id.as_str()),
            Some("re_2")
        );
        // The payment, not a refund; a change the order never went through.
        assert!(refund_of_change(&order, 2).is_none());
        assert!(refund_of_change(&order, 1).is_none());
        assert!(refund_of_change(&order, 9).is_none());
        assert!(refund_of_change(&order, 0).is_none());
    }
}
