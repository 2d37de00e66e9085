//! `Inventory` on the orders table (single-table design):
//!
//! | item | `PK` | `SK` | attributes |
//! | --- | --- | --- | --- |
//! | stock | `STOCK#<product_id>` | `STOCK` | `product_id`, `available` (N), `oversold` (N)? |
//! | reservation | `RESERVATION#<order_id>` | `RESERVATION` | `order_id`, `lines` (list of `{product_id, quantity}`), `oversold`? (the same shape), `state` (`reserved`/`released`), `reserved_at`, `released_at`? |
//!
//! Neither carries `entity`, `status` or `user_id`, so neither appears in the order
//! indexes. A reservation is never deleted: once released it stays as a tombstone, so
//! a late redelivery of `order.confirmed` cannot reserve the same order twice.
//!
//! `oversold` counts units that shipped although the count did not have them (goods
//! that left before their order's stock was taken, `reserve_shipped`): on the
//! product's stock item, the total so far; on the reservation, this order's share,
//! which a release does not give back (it never was in stock).

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
use time::OffsetDateTime;

use super::order_item::{Item, PK, SK, n, s};
use crate::adapters::aws::store_error;
use crate::domain::OrderId;
use crate::domain::stock::{ReleaseOutcome, ReserveOutcome, ShippedOutcome, Shortfall, StockLine};
use crate::domain::time::timestamp;
use crate::ports::{Inventory, StoreError};

/// DynamoDB allows 100 actions in one transaction; one of them is the reservation.
pub const MAX_RESERVED_PRODUCTS: usize = 99;

/// Transactions `reserve_shipped` builds before giving up: each one after the first
/// was cancelled because a short product's count changed under it.
const SHIPPED_ATTEMPTS: usize = 5;

const STOCK_SK: &str = "STOCK";
const RESERVATION_SK: &str = "RESERVATION";

/// Whether a reservation still holds its stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationState {
    Reserved,
    Released,
}

impl ReservationState {
    pub fn as_str(&self) -> &'static str {
        match self {
            ReservationState::Reserved => "reserved",
            ReservationState::Released => "released",
        }
    }
}

/// A reservation as stored: one line per product, quantities summed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReservation {
    pub lines: Vec<StockLine>,
    /// Of `lines`, the units the count did not have when the goods shipped.
    pub oversold: Vec<StockLine>,
    pub state: ReservationState,
}

impl StoredReservation {
    /// Units of `product_id` this reservation took out of the count (its line less
    /// what was oversold): what a release gives back.
    pub fn taken(&self, product_id: &str) -> u64 {
        let sum = |lines: &[StockLine]| -> u64 {
            lines
                .iter()
                .filter(|l| l.product_id == product_id)
                .map(|l| l.quantity)
                .sum()
        };
        sum(&self.lines).saturating_sub(sum(&self.oversold))
    }
}

#[derive(Clone)]
pub struct DynamoInventory {
    client: Client,
    table: String,
}

impl DynamoInventory {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoInventory {
            client,
            table: table.into(),
        }
    }

    /// Units of `product_id` on hand and not reserved; `None` for an unknown product.
    pub async fn available(&self, product_id: &str) -> Result<Option<u64>, StoreError> {
        self.read(stock_key(product_id))
            .await?
            .map(|item| number(&item, "available"))
            .transpose()
    }

    /// Units of `product_id` that shipped beyond its count, in all (0 if none).
    pub async fn oversold(&self, product_id: &str) -> Result<u64, StoreError> {
        match self.read(stock_key(product_id)).await? {
            Some(item) if item.contains_key("oversold") => number(&item, "oversold"),
            _ => Ok(0),
        }
    }

    /// The reservation made for `order_id`, if any.
    pub async fn reservation(
        &self,
        order_id: &OrderId,
    ) -> Result<Option<StoredReservation>, StoreError> {
        self.read(reservation_key(order_id))
            .await?
            .map(|item| reservation_from_item(&item))
            .transpose()
    }

    async fn read(&self, key: Item) -> Result<Option<Item>, StoreError> {
        crate::adapters::aws::read_item(&self.client, &self.table, key).await
    }

    /// The reservation of `order_id`, written only if the order has none yet.
    fn new_reservation(
        &self,
        order_id: &OrderId,
        wanted: &BTreeMap<&str, u64>,
        oversold: &[Shortfall],
    ) -> Result<TransactWriteItem, StoreError> {
        let mut reservation = reservation_key(order_id);
        reservation.insert("order_id".into(), s(order_id.as_str()));
        reservation.insert("state".into(), s(ReservationState::Reserved.as_str()));
        reservation.insert(
            "lines".into(),
            AttributeValue::L(
                wanted
                    .iter()
                    .map(|(product, quantity)| line_to_value(product, *quantity))
                    .collect(),
            ),
        );
        if !oversold.is_empty() {
            reservation.insert(
                "oversold".into(),
                AttributeValue::L(
                    oversold
                        .iter()
                        .map(|short| line_to_value(&short.product_id, short.missing()))
                        .collect(),
                ),
            );
        }
        reservation.insert(
            "reserved_at".into(),
            s(timestamp(OffsetDateTime::now_utc())),
        );
        self.put(reservation, "attribute_not_exists(PK)")
    }

    /// `available -= quantity`, only if that many are available.
    fn take(&self, product_id: &str, quantity: u64) -> Result<TransactWriteItem, StoreError> {
        self.update(
            stock_key(product_id),
            "SET #available = #available - :q",
            Some("#available >= :q"),
            &[("#available", "available")],
            HashMap::from([(":q".to_string(), n(quantity))]),
        )
    }

    /// Everything left of a product the count is short of (`available` as last seen,
    /// `None`: no stock item): the count goes to zero and `missing` units are added to
    /// its oversold total. Conditioned on the count still being what was seen.
    fn take_all(
        &self,
        short: &Shortfall,
        seen: Option<u64>,
    ) -> Result<TransactWriteItem, StoreError> {
        let names = [("#available", "available"), ("#oversold", "oversold")];
        let mut values = HashMap::from([
            (":zero".to_string(), n(0)),
            (":missing".to_string(), n(short.missing())),
        ]);
        let (expression, condition) = match seen {
            Some(available) => {
                values.insert(":seen".to_string(), n(available));
                (
                    "SET #available = :zero ADD #oversold :missing",
                    "#available = :seen",
                )
            }
            None => {
                values.insert(":product".to_string(), s(&short.product_id));
                (
                    "SET #available = :zero, product_id = :product ADD #oversold :missing",
                    "attribute_not_exists(PK)",
                )
            }
        };
        self.update(
            stock_key(&short.product_id),
            expression,
            Some(condition),
            &names,
            values,
        )
    }

    fn put(&self, item: Item, condition: &str) -> Result<TransactWriteItem, StoreError> {
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map(|put| TransactWriteItem::builder().put(put).build())
            .map_err(|e| StoreError::Other(e.to_string()))
    }

    fn update(
        &self,
        key: Item,
        expression: &str,
        condition: Option<&str>,
        names: &[(&str, &str)],
        values: Item,
    ) -> Result<TransactWriteItem, StoreError> {
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(expression)
            .set_condition_expression(condition.map(str::to_string))
            .set_expression_attribute_names(Some(
                names
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ))
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map(|update| TransactWriteItem::builder().update(update).build())
            .map_err(|e| StoreError::Other(e.to_string()))
    }
}

#[async_trait]
impl Inventory for DynamoInventory {
    /// One transaction: the reservation (only if this order has none) and, per
    /// product, `available -= wanted` (only if that many are available). All or nothing.
    async fn reserve(
        &self,
        order_id: &OrderId,
        lines: &[StockLine],
    ) -> Result<ReserveOutcome, StoreError> {
        let wanted = merge(lines);
        if wanted.len() > MAX_RESERVED_PRODUCTS {
            return Ok(ReserveOutcome::TooLarge {
                products: wanted.len(),
            });
        }

        // The reservation is item 0, product i is item i + 1: the cancellation
        // reasons come back in the same order.
        let mut items = vec![self.new_reservation(order_id, &wanted, &[])?];
        for (product, quantity) in &wanted {
            items.push(self.take(product, *quantity)?);
        }

        let cancelled = match crate::adapters::aws::transact(&self.client, items).await? {
            Ok(()) => return Ok(ReserveOutcome::Reserved),
            Err(cancelled) => cancelled,
        };
        // The reservation speaks first: a redelivery must not read as a shortage
        // just because the stock it took is gone now.
        if cancelled.refused(0).is_some() {
            return Ok(ReserveOutcome::AlreadyReserved);
        }
        let short: Vec<Shortfall> = wanted
            .iter()
            .enumerate()
            .filter(|(i, _)| cancelled.refused(i + 1).is_some())
            .map(|(i, (product, quantity))| Shortfall {
                product_id: product.to_string(),
                wanted: *quantity,
                // No item in the reason: the product has never been stocked.
                available: cancelled
                    .refused(i + 1)
                    .and_then(CancellationReason::item)
                    .and_then(|item| number(item, "available").ok())
                    .unwrap_or(0),
            })
            .collect();
        if short.is_empty() {
            Err(cancelled.into_error())
        } else {
            Ok(ReserveOutcome::Short(short))
        }
    }

    /// One transaction, as `reserve`, built again (up to [`SHIPPED_ATTEMPTS`] times)
    /// while products come up short: a short product is then taken down to zero on
    /// the condition that its count is still the one the cancellation showed, and its
    /// missing units are recorded as oversold, on the reservation and the stock item.
    async fn reserve_shipped(
        &self,
        order_id: &OrderId,
        lines: &[StockLine],
    ) -> Result<ShippedOutcome, StoreError> {
        let wanted = merge(lines);
        if wanted.len() > MAX_RESERVED_PRODUCTS {
            return Ok(ShippedOutcome::TooLarge {
                products: wanted.len(),
            });
        }
        // The count each product was last seen at, once a transaction was refused
        // for it (`None`: no stock item). Unseen products get the plain decrement.
        let mut seen: BTreeMap<&str, Option<u64>> = BTreeMap::new();
        for _ in 0..SHIPPED_ATTEMPTS {
            let oversold: Vec<Shortfall> = wanted
                .iter()
                .filter_map(|(product, quantity)| {
                    let available = seen.get(product)?.unwrap_or(0);
                    (available < *quantity).then(|| Shortfall {
                        product_id: product.to_string(),
                        wanted: *quantity,
                        available,
                    })
                })
                .collect();
            let mut items = vec![self.new_reservation(order_id, &wanted, &oversold)?];
            for (product, quantity) in &wanted {
                items.push(match oversold.iter().find(|s| s.product_id == *product) {
                    Some(short) => self.take_all(short, seen[product])?,
                    None => self.take(product, *quantity)?,
                });
            }

            let cancelled = match crate::adapters::aws::transact(&self.client, items).await? {
                Ok(()) => return Ok(ShippedOutcome::Taken { oversold }),
                Err(cancelled) => cancelled,
            };
            if cancelled.refused(0).is_some() {
                return Ok(ShippedOutcome::AlreadyReserved);
            }
            let mut recounted = false;
            for (i, (product, _)) in wanted.iter().enumerate() {
                if let Some(reason) = cancelled.refused(i + 1) {
                    let available = reason
                        .item()
                        .map(|item| number(item, "available"))
                        .transpose()?;
                    seen.insert(product, available);
                    recounted = true;
                }
            }
            if !recounted {
                return Err(cancelled.into_error());
            }
        }
        Err(StoreError::Contention)
    }

    /// Reads the reservation for its lines (immutable once written), then one
    /// transaction: `state` reserved → released (only if still reserved) and
    /// `available += quantity` per line. A concurrent twin finds it released.
    async fn release(&self, order_id: &OrderId) -> Result<ReleaseOutcome, StoreError> {
        let Some(reservation) = self.reservation(order_id).await? else {
            return Ok(ReleaseOutcome::NeverReserved);
        };
        if reservation.state == ReservationState::Released {
            return Ok(ReleaseOutcome::AlreadyReleased);
        }

        let mut items = vec![self.update(
            reservation_key(order_id),
            "SET #state = :released, released_at = :now",
            Some("#state = :reserved"),
            &[("#state", "state")],
            HashMap::from([
                (
                    ":released".to_string(),
                    s(ReservationState::Released.as_str()),
                ),
                (
                    ":reserved".to_string(),
                    s(ReservationState::Reserved.as_str()),
                ),
                (":now".to_string(), s(timestamp(OffsetDateTime::now_utc()))),
            ]),
        )?];
        for line in &reservation.lines {
            // What was oversold never was in the count: it is not given back.
            let taken = reservation.taken(&line.product_id);
            if taken == 0 {
                continue;
            }
            // ADD, not SET: it works even if the stock item was removed meanwhile.
            items.push(self.update(
                stock_key(&line.product_id),
                "ADD #available :q",
                None,
                &[("#available", "available")],
                HashMap::from([(":q".to_string(), n(taken))]),
            )?);
        }

        let cancelled = match crate::adapters::aws::transact(&self.client, items).await? {
            Ok(()) => return Ok(ReleaseOutcome::Released),
            Err(cancelled) => cancelled,
        };
        if cancelled.refused(0).is_some() {
            return Ok(ReleaseOutcome::AlreadyReleased);
        }
        Err(cancelled.into_error())
    }

    async fn set_stock(&self, product_id: &str, available: u64) -> Result<(), StoreError> {
        let mut item = stock_key(product_id);
        item.insert("product_id".into(), s(product_id));
        item.insert("available".into(), n(available));
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

/// One entry per product, quantities summed: a cart may list a product twice, and a
/// transaction may touch each item only once.
fn merge(lines: &[StockLine]) -> BTreeMap<&str, u64> {
    let mut wanted = BTreeMap::new();
    for line in lines {
        *wanted.entry(line.product_id.as_str()).or_insert(0) += line.quantity;
    }
    wanted
}

fn stock_key(product_id: &str) -> Item {
    HashMap::from([
        (PK.into(), s(format!("STOCK#{product_id}"))),
        (SK.into(), s(STOCK_SK)),
    ])
}

fn reservation_key(order_id: &OrderId) -> Item {
    HashMap::from([
        (PK.into(), s(format!("RESERVATION#{order_id}"))),
        (SK.into(), s(RESERVATION_SK)),
    ])
}

fn line_to_value(product_id: &str, quantity: u64) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("product_id".into(), s(product_id)),
        ("quantity".into(), n(quantity)),
    ]))
}

fn reservation_from_item(item: &Item) -> Result<StoredReservation, StoreError> {
    let corrupt = |why: &str| StoreError::Corrupt(format!("reservation: {why}"));
    let state = match item
        .get("state")
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
    {
        Some("reserved") => ReservationState::Reserved,
        Some("released") => ReservationState::Released,
        _ => return Err(corrupt("unknown state")),
    };
    let stock_lines = |value: &AttributeValue| -> Result<Vec<StockLine>, StoreError> {
        value
            .as_l()
            .map_err(|_| corrupt("lines are not a list"))?
            .iter()
            .map(|line| {
                let line = line.as_m().map_err(|_| corrupt("line is not a map"))?;
                let product_id = line
                    .get("product_id")
                    .and_then(|v| v.as_s().ok())
                    .ok_or_else(|| corrupt("line without product_id"))?;
                Ok(StockLine {
                    product_id: product_id.clone(),
                    quantity: number(line, "quantity")?,
                })
            })
            .collect()
    };
    let lines = stock_lines(item.get("lines").ok_or_else(|| corrupt("no lines"))?)?;
    let oversold = match item.get("oversold") {
        Some(value) => stock_lines(value)?,
        None => Vec::new(),
    };
    Ok(StoredReservation {
        lines,
        oversold,
        state,
    })
}

fn number<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("{name}: not a number")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_the_same_product_are_reserved_together() {
        let line = |p: &str, q| StockLine {
            product_id: p.into(),
            quantity: q,
        };
        let lines = [line("b", 1), line("a", 2), line("b", 3)];
        let merged = merge(&lines);
        assert_eq!(merged.into_iter().collect::<Vec<_>>(), [("a", 2), ("b", 4)]);
    }
}
