//! Moves the messages of a dead-letter queue back to the queue they came from, once
//! each: `make redrive QUEUE=<name or URL>` (`src/bin/redrive.rs`). On AWS, SQS's own
//! move task does the same (`aws sqs start-message-move-task --source-arn <DLQ ARN>`,
//! docs/operations.md); this is for the emulator, which lacks it, and for anyone who
//! wants to watch each message go.
//!
//! A message is deleted from the dead-letter queue only after the source queue took
//! its copy, so a failed send leaves it where it was (it shows again when its
//! visibility timeout ends, for the next run). While a redriver holds a message it is
//! invisible to every other receiver, so two redrivers running at once move disjoint
//! messages, and a second run after a complete one finds nothing. The one window for a
//! second copy: the send succeeds and the process dies (or the delete fails) before
//! the delete; the message then shows again and a later run sends it again. The
//! consumers are idempotent on `detail.event_id`, so such a copy has no second effect.

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, SendMessageBatchRequestEntry,
};

/// How long a received message stays hidden from other receivers: far longer than a
/// batch's send and delete take.
pub const HOLD: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
#[error("redrive: {0}")]
pub struct RedriveError(pub String);

fn error(err: impl std::fmt::Display) -> RedriveError {
    RedriveError(err.to_string())
}

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Redriven {
    /// Sent to the source queue and deleted from the dead-letter queue.
    pub moved: usize,
    /// Not taken by the source queue: still in the dead-letter queue.
    pub failed: usize,
    /// Sent, but not deleted: a second copy may come (see the module comment).
    pub not_deleted: usize,
}

/// A queue's URL from its URL or name.
pub async fn queue_url(sqs: &Client, queue: &str) -> Result<String, RedriveError> {
    if queue.starts_with("https://") || queue.starts_with("http://") {
        return Ok(queue.to_string());
    }
    sqs.get_queue_url()
        .queue_name(queue)
        .send()
        .await
        .map_err(error)?
        .queue_url
        .ok_or_else(|| RedriveError(format!("no URL for queue {queue}")))
}

/// The one queue whose redrive policy names `dead_letters`.
pub async fn source_of(sqs: &Client, dead_letters: &str) -> Result<String, RedriveError> {
    let sources = sqs
        .list_dead_letter_source_queues()
        .queue_url(dead_letters)
        .send()
        .await
        .map_err(error)?
        .queue_urls;
    match sources.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(RedriveError(format!(
            "no queue sends its dead letters to {dead_letters}"
        ))),
        many => Err(RedriveError(format!(
            "{} queues send their dead letters to {dead_letters}; name one with --to",
            many.len()
        ))),
    }
}

/// Moves every message visible in `dead_letters` to `source`, batch by batch, until a
/// receive finds none.
pub async fn redrive(
    sqs: &Client,
    dead_letters: &str,
    source: &str,
    hold: Duration,
) -> Result<Redriven, RedriveError> {
    let mut done = Redriven::default();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(dead_letters)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(i32::try_from(hold.as_secs()).unwrap_or(i32::MAX))
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(error)?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(done);
        }
        let entries = messages
            .iter()
            .enumerate()
            .map(|(i, message)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(message.body.clone().unwrap_or_default())
                    .set_message_attributes(message.message_attributes.clone())
                    .build()
                    .map_err(error)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let sent = match sqs
            .send_message_batch()
            .queue_url(source)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(output) => output.successful,
            // Nothing was taken: every message stays in the dead-letter queue.
            Err(err) => {
                tracing::warn!(error = %error(err), "send to the source queue failed");
                Vec::new()
            }
        };
        done.failed += messages.len() - sent.len();
        if sent.is_empty() {
            // The source refuses: stop rather than spin on the same messages.
            return Ok(done);
        }
        let deletes = sent
            .iter()
            .filter_map(|entry| {
                let message = messages.get(entry.id.parse::<usize>().ok()?)?;
                DeleteMessageBatchRequestEntry::builder()
                    .id(entry.id.clone())
                    .receipt_handle(message.receipt_handle.clone()?)
                    .build()
                    .ok()
            })
            .collect::<Vec<_>>();
        let deleted = match sqs
            .delete_message_batch()
            .queue_url(dead_letters)
            .set_entries(Some(deletes))
            .send()
            .await
        {
            Ok(output) => output.successful.len(),
            Err(err) => {
                tracing::warn!(error = %error(err), "delete from the dead-letter queue failed");
                0
            }
        };
        done.moved += deleted;
        done.not_deleted += sent.len() - deleted;
    }
}
