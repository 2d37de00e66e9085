//! Returns on DynamoDB: a `returns` list on the order's own item (so the order, its
//! lines' `quantity_returned` and every event carry them), and one queue item per
//! return, `RETURNS#<status>` / `<created_at>#<return_id>`, moved in the same
//! transaction as the order when the return changes status, so the queue of returns
//! to handle is one Query, oldest first. A return label's tracking number is indexed
//! as parcels' are (`TRACKING#<carrier>#<number>` / `RETURN#<order>#<return>`), in
//! the same transaction as the approval that bought it. A restock leaves a tombstone,
//! `RESTOCK#<return_id>`, written in the same transaction as the stock it adds, so
//! goods come back at most once.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::order_item::{Item, PK, SK, history_to_value, n, order_from_item, order_key, s};
use super::orders::DynamoOrderStore;
use super::return_item::returns_to_value;
use super::shipments::tracking_partition;
use crate::adapters::aws::{store_error, transact};
use crate::domain::fulfillment::returns::{
    Return, ReturnId, ReturnLine, ReturnReason, ReturnStatus,
};
use crate::domain::stock::StockLine;
use crate::domain::time::timestamp;
use crate::domain::{Order, OrderId};
use crate::ports::{
    ChangeOutcome, QueuedReturn, Restock, RestockOutcome, ReturnFiling, ReturnQueuePage,
    ReturnStore, StoreError, TrackedReturn,
};

fn queue_partition(status: ReturnStatus) -> String {
    format!("RETURNS#{status}")
}

/// Oldest first: the request time sorts as text (RFC 3339, UTC, fixed width).
fn queue_sort(ret: &Return) -> String {
    format!("{}#{}", timestamp(ret.requested.at), ret.return_id)
}

fn queue_item(order: &Order, ret: &Return) -> Item {
    let items = ret
        .items
        .iter()
        .map(|l| {
            AttributeValue::M(HashMap::from([
                ("product_id".into(), s(&l.product_id)),
                ("quantity".into(), n(l.quantity)),
                ("reason".into(), s(l.reason.as_str())),
            ]))
        })
        .collect();
    HashMap::from([
        (PK.into(), s(queue_partition(ret.status))),
        (SK.into(), s(queue_sort(ret))),
        ("order_id".into(), s(order.id.as_str())),
        ("user_id".into(), s(&order.user_id)),
        ("return_id".into(), s(ret.return_id.as_str())),
        ("return_status".into(), s(ret.status.as_str())),
        ("created_at".into(), s(timestamp(ret.requested.at))),
        ("items".into(), AttributeValue::L(items)),
    ])
}

/// The return label's tracking number, in the partition parcels' numbers use
/// (`TRACKING#<carrier>#<number>`), so the carrier's report finds it by the same Query.
fn tracking_item(order_id: &OrderId, tracked: &TrackedReturn) -> Item {
    HashMap::from([
        (
            PK.into(),
            s(tracking_partition(
                &tracked.carrier,
                &tracked.tracking_number,
            )),
        ),
        (
            SK.into(),
            s(format!("RETURN#{order_id}#{}", tracked.return_id)),
        ),
        ("order_id".into(), s(order_id.as_str())),
        ("return_id".into(), s(tracked.return_id.as_str())),
    ])
}

fn build<T, E: std::fmt::Display>(built: Result<T, E>) -> Result<T, StoreError> {
    built.map_err(|e| StoreError::Other(e.to_string()))
}

#[async_trait]
impl ReturnStore for DynamoOrderStore {
    async fn record_return(
        &self,
        after: &Order,
        filing: Option<&ReturnFiling>,
        indexed: Option<&TrackedReturn>,
    ) -> Result<ChangeOutcome, StoreError> {
        let entry = after
            .history
            .last()
            .ok_or_else(|| StoreError::Other("a return change without its entry".into()))?;
        let update = "SET #returns = :returns, updated_at = :now, version = :version, \
                      history = list_append(history, :entry)"
            .to_string();
        let values = HashMap::from([
            (":returns".to_string(), returns_to_value(&after.returns)),
            (":now".to_string(), s(timestamp(after.updated_at))),
            (":version".to_string(), n(after.version)),
            (":seen".to_string(), n(after.version - 1)),
            (
                ":entry".to_string(),
                AttributeValue::L(vec![history_to_value(entry)]),
            ),
        ]);
        // The version it was planned from: anything else changed it since.
        let condition = "attribute_exists(PK) AND version = :seen";
        let names = HashMap::from([("#returns".to_string(), "returns".to_string())]);
        if filing.is_none() && indexed.is_none() {
            return self
                .update_order(&after.id, update, condition, names, values)
                .await;
        }
        let order_update = build(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(order_key(&after.id)))
                .update_expression(update)
                .condition_expression(condition)
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build(),
        )?;
        let mut items = vec![TransactWriteItem::builder().update(order_update).build()];
        if let Some(filing) = filing {
            let ret = after
                .return_of(&filing.return_id)
                .ok_or_else(|| StoreError::Other("a filing of a return the order lacks".into()))?;
            let put = build(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(queue_item(after, ret)))
                    .build(),
            )?;
            items.push(TransactWriteItem::builder().put(put).build());
            if let Some(from) = filing.from.filter(|from| *from != ret.status) {
                let delete = build(
                    Delete::builder()
                        .table_name(&self.table)
                        .key(PK, s(queue_partition(from)))
                        .key(SK, s(queue_sort(ret)))
                        .build(),
                )?;
                items.push(TransactWriteItem::builder().delete(delete).build());
            }
        }
        if let Some(tracked) = indexed {
            let put = build(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(tracking_item(&after.id, tracked)))
                    .build(),
            )?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        match transact(&self.client, items).await? {
            Ok(()) => Ok(ChangeOutcome::Changed(Box::new(after.clone()))),
            Err(cancelled) => match cancelled.refused(0) {
                Some(reason) => {
                    let current = reason.item().map(order_from_item).transpose()?;
                    Ok(ChangeOutcome::Refused(current.map(Box::new)))
                }
                None => Err(cancelled.into_error()),
            },
        }
    }

    async fn return_queue(
        &self,
        status: ReturnStatus,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Option<ReturnQueuePage>, StoreError> {
        let partition = queue_partition(status);
        // The cursor is the last sort key read; any text only starts the page at
        // another point of the same status's queue (the partition is fixed), so a
        // forged one shows nothing the caller could not page to.
        let start = after.filter(|c| !c.is_empty()).map(|sort| {
            HashMap::from([(PK.to_string(), s(&partition)), (SK.to_string(), s(sort))])
        });
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(&partition))
            .set_exclusive_start_key(start)
            .limit(i32::try_from(limit).unwrap_or(100))
            .send()
            .await
            .map_err(store_error)?;
        let returns = output
            .items()
            .iter()
            .map(queued_from)
            .collect::<Result<Vec<_>, _>>()?;
        let next = output
            .last_evaluated_key()
            .and_then(|key| key.get(SK))
            .and_then(|v| v.as_s().ok())
            .map(|sort| sort.replace('#', "~"));
        Ok(Some(ReturnQueuePage { returns, next }))
    }
}

fn queued_from(item: &Item) -> Result<QueuedReturn, StoreError> {
    let corrupt = |field: &str| StoreError::Corrupt(format!("return queue {field}"));
    let text = |item: &Item, name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .ok_or_else(|| corrupt(name))
    };
    let items = item
        .get("items")
        .and_then(|v| v.as_l().ok())
        .ok_or_else(|| corrupt("items"))?
        .iter()
        .map(|v| {
            let line = v.as_m().map_err(|_| corrupt("items"))?;
            Ok(ReturnLine {
                product_id: text(line, "product_id")?,
                quantity: line
                    .get("quantity")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|q| q.parse().ok())
                    .ok_or_else(|| corrupt("quantity"))?,
                reason: ReturnReason::parse(&text(line, "reason")?)
                    .ok_or_else(|| corrupt("reason"))?,
                note: None,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(QueuedReturn {
        order_id: OrderId::parse(&text(item, "order_id")?).ok_or_else(|| corrupt("order_id"))?,
        user_id: text(item, "user_id")?,
        return_id: ReturnId::parse(&text(item, "return_id")?)
            .ok_or_else(|| corrupt("return_id"))?,
        status: ReturnStatus::parse(&text(item, "return_status")?)
            .ok_or_else(|| corrupt("return_status"))?,
        created_at: OffsetDateTime::parse(&text(item, "created_at")?, &Rfc3339)
            .map_err(|_| corrupt("created_at"))?,
        items,
    })
}

#[async_trait]
impl Restock for DynamoOrderStore {
    async fn restock(&self, key: &str, lines: &[StockLine]) -> Result<RestockOutcome, StoreError> {
        let tombstone = build(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(HashMap::from([
                    (PK.into(), s(format!("RESTOCK#{key}"))),
                    (SK.into(), s("RESTOCK")),
                    (
                        "restocked_at".into(),
                        s(timestamp(OffsetDateTime::now_utc())),
                    ),
                ])))
                .condition_expression("attribute_not_exists(PK)")
                .build(),
        )?;
        let mut items = vec![TransactWriteItem::builder().put(tombstone).build()];
        // One update per product: a transaction may touch an item once.
        let mut merged: Vec<(&str, u64)> = Vec::new();
        for line in lines {
            match merged.iter_mut().find(|(p, _)| *p == line.product_id) {
                Some((_, q)) => *q += line.quantity,
                None => merged.push((&line.product_id, line.quantity)),
            }
        }
        for (product_id, quantity) in merged {
            let update = build(
                Update::builder()
                    .table_name(&self.table)
                    .key(PK, s(format!("STOCK#{product_id}")))
                    .key(SK, s("STOCK"))
                    .update_expression("SET product_id = :p ADD available :q")
                    .expression_attribute_values(":p", s(product_id))
                    .expression_attribute_values(":q", n(quantity))
                    .build(),
            )?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        match transact(&self.client, items).await? {
            Ok(()) => Ok(RestockOutcome::Restocked),
            Err(cancelled) if cancelled.refused(0).is_some() => {
                Ok(RestockOutcome::AlreadyRestocked)
            }
            Err(cancelled) => Err(cancelled.into_error()),
        }
    }
}
