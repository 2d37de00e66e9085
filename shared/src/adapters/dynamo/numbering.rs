//! Gapless numbering (`docs/data-design.md`, "Invoices"): a counter item per series
//! and year, and the document that takes its next number, written in one transaction,
//! so that a number is taken exactly when a document gets it. Invoices and credit
//! notes both number this way.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use super::order_item::{Item, PK, SK, n, s};
use crate::adapters::aws::{read_item_with, transact};
use crate::domain::invoice::MAX_SEQUENCE;
use crate::ports::StoreError;

/// Attempts at taking the next number before giving up (the message is retried):
/// each lost race means another document took that number, so this many concurrent
/// issues in one instant are needed to exhaust it.
const MAX_ATTEMPTS: u32 = 50;

/// The counter item of `kind` (`INVOICE_COUNTER`, `CREDIT_NOTE_COUNTER`) for a year
/// and series: `<kind>#2026` with one series, `<kind>#2026#03` for series 3 of several.
pub fn counter_key(kind: &str, year: i32, series: Option<u16>) -> Item {
    let pk = match series {
        None => format!("{kind}#{year}"),
        Some(series) => format!("{kind}#{year}#{series:02}"),
    };
    Item::from([(PK.into(), s(pk)), (SK.into(), s("COUNTER"))])
}

/// What taking a number came to.
pub enum Numbered {
    /// The document was stored with this sequence number.
    Issued(u64),
    /// The document's key held one already (a redelivery, a concurrent twin): this.
    Existing(Item),
}

/// Stores the document `document(sequence)` makes with the next number of the
/// counter `counter`, only if no item has its key yet: reads the counter, then writes
/// both in one transaction, the counter from the value read to the next. A counter
/// that moved meanwhile (a concurrent issue) cancels it, and it is tried again with
/// the new value; a document that appeared meanwhile is the answer.
pub async fn issue_next(
    client: &Client,
    table: &str,
    counter: Item,
    mut document: impl FnMut(u64) -> Result<Item, StoreError>,
) -> Result<Numbered, StoreError> {
    for attempt in 0..MAX_ATTEMPTS {
        // The first read may be a moment old (half the read units): the transaction's
        // condition catches a counter that moved, and every read after that is strong.
        let last = match read_item_with(client, table, counter.clone(), attempt > 0).await? {
            Some(item) => item
                .get("last_sequence")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| StoreError::Corrupt("a counter has no last_sequence".into()))?,
            None => 0,
        };
        if last >= MAX_SEQUENCE {
            return Err(StoreError::Other(
                "the numbers of this year and series are used up".into(),
            ));
        }
        let mut values = Item::from([(":next".to_string(), n(last + 1))]);
        if last > 0 {
            values.insert(":last".into(), n(last));
        }
        let next = Update::builder()
            .table_name(table)
            .set_key(Some(counter.clone()))
            .update_expression("SET last_sequence = :next")
            .condition_expression(if last == 0 {
                "attribute_not_exists(PK)"
            } else {
                "last_sequence = :last"
            })
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let put = Put::builder()
            .table_name(table)
            .set_item(Some(document(last + 1)?))
            .condition_expression("attribute_not_exists(PK)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let items = vec![
            TransactWriteItem::builder().update(next).build(),
            TransactWriteItem::builder().put(put).build(),
        ];
        match transact(client, items).await {
            Ok(Ok(())) => return Ok(Numbered::Issued(last + 1)),
            Ok(Err(cancelled)) => {
                if let Some(existing) = cancelled.refused(1).and_then(|r| r.item())
                    && !existing.is_empty()
                {
                    return Ok(Numbered::Existing(existing.clone()));
                }
                if cancelled.refused(0).is_none() && cancelled.refused(1).is_none() {
                    // Conflict or throttling: not a condition, so pause before again.
                    let error = cancelled.into_error();
                    if !matches!(error, StoreError::Contention | StoreError::Throttled) {
                        return Err(error);
                    }
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
            Err(StoreError::Contention) => tokio::time::sleep(backoff(attempt)).await,
            Err(err) => return Err(err),
        }
    }
    Err(StoreError::Contention)
}

/// 5, 10, 20… ms, at most 200, with jitter so that racers spread out.
fn backoff(attempt: u32) -> Duration {
    let base = (5u64 << attempt.min(5)).min(200);
    let mut byte = [0u8; 1];
    let jitter =
        crate::domain::random::fill(&mut byte).map_or(0, |_| u64::from(byte[0]) % base.max(1));
    Duration::from_millis(base + jitter)
}
