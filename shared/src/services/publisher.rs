//! The stream publisher: the orders table's stream is the outbox, and every recorded
//! change of an order becomes exactly one event on the bus.
//!
//! How a batch of changes (`inbound::stream` reads them from Lambda's DynamoDB event
//! source, with `ReportBatchItemFailures`) is handled, and why:
//!
//! - **Which records.** Only order items (`PK` = `ORDER#<id>`, `SK` = `ORDER`);
//!   idempotency records and anything else in the table are skipped. `INSERT` is
//!   `order.created`; `MODIFY` is the change from the old image to the new one, and no
//!   event when the version did not move; `REMOVE` is skipped (orders are never
//!   deleted; idempotency records expire by TTL).
//! - **Order.** A shard's records arrive in order and are published in that order.
//!   PutEvents entries that fail are retried with backoff (50, 100, 200 ms).
//! - **Failures.** The sequence number of the first record whose event still could not
//!   be published is the batch's single item failure: Lambda checkpoints before it and
//!   retries from it, so every record after it is published again, even one that went
//!   out already. That is why an event's id is derived from the change
//!   (`<order_id>:<sequence>`) and consumers drop ids they have seen.
//! - **Poison.** A record whose image is not a readable order cannot succeed on retry.
//!   It is logged with `tracing::error` and reported as the failure too, so that the
//!   template's bisect-on-error, `MaximumRetryAttempts` and on-failure destination
//!   isolate it and hand its coordinates to the failure queue instead of blocking the
//!   shard forever. Records after it are left for the retry (publishing them now would
//!   only publish them twice).

use std::sync::Arc;
use std::time::Duration;

use time::format_description::well_known::Rfc3339;

use crate::domain::Order;
use crate::events::OrderEvent;
use crate::ports::{EventBus, Metric, MetricSet, Metrics, NoMetrics};

/// Pauses before the retries of the entries that failed.
const BACKOFF: [Duration; 3] = [
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(200),
];

/// One record of the change feed as read: the order before (none when new) and
/// after, nothing for records that are not order changes, or why it is unreadable.
pub type Recorded = Result<Option<(Option<Order>, Order)>, String>;

pub struct Publisher {
    bus: Arc<dyn EventBus>,
    metrics: Arc<dyn Metrics>,
}

impl Publisher {
    pub fn new(bus: Arc<dyn EventBus>) -> Publisher {
        Publisher {
            bus,
            metrics: Arc::new(NoMetrics),
        }
    }

    /// Reports `ConsumerLag` (commit to bus, the batch's oldest) and `PublishFailures`.
    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Publisher {
        self.metrics = metrics;
        self
    }

    /// Publishes the event of every change in `records`, in order, up to the first
    /// unreadable record. Answers the index of the first record from which the feed
    /// must be read again (the first one whose event did not go out, or the poison
    /// one), or `None` when all of them are done.
    pub async fn publish_changes(&self, records: &[Recorded]) -> Option<usize> {
        let mut events = Vec::new();
        let mut positions = Vec::new();
        let mut poison = None;
        for (at, record) in records.iter().enumerate() {
            let event = match record {
                Ok(None) => continue,
                Ok(Some((before, after))) => event_of(before.as_ref(), after),
                Err(why) => Err(why.clone()),
            };
            match event {
                Ok(Some(event)) => {
                    events.push(event);
                    positions.push(at);
                }
                Ok(None) => {}
                Err(why) => {
                    tracing::error!(
                        position = at,
                        error = %why,
                        "unreadable change; reported as failed until it is set aside"
                    );
                    poison = Some(at);
                    break;
                }
            }
        }
        let unpublished = self.publish(&events).await;
        self.report(&events, &unpublished);
        unpublished.first().map(|&i| positions[i]).or(poison)
    }

    fn report(&self, events: &[OrderEvent], unpublished: &[usize]) {
        let now = time::OffsetDateTime::now_utc();
        let lag = events
            .iter()
            .filter_map(|e| time::OffsetDateTime::parse(&e.occurred_at, &Rfc3339).ok())
            .map(|at| (now - at).whole_milliseconds().max(0))
            .max();
        for (i, event) in events.iter().enumerate() {
            let outcome = if unpublished.contains(&i) {
                "unpublished"
            } else {
                "published"
            };
            tracing::info!(event_id = %event.event_id, order_id = %event.order_id, actor = %event.actor, outcome, "change");
        }
        if let Some(lag) = lag {
            self.metrics
                .record(MetricSet::of(Metric::ConsumerLag, lag as f64).by("consumer", "publisher"));
        }
        if !unpublished.is_empty() {
            self.metrics.record(MetricSet::of(
                Metric::PublishFailures,
                unpublished.len() as f64,
            ));
        }
    }

    /// Publishes `events` in order, retrying the entries that fail. Answers the
    /// indexes of the events that never went out, in order.
    async fn publish(&self, events: &[OrderEvent]) -> Vec<usize> {
        let mut unpublished: Vec<usize> = (0..events.len()).collect();
        // Each attempt but the last is followed by a pause before the next.
        for pause in BACKOFF.iter().map(Some).chain([None]) {
            if unpublished.is_empty() {
                return unpublished;
            }
            let batch: Vec<OrderEvent> = unpublished.iter().map(|&i| events[i].clone()).collect();
            let outcomes = self.bus.publish(&batch).await;
            unpublished = unpublished
                .iter()
                .enumerate()
                .filter_map(|(at, &i)| {
                    let error = match outcomes.get(at) {
                        Some(Ok(())) => return None,
                        Some(Err(err)) => err.to_string(),
                        None => "the bus gave no outcome".to_string(),
                    };
                    let event_id = &events[i].event_id;
                    match pause {
                        Some(_) => tracing::warn!(event_id, error, "publishing failed; retrying"),
                        None => tracing::error!(event_id, error, "publishing failed"),
                    }
                    Some(i)
                })
                .collect();
            if let (Some(pause), false) = (pause, unpublished.is_empty()) {
                tokio::time::sleep(*pause).await;
            }
        }
        unpublished
    }
}

/// The event a change stands for, if any.
fn event_of(before: Option<&Order>, after: &Order) -> Result<Option<OrderEvent>, String> {
    match OrderEvent::for_change(before, after) {
        Some(event) => Ok(Some(event)),
        // Rewritten without a recorded change: nothing happened to the order.
        None if before.is_some_and(|b| b.version >= after.version) => Ok(None),
        None => Err("the order's change has no history entry".into()),
    }
}
