//! The queue consumers' entry points: an SQS batch, as Lambda's event source delivers
//! it (`ReportBatchItemFailures`), handed to a service; the messages that failed go
//! back as batch item failures, so only those are received again.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};

use crate::ports::ErasureMessage;
use crate::services::deliveries::{Deliveries, QueuedEvent};
use crate::services::fulfillment::Fulfillment;
use crate::services::notifications::Notifications;
use crate::services::payments::PaymentService;
use crate::services::privacy::PrivacyService;
use crate::services::returns::ReturnService;
use crate::services::suppressions::{SuppressionError, SuppressionService};

/// The fulfillment queue: each message on its own.
pub async fn fulfill(fulfillment: &Fulfillment, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.unwrap_or_default();
        match fulfillment.handle(message.body.as_deref()).await {
            Ok(outcome) => tracing::info!(message_id = %id, ?outcome, "handled"),
            Err(err) => {
                tracing::error!(message_id = %id, error = %err, "failed; left on the queue");
                response.add_failure(id);
            }
        }
    }
    response
}

/// The notifications queue: each message on its own.
pub async fn notify(notifications: &Notifications, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.unwrap_or_default();
        match notifications.handle(message.body.as_deref()).await {
            Ok(outcome) => tracing::info!(message_id = %id, ?outcome, "handled"),
            Err(err) => {
                tracing::error!(message_id = %id, error = %err, "failed; left on the queue");
                response.add_failure(id);
            }
        }
    }
    response
}

/// The webhook queue: the batch at once (its receivers are called concurrently).
pub async fn deliver(deliveries: &Deliveries, event: SqsEvent) -> SqsBatchResponse {
    let messages: Vec<QueuedEvent> = event.records.iter().map(queued_event).collect();
    let failed = deliveries.handle(&messages).await;
    let mut response = SqsBatchResponse::default();
    for (message, failed) in event.records.into_iter().zip(failed) {
        if failed {
            // Without an id Lambda cannot tell which message failed; an empty one
            // makes it retry the whole batch, which the delivered markers make harmless.
            response.add_failure(message.message_id.unwrap_or_default());
        }
    }
    response
}

fn queued_event(message: &SqsMessage) -> QueuedEvent {
    QueuedEvent {
        id: message.message_id.clone(),
        body: message.body.clone(),
        receive_count: message
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok()),
        receipt_handle: message.receipt_handle.clone(),
        queue_arn: message.event_source_arn.clone(),
    }
}

/// The payments queue: cancelled orders (refunded, or their intents withdrawn) and
/// received returns (`order.return_received`: a refund the receive left pending is
/// finished, `returns.finish_received`). Each message on its own; a failure (the
/// provider unavailable) leaves it for a retry, then the dead-letter queue.
pub async fn settle(
    payments: &PaymentService,
    returns: Option<&ReturnService>,
    event: SqsEvent,
) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.unwrap_or_default();
        let body = message.body.as_deref();
        let outcome = match (returns, detail_type(body).as_deref()) {
            (Some(returns), Some(crate::events::RETURN_RECEIVED)) => returns
                .finish_received(body)
                .await
                .map(|done| format!("{done:?}"))
                .map_err(|e| e.to_string()),
            _ => payments
                .settle_cancelled(body)
                .await
                .map(|done| format!("{done:?}"))
                .map_err(|e| e.to_string()),
        };
        match outcome {
            Ok(outcome) => tracing::info!(message_id = %id, %outcome, "settled"),
            Err(err) => {
                tracing::error!(message_id = %id, error = %err, "failed; left on the queue");
                response.add_failure(id);
            }
        }
    }
    response
}

/// An EventBridge event's `detail-type`, if the body is one.
fn detail_type(body: Option<&str>) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Typed {
        #[serde(rename = "detail-type")]
        detail_type: String,
    }
    serde_json::from_str::<Typed>(body?)
        .ok()
        .map(|t| t.detail_type)
}

/// The erasure queue: each message is one page of a customer's erasure job; a page
/// that failed (the store unavailable) is received again, then dead-lettered.
pub async fn erase(privacy: &PrivacyService, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.unwrap_or_default();
        let body = message.body.as_deref().unwrap_or_default();
        let Ok(job) = serde_json::from_str::<ErasureMessage>(body) else {
            // Not ours to retry: nothing could ever read it.
            tracing::error!(message_id = %id, "not an erasure message; dropped");
            continue;
        };
        match privacy.continue_erasure(&job.user_id, &job.job_id).await {
            Ok(outcome) => {
                tracing::info!(message_id = %id, job_id = %job.job_id, ?outcome, "handled")
            }
            Err(err) => {
                tracing::error!(message_id = %id, error = %err, "failed; left on the queue");
                response.add_failure(id);
            }
        }
    }
    response
}

/// The bounce queue (SES's bounces and complaints through SNS): each message on its
/// own; one the store could not record is received again, then dead-lettered.
pub async fn suppress(suppressions: &SuppressionService, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.unwrap_or_default();
        match suppressions.from_ses(message.body.as_deref()).await {
            Ok(count) => tracing::info!(message_id = %id, count, "handled"),
            Err(SuppressionError::Malformed(why)) => {
                // Retrying cannot make it readable.
                tracing::error!(message_id = %id, %why, "unreadable bounce message; dropped");
            }
            Err(err) => {
                tracing::error!(message_id = %id, error = %err, "failed; left on the queue");
                response.add_failure(id);
            }
        }
    }
    response
}
