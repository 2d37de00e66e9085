//! `PaymentGateway` over Stripe's HTTP API: form-encoded requests, `Authorization:
//! Bearer sk_…`, an `Idempotency-Key` on every create, JSON answers read with a bound.
//! Locally the same client talks to localstripe (`STRIPE_API_BASE`).

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use super::body::read_limited;
use crate::adapters::secrets::{KeyedSendError, ProviderKey, send_with_key};
use crate::domain::{Money, OrderId};
use crate::ports::{CancelOutcome, CreatedIntent, PaymentError, PaymentGateway};

pub const STRIPE_DEFAULT_URL: &str = "https://api.stripe.com";

/// Stripe's objects are a few KiB; anything past this is not an answer to us.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

pub struct StripeGateway {
    http: reqwest::Client,
    base: Url,
    /// `sk_…`, or a restricted `rk_…` where the function only refunds.
    secret_key: ProviderKey,
}

impl StripeGateway {
    pub fn new(base_url: &str, secret_key: impl Into<ProviderKey>) -> Result<Self, String> {
        let base = Url::parse(base_url).map_err(|e| e.to_string())?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err("must be an http(s) URL".into());
        }
        let http = super::tls::http_client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(2))
            // Inside an API call: a checkout waits on it, so fail early and answer 503.
            .timeout(Duration::from_secs(8))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(StripeGateway {
            http,
            base,
            secret_key: secret_key.into(),
        })
    }

    fn url(&self, path: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(path);
        }
        url
    }

    async fn get<T: for<'de> Deserialize<'de>>(
        &self,
        path: &[&str],
        query: &[(&str, &str)],
    ) -> Result<T, Answer> {
        let mut url = self.url(path);
        url.query_pairs_mut().extend_pairs(query);
        let sent = send_with_key(&self.secret_key, |key| {
            self.http.get(url.clone()).bearer_auth(key)
        })
        .await;
        Self::answer(sent).await
    }

    async fn post<T: for<'de> Deserialize<'de>>(
        &self,
        path: &[&str],
        form: &[(&str, String)],
        idempotency_key: Option<&str>,
    ) -> Result<T, Answer> {
        let url = self.url(path);
        // The same idempotency key on a retry after a 401: Stripe made nothing then.
        let sent = send_with_key(&self.secret_key, |key| {
            let request = self.http.post(url.clone()).bearer_auth(key).form(form);
            match idempotency_key {
                Some(idempotency_key) => request.header("idempotency-key", idempotency_key),
                None => request,
            }
        })
        .await;
        Self::answer(sent).await
    }

    async fn answer<T: for<'de> Deserialize<'de>>(
        sent: Result<reqwest::Response, KeyedSendError>,
    ) -> Result<T, Answer> {
        let response = sent.map_err(|e| Answer::Unavailable(e.to_string()))?;
        let status = response.status();
        let body = read_limited(response, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| Answer::Unavailable(e.to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map_err(|e| Answer::Unavailable(format!("unreadable answer: {e}")));
        }
        let message = serde_json::from_slice::<ErrorBody>(&body)
            .ok()
            .and_then(|b| b.error.message)
            .unwrap_or_else(|| format!("answered {status}"));
        // 409: a concurrent request with the same idempotency key is still running.
        if super::retry_later(status) || status == StatusCode::CONFLICT {
            return Err(Answer::Unavailable(message));
        }
        Err(Answer::Refused(status, message))
    }
}

/// How a request went wrong, before each operation says what that means.
enum Answer {
    Unavailable(String),
    Refused(StatusCode, String),
}

impl From<Answer> for PaymentError {
    fn from(answer: Answer) -> Self {
        match answer {
            Answer::Unavailable(why) => PaymentError::Unavailable(why),
            Answer::Refused(status, why) => PaymentError::Refused(format!("{status}: {why}")),
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    message: Option<String>,
}

#[derive(Deserialize)]
struct IntentBody {
    id: String,
    client_secret: Option<String>,
}

#[derive(Deserialize)]
struct RefundBody {
    id: String,
    #[serde(default)]
    metadata: std::collections::HashMap<String, String>,
}

#[derive(Deserialize)]
struct RefundList {
    data: Vec<RefundBody>,
    #[serde(default)]
    has_more: bool,
}

/// Pages of refunds read for one intent at most: an order has a handful of refunds.
const MAX_REFUND_PAGES: usize = 10;

#[async_trait]
impl PaymentGateway for StripeGateway {
    async fn create_intent(
        &self,
        order_id: &OrderId,
        amount: &Money,
        idempotency_key: &str,
    ) -> Result<CreatedIntent, PaymentError> {
        let form = [
            ("amount", amount.minor().to_string()),
            ("currency", amount.currency().code().to_ascii_lowercase()),
            ("metadata[order_id]", order_id.to_string()),
        ];
        let intent: IntentBody = self
            .post(&["v1", "payment_intents"], &form, Some(idempotency_key))
            .await?;
        Ok(CreatedIntent {
            client_secret: intent.client_secret.ok_or_else(|| {
                PaymentError::Unavailable("the intent came without a client secret".into())
            })?,
            intent_id: intent.id,
        })
    }

    async fn cancel_intent(&self, intent_id: &str) -> Result<CancelOutcome, PaymentError> {
        let answer = self
            .post::<IntentBody>(&["v1", "payment_intents", intent_id, "cancel"], &[], None)
            .await;
        match answer {
            Ok(_) => Ok(CancelOutcome::Cancelled),
            // `payment_intent_unexpected_state` (succeeded, processing, canceled) or no
            // such intent: there is nothing left to cancel.
            Err(Answer::Refused(StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND, _)) => {
                Ok(CancelOutcome::NotCancellable)
            }
            Err(other) => Err(other.into()),
        }
    }

    async fn refund(
        &self,
        intent_id: &str,
        amount: &Money,
        idempotency_key: &str,
    ) -> Result<String, PaymentError> {
        let form = [
            ("payment_intent", intent_id.to_string()),
            ("amount", amount.minor().to_string()),
            ("metadata[refund_key]", idempotency_key.to_string()),
        ];
        let refund: RefundBody = self
            .post(&["v1", "refunds"], &form, Some(idempotency_key))
            .await?;
        Ok(refund.id)
    }

    async fn find_refund(
        &self,
        intent_id: &str,
        idempotency_key: &str,
    ) -> Result<Option<String>, PaymentError> {
        // Stripe has no search of refunds: list the intent's (newest first), page by
        // page, and match the key `refund` writes into the metadata.
        let mut after: Option<String> = None;
        for _ in 0..MAX_REFUND_PAGES {
            let mut query = vec![("payment_intent", intent_id), ("limit", "100")];
            if let Some(last) = &after {
                query.push(("starting_after", last));
            }
            let page: RefundList = self.get(&["v1", "refunds"], &query).await?;
            if let Some(found) = page
                .data
                .iter()
                .find(|r| r.metadata.get("refund_key").map(String::as_str) == Some(idempotency_key))
            {
                return Ok(Some(found.id.clone()));
            }
            match page.data.last() {
                Some(last) if page.has_more => after = Some(last.id.clone()),
                _ => return Ok(None),
            }
        }
        Err(PaymentError::Unavailable(format!(
            "more than {MAX_REFUND_PAGES} pages of refunds for {intent_id}"
        )))
    }
}

/// The gateway of the functions that are given no Stripe key because they never call
/// Stripe (`stripe-webhook` records notices, `expire-orders` cancels orders and leaves
/// their intents to `settle-payments`). A call reaching it is a wiring mistake: it is
/// refused as unavailable, naming the missing key, and nothing is asked of Stripe.
pub struct KeylessGateway;

impl KeylessGateway {
    fn refused<T>() -> Result<T, PaymentError> {
        Err(PaymentError::Unavailable(
            "this function is given no Stripe key (STRIPE_SECRET_KEY_ARN)".into(),
        ))
    }
}

#[async_trait]
impl PaymentGateway for KeylessGateway {
    async fn create_intent(
        &self,
        _: &OrderId,
        _: &Money,
        _: &str,
    ) -> Result<CreatedIntent, PaymentError> {
        Self::refused()
    }

    async fn cancel_intent(&self, _: &str) -> Result<CancelOutcome, PaymentError> {
        Self::refused()
    }

    async fn refund(&self, _: &str, _: &Money, _: &str) -> Result<String, PaymentError> {
        Self::refused()
    }

    async fn find_refund(&self, _: &str, _: &str) -> Result<Option<String>, PaymentError> {
        Self::refused()
    }
}
