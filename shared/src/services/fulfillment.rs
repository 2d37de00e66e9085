//! Fulfillment: what happens on `order.confirmed` and `order.cancelled` (the
//! fulfillment queue's messages; `inbound::sqs` hands them over one by one).
//!
//! On `order.confirmed` it reserves stock for every line in one conditional
//! transaction, then records the shipping status (processing, or backordered when
//! stock is short) through the store's conditional `update_shipping`, so the change
//! has its history entry and its event like any other. On `order.cancelled` of a
//! confirmed order it releases the reservation.
//!
//! Both act on the stored order, read strongly consistent, never on the event's
//! copy: the event says which order, the store says what to reserve, where to ship
//! and whether there is anything to do. An event naming a version the order never
//! reached, or lines and an address other than the stored ones, is forged: it goes to
//! the dead-letter queue with no effect.
//!
//! With `SHIPPING_LABELS=auto` (`with_automatic_labels`), an order whose stock is
//! reserved then gets its label, as an admin's `POST …/shipments` with no body would
//! (`ShippingService::automatic_label`): shipped with it, or `label_failed` with the
//! provider's refusal. A provider outage fails the message, which the queue retries
//! (the order waits, `processing`) and finally dead-letters.
//!
//! Redeliveries have no second effect because every step is conditional on the
//! state it moves from: the reservation exists at most once per order, the shipping
//! status moves only from where it was, a release happens only while reserved.
//!
//! Goods that ship come off the stock exactly once, whatever the order of events.
//! When the queue lags (a backlog, an outage) a person may ship a confirmed order
//! before its message is handled: the goods have left, so the stock is taken now,
//! with `Inventory::reserve_shipped`, which refuses nothing for shortage: what the
//! count lacks is recorded as oversold (`StockOversold`, alarmed) for a person to
//! reconcile. Only a cancelled order is skipped, and its reservation released.

use std::sync::Arc;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::domain::lifecycle::ShippingUpdate;
use crate::domain::stock::{ReleaseOutcome, ReserveOutcome, ShippedOutcome, Shortfall, StockLine};
use crate::domain::{Order, OrderId, OrderStatus, ShippingStatus};
use crate::events::{Envelope, OrderEvent};
use crate::ports::{ChangeOutcome, Inventory, OrderStore, StoreError};
use crate::ports::{Metric, MetricSet, Metrics, NoMetrics};
use crate::services::shipping::{AutomaticLabel, ShipmentError, ShippingService};

/// The `actor` of every change fulfillment records.
pub const ACTOR: &str = "fulfillment";

pub struct Fulfillment {
    store: Arc<dyn OrderStore>,
    inventory: Arc<dyn Inventory>,
    metrics: Arc<dyn Metrics>,
    /// With `SHIPPING_LABELS=auto`: buys each reserved order's label.
    labels: Option<Arc<ShippingService>>,
}

/// Why one message could not be handled. Every variant leaves the message on the
/// queue: transient ones succeed on a later receive, poison ones reach the
/// dead-letter queue after `maxReceiveCount`.
#[derive(Debug, thiserror::Error)]
pub enum FulfillmentError {
    #[error("not a fulfillment message: {0}")]
    Poison(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The automatic label could not be bought now (the provider is out, or an
    /// admin's purchase holds the order).
    #[error(transparent)]
    Label(#[from] ShipmentError),
}

/// What handling one message did, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Recorded(ShippingStatus),
    /// A redelivery, or the order moved on: nothing left to do.
    NothingToDo {
        status: OrderStatus,
        shipping: ShippingStatus,
    },
    Released(ReleaseOutcome),
    /// The order had shipped before its stock was taken: taken now, `oversold` the
    /// products the count was short of.
    TakenForShipped {
        oversold: Vec<Shortfall>,
    },
    Ignored(String),
}

impl Fulfillment {
    pub fn new(store: Arc<dyn OrderStore>, inventory: Arc<dyn Inventory>) -> Self {
        Fulfillment {
            store,
            inventory,
            metrics: Arc::new(NoMetrics),
            labels: None,
        }
    }

    /// `SHIPPING_LABELS=auto`: once its stock is reserved, an order's label is bought
    /// through `shipping`.
    pub fn with_automatic_labels(mut self, shipping: Arc<ShippingService>) -> Self {
        self.labels = Some(shipping);
        self
    }

    /// Reports `ConsumerLag` (the event's change to this consumer) and
    /// `StockOversold` (units shipped beyond the count).
    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Handles one message of the fulfillment queue (an EventBridge event as a rule
    /// delivers it). An error leaves the message on the queue.
    pub async fn handle(&self, body: Option<&str>) -> Result<Outcome, FulfillmentError> {
        let body = body.ok_or_else(|| FulfillmentError::Poison("no body".into()))?;
        let envelope: Envelope =
            serde_json::from_str(body).map_err(|e| FulfillmentError::Poison(e.to_string()))?;
        let event = &envelope.detail;
        tracing::info!(event_id = %event.event_id, order_id = %event.order_id, "fulfillment message");
        if let Ok(at) = OffsetDateTime::parse(&event.occurred_at, &Rfc3339) {
            let lag = (OffsetDateTime::now_utc() - at).whole_milliseconds().max(0);
            self.metrics.record(
                MetricSet::of(Metric::ConsumerLag, lag as f64).by("consumer", "fulfillment"),
            );
        }
        let order_id = OrderId::parse(&event.order_id).ok_or_else(|| {
            FulfillmentError::Poison(format!("not an order id: {:?}", event.order_id))
        })?;
        let confirmed = Some(OrderStatus::Confirmed.as_str());
        match envelope.detail_type.as_str() {
            "order.confirmed" => self.fulfill(&order_id, event).await,
            "order.cancelled" if event.previous_status.as_deref() == confirmed => {
                self.release(&order_id, event).await
            }
            other => Ok(Outcome::Ignored(other.to_string())),
        }
    }

    /// Acts on the stored order, never on the event's copy: anyone who can put an
    /// `order.confirmed` on the bus would otherwise choose what is reserved and where
    /// it ships. The event only says which order to look at.
    async fn fulfill(&self, id: &OrderId, event: &OrderEvent) -> Result<Outcome, FulfillmentError> {
        let Some(order) = self.store.get(id).await? else {
            return Err(self.no_such_order(id).await);
        };
        // Not a change this order went through (another status at that version, a
        // version it never reached, other lines or address): forged. The dead-letter
        // queue is where a person sees it.
        if !event.recorded_in_erased(&order) {
            return Err(forged(event));
        }
        match (order.status, order.shipping_status) {
            (OrderStatus::Confirmed, ShippingStatus::NotStarted | ShippingStatus::Backordered) => {}
            // Reserved, its automatic label not bought yet (the provider was out).
            (OrderStatus::Confirmed, ShippingStatus::Processing) if self.labels.is_some() => {
                return self.buy_label(id).await;
            }
            // Cancelled after confirmation: whatever an earlier attempt reserved goes back.
            (OrderStatus::Cancelled, _) => {
                self.label_left_behind(&order).await?;
                return Ok(Outcome::Released(self.inventory.release(id).await?));
            }
            // Shipped before this message was handled: the goods have left.
            (OrderStatus::Shipped | OrderStatus::Delivered, _) => {
                self.label_left_behind(&order).await?;
                return self.take_for_shipped(&order).await;
            }
            // Not confirmed (a forged event) or already processing (a redelivery).
            (status, shipping) => {
                self.label_left_behind(&order).await?;
                return Ok(Outcome::NothingToDo { status, shipping });
            }
        }
        let lines = stock_lines(&order);

        let update = match self.inventory.reserve(id, &lines).await? {
            // Already reserved: a retry after a failure between reserving and recording;
            // the order, read above, is still waiting for its shipment.
            ReserveOutcome::Reserved | ReserveOutcome::AlreadyReserved => {
                let reason = match self.labels {
                    Some(_) => "stock reserved; buying its label",
                    None => "stock reserved; awaiting manual shipment",
                };
                self.update(ShippingStatus::Processing, reason.to_string())
            }
            ReserveOutcome::Short(shortfalls) => {
                let short: Vec<String> = shortfalls
                    .iter()
                    .map(|s| {
                        format!(
                            "{} ({} wanted, {} available)",
                            s.product_id, s.wanted, s.available
                        )
                    })
                    .collect();
                self.update(
                    ShippingStatus::Backordered,
                    format!("insufficient stock: {}", short.join(", ")),
                )
            }
            ReserveOutcome::TooLarge { products } => self.update(
                ShippingStatus::Backordered,
                format!("{products} products are more than one reservation holds; reserve by hand"),
            ),
        };

        match self.store.update_shipping(id, &update).await? {
            ChangeOutcome::Changed(_) if update.to == ShippingStatus::Processing => {
                self.buy_label(id).await
            }
            ChangeOutcome::Changed(_) => Ok(Outcome::Recorded(update.to)),
            // Cancelled between confirmation and now: give the stock back.
            ChangeOutcome::Refused(Some(current)) if current.status == OrderStatus::Cancelled => {
                Ok(Outcome::Released(self.inventory.release(id).await?))
            }
            // Shipped meanwhile: if the reservation above was refused for shortage, the
            // goods left anyway (a reservation made above is found, nothing taken twice).
            ChangeOutcome::Refused(Some(current))
                if matches!(
                    current.status,
                    OrderStatus::Shipped | OrderStatus::Delivered
                ) =>
            {
                self.take_for_shipped(&current).await
            }
            // Already processing or backordered (a redelivery).
            ChangeOutcome::Refused(Some(current)) => Ok(Outcome::NothingToDo {
                status: current.status,
                shipping: current.shipping_status,
            }),
            ChangeOutcome::Refused(None) => Err(self.no_such_order(id).await),
        }
    }

    /// Takes a shipped (or delivered) order's goods out of stock, once: a shortage is
    /// recorded as oversold, never refused, since the goods are gone.
    async fn take_for_shipped(&self, order: &Order) -> Result<Outcome, FulfillmentError> {
        let id = &order.id;
        match self
            .inventory
            .reserve_shipped(id, &stock_lines(order))
            .await?
        {
            ShippedOutcome::Taken { oversold } => {
                let units: u64 = oversold.iter().map(Shortfall::missing).sum();
                if units > 0 {
                    tracing::error!(order_id = %id, ?oversold, "shipped beyond the stock count: recorded as oversold");
                    self.metrics
                        .record(MetricSet::of(Metric::StockOversold, units as f64));
                }
                Ok(Outcome::TakenForShipped { oversold })
            }
            ShippedOutcome::AlreadyReserved => Ok(Outcome::NothingToDo {
                status: order.status,
                shipping: order.shipping_status,
            }),
            // Retrying will not help: the dead-letter queue is where a person sees it.
            ShippedOutcome::TooLarge { products } => Err(FulfillmentError::Poison(format!(
                "order {id} shipped {products} products, more than one reservation holds; take them out of stock by hand"
            ))),
        }
    }

    /// Gives back a cancelled order's stock, if the stored order says it is cancelled:
    /// a forged `order.cancelled` of a live order releases nothing.
    async fn release(&self, id: &OrderId, event: &OrderEvent) -> Result<Outcome, FulfillmentError> {
        match self.store.get(id).await? {
            Some(order) if !event.recorded_in_erased(&order) => Err(forged(event)),
            Some(order) if order.status == OrderStatus::Cancelled => {
                Ok(Outcome::Released(self.inventory.release(id).await?))
            }
            Some(order) => Ok(Outcome::NothingToDo {
                status: order.status,
                shipping: order.shipping_status,
            }),
            None => Err(self.no_such_order(id).await),
        }
    }

    /// Stock is reserved and the order processing: with automatic labels, buy its
    /// label now (an outage fails the message, for the queue to retry).
    async fn buy_label(&self, id: &OrderId) -> Result<Outcome, FulfillmentError> {
        let Some(shipping) = &self.labels else {
            return Ok(Outcome::Recorded(ShippingStatus::Processing));
        };
        Ok(match shipping.automatic_label(id).await? {
            AutomaticLabel::Bought(order) => Outcome::Recorded(order.shipping_status),
            AutomaticLabel::Refused(_) => Outcome::Recorded(ShippingStatus::LabelFailed),
            AutomaticLabel::NothingToDo(order) => Outcome::NothingToDo {
                status: order.status,
                shipping: order.shipping_status,
            },
        })
    }

    /// With automatic labels, a redelivery that finds the order moved on without its
    /// label: one an earlier delivery bought and never recorded (it died, or lost
    /// Shippo's answer) is refunded rather than paid for unused.
    async fn label_left_behind(&self, order: &Order) -> Result<(), FulfillmentError> {
        match &self.labels {
            Some(shipping) => Ok(shipping.return_unrecorded_automatic_label(order).await?),
            None => Ok(()),
        }
    }

    fn update(&self, to: ShippingStatus, reason: String) -> ShippingUpdate {
        ShippingUpdate {
            to,
            actor: ACTOR.to_string(),
            reason: Some(reason),
            at: OffsetDateTime::now_utc(),
        }
    }

    /// An event about an order that is not stored: give back anything reserved for
    /// it, and let the message go to the dead-letter queue for a person to look at.
    async fn no_such_order(&self, id: &OrderId) -> FulfillmentError {
        if let Err(err) = self.inventory.release(id).await {
            return err.into();
        }
        FulfillmentError::Poison(format!("no order {id}"))
    }
}

/// What an order takes out of stock: its lines.
fn stock_lines(order: &Order) -> Vec<StockLine> {
    order
        .items
        .iter()
        .map(|line| StockLine {
            product_id: line.product_id.clone(),
            quantity: u64::from(line.quantity),
        })
        .collect()
}

fn forged(event: &OrderEvent) -> FulfillmentError {
    FulfillmentError::Poison(format!(
        "event {} is not a change the stored order went through",
        event.event_id
    ))
}
