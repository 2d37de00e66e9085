//! `PaymentLedger` on the orders table: the payment map of an order item
//! (`payment`, see docs/data-design.md) and the claim that makes one checkout create
//! one payment intent. Every write is one conditional request.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use time::OffsetDateTime;

use super::order_item::{
    Item, PK, SK, history_to_value, hold_to_value, money_to_value, n, refund_to_value, s,
    status_partition,
};
use super::orders::DynamoOrderStore;
use crate::adapters::aws::store_error;
use crate::domain::payment::RefundHold;
use crate::domain::payment::notice::PaymentChange;
use crate::domain::time::timestamp;
use crate::domain::{HistoryEntry, OrderId, PaymentStatus, Refund};
use crate::ports::{ChangeOutcome, PaymentClaim, PaymentLedger, StoreError};

/// How long a claim outlives its order's creation: long past any retry of the
/// checkout (idempotency records live a day), then TTL removes it.
const CLAIM_KEPT_SECONDS: i64 = 7 * 24 * 60 * 60;

fn claim_key(order_id: &OrderId) -> Item {
    HashMap::from([
        (PK.into(), s(format!("PAYMENT#{order_id}"))),
        (SK.into(), s("CLAIM")),
    ])
}

impl DynamoOrderStore {
    async fn put_claim(
        &self,
        order_id: &OrderId,
        lease_until: OffsetDateTime,
        condition: &str,
        values: HashMap<String, AttributeValue>,
    ) -> Result<PaymentClaim, StoreError> {
        let mut item = claim_key(order_id);
        item.insert("lease_until".into(), n(lease_until.unix_timestamp()));
        item.insert(
            "expires_at".into(),
            n(lease_until.unix_timestamp() + CLAIM_KEPT_SECONDS),
        );
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::None)
            .send()
            .await;
        match result {
            Ok(_) => Ok(PaymentClaim::Claimed),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => Ok(PaymentClaim::Held),
                _ => Err(store_error(err)),
            },
        }
    }
}

#[async_trait]
impl PaymentLedger for DynamoOrderStore {
    async fn claim_payment(
        &self,
        order_id: &OrderId,
        lease_until: OffsetDateTime,
    ) -> Result<PaymentClaim, StoreError> {
        self.put_claim(
            order_id,
            lease_until,
            "attribute_not_exists(PK)",
            HashMap::new(),
        )
        .await
    }

    async fn take_over_payment_claim(
        &self,
        order_id: &OrderId,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<PaymentClaim, StoreError> {
        // Two takers may both see the lease run out; the first put renews it, so the
        // second one's condition fails.
        self.put_claim(
            order_id,
            lease_until,
            "attribute_not_exists(PK) OR lease_until < :now",
            HashMap::from([(":now".into(), n(now.unix_timestamp()))]),
        )
        .await
    }

    async fn release_payment_claim(&self, order_id: &OrderId) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(claim_key(order_id)))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn record_payment(
        &self,
        id: &OrderId,
        change: &PaymentChange,
    ) -> Result<ChangeOutcome, StoreError> {
        let mut set = vec![
            "#status = :status",
            // A payment that confirms moves the order to that status's `by_status` shard.
            "status_shard = :status_shard",
            "payment_status = :payment",
            "updated_at = :now",
            "version = version + :one",
            "history = list_append(history, :entry)",
        ];
        let mut remove = Vec::new();
        let mut values = HashMap::from([
            (":status".to_string(), s(change.status.as_str())),
            (
                ":status_shard".to_string(),
                s(status_partition(change.status, self.shards.of(id))),
            ),
            (":payment".to_string(), s(change.payment_status.as_str())),
            (":now".to_string(), s(timestamp(change.entry.at))),
            (":one".to_string(), n(1)),
            (
                ":entry".to_string(),
                AttributeValue::L(vec![history_to_value(&change.entry)]),
            ),
            (":expected".to_string(), n(change.expected_version)),
        ]);
        if let Some(event) = &change.event_id {
            set.push("payment.applied_events = list_append(payment.applied_events, :event)");
            values.insert(":event".into(), AttributeValue::L(vec![s(event)]));
        }
        if let Some(received) = &change.received {
            set.push("payment.received = :received");
            values.insert(":received".into(), money_to_value(received));
        }
        match &change.problem {
            Some(problem) => {
                set.push("payment.problem = :problem");
                values.insert(":problem".into(), s(problem));
            }
            None => remove.push("payment.problem"),
        }
        let mut update = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            update.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        self.update_order(
            id,
            update,
            "attribute_exists(payment) AND version = :expected",
            HashMap::new(),
            values,
        )
        .await
    }

    async fn hold_refund(
        &self,
        id: &OrderId,
        hold: &RefundHold,
        expected_version: u64,
    ) -> Result<ChangeOutcome, StoreError> {
        // Not a change of the order (its version stays), so no event: the refund is
        // published when it is made.
        self.update_order(
            id,
            "SET payment.refund_in_flight = :hold".into(),
            "attribute_exists(payment) AND version = :expected \
             AND attribute_not_exists(payment.refund_in_flight)",
            HashMap::new(),
            HashMap::from([
                (":hold".to_string(), hold_to_value(hold)),
                (":expected".to_string(), n(expected_version)),
            ]),
        )
        .await
    }

    async fn complete_refund(
        &self,
        id: &OrderId,
        refund: &Refund,
        payment_status: PaymentStatus,
        entry: &HistoryEntry,
    ) -> Result<ChangeOutcome, StoreError> {
        self.update_order(
            id,
            "SET payment.refunds = list_append(payment.refunds, :refund), \
             payment_status = :payment, updated_at = :now, version = version + :one, \
             history = list_append(history, :entry) REMOVE payment.refund_in_flight"
                .into(),
            "payment.refund_in_flight.#key = :key",
            HashMap::from([("#key".to_string(), "key".to_string())]),
            HashMap::from([
                (
                    ":refund".to_string(),
                    AttributeValue::L(vec![refund_to_value(refund)]),
                ),
                (":payment".to_string(), s(payment_status.as_str())),
                (":now".to_string(), s(timestamp(entry.at))),
                (":one".to_string(), n(1)),
                (
                    ":entry".to_string(),
                    AttributeValue::L(vec![history_to_value(entry)]),
                ),
                (":key".to_string(), s(&refund.key)),
            ]),
        )
        .await
    }

    async fn release_refund(&self, id: &OrderId, key: &str) -> Result<(), StoreError> {
        // Refused: the hold is gone already (released or completed), which is the goal.
        self.update_order(
            id,
            "REMOVE payment.refund_in_flight".into(),
            "payment.refund_in_flight.#key = :key",
            HashMap::from([("#key".to_string(), "key".to_string())]),
            HashMap::from([(":key".to_string(), s(key))]),
        )
        .await
        .map(|_| ())
    }
}
