//! Outbound webhooks: admins subscribe a URL to event types; every order event is
//! then POSTed, signed per Standard Webhooks, to each enabled subscription that
//! wants it (see `pipeline::webhooks` for the deliverer).
//!
//! Read top-down:
//! - this file: a subscription, a delivery attempt, the payload, and the ports;
//! - [`service`]: the subscription API's use cases;
//! - [`signature`]: secrets and signatures;
//! - [`target`]: which URLs and addresses may receive webhooks.
//!
//! Items live in the orders table (`adapters::webhook_table`): a subscription at
//! `WEBHOOK#<id>`/`WEBHOOK`, beside its attempts and delivered markers.

pub mod service;
pub mod signature;
pub mod target;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;

use crate::events::{Envelope, OrderEvent, SHIPPING_STATUS_CHANGED};
use crate::ports::{PagePosition, StoreError};
pub use service::{SubscriptionInput, WebhookError, WebhookService};
pub use signature::Secret;
pub use target::TargetPolicy;

/// The event types a subscription may ask for (the events' `detail-type`s).
pub const EVENT_TYPES: [&str; 6] = [
    "order.created",
    "order.confirmed",
    "order.shipped",
    "order.delivered",
    "order.cancelled",
    SHIPPING_STATUS_CHANGED,
];

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
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| signature::SecretError::Random)?;
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
    pub secret: Secret,
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptPage {
    pub attempts: Vec<Attempt>,
    pub next: Option<PagePosition>,
}

/// The body every receiver gets, in the Standard Webhooks payload shape: the event
/// type, when it happened, and the event (`OrderEvent`) as `data`.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub timestamp: &'a str,
    pub data: &'a OrderEvent,
}

impl<'a> Payload<'a> {
    pub fn of(envelope: &'a Envelope) -> Payload<'a> {
        Payload {
            kind: &envelope.detail_type,
            timestamp: &envelope.detail.occurred_at,
            data: &envelope.detail,
        }
    }
}

/// Where subscriptions, attempts and delivered markers are kept.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Stores a new subscription (its id is fresh, so it cannot exist).
    async fn create(&self, subscription: &Subscription) -> Result<(), StoreError>;

    async fn get(&self, id: &WebhookId) -> Result<Option<Subscription>, StoreError>;

    /// Every subscription, newest first.
    async fn list(&self) -> Result<Vec<Subscription>, StoreError>;

    /// Removes a subscription; `false` when there was none.
    async fn delete(&self, id: &WebhookId) -> Result<bool, StoreError>;

    /// Stops deliveries to a subscription (a deleted one stays deleted).
    async fn disable(
        &self,
        id: &WebhookId,
        at: OffsetDateTime,
        reason: &str,
    ) -> Result<(), StoreError>;

    async fn record_attempt(&self, attempt: &Attempt) -> Result<(), StoreError>;

    /// A subscription's attempts, newest first. `None` when the subscription does not
    /// exist, which only the first page can tell (later pages start past it).
    async fn attempts(
        &self,
        id: &WebhookId,
        limit: usize,
        after: Option<&PagePosition>,
    ) -> Result<Option<AttemptPage>, StoreError>;

    /// Whether `event_id` already reached this subscription.
    async fn was_delivered(&self, id: &WebhookId, event_id: &str) -> Result<bool, StoreError>;

    /// Remembers that `event_id` reached this subscription (idempotent).
    async fn mark_delivered(
        &self,
        id: &WebhookId,
        event_id: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;
}

/// One signed POST, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// What became of a POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// The receiver answered (any status; redirects are not followed).
    Answered {
        status: u16,
        /// From `Retry-After` (in seconds), when the receiver asks for a pause.
        retry_after: Option<Duration>,
    },
    /// No answer: refused target, DNS, connection, TLS or timeout.
    Failed(String),
}

/// Sends webhooks over HTTP (`adapters::webhook_sender`).
#[async_trait]
pub trait WebhookSender: Send + Sync {
    async fn send(&self, request: &Outgoing) -> Sent;
}

/// Keeps a received queue message hidden for a while, so that its next attempt
/// comes later (`adapters::webhook_queue`).
#[async_trait]
pub trait RetryDelay: Send + Sync {
    /// `queue_arn` is the message's `eventSourceARN`.
    async fn postpone(
        &self,
        queue_arn: Option<&str>,
        receipt_handle: &str,
        delay: Duration,
    ) -> Result<(), String>;
}
