//! `Inventory` on the orders table (single-table design):
//!
//! | item | `PK` | `SK` | attributes |
//! | --- | --- | --- | --- |
//! | stock | `STOCK#<product_id>` | `STOCK` | `product_id`, `available` (N), `oversold` (N)?, `shards` (N)? |
//! | stock shard | `STOCKSHARD#<product_id>#<k>` | `STOCK` | `product_id`, `shard` (N), `available` (N) |
//! | reservation | `RESERVATION#<order_id>` | `RESERVATION` | `order_id`, `lines` (list of `{product_id, quantity}`), `oversold`? (the same shape), `takes`? (list of `{product_id, shard?, quantity}`), `state` (`reserved`/`released`), `reserved_at`, `released_at`? |
//!
//! None carries `entity`, `status` or `user_id`, so none appears in the order
//! indexes. A reservation is never deleted: once released it stays as a tombstone, so
//! a late redelivery of `order.confirmed` cannot reserve the same order twice.
//!
//! `oversold` counts units that shipped although the count did not have them (goods
//! that left before their order's stock was taken, `reserve_shipped`): on the
//! product's stock item, the total so far; on the reservation, this order's share,
//! which a release does not give back (it never was in stock).
//!
//! **A hot product's stock is split** (`split_stock`, `docs/scale.md`): its stock item
//! says over how many shard items (`shards`) and each shard holds part of the count,
//! so that a flash sale's reservations spread over N items instead of queueing on one
//! (an item takes 1,000 write units a second, 500 transactional updates). An order
//! reserves from the shard its id hashes to; when that shard runs dry, the counts of
//! all of them (and of the stock item itself, where restocked and returned units go)
//! are read and the order takes from whichever have units, each take conditioned on
//! the count it read: nothing is ever taken that is not there. The reservation
//! records which items it took from (`takes`), so a release gives back to them. An
//! instance learns that a product is split from the first transaction the stock
//! item refuses (its `shards`), and keeps it in memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
use time::OffsetDateTime;

use super::order_item::{Item, PK, SK, n, s};
use crate::adapters::aws::store_error;
use crate::domain::OrderId;
use crate::domain::stock::{
    MAX_STOCK_SHARDS, ReleaseOutcome, ReserveOutcome, ShippedOutcome, Shortfall, StockLine,
    first_shard, plan_takes, split_evenly,
};
use crate::domain::time::timestamp;
use crate::ports::{Inventory, StoreError};

/// DynamoDB allows 100 actions in one transaction; one of them is the reservation.
pub const MAX_RESERVED_PRODUCTS: usize = 99;

/// Transactions a reservation builds before giving up (the message is retried): each
/// one after the first was cancelled because a count changed under it.
const RESERVE_ATTEMPTS: usize = 6;

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

/// Which item of a product's stock a count or a take is on: the product's stock item,
/// or shard `k` of a split product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pool {
    Main,
    Shard(u32),
}

/// Units of a product taken from one of its items, as a reservation records them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Take {
    pub product_id: String,
    pub pool: Pool,
    pub quantity: u64,
}

/// A reservation as stored: one line per product, quantities summed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReservation {
    pub lines: Vec<StockLine>,
    /// Of `lines`, the units the count did not have when the goods shipped.
    pub oversold: Vec<StockLine>,
    /// Where the units of split products came from (empty when none was split).
    pub takes: Vec<Take>,
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

/// A product's counts as read: its stock item's (`None`: no stock item) and, for a
/// split product, each shard's.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Counts {
    main: Option<u64>,
    shards: Vec<u64>,
}

impl Counts {
    fn total(&self) -> u64 {
        self.main.unwrap_or(0) + self.shards.iter().sum::<u64>()
    }

    /// The items in the order a take falls back through: the shards, then the stock
    /// item (restocked and returned units).
    fn pools(&self) -> Vec<(Pool, u64)> {
        (0..)
            .map(Pool::Shard)
            .zip(self.shards.iter().copied())
            .chain([(Pool::Main, self.main.unwrap_or(0))])
            .collect()
    }
}

/// One write of a reservation's transaction on a product's stock.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// `available -= quantity`, only if that many are there.
    Take(Pool, u64),
    /// Everything the item had when read (`seen`; `None`: no stock item), for goods that
    /// have left: the count goes to zero, conditioned on still being `seen`; on the
    /// stock item, `oversold` units are added to its oversold total.
    Drain {
        pool: Pool,
        seen: Option<u64>,
        oversold: u64,
    },
}

impl Step {
    fn pool(&self) -> Pool {
        match self {
            Step::Take(pool, _) | Step::Drain { pool, .. } => *pool,
        }
    }

    fn taken(&self) -> u64 {
        match self {
            Step::Take(_, quantity) => *quantity,
            Step::Drain { seen, .. } => seen.unwrap_or(0),
        }
    }
}

#[derive(Clone)]
pub struct DynamoInventory {
    client: Client,
    table: String,
    /// Products this instance knows to be split, and over how many shards.
    split: Arc<Mutex<HashMap<String, u32>>>,
}

impl DynamoInventory {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoInventory {
            client,
            table: table.into(),
            split: Arc::default(),
        }
    }

    /// Units of `product_id` on hand and not reserved, over all its items; `None` for
    /// an unknown product.
    pub async fn available(&self, product_id: &str) -> Result<Option<u64>, StoreError> {
        let counts = self.recount(product_id).await?;
        Ok((counts.main.is_some() || !counts.shards.is_empty()).then(|| counts.total()))
    }

    /// Units of `product_id` that shipped beyond its count, in all (0 if none).
    pub async fn oversold(&self, product_id: &str) -> Result<u64, StoreError> {
        match self.read(stock_key(product_id)).await? {
            Some(item) if item.contains_key("oversold") => number(&item, "oversold"),
            _ => Ok(0),
        }
    }

    /// The shard counts of `product_id` (empty: not split).
    pub async fn shard_counts(&self, product_id: &str) -> Result<Vec<u64>, StoreError> {
        Ok(self.recount(product_id).await?.shards)
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

    fn known_shards(&self, product_id: &str) -> Option<u32> {
        self.split
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(product_id)
            .copied()
    }

    fn learn_shards(&self, product_id: &str, shards: u32) {
        let mut split = self.split.lock().unwrap_or_else(|e| e.into_inner());
        if shards == 0 {
            split.remove(product_id);
        } else {
            split.insert(product_id.to_string(), shards);
        }
    }

    /// Every count of `product_id`, strongly consistent: its stock item and the
    /// shards it names, in one `BatchGetItem` (again if the stock item names another
    /// number of shards than this instance knew).
    async fn recount(&self, product_id: &str) -> Result<Counts, StoreError> {
        let mut shards = self.known_shards(product_id).unwrap_or(0);
        for _ in 0..3 {
            let mut keys = vec![stock_key(product_id)];
            keys.extend((0..shards).map(|k| pool_key(product_id, Pool::Shard(k))));
            let items = self.batch_read(keys).await?;
            let main = items
                .iter()
                .find(|item| is_pool(item, product_id, Pool::Main));
            let named = main.map(shard_count).transpose()?.unwrap_or(0);
            if named != shards {
                self.learn_shards(product_id, named);
                shards = named;
                continue;
            }
            self.learn_shards(product_id, named);
            let mut counts = Counts {
                main: main.map(|item| number(item, "available")).transpose()?,
                shards: vec![0; shards as usize],
            };
            for k in 0..shards {
                if let Some(item) = items
                    .iter()
                    .find(|item| is_pool(item, product_id, Pool::Shard(k)))
                {
                    counts.shards[k as usize] = number(item, "available")?;
                }
            }
            return Ok(counts);
        }
        Err(StoreError::Contention)
    }

    async fn batch_read(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut pending = keys;
        // What BatchGetItem leaves unprocessed (throttling) is asked again, a few times.
        for _ in 0..5 {
            if pending.is_empty() {
                return Ok(items);
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(pending.clone()))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Other(e.to_string()))?;
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(store_error)?;
            if let Some(found) = output.responses().and_then(|r| r.get(&self.table)) {
                items.extend(found.iter().cloned());
            }
            pending = output
                .unprocessed_keys()
                .and_then(|u| u.get(&self.table))
                .map(|k| k.keys().to_vec())
                .unwrap_or_default();
        }
        if pending.is_empty() {
            Ok(items)
        } else {
            Err(StoreError::Throttled)
        }
    }

    /// What a product's takes will be: with no counts read yet, all of it from the
    /// shard the order hashes to (a split product) or the stock item; with counts,
    /// as much as each item has (`plan_takes`). Short of units: `Err` with what all
    /// the items have, unless the goods have left (`shipped`): then every item is
    /// drained and the rest recorded as oversold.
    fn plan(
        &self,
        order_id: &OrderId,
        product_id: &str,
        wanted: u64,
        counts: Option<&Counts>,
        shipped: bool,
    ) -> Result<Vec<Step>, Shortfall> {
        let Some(counts) = counts else {
            return Ok(match self.known_shards(product_id) {
                Some(shards) => vec![Step::Take(
                    Pool::Shard(first_shard(order_id.as_str(), shards)),
                    wanted,
                )],
                None => vec![Step::Take(Pool::Main, wanted)],
            });
        };
        let pools = counts.pools();
        let first = if counts.shards.is_empty() {
            0
        } else {
            first_shard(order_id.as_str(), counts.shards.len() as u32) as usize
        };
        let have: Vec<u64> = pools.iter().map(|(_, count)| *count).collect();
        if let Some(takes) = plan_takes(&have, first, wanted) {
            return Ok(takes
                .into_iter()
                .map(|(index, quantity)| Step::Take(pools[index].0, quantity))
                .collect());
        }
        let short = Shortfall {
            product_id: product_id.to_string(),
            wanted,
            available: counts.total(),
        };
        if !shipped {
            return Err(short);
        }
        let mut steps: Vec<Step> = pools
            .iter()
            .filter(|(pool, count)| *pool != Pool::Main && *count > 0)
            .map(|(pool, count)| Step::Drain {
                pool: *pool,
                seen: Some(*count),
                oversold: 0,
            })
            .collect();
        steps.push(Step::Drain {
            pool: Pool::Main,
            seen: counts.main,
            oversold: short.missing(),
        });
        Ok(steps)
    }

    /// The reservation of `order_id`, written only if the order has none yet.
    fn new_reservation(
        &self,
        order_id: &OrderId,
        wanted: &BTreeMap<&str, u64>,
        oversold: &[Shortfall],
        takes: &[Take],
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
        if !takes.is_empty() {
            reservation.insert(
                "takes".into(),
                AttributeValue::L(takes.iter().map(take_to_value).collect()),
            );
        }
        reservation.insert(
            "reserved_at".into(),
            s(timestamp(OffsetDateTime::now_utc())),
        );
        self.put(reservation, "attribute_not_exists(PK)")
    }

    fn step(&self, product_id: &str, step: &Step) -> Result<TransactWriteItem, StoreError> {
        let key = pool_key(product_id, step.pool());
        match step {
            Step::Take(_, quantity) => self.update(
                key,
                "SET #available = #available - :q",
                Some("#available >= :q"),
                &[("#available", "available")],
                HashMap::from([(":q".to_string(), n(*quantity))]),
            ),
            Step::Drain {
                pool,
                seen,
                oversold,
            } => {
                let mut names = vec![("#available", "available")];
                let mut values = HashMap::from([(":zero".to_string(), n(0))]);
                let mut set = vec!["#available = :zero"];
                let condition = match seen {
                    Some(available) => {
                        values.insert(":seen".to_string(), n(*available));
                        "#available = :seen"
                    }
                    None => {
                        // No stock item yet: it is created with the product's id.
                        values.insert(":product".to_string(), s(product_id));
                        set.push("product_id = :product");
                        "attribute_not_exists(PK)"
                    }
                };
                let mut expression = format!("SET {}", set.join(", "));
                if *pool == Pool::Main && *oversold > 0 {
                    names.push(("#oversold", "oversold"));
                    values.insert(":missing".to_string(), n(*oversold));
                    expression.push_str(" ADD #oversold :missing");
                }
                self.update(key, &expression, Some(condition), &names, values)
            }
        }
    }

    /// Reserves `lines` for `order_id`, as `reserve` (`shipped`: false) or
    /// `reserve_shipped` (true) promise: one transaction, the reservation first, then
    /// every product's takes; built again with fresh counts while a count refuses.
    async fn take_stock(
        &self,
        order_id: &OrderId,
        lines: &[StockLine],
        shipped: bool,
    ) -> Result<Result<Vec<Shortfall>, ReserveOutcome>, StoreError> {
        let wanted = merge(lines);
        if wanted.len() > MAX_RESERVED_PRODUCTS {
            return Ok(Err(ReserveOutcome::TooLarge {
                products: wanted.len(),
            }));
        }
        // The counts of products a transaction was refused for, as read since.
        let mut counts: BTreeMap<&str, Counts> = BTreeMap::new();
        for _ in 0..RESERVE_ATTEMPTS {
            let mut plans: Vec<(&str, Vec<Step>)> = Vec::new();
            let mut short = Vec::new();
            for (product, quantity) in &wanted {
                match self.plan(order_id, product, *quantity, counts.get(product), shipped) {
                    Ok(steps) => plans.push((product, steps)),
                    Err(shortfall) => short.push(shortfall),
                }
            }
            if !short.is_empty() {
                return Ok(Err(ReserveOutcome::Short(short)));
            }
            let oversold: Vec<Shortfall> = plans
                .iter()
                .filter_map(|(product, steps)| {
                    let missing = steps.iter().find_map(|step| match step {
                        Step::Drain { oversold, .. } if *oversold > 0 => Some(*oversold),
                        _ => None,
                    })?;
                    let wanted = wanted[product];
                    Some(Shortfall {
                        product_id: product.to_string(),
                        wanted,
                        available: wanted - missing,
                    })
                })
                .collect();
            // Where split products' units come from, for the release.
            let takes: Vec<Take> = plans
                .iter()
                .filter(|(_, steps)| steps.iter().any(|step| step.pool() != Pool::Main))
                .flat_map(|(product, steps)| {
                    steps
                        .iter()
                        .filter(|step| step.taken() > 0)
                        .map(|step| Take {
                            product_id: product.to_string(),
                            pool: step.pool(),
                            quantity: step.taken(),
                        })
                })
                .collect();

            // The reservation is item 0, then every product's steps in turn: the
            // cancellation reasons come back in the same order.
            let mut items = vec![self.new_reservation(order_id, &wanted, &oversold, &takes)?];
            let mut owners: Vec<(&str, Pool)> = Vec::new();
            for (product, steps) in &plans {
                for step in steps {
                    items.push(self.step(product, step)?);
                    owners.push((product, step.pool()));
                }
            }
            if items.len() > MAX_RESERVED_PRODUCTS + 1 {
                return Ok(Err(ReserveOutcome::TooLarge {
                    products: wanted.len(),
                }));
            }

            let cancelled = match crate::adapters::aws::transact(&self.client, items).await? {
                Ok(()) => return Ok(Ok(oversold)),
                Err(cancelled) => cancelled,
            };
            // The reservation speaks first: a redelivery must not read as a shortage
            // just because the stock it took is gone now.
            if cancelled.refused(0).is_some() {
                return Ok(Err(ReserveOutcome::AlreadyReserved));
            }
            let mut recounted = false;
            for (i, (product, pool)) in owners.iter().enumerate() {
                let Some(reason) = cancelled.refused(i + 1) else {
                    continue;
                };
                recounted = true;
                let item = reason.item();
                let named = item.map(shard_count).transpose()?.unwrap_or(0);
                if *pool == Pool::Main && named == 0 {
                    // A product that is not split: the refusal shows its count.
                    self.learn_shards(product, 0);
                    counts.insert(
                        product,
                        Counts {
                            main: item.map(|item| number(item, "available")).transpose()?,
                            shards: Vec::new(),
                        },
                    );
                } else {
                    if *pool == Pool::Main {
                        self.learn_shards(product, named);
                    }
                    counts.insert(product, self.recount(product).await?);
                }
            }
            if !recounted {
                return Err(cancelled.into_error());
            }
        }
        Err(StoreError::Contention)
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

    /// Sets a product's count: on its stock item alone (`shards` 0) or split evenly
    /// over `shards` items, in one transaction that also removes the shards of an
    /// earlier split this one does not use, so no count is left where no reservation
    /// looks.
    async fn write_stock(
        &self,
        product_id: &str,
        available: u64,
        shards: u32,
    ) -> Result<(), StoreError> {
        let before = match self.read(stock_key(product_id)).await? {
            Some(item) => shard_count(&item)?,
            None => 0,
        };
        let mut main = stock_key(product_id);
        main.insert("product_id".into(), s(product_id));
        let mut items = Vec::new();
        if shards == 0 {
            main.insert("available".into(), n(available));
        } else {
            main.insert("available".into(), n(0));
            main.insert("shards".into(), n(shards));
            for (k, part) in (0..).zip(split_evenly(available, shards)) {
                let mut shard = pool_key(product_id, Pool::Shard(k));
                shard.insert("product_id".into(), s(product_id));
                shard.insert("shard".into(), n(k));
                shard.insert("available".into(), n(part));
                items.push(plain_put(&self.table, shard)?);
            }
        }
        items.insert(0, plain_put(&self.table, main)?);
        for k in shards..before {
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(pool_key(product_id, Pool::Shard(k))))
                .build()
                .map_err(|e| StoreError::Other(e.to_string()))?;
            items.push(TransactWriteItem::builder().delete(delete).build());
        }
        match crate::adapters::aws::transact(&self.client, items).await? {
            Ok(()) => {
                self.learn_shards(product_id, shards);
                Ok(())
            }
            Err(cancelled) => Err(cancelled.into_error()),
        }
    }
}

#[async_trait]
impl Inventory for DynamoInventory {
    /// One transaction: the reservation (only if this order has none) and, per
    /// product, `available -= wanted` on its stock item, or for a split product on the
    /// shard the order hashes to (only if that many are there). All or nothing. A
    /// split product's dry shard makes it read every count and take from those that
    /// have units.
    async fn reserve(
        &self,
        order_id: &OrderId,
        lines: &[StockLine],
    ) -> Result<ReserveOutcome, StoreError> {
        Ok(match self.take_stock(order_id, lines, false).await? {
            Ok(_) => ReserveOutcome::Reserved,
            Err(outcome) => outcome,
        })
    }

    /// As `reserve`, built again while products come up short: a short product's
    /// items are then taken down to zero on the condition that their counts are still
    /// the ones read, and its missing units are recorded as oversold, on the
    /// reservation and the product's stock item.
    async fn reserve_shipped(
        &self,
        order_id: &OrderId,
        lines: &[StockLine],
    ) -> Result<ShippedOutcome, StoreError> {
        Ok(match self.take_stock(order_id, lines, true).await? {
            Ok(oversold) => ShippedOutcome::Taken { oversold },
            Err(ReserveOutcome::AlreadyReserved) => ShippedOutcome::AlreadyReserved,
            Err(ReserveOutcome::TooLarge { products }) => ShippedOutcome::TooLarge { products },
            Err(other) => {
                return Err(StoreError::Other(format!(
                    "a shipped order's stock came back as {other:?}"
                )));
            }
        })
    }

    /// Reads the reservation for its lines (immutable once written), then one
    /// transaction: `state` reserved → released (only if still reserved) and
    /// `available += quantity` on each item the units came from. A concurrent twin
    /// finds it released.
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
            let product = line.product_id.as_str();
            let split: Vec<&Take> = reservation
                .takes
                .iter()
                .filter(|take| take.product_id == product)
                .collect();
            // What was oversold never was in the count: it is not given back.
            let gives: Vec<(Pool, u64)> = if split.is_empty() {
                vec![(Pool::Main, reservation.taken(product))]
            } else {
                split
                    .iter()
                    .map(|take| (take.pool, take.quantity))
                    .collect()
            };
            for (pool, quantity) in gives.into_iter().filter(|(_, q)| *q > 0) {
                // ADD, not SET: it works even if the stock item was removed meanwhile.
                items.push(self.update(
                    pool_key(product, pool),
                    "ADD #available :q",
                    None,
                    &[("#available", "available")],
                    HashMap::from([(":q".to_string(), n(quantity))]),
                )?);
            }
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
        self.write_stock(product_id, available, 0).await
    }

    async fn split_stock(
        &self,
        product_id: &str,
        available: u64,
        shards: u32,
    ) -> Result<(), StoreError> {
        if !(1..=MAX_STOCK_SHARDS).contains(&shards) {
            return Err(StoreError::Other(format!(
                "a product's stock is split over 1 to {MAX_STOCK_SHARDS} items, not {shards}"
            )));
        }
        self.write_stock(product_id, available, shards).await
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

/// The item a product's count is on: its stock item, or one of its shards (a product
/// id may hold `#`; the shard number after the last one cannot).
fn pool_key(product_id: &str, pool: Pool) -> Item {
    match pool {
        Pool::Main => stock_key(product_id),
        Pool::Shard(k) => HashMap::from([
            (PK.into(), s(format!("STOCKSHARD#{product_id}#{k}"))),
            (SK.into(), s(STOCK_SK)),
        ]),
    }
}

fn is_pool(item: &Item, product_id: &str, pool: Pool) -> bool {
    let key = pool_key(product_id, pool);
    item.get(PK) == key.get(PK)
}

/// Over how many shards a stock item says its product is split (0: not split).
fn shard_count(item: &Item) -> Result<u32, StoreError> {
    match item.get("shards") {
        Some(_) => number(item, "shards"),
        None => Ok(0),
    }
}

fn plain_put(table: &str, item: Item) -> Result<TransactWriteItem, StoreError> {
    Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .build()
        .map(|put| TransactWriteItem::builder().put(put).build())
        .map_err(|e| StoreError::Other(e.to_string()))
}

fn take_to_value(take: &Take) -> AttributeValue {
    let mut value = HashMap::from([
        ("product_id".into(), s(&take.product_id)),
        ("quantity".into(), n(take.quantity)),
    ]);
    if let Pool::Shard(k) = take.pool {
        value.insert("shard".into(), n(k));
    }
    AttributeValue::M(value)
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
    let takes = match item.get("takes") {
        Some(value) => value
            .as_l()
            .map_err(|_| corrupt("takes are not a list"))?
            .iter()
            .map(|take| {
                let take = take.as_m().map_err(|_| corrupt("take is not a map"))?;
                let product_id = take
                    .get("product_id")
                    .and_then(|v| v.as_s().ok())
                    .ok_or_else(|| corrupt("take without product_id"))?;
                Ok(Take {
                    product_id: product_id.clone(),
                    pool: match take.get("shard") {
                        Some(_) => Pool::Shard(number(take, "shard")?),
                        None => Pool::Main,
                    },
                    quantity: number(take, "quantity")?,
                })
            })
            .collect::<Result<_, StoreError>>()?,
        None => Vec::new(),
    };
    Ok(StoredReservation {
        lines,
        oversold,
        takes,
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
