//! The priced checkout as the cart sends it (shipping, discounts, taxes), checked and
//! turned into the order's money lines. Amounts are decimal text exactly as sent; the
//! cart is the authority on prices and taxes, and this checks what can be checked:
//! currency digits, signs, rates in [0, 1], taxes not above what they tax, discounts
//! not above the subtotal.

use super::allocation::allocate;
use super::lines::{Discount, Pricing, ShippingLine, TaxLine};
use super::rate::TaxRate;
use crate::domain::money::{Currency, Money};
use crate::domain::validation::is_valid_id;

/// One tax of a cart line or of the cart's shipping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CartTaxLine {
    pub name: String,
    pub rate: String,
    pub amount: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CartShipping {
    pub method: String,
    pub name: String,
    pub amount: String,
    pub tax_lines: Vec<CartTaxLine>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CartDiscount {
    pub code: String,
    pub amount: String,
}

/// The cart's members beyond its items; all optional, so a cart without them (the
/// seed's) is priced as before.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CartCharges {
    pub taxes_included: bool,
    pub shipping: Option<CartShipping>,
    pub discounts: Vec<CartDiscount>,
}

/// A member of the cart that cannot be priced, by its path (`shipping.amount`,
/// `items[0].tax_lines[1].rate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberError {
    pub member: String,
    pub message: String,
}

fn refuse<T>(member: impl Into<String>, message: impl Into<String>) -> Result<T, MemberError> {
    Err(MemberError {
        member: member.into(),
        message: message.into(),
    })
}

pub const MAX_TAX_LINES: usize = 5;
pub const MAX_DISCOUNTS: usize = 10;
const MAX_LABEL_LEN: usize = 100;
/// The dearest shipping charge, in major units (as for a unit price).
pub const MAX_SHIPPING: i64 = 1_000_000;

/// A name printed on documents: non-blank, bounded, one line.
fn label(member: &str, text: &str) -> Result<String, MemberError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_LABEL_LEN {
        return refuse(member, format!("must be 1 to {MAX_LABEL_LEN} characters"));
    }
    if text.chars().any(char::is_control) {
        return refuse(member, "must not contain control characters");
    }
    Ok(text.to_string())
}

fn amount(member: &str, text: &str, currency: Currency) -> Result<Money, MemberError> {
    Money::parse(text, currency).or_else(|e| refuse(member, e.to_string()))
}

/// The taxes of something worth `base` (a line's price × quantity, or the shipping
/// charge): each rate in [0, 1], each amount in the currency's digits, and together
/// never more than `base` itself (no rate above 100 % can produce that).
pub fn tax_lines(
    member: &str,
    lines: &[CartTaxLine],
    base: Money,
) -> Result<Vec<TaxLine>, MemberError> {
    if lines.len() > MAX_TAX_LINES {
        return refuse(member, format!("must have at most {MAX_TAX_LINES} taxes"));
    }
    let mut taxes = Vec::with_capacity(lines.len());
    for (index, line) in lines.iter().enumerate() {
        let at = format!("{member}[{index}]");
        let name = label(&format!("{at}.name"), &line.name)?;
        let rate = TaxRate::parse(&line.rate).or_else(|e| refuse(format!("{at}.rate"), e))?;
        let amount = amount(&format!("{at}.amount"), &line.amount, base.currency())?;
        taxes.push(TaxLine { name, rate, amount });
    }
    let total: i64 = taxes.iter().map(|t| t.amount.minor()).sum();
    if total > base.minor() {
        return refuse(
            member,
            format!(
                "taxes of {} are more than the {} they are on",
                Money::from_minor(total, base.currency()).to_decimal_string(),
                base.to_decimal_string()
            ),
        );
    }
    Ok(taxes)
}

/// The order's shipping and discounts, for items worth `subtotal`.
pub fn pricing(
    charges: &CartCharges,
    currency: Currency,
    subtotal: Money,
) -> Result<Pricing, MemberError> {
    let shipping = match &charges.shipping {
        None => None,
        Some(s) => {
            if !is_valid_id(&s.method) {
                return refuse("shipping.method", "is not a valid id");
            }
            let name = label("shipping.name", &s.name)?;
            let charge = amount("shipping.amount", &s.amount, currency)?;
            if charge.minor() > 10i64.pow(currency.minor_digits()) * MAX_SHIPPING {
                return refuse(
                    "shipping.amount",
                    format!("must be at most {MAX_SHIPPING} {}", currency.code()),
                );
            }
            Some(ShippingLine {
                method: s.method.clone(),
                name,
                amount: charge,
                tax_lines: tax_lines("shipping.tax_lines", &s.tax_lines, charge)?,
            })
        }
    };
    if charges.discounts.len() > MAX_DISCOUNTS {
        return refuse(
            "discounts",
            format!("must have at most {MAX_DISCOUNTS} discounts"),
        );
    }
    let mut discounts = Vec::with_capacity(charges.discounts.len());
    for (index, d) in charges.discounts.iter().enumerate() {
        let code = label(&format!("discounts[{index}].code"), &d.code)?;
        let amount = amount(&format!("discounts[{index}].amount"), &d.amount, currency)?;
        discounts.push(Discount { code, amount });
    }
    let discount_total: i64 = discounts.iter().map(|d| d.amount.minor()).sum();
    if discount_total > subtotal.minor() {
        return refuse(
            "discounts",
            format!(
                "add up to {}, more than the items' subtotal of {}",
                Money::from_minor(discount_total, currency).to_decimal_string(),
                subtotal.to_decimal_string()
            ),
        );
    }
    Ok(Pricing {
        taxes_included: charges.taxes_included,
        shipping,
        discounts,
    })
}

/// Each line's share of the order's discounts, pro rata to the lines' values
/// (price × quantity), exact to the minor unit.
pub fn line_discounts(pricing: &Pricing, line_values: &[Money]) -> Vec<Money> {
    let Some(currency) = line_values.first().map(Money::currency) else {
        return Vec::new();
    };
    let total: i64 = pricing.discounts.iter().map(|d| d.amount.minor()).sum();
    let weights: Vec<i64> = line_values.iter().map(Money::minor).collect();
    // `pricing` checked the discounts against the subtotal, so the split exists.
    allocate(total, &weights)
        .unwrap_or_else(|| vec![0; weights.len()])
        .into_iter()
        .map(|minor| Money::from_minor(minor, currency))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::from_code("EUR").unwrap()
    }

    fn tax(name: &str, rate: &str, amount: &str) -> CartTaxLine {
        CartTaxLine {
            name: name.into(),
            rate: rate.into(),
            amount: amount.into(),
        }
    }

    #[test]
    fn bad_members_are_named() {
        let base = Money::parse("20.00", eur()).unwrap();
        let refused =
            |lines: &[CartTaxLine]| tax_lines("items[0].tax_lines", lines, base).unwrap_err();
        assert_eq!(
            refused(&[tax("VAT", "1.19", "3.80")]).member,
            "items[0].tax_lines[0].rate"
        );
        assert_eq!(
            refused(&[tax("VAT", "0.19", "3.801")]).member,
            "items[0].tax_lines[0].amount"
        );
        assert_eq!(
            refused(&[tax("VAT", "0.19", "-3.80")]).member,
            "items[0].tax_lines[0].amount"
        );
        assert_eq!(
            refused(&[tax(" ", "0.19", "3.80")]).member,
            "items[0].tax_lines[0].name"
        );
        assert_eq!(
            refused(&[tax("VAT", "0.19", "15.00"), tax("Levy", "0.5", "10.00")]).member,
            "items[0].tax_lines"
        );

        let subtotal = Money::parse("20.00", eur()).unwrap();
        let discount = |amount: &str| CartCharges {
            discounts: vec![CartDiscount {
                code: "WELCOME10".into(),
                amount: amount.into(),
            }],
            ..CartCharges::default()
        };
        assert!(pricing(&discount("20.00"), eur(), subtotal).is_ok());
        assert_eq!(
            pricing(&discount("20.01"), eur(), subtotal)
                .unwrap_err()
                .member,
            "discounts"
        );
        assert_eq!(
            pricing(&discount("1.5e1"), eur(), subtotal)
                .unwrap_err()
                .member,
            "discounts[0].amount"
        );
        let shipping = CartCharges {
            shipping: Some(CartShipping {
                method: "dhl paket".into(),
                name: "DHL".into(),
                amount: "4.90".into(),
                tax_lines: vec![],
            }),
            ..CartCharges::default()
        };
        assert_eq!(
            pricing(&shipping, eur(), subtotal).unwrap_err().member,
            "shipping.method"
        );
    }

    #[test]
    fn discounts_split_over_lines_by_value_exactly() {
        let money = |minor| Money::from_minor(minor, eur());
        let pricing = Pricing {
            discounts: vec![
                Discount {
                    code: "A".into(),
                    amount: money(700),
                },
                Discount {
                    code: "B".into(),
                    amount: money(300),
                },
            ],
            ..Pricing::default()
        };
        let shares = line_discounts(&pricing, &[money(1000), money(1000), money(1000)]);
        assert_eq!(shares, [money(334), money(333), money(333)]);
    }
}
