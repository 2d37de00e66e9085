//! The event pipeline, locally: the queues, bus and rules of template.yaml on the
//! emulator, and in-process stand-ins for Lambda's two event source mappings —
//! a DynamoDB stream poller and SQS pollers — that hand the functions' handlers the
//! same events Lambda would, with the same partial-failure semantics.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use base64::Engine;
use serde_json::{Map, Value, json};

use orders::wiring::Wiring;

use crate::template::{QueueSpec, RuleSpec};

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
/// A stream-triggered function's handler.
pub type StreamHandler = Arc<dyn Fn(StreamEvent) -> BoxFuture<DynamoDbEventResponse> + Send + Sync>;
/// A queue-triggered function's handler.
pub type QueueHandler = Arc<dyn Fn(SqsEvent) -> BoxFuture<SqsBatchResponse> + Send + Sync>;

/// How often an idle poller looks again: Lambda's pollers do the same.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// How long a queue poller's ReceiveMessage (a 1 s long poll) may wait for its answer,
/// in one attempt. A receive given up on is still served when the queue gets to it, to
/// nobody, and the messages it took stay hidden for the queue's VisibilityTimeout: so
/// wait for a busy emulator rather than resend (the SDK's 2 s attempt timeout, meant
/// for the API, made a loaded emulator hide messages for minutes).
pub const RECEIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Attempts at a failing stream record before it goes to the on-failure queue
/// (template.yaml allows more; locally the poison should surface quickly).
const STREAM_ATTEMPTS: u32 = 3;
/// Pauses between calls to a stream or queue that failed (the emulator gone, a
/// timeout): the first, and the longest the pause grows to.
const SOURCE_RETRY_FIRST: Duration = Duration::from_millis(200);
const SOURCE_RETRY_MAX: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PipelineError(String);

fn error<E: std::error::Error + 'static>(err: E) -> PipelineError {
    PipelineError(orders::adapters::aws::describe(&err))
}

/// The queues as created: logical id → (url, arn).
pub type Queues = HashMap<String, (String, String)>;

/// Creates the template's queues (dead-letter queues first, redrive as declared),
/// the bus, and its rules targeting the queues. Queues and rules are named
/// `{prefix}{logical id}`, so that several stacks can share one emulator.
pub async fn provision(
    sqs: &aws_sdk_sqs::Client,
    events: &aws_sdk_eventbridge::Client,
    bus: &str,
    prefix: &str,
    queues: &[QueueSpec],
    rules: &[RuleSpec],
) -> Result<Queues, PipelineError> {
    let mut created: Queues = HashMap::new();
    let mut ordered: Vec<&QueueSpec> = queues.iter().collect();
    ordered.sort_by_key(|q| q.dead_letter.is_some());
    for queue in ordered {
        let mut request = sqs
            .create_queue()
            .queue_name(format!("{prefix}{}", queue.logical_id));
        if let Some(timeout) = queue.visibility_timeout {
            request =
                request.attributes(QueueAttributeName::VisibilityTimeout, timeout.to_string());
        }
        if let Some((dead_letter, max_receives)) = &queue.dead_letter {
            let (_, arn) = created.get(dead_letter).ok_or_else(|| {
                PipelineError(format!(
                    "{} redrives to unknown {dead_letter}",
                    queue.logical_id
                ))
            })?;
            let policy = json!({ "deadLetterTargetArn": arn, "maxReceiveCount": max_receives });
            request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
        }
        let url = request
            .send()
            .await
            .map_err(error)?
            .queue_url
            .unwrap_or_default();
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(error)?
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .unwrap_or_default();
        created.insert(queue.logical_id.clone(), (url, arn));
    }

    if events.describe_event_bus().name(bus).send().await.is_err() {
        events
            .create_event_bus()
            .name(bus)
            .send()
            .await
            .map_err(error)?;
    }
    for rule in rules {
        events
            .put_rule()
            .name(format!("{prefix}{}", rule.logical_id))
            .event_bus_name(bus)
            .event_pattern(rule.pattern.to_string())
            .send()
            .await
            .map_err(error)?;
        let mut targets = Vec::new();
        for (id, queue) in &rule.targets {
            let (_, arn) = created.get(queue).ok_or_else(|| {
                PipelineError(format!("{} targets unknown {queue}", rule.logical_id))
            })?;
            targets.push(
                aws_sdk_eventbridge::types::Target::builder()
                    .id(id)
                    .arn(arn)
                    .build()
                    .map_err(error)?,
            );
        }
        events
            .put_targets()
            .rule(format!("{prefix}{}", rule.logical_id))
            .event_bus_name(bus)
            .set_targets(Some(targets))
            .send()
            .await
            .map_err(error)?;
    }
    Ok(created)
}

/// Calls `call` until it succeeds, pausing longer after each failure. Lambda's event
/// source mappings never stop polling because their source did not answer; neither
/// may ours, or one emulator hiccup longer than the SDK's timeout ends the pipeline
/// (and with it `make dev`). Failures are logged, so an outage shows.
async fn until_ok<T, E, Fut>(what: &str, mut call: impl FnMut() -> Fut) -> T
where
    Fut: Future<Output = Result<T, E>>,
    E: std::error::Error + 'static,
{
    let mut pause = SOURCE_RETRY_FIRST;
    loop {
        match call().await {
            Ok(value) => return value,
            Err(err) => {
                tracing::warn!(error = %error(err), retry_in = ?pause, "{what} failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(SOURCE_RETRY_MAX);
            }
        }
    }
}

/// Polls the table's stream from now on and hands each batch to `handler`, like
/// Lambda's DynamoDB event source mapping: in order, retrying from the first failed
/// record, and after the last attempt sending that record to `on_failure`. A stream
/// or queue that does not answer is retried, from where it was, until it does.
pub async fn poll_stream(
    streams: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    batch_size: u32,
    handler: StreamHandler,
    on_failure: Option<(aws_sdk_sqs::Client, String)>,
) -> Result<(), PipelineError> {
    let shards = streams
        .describe_stream()
        .stream_arn(&stream_arn)
        .send()
        .await
        .map_err(error)?
        .stream_description
        .map(|d| d.shards.unwrap_or_default())
        .unwrap_or_default();
    let shard = shards
        .last()
        .and_then(|s| s.shard_id.clone())
        .ok_or_else(|| PipelineError("the table's stream has no shard".into()))?;
    let mut iterator = streams
        .get_shard_iterator()
        .stream_arn(&stream_arn)
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::Latest)
        .send()
        .await
        .map_err(error)?
        .shard_iterator;

    let mut pending: Vec<Record> = Vec::new();
    let mut attempts = 0;
    loop {
        if pending.is_empty() {
            let Some(current) = iterator.as_deref() else {
                return Ok(());
            };
            // The same iterator again after a failure: nothing is skipped. (The
            // emulator's iterators do not expire; DynamoDB's last 15 minutes.)
            let page = until_ok("reading the table's stream", || {
                streams
                    .get_records()
                    .shard_iterator(current)
                    .limit(batch_size as i32)
                    .send()
            })
            .await;
            iterator = page.next_shard_iterator;
            pending = page.records.unwrap_or_default();
            if pending.is_empty() {
                tokio::time::sleep(IDLE_POLL).await;
                continue;
            }
        }
        let event = stream_event(&pending, &stream_arn)?;
        let response = handler(event).await;
        let Some(failed) = response
            .batch_item_failures
            .first()
            .and_then(|f| f.item_identifier.clone())
        else {
            pending.clear();
            attempts = 0;
            continue;
        };
        // Lambda retries from the failed record; everything before it is done.
        let position = pending
            .iter()
            .position(|r| {
                r.dynamodb
                    .as_ref()
                    .and_then(|d| d.sequence_number.as_deref())
                    == Some(failed.as_str())
            })
            .unwrap_or(0);
        pending.drain(..position);
        attempts += 1;
        if attempts >= STREAM_ATTEMPTS {
            let poison = pending.remove(0);
            tracing::error!(sequence = %failed, "stream record failed every attempt; sent to the on-failure queue");
            if let Some((sqs, url)) = &on_failure {
                let body = json!({
                    "requestContext": { "condition": "RetryAttemptsExhausted", "approximateInvokeCount": attempts },
                    "DDBStreamBatchInfo": {
                        "streamArn": stream_arn,
                        "startSequenceNumber": failed,
                        "endSequenceNumber": failed,
                        "batchSize": 1
                    },
                    "record": record_json(&poison, &stream_arn),
                });
                until_ok("sending to the on-failure queue", || {
                    sqs.send_message()
                        .queue_url(url)
                        .message_body(body.to_string())
                        .send()
                })
                .await;
            }
            attempts = 0;
        }
    }
}

/// Polls a queue and hands each batch to `handler`, like Lambda's SQS event source
/// mapping with ReportBatchItemFailures: successes are deleted, failures stay to be
/// received again after their visibility timeout (and redriven to the dead-letter
/// queue by SQS after maxReceiveCount). A queue that does not answer is polled again
/// until it does.
pub async fn poll_queue(
    sqs: aws_sdk_sqs::Client,
    url: String,
    arn: String,
    batch_size: u32,
    handler: QueueHandler,
) -> Result<(), PipelineError> {
    loop {
        let received = until_ok("receiving from a queue", || {
            sqs.receive_message()
                .queue_url(&url)
                .max_number_of_messages(batch_size.clamp(1, 10) as i32)
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .customize()
                .config_override(
                    aws_sdk_sqs::config::Builder::default()
                        .timeout_config(
                            aws_sdk_sqs::config::timeout::TimeoutConfig::builder()
                                .operation_attempt_timeout(RECEIVE_TIMEOUT)
                                .operation_timeout(RECEIVE_TIMEOUT)
                                .build(),
                        )
                        .retry_config(
                            aws_sdk_sqs::config::retry::RetryConfig::standard()
                                .with_max_attempts(1),
                        ),
                )
                .send()
        })
        .await;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            continue;
        }
        let mut event = SqsEvent::default();
        for message in &messages {
            let mut record = SqsMessage::default();
            record.message_id = message.message_id.clone();
            record.receipt_handle = message.receipt_handle.clone();
            record.body = message.body.clone();
            record.md5_of_body = message.md5_of_body.clone();
            record.attributes = message
                .attributes
                .iter()
                .flatten()
                .map(|(k, v)| (k.as_str().to_string(), v.clone()))
                .collect();
            record.event_source = Some("aws:sqs".into());
            record.event_source_arn = Some(arn.clone());
            event.records.push(record);
        }
        let response = handler(event).await;
        let failed: Vec<String> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        let done: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .filter(|m| {
                !failed
                    .iter()
                    .any(|f| Some(f.as_str()) == m.message_id.as_deref())
            })
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle.clone()?)
                    .build()
                    .ok()
            })
            .collect();
        // Not deleted, a handled message comes back after its visibility timeout and
        // is handled again, harmlessly (consumers are idempotent): as with Lambda.
        if !done.is_empty()
            && let Err(err) = sqs
                .delete_message_batch()
                .queue_url(&url)
                .set_entries(Some(done))
                .send()
                .await
        {
            tracing::warn!(error = %error(err), "deleting handled messages failed; they will be handled again");
        }
    }
}

/// The records as Lambda delivers them: DynamoDB JSON images in its event shape.
fn stream_event(records: &[Record], stream_arn: &str) -> Result<StreamEvent, PipelineError> {
    let records: Vec<Value> = records.iter().map(|r| record_json(r, stream_arn)).collect();
    serde_json::from_value(json!({ "Records": records })).map_err(|e| PipelineError(e.to_string()))
}

/// One stream record as Lambda delivers it: DynamoDB JSON images in its event shape.
pub fn record_json(record: &Record, stream_arn: &str) -> Value {
    let change = record.dynamodb.as_ref();
    let image =
        |m: Option<&HashMap<String, AttributeValue>>| m.map(item_json).unwrap_or(Value::Null);
    json!({
        "eventID": record.event_id,
        "eventName": record.event_name.as_ref().map(|n| n.as_str()),
        "eventVersion": record.event_version,
        "eventSource": "aws:dynamodb",
        "awsRegion": record.aws_region,
        "eventSourceARN": stream_arn,
        "dynamodb": {
            "ApproximateCreationDateTime": change
                .and_then(|c| c.approximate_creation_date_time)
                .map(|t| t.secs())
                .unwrap_or_default(),
            "Keys": image(change.and_then(|c| c.keys.as_ref())),
            "NewImage": image(change.and_then(|c| c.new_image.as_ref())),
            "OldImage": image(change.and_then(|c| c.old_image.as_ref())),
            "SequenceNumber": change.and_then(|c| c.sequence_number.clone()),
            "SizeBytes": change.and_then(|c| c.size_bytes).unwrap_or_default(),
            "StreamViewType": change.and_then(|c| c.stream_view_type.as_ref()).map(|v| v.as_str()),
        }
    })
}

fn item_json(item: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(
        item.iter()
            .map(|(k, v)| (k.clone(), attribute_json(v)))
            .collect::<Map<_, _>>(),
    )
}

fn attribute_json(value: &AttributeValue) -> Value {
    let b64 = |b: &aws_sdk_dynamodbstreams::primitives::Blob| {
        Value::String(base64::engine::general_purpose::STANDARD.encode(b.as_ref()))
    };
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": b64(b) }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::L(items) => {
            json!({ "L": items.iter().map(attribute_json).collect::<Vec<_>>() })
        }
        AttributeValue::M(map) => json!({ "M": item_json(map) }),
        AttributeValue::Ss(items) => json!({ "SS": items }),
        AttributeValue::Ns(items) => json!({ "NS": items }),
        AttributeValue::Bs(items) => json!({ "BS": items.iter().map(b64).collect::<Vec<_>>() }),
        _ => Value::Null,
    }
}

/// Where the local pipeline runs: the emulator's clients, the orders table and the
/// queues as provisioned.
pub struct Local {
    pub sdk: aws_config::SdkConfig,
    pub table: String,
    pub queues: Queues,
}

/// The handler of each stream- or queue-triggered function, by its binary name,
/// built by the same `wiring` as its Lambda's `main`.
#[allow(clippy::type_complexity)]
fn handlers(
    wiring: &Wiring,
) -> Result<(StreamHandler, HashMap<&'static str, QueueHandler>), PipelineError> {
    let error = |err: orders::wiring::ConfigError| PipelineError(err.to_string());
    let publisher = Arc::new(wiring.publisher().map_err(error)?);
    let publish: StreamHandler = Arc::new(move |event| {
        let publisher = Arc::clone(&publisher);
        Box::pin(async move { orders::inbound::stream::publish(&publisher, event).await })
    });
    let fulfillment = Arc::new(wiring.fulfillment().map_err(error)?);
    let fulfill: QueueHandler = Arc::new(move |event| {
        let fulfillment = Arc::clone(&fulfillment);
        Box::pin(async move { orders::inbound::sqs::fulfill(&fulfillment, event).await })
    });
    let deliveries = Arc::new(wiring.deliveries().map_err(error)?);
    let deliver: QueueHandler = Arc::new(move |event| {
        let deliveries = Arc::clone(&deliveries);
        Box::pin(async move { orders::inbound::sqs::deliver(&deliveries, event).await })
    });
    let notifications = Arc::new(wiring.notifications().map_err(error)?);
    let notify: QueueHandler = Arc::new(move |event| {
        let notifications = Arc::clone(&notifications);
        Box::pin(async move { orders::inbound::sqs::notify(&notifications, event).await })
    });
    let privacy = Arc::new(wiring.privacy_service().map_err(error)?);
    let erase: QueueHandler = Arc::new(move |event| {
        let privacy = Arc::clone(&privacy);
        Box::pin(async move { orders::inbound::sqs::erase(&privacy, event).await })
    });
    let suppressions = Arc::new(wiring.suppression_service().map_err(error)?);
    let suppress: QueueHandler = Arc::new(move |event| {
        let suppressions = Arc::clone(&suppressions);
        Box::pin(async move { orders::inbound::sqs::suppress(&suppressions, event).await })
    });
    let mut queues = HashMap::from([
        ("fulfill-orders", fulfill),
        ("deliver-webhooks", deliver),
        ("notify-customers", notify),
        ("erase-customer-data", erase),
        ("suppress-bounces", suppress),
    ]);
    // Payments run only with a payment provider (STRIPE_SECRET_KEY).
    if wiring.payments_on() {
        let payments = Arc::new(wiring.payment_service().map_err(error)?);
        let returns = Arc::new(wiring.return_service().map_err(error)?);
        let settle: QueueHandler = Arc::new(move |event| {
            let payments = Arc::clone(&payments);
            let returns = Arc::clone(&returns);
            Box::pin(
                async move { orders::inbound::sqs::settle(&payments, Some(&returns), event).await },
            )
        });
        queues.insert("settle-payments", settle);
    }
    Ok((publish, queues))
}

/// Functions that run only with payments on: without them, their consumers are not run.
const PAYMENT_CONSUMERS: &[&str] = &["settle-payments"];

/// How often the local stack runs the expiry sweep (template.yaml: every 5 minutes).
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// The expiry sweep on a timer, as EventBridge Scheduler runs `expire-orders`.
pub fn start_sweep(wiring: &Wiring) -> Result<Option<tokio::task::JoinHandle<()>>, PipelineError> {
    let error = |err: orders::wiring::ConfigError| PipelineError(err.to_string());
    if !wiring.payments_on() {
        return Ok(None);
    }
    let payments = wiring.payment_service().map_err(error)?;
    let ttl = wiring.pending_payment_ttl().map_err(error)?;
    Ok(Some(tokio::spawn(async move {
        let mut every = tokio::time::interval(SWEEP_EVERY);
        loop {
            every.tick().await;
            if let Err(err) = orders::inbound::schedule::expire_unpaid(&payments, ttl).await {
                tracing::warn!(error = %err, "expiry sweep failed; next one in a minute");
            }
        }
    })))
}

/// Starts the stream poller and one poller per queue-triggered function, as the
/// template's event source mappings declare them.
pub async fn start(
    local: Local,
    wiring: &Wiring,
    consumers: &[crate::template::Consumer],
) -> Result<Vec<tokio::task::JoinHandle<Result<(), PipelineError>>>, PipelineError> {
    use crate::template::Trigger;
    let (publish, queue_handlers) = handlers(wiring)?;
    let sqs = aws_sdk_sqs::Client::new(&local.sdk);
    let mut tasks = Vec::new();
    for consumer in consumers {
        match &consumer.trigger {
            Trigger::Stream { batch_size } => {
                if consumer.binary != "publish-events" {
                    return Err(PipelineError(format!(
                        "no local handler for stream consumer {}",
                        consumer.binary
                    )));
                }
                let stream_arn = aws_sdk_dynamodb::Client::new(&local.sdk)
                    .describe_table()
                    .table_name(&local.table)
                    .send()
                    .await
                    .map_err(error)?
                    .table
                    .and_then(|t| t.latest_stream_arn)
                    .ok_or_else(|| PipelineError(format!("table {} has no stream", local.table)))?;
                let on_failure = local
                    .queues
                    .get("PublisherFailures")
                    .map(|(url, _)| (sqs.clone(), url.clone()));
                tasks.push(tokio::spawn(poll_stream(
                    aws_sdk_dynamodbstreams::Client::new(&local.sdk),
                    stream_arn,
                    *batch_size,
                    Arc::clone(&publish),
                    on_failure,
                )));
            }
            Trigger::Queue { .. }
                if PAYMENT_CONSUMERS.contains(&consumer.binary.as_str())
                    && !queue_handlers.contains_key(consumer.binary.as_str()) =>
            {
                tracing::info!(function = %consumer.binary, "payments are off: not run");
            }
            Trigger::Queue { queue, batch_size } => {
                let handler = queue_handlers
                    .get(consumer.binary.as_str())
                    .ok_or_else(|| {
                        PipelineError(format!("no local handler for {}", consumer.binary))
                    })?;
                let (url, arn) = local.queues.get(queue).ok_or_else(|| {
                    PipelineError(format!("{} reads unknown queue {queue}", consumer.binary))
                })?;
                tasks.push(tokio::spawn(poll_queue(
                    sqs.clone(),
                    url.clone(),
                    arn.clone(),
                    *batch_size,
                    Arc::clone(handler),
                )));
            }
        }
    }
    Ok(tasks)
}
