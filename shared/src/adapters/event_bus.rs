//! Where order events go: the `EventBus` port on EventBridge.
//!
//! One call makes one attempt at each event and answers one outcome per event. Retrying
//! the failures is the stream publisher's business (`services::publisher`), because
//! what a failure means depends on the stream batch it came from; it also lets a test
//! inject the per-entry failures that PutEvents can answer and the emulator never does.

use async_trait::async_trait;
use aws_sdk_eventbridge::primitives::DateTime;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::adapters::aws::describe;
use crate::events::{OrderEvent, SOURCE};
use crate::ports::{EventBus, PublishError};

/// PutEvents takes at most 10 entries and 256 KiB per request.
const MAX_ENTRIES: usize = 10;
const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// Publishes on one EventBridge bus: source [`SOURCE`], detail-type
/// [`OrderEvent::detail_type`], detail the event as JSON, time when the change happened.
pub struct EventBridgeBus {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
}

impl EventBridgeBus {
    /// The bus over a client of its own: the API's 2 s attempt timeout would abandon a
    /// slow `PutEvents` that may still go through, and the SDK's retry then publishes
    /// its events twice. The publisher answers no caller, so it can wait (within the
    /// function's 30 s timeout).
    pub fn from_sdk(sdk: &aws_config::SdkConfig, bus_name: impl Into<String>) -> Self {
        let config = aws_sdk_eventbridge::config::Builder::from(sdk)
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(std::time::Duration::from_secs(1))
                    .operation_attempt_timeout(std::time::Duration::from_secs(10))
                    .operation_timeout(std::time::Duration::from_secs(20))
                    .build(),
            )
            .build();
        Self::new(aws_sdk_eventbridge::Client::from_conf(config), bus_name)
    }

    pub fn new(client: aws_sdk_eventbridge::Client, bus_name: impl Into<String>) -> Self {
        EventBridgeBus {
            client,
            bus_name: bus_name.into(),
        }
    }

    fn entry(&self, event: &OrderEvent) -> Result<Entry, PublishError> {
        let detail = serde_json::to_string(event)
            .map_err(|e| PublishError::Invalid(format!("detail: {e}")))?;
        let detail_type = event.detail_type();
        // How EventBridge sizes an entry: 14 bytes for Time, plus its texts.
        let size = 14 + SOURCE.len() + detail_type.len() + detail.len();
        if size > MAX_REQUEST_BYTES {
            return Err(PublishError::Invalid(format!(
                "{size} bytes, over PutEvents' {MAX_REQUEST_BYTES}"
            )));
        }
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(SOURCE)
            .detail_type(detail_type)
            .detail(detail)
            // The envelope's `time` is when the change happened, not when it was sent.
            .set_time(event_time(&event.occurred_at))
            .build();
        Ok(Entry { entry, size })
    }

    /// One PutEvents request: an outcome per entry, in order, or the reason the
    /// request as a whole failed.
    async fn put(
        &self,
        entries: Vec<PutEventsRequestEntry>,
    ) -> Result<Vec<Result<(), PublishError>>, PublishError> {
        let count = entries.len();
        let output = self
            .client
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|err| PublishError::Unavailable(describe(&err)))?;
        let results = output.entries();
        Ok((0..count)
            .map(|i| match results.get(i) {
                Some(result) => match result.error_code() {
                    None => Ok(()),
                    Some(code) => Err(PublishError::Rejected {
                        code: code.to_string(),
                        message: result.error_message().unwrap_or_default().to_string(),
                    }),
                },
                None => Err(PublishError::Unavailable(
                    "PutEvents answered fewer entries than it was sent".into(),
                )),
            })
            .collect())
    }
}

struct Entry {
    entry: PutEventsRequestEntry,
    size: usize,
}

#[async_trait]
impl EventBus for EventBridgeBus {
    async fn publish(&self, events: &[OrderEvent]) -> Vec<Result<(), PublishError>> {
        let mut outcomes: Vec<Option<Result<(), PublishError>>> = vec![None; events.len()];
        let mut batch: Vec<(usize, Entry)> = Vec::new();
        for (i, event) in events.iter().enumerate() {
            match self.entry(event) {
                Ok(entry) => batch.push((i, entry)),
                Err(err) => outcomes[i] = Some(Err(err)),
            }
        }

        let mut down: Option<PublishError> = None;
        for request in requests(batch) {
            let (indexes, entries): (Vec<usize>, Vec<PutEventsRequestEntry>) =
                request.into_iter().map(|(i, e)| (i, e.entry)).unzip();
            // Once a request failed as a whole, the next would most likely fail too,
            // each after the SDK's own retries and timeouts: report the rest unsent
            // and let the publisher retry them.
            let results = match &down {
                Some(err) => vec![Err(err.clone()); indexes.len()],
                None => self.put(entries).await.unwrap_or_else(|err| {
                    down = Some(err.clone());
                    vec![Err(err); indexes.len()]
                }),
            };
            for (i, result) in indexes.into_iter().zip(results) {
                outcomes[i] = Some(result);
            }
        }

        outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err(PublishError::Unavailable("not sent".into()))))
            .collect()
    }
}

/// Splits entries, in order, into PutEvents requests within its limits.
fn requests(entries: Vec<(usize, Entry)>) -> Vec<Vec<(usize, Entry)>> {
    let mut requests: Vec<Vec<(usize, Entry)>> = Vec::new();
    let mut size = 0;
    for (i, entry) in entries {
        let full = requests
            .last()
            .is_none_or(|r| r.len() == MAX_ENTRIES || size + entry.size > MAX_REQUEST_BYTES);
        if full {
            requests.push(Vec::new());
            size = 0;
        }
        size += entry.size;
        if let Some(request) = requests.last_mut() {
            request.push((i, entry));
        }
    }
    requests
}

fn event_time(occurred_at: &str) -> Option<DateTime> {
    let at = OffsetDateTime::parse(occurred_at, &Rfc3339).ok()?;
    DateTime::from_nanos(at.unix_timestamp_nanos()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(size: usize) -> Entry {
        Entry {
            entry: PutEventsRequestEntry::builder().build(),
            size,
        }
    }

    fn shape(requests: &[Vec<(usize, Entry)>]) -> Vec<Vec<usize>> {
        requests
            .iter()
            .map(|r| r.iter().map(|(i, _)| *i).collect())
            .collect()
    }

    #[test]
    fn requests_hold_at_most_ten_entries_in_order() {
        let entries = (0..23).map(|i| (i, entry(100))).collect();
        let requests = requests(entries);
        assert_eq!(
            shape(&requests),
            vec![
                (0..10).collect::<Vec<_>>(),
                (10..20).collect(),
                (20..23).collect()
            ]
        );
    }

    #[test]
    fn requests_stay_under_the_size_limit() {
        let big = MAX_REQUEST_BYTES / 2;
        let entries = vec![(0, entry(big)), (1, entry(big)), (2, entry(1))];
        assert_eq!(shape(&requests(entries)), vec![vec![0, 1], vec![2]]);
        let entries = vec![(0, entry(big)), (1, entry(big + 1)), (2, entry(1))];
        assert_eq!(shape(&requests(entries)), vec![vec![0], vec![1, 2]]);
    }

    #[test]
    fn the_event_time_is_the_change_time() {
        let time = event_time("2026-11-25T20:31:00.123Z").unwrap();
        assert_eq!(time.secs(), 1_795_638_660);
        assert_eq!(time.subsec_nanos(), 123_000_000);
        assert_eq!(event_time("yesterday"), None);
    }
}
