//! `POST /api/email/sendgrid/events` (SendGrid's signed event webhook, no token) and
//! `DELETE /api/suppressions/{email}` (admins).

use std::sync::Arc;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;

use super::problem::ApiError;
use super::{caller, json_response, request};
use crate::auth::Authenticator;
use crate::services::suppressions::SuppressionService;

/// SendGrid's signature headers.
pub const SIGNATURE_HEADER: &str = "x-twilio-email-event-webhook-signature";
pub const TIMESTAMP_HEADER: &str = "x-twilio-email-event-webhook-timestamp";

/// SendGrid posts events in batches: more room than an API request's body.
pub const MAX_EVENTS_BYTES: usize = 1024 * 1024;

pub struct SuppressionApi {
    pub auth: Arc<Authenticator>,
    pub suppressions: SuppressionService,
}

impl SuppressionApi {
    pub async fn sendgrid_events(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let body = request::body_bytes(request);
        if body.len() > MAX_EVENTS_BYTES {
            return Err(request::RequestError::TooLarge {
                limit: MAX_EVENTS_BYTES,
            }
            .into());
        }
        let suppressed = self
            .suppressions
            .from_sendgrid(
                request::header(request, TIMESTAMP_HEADER),
                request::header(request, SIGNATURE_HEADER),
                body,
            )
            .await?;
        Ok(json_response(
            StatusCode::OK,
            &json!({ "received": true, "suppressed": suppressed }),
        ))
    }

    pub async fn delete_suppression(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        let address = percent_decoded(&request::path_parameter(request, "email"));
        self.suppressions.clear(&caller, &address).await?;
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = StatusCode::NO_CONTENT;
        Ok(response)
    }
}

/// A path segment as sent: `jane%40example.com` is `jane@example.com`.
fn percent_decoded(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
