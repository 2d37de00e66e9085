//! An order's parcels on DynamoDB: a `shipments` list on the order's own item (so
//! `GET /api/orders/{id}` carries them at no second request), and one index item per
//! tracking number, `TRACKING#<carrier>#<number>` / `SHIPMENT#<order>#<shipment>`, so
//! a carrier's report finds its parcel with one Query on its partition. The same
//! number on two orders (a reused or mistyped one) is two items, never a refusal. A
//! return label's number has its item in the same partition,
//! `RETURN#<order>#<return>` (written by `adapters::dynamo::returns`).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use time::OffsetDateTime;

use super::order_item::{Item, PK, SK, history_to_value, n, s, status_partition};
use super::orders::DynamoOrderStore;
use super::shipment_item::{label_failure_to_value, shipments_to_value};
use crate::adapters::aws::store_error;
use crate::domain::fulfillment::returns::ReturnId;
use crate::domain::fulfillment::{ShipmentId, Tracked};
use crate::domain::time::timestamp;
use crate::domain::{Currency, Money, Order, OrderId};
use crate::ports::{
    ChangeOutcome, ClaimToken, LabelClaims, LabelRate, ShipmentStore, StoreError, TrackingOf,
};

pub(super) fn tracking_partition(carrier: &str, tracking_number: &str) -> String {
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
        // Set by a refused automatic label, gone once a parcel is made.
        let remove = match &after.label_failure {
            Some(failure) => {
                set.push("label_failure = :label_failure");
                values.insert(":label_failure".into(), label_failure_to_value(failure));
                ""
            }
            None => " REMOVE label_failure",
        };
        let update = format!("SET {}{remove}", set.join(", "));
        // The version it was planned from: anything else changed it since, and the
        // plan is void (the caller plans again from the order this returns).
        let condition = "attribute_exists(PK) AND version = :seen";
        // The numbers' index items first, each an idempotent put, then the order alone:
        // half what one transaction of both costs (a transaction writes every item
        // twice). An index item whose order update is refused for good (the order moved
        // on, say cancelled) stays behind pointing at a parcel the order never got; a
        // carrier's report finds no such parcel on the order and changes nothing
        // (`services::shipping`'s `carrier_report`), and the item holds no personal data.
        for tracked in indexed {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(tracking_item(&after.id, tracked)))
                .send()
                .await
                .map_err(store_error)?;
        }
        self.update_order(&after.id, update, condition, HashMap::new(), values)
            .await
    }

    async fn find_tracking(
        &self,
        carrier: &str,
        tracking_number: &str,
    ) -> Result<Vec<TrackingOf>, StoreError> {
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
                if item.contains_key("return_id") {
                    let ret = ReturnId::parse(text("return_id")?)
                        .ok_or_else(|| corrupt("return_id", "not a return id"))?;
                    return Ok(TrackingOf::Return(order, ret));
                }
                let shipment = ShipmentId::parse(text("shipment_id")?)
                    .ok_or_else(|| corrupt("shipment_id", "not a shipment id"))?;
                Ok(TrackingOf::Parcel(order, shipment))
            })
            .collect()
    }
}

fn corrupt(field: &str, why: &str) -> StoreError {
    StoreError::Corrupt(format!("tracking index {field}: {why}"))
}

/// A label purchase's claim: `LABEL#<shipment or return id>`. It outlives the
/// purchase (so the rate stays known) until TTL removes it, long after any retry.
fn label_key(label: &str) -> Item {
    HashMap::from([
        (PK.into(), s(format!("LABEL#{label}"))),
        (SK.into(), s("LABEL")),
    ])
}

/// The hold on an order's label purchases (`LabelClaims::hold_order`):
/// `LABEL#<order id>`, beside the shipments' own claims.
fn order_hold_key(order: &OrderId) -> Item {
    HashMap::from([
        (PK.into(), s(format!("LABEL#{order}"))),
        (SK.into(), s("HOLD")),
    ])
}

/// How long a label claim is kept after its last use.
const LABEL_CLAIM_DAYS: i64 = 30;

fn millis(at: OffsetDateTime) -> i128 {
    at.unix_timestamp_nanos() / 1_000_000
}

#[async_trait]
impl LabelClaims for DynamoOrderStore {
    async fn claim(
        &self,
        shipment: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Option<(ClaimToken, Option<LabelRate>)>, StoreError> {
        let Some((token, item)) = self
            .take_claim(label_key(shipment), now, lease_until)
            .await?
        else {
            return Ok(None);
        };
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let rate = text("rate_id").map(|rate_id| LabelRate {
            rate_id,
            carrier: text("carrier").unwrap_or_default(),
            servicelevel: text("servicelevel"),
            cost: match (text("cost_amount"), text("cost_currency")) {
                (Some(amount), Some(code)) => Currency::from_code(&code)
                    .and_then(|c| amount.parse().ok().map(|minor| Money::from_minor(minor, c))),
                _ => None,
            },
        });
        Ok(Some((token, rate)))
    }

    async fn note_rate(
        &self,
        shipment: &str,
        claim: &ClaimToken,
        rate: &LabelRate,
    ) -> Result<(), StoreError> {
        let mut set = vec!["rate_id = :rate", "carrier = :carrier"];
        let mut values = HashMap::from([
            (":rate".to_string(), s(&rate.rate_id)),
            (":carrier".to_string(), s(&rate.carrier)),
            (":token".to_string(), s(&claim.0)),
        ]);
        if let Some(level) = &rate.servicelevel {
            set.push("servicelevel = :level");
            values.insert(":level".into(), s(level));
        }
        if let Some(cost) = &rate.cost {
            set.push("cost_amount = :amount, cost_currency = :currency");
            values.insert(":amount".into(), s(cost.minor().to_string()));
            values.insert(":currency".into(), s(cost.currency().code()));
        }
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(label_key(shipment)))
            .update_expression(format!("SET {}", set.join(", ")))
            // Only while this attempt holds the claim: a takeover chose its own rate.
            .condition_expression("claim = :token")
            .set_expression_attribute_values(Some(values))
            .send()
            .await
            .map_err(|err| match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => StoreError::Contention,
                _ => store_error(err),
            })?;
        Ok(())
    }

    async fn release(&self, shipment: &str, claim: &ClaimToken) -> Result<(), StoreError> {
        self.drop_claim(label_key(shipment), claim).await
    }

    async fn hold_order(
        &self,
        order: &OrderId,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Option<ClaimToken>, StoreError> {
        Ok(self
            .take_claim(order_hold_key(order), now, lease_until)
            .await?
            .map(|(token, _)| token))
    }

    async fn release_order(&self, order: &OrderId, claim: &ClaimToken) -> Result<(), StoreError> {
        self.drop_claim(order_hold_key(order), claim).await
    }
}

impl DynamoOrderStore {
    /// Takes the claim item `key` (free, or held by an attempt whose lease ran out:
    /// it died) until `lease_until`; answers the item as it now is.
    async fn take_claim(
        &self,
        key: Item,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Option<(ClaimToken, Item)>, StoreError> {
        let mut bytes = [0u8; 16];
        crate::domain::random::fill(&mut bytes)
            .map_err(|_| StoreError::Other("no randomness".into()))?;
        let token = ClaimToken(bytes.iter().map(|b| format!("{b:02x}")).collect());
        let expires = now + time::Duration::days(LABEL_CLAIM_DAYS);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression("SET claim = :token, lease_until = :until, expires_at = :expires")
            .condition_expression("attribute_not_exists(claim) OR lease_until < :now")
            .expression_attribute_values(":token", s(&token.0))
            .expression_attribute_values(":until", n(millis(lease_until)))
            .expression_attribute_values(":now", n(millis(now)))
            .expression_attribute_values(":expires", n(expires.unix_timestamp()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Some((token, output.attributes.unwrap_or_default()))),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(None),
                _ => Err(store_error(err)),
            },
        }
    }

    /// Ends the claim `key` if `claim` still holds it (a takeover's is left alone).
    async fn drop_claim(&self, key: Item, claim: &ClaimToken) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression("REMOVE claim, lease_until")
            .condition_expression("claim = :token")
            .expression_attribute_values(":token", s(&claim.0))
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
}
