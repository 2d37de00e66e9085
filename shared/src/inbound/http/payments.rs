//! The payment endpoints: Stripe's webhook (no bearer token: the `Stripe-Signature`
//! is its credential) and an admin's refund of an order.

use std::sync::Arc;

use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use ring::hmac;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::problem::ApiError;
use super::request::{self, Fields, MAX_REASON_LEN, RequestError};
use super::{caller, json_response, with_etag};
use crate::auth::Authenticator;
use crate::domain::FieldErrors;
use crate::domain::payment::notice::{NoticeOutcome, PaymentNotice};
use crate::events::view::OrderView;
use crate::services::payments::{NoticeHandled, PaymentService, RefundRequest};

/// How old a signed webhook may be: Stripe's libraries' default, against replays.
pub const SIGNATURE_TOLERANCE_SECONDS: i64 = 300;

/// The webhook body's limit: Stripe's events are a few KiB.
const MAX_EVENT_BYTES: usize = 256 * 1024;

pub struct PaymentApi {
    pub auth: Arc<Authenticator>,
    pub payments: PaymentService,
    /// `STRIPE_WEBHOOK_SECRET` (`whsec_…`); `None` in `create-refund`, which is not
    /// given it, and then no event verifies.
    pub webhook_secret: Option<String>,
}

impl PaymentApi {
    /// `POST /api/payments/stripe/webhook`. 2xx tells Stripe to stop resending: every
    /// event that verifies is acknowledged, applied or not; a failure to record one is
    /// a 5xx, so Stripe sends it again.
    pub async fn stripe_webhook(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let body = request::body_bytes(request);
        if body.len() > MAX_EVENT_BYTES {
            return Err(RequestError::TooLarge {
                limit: MAX_EVENT_BYTES,
            }
            .into());
        }
        let secret = self.webhook_secret.as_deref().ok_or_else(|| {
            ApiError::BadSignature("this function holds no signing secret".into())
        })?;
        verify_signature(
            secret,
            request::header(request, "stripe-signature"),
            body,
            OffsetDateTime::now_utc().unix_timestamp(),
        )
        .map_err(ApiError::BadSignature)?;
        let event: StripeEvent = serde_json::from_slice(body)
            .map_err(|e| RequestError::Malformed(format!("not a Stripe event: {e}")))?;
        let Some(notice) = event.notice() else {
            tracing::info!(stripe_event = %event.id, kind = %event.kind, "event type not handled; acknowledged");
            return Ok(acknowledged("ignored"));
        };
        let order_id = event.data.object.metadata.order_id.as_deref();
        let handled = self.payments.handle_notice(&notice, order_id).await?;
        let outcome = match handled {
            NoticeHandled::Applied { order_id, version } => {
                tracing::info!(stripe_event = %event.id, %order_id, version, kind = %event.kind, "payment recorded");
                "applied"
            }
            NoticeHandled::Duplicate => "duplicate",
            NoticeHandled::Ignored(why) => {
                tracing::info!(stripe_event = %event.id, order_id = ?order_id, kind = %event.kind, why, "payment event acknowledged, not applied");
                "ignored"
            }
        };
        Ok(acknowledged(outcome))
    }

    /// `POST /api/orders/{order_id}/refunds {"amount": "25.00", "reason": "…"}`.
    pub async fn create_refund(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        let key = request::idempotency_key(request)?;
        let body = request::json_object(request, true)?.unwrap_or_default();
        let mut errors = FieldErrors::default();
        let fields = Fields::new(&body, "", &["amount", "reason"]);
        fields.unknown(&mut errors);
        // An amount is a decimal string, as everywhere money is written to this API,
        // or a JSON number kept as written.
        let amount = match body.get("amount") {
            Some(serde_json::Value::String(text)) => Some(text.clone()),
            Some(serde_json::Value::Number(number)) => Some(number.to_string()),
            Some(_) => {
                errors.add("amount", "must be a decimal amount such as \"25.00\"");
                None
            }
            None => {
                errors.add("amount", "is required");
                None
            }
        };
        let reason = request::text(&mut errors, &fields, "reason", MAX_REASON_LEN);
        let (Some(amount), true) = (amount, errors.is_empty()) else {
            return Err(RequestError::Invalid(errors).into());
        };
        let replay_possible = key.is_some();
        let refund = RefundRequest {
            amount,
            reason,
            key: key.unwrap_or_else(fresh_key),
        };
        let id = request::path_parameter(request, "order_id");
        let (order, made) = self.payments.refund(&caller, &id, refund).await?;
        let status = if made {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        let mut response = with_etag(
            json_response(status, &OrderView::for_reader(&order, &caller)),
            order.version,
        );
        if !made && replay_possible {
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        Ok(response)
    }
}

fn acknowledged(outcome: &str) -> Response<Body> {
    json_response(
        StatusCode::OK,
        &json!({ "received": true, "outcome": outcome }),
    )
}

/// A key for a refund sent without one: 16 random bytes, hex.
fn fresh_key() -> String {
    let mut bytes = [0u8; 16];
    // The system's random source does not fail on Lambda; a zero key would only
    // make two keyless refunds of the same amount look like one.
    let _ = crate::domain::random::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The most `v1` signatures a `Stripe-Signature` may carry: Stripe sends one per
/// webhook secret (two while a secret is rolled); more is someone making us work.
pub const MAX_SIGNATURES: usize = 8;

/// Checks `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=…]`: one `v1` must be the
/// HMAC-SHA256 of `<t>.<body>` under `secret`, and `t` within
/// [`SIGNATURE_TOLERANCE_SECONDS`] of `now`. The expected signature is computed once
/// and each candidate (at most [`MAX_SIGNATURES`]) compared to it in constant time.
pub fn verify_signature(
    secret: &str,
    header: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), String> {
    let header = header.ok_or("the Stripe-Signature header is missing")?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", hex)) => signatures.push(hex),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or("Stripe-Signature has no timestamp")?;
    if signatures.is_empty() {
        return Err("Stripe-Signature has no v1 signature".into());
    }
    if signatures.len() > MAX_SIGNATURES {
        return Err(format!(
            "Stripe-Signature has more than {MAX_SIGNATURES} v1 signatures"
        ));
    }
    // `abs_diff`: a `t` near `i64::MIN` must not overflow a subtraction.
    if now.abs_diff(timestamp) > SIGNATURE_TOLERANCE_SECONDS.unsigned_abs() {
        return Err("Stripe-Signature's timestamp is outside the tolerance".into());
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    // hmac::verify compares in constant time.
    let verified = signatures.iter().any(|hex| {
        decode_hex(hex).is_some_and(|candidate| hmac::verify(&key, &signed, &candidate).is_ok())
    });
    if verified {
        Ok(())
    } else {
        Err("no Stripe-Signature signature matches the body".into())
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The parts of a Stripe event this service reads.
#[derive(Deserialize)]
struct StripeEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    data: EventData,
}

#[derive(Deserialize)]
struct EventData {
    object: IntentObject,
}

#[derive(Deserialize)]
struct IntentObject {
    #[serde(default)]
    id: String,
    #[serde(default)]
    amount: i64,
    #[serde(default)]
    amount_received: Option<i64>,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    last_payment_error: Option<PaymentErrorObject>,
}

#[derive(Deserialize, Default)]
struct Metadata {
    order_id: Option<String>,
}

#[derive(Deserialize)]
struct PaymentErrorObject {
    message: Option<String>,
    code: Option<String>,
}

impl StripeEvent {
    fn notice(&self) -> Option<PaymentNotice> {
        let intent = &self.data.object;
        let outcome = match self.kind.as_str() {
            "payment_intent.succeeded" => NoticeOutcome::Succeeded {
                amount: intent.amount_received.unwrap_or(intent.amount),
                currency: intent.currency.clone(),
            },
            "payment_intent.payment_failed" => NoticeOutcome::Failed {
                reason: intent
                    .last_payment_error
                    .as_ref()
                    .and_then(|e| e.message.clone().or_else(|| e.code.clone()))
                    .unwrap_or_else(|| "the payment failed".into()),
            },
            _ => return None,
        };
        Some(PaymentNotice {
            event_id: self.id.clone(),
            intent_id: intent.id.clone(),
            outcome,
            at: OffsetDateTime::from_unix_timestamp(self.created)
                .unwrap_or_else(|_| OffsetDateTime::now_utc()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, t: i64, body: &[u8]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        let mut signed = format!("{t}.").into_bytes();
        signed.extend_from_slice(body);
        hmac::sign(&key, &signed)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn a_signature_over_the_body_within_the_tolerance_verifies() {
        let body = br#"{"id":"evt_1"}"#;
        let now = 1_800_000_000;
        let good = sign("whsec_test", now - 10, body);
        let header = format!("t={},v1={good}", now - 10);
        assert_eq!(
            verify_signature("whsec_test", Some(&header), body, now),
            Ok(())
        );
        // Any of several v1 signatures (a secret being rolled) will do.
        let header = format!("t={},v1={},v1={good},v0=abc", now - 10, "00".repeat(32));
        assert_eq!(
            verify_signature("whsec_test", Some(&header), body, now),
            Ok(())
        );
    }

    #[test]
    fn forged_stale_missing_and_malformed_signatures_are_refused() {
        let body = br#"{"id":"evt_1"}"#;
        let now = 1_800_000_000;
        let refused = |header: Option<&str>, body: &[u8]| {
            verify_signature("whsec_test", header, body, now).is_err()
        };
        assert!(refused(None, body));
        assert!(refused(Some(""), body));
        assert!(refused(Some(&format!("t={now}")), body));
        // Another secret's signature, a changed body, a stale or future timestamp.
        let other = sign("whsec_other", now, body);
        assert!(refused(Some(&format!("t={now},v1={other}")), body));
        let good = sign("whsec_test", now, body);
        assert!(refused(
            Some(&format!("t={now},v1={good}")),
            br#"{"id":"evt_2"}"#
        ));
        let stale = now - SIGNATURE_TOLERANCE_SECONDS - 1;
        let old = sign("whsec_test", stale, body);
        assert!(refused(Some(&format!("t={stale},v1={old}")), body));
        let future = now + SIGNATURE_TOLERANCE_SECONDS + 1;
        let ahead = sign("whsec_test", future, body);
        assert!(refused(Some(&format!("t={future},v1={ahead}")), body));
        assert!(refused(Some(&format!("t={now},v1=zz{}", &good[2..])), body));
        assert!(refused(Some(&format!("t={now},v1={}", &good[1..])), body));
    }

    /// Issue 23, defect 5: a timestamp far in the past is refused, not an overflow
    /// (a panic in debug builds), and a header with more candidates than Stripe ever
    /// sends is refused before any HMAC, even when one of them is good.
    #[test]
    fn extreme_timestamps_and_floods_of_candidates_are_refused() {
        let body = br#"{"id":"evt_1"}"#;
        let now = 1_800_000_000;
        for t in [i64::MIN, i64::MIN + 1, i64::MAX] {
            let header = format!("t={t},v1={}", "00".repeat(32));
            assert!(verify_signature("whsec_test", Some(&header), body, now).is_err());
        }
        let good = sign("whsec_test", now, body);
        let junk = format!(",v1={}", "ab".repeat(32)).repeat(MAX_SIGNATURES);
        let flood = format!("t={now}{junk},v1={good}");
        assert_eq!(
            verify_signature("whsec_test", Some(&flood), body, now),
            Err(format!(
                "Stripe-Signature has more than {MAX_SIGNATURES} v1 signatures"
            ))
        );
        // Up to the cap, the good one among them is found.
        let junk = format!(",v1={}", "ab".repeat(32)).repeat(MAX_SIGNATURES - 1);
        let header = format!("t={now}{junk},v1={good}");
        assert_eq!(
            verify_signature("whsec_test", Some(&header), body, now),
            Ok(())
        );
    }
}
