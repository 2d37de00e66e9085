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
    /// shipping's net and taxes.
    fn amounts(&self) -> Vec<i64> {
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

    /// The same parts holding `amounts` (in the order of [`Parts::amounts`]).
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

/// Splits `amount` over what remains refundable of an order `charged` so much per
/// part, once `earlier` refunds of it (split the same way) are taken off, pro rata to
/// what remains of each part. `None` when `amount` is more than remains, or is not in
/// the order's currency.
pub fn split_refund(charged: &Parts, earlier: &[Parts], amount: Money) -> Option<Parts> {
    if amount.currency() != charged.currency {
        return None;
    }
    let mut remaining = charged.amounts();
    for refund in earlier {
        let given = refund.amounts();
        if given.len() != remaining.len() {
            return None;
        }
        for (left, given) in remaining.iter_mut().zip(given) {
            *left -= given;
        }
    }
    // A part refunded beyond its charge (never, by construction) gives nothing more.
    let weights: Vec<i64> = remaining.iter().map(|left| (*left).max(0)).collect();
    if amount.minor() > weights.iter().sum::<i64>() {
        return None;
    }
    allocate(amount.minor(), &weights).map(|shares| charged.with_amounts(&shares))
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
}
