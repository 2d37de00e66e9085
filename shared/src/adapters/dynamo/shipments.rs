//! An order's parcels on DynamoDB: a `shipments` list on the order's own item (so
//! `GET /api/orders/{id}` carries them at no second request), and one index item per
//! tracking number, `TRACKING#<carrier>#<number>` / `SHIPMENT#<order>#<shipment>`, so
//! a carrier's report finds its parcel with one Query on its partition. The same
//! number on two orders (a reused or mistyped one) is two items, never a refusal.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use super::order_item::{
    Item, PK, SK, history_to_value, n, order_from_item, order_key, s, status_partition,
};
use super::orders::DynamoOrderStore;
use super::shipment_item::shipments_to_value;
use crate::adapters::aws::store_error;
use crate::domain::fulfillment::{ShipmentId, Tracked};
use crate::domain::time::timestamp;
use crate::domain::{Order, OrderId};
use crate::ports::{ChangeOutcome, ShipmentStore, StoreError};

fn tracking_partition(carrier: &str, tracking_number: &str) -> String {
    format!("TRACKING#{carrier}#{tracking_number}")
}

fn tracking_item(order_id: &OrderId, tracked: &Tracked) -> Item {
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
            s(format!("SHIPMENT#{order_id}#{}", tracked.shipment_id)),
        ),
        ("order_id".into(), s(order_id.as_str())),
        ("shipment_id".into(), s(tracked.shipment_id.as_str())),
    ])
}

#[async_trait]
impl ShipmentStore for DynamoOrderStore {
    async fn record_shipping(
        &self,
        after: &Order,
        indexed: &[Tracked],
    ) -> Result<ChangeOutcome, StoreError> {
        let entry = after
            .history
            .last()
            .ok_or_else(|| StoreError::Other("a shipping change without its entry".into()))?;
        let mut set = vec![
            "#status = :status",
            "status_shard = :shard",
            "shipping_status = :shipping",
            "shipments = :shipments",
            "updated_at = :now",
            "version = :version",
            "history = list_append(history, :entry)",
        ];
        let mut values = HashMap::from([
            (":status".to_string(), s(after.status.as_str())),
            (
                ":shard".to_string(),
                s(status_partition(after.status, self.shards.of(&after.id))),
            ),
            (":shipping".to_string(), s(after.shipping_status.as_str())),
            (
                ":shipments".to_string(),
                shipments_to_value(&after.shipments),
            ),
            (":now".to_string(), s(timestamp(after.updated_at))),
            (":version".to_string(), n(after.version)),
            (":seen".to_string(), n(after.version - 1)),
            (
                ":entry".to_string(),
                AttributeValue::L(vec![history_to_value(entry)]),
            ),
        ]);
        if let Some(tracking) = &after.tracking_number {
            set.push("tracking_number = :tracking");
            values.insert(":tracking".into(), s(tracking));
        }
        if let Some(carrier) = &after.carrier {
            set.push("carrier = :carrier");
            values.insert(":carrier".into(), s(carrier));
        }
        let update = format!("SET {}", set.join(", "));
        // The version it was planned from: anything else changed it since, and the
        // plan is void (the caller plans again from the order this returns).
        let condition = "attribute_exists(PK) AND version = :seen";
        if indexed.is_empty() {
            return self
                .update_order(&after.id, update, condition, HashMap::new(), values)
                .await;
        }
        let order_update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(order_key(&after.id)))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#status", "status")
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().update(order_update).build()];
        for tracked in indexed {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(tracking_item(&after.id, tracked)))
                .build()
                .map_err(|e| StoreError::Other(e.to_string()))?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        match crate::adapters::aws::transact(&self.client, items).await? {
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

    async fn find_tracking(
        &self,
        carrier: &str,
        tracking_number: &str,
    ) -> Result<Vec<(OrderId, ShipmentId)>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(tracking_partition(carrier, tracking_number)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        output
            .items()
            .iter()
            .map(|item| {
                let text = |name: &str| {
                    item.get(name)
                        .and_then(|v| v.as_s().ok())
                        .ok_or_else(|| corrupt(name, "missing"))
                };
                let order = OrderId::parse(text("order_id")?)
                    .ok_or_else(|| corrupt("order_id", "not an order id"))?;
                let shipment = ShipmentId::parse(text("shipment_id")?)
                    .ok_or_else(|| corrupt("shipment_id", "not a shipment id"))?;
                Ok((order, shipment))
            })
            .collect()
    }
}

fn corrupt(field: &str, why: &str) -> StoreError {
    StoreError::Corrupt(format!("tracking index {field}: {why}"))
}
