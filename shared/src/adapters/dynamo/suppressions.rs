//! The suppression list on the orders table: `SUPPRESSION#<SHA-256 of the address,
//! lower case>` / `SUPPRESSION`, so the table holds no address outside its orders; and
//! the history note of a withheld message, one conditional write on the order.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::order_item::{Item, PK, SK, history_to_value, n, s};
use super::orders::DynamoOrderStore;
use crate::adapters::aws::{read_item_with, store_error};
use crate::domain::Order;
use crate::domain::suppression::{Suppression, SuppressionReason};
use crate::domain::time::timestamp;
use crate::ports::{ChangeOutcome, StoreError, Suppressions};

fn key(address: &str) -> Item {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        address.trim().to_lowercase().as_bytes(),
    );
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    Item::from([
        (PK.into(), s(format!("SUPPRESSION#{hex}"))),
        (SK.into(), s("SUPPRESSION")),
    ])
}

#[async_trait]
impl Suppressions for DynamoOrderStore {
    async fn suppress(&self, address: &str, why: &Suppression) -> Result<(), StoreError> {
        let mut item = key(address);
        item.insert("reason".into(), s(why.reason.as_str()));
        item.insert("source".into(), s(&why.source));
        item.insert("suppressed_at".into(), s(timestamp(why.at)));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => match err.as_service_error() {
                // Reported before: the first report stands.
                Some(PutItemError::ConditionalCheckFailedException(_)) => Ok(()),
                _ => Err(store_error(err)),
            },
        }
    }

    async fn suppressed(&self, address: &str) -> Result<Option<Suppression>, StoreError> {
        // Eventually consistent (half the read units): bounces and complaints reach the
        // list seconds to minutes after the mail that caused them, so a second's lag in
        // reading it changes nothing.
        let Some(item) = read_item_with(&self.client, &self.table, key(address), false).await?
        else {
            return Ok(None);
        };
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok());
        let corrupt = |what: &str| StoreError::Corrupt(format!("suppression: {what}"));
        Ok(Some(Suppression {
            reason: text("reason")
                .and_then(|r| SuppressionReason::parse(r))
                .ok_or_else(|| corrupt("reason"))?,
            source: text("source").cloned().unwrap_or_default(),
            at: text("suppressed_at")
                .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
                .ok_or_else(|| corrupt("suppressed_at"))?,
        }))
    }

    async fn clear(&self, address: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(address)))
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

    async fn note_unreachable(&self, noted: &Order) -> Result<ChangeOutcome, StoreError> {
        let entry = noted
            .history
            .last()
            .ok_or_else(|| StoreError::Other("a note without its entry".into()))?;
        let values = HashMap::from([
            (
                ":entry".to_string(),
                AttributeValue::L(vec![history_to_value(entry)]),
            ),
            (":now".to_string(), s(timestamp(noted.updated_at))),
            (":version".to_string(), n(noted.version)),
            (":expected".to_string(), n(noted.version - 1)),
        ]);
        self.update_order(
            &noted.id,
            "SET history = list_append(history, :entry), updated_at = :now, version = :version"
                .into(),
            "attribute_exists(PK) AND version = :expected",
            HashMap::new(),
            values,
        )
        .await
    }
}
