//! `ShippingProvider`s: the manual default, and Shippo's Shipments API.
//!
//! Creating a Shippo Shipment only asks for rates; it buys no label. A person (or a
//! later integration) picks a rate and buys the label, so a shipment requested twice
//! costs nothing but a second quote.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};

use super::body::{BodyError, read_limited};
use crate::adapters::secrets::{ProviderKey, send_with_key};
use crate::domain::{OrderId, ShippingAddress};
use crate::ports::{ShipmentRequest, ShippingError, ShippingProvider};

/// Nothing to call: a person ships, fulfillment only marks the order processing.
#[derive(Debug, Clone, Copy, Default)]
pub struct ManualShipping;

#[async_trait]
impl ShippingProvider for ManualShipping {
    async fn request_shipment(
        &self,
        _order_id: &OrderId,
        _to: &ShippingAddress,
    ) -> Result<Option<ShipmentRequest>, ShippingError> {
        Ok(None)
    }
}

/// Where Shippo lives unless `SHIPPO_API_URL` says otherwise.
pub const SHIPPO_DEFAULT_URL: &str = "https://api.goshippo.com";

/// A shipment with its rates is a few KiB; an error body is read for its `detail` only.
const MAX_SHIPMENT_BYTES: usize = 1024 * 1024;
const MAX_SHIPPO_ERROR_BYTES: usize = 64 * 1024;

/// An address as Shippo's Address object spells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippoAddress {
    pub name: String,
    pub street1: String,
    pub city: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    pub zip: String,
    pub country: String,
}

impl From<&ShippingAddress> for ShippoAddress {
    fn from(a: &ShippingAddress) -> Self {
        ShippoAddress {
            name: a.name.clone(),
            street1: a.address.clone(),
            city: a.city.clone(),
            state: a.state.clone(),
            zip: a.zip.clone(),
            country: a.country.clone(),
        }
    }
}

/// A parcel as Shippo's Parcel object spells it (dimensions are decimal strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippoParcel {
    pub length: String,
    pub width: String,
    pub height: String,
    pub distance_unit: String,
    pub weight: String,
    pub mass_unit: String,
}

impl Default for ShippoParcel {
    /// A medium box; the rates are quotes, the person buying the label adjusts.
    fn default() -> Self {
        ShippoParcel {
            length: "10".into(),
            width: "8".into(),
            height: "4".into(),
            distance_unit: "in".into(),
            weight: "2".into(),
            mass_unit: "lb".into(),
        }
    }
}

/// `POST {base}/shipments/` with `async: false`, so the answer carries the rates.
pub struct ShippoShipping {
    http: reqwest::Client,
    shipments: Url,
    token: ProviderKey,
    address_from: ShippoAddress,
    parcel: ShippoParcel,
}

impl ShippoShipping {
    /// `base_url` without `/shipments/` (`https://api.goshippo.com`); `address_from`
    /// is the warehouse that ships.
    pub fn new(
        base_url: &str,
        token: impl Into<ProviderKey>,
        address_from: ShippoAddress,
    ) -> Result<Self, String> {
        let mut shipments = Url::parse(base_url).map_err(|e| format!("SHIPPO_API_URL: {e}"))?;
        match shipments.path_segments_mut() {
            // Shippo's paths end in a slash: `/shipments/`.
            Ok(mut segments) => {
                segments.pop_if_empty().extend(["shipments", ""]);
            }
            Err(()) => return Err("SHIPPO_API_URL must be an http(s) URL".into()),
        }
        let http = super::tls::http_client_builder()
            .connect_timeout(Duration::from_secs(2))
            // Synchronous rating asks every carrier; Shippo documents answers in seconds.
            .timeout(Duration::from_secs(10))
            // A redirect would re-send the token somewhere else; refuse it instead.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(ShippoShipping {
            http,
            shipments,
            token: token.into(),
            address_from,
            parcel: ShippoParcel::default(),
        })
    }

    /// Replaces the default parcel sent with every shipment.
    pub fn with_parcel(mut self, parcel: ShippoParcel) -> Self {
        self.parcel = parcel;
        self
    }
}

/// The request body of `POST /shipments/`.
#[derive(Serialize)]
struct ShipmentBody<'a> {
    address_from: &'a ShippoAddress,
    address_to: ShippoAddress,
    parcels: [&'a ShippoParcel; 1],
    #[serde(rename = "async")]
    is_async: bool,
    /// Shows up in Shippo's dashboard next to the shipment.
    metadata: String,
}

/// The parts of Shippo's Shipment object this service reads.
#[derive(Deserialize)]
struct Shipment {
    object_id: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    rates: Vec<Rate>,
}

#[derive(Deserialize)]
struct Rate {
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    amount: Option<String>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    servicelevel: Option<ServiceLevel>,
}

#[derive(Deserialize)]
struct ServiceLevel {
    #[serde(default)]
    token: Option<String>,
}

#[async_trait]
impl ShippingProvider for ShippoShipping {
    async fn request_shipment(
        &self,
        order_id: &OrderId,
        to: &ShippingAddress,
    ) -> Result<Option<ShipmentRequest>, ShippingError> {
        let body = ShipmentBody {
            address_from: &self.address_from,
            address_to: to.into(),
            parcels: [&self.parcel],
            is_async: false,
            metadata: format!("Order {order_id}"),
        };
        let body = serde_json::to_vec(&body).map_err(|e| ShippingError::Refused(e.to_string()))?;
        let unavailable = |e: reqwest::Error| ShippingError::Unavailable(e.to_string());
        let response = send_with_key(&self.token, |token| {
            self.http
                .post(self.shipments.clone())
                .header("authorization", format!("ShippoToken {token}"))
                .header("content-type", "application/json")
                .header("accept", "application/json")
                .body(body.clone())
        })
        .await
        .map_err(unavailable)?;

        let status = response.status();
        if !status.is_success() {
            // Only its `detail` is kept; the rest is not worth reading at any length.
            let body = read_limited(response, MAX_SHIPPO_ERROR_BYTES)
                .await
                .unwrap_or_default();
            let message = match error_detail(&body) {
                Some(detail) => format!("Shippo answered {status}: {detail}"),
                None => format!("Shippo answered {status}"),
            };
            // Worth retrying: Shippo's own trouble, rate limits, concurrent-call conflicts.
            return Err(
                if status.is_server_error()
                    || matches!(
                        status,
                        StatusCode::REQUEST_TIMEOUT
                            | StatusCode::CONFLICT
                            | StatusCode::TOO_MANY_REQUESTS
                    )
                {
                    ShippingError::Unavailable(message)
                } else {
                    ShippingError::Refused(message)
                },
            );
        }
        let bytes = read_limited(response, MAX_SHIPMENT_BYTES)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge { .. } => {
                    ShippingError::Refused(format!("Shippo's shipment: {e}"))
                }
                BodyError::Read(why) => ShippingError::Unavailable(why),
            })?;
        // The shipment exists now; asking again would make a second one.
        let shipment: Shipment = serde_json::from_slice(&bytes).map_err(|e| {
            ShippingError::Refused(format!("Shippo sent an unreadable shipment: {e}"))
        })?;
        let rates: Vec<String> = shipment
            .rates
            .iter()
            .map(|r| {
                format!(
                    "{} {} {} {}",
                    r.provider.as_deref().unwrap_or("?"),
                    r.servicelevel
                        .as_ref()
                        .and_then(|l| l.token.as_deref())
                        .unwrap_or("?"),
                    r.amount.as_deref().unwrap_or("?"),
                    r.currency.as_deref().unwrap_or(""),
                )
            })
            .collect();
        tracing::info!(
            order_id = %order_id,
            shipment = %shipment.object_id,
            status = shipment.status.as_deref().unwrap_or("?"),
            rates = ?rates,
            "Shippo shipment created"
        );
        Ok(Some(ShipmentRequest {
            provider_ref: shipment.object_id,
        }))
    }
}

/// The longest excerpt of a Shippo error kept for the log.
const MAX_DETAIL: usize = 120;

/// Shippo's own explanation (`{"detail": "..."}`), bounded and reduced to printable
/// ASCII, for the log. Anything else in an error body may echo the request (the
/// customer's name and address) or be arbitrary text, so it is not kept.
fn error_detail(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct ErrorBody {
        detail: String,
    }
    let detail = serde_json::from_slice::<ErrorBody>(body).ok()?.detail;
    let clean: String = detail
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(MAX_DETAIL)
        .collect();
    Some(clean).filter(|d| !d.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bounded_printable_detail_of_an_error_is_kept() {
        assert_eq!(
            error_detail(br#"{"detail":"Request was throttled."}"#).as_deref(),
            Some("Request was throttled.")
        );
        assert_eq!(
            error_detail(b"{\"detail\":\"bad\\nline\\u001b[31m\"}").as_deref(),
            Some("bad?line?[31m")
        );
        let long = format!(r#"{{"detail":"{}"}}"#, "x".repeat(1000));
        assert_eq!(error_detail(long.as_bytes()).unwrap().len(), MAX_DETAIL);
        // Field errors echo the address sent; an HTML page is noise.
        assert_eq!(
            error_detail(br#"{"address_to":["Invalid zip 10001, Jane Doe"]}"#),
            None
        );
        assert_eq!(error_detail(b"<html>Bad gateway</html>"), None);
        assert_eq!(error_detail(b""), None);
    }

    #[test]
    fn shipments_are_posted_to_the_base_urls_shipments_path() {
        let from = ShippoAddress {
            name: "W".into(),
            street1: "1 Dock Rd".into(),
            city: "Reno".into(),
            state: Some("NV".into()),
            zip: "89501".into(),
            country: "US".into(),
        };
        for (base, expected) in [
            (SHIPPO_DEFAULT_URL, "https://api.goshippo.com/shipments/"),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/shipments/"),
            (
                "http://localhost/shippo",
                "http://localhost/shippo/shipments/",
            ),
        ] {
            let shippo = ShippoShipping::new(base, "t", from.clone()).unwrap();
            assert_eq!(shippo.shipments.as_str(), expected);
        }
        assert!(ShippoShipping::new("not a url", "t", from.clone()).is_err());
        assert!(ShippoShipping::new("mailto:ops@example.com", "t", from).is_err());
    }
}
