//! The message log: one item per (event, channel), claimed before the message is
//! sent and marked sent after (`docs/data-design.md`, "Message claims").

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use time::OffsetDateTime;

use super::claims;
use super::order_item::{Item, PK, SK, n, s};
use crate::adapters::aws::store_error;
use crate::domain::notification::Channel;
use crate::domain::time::timestamp;
use crate::ports::{Claim, ClaimToken, MessageLog, StoreError};

const STATE_SENT: &str = "sent";
/// Longer than any redelivery: SQS keeps a message at most 14 days.
const KEEP_FOR: Duration = Duration::from_secs(30 * 24 * 60 * 60);

pub struct DynamoMessageLog {
    client: Client,
    table: String,
}

impl DynamoMessageLog {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoMessageLog {
            client,
            table: table.into(),
        }
    }
}

fn key(event_id: &str, channel: Channel) -> Item {
    Item::from([
        (PK.into(), s(format!("MESSAGE#{event_id}"))),
        (SK.into(), s(format!("CHANNEL#{}", channel.as_str()))),
    ])
}

fn expires_at(from: OffsetDateTime) -> aws_sdk_dynamodb::types::AttributeValue {
    n((from + KEEP_FOR).unix_timestamp())
}

/// The day's counter of one recipient: the address hashed (lower case), so that the
/// table holds no address outside its order.
fn recipient_key(recipient: &str, at: OffsetDateTime) -> Item {
    let digest = ring::digest::digest(&ring::digest::SHA256, recipient.to_lowercase().as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    Item::from([
        (PK.into(), s(format!("RECIPIENT#{hex}"))),
        (SK.into(), s(format!("DAY#{}", at.date()))),
    ])
}

#[async_trait]
impl MessageLog for DynamoMessageLog {
    async fn count_for_recipient(
        &self,
        recipient: &str,
        at: OffsetDateTime,
        cap: u32,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(recipient_key(recipient, at)))
            .update_expression("ADD sent :one SET expires_at = :expires")
            .condition_expression("attribute_not_exists(sent) OR sent < :cap")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":cap", n(cap))
            // Two days: the counter outlives its day, then TTL removes it.
            .expression_attribute_values(":expires", n(at.unix_timestamp() + 2 * 24 * 60 * 60))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(false),
                _ => Err(store_error(err)),
            },
        }
    }

    async fn claim(
        &self,
        event_id: &str,
        channel: Channel,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Claim, StoreError> {
        claims::claim(
            &self.client,
            &self.table,
            key(event_id, channel),
            &[
                ("event_id", s(event_id)),
                ("channel", s(channel.as_str())),
                ("expires_at", expires_at(now)),
            ],
            now,
            lease_until,
        )
        .await
    }

    async fn release(
        &self,
        event_id: &str,
        channel: Channel,
        claim: &ClaimToken,
    ) -> Result<(), StoreError> {
        claims::release(&self.client, &self.table, key(event_id, channel), claim).await
    }

    async fn mark_sent(
        &self,
        event_id: &str,
        channel: Channel,
        at: OffsetDateTime,
        provider_id: &str,
    ) -> Result<(), StoreError> {
        let mut item = key(event_id, channel);
        item.insert("state".into(), s(STATE_SENT));
        item.insert("event_id".into(), s(event_id));
        item.insert("channel".into(), s(channel.as_str()));
        item.insert("sent_at".into(), s(timestamp(at)));
        item.insert("provider_id".into(), s(provider_id));
        item.insert("expires_at".into(), expires_at(at));
        claims::record_done(&self.client, &self.table, item).await
    }
}
