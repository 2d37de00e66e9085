//! The money lines of an order beside its items: shipping, discounts, and the taxes of
//! both, as the cart priced them; and the totals they add up to.

use super::rate::TaxRate;
use crate::domain::money::{Currency, Money};

/// One tax on a line or on shipping, as the cart computed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxLine {
    /// What the tax is called on documents: `VAT`, `GST`, `State tax`.
    pub name: String,
    pub rate: TaxRate,
    pub amount: Money,
}

/// The shipping charge of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippingLine {
    /// The cart's id of the method (`dhl_paket`).
    pub method: String,
    pub name: String,
    pub amount: Money,
    pub tax_lines: Vec<TaxLine>,
}

/// A discount on the order's items (a code or an automatic promotion).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discount {
    pub code: String,
    pub amount: Money,
}

/// What an order's total is made of beside its items. The default is the seed's
/// cart: no shipping charge, no discount, prices as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pricing {
    /// Prices (and shipping) include their taxes; otherwise taxes come on top.
    pub taxes_included: bool,
    pub shipping: Option<ShippingLine>,
    pub discounts: Vec<Discount>,
}

/// The order's totals: `total = subtotal − discount_total + shipping_total
/// (+ tax_total unless taxes are included, when it is the part included)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Σ price × quantity.
    pub subtotal: Money,
    pub discount_total: Money,
    pub shipping_total: Money,
    pub tax_total: Money,
    pub total: Money,
}

/// What taxes are charged on: `after_discount` as it is, or without the taxes
/// themselves when prices include them.
pub fn net_of(after_discount: Money, taxes: &[TaxLine], included: bool) -> Money {
    let tax = sum(taxes.iter().map(|t| &t.amount));
    let net = if included {
        after_discount.minor() - tax
    } else {
        after_discount.minor()
    };
    Money::from_minor(net, after_discount.currency())
}

/// Σ of `amounts` in minor units. Checkout bounds every amount, so the sums fit.
pub fn sum<'a>(amounts: impl IntoIterator<Item = &'a Money>) -> i64 {
    amounts.into_iter().map(Money::minor).sum()
}

impl Totals {
    /// The totals of `lines` (each its value, price × quantity, and its taxes) under
    /// `pricing`, in `currency`.
    pub fn of<'a>(
        lines: impl IntoIterator<Item = (Money, &'a [TaxLine])>,
        pricing: &Pricing,
        currency: Currency,
    ) -> Totals {
        let money = |minor| Money::from_minor(minor, currency);
        let (mut subtotal, mut tax_total) = (0, 0);
        for (value, taxes) in lines {
            subtotal += value.minor();
            tax_total += sum(taxes.iter().map(|t| &t.amount));
        }
        let discount_total = sum(pricing.discounts.iter().map(|d| &d.amount));
        let shipping_total = pricing.shipping.as_ref().map_or(0, |s| s.amount.minor());
        tax_total += pricing
            .shipping
            .as_ref()
            .map_or(0, |s| sum(s.tax_lines.iter().map(|t| &t.amount)));
        let mut total = subtotal - discount_total + shipping_total;
        if !pricing.taxes_included {
            total += tax_total;
        }
        Totals {
            subtotal: money(subtotal),
            discount_total: money(discount_total),
            shipping_total: money(shipping_total),
            tax_total: money(tax_total),
            total: money(total),
        }
    }
}
