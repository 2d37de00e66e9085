//! `OrderStore` on one DynamoDB table. Every write is a single conditional request;
//! refusals come back with the item as it was (`ReturnValuesOnConditionCheckFailure`),
//! so telling 404 from 409 never costs a read.

use std::collections::{HashMap, VecDeque};

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
    CREATION, Item, ListShards, STATUS_SHARD, created_key, created_partition, creation_token,
    history_to_value, idempotency_from_item, idempotency_key, idempotency_to_item, n,
    order_from_item, order_key, order_to_item, rate_counter_key, s, status_partition,
};
use crate::adapters::aws::store_error;
use crate::domain::lifecycle::ShippingUpdate;
use crate::domain::time::timestamp;
use crate::domain::{Order, OrderId, OrderStatus, StatusChange};
use crate::ports::{
    ChangeOutcome, CreateOutcome, IdempotencyKey, IdempotencyRecord, OrderPage, OrderQuery,
    OrderStore, PagePosition, RateCharge, StoreError,
};

/// The three list indexes and the attribute each is partitioned on. `by_status` and
/// `by_created` are sharded (`ListShards`): a list reads every shard and merges.
const BY_USER: (&str, &str) = ("by_user", "user_id");
const BY_STATUS: (&str, &str) = ("by_status", STATUS_SHARD);
const BY_CREATED: (&str, &str) = ("by_created", "entity");

/// The most Query requests one list call makes. A page may then come back short (or
/// empty) with a `next` position; paging on continues where reading stopped.
pub const MAX_QUERY_PAGES: usize = 10;

#[derive(Clone)]
pub struct DynamoOrderStore {
    pub(super) client: Client,
    pub(super) table: String,
    pub(super) shards: ListShards,
}

impl DynamoOrderStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoOrderStore {
            client,
            table: table.into(),
            shards: ListShards::default(),
        }
    }

    /// The same store with `shards` list-index shards (`LIST_INDEX_SHARDS`).
    pub fn with_list_shards(mut self, shards: ListShards) -> Self {
        self.shards = shards;
        self
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
            .set_item(Some(order_to_item(order, self.shards)))
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
        let mut items = vec![put(
            order_to_item(order, self.shards),
            "attribute_not_exists(PK)",
            None,
        )?];
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
            // A resent transaction whose first attempt committed (DynamoDB answers it
            // from its ClientRequestToken; an emulator may not) finds its own order.
            if item.get(CREATION).and_then(|v| v.as_s().ok()) == Some(&creation_token(order)) {
                return Ok(CreateOutcome::Created);
            }
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

    async fn get_since(&self, id: &OrderId, version: u64) -> Result<Option<Order>, StoreError> {
        // An event reaches its consumers through the stream, the bus and a queue, well
        // after its write: the eventually consistent copy almost always has it already.
        let copy =
            crate::adapters::aws::read_item_with(&self.client, &self.table, order_key(id), false)
                .await?
                .as_ref()
                .map(order_from_item)
                .transpose()?;
        match copy {
            Some(order) if order.version >= version => Ok(Some(order)),
            _ => self.get(id).await,
        }
    }

    async fn change_status(
        &self,
        id: &OrderId,
        change: &StatusChange,
        from: &[OrderStatus],
    ) -> Result<ChangeOutcome, StoreError> {
        if change.side_effects_on(true) == change.side_effects_on(false) {
            return self.write_status(id, change, from, None).await;
        }
        // The move does one thing to an order with a provider payment and another to
        // one without (a confirmation by hand): written for an order without, and if
        // the order refused it for having one, written again as such. A payment is
        // part of the order from its checkout on, so the second write is the last.
        match self.write_status(id, change, from, Some(false)).await? {
            ChangeOutcome::Refused(Some(current)) if current.payment.is_some() => {
                self.write_status(id, change, from, Some(true)).await
            }
            outcome => Ok(outcome),
        }
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
        let Some(range) = KeyRange::of(query)? else {
            return Ok(OrderPage {
                orders: Vec::new(),
                next: None,
            });
        };
        let shards = 0..self.shards.count();
        match (&query.user_id, query.status) {
            (Some(user), status) => self.list_user(user, status, &range, query.limit).await,
            (None, Some(status)) => {
                let partitions = shards.map(|k| status_partition(status, k)).collect();
                self.list_sharded(BY_STATUS, partitions, &range, query.limit, Some(status))
                    .await
            }
            (None, None) => {
                let partitions = shards.map(created_partition).collect();
                self.list_sharded(BY_CREATED, partitions, &range, query.limit, None)
                    .await
            }
        }
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

impl DynamoOrderStore {
    /// One conditional write of `change` from one of `from`; with `online_payment`
    /// set, on an order with (`true`) or without (`false`) a provider payment only,
    /// and with that order's side effects.
    async fn write_status(
        &self,
        id: &OrderId,
        change: &StatusChange,
        from: &[OrderStatus],
        online_payment: Option<bool>,
    ) -> Result<ChangeOutcome, StoreError> {
        let mut update = vec![
            "#status = :to",
            // The order moves to its new status's partition of `by_status`.
            "status_shard = :to_shard",
            "updated_at = :now",
            "version = version + :one",
            "history = list_append(history, :entry)",
        ];
        let mut values = HashMap::from([
            (":to".to_string(), s(change.to.as_str())),
            (
                ":to_shard".to_string(),
                s(status_partition(change.to, self.shards.of(id))),
            ),
            (":now".to_string(), s(timestamp(change.at))),
            (":one".to_string(), n(1)),
            (
                ":entry".to_string(),
                AttributeValue::L(vec![history_to_value(
                    &change.history_entry_on(online_payment == Some(true)),
                )]),
            ),
        ]);
        let effects = change.side_effects_on(online_payment == Some(true));
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
        match online_payment {
            Some(true) => condition.push_str(" AND attribute_exists(payment)"),
            Some(false) => condition.push_str(" AND attribute_not_exists(payment)"),
            None => {}
        }
        if let Some(version) = change.expected_version {
            condition.push_str(" AND version = :expected");
            values.insert(":expected".into(), n(version));
        }

        self.record_change(id, &update, &condition, values).await
    }
}

impl DynamoOrderStore {
    /// One Query of one index partition, newest first, within `range`.
    async fn query_partition(
        &self,
        (index, partition_attr): (&str, &str),
        partition: &str,
        range: &KeyRange,
        status_filter: Option<OrderStatus>,
        limit: usize,
        start: Option<Item>,
    ) -> Result<aws_sdk_dynamodb::operation::query::QueryOutput, StoreError> {
        let mut names = HashMap::from([("#p".to_string(), partition_attr.to_string())]);
        let mut values = HashMap::from([(":p".to_string(), s(partition))]);
        let mut key_condition = "#p = :p".to_string();
        range.condition(&mut key_condition, &mut values);
        let filter = status_filter.map(|status| {
            names.insert("#status".into(), "status".into());
            values.insert(":status".into(), s(status.as_str()));
            "#status = :status".to_string()
        });
        self.client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression(key_condition)
            .set_filter_expression(filter)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(store_error)
    }

    /// One customer's orders (`by_user`), a `status` filter applied as a filter
    /// expression.
    async fn list_user(
        &self,
        user: &str,
        status_filter: Option<OrderStatus>,
        range: &KeyRange,
        limit: usize,
    ) -> Result<OrderPage, StoreError> {
        let mut start = None;
        let mut orders = Vec::with_capacity(limit);
        let mut more = false;
        // Where reading stopped short of a full page: the next call goes on from there.
        let mut stopped_at = None;
        // Read one item past the page: DynamoDB reports a LastEvaluatedKey whenever it
        // stops at Limit, so only an extra item proves that another page exists. A
        // filter may thin a read out; keep reading until the page is full, the index
        // ends, or MAX_QUERY_PAGES reads were spent (a long run of orders the filter
        // drops must not hold one API call for ever).
        for round in 1..=MAX_QUERY_PAGES {
            let wanted = limit - orders.len() + 1;
            let output = self
                .query_partition(BY_USER, user, range, status_filter, wanted, start.take())
                .await?;
            for item in output.items() {
                if orders.len() == limit {
                    more = true;
                    break;
                }
                orders.push(order_from_item(item)?);
            }
            match output.last_evaluated_key() {
                Some(key) if !more && round == MAX_QUERY_PAGES => stopped_at = Some(key.clone()),
                Some(key) if !more => start = Some(key.clone()),
                _ => break,
            }
        }
        let next = match (orders.last(), stopped_at) {
            (_, Some(key)) => Some(position(BY_USER.0, text_of(&key, "created_key")?)),
            (Some(last), None) if more => Some(position(BY_USER.0, &created_key(last))),
            _ => None,
        };
        Ok(OrderPage { orders, next })
    }

    /// Every shard of a sharded index (`KEYS_ONLY`) read at once and merged newest
    /// first, then the page's orders read from the table in one `BatchGetItem`. Each shard
    /// first reads about twice its share of the page (orders spread evenly over the
    /// shards), and a shard that runs dry before the page is full reads on, with
    /// enough to finish the page alone. Every shard that has not ended keeps one item
    /// ahead, so the merge always sees each shard's newest unread order, and an item
    /// left ahead once the page is full proves the next page is not empty.
    ///
    /// An order read from the table may have moved on since its index item was read:
    /// one no longer in `status` is left off (the page comes back short; its position
    /// is the last key read, as ever).
    async fn list_sharded(
        &self,
        index: (&str, &str),
        partitions: Vec<String>,
        range: &KeyRange,
        limit: usize,
        status: Option<OrderStatus>,
    ) -> Result<OrderPage, StoreError> {
        let mut shards: Vec<Shard> = partitions.into_iter().map(Shard::new).collect();
        let first_read = (2 * limit).div_ceil(shards.len()) + 1;
        // The page's index items: their keys, newest first.
        let mut orders: Vec<(String, Item)> = Vec::with_capacity(limit);
        let mut more = false;
        loop {
            let wanted = if orders.is_empty() {
                first_read
            } else {
                limit - orders.len() + 1
            };
            let reads = shards
                .iter_mut()
                .filter(|shard| shard.ahead.is_empty() && !shard.ended)
                .map(|shard| async move {
                    let output = self
                        .query_partition(
                            index,
                            &shard.partition,
                            range,
                            None,
                            wanted,
                            shard.next.take(),
                        )
                        .await?;
                    shard.take(output)
                });
            futures_util::future::try_join_all(reads).await?;
            let newest = shards
                .iter()
                .enumerate()
                .filter_map(|(i, shard)| shard.ahead.front().map(|(key, _)| (key, i)))
                .max()
                .map(|(_, i)| i);
            let Some(newest) = newest else { break };
            if orders.len() == limit {
                more = true;
                break;
            }
            if let Some(ahead) = shards[newest].ahead.pop_front() {
                orders.push(ahead);
            }
        }
        let next = match orders.last() {
            Some((key, _)) if more => Some(position(index.0, key)),
            _ => None,
        };
        let orders = self.read_orders(orders, status).await?;
        Ok(OrderPage { orders, next })
    }

    /// The orders under the keys of `page`'s index items, in its order, eventually
    /// consistent like the index they were found in; those gone, or no longer in
    /// `status`, left off.
    async fn read_orders(
        &self,
        page: Vec<(String, Item)>,
        status: Option<OrderStatus>,
    ) -> Result<Vec<Order>, StoreError> {
        let keys: Vec<Item> = page
            .iter()
            .map(|(_, item)| {
                ["PK", "SK"]
                    .into_iter()
                    .filter_map(|k| Some((k.to_string(), item.get(k)?.clone())))
                    .collect()
            })
            .collect();
        let mut found: HashMap<String, Order> = HashMap::with_capacity(keys.len());
        for item in crate::adapters::aws::read_items(&self.client, &self.table, keys, false).await?
        {
            let order = order_from_item(&item)?;
            found.insert(order.id.as_str().to_string(), order);
        }
        Ok(page
            .iter()
            .filter_map(|(_, item)| {
                let id = text_of(item, "PK").ok()?.strip_prefix("ORDER#")?;
                found.remove(id)
            })
            .filter(|order| status.is_none_or(|s| order.status == s))
            .collect())
    }
}

/// One shard's read so far: the items read and not yet on the page, newest first,
/// and where its next read starts.
struct Shard {
    partition: String,
    ahead: VecDeque<(String, Item)>,
    next: Option<Item>,
    ended: bool,
}

impl Shard {
    fn new(partition: String) -> Shard {
        Shard {
            partition,
            ahead: VecDeque::new(),
            next: None,
            ended: false,
        }
    }

    fn take(
        &mut self,
        output: aws_sdk_dynamodb::operation::query::QueryOutput,
    ) -> Result<(), StoreError> {
        for item in output.items() {
            self.ahead
                .push_back((text_of(item, "created_key")?.to_string(), item.clone()));
        }
        self.next = output.last_evaluated_key().cloned();
        self.ended = self.next.is_none();
        Ok(())
    }
}

/// The `created_key` range a list reads: the caller's `created_after` and
/// `created_before` and, past the first page, the cursor, which is the `created_key`
/// of the last order handed out: everything newer was on the pages before, on every
/// shard alike, so one position serves them all.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyRange {
    /// Exclusive bounds, each a text no `created_key` equals.
    above: Option<String>,
    below: Option<String>,
}

impl KeyRange {
    /// `None` when no order can be in the range.
    fn of(query: &OrderQuery) -> Result<Option<KeyRange>, StoreError> {
        // created_key is "<timestamp to the millisecond>#<order id>": "#~" sorts after
        // every id of the same millisecond and "#" before, which makes both bounds
        // exclusive. A bound finer than a millisecond is truncated to it: `after` then
        // still excludes that millisecond, `before` includes it (it is earlier).
        let above = query.created_after.map(|t| format!("{}#~", timestamp(t)));
        let before = query.created_before.map(|t| {
            let sub_ms = t.nanosecond() % 1_000_000 != 0;
            format!("{}#{}", timestamp(t), if sub_ms { "~" } else { "" })
        });
        // The cursor lies inside the caller's range, so it is the nearer upper bound.
        let below = match &query.after {
            Some(position) => Some(just_below(&decode_position(position)?)),
            None => before,
        };
        Ok(match (&above, &below) {
            // No key strictly between the bounds: nothing to read (and DynamoDB
            // refuses a BETWEEN whose bounds are equal or reversed).
            (Some(a), Some(b)) if b <= a => None,
            _ => Some(KeyRange { above, below }),
        })
    }

    fn condition(&self, key_condition: &mut String, values: &mut HashMap<String, AttributeValue>) {
        match (&self.above, &self.below) {
            // BETWEEN is inclusive, which is exclusive here: no key equals a bound.
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
    }
}

/// A text just below `key`, above every other `created_key` below it: the last
/// character one lower, then `~`, which sorts after every character of an order id.
fn just_below(key: &str) -> String {
    let mut chars: Vec<char> = key.chars().collect();
    match chars.pop() {
        Some(last) => {
            let lower = char::from_u32(u32::from(last).saturating_sub(1)).unwrap_or(last);
            chars.push(lower);
            chars.push('~');
            chars.into_iter().collect()
        }
        None => String::new(),
    }
}

fn text_of<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| StoreError::Other(format!("an index item without {name}")))
}

/// A page position: the index read and the `created_key` of the last order handed
/// out (or, when a call stopped reading early, of the last item it read).
fn position(index: &str, created_key: &str) -> PagePosition {
    PagePosition(serde_json::json!([index, created_key]).to_string())
}

fn decode_position(position: &PagePosition) -> Result<String, StoreError> {
    let parts: Vec<String> =
        serde_json::from_str(&position.0).map_err(|_| StoreError::BadPosition)?;
    match parts.as_slice() {
        [index, key] if [BY_USER.0, BY_STATUS.0, BY_CREATED.0].contains(&index.as_str()) => {
            Ok(key.clone())
        }
        _ => Err(StoreError::BadPosition),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn just_below_a_key_lies_between_it_and_every_key_below_it() {
        let key = "2026-11-25T20:31:00.000Z#ORDKT9Y9G7TXGSP1QME";
        let below = just_below(key);
        assert!(below.as_str() < key);
        for lower in [
            "2026-11-25T20:31:00.000Z#ORDKT9Y9G7TXGSP1QMD",
            "2026-11-25T20:31:00.000Z#ORDKT9Y9G7TXGSP1QM0",
            "2026-11-25T20:31:00.000Z#ORDKT9Y9G7TXGSP1QMDZ",
            "2026-11-25T20:30:59.999Z#ORDZZZZZZZZZZZZZZZZ",
        ] {
            assert!(lower < below.as_str(), "{lower}");
        }
    }

    #[test]
    fn a_position_names_one_of_the_indexes() {
        let p = position("by_status", "2026-11-25T20:31:00.000Z#ORDKT9Y9G7TXGSP1QME");
        assert_eq!(
            decode_position(&p).unwrap(),
            "2026-11-25T20:31:00.000Z#ORDKT9Y9G7TXGSP1QME"
        );
        for bad in [r#"["by_other","x"]"#, r#"["by_user"]"#, "nope"] {
            assert_eq!(
                decode_position(&PagePosition(bad.into())),
                Err(StoreError::BadPosition)
            );
        }
    }
}
