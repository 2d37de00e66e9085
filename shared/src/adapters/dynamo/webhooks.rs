//! `WebhookStore` on the orders table. One partition per subscription:
//!
//! | item | `PK` | `SK` | notes |
//! | --- | --- | --- | --- |
//! | subscription | `WEBHOOK#<id>` | `WEBHOOK` | `entity = "webhook"` and `created_key`, so `by_created` lists them newest first |
//! | attempt | `WEBHOOK#<id>` | `DELIVERY#<at>#<event_id>#<attempt>` | sorts by time; expires after 30 days |
//! | claim, then delivered marker | `WEBHOOK#<id>` | `DELIVERED#<event_id>` | `state` `claimed` (with `claim` and `lease_until`, ms) while one attempt sends, `delivered` after a 2xx; makes concurrent and redelivered events no-ops; expires after 30 days |
//!
//! None of these items has `user_id` or `status`, so none is in the order indexes.
//!
//! With a [`SecretSeal`] (`WEBHOOK_SECRETS_KEY_ID`), a new subscription's secret is
//! stored sealed by KMS (`secret_sealed`, binary) and never as text; it is opened on
//! reading only by a store that may open it (the deliverer's). Subscriptions stored
//! before, with a plain `secret`, are read as they are.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::claims;
use super::order_item::{Item, PK, SK, n, s};
use crate::adapters::aws::store_error;
use crate::adapters::kms::SecretSeal;
use crate::domain::time::timestamp;
use crate::domain::webhook::{Attempt, Outcome, Secret, Subscription, WebhookId};
use crate::ports::{AttemptPage, Claim, ClaimToken, PagePosition, StoreError, WebhookStore};

/// The partition key of an item, as text.
fn pk_of(item: &Item) -> Option<String> {
    item.get("PK").and_then(|v| v.as_s().ok()).cloned()
}

/// Marks subscription items; `by_created` is keyed on it.
pub const ENTITY_WEBHOOK: &str = "webhook";
const SUBSCRIPTION_SK: &str = "WEBHOOK";
const ATTEMPT_PREFIX: &str = "DELIVERY#";
const DELIVERED_PREFIX: &str = "DELIVERED#";
const STATE_DELIVERED: &str = "delivered";
/// Sorts after every attempt's key and before the subscription's.
const ATTEMPT_UPPER_BOUND: &str = "DELIVERY$";
/// Attempts stay listable this long; markers outlive any retry of their message.
const KEEP_FOR: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The sealed secret's attribute (KMS ciphertext).
const SEALED_SECRET: &str = "secret_sealed";

#[derive(Clone)]
pub struct DynamoWebhookStore {
    client: Client,
    table: String,
    seal: Option<Arc<SecretSeal>>,
}

impl DynamoWebhookStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoWebhookStore {
            client,
            table: table.into(),
            seal: None,
        }
    }

    /// New secrets are stored sealed; read ones are opened if `seal` may open them.
    pub fn with_seal(mut self, seal: Arc<SecretSeal>) -> Self {
        self.seal = Some(seal);
        self
    }

    /// The subscription `item` holds, its sealed secret opened when this store may.
    async fn subscription(&self, item: &Item) -> Result<Subscription, StoreError> {
        let mut subscription = subscription_from_item(item)?;
        if subscription.secret.is_none()
            && let Some(seal) = self.seal.as_ref().filter(|seal| seal.may_open())
        {
            let sealed = item
                .get(SEALED_SECRET)
                .and_then(|v| v.as_b().ok())
                .ok_or_else(|| corrupt("secret", "neither plain nor sealed"))?;
            subscription.secret = Some(seal.open(&subscription.id, sealed.as_ref()).await?);
        }
        Ok(subscription)
    }
}

fn partition(id: &WebhookId) -> AttributeValue {
    s(format!("WEBHOOK#{id}"))
}

fn key(id: &WebhookId, sort: impl Into<String>) -> Item {
    HashMap::from([(PK.into(), partition(id)), (SK.into(), s(sort))])
}

fn expires_at(from: OffsetDateTime) -> AttributeValue {
    n((from + KEEP_FOR).unix_timestamp())
}

#[async_trait]
impl WebhookStore for DynamoWebhookStore {
    async fn create(&self, subscription: &Subscription) -> Result<(), StoreError> {
        let mut item = subscription_to_item(subscription);
        if let (Some(seal), Some(secret)) = (&self.seal, &subscription.secret) {
            let sealed = seal.seal(&subscription.id, secret).await?;
            item.remove("secret");
            item.insert(SEALED_SECRET.into(), AttributeValue::B(sealed.into()));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn get(&self, id: &WebhookId) -> Result<Option<Subscription>, StoreError> {
        match crate::adapters::aws::read_item(&self.client, &self.table, key(id, SUBSCRIPTION_SK))
            .await?
        {
            Some(item) => Ok(Some(self.subscription(&item).await?)),
            None => Ok(None),
        }
    }

    /// `by_created` holds keys only: one Query for the subscriptions' keys, newest
    /// first, then one `BatchGetItem` (per 100) for the subscriptions themselves.
    async fn list(&self) -> Result<Vec<Subscription>, StoreError> {
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("by_created")
                .key_condition_expression("entity = :entity")
                .expression_attribute_values(":entity", s(ENTITY_WEBHOOK))
                .scan_index_forward(false)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(store_error)?;
            keys.extend(output.items().iter().map(|item| {
                item.iter()
                    .filter(|(name, _)| *name == "PK" || *name == "SK")
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect::<Item>()
            }));
            match output.last_evaluated_key {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        let order: Vec<Option<String>> = keys.iter().map(pk_of).collect();
        let mut found: HashMap<String, Item> =
            crate::adapters::aws::read_items(&self.client, &self.table, keys, false)
                .await?
                .into_iter()
                .filter_map(|item| Some((pk_of(&item)?, item)))
                .collect();
        let mut subscriptions = Vec::with_capacity(found.len());
        // Deleted since the index was read: left off.
        for item in order
            .into_iter()
            .flatten()
            .filter_map(|pk| found.remove(&pk))
        {
            subscriptions.push(self.subscription(&item).await?);
        }
        Ok(subscriptions)
    }

    async fn delete(&self, id: &WebhookId) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(id, SUBSCRIPTION_SK)))
            .condition_expression("attribute_exists(PK)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => match err.as_service_error() {
                Some(DeleteItemError::ConditionalCheckFailedException(_)) => Ok(false),
                _ => Err(store_error(err)),
            },
        }
    }

    async fn disable(
        &self,
        id: &WebhookId,
        at: OffsetDateTime,
        reason: &str,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(id, SUBSCRIPTION_SK)))
            .update_expression("SET enabled = :no, disabled_at = :at, disabled_reason = :why")
            // Deleted meanwhile: it stays deleted rather than coming back half-written.
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .expression_attribute_values(":at", s(timestamp(at)))
            .expression_attribute_values(":why", s(reason))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(()),
                _ => Err(store_error(err)),
            },
        }
    }

    async fn record_attempt(&self, attempt: &Attempt) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attempt_to_item(attempt)))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn attempts(
        &self,
        id: &WebhookId,
        limit: usize,
        after: Option<&PagePosition>,
    ) -> Result<Option<AttemptPage>, StoreError> {
        let start = match after {
            Some(PagePosition(sort)) if sort.starts_with(ATTEMPT_PREFIX) => {
                Some(key(id, sort.clone()))
            }
            Some(_) => return Err(StoreError::BadPosition),
            None => None,
        };
        // Newest first, so read the partition backwards. The first page starts at the
        // subscription item, which sorts just above the attempts: one Query tells a
        // missing webhook from one without attempts. One item past the page proves that
        // another page exists.
        let first_page = start.is_none();
        let (upper, extra) = if first_page {
            (SUBSCRIPTION_SK, 2)
        } else {
            (ATTEMPT_UPPER_BOUND, 1)
        };
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND SK BETWEEN :attempts AND :upper")
            .expression_attribute_values(":pk", partition(id))
            .expression_attribute_values(":attempts", s(ATTEMPT_PREFIX))
            .expression_attribute_values(":upper", s(upper))
            .scan_index_forward(false)
            .limit(i32::try_from(limit + extra).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(store_error)?;
        let mut items = output.items();
        if first_page {
            match items.split_first() {
                Some((subscription, rest)) if text(subscription, SK)? == SUBSCRIPTION_SK => {
                    items = rest;
                }
                _ => return Ok(None),
            }
        }
        let more = items.len() > limit || output.last_evaluated_key.is_some();
        let items = &items[..items.len().min(limit)];
        let attempts = items
            .iter()
            .map(attempt_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        let next = match items.last() {
            Some(last) if more => Some(PagePosition(text(last, SK)?.to_string())),
            _ => None,
        };
        Ok(Some(AttemptPage { attempts, next }))
    }

    async fn claim(
        &self,
        id: &WebhookId,
        event_id: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Claim, StoreError> {
        claims::claim(
            &self.client,
            &self.table,
            key(id, format!("{DELIVERED_PREFIX}{event_id}")),
            &[("event_id", s(event_id)), ("expires_at", expires_at(now))],
            now,
            lease_until,
        )
        .await
    }

    async fn release(
        &self,
        id: &WebhookId,
        event_id: &str,
        claim: &ClaimToken,
    ) -> Result<(), StoreError> {
        // Delivered meanwhile, or the lease ran out and another claimed it: left alone.
        claims::release(
            &self.client,
            &self.table,
            key(id, format!("{DELIVERED_PREFIX}{event_id}")),
            claim,
        )
        .await
    }

    async fn mark_delivered(
        &self,
        id: &WebhookId,
        event_id: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut item = key(id, format!("{DELIVERED_PREFIX}{event_id}"));
        item.insert("state".into(), s(STATE_DELIVERED));
        item.insert("event_id".into(), s(event_id));
        item.insert("at".into(), s(timestamp(at)));
        item.insert("expires_at".into(), expires_at(at));
        claims::record_done(&self.client, &self.table, item).await
    }
}

pub fn subscription_to_item(subscription: &Subscription) -> Item {
    let id = &subscription.id;
    let created_at = timestamp(subscription.created_at);
    let mut item = key(id, SUBSCRIPTION_SK);
    item.insert("entity".into(), s(ENTITY_WEBHOOK));
    item.insert("created_key".into(), s(format!("{created_at}#{id}")));
    item.insert("webhook_id".into(), s(id.as_str()));
    item.insert("url".into(), s(&subscription.url));
    item.insert(
        "events".into(),
        AttributeValue::L(subscription.events.iter().map(s).collect()),
    );
    if let Some(description) = &subscription.description {
        item.insert("description".into(), s(description));
    }
    if let Some(secret) = &subscription.secret {
        item.insert("secret".into(), s(secret.reveal()));
    }
    item.insert("enabled".into(), AttributeValue::Bool(subscription.enabled));
    item.insert("created_at".into(), s(created_at));
    if let Some(at) = subscription.disabled_at {
        item.insert("disabled_at".into(), s(timestamp(at)));
    }
    if let Some(reason) = &subscription.disabled_reason {
        item.insert("disabled_reason".into(), s(reason));
    }
    item
}

pub fn subscription_from_item(item: &Item) -> Result<Subscription, StoreError> {
    let events = item
        .get("events")
        .and_then(|v| v.as_l().ok())
        .ok_or_else(|| corrupt("events", "not a list"))?
        .iter()
        .map(|v| {
            v.as_s()
                .cloned()
                .map_err(|_| corrupt("events", "not strings"))
        })
        .collect::<Result<_, _>>()?;
    Ok(Subscription {
        id: WebhookId::parse(text(item, "webhook_id")?)
            .ok_or_else(|| corrupt("webhook_id", "malformed"))?,
        url: text(item, "url")?.to_string(),
        events,
        description: optional(item, "description")?,
        // Sealed secrets are left to `DynamoWebhookStore::subscription`.
        secret: optional(item, "secret")?
            .map(|text| Secret::parse(&text).map_err(|_| corrupt("secret", "malformed")))
            .transpose()?,
        enabled: *item
            .get("enabled")
            .and_then(|v| v.as_bool().ok())
            .ok_or_else(|| corrupt("enabled", "not a boolean"))?,
        created_at: time(item, "created_at")?,
        disabled_at: optional(item, "disabled_at")?
            .map(|t| parse_time("disabled_at", &t))
            .transpose()?,
        disabled_reason: optional(item, "disabled_reason")?,
    })
}

pub fn attempt_to_item(attempt: &Attempt) -> Item {
    let at = timestamp(attempt.at);
    let sort = format!(
        "{ATTEMPT_PREFIX}{at}#{}#{:04}",
        attempt.event_id, attempt.attempt
    );
    let mut item = key(&attempt.webhook_id, sort);
    item.insert("event_id".into(), s(&attempt.event_id));
    item.insert("event_type".into(), s(&attempt.event_type));
    item.insert("attempt".into(), n(attempt.attempt));
    item.insert("at".into(), s(at));
    item.insert("duration_ms".into(), n(attempt.duration_ms));
    if let Some(code) = attempt.status_code {
        item.insert("status_code".into(), n(code));
    }
    if let Some(error) = &attempt.error {
        item.insert("error".into(), s(error));
    }
    item.insert("outcome".into(), s(attempt.outcome.as_str()));
    item.insert("expires_at".into(), expires_at(attempt.at));
    item
}

pub fn attempt_from_item(item: &Item) -> Result<Attempt, StoreError> {
    let webhook_id = text(item, PK)?
        .strip_prefix("WEBHOOK#")
        .and_then(WebhookId::parse)
        .ok_or_else(|| corrupt(PK, "not a webhook partition"))?;
    Ok(Attempt {
        webhook_id,
        event_id: text(item, "event_id")?.to_string(),
        event_type: text(item, "event_type")?.to_string(),
        attempt: number(item, "attempt")?,
        at: time(item, "at")?,
        duration_ms: number(item, "duration_ms")?,
        status_code: item
            .contains_key("status_code")
            .then(|| number(item, "status_code"))
            .transpose()?,
        error: optional(item, "error")?,
        outcome: Outcome::parse(text(item, "outcome")?)
            .ok_or_else(|| corrupt("outcome", "unknown value"))?,
    })
}

fn corrupt(field: &str, why: &str) -> StoreError {
    StoreError::Corrupt(format!("webhook item {field}: {why}"))
}

fn text<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| corrupt(name, "missing or not a string"))
}

fn optional(item: &Item, name: &str) -> Result<Option<String>, StoreError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(_) => text(item, name).map(|t| Some(t.to_string())),
    }
}

fn number<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| corrupt(name, "missing or not a number"))
}

fn time(item: &Item, name: &str) -> Result<OffsetDateTime, StoreError> {
    parse_time(name, text(item, name)?)
}

fn parse_time(name: &str, value: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(value, &Rfc3339).map_err(|_| corrupt(name, "not a time"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn items_read_back_as_written() {
        let subscription = Subscription {
            id: WebhookId::generate().unwrap(),
            url: "https://hooks.example.com/orders".into(),
            events: vec!["order.created".into(), "order.shipped".into()],
            description: Some("ERP".into()),
            secret: Some(Secret::generate().unwrap()),
            enabled: false,
            created_at: datetime!(2026-11-25 20:31:00.5 UTC),
            disabled_at: Some(datetime!(2026-11-26 08:00:00 UTC)),
            disabled_reason: Some("410 Gone".into()),
        };
        let item = subscription_to_item(&subscription);
        assert_eq!(subscription_from_item(&item).unwrap(), subscription);
        assert!(!item.contains_key("status") && !item.contains_key("user_id"));

        let attempt = Attempt {
            webhook_id: subscription.id.clone(),
            event_id: "ORD0123456789ABCDEF:2".into(),
            event_type: "order.confirmed".into(),
            attempt: 3,
            at: datetime!(2026-11-25 20:31:00.123 UTC),
            duration_ms: 42,
            status_code: Some(500),
            error: None,
            outcome: Outcome::Failed,
        };
        let item = attempt_to_item(&attempt);
        assert_eq!(attempt_from_item(&item).unwrap(), attempt);
        assert_eq!(
            text(&item, SK).unwrap(),
            "DELIVERY#2026-11-25T20:31:00.123Z#ORD0123456789ABCDEF:2#0003"
        );
    }
}
