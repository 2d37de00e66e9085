//! Outbound webhooks: admins subscribe a URL to event types; every order event is
//! then POSTed, signed per Standard Webhooks, to each enabled subscription that
//! wants it (`services::deliveries` is the deliverer, `services::webhooks` the
//! subscription API).
//!
//! - this file: a subscription and a delivery attempt;
//! - [`signature`]: secrets and signatures;
//! - [`target`]: which URLs and addresses may receive webhooks.
//!
//! Items live in the orders table (`adapters::dynamo::webhooks`): a subscription at
//! `WEBHOOK#<id>`/`WEBHOOK`, beside its attempts and delivered markers.

pub mod signature;
pub mod target;

use std::fmt;

use time::OffsetDateTime;

pub use signature::Secret;
pub use target::TargetPolicy;

/// Subscribes to every event type, including ones added later.
pub const ALL_EVENTS: &str = "*";

/// `wh_` and 24 hex digits (96 random bits).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WebhookId(String);

impl WebhookId {
    const PREFIX: &str = "wh_";
    const HEX_DIGITS: usize = 24;

    pub fn generate() -> Result<WebhookId, signature::SecretError> {
        let mut bytes = [0u8; Self::HEX_DIGITS / 2];
        crate::domain::random::fill(&mut bytes).map_err(|_| signature::SecretError::Random)?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(WebhookId(format!("{}{hex}", Self::PREFIX)))
    }

    /// `None` for anything this service could not have issued, so a junk path
    /// parameter is a 404 without a read.
    pub fn parse(text: &str) -> Option<WebhookId> {
        let hex = text.strip_prefix(Self::PREFIX)?;
        (hex.len() == Self::HEX_DIGITS
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| WebhookId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WebhookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where and what to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: WebhookId,
    pub url: String,
    /// Event types, or [`ALL_EVENTS`] alone.
    pub events: Vec<String>,
    pub description: Option<String>,
    /// The signing secret; `None` when the store read it sealed and this function may
    /// not open it (only the functions that sign or show secrets may).
    pub secret: Option<Secret>,
    /// False once the receiver answered 410 Gone: nothing more is sent.
    pub enabled: bool,
    pub created_at: OffsetDateTime,
    pub disabled_at: Option<OffsetDateTime>,
    pub disabled_reason: Option<String>,
}

impl Subscription {
    /// Whether this subscription gets `event`: it is enabled, asks for the event's type,
    /// and existed when the event happened (a subscription starts from now; a retried
    /// old event does not reach a newer one).
    pub fn wants(&self, detail_type: &str, occurred_at: Option<OffsetDateTime>) -> bool {
        self.enabled
            && self
                .events
                .iter()
                .any(|e| e == ALL_EVENTS || e == detail_type)
            && occurred_at.is_none_or(|at| at >= self.created_at)
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer.
    Delivered,
    /// Anything else: another status (redirects included), a timeout, a refused
    /// target, a connection error. Retried later.
    Failed,
    /// 410 Gone: the subscription was disabled; not retried.
    Gone,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Failed => "failed",
            Outcome::Gone => "gone",
        }
    }

    pub fn parse(text: &str) -> Option<Outcome> {
        [Outcome::Delivered, Outcome::Failed, Outcome::Gone]
            .into_iter()
            .find(|o| o.as_str() == text)
    }
}

/// One delivery attempt of one event to one subscription, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub webhook_id: WebhookId,
    pub event_id: String,
    pub event_type: String,
    /// 1 for the first try; the queue message's receive count.
    pub attempt: u32,
    pub at: OffsetDateTime,
    pub duration_ms: u64,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub outcome: Outcome,
}
