//! Credit notes and their numbers (`docs/data-design.md`, "Credit notes"): a counter
//! item per year (and series), and one credit-note item per refund under its order's
//! partition, written together in one transaction ([`issue_next`]) so that a number
//! is taken exactly when a credit note gets it, and a refund never gets two.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::invoices::{
    BuyerDoc, DEFAULT_RETENTION_YEARS, SellerDoc, SummaryDoc, TaxDoc, rate_from, retention_end,
    taxes_doc,
};
use super::numbering::{Numbered, counter_key, issue_next};
use super::order_item::{Item, PK, SK, n, s};
use crate::adapters::aws::store_error;
use crate::domain::billing::credit_note::{CreditLine, CreditShipping};
use crate::domain::billing::{CreditNote, CreditNoteDraft, CreditNoteNumber, TaxLine};
use crate::domain::invoice::{InvoiceNumber, TaxSummary};
use crate::domain::time::timestamp;
use crate::domain::{Currency, Money, OrderId};
use crate::ports::{CreditNoteStore, StoreError};

/// `CREDIT_NOTE_COUNTER#2026`, or `CREDIT_NOTE_COUNTER#2026#03` with several series.
const CREDIT_NOTE_COUNTER: &str = "CREDIT_NOTE_COUNTER";

pub struct DynamoCreditNoteStore {
    client: Client,
    table: String,
    retention_years: u16,
}

impl DynamoCreditNoteStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoCreditNoteStore {
            client,
            table: table.into(),
            retention_years: DEFAULT_RETENTION_YEARS,
        }
    }

    /// Credit notes kept `years` after their issue (`INVOICE_RETENTION_YEARS`, as the
    /// invoices they correct): the buyer's name and address on them go with them.
    pub fn with_retention_years(mut self, years: u16) -> Self {
        self.retention_years = years;
        self
    }
}

/// An order's credit notes share a partition (one Query lists them); each is keyed by
/// its refund, which is what makes a second one for the same refund impossible.
fn partition(order_id: &OrderId) -> String {
    format!("CREDIT_NOTE#{order_id}")
}

fn credit_note_key(order_id: &OrderId, refund_id: &str) -> Item {
    Item::from([
        (PK.into(), s(partition(order_id))),
        (SK.into(), s(format!("REFUND#{refund_id}"))),
    ])
}

fn corrupt(why: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("credit note: {why}"))
}

#[async_trait]
impl CreditNoteStore for DynamoCreditNoteStore {
    async fn list(&self, order_id: &OrderId) -> Result<Vec<CreditNote>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(partition(order_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        let mut notes = output
            .items()
            .iter()
            .map(credit_note_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        notes.sort_by_key(|note| (note.draft.issued_at, note.number));
        Ok(notes)
    }

    async fn issue(&self, draft: &CreditNoteDraft) -> Result<CreditNote, StoreError> {
        let counter = counter_key(CREDIT_NOTE_COUNTER, draft.year(), draft.series);
        let mut issued = None;
        let outcome = issue_next(&self.client, &self.table, counter, |sequence| {
            let note = draft.clone().numbered(sequence);
            let item = credit_note_to_item(&note, self.retention_years);
            issued = Some(note);
            item
        })
        .await?;
        match (outcome, issued) {
            (Numbered::Issued(_), Some(note)) => Ok(note),
            (Numbered::Existing(item), _) => credit_note_from_item(&item),
            (Numbered::Issued(_), None) => Err(corrupt("issued without a document")),
        }
    }
}

/// The credit note as stored: its keys and number as attributes, the document as
/// JSON text with amounts in minor units (as issued, never recomputed).
#[derive(Serialize, Deserialize)]
struct Document {
    order_id: String,
    refund_id: String,
    invoice_number: String,
    issued_at: String,
    currency: String,
    seller: SellerDoc,
    buyer: BuyerDoc,
    lines: Vec<LineDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shipping: Option<LineDoc>,
    tax_summary: Vec<SummaryDoc>,
    total: i64,
}

/// A line given back, or the shipping (whose `product_id` is empty).
#[derive(Serialize, Deserialize)]
struct LineDoc {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    product_id: String,
    description: String,
    net: i64,
    tax_lines: Vec<TaxDoc>,
}

fn credit_note_to_item(note: &CreditNote, retention_years: u16) -> Result<Item, StoreError> {
    let d = &note.draft;
    let line = |product_id: &str, description: &str, net: Money, taxes: &[TaxLine]| LineDoc {
        product_id: product_id.to_string(),
        description: description.to_string(),
        net: net.minor(),
        tax_lines: taxes_doc(taxes),
    };
    let document = Document {
        order_id: d.order_id.to_string(),
        refund_id: d.refund_id.clone(),
        invoice_number: d.invoice_number.to_string(),
        issued_at: timestamp(d.issued_at),
        currency: d.total.currency().code().to_string(),
        seller: (&d.seller).into(),
        buyer: (&d.buyer).into(),
        lines: d
            .lines
            .iter()
            .map(|l| line(&l.product_id, &l.description, l.net, &l.tax_lines))
            .collect(),
        shipping: d
            .shipping
            .as_ref()
            .map(|s| line("", &s.description, s.net, &s.tax_lines)),
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
        total: d.total.minor(),
    };
    let json = serde_json::to_string(&document).map_err(|e| StoreError::Other(e.to_string()))?;
    let mut item = credit_note_key(&d.order_id, &d.refund_id);
    item.insert("credit_note_number".into(), s(note.number.to_string()));
    item.insert("year".into(), n(note.number.year));
    item.insert("sequence".into(), n(note.number.sequence));
    if let Some(series) = note.number.series {
        item.insert("series".into(), n(series));
    }
    item.insert("issued_at".into(), s(timestamp(d.issued_at)));
    item.insert("document".into(), s(json));
    // The table's TTL attribute: DynamoDB deletes the credit note, and the buyer's
    // name and address on it, once bookkeeping law no longer asks for it.
    item.insert(
        "expires_at".into(),
        n(retention_end(d.issued_at, retention_years)),
    );
    Ok(item)
}

fn credit_note_from_item(item: &Item) -> Result<CreditNote, StoreError> {
    let text = |name: &str| {
        item.get(name)
            .and_then(|v: &AttributeValue| v.as_s().ok())
            .ok_or_else(|| corrupt(format!("no {name}")))
    };
    let number = CreditNoteNumber::parse(text("credit_note_number")?)
        .ok_or_else(|| corrupt("unreadable credit_note_number"))?;
    let d: Document = serde_json::from_str(text("document")?).map_err(corrupt)?;
    let currency = Currency::from_code(&d.currency).ok_or_else(|| corrupt("unknown currency"))?;
    let money = |minor| Money::from_minor(minor, currency);
    let sum = |amounts: &[Money]| money(amounts.iter().map(Money::minor).sum());
    // Each line's taxes, their sum and the line's total, as the draft computed them.
    let taxed = |line: LineDoc| -> Result<(LineDoc, Vec<TaxLine>, Money, Money), StoreError> {
        let taxes = line
            .tax_lines
            .iter()
            .map(|t| {
                Ok(TaxLine {
                    name: t.name.clone(),
                    rate: rate_from(t.rate)?,
                    amount: money(t.amount),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let tax = sum(&taxes.iter().map(|t| t.amount).collect::<Vec<_>>());
        let total = sum(&[money(line.net), tax]);
        Ok((line, taxes, tax, total))
    };
    let lines = d
        .lines
        .into_iter()
        .map(|l| {
            let (l, tax_lines, tax, total) = taxed(l)?;
            Ok(CreditLine {
                product_id: l.product_id,
                description: l.description,
                net: money(l.net),
                tax_lines,
                tax,
                total,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let shipping = d
        .shipping
        .map(|l| {
            let (l, tax_lines, tax, total) = taxed(l)?;
            Ok::<_, StoreError>(CreditShipping {
                description: l.description,
                net: money(l.net),
                tax_lines,
                tax,
                total,
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
        .collect::<Result<Vec<_>, StoreError>>()?;
    let nets: Vec<Money> = lines
        .iter()
        .map(|l| l.net)
        .chain(shipping.iter().map(|s| s.net))
        .collect();
    let taxes: Vec<Money> = lines
        .iter()
        .map(|l| l.tax)
        .chain(shipping.iter().map(|s| s.tax))
        .collect();
    Ok(CreditNote {
        number,
        draft: CreditNoteDraft {
            order_id: OrderId::parse(&d.order_id).ok_or_else(|| corrupt("bad order_id"))?,
            refund_id: d.refund_id,
            issued_at: OffsetDateTime::parse(&d.issued_at, &Rfc3339).map_err(corrupt)?,
            series: number.series,
            invoice_number: InvoiceNumber::parse(&d.invoice_number)
                .ok_or_else(|| corrupt("unreadable invoice_number"))?,
            seller: d.seller.into(),
            buyer: d.buyer.into(),
            lines,
            shipping,
            tax_summary,
            net_total: sum(&nets),
            tax_total: sum(&taxes),
            total: money(d.total),
        },
    })
}
