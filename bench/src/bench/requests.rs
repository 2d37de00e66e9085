//! The bench's first part: one call per API operation, each in a fresh process (see
//! `runner`), counting the DynamoDB requests it makes; and the events the calls and the
//! cold-start runs send, from the samples in `events/`.

use std::path::Path;

use orders_dev::samples;
use orders_tests::token;
use serde_json::{Value, json};

use super::runner::{Run, Runner};
use crate::Error;

/// One API call: its label, the function that served it, and what it did.
pub type Call = (String, String, Run);

/// Calls every API operation once, in a lifecycle order (creates first, then reads and
/// moves of the orders created, then webhooks), and answers the calls. Fills in `ids`
/// (the orders and the webhook created), for the cold-start runs. `key`: this run's
/// Idempotency-Key suffix.
pub async fn per_call(
    bench: &mut Runner,
    events_dir: &Path,
    ids: &mut Ids,
    key: &str,
) -> Result<Vec<Call>, Error> {
    eprintln!("bench: DynamoDB requests per API call (one fresh process per call)");
    let mut calls: Vec<Call> = Vec::new();
    let mut call = async |bench: &mut Runner, label: &str, binary: &str, event: Value| {
        let run = bench.run(binary, &event).await?;
        eprintln!(
            "  {label:<48} {:>3} request(s)  -> {}",
            run.dynamo.len(),
            run.answer.summary()
        );
        let body = run.answer.body();
        calls.push((label.to_string(), binary.to_string(), run));
        Ok::<Value, Error>(body)
    };
    let create = sample(events_dir, "create-order", ids)?;
    let mut no_key = create.clone();
    if let Some(headers) = no_key["headers"].as_object_mut() {
        headers.remove("idempotency-key");
    }
    let body: Value = serde_json::from_str(create["body"].as_str().unwrap_or("{}"))?;
    let mut nokey_body = body.clone();
    nokey_body["cart_id"] = json!("bench-nokey");
    let created = call(
        bench,
        "create order (no Idempotency-Key)",
        "create-order",
        with_body(no_key, nokey_body),
    )
    .await?;
    ids.order = created["order_id"].as_str().unwrap_or_default().to_string();
    let mut cancel_body = body.clone();
    cancel_body["cart_id"] = json!("bench-cancel");
    let created = call(
        bench,
        "create order (Idempotency-Key)",
        "create-order",
        with_key(with_body(create.clone(), cancel_body.clone()), key),
    )
    .await?;
    ids.cancel_order = created["order_id"].as_str().unwrap_or_default().to_string();
    call(
        bench,
        "create order (Idempotency-Key, replayed)",
        "create-order",
        with_key(with_body(create.clone(), cancel_body), key),
    )
    .await?;
    if ids.order.is_empty() || ids.cancel_order.is_empty() {
        return Err("create-order did not create the bench's orders; see the log above".into());
    }
    call(
        bench,
        "get order",
        "get-order",
        sample(events_dir, "get-order", ids)?,
    )
    .await?;
    call(
        bench,
        "list orders (user, status)",
        "list-orders",
        sample(events_dir, "list-orders", ids)?,
    )
    .await?;
    let update = sample(events_dir, "update-order-status", ids)?;
    call(
        bench,
        "change status pending -> confirmed (admin)",
        "update-order-status",
        with_caller(
            with_body(
                update.clone(),
                json!({"status": "confirmed", "reason": "payment captured"}),
            ),
            "admin",
            "orders:admin",
        ),
    )
    .await?;
    call(
        bench,
        "change status confirmed -> shipped (fulfillment)",
        "update-order-status",
        update,
    )
    .await?;
    call(
        bench,
        "cancel order (owner, pending)",
        "cancel-order",
        sample(events_dir, "cancel-order", ids)?,
    )
    .await?;
    call(
        bench,
        "order history",
        "get-order-history",
        sample(events_dir, "get-order-history", ids)?,
    )
    .await?;
    let created = call(
        bench,
        "create webhook",
        "create-webhook",
        sample(events_dir, "create-webhook", ids)?,
    )
    .await?;
    ids.webhook = created["webhook_id"]
        .as_str()
        .or(created["id"].as_str())
        .unwrap_or_default()
        .to_string();
    for (label, binary) in [
        ("list webhooks", "list-webhooks"),
        ("get webhook", "get-webhook"),
        ("list webhook deliveries", "list-webhook-deliveries"),
        ("delete webhook", "delete-webhook"),
    ] {
        call(bench, label, binary, sample(events_dir, binary, ids)?).await?;
    }
    Ok(calls)
}

// ---------------------------------------------------------------------------------------
// Events: the samples in events/, with real ids and a minted token.

/// The ids the samples' placeholders are replaced with.
#[derive(Clone, Default)]
pub struct Ids {
    /// The order the get/list/status/history samples are about.
    pub order: String,
    /// The order the cancel sample cancels.
    pub cancel_order: String,
    pub webhook: String,
    pub hook_url: String,
}

/// `events/<name>.json` as `make invoke` prepares it (`orders_dev::samples`), with the
/// bench's ids and a token signed with the bench's secret.
pub fn sample(events_dir: &Path, name: &str, ids: &Ids) -> Result<Value, Error> {
    let order = if name == "cancel-order" {
        &ids.cancel_order
    } else {
        &ids.order
    };
    let ids = samples::Ids {
        order: order.clone(),
        webhook: ids.webhook.clone(),
        hook_url: ids.hook_url.clone(),
        ..samples::Ids::default()
    };
    Ok(samples::load(
        events_dir,
        name,
        &ids,
        orders_tests::SECRET.as_bytes(),
    )?)
}

/// Replaces an HTTP event's JSON body (and its content-length).
pub fn with_body(mut event: Value, body: Value) -> Value {
    let text = body.to_string();
    event["headers"]["content-length"] = json!(text.len().to_string());
    event["body"] = json!(text);
    event
}

/// Sets an HTTP event's Idempotency-Key (the sample's own key stays for the cold runs).
pub fn with_key(mut event: Value, key: &str) -> Value {
    event["headers"]["idempotency-key"] = json!(format!("bench-{key}"));
    event
}

/// Sets an HTTP event's caller: a token for `sub` with `scope`.
pub fn with_caller(mut event: Value, sub: &str, scope: &str) -> Value {
    event["headers"]["authorization"] = json!(format!("Bearer {}", token(sub, scope)));
    event
}
