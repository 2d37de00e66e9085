//! The invoice: the billing document an order gets once it is confirmed (paid),
//! numbered from a gapless sequence per calendar year.

use std::fmt;

use time::OffsetDateTime;

use super::money::Money;
use super::order::{Order, OrderId, OrderStatus};

/// `INV-<year>-<6 digits>`: the `sequence`-th invoice issued in `year` (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InvoiceNumber {
    pub year: i32,
    pub sequence: u64,
}

/// A year's sequence ends here: six digits.
pub const MAX_SEQUENCE: u64 = 999_999;

impl InvoiceNumber {
    pub fn parse(text: &str) -> Option<InvoiceNumber> {
        let rest = text.strip_prefix("INV-")?;
        let (year, sequence) = rest.split_once('-')?;
        let digits = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(year, 4) || !digits(sequence, 6) {
            return None;
        }
        let number = InvoiceNumber {
            year: year.parse().ok()?,
            sequence: sequence.parse().ok()?,
        };
        (number.sequence >= 1).then_some(number)
    }
}

impl fmt::Display for InvoiceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "INV-{:04}-{:06}", self.year, self.sequence)
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
    /// `quantity × unit_price`.
    pub amount: Money,
}

/// Everything an invoice says but its number: what the store numbers and keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceDraft {
    pub order_id: OrderId,
    /// When the order was confirmed; its year is the sequence the number comes from.
    pub issued_at: OffsetDateTime,
    pub seller: Seller,
    pub buyer: Buyer,
    pub lines: Vec<InvoiceLine>,
    pub subtotal: Money,
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
    /// Prices are the order's, taxes included as the cart gave them: no tax lines.
    pub fn for_order(order: &Order, seller: &Seller) -> Option<InvoiceDraft> {
        let confirmed = order
            .history
            .iter()
            .find(|entry| entry.status == OrderStatus::Confirmed)?;
        let lines = order
            .items
            .iter()
            .map(|item| InvoiceLine {
                product_id: item.product_id.clone(),
                description: item.name.clone(),
                quantity: item.quantity,
                unit_price: item.price,
                // Cannot overflow: checkout bounded every line and the total.
                amount: item
                    .price
                    .checked_times(item.quantity)
                    .unwrap_or(Money::zero(item.price.currency())),
            })
            .collect();
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
            seller: seller.clone(),
            buyer: Buyer {
                user_id: order.user_id.clone(),
                name: a.name.clone(),
                address,
                email: order.contact.email.clone(),
            },
            lines,
            subtotal: order.total,
            total: order.total,
            payment_method: order.payment_method.as_str().to_string(),
            // The Stripe PaymentIntent that paid it; none for orders paid otherwise.
            payment_reference: order.payment.as_ref().map(|p| p.intent_id.clone()),
        })
    }

    /// The calendar year (UTC) whose sequence numbers this invoice.
    pub fn year(&self) -> i32 {
        self.issued_at.year()
    }

    pub fn numbered(self, sequence: u64) -> Invoice {
        Invoice {
            number: InvoiceNumber {
                year: self.year(),
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
    fn numbers_have_six_digits_per_year_and_parse_back() {
        let number = InvoiceNumber {
            year: 2026,
            sequence: 1,
        };
        assert_eq!(number.to_string(), "INV-2026-000001");
        assert_eq!(InvoiceNumber::parse("INV-2026-000001"), Some(number));
        for bad in [
            "INV-2026-0000001",
            "INV-26-000001",
            "INV-2026-000000",
            "inv-2026-000001",
            "INV-2026-00000a",
        ] {
            assert_eq!(InvoiceNumber::parse(bad), None, "{bad}");
        }
    }
}
