//! What the shipment functions need at init: the order store (which also keeps the
//! parcels and the label claims) and the inventory, on `TABLE_NAME`; with Shippo on
//! (`SHIPPO_API_TOKEN`), the label provider:
//!
//! - `SHIPPO_API_URL` (default Shippo's), `SHIPPO_ADDRESS_FROM` (the warehouse, a
//!   JSON Shippo address), as for fulfillment;
//! - `SHIPPO_DEFAULT_PARCEL`: the box when a request names none, a JSON Shippo
//!   Parcel (`{"length": "10", "width": "8", "height": "4", "distance_unit": "in",
//!   "weight": "2", "mass_unit": "lb"}`, also the built-in default).
//!
//! `SHIPPING_LABELS` (`manual`, the default, or `auto`) is read by fulfillment:
//! `auto` buys each confirmed order's label as `POST …/shipments` would, and needs
//! Shippo on.

use std::sync::Arc;

use serde_json::Value;

use super::{ConfigError, Wiring};
use crate::adapters::dynamo::DynamoInventory;
use crate::adapters::http::shippo::{SHIPPO_DEFAULT_URL, ShippoAddress, ShippoLabels};
use crate::domain::FieldErrors;
use crate::domain::fulfillment::Parcel;
use crate::inbound::http::shipments::decimal_member;
use crate::inbound::http::{ShippingApi, ShippoWebhookApi};
use crate::services::shipping::{Labels, ShippingService};

impl Wiring {
    pub fn shipping_service(&self) -> Result<ShippingService, ConfigError> {
        let store = self.order_store()?;
        let inventory = Arc::new(DynamoInventory::new(self.dynamodb(), self.table()?));
        let service =
            ShippingService::new(store.clone(), store.clone(), inventory, self.metrics()?)
                .with_return_tracking(store.clone());
        Ok(match self.label_provider()? {
            Some(provider) => service.with_labels(Labels {
                provider,
                claims: store,
                default_parcel: self.default_parcel()?,
            }),
            None => service,
        })
    }

    /// `POST` and `GET /api/orders/{order_id}/shipments`.
    pub fn shipping_api(&self) -> Result<ShippingApi, ConfigError> {
        Ok(ShippingApi {
            auth: self.authenticator()?,
            shipping: self.shipping_service()?,
        })
    }

    /// Shippo's webhook (`shippo-webhook`): Shippo must be on, and
    /// `SHIPPO_WEBHOOK_TOKEN` (the `token` Shippo's webhook URL carries) at least 16
    /// printable characters.
    pub fn shippo_webhook_api(&self) -> Result<ShippoWebhookApi, ConfigError> {
        self.required_key("SHIPPO_API_TOKEN")?;
        let token = self
            .key_read_at_init("SHIPPO_WEBHOOK_TOKEN")?
            .ok_or(ConfigError::Missing("SHIPPO_WEBHOOK_TOKEN"))?;
        if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::Invalid {
                setting: "SHIPPO_WEBHOOK_TOKEN",
                why: "must be at least 16 printable characters without spaces".into(),
            });
        }
        Ok(ShippoWebhookApi {
            token: token.to_string(),
            shipping: self.shipping_service()?,
        })
    }

    /// With `SHIPPING_LABELS=auto`, the shipping service fulfillment buys each
    /// confirmed order's label with; `None` with `manual` (the default). Any other
    /// value, or `auto` without Shippo, stops the function at init.
    pub(super) fn automatic_labels(&self) -> Result<Option<Arc<ShippingService>>, ConfigError> {
        let invalid = |why: &str| ConfigError::Invalid {
            setting: "SHIPPING_LABELS",
            why: why.into(),
        };
        match self.settings.get("SHIPPING_LABELS").unwrap_or("manual") {
            "manual" => Ok(None),
            "auto" if self.provider_key("SHIPPO_API_TOKEN")?.is_none() => Err(invalid(
                "is auto, which buys labels through Shippo, but SHIPPO_API_TOKEN is not set",
            )),
            "auto" => Ok(Some(Arc::new(self.shipping_service()?))),
            _ => Err(invalid("must be manual or auto")),
        }
    }

    /// Shippo's label API when `SHIPPO_API_TOKEN` is set; `None` otherwise.
    pub(super) fn label_provider(&self) -> Result<Option<Arc<ShippoLabels>>, ConfigError> {
        let Some(token) = self.provider_key("SHIPPO_API_TOKEN")? else {
            if self.settings.get("SHIPPO_API_URL").is_some() {
                return Err(ConfigError::Invalid {
                    setting: "SHIPPO_API_URL",
                    why: "is set but SHIPPO_API_TOKEN is not".into(),
                });
            }
            return Ok(None);
        };
        let invalid = |setting, why: String| ConfigError::Invalid { setting, why };
        let url = self
            .settings
            .get("SHIPPO_API_URL")
            .unwrap_or(SHIPPO_DEFAULT_URL);
        let from: ShippoAddress =
            serde_json::from_str(self.settings.required("SHIPPO_ADDRESS_FROM")?)
                .map_err(|e| invalid("SHIPPO_ADDRESS_FROM", e.to_string()))?;
        let labels =
            ShippoLabels::new(url, token, from).map_err(|why| invalid("SHIPPO_API_URL", why))?;
        Ok(Some(Arc::new(labels)))
    }

    pub(super) fn default_parcel(&self) -> Result<Parcel, ConfigError> {
        let Some(text) = self.settings.get("SHIPPO_DEFAULT_PARCEL") else {
            return Ok(Parcel::default());
        };
        let invalid = |why: String| ConfigError::Invalid {
            setting: "SHIPPO_DEFAULT_PARCEL",
            why,
        };
        let object: serde_json::Map<String, Value> =
            serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut errors = FieldErrors::default();
        let member = |name: &str| decimal_member(object.get(name));
        Parcel::parse("SHIPPO_DEFAULT_PARCEL", member, &mut errors).ok_or_else(|| {
            invalid(
                errors
                    .0
                    .iter()
                    .map(|e| format!("{} {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wiring::Settings;

    fn wiring(settings: Settings) -> Wiring {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        Wiring::new(settings.with("TABLE_NAME", "orders"), sdk)
    }

    #[test]
    fn a_refused_parcel_setting_names_itself() {
        let on = Settings::default()
            .with("SHIPPO_API_TOKEN", "shippo_test_x")
            .with("SHIPPO_ADDRESS_FROM", r#"{"name": "W", "street1": "1 A St", "city": "SF", "zip": "94117", "country": "US"}"#);
        assert_eq!(
            wiring(on.clone()).default_parcel().unwrap(),
            Parcel::default()
        );
        let bad = on.with("SHIPPO_DEFAULT_PARCEL", r#"{"length": "x1", "width": 8, "height": "4", "distance_unit": "in", "weight": "2", "mass_unit": "stone"}"#);
        let err = wiring(bad).default_parcel().unwrap_err().to_string();
        assert!(err.starts_with("SHIPPO_DEFAULT_PARCEL: "), "{err}");
        assert!(err.contains("length") && err.contains("mass_unit"), "{err}");
    }

    #[test]
    fn automatic_labels_are_manual_by_default_and_need_shippo() {
        let shippo = Settings::default()
            .with("SHIPPO_API_TOKEN", "shippo_test_x")
            .with("SHIPPO_ADDRESS_FROM", r#"{"name": "W", "street1": "1 A St", "city": "SF", "zip": "94117", "country": "US"}"#);
        assert!(wiring(shippo.clone()).automatic_labels().unwrap().is_none());
        let manual = shippo.clone().with("SHIPPING_LABELS", "manual");
        assert!(wiring(manual).automatic_labels().unwrap().is_none());
        let auto = shippo.clone().with("SHIPPING_LABELS", "auto");
        assert!(wiring(auto).automatic_labels().unwrap().is_some());

        for (settings, why) in [
            (shippo.with("SHIPPING_LABELS", "Auto"), "manual or auto"),
            (
                Settings::default().with("SHIPPING_LABELS", "auto"),
                "SHIPPO_API_TOKEN",
            ),
        ] {
            let err = wiring(settings)
                .automatic_labels()
                .err()
                .expect("refused")
                .to_string();
            assert!(err.starts_with("SHIPPING_LABELS: "), "{err}");
            assert!(err.contains(why), "{err}");
        }
    }
}
