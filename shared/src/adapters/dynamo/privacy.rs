//! Erasure and export on the orders table (`docs/data-design.md`, "Personal data"):
//! an erased order is written in one conditional UpdateItem on the version it was
//! planned from; a customer's erasure job is one item, `ERASURE#<user_id>` / `JOB`,
//! whose saves are conditional on its page count, so that two continuations of one
//! page never both go on.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::order_item::{Item, PK, SK, address_to_value, history_to_value, n, s};
use super::orders::DynamoOrderStore;
use super::return_item::{RETURNS, returns_to_value};
use super::shipment_item::shipments_to_value;
use crate::adapters::aws::{read_item, read_items, store_error};
use crate::domain::notification::Channel;
use crate::domain::privacy::{ErasureJob, ErasureState};
use crate::domain::time::timestamp;
use crate::domain::{Order, OrderId};
use crate::ports::{ChangeOutcome, ErasureStart, MessageRecord, PrivacyStore, StoreError};

/// When the order was erased: what makes a second erasure's write a refusal.
const ERASED_AT: &str = "erased_at";

fn job_key(user_id: &str) -> Item {
    Item::from([
        (PK.into(), s(format!("ERASURE#{user_id}"))),
        (SK.into(), s("JOB")),
    ])
}

fn job_to_item(job: &ErasureJob) -> Item {
    let mut item = job_key(&job.user_id);
    item.insert("job_id".into(), s(&job.job_id));
    item.insert("user_id".into(), s(&job.user_id));
    item.insert("requested_by".into(), s(&job.requested_by));
    item.insert("requested_at".into(), s(timestamp(job.requested_at)));
    item.insert("force".into(), AttributeValue::Bool(job.force));
    item.insert("state".into(), s(job.state.as_str()));
    if let Some(cursor) = &job.cursor {
        item.insert("cursor".into(), s(cursor));
    }
    item.insert("pages".into(), n(job.pages));
    item.insert("erased".into(), n(job.erased));
    item.insert("skipped".into(), n(job.skipped));
    item.insert("forced".into(), n(job.forced));
    item.insert("updated_at".into(), s(timestamp(job.updated_at)));
    if let Some(at) = job.finished_at {
        item.insert("finished_at".into(), s(timestamp(at)));
    }
    item
}

fn corrupt(why: &str) -> StoreError {
    StoreError::Corrupt(format!("erasure job: {why}"))
}

fn job_from_item(item: &Item) -> Result<ErasureJob, StoreError> {
    let text = |name: &str| -> Result<String, StoreError> {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .ok_or_else(|| corrupt(name))
    };
    let number = |name: &str| -> Result<u64, StoreError> {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| corrupt(name))
    };
    let time = |name: &str| -> Result<OffsetDateTime, StoreError> {
        OffsetDateTime::parse(&text(name)?, &Rfc3339).map_err(|_| corrupt(name))
    };
    Ok(ErasureJob {
        job_id: text("job_id")?,
        user_id: text("user_id")?,
        requested_by: text("requested_by")?,
        requested_at: time("requested_at")?,
        force: matches!(item.get("force"), Some(AttributeValue::Bool(true))),
        state: ErasureState::parse(&text("state")?).ok_or_else(|| corrupt("state"))?,
        cursor: item.get("cursor").and_then(|v| v.as_s().ok()).cloned(),
        pages: number("pages")?,
        erased: number("erased")?,
        skipped: number("skipped")?,
        forced: number("forced")?,
        updated_at: time("updated_at")?,
        finished_at: item
            .get("finished_at")
            .map(|_| time("finished_at"))
            .transpose()?,
    })
}

#[async_trait]
impl PrivacyStore for DynamoOrderStore {
    async fn write_erasure(&self, erased: &Order) -> Result<ChangeOutcome, StoreError> {
        let at = erased.updated_at;
        let mut update = vec![
            "shipping_address = :address",
            "history = :history",
            "updated_at = :now",
            "version = :version",
            "erased_at = :now",
        ];
        let mut values = HashMap::from([
            (
                ":address".to_string(),
                address_to_value(&erased.shipping_address),
            ),
            (
                ":history".to_string(),
                AttributeValue::L(erased.history.iter().map(history_to_value).collect()),
            ),
            (":now".to_string(), s(timestamp(at))),
            (":version".to_string(), n(erased.version)),
            (":expected".to_string(), n(erased.version - 1)),
            (":user".to_string(), s(&erased.user_id)),
        ]);
        if !erased.shipments.is_empty() {
            update.push("shipments = :shipments");
            values.insert(":shipments".into(), shipments_to_value(&erased.shipments));
        }
        // `RETURNS` is a reserved word. The returns queue's items hold no free text,
        // so the order's own list is all there is to erase.
        let mut names = HashMap::new();
        if !erased.returns.is_empty() {
            update.push("#returns = :returns");
            values.insert(":returns".into(), returns_to_value(&erased.returns));
            names.insert("#returns".to_string(), RETURNS.to_string());
        }
        let expression = format!(
            "SET {} REMOVE contact_email, contact_email_verified, contact_phone",
            update.join(", ")
        );
        let condition = format!(
            "attribute_exists(PK) AND version = :expected AND user_id = :user AND attribute_not_exists({ERASED_AT})"
        );
        self.update_order(&erased.id, expression, &condition, names, values)
            .await
    }

    async fn erasure_job(&self, user_id: &str) -> Result<Option<ErasureJob>, StoreError> {
        read_item(&self.client, &self.table, job_key(user_id))
            .await?
            .as_ref()
            .map(job_from_item)
            .transpose()
    }

    async fn start_erasure(&self, job: &ErasureJob) -> Result<ErasureStart, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(job_to_item(job)))
            // A finished run may be followed by a new one; a running one is joined.
            .condition_expression("attribute_not_exists(PK) OR #state = :done")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":done", s(ErasureState::Done.as_str()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(ErasureStart::Started),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(e)) => {
                    let item = e
                        .item()
                        .ok_or_else(|| corrupt("refused without the running job"))?;
                    Ok(ErasureStart::Running(job_from_item(item)?))
                }
                _ => Err(store_error(err)),
            },
        }
    }

    async fn save_erasure(
        &self,
        before: &ErasureJob,
        after: &ErasureJob,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(job_to_item(after)))
            .condition_expression("job_id = :job AND #pages = :pages")
            .expression_attribute_names("#pages", "pages")
            .expression_attribute_values(":job", s(&before.job_id))
            .expression_attribute_values(":pages", n(before.pages))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => Ok(false),
                _ => Err(store_error(err)),
            },
        }
    }

    async fn messages(
        &self,
        order: &OrderId,
        version: u64,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let keys: Vec<Item> = (1..=version)
            .flat_map(|v| {
                [Channel::Email, Channel::Sms].map(|channel| {
                    Item::from([
                        (PK.into(), s(format!("MESSAGE#{order}:{v}"))),
                        (SK.into(), s(format!("CHANNEL#{}", channel.as_str()))),
                    ])
                })
            })
            .collect();
        // What stays unprocessed after a few tries fails the export, for a retry.
        let mut records = read_items(&self.client, &self.table, keys, true)
            .await?
            .iter()
            .map(message_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        records.sort_by(|a, b| {
            (&a.event_id, a.channel.as_str()).cmp(&(&b.event_id, b.channel.as_str()))
        });
        Ok(records)
    }
}

fn message_from_item(item: &Item) -> Result<MessageRecord, StoreError> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let channel = match text("channel").as_deref() {
        Some("email") => Channel::Email,
        Some("sms") => Channel::Sms,
        _ => return Err(StoreError::Corrupt("message: channel".into())),
    };
    // Only a sent message has `sent_at` (a claim in flight has a lease instead).
    let sent_at = text("sent_at")
        .map(|t| OffsetDateTime::parse(&t, &Rfc3339))
        .transpose()
        .map_err(|_| StoreError::Corrupt("message: sent_at".into()))?;
    Ok(MessageRecord {
        event_id: text("event_id").unwrap_or_default(),
        channel,
        sent_at,
        provider_id: text("provider_id"),
    })
}
