//! The message log: one item per (event, channel), claimed before the message is
//! sent and marked sent after (`docs/data-design.md`, "Message claims").

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use time::OffsetDateTime;

use super::order_item::{Item, PK, SK, n, s};
use crate::adapters::aws::store_error;
use crate::domain::notification::Channel;
use crate::domain::time::timestamp;
use crate::ports::{Claim, ClaimToken, MessageLog, StoreError};

const STATE_CLAIMED: &str = "claimed";
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

fn millis(at: OffsetDateTime) -> i128 {
    at.unix_timestamp_nanos() / 1_000_000
}

fn expires_at(from: OffsetDateTime) -> aws_sdk_dynamodb::types::AttributeValue {
    n((from + KEEP_FOR).unix_timestamp())
}

#[async_trait]
impl MessageLog for DynamoMessageLog {
    async fn claim(
        &self,
        event_id: &str,
        channel: Channel,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Claim, StoreError> {
        let mut bytes = [0u8; 16];
        aws_lc_rs::rand::fill(&mut bytes)
            .map_err(|_| StoreError::Other("no randomness for a claim".into()))?;
        let token = ClaimToken(bytes.iter().map(|b| format!("{b:02x}")).collect());
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(event_id, channel)))
            .update_expression(
                "SET #state = :claimed, claim = :token, lease_until = :until, \
                 event_id = :event, channel = :channel, expires_at = :expires",
            )
            // Free, or claimed by an attempt whose lease ran out (it crashed). A sent
            // message is never claimed again.
            .condition_expression(
                "attribute_not_exists(PK) OR (#state = :claimed AND lease_until < :now)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":claimed", s(STATE_CLAIMED))
            .expression_attribute_values(":token", s(&token.0))
            .expression_attribute_values(":until", n(millis(lease_until)))
            .expression_attribute_values(":now", n(millis(now)))
            .expression_attribute_values(":event", s(event_id))
            .expression_attribute_values(":channel", s(channel.as_str()))
            .expression_attribute_values(":expires", expires_at(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Claimed(token)),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(e)) => {
                    let state = e.item().and_then(|item| item.get("state"));
                    Ok(match state.and_then(|v| v.as_s().ok()) {
                        Some(state) if state == STATE_CLAIMED => Claim::Held,
                        _ => Claim::Delivered,
                    })
                }
                _ => Err(store_error(err)),
            },
        }
    }

    async fn release(
        &self,
        event_id: &str,
        channel: Channel,
        claim: &ClaimToken,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(event_id, channel)))
            .condition_expression("#state = :claimed AND claim = :token")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":claimed", s(STATE_CLAIMED))
            .expression_attribute_values(":token", s(&claim.0))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => match err.as_service_error() {
                // Its lease ran out and another attempt holds it now.
                Some(DeleteItemError::ConditionalCheckFailedException(_)) => Ok(()),
                _ => Err(store_error(err)),
            },
        }
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
        // Unconditional: it replaces the claim, and a second mark is the same fact.
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
