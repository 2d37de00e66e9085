//! `POST /api/orders`: checkout, idempotency, one order per cart, and every way a
//! create can be refused — each checked against what is stored on the emulator.

use std::sync::{Arc, Mutex};

use futures_util::future::join_all;
use orders_tests::{ADMIN, Call, Stack, checkout, token};
use serde_json::{Value, json};

fn create(user: &str, body: &Value) -> Call {
    Call::new("POST", "/api/orders")
        .bearer(&token(user, ""))
        .json(body)
}

/// The README's example request body: its cart, user, address and payment method.
fn seed_body() -> Value {
    let mut body = checkout("abc123");
    body["user_id"] = json!("user789");
    body
}

async fn seed_cart(stack: &Stack) {
    stack.put_demo_cart().await;
}

#[tokio::test]
async fn the_seed_request_creates_a_pending_order_priced_from_the_cart() {
    let stack = Stack::new().await;
    seed_cart(&stack).await;

    let reply = stack.send(create("user789", &seed_body())).await;

    assert_eq!(reply.status, 201, "{reply:?}");
    let id = reply.body["order_id"].as_str().unwrap();
    assert_eq!(reply.body["status"], "pending");
    assert_eq!(reply.body["message"], "Order received and pending payment.");
    assert_eq!(
        reply.header("location"),
        Some(format!("/api/orders/{id}").as_str())
    );
    assert!(reply.header("idempotent-replayed").is_none());

    let stored = stack.stored_order(id).await.expect("order stored");
    assert_eq!(stored["total"].as_n().unwrap(), "7500");
    assert_eq!(stored["currency"].as_s().unwrap(), "USD");
    assert_eq!(stored["status"].as_s().unwrap(), "pending");
    assert_eq!(stored["payment_status"].as_s().unwrap(), "unpaid");
    assert_eq!(stored["version"].as_n().unwrap(), "1");
    assert_eq!(stored["history"].as_l().unwrap().len(), 1);

    let got = stack
        .send(Call::new("GET", &format!("/api/orders/{id}")).bearer(&token("user789", "")))
        .await;
    assert_eq!(got.status, 200);
    assert!(got.text.contains(r#""total":75.00"#), "{}", got.text);
    assert!(got.text.contains(r#""price":10.00"#), "{}", got.text);
    assert_eq!(got.body["currency"], "USD");
    assert_eq!(got.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(got.body["shipping_address"]["country"], "US");
    assert_eq!(got.header("etag"), Some("\"1\""));

    // Lists render money exactly too.
    let listed = stack
        .send(Call::new("GET", "/api/orders").bearer(&token("user789", "")))
        .await;
    assert_eq!(listed.status, 200);
    assert!(listed.text.contains(r#""total":75.00"#), "{}", listed.text);
}

#[tokio::test]
async fn totals_are_exact_in_minor_units() {
    let stack = Stack::new().await;
    stack
        .put_cart(
            "dimes",
            "ann",
            &[("p1", "Dime", 3, "0.10"), ("p2", "Gum", 1, "0.05")],
        )
        .await;
    let reply = stack.send(create("ann", &checkout("dimes"))).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let id = reply.body["order_id"].as_str().unwrap();
    let got = stack
        .send(Call::new("GET", &format!("/api/orders/{id}")).bearer(&token("ann", "")))
        .await;
    assert!(got.text.contains(r#""total":0.35"#), "{}", got.text);
    assert_eq!(
        stack.stored_order(id).await.unwrap()["total"]
            .as_n()
            .unwrap(),
        "35"
    );
}

#[tokio::test]
async fn a_retry_with_the_same_key_replays_the_first_answer() {
    let stack = Stack::new().await;
    seed_cart(&stack).await;
    let first = stack
        .send(create("user789", &seed_body()).header("idempotency-key", "k-1"))
        .await;
    assert_eq!(first.status, 201, "{first:?}");

    // The same body, its keys in another order: the same request.
    let reordered: Value = serde_json::from_str(
        r#"{"payment_method":"credit_card","shipping_address":{"country":"US","zip":"10001","state":"NY","city":"New York","address":"123 Main St","name":"Jane Doe"},"user_id":"user789","cart_id":"abc123"}"#,
    )
    .unwrap();
    let again = stack
        .send(create("user789", &reordered).header("idempotency-key", "k-1"))
        .await;

    assert_eq!(again.status, 201);
    assert_eq!(again.text, first.text);
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(stack.stored_orders().await.len(), 1);
}

#[tokio::test]
async fn a_key_reused_with_another_body_is_422_and_writes_nothing() {
    let stack = Stack::new().await;
    seed_cart(&stack).await;
    stack
        .put_cart("other", "user789", &[("p9", "Mouse", 1, "25.00")])
        .await;
    let first = stack
        .send(create("user789", &seed_body()).header("idempotency-key", "k-2"))
        .await;
    assert_eq!(first.status, 201);

    let other = stack
        .send(create("user789", &checkout("other")).header("idempotency-key", "k-2"))
        .await;

    assert_eq!(other.status, 422, "{other:?}");
    assert_eq!(other.code(), "idempotency_key_reused");
    assert_eq!(
        other.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(stack.stored_orders().await.len(), 1);
}

#[tokio::test]
async fn keys_are_scoped_to_the_caller() {
    let stack = Stack::new().await;
    stack
        .put_cart("cart-a", "ann", &[("p1", "A", 1, "1.00")])
        .await;
    stack
        .put_cart("cart-b", "bob", &[("p1", "A", 1, "1.00")])
        .await;
    let a = stack
        .send(create("ann", &checkout("cart-a")).header("idempotency-key", "same"))
        .await;
    let b = stack
        .send(create("bob", &checkout("cart-b")).header("idempotency-key", "same"))
        .await;
    assert_eq!((a.status, b.status), (201, 201));
    assert_ne!(a.body["order_id"], b.body["order_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_creates_with_one_key_make_one_order() {
    let stack = Stack::new().await;
    seed_cart(&stack).await;
    let call = create("user789", &seed_body()).header("idempotency-key", "burst");

    let replies = join_all((0..20).map(|_| stack.send(call.clone()))).await;

    let order_ids: std::collections::HashSet<_> = replies
        .iter()
        .filter(|r| r.status == 201)
        .map(|r| r.body["order_id"].clone())
        .collect();
    assert_eq!(order_ids.len(), 1, "{replies:?}");
    assert!(
        replies.iter().all(|r| r.status == 201 || r.status == 409),
        "{replies:?}"
    );
    assert_eq!(
        replies
            .iter()
            .filter(|r| r.status == 201 && r.header("idempotent-replayed").is_none())
            .count(),
        1
    );
    assert_eq!(stack.stored_orders().await.len(), 1);
    let records = stack
        .all_items()
        .await
        .into_iter()
        .filter(|i| i["SK"].as_s().unwrap() == "IDEMPOTENCY")
        .count();
    assert_eq!(records, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_cart_becomes_at_most_one_order() {
    let stack = Stack::new().await;
    seed_cart(&stack).await;

    let replies = join_all((0..20).map(|_| stack.send(create("user789", &seed_body())))).await;

    let created: Vec<_> = replies.iter().filter(|r| r.status == 201).collect();
    assert_eq!(created.len(), 1, "{replies:?}");
    let id = &created[0].body["order_id"];
    for refused in replies.iter().filter(|r| r.status != 201) {
        assert_eq!(refused.status, 409, "{refused:?}");
        assert_eq!(refused.code(), "cart_already_ordered");
        assert_eq!(&refused.body["order_id"], id);
    }
    // A new key does not make the cart orderable again.
    let keyed = stack
        .send(create("user789", &seed_body()).header("idempotency-key", "fresh"))
        .await;
    assert_eq!(keyed.status, 409, "{keyed:?}");
    assert_eq!(stack.stored_orders().await.len(), 1);
}

#[tokio::test]
async fn a_retry_is_replayed_even_after_the_cart_is_gone() {
    let stack = Stack::new().await;
    seed_cart(&stack).await;
    let first = stack
        .send(create("user789", &seed_body()).header("idempotency-key", "k-3"))
        .await;
    assert_eq!(first.status, 201);
    stack
        .dynamodb
        .delete_item()
        .table_name(&stack.carts_table)
        .key(
            "cart_id",
            aws_sdk_dynamodb::types::AttributeValue::S("abc123".into()),
        )
        .send()
        .await
        .unwrap();

    let again = stack
        .send(create("user789", &seed_body()).header("idempotency-key", "k-3"))
        .await;

    assert_eq!(again.status, 201, "{again:?}");
    assert_eq!(again.text, first.text);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
}

#[tokio::test]
async fn carts_that_cannot_become_orders_are_refused_with_nothing_written() {
    let stack = Stack::new().await;
    stack.put_cart("empty", "user789", &[]).await;
    stack
        .put_cart("bobs", "bob", &[("p1", "A", 1, "1.00")])
        .await;
    stack
        .put_cart("odd", "user789", &[("p1", "A", 1, "1.001")])
        .await;

    for (cart, status, code) in [
        ("nope", 404, "cart_not_found"),
        ("empty", 400, "cart_empty"),
        ("bobs", 404, "cart_not_found"),
        ("odd", 422, "cart_invalid"),
    ] {
        let reply = stack.send(create("user789", &checkout(cart))).await;
        assert_eq!(
            (reply.status, reply.code()),
            (status, code),
            "cart {cart}: {reply:?}"
        );
    }
    assert!(stack.all_items().await.is_empty());
}

#[tokio::test]
async fn customers_order_for_themselves_and_admins_for_anyone() {
    let stack = Stack::new().await;
    seed_cart(&stack).await;

    let someone_else = stack.send(create("mallory", &seed_body())).await;
    assert_eq!(
        (someone_else.status, someone_else.code()),
        (403, "forbidden")
    );
    assert!(stack.all_items().await.is_empty());

    let by_admin = stack
        .send(
            Call::new("POST", "/api/orders")
                .bearer(&token("support-1", ADMIN))
                .json(&seed_body()),
        )
        .await;
    assert_eq!(by_admin.status, 201, "{by_admin:?}");
    let stored = stack
        .stored_order(by_admin.body["order_id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(stored["user_id"].as_s().unwrap(), "user789");
    let history = stored["history"].as_l().unwrap();
    assert_eq!(
        history[0].as_m().unwrap()["actor"].as_s().unwrap(),
        "support-1"
    );
}

#[tokio::test]
async fn invalid_fields_are_all_reported_and_nothing_is_written() {
    let stack = Stack::new().await;
    seed_cart(&stack).await;
    let body = json!({
        "cart_id": "abc123",
        "payment_method": "cash",
        "shipping_address": {"name": "Jane", "address": "1 St", "city": "NY", "zip": 10001, "country": "USA"},
        "coupon": "FREE"
    });

    let reply = stack.send(create("user789", &body)).await;

    assert_eq!(
        (reply.status, reply.code()),
        (400, "validation_failed"),
        "{reply:?}"
    );
    assert_eq!(reply.body["type"], "/problems/validation_failed");
    let fields = reply.error_fields();
    for field in [
        "coupon",
        "payment_method",
        "shipping_address.zip",
        "shipping_address.country",
    ] {
        assert!(fields.contains(&field), "{field} missing from {fields:?}");
    }
    let missing = stack.send(create("user789", &json!({}))).await;
    let fields = missing.error_fields();
    assert_eq!(fields, ["cart_id", "payment_method", "shipping_address"]);
    assert!(stack.all_items().await.is_empty());
}

#[tokio::test]
async fn malformed_requests_get_clear_problems() {
    let stack = Stack::new().await;
    seed_cart(&stack).await;
    let user = token("user789", "");
    let post = || Call::new("POST", "/api/orders").bearer(&user);

    let cases = [
        (
            post().raw_body("application/json", &"x".repeat(70 * 1024)),
            413,
            "body_too_large",
        ),
        (
            post().raw_body("text/plain", &seed_body().to_string()),
            415,
            "unsupported_media_type",
        ),
        (
            post().raw_body("application/json", "{\"cart_id\": "),
            400,
            "malformed_json",
        ),
        (
            post().raw_body("application/json", "[1, 2]"),
            400,
            "malformed_json",
        ),
        (post(), 400, "malformed_json"),
        (
            post()
                .json(&seed_body())
                .header("idempotency-key", &"k".repeat(256)),
            400,
            "validation_failed",
        ),
        (
            Call::new("POST", "/api/orders").json(&seed_body()),
            401,
            "unauthorized",
        ),
        (
            Call::new("POST", "/api/orders")
                .bearer("not-a-jwt")
                .json(&seed_body()),
            401,
            "unauthorized",
        ),
    ];
    for (call, status, code) in cases {
        let reply = stack.send(call).await;
        assert_eq!((reply.status, reply.code()), (status, code), "{reply:?}");
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(reply.body["status"], status);
    }
    let unauthorized = stack
        .send(Call::new("POST", "/api/orders").json(&seed_body()))
        .await;
    assert_eq!(unauthorized.header("www-authenticate"), Some("Bearer"));
    assert!(stack.all_items().await.is_empty());
}

#[tokio::test]
async fn an_unreachable_order_store_is_a_503_with_retry_after() {
    // A DynamoDB endpoint where nothing listens: the emulator gone. The cart comes
    // from the cart service, which is up.
    let mut dead = orders::adapters::aws::sdk_config().await.into_builder();
    dead.set_endpoint_url(Some("http://127.0.0.1:9".into()));
    // Set here, it overrides AWS_ENDPOINT_URL, as a client setting would.
    dead.insert_origin("endpoint_url", aws_types::origin::Origin::shared_config());
    let dead = dead.build();
    let carts = cart_api(vec![(
        "abc123",
        200,
        r#"{"cart_id":"abc123","user_id":"user789","currency":"USD","items":[{"product_id":"p001","name":"USB Cable","quantity":2,"price":"10.00"},{"product_id":"p002","name":"Keyboard","quantity":1,"price":"55.00"}]}"#,
    )])
    .await;
    let stack = Stack::on_sdk(dead, |settings| settings.with("CART_API_URL", &carts)).await;

    let created = stack.send(create("user789", &seed_body())).await;
    assert_eq!(
        (created.status, created.code()),
        (503, "store_unavailable"),
        "{created:?}"
    );
    assert_eq!(created.header("retry-after"), Some("1"));

    let got = stack
        .send(Call::new("GET", "/api/orders/ORD0000000000000000").bearer(&token("user789", "")))
        .await;
    assert_eq!(got.status, 503);
}

/// A stand-in for the Shopping Cart API: `GET /api/carts/{id}` answered from a
/// fixed table of (status, body), on a loopback port.
async fn cart_api(answers: Vec<(&'static str, u16, &'static str)>) -> String {
    cart_api_logged(answers).await.0
}

/// `cart_api`, with the paths it was asked for.
async fn cart_api_logged(
    answers: Vec<(&'static str, u16, &'static str)>,
) -> (String, Arc<Mutex<Vec<String>>>) {
    use http_body_util::Full;
    use hyper::body::Bytes;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let answers = Arc::new(answers);
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&asked);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let answers = Arc::clone(&answers);
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        let answers = Arc::clone(&answers);
                        let log = Arc::clone(&log);
                        async move {
                            let path = request.uri().path().to_string();
                            log.lock().unwrap().push(path.clone());
                            let (status, body) = answers
                                .iter()
                                .find(|(id, _, _)| path == format!("/api/carts/{id}"))
                                .map(|(_, s, b)| (*s, *b))
                                .unwrap_or((404, r#"{"error":"not found"}"#));
                            let mut response = hyper::Response::new(Full::new(Bytes::from_static(
                                body.as_bytes(),
                            )));
                            *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
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
    (url, asked)
}

#[tokio::test]
async fn carts_from_the_shopping_cart_api() {
    let url = cart_api(vec![
        (
            "c-1",
            200,
            r#"{"cart_id":"c-1","user_id":"ann","currency":"USD","items":[{"product_id":"p1","name":"Dime","quantity":3,"price":0.10},{"product_id":"p2","name":"Cable","quantity":1,"price":"64.99"}]}"#,
        ),
        ("c-down", 500, "oops"),
        ("c-bad", 200, "not json"),
        ("c-empty", 200, r#"{"cart_id":"c-empty","user_id":"ann","currency":"USD","items":[]}"#),
    ])
    .await;
    let stack = Stack::with_settings(|settings| settings.with("CART_API_URL", &url)).await;

    let created = stack.send(create("ann", &checkout("c-1"))).await;
    assert_eq!(created.status, 201, "{created:?}");
    let stored = stack
        .stored_order(created.body["order_id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(stored["total"].as_n().unwrap(), "6529");

    for (cart, status, code) in [
        ("c-404", 404, "cart_not_found"),
        ("c-empty", 400, "cart_empty"),
        ("c-down", 503, "cart_service_unavailable"),
        ("c-bad", 502, "cart_service_error"),
    ] {
        let reply = stack.send(create("ann", &checkout(cart))).await;
        assert_eq!(
            (reply.status, reply.code()),
            (status, code),
            "{cart}: {reply:?}"
        );
    }
    assert_eq!(stack.stored_orders().await.len(), 1);
}

/// A stack whose callers may create `limit` orders per day: a window that long is
/// not crossed while a test runs.
async fn limited(limit: &str) -> Stack {
    let limit = limit.to_string();
    Stack::with_settings(move |s| s.with("ORDER_CREATE_LIMIT", limit)).await
}

/// `user`'s one-line cart `cart_id`, and a create of it.
async fn cart_create(stack: &Stack, user: &str, cart_id: &str) -> Call {
    stack
        .put_cart(cart_id, user, &[("p001", "USB Cable", 1, "10.00")])
        .await;
    create(user, &checkout(cart_id))
}

/// The create counters in the table: (PK, creates).
async fn counters(stack: &Stack) -> Vec<(String, String)> {
    stack
        .all_items()
        .await
        .into_iter()
        .filter(|i| i["PK"].as_s().unwrap().starts_with("RATE#"))
        .map(|i| {
            assert!(i["SK"].as_s().unwrap().starts_with("WINDOW#"), "{i:?}");
            assert!(i.contains_key("expires_at"), "a counter without TTL: {i:?}");
            (
                i["PK"].as_s().unwrap().clone(),
                i["creates"].as_n().unwrap().clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_create_after_the_limit_is_429_with_retry_after_and_writes_nothing() {
    let stack = limited("3/86400").await;
    let mut first = None;
    for i in 0..3 {
        let reply = stack
            .send(cart_create(&stack, "rita", &format!("rita-{i}")).await)
            .await;
        assert_eq!(reply.status, 201, "{reply:?}");
        assert_eq!(
            reply.header("ratelimit-policy"),
            Some(r#""create";q=3;w=86400"#)
        );
        first.get_or_insert(reply.body["order_id"].clone());
    }

    let refused = stack
        .send(cart_create(&stack, "rita", "rita-3").await)
        .await;

    assert_eq!(refused.status, 429, "{refused:?}");
    assert_eq!(refused.code(), "create_limit_reached");
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(refused.body["limit"], 3);
    assert_eq!(refused.body["window_seconds"], 86400);
    let retry_after: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=86400).contains(&retry_after), "{retry_after}");
    assert_eq!(
        refused.header("ratelimit-policy"),
        Some(r#""create";q=3;w=86400"#)
    );
    let rate = refused.header("ratelimit").unwrap();
    let reset: u64 = rate
        .strip_prefix(r#""create";r=0;t="#)
        .unwrap_or_else(|| panic!("RateLimit: {rate}"))
        .parse()
        .unwrap();
    assert!(reset.abs_diff(retry_after) <= 1, "{rate} vs {retry_after}");
    // Nothing written: no fourth order, the counter still at the limit.
    assert_eq!(stack.stored_orders().await.len(), 3);
    assert_eq!(
        counters(&stack).await,
        [("RATE#rita".to_string(), "3".to_string())]
    );

    // A keyless retry of a create that went through still learns its order.
    let again = stack.send(create("rita", &checkout("rita-0"))).await;
    assert_eq!(again.status, 409, "{again:?}");
    assert_eq!(again.code(), "cart_already_ordered");
    assert_eq!(Some(&again.body["order_id"]), first.as_ref());

    // Another caller has its own allowance.
    let other = stack.send(cart_create(&stack, "sam", "sam-0").await).await;
    assert_eq!(other.status, 201, "{other:?}");
    assert_eq!(stack.stored_orders().await.len(), 4);
}

#[tokio::test]
async fn an_idempotent_replay_is_answered_when_the_limit_is_reached() {
    let stack = limited("2/86400").await;
    let keyed = cart_create(&stack, "ida", "ida-0")
        .await
        .header("idempotency-key", "first");
    let original = stack.send(keyed.clone()).await;
    assert_eq!(original.status, 201, "{original:?}");
    let second = stack.send(cart_create(&stack, "ida", "ida-1").await).await;
    assert_eq!(second.status, 201, "{second:?}");

    let replay = stack.send(keyed).await;

    assert_eq!(replay.status, 201, "{replay:?}");
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.body["order_id"], original.body["order_id"]);
    // The key still tells another body apart, limit or not.
    let reused = stack
        .send(create("ida", &checkout("ida-1")).header("idempotency-key", "first"))
        .await;
    assert_eq!(reused.status, 422, "{reused:?}");
    // A new key is a new create, and over the limit.
    let fresh = stack
        .send(
            cart_create(&stack, "ida", "ida-2")
                .await
                .header("idempotency-key", "second"),
        )
        .await;
    assert_eq!(fresh.status, 429, "{fresh:?}");
    assert_eq!(stack.stored_orders().await.len(), 2);
    let records = stack
        .all_items()
        .await
        .into_iter()
        .filter(|i| i["SK"].as_s().unwrap() == "IDEMPOTENCY")
        .count();
    assert_eq!(records, 1, "the refused create left its key behind");
    assert_eq!(
        counters(&stack).await,
        [("RATE#ida".to_string(), "2".to_string())]
    );
}

#[tokio::test]
async fn zero_turns_the_create_limit_off() {
    let stack = limited("0").await;
    for i in 0..5 {
        let reply = stack
            .send(cart_create(&stack, "zed", &format!("zed-{i}")).await)
            .await;
        assert_eq!(reply.status, 201, "{reply:?}");
        assert!(reply.header("ratelimit-policy").is_none());
    }
    assert_eq!(stack.stored_orders().await.len(), 5);
    assert!(counters(&stack).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_by_one_caller_make_exactly_the_limit() {
    let stack = limited("3/86400").await;
    let mut calls = Vec::new();
    for i in 0..10 {
        calls.push(cart_create(&stack, "burst", &format!("burst-{i}")).await);
    }

    let replies = join_all(calls.into_iter().map(|call| stack.send(call))).await;

    let created = replies.iter().filter(|r| r.status == 201).count();
    assert_eq!(created, 3, "{replies:?}");
    assert!(
        replies
            .iter()
            .all(|r| r.status == 201 || r.code() == "create_limit_reached"),
        "{replies:?}"
    );
    assert_eq!(stack.stored_orders().await.len(), 3);
    assert_eq!(
        counters(&stack).await,
        [("RATE#burst".to_string(), "3".to_string())]
    );
}

/// A retry with the same `Idempotency-Key` is answered from its record whatever the
/// cart says by then: emptied, changed, another user's, unreadable, gone, or its
/// service down. Without the key, or with another one, the cart's word stands.
#[tokio::test]
async fn a_keyed_retry_is_replayed_whatever_the_cart_says_now() {
    let stack = Stack::new().await;
    let line = [("p001", "USB Cable", 2, "10.00")];
    let place =
        |cart: &str, key: &str| create("user789", &checkout(cart)).header("idempotency-key", key);
    let changes: [(&str, &str, &[orders_dev::provision::SeedLine]); 5] = [
        ("emptied", "user789", &[]),
        ("changed", "user789", &[("p001", "USB Cable", 5, "12.00")]),
        ("handed-on", "bob", &[("p001", "USB Cable", 2, "10.00")]),
        (
            "unpriceable",
            "user789",
            &[("p001", "USB Cable", 2, "10.001")],
        ),
        ("gone", "", &[]),
    ];
    for (cart, owner, lines) in changes {
        stack.put_cart(cart, "user789", &line).await;
        let first = stack.send(place(cart, cart)).await;
        assert_eq!(first.status, 201, "{cart}: {first:?}");
        if owner.is_empty() {
            stack
                .dynamodb
                .delete_item()
                .table_name(&stack.carts_table)
                .key(
                    "cart_id",
                    aws_sdk_dynamodb::types::AttributeValue::S(cart.into()),
                )
                .send()
                .await
                .unwrap();
        } else {
            stack.put_cart(cart, owner, lines).await;
        }

        let again = stack.send(place(cart, cart)).await;
        assert_eq!(again.status, 201, "{cart}: {again:?}");
        assert_eq!(again.text, first.text, "{cart}");
        assert_eq!(again.header("idempotent-replayed"), Some("true"), "{cart}");
        // The same key with another body is still no replay.
        let other = stack.send(place("no-such-cart", cart)).await;
        assert_eq!(other.status, 422, "{cart}: {other:?}");
    }
    // The order is the first request's, once: the changed cart priced nothing.
    let orders = stack.stored_orders().await;
    assert_eq!(orders.len(), changes.len());
    assert!(orders.iter().all(|o| o["total"].as_n().unwrap() == "2000"));

    // No key, or a key without a record: the cart's word.
    for (call, status, code) in [
        (create("user789", &checkout("emptied")), 400, "cart_empty"),
        (place("emptied", "fresh"), 400, "cart_empty"),
        (place("handed-on", "fresh"), 404, "cart_not_found"),
        (place("unpriceable", "fresh"), 422, "cart_invalid"),
        (place("gone", "fresh"), 404, "cart_not_found"),
    ] {
        let reply = stack.send(call).await;
        assert_eq!((reply.status, reply.code()), (status, code), "{reply:?}");
    }

    // The same orders table behind a cart service that is down.
    let down = cart_api(vec![("changed", 503, "busy")]).await;
    let table = stack.table.clone();
    let behind_outage = Stack::with_settings(|settings| {
        settings
            .with("TABLE_NAME", &table)
            .with("CART_API_URL", &down)
    })
    .await;
    let again = behind_outage.send(place("changed", "changed")).await;
    assert_eq!(again.status, 201, "{again:?}");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let fresh = behind_outage.send(place("changed", "fresh")).await;
    assert_eq!(
        (fresh.status, fresh.code()),
        (503, "cart_service_unavailable"),
        "{fresh:?}"
    );
}

/// What a cart service sends is checked like any input: control characters in a name,
/// bounds on names, quantities (per product, however many lines it is split over) and
/// prices, a line in another currency, and a cart other than the one asked for are all
/// refused, nothing stored;
/// an id of `..` never reaches the cart service as a path.
#[tokio::test]
async fn hostile_carts_are_refused_with_nothing_written() {
    let (url, asked) = cart_api_logged(vec![
        (
            "ctl",
            200,
            r#"{"cart_id":"ctl","user_id":"ann","currency":"USD","items":[{"product_id":"p1","name":"Cable\n<b>\u001b[2J","quantity":1,"price":"1.00"}]}"#,
        ),
        (
            "bidi",
            200,
            r#"{"cart_id":"bidi","user_id":"ann","currency":"USD","items":[{"product_id":"p1","name":"invoice\u202eexe.pdf","quantity":1,"price":"1.00"}]}"#,
        ),
        (
            "many",
            200,
            r#"{"cart_id":"many","user_id":"ann","currency":"USD","items":[{"product_id":"p1","name":"Cable","quantity":10001,"price":"1.00"}]}"#,
        ),
        (
            "dear",
            200,
            r#"{"cart_id":"dear","user_id":"ann","currency":"USD","items":[{"product_id":"p1","name":"Cable","quantity":1,"price":"1000000.01"}]}"#,
        ),
        (
            "euro",
            200,
            r#"{"cart_id":"euro","user_id":"ann","currency":"USD","items":[{"product_id":"p1","name":"Cable","quantity":1,"price":"1.00","currency":"EUR"}]}"#,
        ),
        (
            "twice",
            200,
            r#"{"cart_id":"twice","user_id":"ann","currency":"USD","items":[{"product_id":"p1","name":"Cable","quantity":10000,"price":"1.00"},{"product_id":"p1","name":"Cable","quantity":1,"price":"0.50"}]}"#,
        ),
        (
            "swapped",
            200,
            r#"{"cart_id":"someone-elses","user_id":"ann","currency":"USD","items":[{"product_id":"p1","name":"Cable","quantity":1,"price":"1.00"}]}"#,
        ),
    ])
    .await;
    let long_name = format!(
        r#"{{"cart_id":"long","user_id":"ann","currency":"USD","items":[{{"product_id":"p1","name":"{}","quantity":1,"price":"1.00"}}]}}"#,
        "n".repeat(201)
    );
    let (long_url, _) =
        cart_api_logged(vec![("long", 200, Box::leak(long_name.into_boxed_str()))]).await;
    let stack = Stack::with_settings(|settings| settings.with("CART_API_URL", &url)).await;

    for (cart, status, code, detail) in [
        ("ctl", 422, "cart_invalid", "control characters"),
        ("bidi", 422, "cart_invalid", "control characters"),
        ("many", 422, "cart_invalid", "quantity"),
        ("dear", 422, "cart_invalid", "at most"),
        ("euro", 422, "cart_invalid", "EUR"),
        ("twice", 422, "cart_invalid", "across lines"),
        ("swapped", 502, "cart_service_error", ""),
        ("..", 400, "validation_failed", ""),
        (".", 400, "validation_failed", ""),
    ] {
        let reply = stack.send(create("ann", &checkout(cart))).await;
        assert_eq!(
            (reply.status, reply.code()),
            (status, code),
            "{cart}: {reply:?}"
        );
        let said = reply.body["detail"].as_str().unwrap_or_default();
        assert!(said.contains(detail), "{cart}: {said}");
    }
    let long = Stack::with_settings(|settings| settings.with("CART_API_URL", &long_url)).await;
    let reply = long.send(create("ann", &checkout("long"))).await;
    assert_eq!(
        (reply.status, reply.code()),
        (422, "cart_invalid"),
        "{reply:?}"
    );

    assert!(stack.all_items().await.is_empty());
    assert!(long.all_items().await.is_empty());
    let asked = asked.lock().unwrap().clone();
    assert!(
        asked
            .iter()
            .all(|path| path.starts_with("/api/carts/") && path.len() > "/api/carts/".len()),
        "{asked:?}"
    );
    assert_eq!(asked.len(), 7, "{asked:?}");
}

/// The SDK resends a PutItem whose answer it lost; when the first attempt had
/// committed, the conditional put fails on the very order it wrote. The store knows
/// its own write (a create without a key answers 201, not 409), and still refuses
/// every other request for the same cart.
#[tokio::test]
async fn a_resent_create_is_recognised_as_its_own_write() {
    use orders::adapters::dynamo::DynamoOrderStore;
    use orders::domain::{AddressInput, Cart, CartLine, CheckoutInput};
    use orders::ports::{CreateOutcome, OrderStore};
    use time::OffsetDateTime;

    let stack = Stack::new().await;
    let store = DynamoOrderStore::new(stack.dynamodb.clone(), &stack.table);
    let s = |v: &str| Some(v.to_string());
    let order_at = |at: OffsetDateTime, actor: &str| {
        let input = CheckoutInput {
            cart_id: s("own"),
            user_id: s("ann"),
            payment_method: s("credit_card"),
            shipping_address: Some(AddressInput {
                name: s("Ann"),
                address: s("1 Main St"),
                city: s("Boston"),
                state: None,
                zip: s("02101"),
                country: s("US"),
            }),
            contact: None,
        };
        let cart = Cart {
            cart_id: "own".into(),
            user_id: "ann".into(),
            currency: "USD".into(),
            items: vec![CartLine {
                product_id: "p1".into(),
                name: "Cable".into(),
                quantity: 1,
                price: "1.00".into(),
                currency: None,
                tax_lines: vec![],
            }],
            charges: Default::default(),
        };
        input
            .validate()
            .unwrap()
            .place(&cart, "ann", actor, at)
            .unwrap()
    };
    let now = OffsetDateTime::now_utc();
    let order = order_at(now, "ann");

    assert_eq!(
        store.create(&order, None, None).await.unwrap(),
        CreateOutcome::Created
    );
    // The same Order value again: the resent request.
    assert_eq!(
        store.create(&order, None, None).await.unwrap(),
        CreateOutcome::Created
    );

    // Other requests for the same cart: a moment later, or at the same instant by
    // someone else.
    for other in [
        order_at(now + time::Duration::nanoseconds(1), "ann"),
        order_at(now, "support-1"),
    ] {
        match store.create(&other, None, None).await.unwrap() {
            CreateOutcome::CartOrdered(existing) => {
                assert_eq!(existing.id, order.id);
                assert_eq!(existing.history[0].actor, "ann");
            }
            outcome => panic!("{outcome:?}"),
        }
    }
    assert_eq!(stack.stored_orders().await.len(), 1);
}
