//! The credit note: the document that corrects an invoice when money goes back. Every
//! refund (an admin's, a cancellation's, a return's) gets one, numbered from its own
//! gapless sequence per calendar year (`CN-2026-000001`), listing what the refund gave
//! back per line, shipping and tax rate (its allocation), so that an accountant can
//! take it off the invoice's tax summary rate by rate.

use std::fmt;

use time::OffsetDateTime;

use super::lines::TaxLine;
use super::refund::{LinePart, ShippingPart};
use crate::domain::invoice::{
    Buyer, Invoice, InvoiceNumber, Seller, TaxSummary, parse_number, tax_summary,
};
use crate::domain::money::Money;
use crate::domain::order::OrderId;
use crate::domain::payment::Refund;

/// `CN-<year>-<6 digits>`, or `CN-<year>-<series>-<6 digits>` when invoices are
/// numbered in several series (`INVOICE_SERIES`): credit notes follow the same split,
/// each series gapless on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CreditNoteNumber {
    pub year: i32,
    pub series: Option<u16>,
    pub sequence: u64,
}

impl CreditNoteNumber {
    pub fn parse(text: &str) -> Option<CreditNoteNumber> {
        let (year, series, sequence) = parse_number(text, "CN-")?;
        Some(CreditNoteNumber {
            year,
            series,
            sequence,
        })
    }
}

impl fmt::Display for CreditNoteNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.series {
            None => write!(f, "CN-{:04}-{:06}", self.year, self.sequence),
            Some(series) => write!(f, "CN-{:04}-{series:02}-{:06}", self.year, self.sequence),
        }
    }
}

/// What the refund gave back of one line of the invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditLine {
    pub product_id: String,
    pub description: String,
    /// Without tax.
    pub net: Money,
    /// The taxes given back, at the invoice's rates.
    pub tax_lines: Vec<TaxLine>,
    /// Σ of `tax_lines`.
    pub tax: Money,
    /// `net + tax`: what the customer got back for the line.
    pub total: Money,
}

/// What the refund gave back of the shipping charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditShipping {
    pub description: String,
    pub net: Money,
    pub tax_lines: Vec<TaxLine>,
    pub tax: Money,
    pub total: Money,
}

/// Everything a credit note says but its number: what the store numbers and keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditNoteDraft {
    pub order_id: OrderId,
    /// The refund it documents (the provider's id, `re_…`): one credit note each.
    pub refund_id: String,
    /// When the refund was made; its year is the sequence the number comes from.
    pub issued_at: OffsetDateTime,
    /// The series it is numbered in, when the shop keeps several.
    pub series: Option<u16>,
    /// The invoice it corrects.
    pub invoice_number: InvoiceNumber,
    /// As on the invoice.
    pub seller: Seller,
    pub buyer: Buyer,
    /// The lines the refund gave something back of, in the invoice's order.
    pub lines: Vec<CreditLine>,
    pub shipping: Option<CreditShipping>,
    pub tax_summary: Vec<TaxSummary>,
    pub net_total: Money,
    pub tax_total: Money,
    /// The amount refunded, to the cent.
    pub total: Money,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditNote {
    pub number: CreditNoteNumber,
    pub draft: CreditNoteDraft,
}

impl CreditNoteDraft {
    /// The credit note of `refund` against `invoice`, the order's. `None` for a
    /// refund with no allocation (money received beyond the total, or a refund made
    /// before refunds were allocated), which no invoice line accounts for.
    pub fn for_refund(refund: &Refund, invoice: &Invoice) -> Option<CreditNoteDraft> {
        let parts = refund.parts.as_ref()?;
        let currency = parts.currency;
        let sum = |m: &[Money]| Money::from_minor(m.iter().map(Money::minor).sum(), currency);
        let tax_of = |taxes: &[TaxLine]| sum(&taxes.iter().map(|t| t.amount).collect::<Vec<_>>());
        let lines: Vec<CreditLine> = parts
            .refunded_lines()
            .map(
                |LinePart {
                     product_id,
                     description,
                     net,
                     tax_lines,
                 }| {
                    let tax = tax_of(tax_lines);
                    CreditLine {
                        product_id: product_id.clone(),
                        description: description.clone(),
                        net: *net,
                        tax_lines: tax_lines.clone(),
                        tax,
                        total: sum(&[*net, tax]),
                    }
                },
            )
            .collect();
        let shipping = parts
            .shipping
            .as_ref()
            .filter(|s| s.net.minor() != 0 || s.tax_lines.iter().any(|t| t.amount.minor() != 0))
            .map(
                |ShippingPart {
                     description,
                     net,
                     tax_lines,
                 }| {
                    let tax = tax_of(tax_lines);
                    CreditShipping {
                        description: description.clone(),
                        net: *net,
                        tax_lines: tax_lines.clone(),
                        tax,
                        total: sum(&[*net, tax]),
                    }
                },
            );
        let taxed = lines
            .iter()
            .map(|l| (l.net, l.tax_lines.as_slice()))
            .chain(shipping.iter().map(|s| (s.net, s.tax_lines.as_slice())));
        let net_total = sum(&lines
            .iter()
            .map(|l| l.net)
            .chain(shipping.iter().map(|s| s.net))
            .collect::<Vec<_>>());
        let tax_total = sum(&lines
            .iter()
            .map(|l| l.tax)
            .chain(shipping.iter().map(|s| s.tax))
            .collect::<Vec<_>>());
        Some(CreditNoteDraft {
            order_id: invoice.draft.order_id.clone(),
            refund_id: refund.refund_id.clone(),
            issued_at: refund.at,
            series: invoice.number.series,
            invoice_number: invoice.number,
            seller: invoice.draft.seller.clone(),
            buyer: invoice.draft.buyer.clone(),
            tax_summary: tax_summary(taxed, currency),
            lines,
            shipping,
            net_total,
            tax_total,
            total: parts.total(),
        })
    }

    /// The calendar year (UTC) whose sequence numbers this credit note.
    pub fn year(&self) -> i32 {
        self.issued_at.year()
    }

    pub fn numbered(self, sequence: u64) -> CreditNote {
        CreditNote {
            number: CreditNoteNumber {
                year: self.year(),
                series: self.series,
                sequence,
            },
            draft: self,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_have_their_own_prefix_and_parse_back() {
        let number = CreditNoteNumber {
            year: 2026,
            series: None,
            sequence: 1,
        };
        assert_eq!(number.to_string(), "CN-2026-000001");
        assert_eq!(CreditNoteNumber::parse("CN-2026-000001"), Some(number));
        let in_series = CreditNoteNumber {
            series: Some(3),
            ..number
        };
        assert_eq!(in_series.to_string(), "CN-2026-03-000001");
        assert_eq!(
            CreditNoteNumber::parse("CN-2026-03-000001"),
            Some(in_series)
        );
        for bad in [
            "INV-2026-000001",
            "CN-2026-000000",
            "CN-2026-1",
            "cn-2026-000001",
        ] {
            assert_eq!(CreditNoteNumber::parse(bad), None, "{bad}");
        }
    }
}
