//! The publisher's entry point: a batch of the orders table's stream records, as
//! Lambda's DynamoDB event source delivers it (`ReportBatchItemFailures`).

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};

use crate::adapters::dynamo::stream::recorded_change;
use crate::services::publisher::{Publisher, Recorded};

/// Publishes the batch's changes; the first record not done is the batch's single
/// item failure, so Lambda retries from it (see `services::publisher`).
pub async fn publish(publisher: &Publisher, event: Event) -> DynamoDbEventResponse {
    let records: Vec<Recorded> = event
        .records
        .iter()
        .map(|record| {
            recorded_change(record)
                .map(|change| change.map(|c| (c.before, c.after)))
                .map_err(|err| format!("record {}: {err}", record.event_id))
        })
        .collect();
    match publisher.publish_changes(&records).await {
        Some(at) => failed_at(event.records[at].change.sequence_number.as_deref()),
        None => DynamoDbEventResponse::default(),
    }
}

/// The one batch item failure: Lambda retries from this record on.
fn failed_at(sequence: Option<&str>) -> DynamoDbEventResponse {
    let mut failure = DynamoDbBatchItemFailure::default();
    // Without a sequence number Lambda counts the whole batch as failed, which is
    // still correct, only slower.
    failure.item_identifier = sequence.map(str::to_string);
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures.push(failure);
    response
}
