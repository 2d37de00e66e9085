//! Leased claims: the item that lets exactly one attempt do a one-time act (deliver a
//! webhook, send a message). Claimed with a random token until a lease; free again when
//! its holder releases it or its lease runs out; never claimed again once its act is
//! recorded done (any state but `claimed`, written by the caller).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use time::OffsetDateTime;

use super::order_item::{Item, n, s};
use crate::adapters::aws::store_error;
use crate::ports::{Claim, ClaimToken, StoreError};

/// The `state` of a claimed item.
pub const STATE_CLAIMED: &str = "claimed";

/// Claims `key` until `lease_until`, writing `attributes` (and `expires_at`) with it.
/// `Held`: another attempt's lease runs; `Delivered`: the act was recorded done.
pub async fn claim(
    client: &Client,
    table: &str,
    key: Item,
    attributes: &[(&str, AttributeValue)],
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
) -> Result<Claim, StoreError> {
    let token = new_token()?;
    let mut set = String::from("SET #state = :claimed, claim = :token, lease_until = :until");
    let mut values = HashMap::from([
        (":claimed".to_string(), s(STATE_CLAIMED)),
        (":token".to_string(), s(&token.0)),
        (":until".to_string(), n(millis(lease_until))),
        (":now".to_string(), n(millis(now))),
    ]);
    for (name, value) in attributes {
        set.push_str(&format!(", {name} = :{name}"));
        values.insert(format!(":{name}"), value.clone());
    }
    let result = client
        .update_item()
        .table_name(table)
        .set_key(Some(key))
        .update_expression(set)
        // Free, or claimed by an attempt whose lease ran out (it crashed), or by this
        // very request: the SDK resends a request whose answer did not come in time
        // (the attempt timeout), and the first copy may have been applied; without
        // `claim = :token` the resend would find its own claim held, and the act
        // would wait out the lease. An item recorded done (and one without a state,
        // written before claims) is never claimed again.
        .condition_expression(
            "attribute_not_exists(PK) OR (#state = :claimed AND (lease_until < :now OR claim = :token))",
        )
        .expression_attribute_names("#state", "state")
        .set_expression_attribute_values(Some(values))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    match result {
        Ok(_) => Ok(Claim::Claimed(token)),
        Err(err) => match err.as_service_error() {
            Some(UpdateItemError::ConditionalCheckFailedException(e)) => {
                let state = e.item().and_then(|item| item.get("state"));
                Ok(match state.and_then(|v| v.as_s().ok()) {
                    Some(state) if state == STATE_CLAIMED => Claim::Held,
                    _ => Claim::Delivered,
                })
            }
            _ => Err(store_error(err)),
        },
    }
}

/// Gives the claim `token` holds on `key` up; a claim no longer this token's (done
/// meanwhile, or its lease ran out and another holds it) is left alone.
pub async fn release(
    client: &Client,
    table: &str,
    key: Item,
    token: &ClaimToken,
) -> Result<(), StoreError> {
    let result = client
        .delete_item()
        .table_name(table)
        .set_key(Some(key))
        .condition_expression("#state = :claimed AND claim = :token")
        .expression_attribute_names("#state", "state")
        .expression_attribute_values(":claimed", s(STATE_CLAIMED))
        .expression_attribute_values(":token", s(&token.0))
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(err) => match err.as_service_error() {
            Some(DeleteItemError::ConditionalCheckFailedException(_)) => Ok(()),
            _ => Err(store_error(err)),
        },
    }
}

/// Records the claimed act done: `item` (its key, a `state` other than `claimed`, and
/// what the caller keeps of it) replaces the claim. Unconditional: recording the same
/// fact twice is the same fact, and a done item is never claimed again.
pub async fn record_done(client: &Client, table: &str, item: Item) -> Result<(), StoreError> {
    client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
        .map_err(store_error)?;
    Ok(())
}

/// Leases are kept in milliseconds.
pub fn millis(at: OffsetDateTime) -> i128 {
    at.unix_timestamp_nanos() / 1_000_000
}

/// 128 random bits: only the claimer knows its claim.
fn new_token() -> Result<ClaimToken, StoreError> {
    let mut bytes = [0u8; 16];
    crate::domain::random::fill(&mut bytes)
        .map_err(|_| StoreError::Other("no randomness for a claim".into()))?;
    Ok(ClaimToken(
        bytes.iter().map(|b| format!("{b:02x}")).collect(),
    ))
}
