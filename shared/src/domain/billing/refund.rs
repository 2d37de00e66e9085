//! What a refund gives back, part by part: each line's net and taxes, the shipping's
//! net and taxes. An amount refunded is split over what remains refundable of each
//! part, pro rata, by [`allocate`], so what was refunded can be reported per line and
//! per tax rate, and a line is never refunded beyond what was paid for it.

use super::allocation::allocate;
use super::lines::{TaxLine, net_of};
use crate::domain::money::{Currency, Money};
use crate::domain::order::Order;

/// A line of the order, or what a refund gives back of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinePart {
    pub product_id: String,
    pub description: String,
    /// Without tax, after the line's discount.
    pub net: Money,
    pub tax_lines: Vec<TaxLine>,
}

/// The shipping, or what a refund gives back of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippingPart {
    pub description: String,
    pub net: Money,
    pub tax_lines: Vec<TaxLine>,
}

/// Money per part of an order: what was charged, or what one refund gives back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts {
    pub currency: Currency,
    pub lines: Vec<LinePart>,
    pub shipping: Option<ShippingPart>,
}

impl Parts {
    /// What the customer was charged for each part: the nets and taxes add up to the
    /// order's total.
    pub fn charged(order: &Order) -> Parts {
        let included = order.pricing.taxes_included;
        let currency = order.total.currency();
        let after_discount = |value: Money, discount: Money| {
            Money::from_minor(value.minor() - discount.minor(), currency)
        };
        Parts {
            currency,
            lines: order
                .items
                .iter()
                .map(|item| LinePart {
                    product_id: item.product_id.clone(),
                    description: item.name.clone(),
                    net: net_of(
                        after_discount(item.value(), item.discount),
                        &item.tax_lines,
                        included,
                    ),
                    tax_lines: item.tax_lines.clone(),
                })
                .collect(),
            shipping: order.pricing.shipping.as_ref().map(|s| ShippingPart {
                description: s.name.clone(),
                net: net_of(s.amount, &s.tax_lines, included),
                tax_lines: s.tax_lines.clone(),
            }),
        }
    }

    /// Every amount, in one fixed order: each line's net then its taxes, then the
    /// shipping's net and taxes. The shape is the order's, which never changes after
    /// checkout, so a refund is stored as these numbers alone.
    pub fn amounts(&self) -> Vec<i64> {
        let mut amounts = Vec::new();
        for line in &self.lines {
            amounts.push(line.net.minor());
            amounts.extend(line.tax_lines.iter().map(|t| t.amount.minor()));
        }
        if let Some(shipping) = &self.shipping {
            amounts.push(shipping.net.minor());
            amounts.extend(shipping.tax_lines.iter().map(|t| t.amount.minor()));
        }
        amounts
    }

    /// The same parts holding `amounts` (in the order of [`Parts::amounts`]); `None`
    /// when there are not exactly as many amounts as parts.
    pub fn holding(&self, amounts: &[i64]) -> Option<Parts> {
        (amounts.len() == self.amounts().len()).then(|| self.with_amounts(amounts))
    }

    fn with_amounts(&self, amounts: &[i64]) -> Parts {
        let mut next = amounts.iter().copied();
        let mut money = || Money::from_minor(next.next().unwrap_or(0), self.currency);
        let taxes = |taxes: &[TaxLine], money: &mut dyn FnMut() -> Money| -> Vec<TaxLine> {
            taxes
                .iter()
                .map(|t| TaxLine {
                    amount: money(),
                    ..t.clone()
                })
                .collect()
        };
        let lines = self
            .lines
            .iter()
            .map(|line| LinePart {
                net: money(),
                tax_lines: taxes(&line.tax_lines, &mut money),
                ..line.clone()
            })
            .collect();
        let shipping = self.shipping.as_ref().map(|s| ShippingPart {
            net: money(),
            tax_lines: taxes(&s.tax_lines, &mut money),
            ..s.clone()
        });
        Parts {
            currency: self.currency,
            lines,
            shipping,
        }
    }

    pub fn total(&self) -> Money {
        Money::from_minor(self.amounts().iter().sum(), self.currency)
    }

    /// The lines a refund touched (the rest gave back nothing).
    pub fn refunded_lines(&self) -> impl Iterator<Item = &LinePart> {
        self.lines
            .iter()
            .filter(|l| l.net.minor() != 0 || l.tax_lines.iter().any(|t| t.amount.minor() != 0))
    }
}

/// What remains refundable of each part (in the order of [`Parts::amounts`]) once
/// `earlier` refunds are taken off; `None` when one of them has another shape.
fn remaining(charged: &Parts, earlier: &[Parts]) -> Option<Vec<i64>> {
    let mut remaining = charged.amounts();
    for refund in earlier {
        let given = refund.amounts();
        if given.len() != remaining.len() || refund.currency != charged.currency {
            return None;
        }
        for (left, given) in remaining.iter_mut().zip(given) {
            *left -= given;
        }
    }
    Some(remaining)
}

/// Splits `amount` over what remains refundable of an order `charged` so much per
/// part, once `earlier` refunds of it (split the same way) are taken off, pro rata to
/// what remains of each part. `None` when `amount` is more than remains, or is not in
/// the order's currency.
pub fn split_refund(charged: &Parts, earlier: &[Parts], amount: Money) -> Option<Parts> {
    if amount.currency() != charged.currency {
        return None;
    }
    // A part refunded beyond its charge (never, by construction) gives nothing more.
    let weights: Vec<i64> = remaining(charged, earlier)?
        .iter()
        .map(|left| (*left).max(0))
        .collect();
    if amount.minor() > weights.iter().sum::<i64>() {
        return None;
    }
    allocate(amount.minor(), &weights).map(|shares| charged.with_amounts(&shares))
}

/// Why an allocation a caller gives a refund (a return's: the lines sent back, the
/// shipping only on request, less a fee) cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocationError {
    #[error("the allocation does not have the order's lines, shipping and taxes")]
    Shape,
    #[error("the allocation adds up to {given}, not the {amount} refunded")]
    Total { given: String, amount: String },
    #[error("the allocation gives back less than nothing of a part, or more than remains of it")]
    Beyond,
}

/// Checks `given`, a caller's allocation of a refund of `amount`: the order's parts,
/// adding up to `amount`, none below zero or above what `earlier` refunds left of it.
pub fn check_allocation(
    charged: &Parts,
    earlier: &[Parts],
    given: &Parts,
    amount: Money,
) -> Result<(), AllocationError> {
    let same_lines =
        given.lines.len() == charged.lines.len()
            && given.lines.iter().zip(&charged.lines).all(|(g, c)| {
                g.product_id == c.product_id && g.tax_lines.len() == c.tax_lines.len()
            });
    let same_shipping = match (&given.shipping, &charged.shipping) {
        (None, None) => true,
        (Some(g), Some(c)) => g.tax_lines.len() == c.tax_lines.len(),
        _ => false,
    };
    if given.currency != charged.currency || !same_lines || !same_shipping {
        return Err(AllocationError::Shape);
    }
    if given.total() != amount {
        return Err(AllocationError::Total {
            given: given.total().to_decimal_string(),
            amount: amount.to_decimal_string(),
        });
    }
    let left = remaining(charged, earlier).ok_or(AllocationError::Shape)?;
    if given
        .amounts()
        .iter()
        .zip(left)
        .any(|(share, left)| *share < 0 || *share > left.max(0))
    {
        return Err(AllocationError::Beyond);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::billing::TaxRate;

    fn eur(minor: i64) -> Money {
        Money::from_minor(minor, Currency::from_code("EUR").unwrap())
    }

    fn vat(rate: &str, minor: i64) -> Vec<TaxLine> {
        vec![TaxLine {
            name: "VAT".into(),
            rate: TaxRate::parse(rate).unwrap(),
            amount: eur(minor),
        }]
    }

    /// The two-rate cart of the tests, after its 4.00 discount: 36.48 in all.
    fn charged() -> Parts {
        let line = |id: &str, net, taxes| LinePart {
            product_id: id.into(),
            description: id.into(),
            net: eur(net),
            tax_lines: taxes,
        };
        Parts {
            currency: eur(0).currency(),
            lines: vec![
                line("p001", 1739, vat("0.19", 330)),
                line("b042", 931, vat("0.07", 65)),
            ],
            shipping: Some(ShippingPart {
                description: "DHL".into(),
                net: eur(490),
                tax_lines: vat("0.19", 93),
            }),
        }
    }

    #[test]
    fn refunds_split_over_what_remains_and_never_beyond_it() {
        let charged = charged();
        assert_eq!(charged.total(), eur(3648));
        assert_eq!(charged.amounts(), [1739, 330, 931, 65, 490, 93]);
        assert_eq!(charged.with_amounts(&charged.amounts()), charged);

        // 10.00 of 36.48: 27.41 % of every part, leftover cents by largest remainder.
        let first = split_refund(&charged, &[], eur(1000)).unwrap();
        assert_eq!(first.total(), eur(1000));
        assert_eq!(first.amounts(), [477, 90, 255, 18, 134, 26]);
        // What remains, exactly: the second refund takes every part to zero.
        let rest = split_refund(&charged, std::slice::from_ref(&first), eur(2648)).unwrap();
        let both: Vec<i64> = first
            .amounts()
            .iter()
            .zip(rest.amounts())
            .map(|(a, b)| a + b)
            .collect();
        assert_eq!(both, charged.amounts());
        assert_eq!(split_refund(&charged, &[first.clone(), rest], eur(1)), None);
        assert_eq!(split_refund(&charged, &[first], eur(2649)), None);
        assert_eq!(
            split_refund(
                &charged,
                &[],
                Money::from_minor(1, Currency::from_code("USD").unwrap())
            ),
            None
        );
    }

    #[test]
    fn a_callers_allocation_is_taken_only_within_what_remains() {
        let charged = charged();
        // A return of the second line, shipping kept: 9.31 + 0.65.
        let returned = charged.holding(&[0, 0, 931, 65, 0, 0]).unwrap();
        assert_eq!(check_allocation(&charged, &[], &returned, eur(996)), Ok(()));
        assert!(matches!(
            check_allocation(&charged, &[], &returned, eur(1000)),
            Err(AllocationError::Total { .. })
        ));
        // The same line again, after it was refunded once.
        assert_eq!(
            check_allocation(
                &charged,
                std::slice::from_ref(&returned),
                &returned,
                eur(996)
            ),
            Err(AllocationError::Beyond)
        );
        let negative = charged.holding(&[-1, 0, 931, 66, 0, 0]).unwrap();
        assert_eq!(
            check_allocation(&charged, &[], &negative, eur(996)),
            Err(AllocationError::Beyond)
        );
        let mut other = returned.clone();
        other.shipping = None;
        assert_eq!(
            check_allocation(&charged, &[], &other, eur(996)),
            Err(AllocationError::Shape)
        );
        assert_eq!(charged.holding(&[1, 2, 3]), None);
    }
}
