//! The webhook deliverer, on the queue every order event reaches (a message body is
//! the EventBridge event; `inbound::sqs` hands over the batch). Each event is POSTed, signed, to every enabled
//! subscription that wants it.
//!
//! - Only what the stored order went through is sent (`OrderEvent::recorded_in`,
//!   one eventually consistent read per event, `OrderStore::get_since`): an event
//!   forged on the bus is not relayed, signed, to integrators; its message fails and
//!   ends in the dead-letter queue.
//! - Only a 2xx answer delivers; redirects are not followed; 410 Gone disables the
//!   subscription.
//! - Every attempt is recorded, and listable at `GET /api/webhooks/{id}/deliveries`.
//! - At most one sender per event and subscription: the pair is claimed with a
//!   conditional write (a lease, so a crashed claimer's pair is retried once it runs
//!   out) before sending; a 2xx turns the claim into a delivered marker, a failure
//!   gives it back. A redelivered message skips the subscriptions that already have
//!   it, a concurrent twin skips the ones being sent, and only the failed ones make
//!   the message fail.
//! - A batch has a deadline ([`DEFAULT_BATCH_DEADLINE`], `WEBHOOK_BATCH_DEADLINE`)
//!   below the function's timeout: sends still running then are abandoned and their
//!   messages fail (their claims run out with the lease), so receivers that never
//!   answer cannot make Lambda fail the whole batch, healthy deliveries included.
//! - A failed message is reported as a batch item failure, and its visibility is set
//!   to the next delay of a growing schedule, so the queue retries it later; after the
//!   queue's `maxReceiveCount` it moves to the dead-letter queue.
//! - A message that only found its pair claimed by another attempt (a concurrent
//!   twin, or one abandoned at the deadline) did not fail: it comes back once that
//!   claim's lease has run out at the latest, not on the growing schedule, which
//!   would otherwise hold a healthy receiver's event back for minutes, then hours.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::domain::OrderId;
use crate::domain::webhook::signature::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, sign};
use crate::domain::webhook::{Attempt, Outcome, Subscription};
use crate::events::{Envelope, OrderEvent};
use crate::ports::{
    Claim, OrderStore, Outgoing, RetryDelay, Sent, StoreError, WebhookSender, WebhookStore,
};
use crate::ports::{Metric, MetricSet, Metrics, NoMetrics};

/// Delays before the 2nd, 3rd… attempt: the example schedule of Standard Webhooks,
/// capped by how long SQS can hide a message. With the queue's maxReceiveCount of 8
/// the last attempt comes about 29 hours after the first.
pub const RETRY_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 60 * 60),
    Duration::from_secs(5 * 60 * 60),
    Duration::from_secs(10 * 60 * 60),
    MAX_RETRY_DELAY,
];

/// The longest delay: SQS hides a message for at most 12 hours from its receive.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(11 * 60 * 60);

/// Receivers called at the same time, across the batch.
const CONCURRENT_SENDS: usize = 16;

/// How long a batch may send, by default: below template.yaml's 30 s Timeout of
/// DeliverWebhooksFunction, leaving time to record the last attempts and answer.
pub const DEFAULT_BATCH_DEADLINE: Duration = Duration::from_secs(20);

/// How long a claim outlives the batch deadline: a claim is held from before the send
/// until its outcome is recorded, which ends by the deadline plus one store write.
pub const CLAIM_MARGIN: Duration = Duration::from_secs(30);

/// The delay after attempt `attempt` (1-based) failed, before jitter.
pub fn retry_delay(attempt: u32) -> Duration {
    let index = (attempt.max(1) - 1) as usize;
    RETRY_SCHEDULE[index.min(RETRY_SCHEDULE.len() - 1)]
}

/// Up to a tenth more, so receivers that failed together are not retried together.
fn with_jitter(delay: Duration) -> Duration {
    let mut byte = [0u8; 1];
    match crate::domain::random::fill(&mut byte) {
        Ok(()) => (delay + delay.mul_f64(f64::from(byte[0]) / 2550.0)).min(MAX_RETRY_DELAY),
        Err(_) => delay,
    }
}

/// Why a message is to be received again, and so when.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Retry {
    /// A receiver failed, or the event could not be read or its delivery recorded:
    /// the growing schedule applies.
    failed: bool,
    /// No sooner than this: a receiver's `Retry-After`, or the lease of a claim that
    /// another attempt holds.
    not_before: Option<Duration>,
}

impl Retry {
    const FAILED: Retry = Retry {
        failed: true,
        not_before: None,
    };

    /// Both reasons: the later retry wins.
    fn and(self, other: Retry) -> Retry {
        Retry {
            failed: self.failed || other.failed,
            not_before: self.not_before.max(other.not_before),
        }
    }
}

/// A queued event, as the deliverer needs it from its queue message.
#[derive(Debug, Clone, Default)]
pub struct QueuedEvent {
    /// The queue's message id, for the log.
    pub id: Option<String>,
    pub body: Option<String>,
    /// 1 on the first delivery of the message.
    pub receive_count: Option<u32>,
    /// What the queue needs to hide the message for a while.
    pub receipt_handle: Option<String>,
    pub queue_arn: Option<String>,
}

#[derive(Clone)]
pub struct Deliveries {
    orders: Arc<dyn OrderStore>,
    store: Arc<dyn WebhookStore>,
    sender: Arc<dyn WebhookSender>,
    retry: Arc<dyn RetryDelay>,
    deadline: Duration,
    metrics: Arc<dyn Metrics>,
}

/// One event, ready to send: the same body goes to every subscription.
struct Event {
    detail: OrderEvent,
    id: String,
    detail_type: String,
    occurred_at: Option<OffsetDateTime>,
    body: Vec<u8>,
}

/// What became of one event for one subscription.
enum Delivery {
    Delivered,
    /// An earlier attempt delivered it.
    AlreadyDelivered,
    /// Another attempt is sending it now: this copy comes back later to see how
    /// that went.
    Held,
    /// 410 Gone: disabled, nothing more to do.
    Gone,
    /// To retry, no sooner than `retry_after` when the receiver asked for it.
    Failed {
        retry_after: Option<Duration>,
    },
}

impl Deliveries {
    pub fn new(
        orders: Arc<dyn OrderStore>,
        store: Arc<dyn WebhookStore>,
        sender: Arc<dyn WebhookSender>,
        retry: Arc<dyn RetryDelay>,
    ) -> Self {
        Deliveries {
            orders,
            store,
            sender,
            retry,
            deadline: DEFAULT_BATCH_DEADLINE,
            metrics: Arc::new(NoMetrics),
        }
    }

    /// Reports `WebhookFailures` (by `failure`: `status` or `no_answer`).
    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The same deliverer with another batch deadline.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Handles one batch. Answers, per message, whether it failed (and is to be
    /// received again, later); the others are done.
    pub async fn handle(&self, messages: &[QueuedEvent]) -> Vec<bool> {
        let deadline = tokio::time::Instant::now() + self.deadline;
        // Read afresh for every batch, so a deleted or disabled subscription stops.
        let subscriptions: Vec<Arc<Subscription>> = match self.store.list().await {
            Ok(list) => list
                .into_iter()
                .filter(|s| s.enabled)
                .map(Arc::new)
                .collect(),
            Err(err) => {
                tracing::warn!(error = %err, "cannot read webhook subscriptions; the batch will be retried");
                let all = vec![Some(Retry::FAILED); messages.len()];
                return self.respond(messages, all).await;
            }
        };

        // failed[i]: None while message i is fine, Some(why) once it is to come back.
        let mut failed: Vec<Option<Retry>> = vec![None; messages.len()];
        // What a message whose pair is claimed elsewhere waits for: that claim's lease.
        let held = Retry {
            failed: false,
            not_before: Some(self.claim_lease()),
        };
        let fail = |failed: &mut Vec<Option<Retry>>, i: usize, why: Retry| {
            failed[i] = Some(failed[i].map_or(why, |earlier| earlier.and(why)));
        };
        let limit = Arc::new(Semaphore::new(CONCURRENT_SENDS));
        let mut tasks = JoinSet::new();
        let mut owner = HashMap::new();
        // An event can arrive twice in one batch (the bus and the queue deliver at least
        // once). Its copies are sent once, and share the first copy's outcome: two
        // concurrent sends would both pass the delivered-marker check.
        let mut first_copy: HashMap<String, usize> = HashMap::new();
        let mut copies = Vec::new();
        for (i, message) in messages.iter().enumerate() {
            let event = match read_event(message) {
                Ok(event) => Arc::new(event),
                Err(why) => {
                    tracing::error!(message_id = ?message.id, %why, "unreadable webhook message");
                    fail(&mut failed, i, Retry::FAILED);
                    continue;
                }
            };
            if let Some(&first) = first_copy.get(&event.id) {
                copies.push((i, first));
                continue;
            }
            let wanted: Vec<&Arc<Subscription>> = subscriptions
                .iter()
                .filter(|s| s.wants(&event.detail_type, event.occurred_at))
                .collect();
            // Integrators get what the stored order went through, signed by us;
            // an event that is not (forged on the bus) goes to the dead-letter queue.
            // Nobody wants it: nothing to send, nothing to read.
            match self.recorded(&event.detail, !wanted.is_empty()).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::error!(message_id = ?message.id, event_id = %event.id, "not a change the stored order went through; not sent");
                    fail(&mut failed, i, Retry::FAILED);
                    continue;
                }
                Err(err) => {
                    tracing::warn!(message_id = ?message.id, error = %err, "cannot read the order; will retry");
                    fail(&mut failed, i, Retry::FAILED);
                    continue;
                }
            }
            first_copy.insert(event.id.clone(), i);
            let attempt = message.receive_count.unwrap_or(1);
            for subscription in wanted {
                let (this, subscription, event, limit) = (
                    self.clone(),
                    Arc::clone(subscription),
                    Arc::clone(&event),
                    Arc::clone(&limit),
                );
                let task = tasks.spawn(async move {
                    let _permit = limit.acquire_owned().await;
                    this.deliver(&subscription, &event, attempt).await
                });
                owner.insert(task.id(), i);
            }
        }

        loop {
            let done = match tokio::time::timeout_at(deadline, tasks.join_next_with_id()).await {
                Ok(Some(done)) => done,
                Ok(None) => break,
                Err(_) => {
                    // What is still running (or waiting for its turn) is abandoned;
                    // its claims run out with their lease.
                    tracing::warn!(
                        abandoned = owner.len(),
                        deadline_ms = self.deadline.as_millis() as u64,
                        "webhook batch deadline reached; unfinished deliveries will be retried"
                    );
                    // Their claims stay until the lease runs out: no sooner than that.
                    for &i in owner.values() {
                        fail(
                            &mut failed,
                            i,
                            Retry {
                                failed: true,
                                ..held
                            },
                        );
                    }
                    tasks.abort_all();
                    break;
                }
            };
            let (i, result) = match done {
                Ok((id, delivery)) => (owner.remove(&id), delivery),
                Err(err) => {
                    tracing::error!(error = %err, "a webhook delivery task failed");
                    (
                        owner.remove(&err.id()),
                        Ok(Delivery::Failed { retry_after: None }),
                    )
                }
            };
            let Some(i) = i else { continue };
            match result {
                Ok(Delivery::Delivered | Delivery::AlreadyDelivered | Delivery::Gone) => {}
                Ok(Delivery::Held) => fail(&mut failed, i, held),
                Ok(Delivery::Failed { retry_after }) => fail(
                    &mut failed,
                    i,
                    Retry {
                        failed: true,
                        not_before: retry_after,
                    },
                ),
                Err(err) => {
                    tracing::warn!(error = %err, "webhook delivery not recorded; will retry");
                    fail(&mut failed, i, Retry::FAILED);
                }
            }
        }
        for (copy, first) in copies {
            failed[copy] = failed[first];
        }
        self.respond(messages, failed).await
    }

    async fn recorded(&self, event: &OrderEvent, wanted: bool) -> Result<bool, StoreError> {
        if !wanted {
            return Ok(true);
        }
        let Some(id) = OrderId::parse(&event.order_id) else {
            return Ok(false);
        };
        Ok(self
            .orders
            .get_since(&id, event.sequence)
            .await?
            .is_some_and(|order| event.recorded_in(&order)))
    }

    /// How long a claim taken now may be held: the batch deadline and a margin.
    pub fn claim_lease(&self) -> Duration {
        self.deadline + CLAIM_MARGIN
    }

    /// Delays each failed message's next attempt; answers which failed.
    async fn respond(&self, messages: &[QueuedEvent], failed: Vec<Option<Retry>>) -> Vec<bool> {
        for (message, failure) in messages.iter().zip(&failed) {
            let Some(retry) = *failure else {
                continue;
            };
            let (Some(attempt), Some(receipt)) =
                (message.receive_count, message.receipt_handle.as_deref())
            else {
                continue;
            };
            let not_before = retry.not_before.unwrap_or_default();
            let delay = if retry.failed {
                with_jitter(retry_delay(attempt)).max(not_before)
            } else {
                // Nothing failed: back once the other attempt's claim is settled.
                with_jitter(not_before).min(MAX_RETRY_DELAY)
            };
            if let Err(why) = self
                .retry
                .postpone(message.queue_arn.as_deref(), receipt, delay)
                .await
            {
                // The queue's own visibility timeout still brings it back.
                tracing::warn!(message_id = ?message.id, %why, "cannot delay the retry");
            }
        }
        failed.iter().map(Option::is_some).collect()
    }

    /// One event to one subscription: claimed (skipped when already delivered or
    /// being sent), sent, recorded and, on 2xx, marked; a failure gives the claim back.
    async fn deliver(
        &self,
        subscription: &Subscription,
        event: &Event,
        attempt: u32,
    ) -> Result<Delivery, StoreError> {
        let now = OffsetDateTime::now_utc();
        let claim = match self
            .store
            .claim(
                &subscription.id,
                &event.id,
                now,
                now + self.deadline + CLAIM_MARGIN,
            )
            .await?
        {
            Claim::Claimed(claim) => claim,
            Claim::Delivered => return Ok(Delivery::AlreadyDelivered),
            Claim::Held => return Ok(Delivery::Held),
        };
        let result = self.send(subscription, event, attempt).await;
        if !matches!(result, Ok(Delivery::Delivered)) {
            // Sent or not, it was not delivered: the next attempt may claim it at once.
            if let Err(err) = self
                .store
                .release(&subscription.id, &event.id, &claim)
                .await
            {
                tracing::warn!(webhook_id = %subscription.id, event_id = %event.id, error = %err, "claim not released; it runs out with its lease");
            }
        }
        result
    }

    /// Sends a claimed pair, records the attempt and what it means.
    async fn send(
        &self,
        subscription: &Subscription,
        event: &Event,
        attempt: u32,
    ) -> Result<Delivery, StoreError> {
        let Some(secret) = &subscription.secret else {
            return Err(StoreError::Other(format!(
                "the secret of webhook {} is sealed and this function may not open it",
                subscription.id
            )));
        };
        let at = OffsetDateTime::now_utc();
        let timestamp = at.unix_timestamp();
        let request = Outgoing {
            url: subscription.url.clone(),
            headers: vec![
                (HEADER_ID, event.id.clone()),
                (HEADER_TIMESTAMP, timestamp.to_string()),
                (
                    HEADER_SIGNATURE,
                    sign(secret, &event.id, timestamp, &event.body),
                ),
            ],
            body: event.body.clone(),
        };
        let started = Instant::now();
        let sent = self.sender.send(&request).await;
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);

        let (outcome, status_code, error, retry_after) = match sent {
            Sent::Answered { status, .. } if (200..300).contains(&status) => {
                (Outcome::Delivered, Some(status), None, None)
            }
            Sent::Answered { status: 410, .. } => (Outcome::Gone, Some(410), None, None),
            Sent::Answered {
                status,
                retry_after,
            } => {
                let why = if (300..400).contains(&status) {
                    format!("the receiver answered {status}; redirects are not followed")
                } else {
                    format!("the receiver answered {status}")
                };
                (Outcome::Failed, Some(status), Some(why), retry_after)
            }
            Sent::Failed(why) => (Outcome::Failed, None, Some(why), None),
        };
        let record = Attempt {
            webhook_id: subscription.id.clone(),
            event_id: event.id.clone(),
            event_type: event.detail_type.clone(),
            attempt,
            at,
            duration_ms,
            status_code,
            error,
            outcome,
        };
        self.store.record_attempt(&record).await?;
        match outcome {
            Outcome::Delivered => {
                self.store
                    .mark_delivered(&subscription.id, &event.id, at)
                    .await?;
                tracing::info!(webhook_id = %subscription.id, event_id = %event.id, attempt, duration_ms, "webhook delivered");
                Ok(Delivery::Delivered)
            }
            Outcome::Gone => {
                self.store
                    .disable(&subscription.id, at, "the receiver answered 410 Gone")
                    .await?;
                tracing::warn!(webhook_id = %subscription.id, "receiver answered 410 Gone; subscription disabled");
                Ok(Delivery::Gone)
            }
            Outcome::Failed => {
                let failure = if record.status_code.is_some() {
                    "status"
                } else {
                    "no_answer"
                };
                self.metrics
                    .record(MetricSet::of(Metric::WebhookFailures, 1.0).by("failure", failure));
                tracing::warn!(webhook_id = %subscription.id, event_id = %event.id, attempt, status = ?record.status_code, error = ?record.error, "webhook delivery failed");
                Ok(Delivery::Failed { retry_after })
            }
        }
    }
}

/// The body every receiver gets, in the Standard Webhooks payload shape: the event
/// type, when it happened, and the event (`OrderEvent`) as `data`.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub timestamp: &'a str,
    pub data: &'a OrderEvent,
}

impl<'a> Payload<'a> {
    pub fn of(envelope: &'a Envelope) -> Payload<'a> {
        Payload {
            kind: &envelope.detail_type,
            timestamp: &envelope.detail.occurred_at,
            data: &envelope.detail,
        }
    }
}

/// The message's event and the body every receiver gets.
fn read_event(message: &QueuedEvent) -> Result<Event, String> {
    let body = message.body.as_deref().ok_or("the message has no body")?;
    let envelope: Envelope =
        serde_json::from_str(body).map_err(|e| format!("not an order event: {e}"))?;
    let payload = serde_json::to_vec(&Payload::of(&envelope)).map_err(|e| e.to_string())?;
    Ok(Event {
        occurred_at: OffsetDateTime::parse(&envelope.detail.occurred_at, &Rfc3339).ok(),
        id: envelope.detail.event_id.clone(),
        detail_type: envelope.detail_type,
        body: payload,
        detail: envelope.detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_spread_out_and_stay_within_what_sqs_allows() {
        assert_eq!(retry_delay(1), Duration::from_secs(5));
        assert_eq!(retry_delay(2), Duration::from_secs(300));
        assert!((1..20).all(|n| retry_delay(n) <= retry_delay(n + 1)));
        assert_eq!(retry_delay(100), Duration::from_secs(11 * 60 * 60));
        for n in 1..10 {
            let jittered = with_jitter(retry_delay(n));
            assert!(jittered >= retry_delay(n));
            assert!(jittered <= retry_delay(n).mul_f64(1.1));
            assert!(jittered <= MAX_RETRY_DELAY);
        }
    }
}
