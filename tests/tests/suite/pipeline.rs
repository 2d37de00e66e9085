//! The whole event pipeline as `make dev` runs it — the table's stream, the
//! publisher, EventBridge rules, SQS queues and the consumers — on the emulator,
//! driven through the API the way a user would.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use orders::adapters::dynamo::inventory::DynamoInventory;
use orders::domain::webhook::signature::{Secret, verify};
use orders::ports::Inventory;
use orders::wiring::Wiring;
use orders_dev::pipeline::{self, Queues};
use orders_tests::{ADMIN, Call, Stack, template, token};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// Polls `check` until it yields a value or `deadline` passes.
async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = Instant::now() + deadline;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The template's queues, bus and rules for this stack, and the consumers running.
async fn start_pipeline(
    stack: &Stack,
    fulfillment_visibility: Option<u32>,
) -> (Queues, Vec<JoinHandle<Result<(), pipeline::PipelineError>>>) {
    let sdk = orders::adapters::aws::sdk_config().await;
    let template = template();
    let mut queues = template.queues();
    if let Some(seconds) = fulfillment_visibility {
        // Only so that redrive happens in seconds; maxReceiveCount stays the template's.
        for queue in queues
            .iter_mut()
            .filter(|q| q.logical_id == "FulfillmentQueue")
        {
            queue.visibility_timeout = Some(seconds);
        }
    }
    let created = pipeline::provision(
        &aws_sdk_sqs::Client::new(&sdk),
        &aws_sdk_eventbridge::Client::new(&sdk),
        &stack.table,
        &format!("{}-", stack.table),
        &queues,
        &template.rules().unwrap(),
    )
    .await
    .unwrap();
    let mut settings = stack
        .wiring
        .settings()
        .clone()
        .with("EVENT_BUS_NAME", &stack.table);
    if let Some((url, _)) = created.get("WebhookQueue") {
        settings = settings.with("WEBHOOK_QUEUE_URL", url);
    }
    let wiring = Wiring::load(settings, sdk.clone()).await;
    let local = pipeline::Local {
        sdk,
        table: stack.table.clone(),
        queues: created.clone(),
    };
    let tasks = pipeline::start(local, &wiring, &template.consumers())
        .await
        .unwrap();
    (created, tasks)
}

/// A webhook receiver on this machine that records what it is sent.
async fn receiver() -> (String, Arc<Mutex<Vec<(http::HeaderMap, Bytes)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/orders", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&received);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        let log = Arc::clone(&log);
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            log.lock().unwrap().push((parts.headers, body));
                            let mut response = hyper::Response::new(Full::new(Bytes::new()));
                            *response.status_mut() = hyper::StatusCode::NO_CONTENT;
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, received)
}

async fn shipping_status(stack: &Stack, id: &str, user: &str) -> String {
    let reply = stack
        .send(Call::new("GET", &format!("/api/orders/{id}")).bearer(&token(user, "")))
        .await;
    reply.body["shipping_status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confirming_an_order_reserves_stock_and_signed_webhooks_tell_the_world() {
    let stack = Stack::local_mode().await;
    let inventory = DynamoInventory::new(stack.dynamodb.clone(), &stack.table);
    inventory.set_stock("p001", 10).await.unwrap();
    let (url, received) = receiver().await;
    let subscribed = stack
        .send(
            Call::new("POST", "/api/webhooks")
                .bearer(&token("admin", ADMIN))
                .json(&json!({ "url": url, "events": ["*"], "description": "pipeline test" })),
        )
        .await;
    assert_eq!(subscribed.status, 201, "{subscribed:?}");
    let secret = Secret::parse(subscribed.body["secret"].as_str().unwrap()).unwrap();
    let (_, tasks) = start_pipeline(&stack, None).await;

    let id = stack.order_for("ann", "cart-e2e").await;
    stack.advance(&id, &["confirmed"]).await;

    // Fulfillment reserved the stock and recorded it on the order.
    eventually(
        "shipping_status processing",
        Duration::from_secs(30),
        || async { (shipping_status(&stack, &id, "ann").await == "processing").then_some(()) },
    )
    .await;
    assert_eq!(inventory.available("p001").await.unwrap(), Some(8));

    // The receiver got one signed delivery per change, in order.
    let deliveries = eventually("three deliveries", Duration::from_secs(30), || async {
        let log = received.lock().unwrap();
        (log.len() >= 3).then(|| log.clone())
    })
    .await;
    let mut seen = Vec::new();
    for (headers, body) in &deliveries {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let timestamp: i64 = header("webhook-timestamp").parse().unwrap();
        assert!(
            verify(
                &secret,
                &header("webhook-id"),
                timestamp,
                body,
                &header("webhook-signature")
            ),
            "signature of {}",
            header("webhook-id")
        );
        let payload: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(payload["data"]["event_id"], header("webhook-id"));
        seen.push((
            payload["data"]["sequence"].as_u64().unwrap(),
            payload["type"].as_str().unwrap().to_string(),
        ));
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            (1, "order.created".to_string()),
            (2, "order.confirmed".to_string()),
            (3, "order.shipping_status_changed".to_string())
        ]
    );
    for task in tasks {
        task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poison_message_is_retried_alone_and_dead_lettered() {
    let stack = Stack::new().await;
    DynamoInventory::new(stack.dynamodb.clone(), &stack.table)
        .set_stock("p001", 10)
        .await
        .unwrap();
    let (queues, tasks) = start_pipeline(&stack, Some(1)).await;
    let sqs = aws_sdk_sqs::Client::new(&orders::adapters::aws::sdk_config().await);
    let (fulfillment_queue, _) = &queues["FulfillmentQueue"];
    let (dead_letters, _) = &queues["FulfillmentDeadLetters"];

    sqs.send_message()
        .queue_url(fulfillment_queue)
        .message_body("not an event")
        .send()
        .await
        .unwrap();
    let id = stack.order_for("bob", "cart-poison").await;
    stack.advance(&id, &["confirmed"]).await;

    // The rest of the traffic flows past the poison...
    eventually(
        "shipping_status processing",
        Duration::from_secs(30),
        || async { (shipping_status(&stack, &id, "bob").await == "processing").then_some(()) },
    )
    .await;
    // ...which SQS moves to the dead-letter queue after maxReceiveCount attempts.
    let dead = eventually("the poison in the DLQ", Duration::from_secs(60), || async {
        let received = sqs
            .receive_message()
            .queue_url(dead_letters)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        received.messages.unwrap_or_default().into_iter().next()
    })
    .await;
    assert_eq!(dead.body.as_deref(), Some("not an event"));
    let receives: u32 = dead
        .attributes
        .as_ref()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or_default();
    assert!(receives >= 5, "dead-lettered after {receives} receives");
    for task in tasks {
        task.abort();
    }
}
