//! `POST /api/shipping/shippo/webhook?token=…`: Shippo's tracking webhooks. No JWT:
//! the `token` query parameter, compared in constant time with
//! `SHIPPO_WEBHOOK_TOKEN`, says the call comes from the Shippo account; and even then
//! the body's status is not believed (the service reads the tracking back from
//! Shippo), so a leaked token cannot deliver an order.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};

use super::json_response;
use super::problem::ApiError;
use super::request::{self, RequestError};
use crate::domain::FieldErrors;
use crate::services::shipping::{CarrierReport, ShippingService};

pub struct ShippoWebhookApi {
    /// `SHIPPO_WEBHOOK_TOKEN`.
    pub token: String,
    pub shipping: ShippingService,
}

impl ShippoWebhookApi {
    pub async fn shippo_webhook(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let params = request.query_string_parameters();
        let given = params.first("token").unwrap_or_default();
        // Compared as digests: where two digests differ says nothing about the token.
        let digest = |text: &str| ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
        if digest(given).as_ref() != digest(&self.token).as_ref() {
            return Err(ApiError::BadToken);
        }
        let body = request::json_object(request, true)?.unwrap_or_default();
        let event = body.get("event").and_then(Value::as_str);
        let data = body.get("data").and_then(Value::as_object);
        let mut errors = FieldErrors::default();
        if event.is_none() {
            errors.add("event", "is required");
        }
        if data.is_none() {
            errors.add("data", "must be an object");
        }
        if !errors.is_empty() {
            return Err(RequestError::Invalid(errors).into());
        }
        // `transaction_updated` and the rest: their tracking arrives as track_updated.
        if event != Some("track_updated") {
            return Ok(answer("ignored"));
        }
        let text = |name: &str| {
            data.and_then(|d| d.get(name))
                .and_then(Value::as_str)
                .filter(|t| {
                    !t.is_empty() && t.len() <= 100 && t.bytes().all(|b| b.is_ascii_graphic())
                })
        };
        let (Some(carrier), Some(number)) = (text("carrier"), text("tracking_number")) else {
            let mut errors = FieldErrors::default();
            errors.add("data", "must name carrier and tracking_number");
            return Err(RequestError::Invalid(errors).into());
        };
        let outcome = self
            .shipping
            .carrier_report(&carrier.to_ascii_lowercase(), number)
            .await?;
        Ok(answer(match outcome {
            CarrierReport::Unknown => "ignored",
            CarrierReport::NothingNew => "duplicate",
            CarrierReport::Recorded(_) => "recorded",
        }))
    }
}

fn answer(outcome: &str) -> Response<Body> {
    json_response(StatusCode::OK, &json!({ "outcome": outcome }))
}
