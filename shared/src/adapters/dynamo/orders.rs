//! `OrderStore` on one DynamoDB table. Every write is a single conditional request;
//! refusals come back with the item as it was (`ReturnValuesOnConditionCheckFailure`),
//! so telling 404 from 409 never costs a read.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};
use time::OffsetDateTime;

use super::order_item::{
    CREATION, ENTITY_ORDER, Item, PK, SK, creation_token, history_to_value, idempotency_from_item,
    idempotency_key, idempotency_to_item, n, order_from_item, order_key, order_to_item,
    rate_counter_key, s,
};
use crate::adapters::aws::store_error;
use crate::domain::lifecycle::ShippingUpdate;
use crate::domain::time::timestamp;
use crate::domain::{Order, OrderId, OrderStatus, StatusChange};
use crate::ports::{
    ChangeOutcome, CreateOutcome, IdempotencyKey, IdempotencyRecord, OrderPage, OrderQuery,
    OrderStore, PagePosition, RateCharge, StoreError,
};

/// The three list indexes and the attribute each is partitioned on.
const BY_USER: (&str, &str) = ("by_user", "user_id");
const BY_STATUS: (&str, &str) = ("by_status", "status");
const BY_CREATED: (&str, &str) = ("by_created", "entity");

/// The most Query requests one list call makes. A page may then come back short (or
/// empty) with a `next` position; paging on continues where reading stopped.
pub const MAX_QUERY_PAGES: usize = 10;

#[derive(Clone)]
pub struct DynamoOrderStore {
    pub(super) client: Client,
    pub(super) table: String,
}

impl DynamoOrderStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoOrderStore {
            client,
            table: table.into(),
        }
    }

    /// One conditional UpdateItem of an order: the new order, or, if the condition
    /// fails, the order as DynamoDB found it. `#status` names `status` where used.
    pub(super) async fn update_order(
        &self,
        id: &OrderId,
        update: String,
        condition: &str,
        mut names: HashMap<String, String>,
        values: HashMap<String, AttributeValue>,
    ) -> Result<ChangeOutcome, StoreError> {
        // DynamoDB refuses a name the expressions do not use.
        if update.contains("#status") || condition.contains("#status") {
            names.insert("#status".into(), "status".into());
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(order_key(id)))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => {
                let item = output
                    .attributes()
                    .ok_or_else(|| StoreError::Other("update returned no attributes".into()))?;
                Ok(ChangeOutcome::Changed(Box::new(order_from_item(item)?)))
            }
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(e)) => {
                    let current = e.item().map(order_from_item).transpose()?;
                    Ok(ChangeOutcome::Refused(current.map(Box::new)))
                }
                _ => Err(store_error(err)),
            },
        }
    }

    async fn record_change(
        &self,
        id: &OrderId,
        set: &[&str],
        condition: &str,
        values: HashMap<String, AttributeValue>,
    ) -> Result<ChangeOutcome, StoreError> {
        let update = format!("SET {}", set.join(", "));
        self.update_order(id, update, condition, HashMap::new(), values)
            .await
    }

    /// One strongly consistent read of one item.
    async fn read(&self, key: Item) -> Result<Option<Item>, StoreError> {
        crate::adapters::aws::read_item(&self.client, &self.table, key).await
    }

    async fn put_order(&self, order: &Order) -> Result<CreateOutcome, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(order_to_item(order)))
            .condition_expression("attribute_not_exists(PK)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(CreateOutcome::Created),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(e)) => {
                    let existing = e.item().ok_or_else(|| {
                        StoreError::Other("conditional put refused without the item".into())
                    })?;
                    // The SDK resends a PutItem whose answer it did not get; if the
                    // first attempt committed, the order in the way is this one.
                    let token = existing.get(CREATION).and_then(|v| v.as_s().ok());
                    if token == Some(&creation_token(order)) {
                        return Ok(CreateOutcome::Created);
                    }
                    Ok(CreateOutcome::CartOrdered(Box::new(order_from_item(
                        existing,
                    )?)))
                }
                _ => Err(store_error(err)),
            },
        }
    }

    /// The order, its idempotency record (if any) and the caller's rate counter (if
    /// limited) in one transaction: either all are written or none was by this
    /// request.
    async fn put_order_in_transaction(
        &self,
        order: &Order,
        record: Option<&IdempotencyRecord>,
        charge: Option<&RateCharge>,
    ) -> Result<CreateOutcome, StoreError> {
        let put = |item: Item, condition: &str, values: Option<HashMap<String, AttributeValue>>| {
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(condition)
                .set_expression_attribute_values(values)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .map(|put| TransactWriteItem::builder().put(put).build())
                .map_err(|e| StoreError::Other(e.to_string()))
        };
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let mut items = vec![put(order_to_item(order), "attribute_not_exists(PK)", None)?];
        let key_at = record
            .map(|record| {
                // An expired record that TTL has not yet deleted does not count.
                items.push(put(
                    idempotency_to_item(record),
                    "attribute_not_exists(PK) OR expires_at < :now",
                    Some(HashMap::from([(":now".into(), n(now))])),
                )?);
                Ok::<_, StoreError>(items.len() - 1)
            })
            .transpose()?;
        let counter_at = charge
            .map(|charge| {
                items.push(self.count_create(charge)?);
                Ok::<_, StoreError>(items.len() - 1)
            })
            .transpose()?;
        let cancelled = match crate::adapters::aws::transact(&self.client, items).await? {
            Ok(()) => return Ok(CreateOutcome::Created),
            Err(cancelled) => cancelled,
        };
        // The key speaks first: a retry must be answered as the first request was,
        // even though its cart is (by then) ordered too and the limit reached.
        if let (Some(record), Some(reason)) = (record, key_at.and_then(|i| cancelled.refused(i))) {
            let item = reason.item().ok_or_else(|| {
                StoreError::Other("idempotency record refused without the item".into())
            })?;
            return Ok(CreateOutcome::KeySeen(idempotency_from_item(
                &record.key,
                item,
            )?));
        }
        // Then the cart: waiting for the next window would not change that answer.
        if let Some(reason) = cancelled.refused(0) {
            let item = reason
                .item()
                .ok_or_else(|| StoreError::Other("order refused without the item".into()))?;
            return Ok(CreateOutcome::CartOrdered(Box::new(order_from_item(item)?)));
        }
        if counter_at.is_some_and(|i| cancelled.refused(i).is_some()) {
            return Ok(CreateOutcome::LimitReached);
        }
        Err(cancelled.into_error())
    }

    /// One more create on the caller's counter for the window, refused once it
    /// holds the limit. The counter expires (TTL) when its window ends.
    fn count_create(&self, charge: &RateCharge) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(rate_counter_key(&charge.caller, charge.window.start)))
            .update_expression("ADD #creates :one SET expires_at = :expires")
            .condition_expression("attribute_not_exists(#creates) OR #creates < :limit")
            .expression_attribute_names("#creates", "creates")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":expires", n(charge.window.end))
            .expression_attribute_values(":limit", n(charge.limit.count))
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

#[async_trait]
impl OrderStore for DynamoOrderStore {
    async fn create(
        &self,
        order: &Order,
        idempotency: Option<&IdempotencyRecord>,
        charge: Option<&RateCharge>,
    ) -> Result<CreateOutcome, StoreError> {
        match (idempotency, charge) {
            (None, None) => self.put_order(order).await,
            (record, charge) => self.put_order_in_transaction(order, record, charge).await,
        }
    }

    async fn get(&self, id: &OrderId) -> Result<Option<Order>, StoreError> {
        self.read(order_key(id))
            .await?
            .as_ref()
            .map(order_from_item)
            .transpose()
    }

    async fn change_status(
        &self,
        id: &OrderId,
        change: &StatusChange,
        from: &[OrderStatus],
    ) -> Result<ChangeOutcome, StoreError> {
        let mut update = vec![
            "#status = :to",
            "updated_at = :now",
            "version = version + :one",
            "history = list_append(history, :entry)",
        ];
        let mut values = HashMap::from([
            (":to".to_string(), s(change.to.as_str())),
            (":now".to_string(), s(timestamp(change.at))),
            (":one".to_string(), n(1)),
            (
                ":entry".to_string(),
                AttributeValue::L(vec![history_to_value(&change.history_entry())]),
            ),
        ]);
        let effects = change.side_effects();
        if let Some(payment) = effects.payment_status {
            update.push("payment_status = :payment");
            values.insert(":payment".into(), s(payment.as_str()));
        }
        if let Some(shipping) = effects.shipping_status {
            update.push("shipping_status = :shipping");
            values.insert(":shipping".into(), s(shipping.as_str()));
        }
        if let Some(tracking) = &change.tracking_number {
            update.push("tracking_number = :tracking");
            values.insert(":tracking".into(), s(tracking));
        }
        if let Some(carrier) = &change.carrier {
            update.push("carrier = :carrier");
            values.insert(":carrier".into(), s(carrier));
        }

        let mut placeholders = Vec::new();
        for (i, status) in from.iter().enumerate() {
            let name = format!(":from{i}");
            values.insert(name.clone(), s(status.as_str()));
            placeholders.push(name);
        }
        let mut condition = format!(
            "attribute_exists(PK) AND #status IN ({})",
            placeholders.join(", ")
        );
        if change.role == crate::domain::Role::Owner {
            condition.push_str(" AND user_id = :actor");
            values.insert(":actor".into(), s(&change.actor));
        }
        let required = change.required_payment();
        if !required.is_empty() {
            let names: Vec<String> = (0..required.len()).map(|i| format!(":paid{i}")).collect();
            condition.push_str(&format!(" AND payment_status IN ({})", names.join(", ")));
            for (name, status) in names.into_iter().zip(required) {
                values.insert(name, s(status.as_str()));
            }
        }
        for (i, barred) in change.barred_shipping().iter().enumerate() {
            let name = format!(":barred{i}");
            condition.push_str(&format!(" AND shipping_status <> {name}"));
            values.insert(name, s(barred.as_str()));
        }
        if let Some(version) = change.expected_version {
            condition.push_str(" AND version = :expected");
            values.insert(":expected".into(), n(version));
        }

        self.record_change(id, &update, &condition, values).await
    }

    async fn update_shipping(
        &self,
        id: &OrderId,
        update: &ShippingUpdate,
    ) -> Result<ChangeOutcome, StoreError> {
        let mut values = HashMap::from([
            (":shipping".to_string(), s(update.to.as_str())),
            (":now".to_string(), s(timestamp(update.at))),
            (":one".to_string(), n(1)),
            (
                ":entry".to_string(),
                AttributeValue::L(vec![history_to_value(&update.history_entry())]),
            ),
            (":confirmed".to_string(), s(OrderStatus::Confirmed.as_str())),
        ]);
        let mut placeholders = Vec::new();
        for (i, from) in update.sources().iter().enumerate() {
            let name = format!(":from{i}");
            values.insert(name.clone(), s(from.as_str()));
            placeholders.push(name);
        }
        let condition = format!(
            "attribute_exists(PK) AND #status = :confirmed AND shipping_status IN ({})",
            placeholders.join(", ")
        );
        let set = [
            "shipping_status = :shipping",
            "updated_at = :now",
            "version = version + :one",
            "history = list_append(history, :entry)",
        ];
        self.record_change(id, &set, &condition, values).await
    }

    async fn list(&self, query: &OrderQuery) -> Result<OrderPage, StoreError> {
        let ((index, partition_attr), partition, status_filter) =
            match (&query.user_id, query.status) {
                (Some(user), status) => (BY_USER, user.clone(), status),
                (None, Some(status)) => (BY_STATUS, status.as_str().to_string(), None),
                (None, None) => (BY_CREATED, ENTITY_ORDER.to_string(), None),
            };

        let mut values = HashMap::from([(":p".to_string(), s(&partition))]);
        let mut key_condition = "#p = :p".to_string();
        let mut names = HashMap::from([("#p".to_string(), partition_attr.to_string())]);
        // created_key is "<timestamp to the millisecond>#<order id>": "#~" sorts after
        // every id of the same millisecond and "#" before, which makes both bounds
        // exclusive. A bound finer than a millisecond is truncated to it: `after` then
        // still excludes that millisecond, `before` includes it (it is earlier).
        let after = query.created_after.map(|t| format!("{}#~", timestamp(t)));
        let before = query.created_before.map(|t| {
            let sub_ms = t.nanosecond() % 1_000_000 != 0;
            format!("{}#{}", timestamp(t), if sub_ms { "~" } else { "" })
        });
        match (after, before) {
            // No millisecond strictly between the bounds: nothing to read, and DynamoDB
            // refuses a BETWEEN whose bounds are equal or reversed.
            (Some(a), Some(b)) if b <= a => {
                return Ok(OrderPage {
                    orders: Vec::new(),
                    next: None,
                });
            }
            (Some(a), Some(b)) => {
                key_condition.push_str(" AND created_key BETWEEN :a AND :b");
                values.insert(":a".into(), s(a));
                values.insert(":b".into(), s(b));
            }
            (Some(a), None) => {
                key_condition.push_str(" AND created_key > :a");
                values.insert(":a".into(), s(a));
            }
            (None, Some(b)) => {
                key_condition.push_str(" AND created_key < :b");
                values.insert(":b".into(), s(b));
            }
            (None, None) => {}
        }
        let filter = status_filter.map(|status| {
            names.insert("#status".into(), "status".into());
            values.insert(":status".into(), s(status.as_str()));
            "#status = :status".to_string()
        });

        let mut start = match &query.after {
            Some(position) => Some(decode_position(position, partition_attr)?),
            None => None,
        };
        let mut orders = Vec::with_capacity(query.limit);
        let mut more = false;
        // Where reading stopped short of a full page: the next call goes on from there.
        let mut stopped_at = None;
        // Read one item past the page: DynamoDB reports a LastEvaluatedKey whenever it
        // stops at Limit, so only an extra item proves that another page exists. A
        // filter may thin a read out; keep reading until the page is full, the index
        // ends, or MAX_QUERY_PAGES reads were spent (a long run of orders the filter
        // drops must not hold one API call for ever).
        for round in 1..=MAX_QUERY_PAGES {
            let wanted = (query.limit - orders.len()) as i32 + 1;
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression(&key_condition)
                .set_filter_expression(filter.clone())
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(false)
                .limit(wanted)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(store_error)?;
            for item in output.items() {
                if orders.len() == query.limit {
                    more = true;
                    break;
                }
                orders.push(order_from_item(item)?);
            }
            match output.last_evaluated_key() {
                Some(key) if !more && round == MAX_QUERY_PAGES => {
                    stopped_at = Some(key.clone());
                }
                Some(key) if !more => start = Some(key.clone()),
                _ => break,
            }
        }
        let next = match (orders.last(), stopped_at) {
            (_, Some(key)) => Some(position_of_key(&key, partition_attr)?),
            (Some(last), None) if more => Some(encode_position(last, partition_attr, &partition)),
            _ => None,
        };
        Ok(OrderPage { orders, next })
    }

    async fn idempotency_record(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let record = self
            .read(idempotency_key(key))
            .await?
            .map(|item| idempotency_from_item(key, &item))
            .transpose()?;
        Ok(record.filter(|r| r.expires_at > OffsetDateTime::now_utc()))
    }
}

/// The position after `last`: the index's key attributes and the table's, as the
/// ExclusiveStartKey of the next query needs them.
fn encode_position(last: &Order, partition_attr: &str, partition: &str) -> PagePosition {
    let key = order_key(&last.id);
    let text = |k: &str| {
        key.get(k)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    PagePosition(
        serde_json::json!([
            partition_attr,
            partition,
            super::order_item::created_key(last),
            text(PK),
            text(SK)
        ])
        .to_string(),
    )
}

/// The position of a LastEvaluatedKey, in the form `encode_position` writes.
fn position_of_key(key: &Item, partition_attr: &str) -> Result<PagePosition, StoreError> {
    let text = |k: &str| {
        key.get(k)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .ok_or_else(|| StoreError::Other(format!("query stopped at a key without {k}")))
    };
    Ok(PagePosition(
        serde_json::json!([
            partition_attr,
            text(partition_attr)?,
            text("created_key")?,
            text(PK)?,
            text(SK)?
        ])
        .to_string(),
    ))
}

fn decode_position(position: &PagePosition, partition_attr: &str) -> Result<Item, StoreError> {
    let parts: Vec<String> =
        serde_json::from_str(&position.0).map_err(|_| StoreError::BadPosition)?;
    let [attr, partition, created_key, pk, sk] = parts.as_slice() else {
        return Err(StoreError::BadPosition);
    };
    if attr != partition_attr {
        return Err(StoreError::BadPosition);
    }
    Ok(HashMap::from([
        (attr.clone(), s(partition)),
        ("created_key".into(), s(created_key)),
        (PK.into(), s(pk)),
        (SK.into(), s(sk)),
    ]))
}
