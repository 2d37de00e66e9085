//! DynamoDB that accepts connections and never answers (an emulator or a network that
//! hangs, as the load run's SIGSTOP makes it): the API still answers, with a prompt
//! 503 and `Retry-After`, within one operation timeout and a margin.

use std::time::{Duration, Instant};

use orders_tests::{Call, Stack, checkout, token};
use serde_json::json;
use tokio::net::TcpListener;

/// A loopback port that accepts every connection and answers nothing; the accepted
/// sockets are kept open, so a request waits until the client gives up.
async fn hanging_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    url
}

/// The bound the load run holds 503s to: the SDK's operation timeout and 2 s.
fn bound() -> Duration {
    orders::adapters::aws::OPERATION_TIMEOUT + Duration::from_secs(2)
}

#[tokio::test]
async fn a_keyed_create_against_a_hanging_carts_table_is_a_prompt_cart_503() {
    let mut hanging = orders::adapters::aws::sdk_config().await.into_builder();
    hanging.set_endpoint_url(Some(hanging_endpoint().await));
    hanging.insert_origin("endpoint_url", aws_types::origin::Origin::shared_config());
    // Carts from the carts table (the default), on the DynamoDB that hangs.
    let stack = Stack::on_sdk(hanging.build(), |settings| settings).await;
    let mut body = checkout("abc123");
    body["user_id"] = json!("user789");

    // Keyed: a refused cart falls back to the key's record, which hangs too. The two
    // reads share one deadline, so the answer does not take two timeouts.
    let started = Instant::now();
    let reply = stack
        .send(
            Call::new("POST", "/api/orders")
                .bearer(&token("user789", ""))
                .header("idempotency-key", "hanging-1")
                .json(&body),
        )
        .await;
    let took = started.elapsed();

    assert_eq!(
        (reply.status, reply.code()),
        (503, "cart_service_unavailable"),
        "{reply:?}"
    );
    assert!(reply.header("retry-after").is_some(), "{reply:?}");
    assert!(
        took < bound(),
        "answered after {took:?}, bound {:?}",
        bound()
    );
}
