//! What the return functions need at init: the order store (which also keeps the
//! returns, their queue and the restock records) on `TABLE_NAME`;
//! `RETURN_WINDOW_DAYS` (default 30: how long after delivery a customer may ask for a
//! return); with Shippo on (`SHIPPO_API_TOKEN`, `SHIPPO_ADDRESS_FROM`, as for
//! shipments), the label provider approvals buy return labels from; with payments on
//! (`STRIPE_SECRET_KEY`), the payment service that refunds received returns.

use std::sync::Arc;

use super::{ConfigError, Wiring};
use crate::inbound::http::ReturnApi;
use crate::services::returns::{DEFAULT_RETURN_WINDOW_DAYS, ReturnService};
use crate::services::shipping::Labels;

impl Wiring {
    pub fn return_service(&self) -> Result<ReturnService, ConfigError> {
        let store = self.order_store()?;
        let service = ReturnService::new(
            store.clone(),
            store.clone(),
            store.clone(),
            self.return_window_days()?,
        );
        let service = match self.label_provider()? {
            Some(provider) => service.with_labels(Labels {
                provider,
                claims: store,
                default_parcel: self.default_parcel()?,
            }),
            None => service,
        };
        Ok(if self.payments_on() {
            service.with_payments(Arc::new(self.payment_service()?))
        } else {
            service
        })
    }

    /// Every return endpoint (`/api/orders/{order_id}/returns…`, `/api/returns`).
    pub fn return_api(&self) -> Result<ReturnApi, ConfigError> {
        Ok(ReturnApi {
            auth: self.authenticator()?,
            returns: self.return_service()?,
        })
    }

    /// `RETURN_WINDOW_DAYS`: 1 to 3650 days.
    fn return_window_days(&self) -> Result<u32, ConfigError> {
        let Some(text) = self.settings.get("RETURN_WINDOW_DAYS") else {
            return Ok(DEFAULT_RETURN_WINDOW_DAYS);
        };
        text.parse::<u32>()
            .ok()
            .filter(|days| (1..=3650).contains(days) && text.bytes().all(|b| b.is_ascii_digit()))
            .ok_or(ConfigError::Invalid {
                setting: "RETURN_WINDOW_DAYS",
                why: "must be a whole number of days from 1 to 3650".into(),
            })
    }
}
