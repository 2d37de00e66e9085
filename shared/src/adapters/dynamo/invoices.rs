//! Invoices and their numbers (`docs/data-design.md`, "Invoices"): one counter item
//! per calendar year, and one invoice item per order, written together in one
//! transaction so that a number is taken exactly when an invoice gets it.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::numbering::{Numbered, counter_key, issue_next};
use super::order_item::{Item, PK, SK, n, s};
use crate::adapters::aws::{read_item, read_item_with};
use crate::domain::billing::{TaxLine, TaxRate};
use crate::domain::invoice::{
    Buyer, Invoice, InvoiceDraft, InvoiceLine, InvoiceNumber, InvoiceShipping, Seller, TaxSummary,
};
use crate::domain::time::timestamp;
use crate::domain::{Currency, Money, OrderId};
use crate::ports::{InvoiceStore, StoreError};

pub struct DynamoInvoiceStore {
    client: Client,
    table: String,
    retention_years: u16,
}

/// How long an invoice is kept by default (`INVOICE_RETENTION_YEARS`): ten years,
/// the longest of the common bookkeeping rules (Germany's § 147 AO, France's
/// Code de commerce L123-22); the table's TTL deletes it after that.
pub const DEFAULT_RETENTION_YEARS: u16 = 10;

impl DynamoInvoiceStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoInvoiceStore {
            client,
            table: table.into(),
            retention_years: DEFAULT_RETENTION_YEARS,
        }
    }

    /// Invoices kept `years` after their issue (`INVOICE_RETENTION_YEARS`).
    pub fn with_retention_years(mut self, years: u16) -> Self {
        self.retention_years = years;
        self
    }
}

/// When the table's TTL may delete an invoice issued at `issued_at`: the same day
/// `years` later (the 28th of February for a 29th), as Unix seconds.
pub fn retention_end(issued_at: OffsetDateTime, years: u16) -> i64 {
    let year = issued_at.year() + i32::from(years);
    issued_at
        .replace_year(year)
        .or_else(|_| (issued_at - time::Duration::days(1)).replace_year(year))
        .map(|t| t.unix_timestamp())
        .unwrap_or(i64::MAX)
}

fn invoice_key(order_id: &OrderId) -> Item {
    Item::from([
        (PK.into(), s(format!("INVOICE#{order_id}"))),
        (SK.into(), s("INVOICE")),
    ])
}

/// The invoices' counters: `INVOICE_COUNTER#2026` with one series (as it always
/// was), `INVOICE_COUNTER#2026#03` for series 3 of several.
const INVOICE_COUNTER: &str = "INVOICE_COUNTER";

fn corrupt(why: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("invoice: {why}"))
}

#[async_trait]
impl InvoiceStore for DynamoInvoiceStore {
    async fn get(&self, order_id: &OrderId) -> Result<Option<Invoice>, StoreError> {
        read_item(&self.client, &self.table, invoice_key(order_id))
            .await?
            .map(|item| invoice_from_item(&item))
            .transpose()
    }

    /// The order's invoice if it has one (a redelivery finds it), else the draft
    /// numbered and stored with its year's counter in one transaction
    /// ([`issue_next`]): only if the order has none, so a concurrent twin's is the
    /// answer.
    async fn issue(&self, draft: &InvoiceDraft) -> Result<Invoice, StoreError> {
        // Eventually consistent: an invoice stored a moment ago and not seen here is
        // found by the transaction's condition below instead.
        let found = read_item_with(
            &self.client,
            &self.table,
            invoice_key(&draft.order_id),
            false,
        )
        .await?
        .map(|item| invoice_from_item(&item))
        .transpose()?;
        if let Some(existing) = found {
            return Ok(existing);
        }
        let mut issued = None;
        let counter = counter_key(INVOICE_COUNTER, draft.year(), draft.series);
        let outcome = issue_next(&self.client, &self.table, counter, |sequence| {
            let invoice = draft.clone().numbered(sequence);
            let item = invoice_to_item(&invoice, self.retention_years);
            issued = Some(invoice);
            item
        })
        .await?;
        match (outcome, issued) {
            (Numbered::Issued(_), Some(invoice)) => Ok(invoice),
            (Numbered::Existing(item), _) => invoice_from_item(&item),
            (Numbered::Issued(_), None) => Err(corrupt("issued without a document")),
        }
    }
}

/// The invoice as stored: its keys and number as attributes (to find and check it),
/// the document as JSON text with amounts in minor units (as issued, never
/// recomputed: an invoice does not change). Members added later have defaults, so an
/// invoice issued before them reads as it was issued (no discount, no tax).
#[derive(Serialize, Deserialize)]
struct Document {
    order_id: String,
    issued_at: String,
    #[serde(default)]
    supply_date: Option<String>,
    currency: String,
    seller: SellerDoc,
    buyer: BuyerDoc,
    lines: Vec<LineDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shipping: Option<ShippingDoc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tax_summary: Vec<SummaryDoc>,
    #[serde(default)]
    taxes_included: bool,
    subtotal: i64,
    #[serde(default)]
    discount_total: i64,
    #[serde(default)]
    shipping_total: i64,
    #[serde(default)]
    tax_total: i64,
    total: i64,
    payment_method: String,
    payment_reference: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct SellerDoc {
    pub(super) name: String,
    pub(super) address: Vec<String>,
    pub(super) tax_id: Option<String>,
    pub(super) email: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct BuyerDoc {
    pub(super) user_id: String,
    pub(super) name: String,
    pub(super) address: Vec<String>,
    pub(super) email: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct LineDoc {
    product_id: String,
    description: String,
    quantity: u32,
    unit_price: i64,
    amount: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    discount: i64,
    /// Absent on invoices issued before taxes: the amount.
    #[serde(default)]
    net: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tax_lines: Vec<TaxDoc>,
}

#[derive(Serialize, Deserialize)]
struct ShippingDoc {
    description: String,
    amount: i64,
    net: i64,
    #[serde(default)]
    tax_lines: Vec<TaxDoc>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct TaxDoc {
    pub(super) name: String,
    /// Millionths (0.19 is 190000).
    pub(super) rate: u32,
    pub(super) amount: i64,
}

#[derive(Serialize, Deserialize)]
pub(super) struct SummaryDoc {
    pub(super) name: String,
    pub(super) rate: u32,
    pub(super) net: i64,
    pub(super) tax: i64,
}

impl From<&Seller> for SellerDoc {
    fn from(seller: &Seller) -> Self {
        SellerDoc {
            name: seller.name.clone(),
            address: seller.address.clone(),
            tax_id: seller.tax_id.clone(),
            email: seller.email.clone(),
        }
    }
}

impl From<SellerDoc> for Seller {
    fn from(d: SellerDoc) -> Self {
        Seller {
            name: d.name,
            address: d.address,
            tax_id: d.tax_id,
            email: d.email,
        }
    }
}

impl From<&Buyer> for BuyerDoc {
    fn from(buyer: &Buyer) -> Self {
        BuyerDoc {
            user_id: buyer.user_id.clone(),
            name: buyer.name.clone(),
            address: buyer.address.clone(),
            email: buyer.email.clone(),
        }
    }
}

impl From<BuyerDoc> for Buyer {
    fn from(d: BuyerDoc) -> Self {
        Buyer {
            user_id: d.user_id,
            name: d.name,
            address: d.address,
            email: d.email,
        }
    }
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

pub(super) fn taxes_doc(taxes: &[TaxLine]) -> Vec<TaxDoc> {
    taxes
        .iter()
        .map(|t| TaxDoc {
            name: t.name.clone(),
            rate: t.rate.millionths(),
            amount: t.amount.minor(),
        })
        .collect()
}

pub(super) fn rate_from(millionths: u32) -> Result<TaxRate, StoreError> {
    TaxRate::from_millionths(millionths).ok_or_else(|| corrupt("a tax rate above 1"))
}

fn invoice_to_item(invoice: &Invoice, retention_years: u16) -> Result<Item, StoreError> {
    let d = &invoice.draft;
    let document = Document {
        order_id: d.order_id.to_string(),
        issued_at: timestamp(d.issued_at),
        supply_date: Some(d.supply_date.to_string()),
        currency: d.total.currency().code().to_string(),
        seller: (&d.seller).into(),
        buyer: (&d.buyer).into(),
        lines: d
            .lines
            .iter()
            .map(|l| LineDoc {
                product_id: l.product_id.clone(),
                description: l.description.clone(),
                quantity: l.quantity,
                unit_price: l.unit_price.minor(),
                amount: l.amount.minor(),
                discount: l.discount.minor(),
                net: Some(l.net.minor()),
                tax_lines: taxes_doc(&l.tax_lines),
            })
            .collect(),
        shipping: d.shipping.as_ref().map(|s| ShippingDoc {
            description: s.description.clone(),
            amount: s.amount.minor(),
            net: s.net.minor(),
            tax_lines: taxes_doc(&s.tax_lines),
        }),
        tax_summary: d
            .tax_summary
            .iter()
            .map(|t| SummaryDoc {
                name: t.name.clone(),
                rate: t.rate.millionths(),
                net: t.net.minor(),
                tax: t.tax.minor(),
            })
            .collect(),
        taxes_included: d.taxes_included,
        subtotal: d.subtotal.minor(),
        discount_total: d.discount_total.minor(),
        shipping_total: d.shipping_total.minor(),
        tax_total: d.tax_total.minor(),
        total: d.total.minor(),
        payment_method: d.payment_method.clone(),
        payment_reference: d.payment_reference.clone(),
    };
    let json = serde_json::to_string(&document).map_err(|e| StoreError::Other(e.to_string()))?;
    let mut item = invoice_key(&d.order_id);
    item.insert("invoice_number".into(), s(invoice.number.to_string()));
    item.insert("year".into(), n(invoice.number.year));
    item.insert("sequence".into(), n(invoice.number.sequence));
    if let Some(series) = invoice.number.series {
        item.insert("series".into(), n(series));
    }
    item.insert("issued_at".into(), s(timestamp(d.issued_at)));
    item.insert("document".into(), s(json));
    // The buyer's name and address are kept for the legal retention period only
    // (docs/operations.md, "Personal data"): then DynamoDB's TTL deletes the invoice.
    item.insert(
        "expires_at".into(),
        n(retention_end(d.issued_at, retention_years)),
    );
    Ok(item)
}

fn invoice_from_item(item: &Item) -> Result<Invoice, StoreError> {
    let text = |name: &str| {
        item.get(name)
            .and_then(|v: &AttributeValue| v.as_s().ok())
            .ok_or_else(|| corrupt(format!("no {name}")))
    };
    let number = InvoiceNumber::parse(text("invoice_number")?)
        .ok_or_else(|| corrupt("unreadable invoice_number"))?;
    let d: Document = serde_json::from_str(text("document")?).map_err(corrupt)?;
    let currency = Currency::from_code(&d.currency).ok_or_else(|| corrupt("unknown currency"))?;
    let money = |minor| Money::from_minor(minor, currency);
    let taxes = |taxes: Vec<TaxDoc>| -> Result<Vec<TaxLine>, StoreError> {
        taxes
            .into_iter()
            .map(|t| {
                Ok(TaxLine {
                    name: t.name,
                    rate: rate_from(t.rate)?,
                    amount: money(t.amount),
                })
            })
            .collect()
    };
    let sum = |taxes: &[TaxLine]| money(taxes.iter().map(|t| t.amount.minor()).sum());
    let issued_at = OffsetDateTime::parse(&d.issued_at, &Rfc3339).map_err(corrupt)?;
    let supply_date = match &d.supply_date {
        Some(text) => time::Date::parse(
            text,
            &time::macros::format_description!("[year]-[month]-[day]"),
        )
        .map_err(corrupt)?,
        None => issued_at.date(),
    };
    let lines = d
        .lines
        .into_iter()
        .map(|l| {
            let tax_lines = taxes(l.tax_lines)?;
            Ok(InvoiceLine {
                product_id: l.product_id,
                description: l.description,
                quantity: l.quantity,
                unit_price: money(l.unit_price),
                amount: money(l.amount),
                discount: money(l.discount),
                net: money(l.net.unwrap_or(l.amount)),
                tax: sum(&tax_lines),
                tax_lines,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    let shipping = d
        .shipping
        .map(|s| {
            let tax_lines = taxes(s.tax_lines)?;
            Ok::<_, StoreError>(InvoiceShipping {
                description: s.description,
                amount: money(s.amount),
                net: money(s.net),
                tax: sum(&tax_lines),
                tax_lines,
            })
        })
        .transpose()?;
    let tax_summary = d
        .tax_summary
        .into_iter()
        .map(|t| {
            Ok(TaxSummary {
                name: t.name,
                rate: rate_from(t.rate)?,
                net: money(t.net),
                tax: money(t.tax),
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(Invoice {
        number,
        draft: InvoiceDraft {
            order_id: OrderId::parse(&d.order_id).ok_or_else(|| corrupt("bad order_id"))?,
            issued_at,
            series: number.series,
            supply_date,
            seller: d.seller.into(),
            buyer: d.buyer.into(),
            lines,
            shipping,
            tax_summary,
            taxes_included: d.taxes_included,
            subtotal: money(d.subtotal),
            discount_total: money(d.discount_total),
            shipping_total: money(d.shipping_total),
            tax_total: money(d.tax_total),
            total: money(d.total),
            payment_method: d.payment_method,
            payment_reference: d.payment_reference,
        },
    })
}
