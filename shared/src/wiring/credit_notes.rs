//! What credit notes need: their store and counters on `TABLE_NAME` (issued by the
//! notifications consumer, read by `list-credit-notes` and `get-credit-note`) and the
//! PDF renderer (its font: `PDF_FONT_PATH`, [`Wiring::pdf_font`]). Numbered in the invoices' series (`INVOICE_SERIES`): a credit note
//! takes its invoice's.

use std::sync::Arc;

use super::{ConfigError, Wiring};
use crate::adapters::credit_note_pdf::PdfCreditNotes;
use crate::adapters::dynamo::DynamoCreditNoteStore;
use crate::inbound::http::CreditNoteApi;
use crate::ports::{CreditNoteRenderer, CreditNoteStore};
use crate::services::credit_notes::CreditNoteService;

impl Wiring {
    /// `GET /api/orders/{order_id}/credit-notes[/{number}]`.
    pub fn credit_note_api(&self) -> Result<CreditNoteApi, ConfigError> {
        Ok(CreditNoteApi {
            auth: self.authenticator()?,
            credit_notes: CreditNoteService::new(
                self.order_store()?,
                self.credit_note_store()?,
                self.credit_note_renderer()?,
            ),
        })
    }

    /// Credit notes on `TABLE_NAME`, kept `INVOICE_RETENTION_YEARS` like invoices.
    pub(super) fn credit_note_store(&self) -> Result<Arc<dyn CreditNoteStore>, ConfigError> {
        Ok(Arc::new(
            DynamoCreditNoteStore::new(self.dynamodb(), self.table()?)
                .with_retention_years(self.retention_years()?),
        ))
    }

    pub(super) fn credit_note_renderer(&self) -> Result<Arc<dyn CreditNoteRenderer>, ConfigError> {
        Ok(Arc::new(PdfCreditNotes {
            font: self.pdf_font()?,
        }))
    }
}
