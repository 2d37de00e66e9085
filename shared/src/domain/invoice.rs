//! The invoice: the billing document an order gets once it is confirmed (paid),
//! numbered from a gapless sequence per calendar year.

use std::fmt;

use time::{Date, OffsetDateTime};

use super::billing::lines::net_of;
use super::billing::{TaxLine, TaxRate};
use super::money::{Currency, Money};
use super::order::{Order, OrderId, OrderStatus};

/// `INV-<year>-<6 digits>`: the `sequence`-th invoice issued in `year` (UTC); with
/// several series (`INVOICE_SERIES`), `INV-<year>-<series>-<6 digits>`, each series
/// gapless on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InvoiceNumber {
    pub year: i32,
    /// 1 to 99; `None` when the shop keeps one series.
    pub series: Option<u16>,
    pub sequence: u64,
}

/// A year's sequence ends here: six digits.
pub const MAX_SEQUENCE: u64 = 999_999;

impl InvoiceNumber {
    pub fn parse(text: &str) -> Option<InvoiceNumber> {
        let (year, series, sequence) = parse_number(text, "INV-")?;
        Some(InvoiceNumber {
            year,
            series,
            sequence,
        })
    }
}

/// The year, series and sequence of a document number `<prefix><year>[-<series>]-<6
/// digits>` (invoices, credit notes); `None` unless written exactly so.
pub fn parse_number(text: &str, prefix: &str) -> Option<(i32, Option<u16>, u64)> {
    let rest = text.strip_prefix(prefix)?;
    let parts: Vec<&str> = rest.split('-').collect();
    let digits = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit());
    let (year, series, sequence) = match parts[..] {
        [year, sequence] => (year, None, sequence),
        [year, series, sequence] if digits(series, 2) => {
            (year, Some(series.parse::<u16>().ok()?), sequence)
        }
        _ => return None,
    };
    if !digits(year, 4) || !digits(sequence, 6) || series == Some(0) {
        return None;
    }
    let sequence: u64 = sequence.parse().ok()?;
    (sequence >= 1).then_some((year.parse().ok()?, series, sequence))
}

impl fmt::Display for InvoiceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.series {
            None => write!(f, "INV-{:04}-{:06}", self.year, self.sequence),
            Some(series) => write!(f, "INV-{:04}-{series:02}-{:06}", self.year, self.sequence),
        }
    }
}

/// How many gapless series invoices are numbered in (`INVOICE_SERIES`, 1 to 99). One
/// series is one counter item, and one item takes about a thousand writes a second
/// at most; past a few hundred invoices a second a shop splits the numbering, each
/// series gapless on its own (`docs/data-design.md`, "Invoices").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvoiceSeries(u16);

impl InvoiceSeries {
    pub const ONE: InvoiceSeries = InvoiceSeries(1);
    pub const MAX: u16 = 99;

    pub fn new(count: u16) -> Option<InvoiceSeries> {
        (1..=Self::MAX)
            .contains(&count)
            .then_some(InvoiceSeries(count))
    }

    /// The series an order's invoice is numbered in (from its id alone, FNV-1a, so a
    /// redelivered confirmation asks the same counter); `None` with one series.
    pub fn of(self, order_id: &OrderId) -> Option<u16> {
        if self.0 == 1 {
            return None;
        }
        let hash = order_id
            .as_str()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            });
        Some((hash % u64::from(self.0)) as u16 + 1)
    }
}

impl Default for InvoiceSeries {
    fn default() -> Self {
        InvoiceSeries::ONE
    }
}

/// Who issues the invoice (settings: `INVOICE_SELLER`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seller {
    pub name: String,
    /// Postal address, one line each.
    pub address: Vec<String>,
    pub tax_id: Option<String>,
    pub email: Option<String>,
}

/// Who is billed: the order's customer, at its shipping address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buyer {
    pub user_id: String,
    pub name: String,
    pub address: Vec<String>,
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceLine {
    pub product_id: String,
    pub description: String,
    pub quantity: u32,
    pub unit_price: Money,
    /// `quantity × unit_price`, as priced (taxes in it when they are included).
    pub amount: Money,
    /// The line's share of the order's discounts.
    pub discount: Money,
    /// What the line's taxes are charged on: `amount − discount`, less the taxes
    /// themselves when prices include them.
    pub net: Money,
    pub tax_lines: Vec<TaxLine>,
    /// Σ of `tax_lines`.
    pub tax: Money,
}

/// The shipping charge as a line of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceShipping {
    pub description: String,
    /// As charged (taxes in it when they are included).
    pub amount: Money,
    pub net: Money,
    pub tax_lines: Vec<TaxLine>,
    pub tax: Money,
}

/// One tax at one rate over the whole invoice: what it was charged on and how much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxSummary {
    pub name: String,
    pub rate: TaxRate,
    pub net: Money,
    pub tax: Money,
}

/// Everything an invoice says but its number: what the store numbers and keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceDraft {
    pub order_id: OrderId,
    /// When the order was confirmed; its year is the sequence the number comes from.
    pub issued_at: OffsetDateTime,
    /// The series it is numbered in, when the shop keeps several ([`InvoiceSeries`]).
    pub series: Option<u16>,
    /// When the goods were supplied, as far as the invoice knows: it is issued at
    /// payment and never changes afterwards, so the date of the payment.
    pub supply_date: Date,
    pub seller: Seller,
    pub buyer: Buyer,
    pub lines: Vec<InvoiceLine>,
    pub shipping: Option<InvoiceShipping>,
    pub tax_summary: Vec<TaxSummary>,
    pub taxes_included: bool,
    pub subtotal: Money,
    pub discount_total: Money,
    pub shipping_total: Money,
    pub tax_total: Money,
    pub total: Money,
    pub payment_method: String,
    /// The payment provider's reference (a PaymentIntent id), once payments give one.
    pub payment_reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    pub number: InvoiceNumber,
    pub draft: InvoiceDraft,
}

impl InvoiceDraft {
    /// The invoice of a confirmed order, dated at its confirmation. `None` for an
    /// order never confirmed (its history has no confirmation), which gets none.
    /// Amounts, discounts and taxes are the order's, as its cart priced them.
    pub fn for_order(order: &Order, seller: &Seller) -> Option<InvoiceDraft> {
        let confirmed = order
            .history
            .iter()
            .find(|entry| entry.status == OrderStatus::Confirmed)?;
        let currency = order.total.currency();
        let included = order.pricing.taxes_included;
        let lines: Vec<InvoiceLine> = order
            .items
            .iter()
            .map(|item| {
                let amount = item.value();
                let tax = tax_of(&item.tax_lines, currency);
                InvoiceLine {
                    product_id: item.product_id.clone(),
                    description: item.name.clone(),
                    quantity: item.quantity,
                    unit_price: item.price,
                    amount,
                    discount: item.discount,
                    net: net_of(
                        Money::from_minor(amount.minor() - item.discount.minor(), currency),
                        &item.tax_lines,
                        included,
                    ),
                    tax_lines: item.tax_lines.clone(),
                    tax,
                }
            })
            .collect();
        let shipping = order.pricing.shipping.as_ref().map(|s| {
            let tax = tax_of(&s.tax_lines, currency);
            InvoiceShipping {
                description: s.name.clone(),
                amount: s.amount,
                net: net_of(s.amount, &s.tax_lines, included),
                tax_lines: s.tax_lines.clone(),
                tax,
            }
        });
        let tax_summary = summarise(&lines, shipping.as_ref(), currency);
        let totals = order.totals();
        let a = &order.shipping_address;
        let mut address = vec![a.address.clone()];
        address.push(match &a.state {
            Some(state) => format!("{}, {} {}", a.city, state, a.zip),
            None => format!("{} {}", a.zip, a.city),
        });
        address.push(a.country.clone());
        Some(InvoiceDraft {
            order_id: order.id.clone(),
            issued_at: confirmed.at,
            series: None,
            supply_date: confirmed.at.date(),
            seller: seller.clone(),
            buyer: Buyer {
                user_id: order.user_id.clone(),
                name: a.name.clone(),
                address,
                email: order.contact.email.clone(),
            },
            lines,
            shipping,
            tax_summary,
            taxes_included: included,
            subtotal: totals.subtotal,
            discount_total: totals.discount_total,
            shipping_total: totals.shipping_total,
            tax_total: totals.tax_total,
            total: order.total,
            payment_method: order.payment_method.as_str().to_string(),
            // The Stripe PaymentIntent that paid it; none for orders paid otherwise.
            payment_reference: order.payment.as_ref().map(|p| p.intent_id.clone()),
        })
    }

    /// What the invoice's lines and shipping are worth together before tax: with the
    /// tax total, the total.
    pub fn net_total(&self) -> Money {
        let lines: i64 = self.lines.iter().map(|l| l.net.minor()).sum();
        let shipping = self.shipping.as_ref().map_or(0, |s| s.net.minor());
        Money::from_minor(lines + shipping, self.total.currency())
    }

    /// The calendar year (UTC) whose sequence numbers this invoice.
    pub fn year(&self) -> i32 {
        self.issued_at.year()
    }

    pub fn numbered(self, sequence: u64) -> Invoice {
        Invoice {
            number: InvoiceNumber {
                year: self.year(),
                series: self.series,
                sequence,
            },
            draft: self,
        }
    }
}

fn tax_of(taxes: &[TaxLine], currency: Currency) -> Money {
    Money::from_minor(taxes.iter().map(|t| t.amount.minor()).sum(), currency)
}

/// One row per tax name and rate, in the order they first appear: the net it was
/// charged on (a line under two taxes counts towards both) and the tax.
pub fn summarise(
    lines: &[InvoiceLine],
    shipping: Option<&InvoiceShipping>,
    currency: Currency,
) -> Vec<TaxSummary> {
    let taxed = lines
        .iter()
        .map(|l| (l.net, l.tax_lines.as_slice()))
        .chain(shipping.map(|s| (s.net, s.tax_lines.as_slice())));
    tax_summary(taxed, currency)
}

/// The tax summary of any document's taxed amounts (each a net and the taxes charged
/// on it): invoices and credit notes alike.
pub fn tax_summary<'a>(
    taxed: impl IntoIterator<Item = (Money, &'a [TaxLine])>,
    currency: Currency,
) -> Vec<TaxSummary> {
    let mut summary: Vec<TaxSummary> = Vec::new();
    for (net, taxes) in taxed {
        for tax in taxes {
            let row = match summary
                .iter_mut()
                .position(|r| r.name == tax.name && r.rate == tax.rate)
            {
                Some(at) => &mut summary[at],
                None => {
                    summary.push(TaxSummary {
                        name: tax.name.clone(),
                        rate: tax.rate,
                        net: Money::zero(currency),
                        tax: Money::zero(currency),
                    });
                    summary.last_mut().expect("just pushed")
                }
            };
            row.net = Money::from_minor(row.net.minor() + net.minor(), currency);
            row.tax = Money::from_minor(row.tax.minor() + tax.amount.minor(), currency);
        }
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_have_six_digits_per_year_and_parse_back() {
        let number = InvoiceNumber {
            year: 2026,
            series: None,
            sequence: 1,
        };
        assert_eq!(number.to_string(), "INV-2026-000001");
        assert_eq!(InvoiceNumber::parse("INV-2026-000001"), Some(number));
        let in_series = InvoiceNumber {
            series: Some(3),
            sequence: 123,
            ..number
        };
        assert_eq!(in_series.to_string(), "INV-2026-03-000123");
        assert_eq!(InvoiceNumber::parse("INV-2026-03-000123"), Some(in_series));
        for bad in [
            "INV-2026-0000001",
            "INV-26-000001",
            "INV-2026-000000",
            "inv-2026-000001",
            "INV-2026-00000a",
            "INV-2026-00-000001",
            "INV-2026-3-000001",
            "INV-2026-03-000001-1",
        ] {
            assert_eq!(InvoiceNumber::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn orders_spread_over_every_series_and_keep_theirs() {
        let four = InvoiceSeries::new(4).unwrap();
        let mut seen = [0u32; 4];
        for n in 0..400 {
            let id = OrderId::for_cart(&format!("cart-{n}"));
            let series = four.of(&id).unwrap();
            assert_eq!(four.of(&id), Some(series));
            seen[usize::from(series) - 1] += 1;
        }
        assert!(seen.iter().all(|&n| (60..=140).contains(&n)), "{seen:?}");
        assert_eq!(InvoiceSeries::ONE.of(&OrderId::for_cart("x")), None);
        assert_eq!(InvoiceSeries::new(0), None);
        assert_eq!(InvoiceSeries::new(100), None);
    }
}
