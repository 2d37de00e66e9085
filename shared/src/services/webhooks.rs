//! The subscription API's use cases: admins create, list, read and delete
//! subscriptions and read their delivery attempts.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;

use crate::domain::validation::check_text;
use crate::domain::webhook::signature::{Secret, SecretError};
use crate::domain::webhook::{ALL_EVENTS, Subscription, TargetPolicy, WebhookId};
use crate::domain::{FieldErrors, Principal};
use crate::events::EVENT_TYPES;
use crate::ports::{AttemptPage, PagePosition, StoreError, WebhookStore};

pub const MAX_DESCRIPTION_LEN: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the request is invalid")]
    Invalid(FieldErrors),
    #[error("only the webhooks or admin scope (orders:webhooks, orders:admin) manages webhooks")]
    Forbidden,
    #[error("webhook not found")]
    NotFound,
    #[error("the cursor is not one this API issued for this webhook")]
    BadCursor,
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for WebhookError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::BadPosition => WebhookError::BadCursor,
            other => WebhookError::Store(other),
        }
    }
}

/// A subscription request's fields as they arrived.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionInput {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
}

/// A valid subscription request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscription {
    /// Normalised by the URL parser.
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
}

impl SubscriptionInput {
    /// Checks every field, reporting each problem by field.
    pub fn validate(self, policy: TargetPolicy) -> Result<NewSubscription, FieldErrors> {
        let mut errors = FieldErrors::default();
        let url = match &self.url {
            None => {
                errors.add("url", "is required");
                None
            }
            Some(url) => policy
                .check_url(url.trim())
                .map_err(|why| errors.add("url", why))
                .ok(),
        };
        let events = match self.events {
            None => {
                errors.add("events", "is required: event types, or [\"*\"] for all");
                None
            }
            Some(events) if events.is_empty() => {
                errors.add("events", "must name at least one event type, or \"*\"");
                None
            }
            Some(events) => Some(event_types(&mut errors, events)),
        };
        if let Some(description) = &self.description {
            check_text(&mut errors, "description", description, MAX_DESCRIPTION_LEN);
        }
        match (url, events) {
            (Some(url), Some(events)) if errors.is_empty() => Ok(NewSubscription {
                url: url.to_string(),
                events,
                description: self.description,
            }),
            _ => Err(errors),
        }
    }
}

/// Known types only, without duplicates; `*` stands alone since it covers the rest.
fn event_types(errors: &mut FieldErrors, events: Vec<String>) -> Vec<String> {
    let mut kept: Vec<String> = Vec::new();
    for (i, event) in events.into_iter().enumerate() {
        if event != ALL_EVENTS && !EVENT_TYPES.contains(&event.as_str()) {
            errors.add(
                format!("events[{i}]"),
                format!("must be one of {}, or \"*\"", EVENT_TYPES.join(", ")),
            );
        } else if !kept.contains(&event) {
            kept.push(event);
        }
    }
    if kept.iter().any(|e| e == ALL_EVENTS) {
        kept = vec![ALL_EVENTS.to_string()];
    }
    kept
}

/// A page of attempts, with the cursor of the next one.
#[derive(Debug, Clone)]
pub struct AttemptList {
    pub page: AttemptPage,
    pub next_cursor: Option<String>,
}

pub struct WebhookService {
    store: Arc<dyn WebhookStore>,
    policy: TargetPolicy,
}

impl WebhookService {
    pub fn new(store: Arc<dyn WebhookStore>, policy: TargetPolicy) -> Self {
        WebhookService { store, policy }
    }

    pub fn policy(&self) -> TargetPolicy {
        self.policy
    }

    /// Every use case is for holders of the webhooks (or admin) scope; checked before
    /// the request is read.
    pub fn authorize(&self, caller: &Principal) -> Result<(), WebhookError> {
        if caller.webhooks {
            Ok(())
        } else {
            Err(WebhookError::Forbidden)
        }
    }

    /// Creates a subscription with a fresh id and secret. The secret leaves this
    /// service only here, in the answer to the creation.
    pub async fn create(
        &self,
        caller: &Principal,
        new: NewSubscription,
    ) -> Result<Subscription, WebhookError> {
        self.authorize(caller)?;
        // The URL's form (scheme, port, an address or a local name in it) was checked
        // while validating. Its name is not resolved here: that was a DNS round trip
        // (up to 2 s) on the request path, and a check that proved nothing lasting (a
        // name can point elsewhere tomorrow). The deliverer resolves it on every
        // delivery and refuses a non-public address there, on the very address it
        // would connect to (adapters/http/webhook_sender.rs).
        let subscription = Subscription {
            id: WebhookId::generate()?,
            url: new.url,
            events: new.events,
            description: new.description,
            secret: Some(Secret::generate()?),
            enabled: true,
            created_at: OffsetDateTime::now_utc(),
            disabled_at: None,
            disabled_reason: None,
        };
        self.store.create(&subscription).await?;
        // The host only: a path or query may carry the receiver's token.
        let host = reqwest::Url::parse(&subscription.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        tracing::info!(webhook_id = %subscription.id, %host, actor = %caller.user_id, "webhook subscribed");
        Ok(subscription)
    }

    pub async fn list(&self, caller: &Principal) -> Result<Vec<Subscription>, WebhookError> {
        self.authorize(caller)?;
        Ok(self.store.list().await?)
    }

    pub async fn get(&self, caller: &Principal, id: &str) -> Result<Subscription, WebhookError> {
        self.authorize(caller)?;
        let id = WebhookId::parse(id).ok_or(WebhookError::NotFound)?;
        self.store.get(&id).await?.ok_or(WebhookError::NotFound)
    }

    /// Deliveries stop with the next batch: the deliverer reads subscriptions afresh
    /// for every batch. Recorded attempts stay until they expire.
    pub async fn delete(&self, caller: &Principal, id: &str) -> Result<(), WebhookError> {
        self.authorize(caller)?;
        let id = WebhookId::parse(id).ok_or(WebhookError::NotFound)?;
        if self.store.delete(&id).await? {
            tracing::info!(webhook_id = %id, actor = %caller.user_id, "webhook deleted");
            Ok(())
        } else {
            Err(WebhookError::NotFound)
        }
    }

    /// A subscription's delivery attempts, newest first, a page at a time.
    pub async fn attempts(
        &self,
        caller: &Principal,
        id: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<AttemptList, WebhookError> {
        self.authorize(caller)?;
        let id = WebhookId::parse(id).ok_or(WebhookError::NotFound)?;
        let after = cursor.map(decode_cursor).transpose()?;
        let page = self
            .store
            .attempts(&id, limit, after.as_ref())
            .await?
            .ok_or(WebhookError::NotFound)?;
        let next_cursor = page
            .next
            .as_ref()
            .map(|p| URL_SAFE_NO_PAD.encode(p.0.as_bytes()));
        Ok(AttemptList { page, next_cursor })
    }
}

/// A cursor is the store's position, base64url-encoded. It is bound to its webhook
/// by the store (a position is only ever read within the webhook's own items), so it
/// needs no signature: at worst an admin skips around their own delivery log.
fn decode_cursor(cursor: &str) -> Result<PagePosition, WebhookError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(PagePosition)
        .ok_or(WebhookError::BadCursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(url: &str, events: &[&str]) -> SubscriptionInput {
        SubscriptionInput {
            url: Some(url.into()),
            events: Some(events.iter().map(|e| e.to_string()).collect()),
            description: None,
        }
    }

    fn fields(errors: FieldErrors) -> Vec<String> {
        errors.0.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_valid_request_is_normalised() {
        let new = input(
            "https://Hooks.Example.com/orders",
            &["order.shipped", "order.created", "order.shipped"],
        )
        .validate(TargetPolicy::STRICT)
        .unwrap();
        assert_eq!(new.url, "https://hooks.example.com/orders");
        assert_eq!(new.events, ["order.shipped", "order.created"]);
        let all = input("https://hooks.example.com", &["order.created", "*"])
            .validate(TargetPolicy::STRICT)
            .unwrap();
        assert_eq!(all.events, ["*"]);
    }

    #[test]
    fn every_problem_is_reported_by_field() {
        let mut bad = input("http://hooks.example.com", &["order.created", "order.paid"]);
        bad.description = Some("x".repeat(MAX_DESCRIPTION_LEN + 1));
        let errors = bad.validate(TargetPolicy::STRICT).unwrap_err();
        assert_eq!(fields(errors), ["url", "events[1]", "description"]);
        let errors = SubscriptionInput::default()
            .validate(TargetPolicy::STRICT)
            .unwrap_err();
        assert_eq!(fields(errors), ["url", "events"]);
        let errors = input("https://hooks.example.com", &[])
            .validate(TargetPolicy::STRICT)
            .unwrap_err();
        assert_eq!(fields(errors), ["events"]);
    }

    #[test]
    fn webhook_ids_are_what_this_service_issues() {
        let id = WebhookId::generate().unwrap();
        assert_eq!(WebhookId::parse(id.as_str()), Some(id.clone()));
        assert!(id.as_str().starts_with("wh_"));
        for junk in ["", "wh_", "wh_XYZ", "ORD123", "wh_0123456789abcdef0123456G"] {
            assert_eq!(WebhookId::parse(junk), None, "{junk}");
        }
    }
}
