//! What the privacy functions need at init (`request-erasure`, `get-erasure`,
//! `export-customer-data`, `erase-customer-data`): the orders, invoices, credit notes
//! and message log on `TABLE_NAME`, `CURSOR_SECRET` (by `CURSOR_SECRET_ARN`) for the
//! export's cursors (`export-customer-data` only), and
//!
//! - `ERASURE_QUEUE_URL`: the queue that carries an erasure's further pages to
//!   `erase-customer-data`; unset (a local stack without it), the request erases
//!   every page itself;
//! - `ERASURE_PAGE_SIZE`: orders per page (1 to 100, default 25);
//! - `INVOICE_RETENTION_YEARS`: how long invoices and credit notes (the buyer's name
//!   and address on them) are kept before the table's TTL deletes them (1 to 100,
//!   default 10).
//!
//! And the suppression list's (`sendgrid-events`, `delete-suppression`,
//! `suppress-bounces`, and the notifications consumer, which reads it):
//! `SENDGRID_WEBHOOK_PUBLIC_KEY`, the key SendGrid's signed event webhook shows
//! (base64); unset, that webhook answers 404.

use std::sync::Arc;

use super::{ConfigError, Wiring};
use crate::adapters::dynamo::DynamoInvoiceStore;
use crate::adapters::dynamo::invoices::DEFAULT_RETENTION_YEARS;
use crate::adapters::erasure_queue::SqsErasureQueue;
use crate::auth::Authenticator;
use crate::domain::suppression::SendGridKey;
use crate::inbound::http::{PrivacyApi, SuppressionApi};
use crate::services::privacy::{DEFAULT_ERASURE_PAGE, PrivacyService};
use crate::services::suppressions::SuppressionService;

impl Wiring {
    pub fn privacy_service(&self) -> Result<PrivacyService, ConfigError> {
        let store = self.order_store()?;
        let service = PrivacyService::new(
            store.clone(),
            store,
            Arc::new(self.invoice_store()?),
            self.credit_note_store()?,
        )
        .with_page_size(self.bounded("ERASURE_PAGE_SIZE", DEFAULT_ERASURE_PAGE, 100)?);
        let service = match self.cursor_secret()? {
            Some(secret) => service.with_cursor_secret(secret.as_bytes()),
            None => service,
        };
        Ok(match self.settings.get("ERASURE_QUEUE_URL") {
            Some(url) => service.with_queue(Arc::new(SqsErasureQueue::new(
                aws_sdk_sqs::Client::new(&self.sdk),
                url,
            ))),
            None => service,
        })
    }

    /// `/api/customers/{user_id}/erasure` (and `/export`, when the function was given
    /// `CURSOR_SECRET`).
    pub fn privacy_api(&self) -> Result<PrivacyApi, ConfigError> {
        self.privacy_api_with(self.authenticator()?)
    }

    /// `export-customer-data`: [`Wiring::privacy_api`], refused without a cursor
    /// secret (the export's pages are linked by signed cursors).
    pub fn export_api(&self) -> Result<PrivacyApi, ConfigError> {
        self.required_cursor_secret()?;
        self.privacy_api()
    }

    pub(super) fn privacy_api_with(
        &self,
        auth: Arc<Authenticator>,
    ) -> Result<PrivacyApi, ConfigError> {
        Ok(PrivacyApi {
            auth,
            privacy: self.privacy_service()?,
        })
    }

    pub fn suppression_service(&self) -> Result<SuppressionService, ConfigError> {
        let key = self
            .settings
            .get("SENDGRID_WEBHOOK_PUBLIC_KEY")
            .map(|text| {
                SendGridKey::parse(text).ok_or_else(|| ConfigError::Invalid {
                    setting: "SENDGRID_WEBHOOK_PUBLIC_KEY",
                    why: "is not a base64 P-256 public key (SubjectPublicKeyInfo DER)".into(),
                })
            })
            .transpose()?;
        Ok(SuppressionService::new(self.order_store()?, key))
    }

    /// SendGrid's event webhook and `DELETE /api/suppressions/{email}`.
    pub fn suppression_api(&self) -> Result<SuppressionApi, ConfigError> {
        self.suppression_api_with(self.authenticator()?)
    }

    pub(super) fn suppression_api_with(
        &self,
        auth: Arc<Authenticator>,
    ) -> Result<SuppressionApi, ConfigError> {
        Ok(SuppressionApi {
            auth,
            suppressions: self.suppression_service()?,
        })
    }

    /// Invoices on `TABLE_NAME`, kept `INVOICE_RETENTION_YEARS`.
    pub(super) fn invoice_store(&self) -> Result<DynamoInvoiceStore, ConfigError> {
        Ok(DynamoInvoiceStore::new(self.dynamodb(), self.table()?)
            .with_retention_years(self.retention_years()?))
    }

    /// `INVOICE_RETENTION_YEARS`: how long invoices and credit notes are kept.
    pub(super) fn retention_years(&self) -> Result<u16, ConfigError> {
        let years = self.bounded(
            "INVOICE_RETENTION_YEARS",
            usize::from(DEFAULT_RETENTION_YEARS),
            100,
        )?;
        Ok(u16::try_from(years).unwrap_or(DEFAULT_RETENTION_YEARS))
    }

    /// A whole number setting from 1 to `max`, `default` when unset.
    fn bounded(
        &self,
        setting: &'static str,
        default: usize,
        max: usize,
    ) -> Result<usize, ConfigError> {
        let Some(text) = self.settings.get(setting) else {
            return Ok(default);
        };
        text.parse()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ConfigError::Invalid {
                setting,
                why: format!("{text:?} is not a whole number from 1 to {max}"),
            })
    }
}
