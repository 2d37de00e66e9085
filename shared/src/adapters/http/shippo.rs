//! Shippo's label API as `LabelProvider`: `POST /shipments/` for rates, `POST
//! /transactions/` to buy the chosen one, `GET /transactions/?rate=` to find a label
//! bought earlier at a rate, `POST /tracks/` to register a hand-entered number. A
//! return label is the outbound shipment marked `extra.is_return`.
//! Field names are Shippo's (its OpenAPI description and SDK models).

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::body::{BodyError, read_limited};
use super::retry_later;
use crate::adapters::secrets::{ProviderKey, send_with_key};
use crate::domain::fulfillment::{Parcel, TrackingEvent};
use crate::domain::{Currency, Money, ShippingAddress};
use crate::ports::{Label, LabelDirection, LabelError, LabelProvider, LabelRate};

/// Where Shippo lives unless `SHIPPO_API_URL` says otherwise.
pub const SHIPPO_DEFAULT_URL: &str = "https://api.goshippo.com";

/// An address as Shippo's Address object spells it (`SHIPPO_ADDRESS_FROM`, the
/// warehouse, is one in JSON).
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

/// A shipment with its rates, or a page of transactions, is a few KiB.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

pub struct ShippoLabels {
    http: reqwest::Client,
    base: Url,
    token: ProviderKey,
    address_from: ShippoAddress,
}

impl ShippoLabels {
    /// `base_url` as `SHIPPO_API_URL` gives it (`https://api.goshippo.com`).
    pub fn new(
        base_url: &str,
        token: impl Into<ProviderKey>,
        address_from: ShippoAddress,
    ) -> Result<Self, String> {
        let base = Url::parse(base_url).map_err(|e| e.to_string())?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err("must be an http(s) URL".into());
        }
        let http = super::tls::http_client_builder()
            .connect_timeout(Duration::from_secs(2))
            // Synchronous rating and purchase ask the carrier; Shippo answers in seconds.
            .timeout(Duration::from_secs(15))
            // A redirect would re-send the token somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(ShippoLabels {
            http,
            base,
            token: token.into(),
            address_from,
        })
    }

    /// `{base}/<path>/` (Shippo's paths end in a slash).
    fn url(&self, path: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(path).push("");
        }
        url
    }

    /// One call; a 4xx is a refusal with Shippo's messages, 429/5xx and no answer are
    /// an outage.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<Value>,
    ) -> Result<T, LabelError> {
        let body = body.map(|body| body.to_string());
        let response = send_with_key(&self.token, |token| {
            let request = self
                .http
                .request(method.clone(), url.clone())
                .header("authorization", format!("ShippoToken {token}"))
                .header("accept", "application/json");
            match &body {
                Some(body) => request
                    .header("content-type", "application/json")
                    .body(body.clone()),
                None => request,
            }
        })
        .await
        .map_err(|e| LabelError::Unavailable(e.to_string()))?;
        let status = response.status();
        let bytes = read_limited(response, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge { .. } => LabelError::Unavailable(e.to_string()),
                BodyError::Read(why) => LabelError::Unavailable(why),
            })?;
        if retry_later(status) {
            return Err(LabelError::Unavailable(format!("Shippo answered {status}")));
        }
        if !status.is_success() {
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let mut messages = Vec::new();
            collect_messages("", &body, &mut messages);
            if messages.is_empty() {
                messages.push(format!("Shippo answered {status}"));
            }
            return Err(LabelError::Refused(messages));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| LabelError::Unavailable(format!("Shippo sent an unreadable answer: {e}")))
    }
}

/// Shippo's error bodies: `{"detail": "..."}` or field → [messages], nested.
fn collect_messages(path: &str, value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) if path.is_empty() || path == "detail" => out.push(text.clone()),
        Value::String(text) => out.push(format!("{path}: {text}")),
        Value::Array(items) => items.iter().for_each(|v| collect_messages(path, v, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            let path = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            collect_messages(&path, v, out);
        }),
        _ => {}
    }
}

#[derive(Deserialize)]
struct ShipmentAnswer {
    #[serde(default)]
    rates: Vec<RateAnswer>,
    #[serde(default)]
    messages: Vec<Message>,
}

#[derive(Deserialize)]
struct RateAnswer {
    object_id: String,
    provider: String,
    amount: String,
    currency: String,
    servicelevel: ServiceLevel,
}

#[derive(Deserialize)]
struct ServiceLevel {
    token: String,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    source: Option<String>,
    text: String,
}

#[derive(Deserialize)]
struct TransactionAnswer {
    object_id: String,
    status: String,
    #[serde(default)]
    tracking_number: Option<String>,
    #[serde(default)]
    tracking_url_provider: Option<String>,
    #[serde(default)]
    label_url: Option<String>,
    #[serde(default)]
    messages: Vec<Message>,
}

#[derive(Deserialize)]
struct TransactionPage {
    #[serde(default)]
    results: Vec<TransactionAnswer>,
}

#[derive(Serialize)]
struct ParcelBody<'a> {
    length: &'a str,
    width: &'a str,
    height: &'a str,
    distance_unit: &'a str,
    weight: &'a str,
    mass_unit: &'a str,
}

fn messages(messages: &[Message]) -> Vec<String> {
    messages
        .iter()
        .map(|m| match &m.source {
            Some(source) if !source.is_empty() => format!("{source}: {}", m.text),
            _ => m.text.clone(),
        })
        .collect()
}

/// The carrier's token from a rate's display name: `USPS` → `usps`, `DHL Express` →
/// `dhl_express`, as Shippo's tracking spells them.
fn carrier_token(provider: &str) -> String {
    provider
        .trim()
        .to_ascii_lowercase()
        .replace([' ', '-'], "_")
}

fn cost(amount: &str, currency: &str) -> Option<Money> {
    let currency = Currency::from_code(currency)?;
    Money::parse(amount, currency).ok()
}

impl TransactionAnswer {
    fn into_label(self) -> Result<Label, LabelError> {
        match (self.status.as_str(), self.tracking_number) {
            ("SUCCESS", Some(number)) if !number.is_empty() => Ok(Label {
                transaction_id: self.object_id,
                tracking_number: number,
                tracking_url: self.tracking_url_provider.filter(|u| !u.is_empty()),
                label_url: self.label_url.filter(|u| !u.is_empty()),
            }),
            ("QUEUED" | "WAITING", _) => Err(LabelError::Unavailable(
                "Shippo has not finished the label yet".into(),
            )),
            _ => {
                let mut refused = messages(&self.messages);
                if refused.is_empty() {
                    refused.push(format!("Shippo's label status is {}", self.status));
                }
                Err(LabelError::Refused(refused))
            }
        }
    }
}

#[async_trait]
impl LabelProvider for ShippoLabels {
    async fn quote(
        &self,
        reference: &str,
        to: &ShippingAddress,
        parcel: &Parcel,
        servicelevel: Option<&str>,
        direction: LabelDirection,
    ) -> Result<LabelRate, LabelError> {
        let mut body = json!({
            "address_from": self.address_from,
            "address_to": ShippoAddress::from(to),
            "parcels": [ParcelBody {
                length: &parcel.length,
                width: &parcel.width,
                height: &parcel.height,
                distance_unit: &parcel.distance_unit,
                weight: &parcel.weight,
                mass_unit: &parcel.mass_unit,
            }],
            // Synchronous: the answer carries the rates.
            "async": false,
            "metadata": reference,
        });
        if direction == LabelDirection::Return {
            // Shippo's return label: the outbound addresses as they were, marked a
            // return; Shippo swaps them on the label (its docs: do not swap them).
            body["extra"] = json!({"is_return": true});
        }
        let shipment: ShipmentAnswer = self
            .call(Method::POST, self.url(&["shipments"]), Some(body))
            .await?;
        let offered = shipment
            .rates
            .iter()
            .filter(|r| servicelevel.is_none_or(|level| r.servicelevel.token == level));
        let cheapest = offered.min_by(|a, b| {
            let amount = |r: &RateAnswer| r.amount.parse::<f64>().unwrap_or(f64::MAX);
            amount(a).total_cmp(&amount(b))
        });
        let Some(rate) = cheapest else {
            let mut refused = messages(&shipment.messages);
            refused.insert(
                0,
                match servicelevel {
                    Some(level) => format!("no rate with service level {level} for this parcel"),
                    None => "no rate for this parcel".to_string(),
                },
            );
            return Err(LabelError::Refused(refused));
        };
        Ok(LabelRate {
            rate_id: rate.object_id.clone(),
            carrier: carrier_token(&rate.provider),
            servicelevel: Some(rate.servicelevel.token.clone()),
            cost: cost(&rate.amount, &rate.currency),
        })
    }

    async fn purchase(&self, rate: &LabelRate, reference: &str) -> Result<Label, LabelError> {
        let body = json!({
            "rate": rate.rate_id,
            "async": false,
            "label_file_type": "PDF",
            "metadata": reference,
        });
        let transaction: TransactionAnswer = self
            .call(Method::POST, self.url(&["transactions"]), Some(body))
            .await?;
        transaction.into_label()
    }

    async fn purchased(&self, rate: &LabelRate) -> Result<Option<Label>, LabelError> {
        let mut url = self.url(&["transactions"]);
        url.query_pairs_mut().append_pair("rate", &rate.rate_id);
        let page: TransactionPage = self.call(Method::GET, url, None).await?;
        Ok(page
            .results
            .into_iter()
            .find(|t| t.status == "SUCCESS")
            .and_then(|t| t.into_label().ok()))
    }

    async fn tracking(
        &self,
        carrier: &str,
        tracking_number: &str,
    ) -> Result<Vec<TrackingEvent>, LabelError> {
        let track: TrackAnswer = self
            .call(
                Method::GET,
                self.url(&["tracks", carrier, tracking_number]),
                None,
            )
            .await?;
        // The current status is the one reported last, even when its date is older
        // than an earlier report's: it goes last.
        Ok(track
            .tracking_history
            .into_iter()
            .chain(track.tracking_status)
            .filter_map(StatusAnswer::into_event)
            .collect())
    }

    async fn refund(&self, transaction_id: &str) -> Result<(), LabelError> {
        let body = json!({"transaction": transaction_id, "async": false});
        match self
            .call::<Value>(Method::POST, self.url(&["refunds"]), Some(body))
            .await
        {
            Ok(_) => Ok(()),
            // A retried void whose first refund went through.
            Err(LabelError::Refused(messages))
                if messages
                    .iter()
                    .any(|m| m.contains("already been requested")) =>
            {
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    async fn register_tracking(
        &self,
        carrier: &str,
        tracking_number: &str,
        reference: &str,
    ) -> Result<(), LabelError> {
        let body = json!({
            "carrier": carrier,
            "tracking_number": tracking_number,
            "metadata": reference,
        });
        self.call::<Value>(Method::POST, self.url(&["tracks"]), Some(body))
            .await
            .map(|_| ())
    }
}

#[derive(Deserialize)]
struct TrackAnswer {
    #[serde(default)]
    tracking_status: Option<StatusAnswer>,
    #[serde(default)]
    tracking_history: Vec<StatusAnswer>,
}

#[derive(Deserialize)]
struct StatusAnswer {
    status: String,
    #[serde(default)]
    status_details: Option<String>,
    #[serde(default)]
    status_date: Option<String>,
    #[serde(default)]
    location: Option<LocationAnswer>,
}

#[derive(Deserialize)]
struct LocationAnswer {
    #[serde(default)]
    city: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    country: Option<String>,
}

impl StatusAnswer {
    /// A report without a readable date cannot be placed in time: left out.
    fn into_event(self) -> Option<TrackingEvent> {
        let date = self.status_date?;
        let status_date = OffsetDateTime::parse(&date, &Rfc3339).ok()?;
        let location = self.location.map(|l| {
            [l.city, l.state, l.country]
                .into_iter()
                .flatten()
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join(", ")
        });
        Some(TrackingEvent {
            status: self.status,
            status_date,
            details: self.status_details.filter(|d| !d.is_empty()),
            location: location.filter(|l| !l.is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shippo_error_bodies_become_messages() {
        let mut out = Vec::new();
        collect_messages(
            "",
            &json!({"rate": ["Invalid pk \"x\" - object does not exist."], "parcels": [{"weight": ["This field is required."]}]}),
            &mut out,
        );
        out.sort();
        assert_eq!(
            out,
            [
                "parcels.weight: This field is required.",
                "rate: Invalid pk \"x\" - object does not exist."
            ]
        );
        let mut out = Vec::new();
        collect_messages("", &json!({"detail": "Invalid token."}), &mut out);
        assert_eq!(out, ["Invalid token."]);
    }

    #[test]
    fn calls_go_to_the_base_urls_paths_with_shippos_trailing_slash() {
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
            let shippo = ShippoLabels::new(base, "t", from.clone()).unwrap();
            assert_eq!(shippo.url(&["shipments"]).as_str(), expected);
        }
        let shippo = ShippoLabels::new(SHIPPO_DEFAULT_URL, "t", from.clone()).unwrap();
        assert_eq!(
            shippo.url(&["tracks", "usps", "9400"]).as_str(),
            "https://api.goshippo.com/tracks/usps/9400/"
        );
        assert!(ShippoLabels::new("not a url", "t", from.clone()).is_err());
        assert!(ShippoLabels::new("mailto:ops@example.com", "t", from).is_err());
    }

    #[test]
    fn a_transaction_in_error_is_a_refusal_with_shippos_messages() {
        let answer: TransactionAnswer = serde_json::from_value(json!({
            "object_id": "ea00", "status": "ERROR", "tracking_number": "",
            "messages": [{"source": "USPS", "code": "", "text": "The address as submitted could not be found."}]
        }))
        .unwrap();
        assert_eq!(
            answer.into_label(),
            Err(LabelError::Refused(vec![
                "USPS: The address as submitted could not be found.".into()
            ]))
        );
        assert_eq!(carrier_token("DHL Express"), "dhl_express");
        assert_eq!(carrier_token("USPS"), "usps");
    }
}
