//! Outbound webhooks against the emulator: the subscription API (admins only, the
//! secret shown once, validation, private targets refused outside local mode), and
//! the deliverer driven with SQS events as Lambda hands them over, POSTing to real
//! receivers on this machine: signatures that verify, retries that deliver exactly
//! once, 410, redirects, timeouts, poison messages and the delivery log.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use orders::adapters::dynamo::order_item::order_from_item;
use orders::adapters::dynamo::{DynamoOrderStore, DynamoWebhookStore};
use orders::adapters::http::webhook_sender::HttpWebhookSender;
use orders::adapters::webhook_queue::SqsRetryDelay;
use orders::domain::webhook::TargetPolicy;
use orders::domain::webhook::signature::{self, Secret};
use orders::events::{Envelope, OrderEvent};
use orders::inbound::http::Endpoint;
use orders::ports::RetryDelay;
use orders::services::deliveries::Deliveries;
use orders_tests::{ADMIN, Reply, Stack, token};
use serde_json::{Value, json};
use tokio::net::TcpListener;

// ---------------------------------------------------------------------------------
// Harness: a stack with the webhook service, its API, and the deliverer.
// ---------------------------------------------------------------------------------

/// The webhook routes as template.yaml declares them.
const ROUTES: [(&str, &str, Endpoint); 5] = [
    ("POST", "/api/webhooks", Endpoint::CreateWebhook),
    ("GET", "/api/webhooks", Endpoint::ListWebhooks),
    ("GET", "/api/webhooks/{webhook_id}", Endpoint::GetWebhook),
    (
        "DELETE",
        "/api/webhooks/{webhook_id}",
        Endpoint::DeleteWebhook,
    ),
    (
        "GET",
        "/api/webhooks/{webhook_id}/deliveries",
        Endpoint::ListWebhookDeliveries,
    ),
];

struct Hooks {
    stack: Stack,
    store: Arc<DynamoWebhookStore>,
    /// Every postponed retry: (queue ARN, receipt handle, delay).
    delays: Arc<Recorded>,
}

#[derive(Default)]
struct Recorded(Mutex<Vec<(Option<String>, String, Duration)>>);

#[async_trait]
impl RetryDelay for Recorded {
    async fn postpone(
        &self,
        queue_arn: Option<&str>,
        receipt_handle: &str,
        delay: Duration,
    ) -> Result<(), String> {
        self.0.lock().unwrap().push((
            queue_arn.map(str::to_string),
            receipt_handle.to_string(),
            delay,
        ));
        Ok(())
    }
}

/// The deliverer as its Lambda runs it: an SQS batch in, partial failures out.
struct Deliverer(Deliveries);

impl Deliverer {
    async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        orders::inbound::sqs::deliver(&self.0, event).await
    }
}

impl Hooks {
    /// A fresh stack whose webhook API runs with `policy` (local mode, or as deployed).
    async fn new(policy: TargetPolicy) -> Hooks {
        let stack = if policy.allow_private {
            Stack::local_mode().await
        } else {
            Stack::new().await
        };
        let store = Arc::new(DynamoWebhookStore::new(
            stack.dynamodb.clone(),
            &stack.table,
        ));
        Hooks {
            stack,
            store,
            delays: Arc::default(),
        }
    }

    /// Local mode: receivers on this machine may subscribe.
    async fn local() -> Hooks {
        Hooks::new(TargetPolicy::LOCAL).await
    }

    /// The deliverer, sending with `policy` and `timeout`.
    fn deliverer(&self, policy: TargetPolicy, timeout: Duration) -> Deliverer {
        let sender = HttpWebhookSender::with_timeout(policy, timeout).unwrap();
        Deliverer(Deliveries::new(
            self.orders(),
            self.store.clone(),
            Arc::new(sender),
            self.delays.clone(),
        ))
    }

    /// The orders the deliverer checks each event against.
    fn orders(&self) -> Arc<DynamoOrderStore> {
        Arc::new(DynamoOrderStore::new(
            self.stack.dynamodb.clone(),
            &self.stack.table,
        ))
    }

    fn local_deliverer(&self) -> Deliverer {
        self.deliverer(TargetPolicy::LOCAL, Duration::from_secs(5))
    }

    /// A request to a webhook endpoint, shaped as API Gateway would shape it.
    async fn call(
        &self,
        method: &str,
        uri: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let path = uri.split('?').next().unwrap();
        let (endpoint, params) =
            route(method, path).unwrap_or_else(|| panic!("no route for {method} {path}"));
        let mut builder = http::Request::builder().method(method).uri(uri);
        if let Some(bearer) = bearer {
            builder = builder.header("authorization", format!("Bearer {bearer}"));
        }
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        let (parts, ()) = builder.body(()).unwrap().into_parts();
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let request = orders_dev::server::lambda_request(parts, bytes, params);
        let response = self.stack.app.handle(endpoint, request).await;
        Reply::from(response)
    }

    async fn admin(&self, method: &str, uri: &str, body: Option<&Value>) -> Reply {
        self.call(method, uri, Some(&admin()), body).await
    }

    /// Subscribes `url` to `events`; returns the created subscription (with its secret).
    async fn subscribe(&self, url: &str, events: &[&str]) -> Value {
        let reply = self
            .admin(
                "POST",
                "/api/webhooks",
                Some(&json!({ "url": url, "events": events })),
            )
            .await;
        assert_eq!(reply.status, 201, "{reply:?}");
        reply.body
    }

    async fn subscription(&self, id: &str) -> Value {
        let reply = self
            .admin("GET", &format!("/api/webhooks/{id}"), None)
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.body
    }

    /// The delivery log of a subscription, newest first.
    async fn deliveries(&self, id: &str) -> Vec<Value> {
        let reply = self
            .admin(
                "GET",
                &format!("/api/webhooks/{id}/deliveries?limit=100"),
                None,
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.body["deliveries"].as_array().unwrap().clone()
    }

    /// An event for a real order's creation (and its confirmation, with `confirm`).
    async fn order_event(&self, cart: &str, confirm: bool) -> Envelope {
        let id = self.stack.order_for("alice", cart).await;
        let created = order_from_item(&self.stack.stored_order(&id).await.unwrap()).unwrap();
        if !confirm {
            return envelope(OrderEvent::for_change(None, &created).unwrap());
        }
        self.stack.advance(&id, &["confirmed"]).await;
        let confirmed = order_from_item(&self.stack.stored_order(&id).await.unwrap()).unwrap();
        envelope(OrderEvent::for_change(Some(&created), &confirmed).unwrap())
    }
}

fn admin() -> String {
    token("admin", ADMIN)
}

fn route(method: &str, path: &str) -> Option<(Endpoint, HashMap<String, String>)> {
    let segments: Vec<&str> = path.split('/').collect();
    ROUTES.iter().find_map(|(m, pattern, endpoint)| {
        let pattern: Vec<&str> = pattern.split('/').collect();
        if *m != method || pattern.len() != segments.len() {
            return None;
        }
        let mut params = HashMap::new();
        for (p, s) in pattern.iter().zip(&segments) {
            match p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) => {
                    params.insert(name.to_string(), s.to_string());
                }
                None if p == s => {}
                None => return None,
            }
        }
        Some((*endpoint, params))
    })
}

/// The event as the bus's rule puts it on the webhook queue.
fn envelope(detail: OrderEvent) -> Envelope {
    Envelope {
        id: format!("evt-{}", detail.event_id),
        detail_type: detail.detail_type(),
        source: "orders".into(),
        time: detail.occurred_at.clone(),
        detail,
    }
}

/// An SQS message as Lambda hands it over, received for the `receive`th time.
fn message(id: &str, body: &str, receive: u32) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(id.into());
    message.receipt_handle = Some(format!("receipt-{id}-{receive}"));
    message.body = Some(body.into());
    message.attributes = HashMap::from([("ApproximateReceiveCount".into(), receive.to_string())]);
    message.event_source = Some("aws:sqs".into());
    message.event_source_arn = Some("arn:aws:sqs:us-east-1:123456789012:WebhookQueue".into());
    message
}

fn batch(messages: Vec<SqsMessage>) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages;
    event
}

fn event_message(id: &str, envelope: &Envelope, receive: u32) -> SqsMessage {
    message(id, &serde_json::to_string(envelope).unwrap(), receive)
}

fn failed_ids(response: &SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

// ---------------------------------------------------------------------------------
// A receiver on this machine: records what it gets, answers from a script.
// ---------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Answer {
    Status(u16),
    Redirect(String),
    Hang,
    /// 200, after a pause.
    Slow(Duration),
}

#[derive(Clone, Debug)]
struct Received {
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// Verifies the Standard Webhooks headers as a receiver would.
    fn verifies_with(&self, secret: &str) -> bool {
        let secret = Secret::parse(secret).unwrap();
        let timestamp: i64 = self.header("webhook-timestamp").parse().unwrap();
        signature::verify(
            &secret,
            self.header("webhook-id"),
            timestamp,
            &self.body,
            self.header("webhook-signature"),
        )
    }
}

#[derive(Clone)]
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    /// Answers with `script` in turn, repeating its last answer.
    async fn start(script: &[Answer]) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/orders", listener.local_addr().unwrap());
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let script = Arc::new(Mutex::new(script.iter().cloned().collect::<VecDeque<_>>()));
        let log = received.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (log, script) = (log.clone(), script.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request: http::Request<Incoming>| {
                        let (log, script) = (log.clone(), script.clone());
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body.collect().await?.to_bytes().to_vec();
                            log.lock().unwrap().push(Received {
                                headers: parts.headers,
                                body,
                            });
                            let answer = {
                                let mut script = script.lock().unwrap();
                                if script.len() > 1 {
                                    script.pop_front()
                                } else {
                                    script.front().cloned()
                                }
                            };
                            let mut response = http::Response::new(Full::new(Bytes::new()));
                            match answer.unwrap_or(Answer::Status(200)) {
                                Answer::Status(code) => {
                                    *response.status_mut() =
                                        http::StatusCode::from_u16(code).unwrap();
                                }
                                Answer::Redirect(to) => {
                                    *response.status_mut() = http::StatusCode::MOVED_PERMANENTLY;
                                    response
                                        .headers_mut()
                                        .insert("location", to.parse().unwrap());
                                }
                                Answer::Hang => tokio::time::sleep(Duration::from_secs(60)).await,
                                Answer::Slow(pause) => tokio::time::sleep(pause).await,
                            }
                            Ok::<_, hyper::Error>(response)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver { url, received }
    }

    async fn ok() -> Receiver {
        Receiver::start(&[Answer::Status(200)]).await
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

// ---------------------------------------------------------------------------------
// The subscription API
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn admins_subscribe_and_the_secret_is_shown_only_once() {
    let hooks = Hooks::new(TargetPolicy::STRICT).await;
    let reply = hooks
        .admin(
            "POST",
            "/api/webhooks",
            Some(&json!({
                "url": "https://hooks.example.com/orders",
                "events": ["order.confirmed", "order.shipped", "order.confirmed"],
                "description": "Warehouse ERP"
            })),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let created = &reply.body;
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("wh_"), "{id}");
    assert_eq!(
        reply.header("location"),
        Some(format!("/api/webhooks/{id}").as_str())
    );
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(created["url"], "https://hooks.example.com/orders");
    assert_eq!(
        created["events"],
        json!(["order.confirmed", "order.shipped"])
    );
    assert_eq!(created["description"], "Warehouse ERP");
    assert_eq!(created["enabled"], true);
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));
    // whsec_ + base64 of 32 random bytes.
    let secret = created["secret"].as_str().unwrap();
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    assert_eq!(raw.len(), 32);

    // Never again: not in the subscription, not in the list, not in the table's keys.
    let read = hooks.subscription(id).await;
    assert_eq!(read.get("secret"), None, "{read}");
    assert_eq!(read["id"], id);
    assert_eq!(read["events"], created["events"]);
    let second = hooks.subscribe("https://erp.example.org/in", &["*"]).await;
    let list = hooks.admin("GET", "/api/webhooks", None).await;
    assert_eq!(list.status, 200, "{list:?}");
    let listed = list.body["webhooks"].as_array().unwrap();
    let ids: Vec<&str> = listed.iter().map(|w| w["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [second["id"].as_str().unwrap(), id], "newest first");
    assert!(!list.text.contains("whsec_"), "{}", list.text);
    assert!(listed.iter().all(|w| w.get("secret").is_none()));
    assert_ne!(
        second["secret"], created["secret"],
        "a secret per subscription"
    );

    // Webhook items stay out of the order list.
    let orders = hooks
        .stack
        .send(orders_tests::Call::new("GET", "/api/orders").bearer(&admin()))
        .await;
    assert_eq!(orders.body["orders"], json!([]), "{orders:?}");

    // Delete: 204, then gone.
    let deleted = hooks
        .admin("DELETE", &format!("/api/webhooks/{id}"), None)
        .await;
    assert_eq!(deleted.status, 204, "{deleted:?}");
    assert_eq!(deleted.text, "");
    for (method, uri) in [
        ("GET", format!("/api/webhooks/{id}")),
        ("DELETE", format!("/api/webhooks/{id}")),
        ("GET", format!("/api/webhooks/{id}/deliveries")),
        ("GET", "/api/webhooks/wh_nope".to_string()),
        ("GET", "/api/webhooks/ORD12345".to_string()),
    ] {
        let reply = hooks.admin(method, &uri, None).await;
        assert_eq!(reply.status, 404, "{method} {uri}: {reply:?}");
        assert_eq!(reply.code(), "webhook_not_found");
    }
    let list = hooks.admin("GET", "/api/webhooks", None).await;
    assert_eq!(list.body["webhooks"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn only_admins_manage_webhooks() {
    let hooks = Hooks::new(TargetPolicy::STRICT).await;
    let existing = hooks
        .subscribe("https://hooks.example.com/orders", &["*"])
        .await;
    let id = existing["id"].as_str().unwrap();
    let body = json!({ "url": "https://evil.example.com", "events": ["*"] });
    let requests = [
        ("POST", "/api/webhooks".to_string(), Some(&body)),
        ("GET", "/api/webhooks".to_string(), None),
        ("GET", format!("/api/webhooks/{id}"), None),
        ("DELETE", format!("/api/webhooks/{id}"), None),
        ("GET", format!("/api/webhooks/{id}/deliveries"), None),
    ];
    for scope in ["", "orders:fulfill"] {
        let bearer = token("alice", scope);
        for (method, uri, body) in &requests {
            let reply = hooks.call(method, uri, Some(&bearer), *body).await;
            assert_eq!(reply.status, 403, "{scope:?} {method} {uri}: {reply:?}");
            assert_eq!(reply.code(), "forbidden");
            assert_eq!(
                reply.header("content-type"),
                Some("application/problem+json")
            );
        }
    }
    // A customer does not learn the body's rules either.
    let reply = hooks
        .call(
            "POST",
            "/api/webhooks",
            Some(&token("alice", "")),
            Some(&json!({"nonsense": 1})),
        )
        .await;
    assert_eq!(reply.status, 403, "{reply:?}");
    for (method, uri, body) in &requests {
        let reply = hooks.call(method, uri, None, *body).await;
        assert_eq!(reply.status, 401, "{method} {uri}: {reply:?}");
    }
    // Nothing changed.
    assert_eq!(hooks.subscription(id).await["enabled"], true);
    let list = hooks.admin("GET", "/api/webhooks", None).await;
    assert_eq!(list.body["webhooks"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn invalid_subscriptions_are_400_with_every_field_named() {
    let hooks = Hooks::new(TargetPolicy::STRICT).await;
    let fields = |reply: &Reply| -> Vec<String> {
        assert_eq!(reply.status, 400, "{reply:?}");
        assert_eq!(reply.code(), "validation_failed", "{reply:?}");
        reply.error_fields().into_iter().map(String::from).collect()
    };
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({}), vec!["url", "events"]),
        (
            json!({ "url": "https://hooks.example.com", "events": ["*"], "secret": "mine" }),
            vec!["secret"],
        ),
        (
            json!({ "url": "https://hooks.example.com", "events": ["order.paid", "order.created", 7] }),
            vec!["events[2]", "events[0]"],
        ),
        (
            json!({ "url": "https://hooks.example.com", "events": [] }),
            vec!["events"],
        ),
        (
            json!({ "url": "https://hooks.example.com", "events": "*" }),
            vec!["events"],
        ),
        (
            json!({ "url": "https://hooks.example.com", "events": ["*"], "description": "x".repeat(201) }),
            vec!["description"],
        ),
        (
            json!({ "url": "https://hooks.example.com", "events": ["*"], "description": 5 }),
            vec!["description"],
        ),
        (
            json!({ "url": "http://hooks.example.com", "events": ["*"] }),
            vec!["url"],
        ),
        (
            json!({ "url": "hooks.example.com", "events": ["*"] }),
            vec!["url"],
        ),
        (
            json!({ "url": "ftp://hooks.example.com", "events": ["*"] }),
            vec!["url"],
        ),
        (json!({ "url": 42, "events": ["*"] }), vec!["url"]),
        (
            json!({ "url": "https://user:pw@hooks.example.com", "events": ["*"] }),
            vec!["url"],
        ),
    ];
    for (body, expected) in cases {
        let reply = hooks.admin("POST", "/api/webhooks", Some(&body)).await;
        assert_eq!(fields(&reply), expected, "{body}");
    }
    // A description at the limit is fine.
    let reply = hooks
        .admin(
            "POST",
            "/api/webhooks",
            Some(&json!({ "url": "https://hooks.example.com", "events": ["*"], "description": "é".repeat(200) })),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");

    // Not JSON, or no body: the API's usual answers.
    let mut call = hooks.admin("POST", "/api/webhooks", None).await;
    assert_eq!(
        (call.status, call.code()),
        (400, "malformed_json"),
        "{call:?}"
    );
    call = hooks
        .call(
            "POST",
            "/api/webhooks",
            Some(&admin()),
            Some(&json!(["a list"])),
        )
        .await;
    assert_eq!(
        (call.status, call.code()),
        (400, "malformed_json"),
        "{call:?}"
    );
    let list = hooks.admin("GET", "/api/webhooks?limit=5", None).await;
    assert_eq!(list.status, 400, "{list:?}");
    // Only the valid one was stored.
    let list = hooks.admin("GET", "/api/webhooks", None).await;
    assert_eq!(list.body["webhooks"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn private_loopback_and_link_local_targets_are_refused_unless_local_mode() {
    let targets = [
        "https://127.0.0.1/hook",
        "https://127.9.9.9:8443/hook",
        "https://10.1.2.3/hook",
        "https://172.20.0.5/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://100.64.1.1/hook",
        "https://0.0.0.0/hook",
        "https://2130706433/hook",
        "https://[::1]/hook",
        "https://[fe80::1]/hook",
        "https://[fd00:ec2::254]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[::ffff:a9fe:a9fe]/hook",
        "https://localhost/hook",
        "https://api.localhost/hook",
        "https://metadata/computeMetadata/v1/",
    ];
    let strict = Hooks::new(TargetPolicy::STRICT).await;
    for url in targets {
        let reply = strict
            .admin(
                "POST",
                "/api/webhooks",
                Some(&json!({ "url": url, "events": ["*"] })),
            )
            .await;
        assert_eq!(reply.status, 400, "{url}: {reply:?}");
        assert_eq!(reply.body["errors"][0]["field"], "url", "{url}: {reply:?}");
        assert!(
            reply.body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("local mode"),
            "{url}: {reply:?}"
        );
    }
    let list = strict.admin("GET", "/api/webhooks", None).await;
    assert_eq!(list.body["webhooks"], json!([]));

    // Local mode (WEBHOOKS_ALLOW_PRIVATE_TARGETS=true) allows them, and http.
    let local = Hooks::local().await;
    for url in targets.iter().chain(&["http://127.0.0.1:8080/hook"]) {
        local.subscribe(url, &["*"]).await;
    }
}

// ---------------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------------

#[test]
fn signatures_match_the_standard_webhooks_test_vector() {
    // standard-webhooks/standard-webhooks, libraries/go/webhook_test.go (TestWebhookSign).
    let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    let payload = br#"{"test": 2432232314}"#;
    let expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    assert_eq!(signature::sign(&secret, id, 1614265330, payload), expected);
    assert!(signature::verify(
        &secret, id, 1614265330, payload, expected
    ));
    assert!(!signature::verify(
        &secret, id, 1614265331, payload, expected
    ));
}

// ---------------------------------------------------------------------------------
// Deliveries
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn receivers_get_signed_deliveries_of_the_events_they_asked_for() {
    let hooks = Hooks::local().await;
    let everything = Receiver::ok().await;
    let shipping = Receiver::ok().await;
    let confirmations = Receiver::ok().await;
    let all = hooks.subscribe(&everything.url, &["*"]).await;
    hooks.subscribe(&shipping.url, &["order.shipped"]).await;
    let confirmed_only = hooks
        .subscribe(&confirmations.url, &["order.confirmed"])
        .await;

    let created = hooks.order_event("cart-signed-1", false).await;
    let confirmed = hooks.order_event("cart-signed-2", true).await;
    let response = hooks
        .local_deliverer()
        .handle(batch(vec![
            event_message("m1", &created, 1),
            event_message("m2", &confirmed, 1),
        ]))
        .await;
    assert_eq!(failed_ids(&response), Vec::<String>::new());
    assert!(hooks.delays.0.lock().unwrap().is_empty());

    assert_eq!(
        shipping.received().len(),
        0,
        "not subscribed to these types"
    );
    let got = everything.received();
    assert_eq!(got.len(), 2);
    let mut types: Vec<String> = got
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_string())
        .collect();
    types.sort();
    assert_eq!(types, ["order.confirmed", "order.created"]);

    let [delivery] = confirmations.received().try_into().unwrap();
    assert!(delivery.verifies_with(confirmed_only["secret"].as_str().unwrap()));
    assert!(
        !delivery.verifies_with(all["secret"].as_str().unwrap()),
        "secrets are per subscription"
    );
    assert_eq!(delivery.header("webhook-id"), confirmed.detail.event_id);
    assert_eq!(delivery.header("content-type"), "application/json");
    let sent_at: u64 = delivery.header("webhook-timestamp").parse().unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(sent_at) < 60, "{sent_at} vs {now}");
    // The Standard Webhooks payload: type, timestamp, and the event as data.
    let body = delivery.json();
    assert_eq!(body["type"], "order.confirmed");
    assert_eq!(body["timestamp"], confirmed.detail.occurred_at.as_str());
    assert_eq!(
        body["data"],
        serde_json::to_value(&confirmed.detail).unwrap()
    );
    assert_eq!(body["data"]["status"], "confirmed");
    assert_eq!(body["data"]["previous_status"], "pending");
    for received in got {
        assert!(received.verifies_with(all["secret"].as_str().unwrap()));
    }

    // Each delivery is in the subscription's log.
    let log = hooks
        .deliveries(confirmed_only["id"].as_str().unwrap())
        .await;
    assert_eq!(log.len(), 1, "{log:?}");
    let entry = &log[0];
    assert_eq!(entry["event_id"], confirmed.detail.event_id.as_str());
    assert_eq!(entry["type"], "order.confirmed");
    assert_eq!(entry["attempt"], 1);
    assert_eq!(entry["outcome"], "delivered");
    assert_eq!(entry["status_code"], 200);
    assert_eq!(entry["error"], Value::Null);
    assert!(entry["duration_ms"].as_u64().is_some());
    assert!(entry["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(hooks.deliveries(all["id"].as_str().unwrap()).await.len(), 2);
}

#[tokio::test]
async fn a_receiver_that_fails_then_recovers_gets_every_delivery_exactly_once() {
    let hooks = Hooks::local().await;
    let steady = Receiver::ok().await;
    let flaky = Receiver::start(&[
        Answer::Status(500),
        Answer::Status(503),
        Answer::Status(204),
    ])
    .await;
    let steady_sub = hooks.subscribe(&steady.url, &["*"]).await;
    let flaky_sub = hooks.subscribe(&flaky.url, &["*"]).await;
    let event = hooks.order_event("cart-flaky", false).await;
    let deliverer = hooks.local_deliverer();

    // 1st receive: the flaky receiver fails, so the message fails and is delayed.
    let response = deliverer
        .handle(batch(vec![event_message("m1", &event, 1)]))
        .await;
    assert_eq!(failed_ids(&response), ["m1"]);
    // 2nd receive (the queue redelivers the same message): fails again, longer delay.
    let response = deliverer
        .handle(batch(vec![event_message("m1", &event, 2)]))
        .await;
    assert_eq!(failed_ids(&response), ["m1"]);
    // 3rd receive: recovered.
    let response = deliverer
        .handle(batch(vec![event_message("m1", &event, 3)]))
        .await;
    assert_eq!(failed_ids(&response), Vec::<String>::new());
    // A 4th, duplicate receive sends nothing to anyone.
    let response = deliverer
        .handle(batch(vec![event_message("m1", &event, 4)]))
        .await;
    assert_eq!(failed_ids(&response), Vec::<String>::new());

    assert_eq!(
        steady.received().len(),
        1,
        "the steady receiver got it once, not per retry"
    );
    let attempts = flaky.received();
    assert_eq!(attempts.len(), 3);
    for attempt in &attempts {
        assert_eq!(
            attempt.header("webhook-id"),
            event.detail.event_id,
            "one id across retries"
        );
        assert_eq!(
            attempt.body, attempts[0].body,
            "the same payload every time"
        );
        assert!(attempt.verifies_with(flaky_sub["secret"].as_str().unwrap()));
    }

    // Growing delays, set on the failed message's receipt.
    let delays = hooks.delays.0.lock().unwrap().clone();
    assert_eq!(delays.len(), 2, "{delays:?}");
    assert_eq!(
        delays[0].0.as_deref(),
        Some("arn:aws:sqs:us-east-1:123456789012:WebhookQueue")
    );
    assert_eq!(delays[0].1, "receipt-m1-1");
    assert_eq!(delays[1].1, "receipt-m1-2");
    assert!(
        delays[0].2 >= Duration::from_secs(5) && delays[0].2 < Duration::from_secs(6),
        "{delays:?}"
    );
    assert!(delays[1].2 >= Duration::from_secs(300), "{delays:?}");

    // Every attempt is in the log, newest first.
    let log = hooks.deliveries(flaky_sub["id"].as_str().unwrap()).await;
    let summary: Vec<(u64, &str, u64)> = log
        .iter()
        .map(|d| {
            (
                d["attempt"].as_u64().unwrap(),
                d["outcome"].as_str().unwrap(),
                d["status_code"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (3, "delivered", 204),
            (2, "failed", 503),
            (1, "failed", 500)
        ]
    );
    assert_eq!(log[2]["error"], "the receiver answered 500");
    assert_eq!(
        hooks
            .deliveries(steady_sub["id"].as_str().unwrap())
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn an_event_twice_in_one_batch_is_sent_once() {
    let hooks = Hooks::local().await;
    let steady = Receiver::ok().await;
    hooks.subscribe(&steady.url, &["*"]).await;
    let event = hooks.order_event("cart-twice", false).await;
    let response = hooks
        .local_deliverer()
        .handle(batch(vec![
            event_message("m1", &event, 1),
            event_message("m2", &event, 1),
        ]))
        .await;
    assert_eq!(failed_ids(&response), Vec::<String>::new());
    assert_eq!(steady.received().len(), 1, "one delivery for two copies");

    // A copy shares its first copy's outcome: both come back to be retried.
    let hooks = Hooks::local().await;
    let failing = Receiver::start(&[Answer::Status(500)]).await;
    hooks.subscribe(&failing.url, &["*"]).await;
    let event = hooks.order_event("cart-twice-failing", false).await;
    let response = hooks
        .local_deliverer()
        .handle(batch(vec![
            event_message("m1", &event, 1),
            event_message("m2", &event, 1),
        ]))
        .await;
    let mut failed = failed_ids(&response);
    failed.sort();
    assert_eq!(failed, ["m1", "m2"]);
    assert_eq!(failing.received().len(), 1);
}

#[tokio::test]
async fn gone_disables_the_subscription() {
    let hooks = Hooks::local().await;
    let gone = Receiver::start(&[Answer::Status(410)]).await;
    let sub = hooks.subscribe(&gone.url, &["*"]).await;
    let id = sub["id"].as_str().unwrap();
    let deliverer = hooks.local_deliverer();

    let first = hooks.order_event("cart-gone-1", false).await;
    let response = deliverer
        .handle(batch(vec![event_message("m1", &first, 1)]))
        .await;
    assert_eq!(
        failed_ids(&response),
        Vec::<String>::new(),
        "410 is final, not retried"
    );

    let read = hooks.subscription(id).await;
    assert_eq!(read["enabled"], false, "{read}");
    assert_eq!(read["disabled_reason"], "the receiver answered 410 Gone");
    assert!(read["disabled_at"].as_str().is_some());

    let second = hooks.order_event("cart-gone-2", false).await;
    let response = deliverer
        .handle(batch(vec![
            event_message("m2", &second, 1),
            event_message("m1", &first, 2),
        ]))
        .await;
    assert_eq!(failed_ids(&response), Vec::<String>::new());
    assert_eq!(gone.received().len(), 1, "nothing more after 410");
    let log = hooks.deliveries(id).await;
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0]["outcome"].as_str(), log[0]["status_code"].as_u64()),
        (Some("gone"), Some(410))
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let hooks = Hooks::local().await;
    let elsewhere = Receiver::ok().await;
    let redirecting = Receiver::start(&[Answer::Redirect(elsewhere.url.clone())]).await;
    let sub = hooks.subscribe(&redirecting.url, &["*"]).await;
    let event = hooks.order_event("cart-redirect", false).await;

    let response = hooks
        .local_deliverer()
        .handle(batch(vec![event_message("m1", &event, 1)]))
        .await;
    assert_eq!(failed_ids(&response), ["m1"]);
    assert_eq!(redirecting.received().len(), 1);
    assert_eq!(
        elsewhere.received().len(),
        0,
        "the redirect was not followed"
    );
    let log = hooks.deliveries(sub["id"].as_str().unwrap()).await;
    assert_eq!(log[0]["outcome"], "failed");
    assert_eq!(log[0]["status_code"], 301);
    assert!(
        log[0]["error"]
            .as_str()
            .unwrap()
            .contains("redirects are not followed"),
        "{log:?}"
    );
}

#[tokio::test]
async fn a_hanging_receiver_times_out_and_the_batch_still_ends() {
    let hooks = Hooks::local().await;
    let hanging = Receiver::start(&[Answer::Hang]).await;
    let steady = Receiver::ok().await;
    let hanging_sub = hooks.subscribe(&hanging.url, &["*"]).await;
    hooks.subscribe(&steady.url, &["*"]).await;
    let event = hooks.order_event("cart-hang", false).await;

    let started = Instant::now();
    let response = hooks
        .deliverer(TargetPolicy::LOCAL, Duration::from_secs(1))
        .handle(batch(vec![event_message("m1", &event, 1)]))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(failed_ids(&response), ["m1"]);
    assert_eq!(hanging.received().len(), 1);
    assert_eq!(
        steady.received().len(),
        1,
        "one slow receiver does not hold up the others"
    );
    let log = hooks.deliveries(hanging_sub["id"].as_str().unwrap()).await;
    assert_eq!(log[0]["outcome"], "failed");
    assert_eq!(log[0]["status_code"], Value::Null);
    assert!(
        log[0]["error"].as_str().unwrap().contains("timed out"),
        "{log:?}"
    );
    assert!(log[0]["duration_ms"].as_u64().unwrap() >= 900, "{log:?}");
}

#[tokio::test]
async fn receivers_that_never_answer_do_not_outlive_the_batch_deadline() {
    let hooks = Hooks::local().await;
    let mut hanging = Vec::new();
    for _ in 0..10 {
        let receiver = Receiver::start(&[Answer::Hang]).await;
        hooks.subscribe(&receiver.url, &["order.created"]).await;
        hanging.push(receiver);
    }
    let healthy = Receiver::ok().await;
    hooks.subscribe(&healthy.url, &["*"]).await;
    // m1 goes to every receiver; m2 (a confirmation) to the healthy one only.
    let created = hooks.order_event("cart-deadline-1", false).await;
    let confirmed = hooks.order_event("cart-deadline-2", true).await;
    // Sends that would each wait far longer than the batch may.
    let sender = HttpWebhookSender::with_timeout(TargetPolicy::LOCAL, Duration::from_secs(60));
    let deadline = Duration::from_millis(1500);
    let deliverer = Deliverer(
        Deliveries::new(
            hooks.orders(),
            hooks.store.clone(),
            Arc::new(sender.unwrap()),
            hooks.delays.clone(),
        )
        .with_deadline(deadline),
    );

    let started = Instant::now();
    let response = deliverer
        .handle(batch(vec![
            event_message("m1", &created, 1),
            event_message("m2", &confirmed, 1),
        ]))
        .await;
    let took = started.elapsed();

    assert!(took >= deadline, "{took:?}");
    assert!(took < deadline + Duration::from_secs(2), "{took:?}");
    assert_eq!(
        failed_ids(&response),
        ["m1"],
        "only the unfinished message fails"
    );
    let ids: Vec<String> = healthy
        .received()
        .iter()
        .map(|r| r.header("webhook-id").to_string())
        .collect();
    assert_eq!(
        ids.len(),
        2,
        "the healthy receiver got both deliveries: {ids:?}"
    );
    assert!(hanging.iter().all(|r| r.received().len() == 1));
    let delays = hooks.delays.0.lock().unwrap().clone();
    assert_eq!(delays.len(), 1, "{delays:?}");
    assert_eq!(delays[0].1, "receipt-m1-1");

    // The retry sends nothing twice: the healthy receiver has it, and the abandoned
    // sends keep their claims until the lease runs out.
    let started = Instant::now();
    let response = deliverer
        .handle(batch(vec![event_message("m1", &created, 2)]))
        .await;
    assert!(started.elapsed() < deadline, "{:?}", started.elapsed());
    assert_eq!(failed_ids(&response), ["m1"]);
    assert_eq!(healthy.received().len(), 2);
    assert!(hanging.iter().all(|r| r.received().len() == 1));
}

#[tokio::test]
async fn two_invocations_with_the_same_message_send_it_once() {
    let hooks = Hooks::local().await;
    let slow = Receiver::start(&[Answer::Slow(Duration::from_millis(500))]).await;
    let sub = hooks.subscribe(&slow.url, &["*"]).await;
    let event = hooks.order_event("cart-concurrent", false).await;
    let (a, b) = (hooks.local_deliverer(), hooks.local_deliverer());

    // SQS hands the same message to two invocations (at-least-once delivery).
    let (first, second) = tokio::join!(
        a.handle(batch(vec![event_message("m1", &event, 1)])),
        b.handle(batch(vec![event_message("m1", &event, 2)])),
    );

    assert_eq!(slow.received().len(), 1, "the receiver got it once");
    let mut failed = failed_ids(&first);
    failed.extend(failed_ids(&second));
    assert!(failed.len() <= 1, "{failed:?}");
    // The copy that found the pair claimed comes back and finds it delivered.
    let response = a.handle(batch(vec![event_message("m1", &event, 3)])).await;
    assert_eq!(failed_ids(&response), Vec::<String>::new());
    assert_eq!(slow.received().len(), 1);
    let log = hooks.deliveries(sub["id"].as_str().unwrap()).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["outcome"], "delivered");
}

#[tokio::test]
async fn a_claim_is_exclusive_until_its_lease_runs_out() {
    use orders::ports::{Claim, WebhookStore};
    use time::OffsetDateTime;

    let hooks = Hooks::local().await;
    let receiver = Receiver::ok().await;
    let sub = hooks.subscribe(&receiver.url, &["*"]).await;
    let id = orders::domain::webhook::WebhookId::parse(sub["id"].as_str().unwrap()).unwrap();
    let store = &hooks.store;
    let now = OffsetDateTime::now_utc();
    let lease = time::Duration::seconds(30);

    let Claim::Claimed(first) = store.claim(&id, "e1", now, now + lease).await.unwrap() else {
        panic!("a free pair is claimed");
    };
    assert_eq!(
        store.claim(&id, "e1", now, now + lease).await.unwrap(),
        Claim::Held
    );
    // The claimer crashed: once its lease has run out, another attempt claims it.
    let later = now + lease + time::Duration::seconds(1);
    let Claim::Claimed(second) = store.claim(&id, "e1", later, later + lease).await.unwrap() else {
        panic!("an expired claim is claimed again");
    };
    // The crashed claimer's late release does not free the new claim.
    store.release(&id, "e1", &first).await.unwrap();
    assert_eq!(
        store.claim(&id, "e1", later, later + lease).await.unwrap(),
        Claim::Held
    );
    // Its own release does; a delivered marker is final.
    store.release(&id, "e1", &second).await.unwrap();
    let Claim::Claimed(_) = store.claim(&id, "e1", later, later + lease).await.unwrap() else {
        panic!("a released pair is claimed again");
    };
    store.mark_delivered(&id, "e1", later).await.unwrap();
    let much_later = later + time::Duration::days(1);
    assert_eq!(
        store
            .claim(&id, "e1", much_later, much_later + lease)
            .await
            .unwrap(),
        Claim::Delivered
    );
}

#[tokio::test]
async fn events_the_stored_order_did_not_go_through_are_not_sent() {
    let hooks = Hooks::local().await;
    let receiver = Receiver::ok().await;
    hooks.subscribe(&receiver.url, &["*"]).await;
    let real = hooks.order_event("cart-forged", true).await; // order.confirmed, version 2
    let forge = |change: &dyn Fn(&mut Value)| {
        let mut body = serde_json::to_value(&real).unwrap();
        change(&mut body);
        body.to_string()
    };
    let shipped = forge(&|b| {
        b["detail-type"] = json!("order.shipped");
        b["detail"]["previous_status"] = json!("confirmed");
        b["detail"]["status"] = json!("shipped");
        b["detail"]["sequence"] = json!(3);
        b["detail"]["event_id"] = json!(format!("{}:3", real.detail.order_id));
    });
    let elsewhere = forge(&|b| {
        b["detail"]["order"]["shipping_address"]["address"] = json!("1 Attacker Way");
        b["detail"]["event_id"] = json!("forged-address");
    });
    let nobody = forge(&|b| {
        b["detail"]["order_id"] = json!(orders::domain::OrderId::for_cart("no-such-cart").as_str());
        b["detail"]["event_id"] = json!("forged-order");
    });

    let response = hooks
        .local_deliverer()
        .handle(batch(vec![
            message("shipped", &shipped, 1),
            message("elsewhere", &elsewhere, 1),
            message("nobody", &nobody, 1),
            event_message("real", &real, 1),
        ]))
        .await;

    assert_eq!(failed_ids(&response), ["shipped", "elsewhere", "nobody"]);
    let [delivery] = receiver.received().try_into().unwrap();
    assert_eq!(delivery.header("webhook-id"), real.detail.event_id);
}

#[tokio::test]
async fn an_unreachable_receiver_is_a_recorded_failure() {
    let hooks = Hooks::local().await;
    // A port that was just free: nothing listens there.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    // The path and query carry the receiver's token, as some receivers want.
    let url = format!(
        "http://{}/hook/tok_path_secret?token=tok_query_secret",
        closed.local_addr().unwrap()
    );
    drop(closed);
    let sub = hooks.subscribe(&url, &["*"]).await;
    let event = hooks.order_event("cart-unreachable", false).await;
    let response = hooks
        .local_deliverer()
        .handle(batch(vec![event_message("m1", &event, 1)]))
        .await;
    assert_eq!(failed_ids(&response), ["m1"]);
    let log = hooks.deliveries(sub["id"].as_str().unwrap()).await;
    assert_eq!(log[0]["outcome"], "failed");
    let error = log[0]["error"].as_str().unwrap();
    assert!(!error.is_empty());
    assert!(
        !error.contains("tok_path_secret") && !error.contains("tok_query_secret"),
        "{error}"
    );
}

#[tokio::test]
async fn a_poison_message_fails_alone() {
    let hooks = Hooks::local().await;
    let receiver = Receiver::ok().await;
    hooks.subscribe(&receiver.url, &["*"]).await;
    let event = hooks.order_event("cart-poison", false).await;
    let response = hooks
        .local_deliverer()
        .handle(batch(vec![
            message("poison-1", "this is not JSON", 1),
            event_message("good", &event, 1),
            message(
                "poison-2",
                r#"{"detail-type": "order.created", "detail": {"event_id": 1}}"#,
                3,
            ),
        ]))
        .await;
    assert_eq!(failed_ids(&response), ["poison-1", "poison-2"]);
    assert_eq!(
        receiver.received().len(),
        1,
        "the good message was delivered"
    );
    // Poison is retried later too, then dead-lettered by the queue.
    let delays = hooks.delays.0.lock().unwrap().clone();
    let receipts: Vec<&str> = delays.iter().map(|d| d.1.as_str()).collect();
    assert_eq!(receipts, ["receipt-poison-1-1", "receipt-poison-2-3"]);
}

#[tokio::test]
async fn deleted_subscriptions_get_nothing_more() {
    let hooks = Hooks::local().await;
    let receiver = Receiver::ok().await;
    let sub = hooks.subscribe(&receiver.url, &["*"]).await;
    let deleted = hooks
        .admin(
            "DELETE",
            &format!("/api/webhooks/{}", sub["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    let event = hooks.order_event("cart-deleted", false).await;
    let response = hooks
        .local_deliverer()
        .handle(batch(vec![event_message("m1", &event, 1)]))
        .await;
    assert_eq!(failed_ids(&response), Vec::<String>::new());
    assert_eq!(receiver.received().len(), 0);
}

#[tokio::test]
async fn private_addresses_are_refused_at_delivery_too() {
    // Subscribed in local mode, delivered by a deliverer in strict mode: the address
    // check happens again on the address about to be called, a name's included.
    let hooks = Hooks::local().await;
    let receiver = Receiver::ok().await;
    let by_address = hooks.subscribe(&receiver.url, &["*"]).await;
    let by_name = hooks
        .subscribe(&receiver.url.replace("127.0.0.1", "localhost"), &["*"])
        .await;
    let event = hooks.order_event("cart-private", false).await;
    let response = hooks
        .deliverer(TargetPolicy::STRICT, Duration::from_secs(5))
        .handle(batch(vec![event_message("m1", &event, 1)]))
        .await;
    assert_eq!(failed_ids(&response), ["m1"]);
    assert_eq!(receiver.received().len(), 0);
    for sub in [by_address, by_name] {
        let log = hooks.deliveries(sub["id"].as_str().unwrap()).await;
        let error = log[0]["error"].as_str().unwrap();
        assert!(
            error.contains("refused target") && error.contains("loopback"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn events_from_before_a_subscription_are_not_sent_to_it() {
    let hooks = Hooks::local().await;
    let event = hooks.order_event("cart-before", false).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let receiver = Receiver::ok().await;
    hooks.subscribe(&receiver.url, &["*"]).await;
    let response = hooks
        .local_deliverer()
        .handle(batch(vec![event_message("m1", &event, 2)]))
        .await;
    assert_eq!(failed_ids(&response), Vec::<String>::new());
    assert_eq!(receiver.received().len(), 0);
}

#[tokio::test]
async fn the_delivery_log_pages_newest_first() {
    let hooks = Hooks::local().await;
    let receiver = Receiver::start(&[Answer::Status(500)]).await;
    let sub = hooks.subscribe(&receiver.url, &["*"]).await;
    let id = sub["id"].as_str().unwrap();
    let event = hooks.order_event("cart-log", false).await;
    let deliverer = hooks.local_deliverer();
    for receive in 1..=5 {
        deliverer
            .handle(batch(vec![event_message("m1", &event, receive)]))
            .await;
    }
    let mut attempts = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let uri = match &cursor {
            None => format!("/api/webhooks/{id}/deliveries?limit=2"),
            Some(c) => format!("/api/webhooks/{id}/deliveries?limit=2&cursor={c}"),
        };
        let page = hooks.admin("GET", &uri, None).await;
        assert_eq!(page.status, 200, "{page:?}");
        assert_eq!(page.body["webhook_id"], id);
        let entries = page.body["deliveries"].as_array().unwrap();
        assert!(entries.len() <= 2);
        attempts.extend(entries.iter().map(|d| d["attempt"].as_u64().unwrap()));
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(attempts, [5, 4, 3, 2, 1]);

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=abc", "limit"),
        ("page=2", "page"),
    ] {
        let reply = hooks
            .admin(
                "GET",
                &format!("/api/webhooks/{id}/deliveries?{query}"),
                None,
            )
            .await;
        assert_eq!(reply.status, 400, "{query}: {reply:?}");
        assert_eq!(
            reply.body["errors"][0]["field"], field,
            "{query}: {reply:?}"
        );
    }
    for cursor in ["%%%", "V0VCSE9PSw"] {
        let reply = hooks
            .admin(
                "GET",
                &format!("/api/webhooks/{id}/deliveries?cursor={cursor}"),
                None,
            )
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (400, "invalid_cursor"),
            "{cursor}: {reply:?}"
        );
    }

    // The first page also tells a webhook without attempts from one that is gone,
    // attempts or not (one Query: the subscription item sorts just above them).
    let quiet = hooks.subscribe(&receiver.url, &["*"]).await;
    let quiet_id = quiet["id"].as_str().unwrap();
    let reply = hooks
        .admin("GET", &format!("/api/webhooks/{quiet_id}/deliveries"), None)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["deliveries"], json!([]));
    assert_eq!(reply.body["next_cursor"], Value::Null);
    let deleted = hooks
        .admin("DELETE", &format!("/api/webhooks/{id}"), None)
        .await;
    assert_eq!(deleted.status, 204, "{deleted:?}");
    let reply = hooks
        .admin("GET", &format!("/api/webhooks/{id}/deliveries"), None)
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (404, "webhook_not_found"),
        "{reply:?}"
    );
}

#[tokio::test]
async fn retries_are_delayed_on_the_real_queue() {
    // The SQS adapter against the emulator: the queue URL is found from the
    // message's ARN, and the message stays hidden for the delay.
    let sdk = orders::adapters::aws::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let name = format!("webhooks-{}", std::process::id());
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    sqs.send_message()
        .queue_url(&url)
        .message_body("{}")
        .send()
        .await
        .unwrap();
    let receive = || async {
        sqs.receive_message()
            .queue_url(&url)
            .visibility_timeout(1)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default()
    };
    let received = receive().await;
    let receipt = received[0].receipt_handle.clone().unwrap();

    SqsRetryDelay::new(sqs.clone(), None)
        .postpone(Some(&arn), &receipt, Duration::from_secs(60))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        receive().await.is_empty(),
        "still hidden past its 1 s visibility timeout"
    );

    let unknown = SqsRetryDelay::new(sqs.clone(), None)
        .postpone(Some("not-an-arn"), &receipt, Duration::from_secs(5))
        .await;
    assert!(unknown.is_err());
    sqs.delete_queue().queue_url(&url).send().await.unwrap();
}

#[tokio::test]
async fn the_sample_events_are_what_the_functions_receive() {
    let events = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    for (name, method, endpoint) in [
        ("create-webhook", "POST", Endpoint::CreateWebhook),
        ("list-webhooks", "GET", Endpoint::ListWebhooks),
        ("get-webhook", "GET", Endpoint::GetWebhook),
        ("delete-webhook", "DELETE", Endpoint::DeleteWebhook),
        (
            "list-webhook-deliveries",
            "GET",
            Endpoint::ListWebhookDeliveries,
        ),
    ] {
        let text = std::fs::read_to_string(events.join(format!("{name}.json"))).unwrap();
        let request = lambda_http::request::from_str(&text).unwrap();
        assert_eq!(request.method().as_str(), method, "{name}");
        assert_eq!(
            route(method, request.uri().path()).map(|r| r.0),
            Some(endpoint),
            "{name}"
        );
        assert_eq!(endpoint.binary_name(), name);
    }
    let text = std::fs::read_to_string(events.join("deliver-webhooks.json")).unwrap();
    let sqs: SqsEvent = serde_json::from_str(&text).unwrap();
    let envelope: Envelope = serde_json::from_str(sqs.records[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(envelope.detail_type, "order.shipped");
    assert_eq!(envelope.detail.detail_type(), "order.shipped");
    // Delivered to a receiver as it is, money exact.
    let hooks = Hooks::local().await;
    let receiver = Receiver::ok().await;
    let sub = hooks.subscribe(&receiver.url, &["order.shipped"]).await;
    // The deliverer sends only what the stored order went through: the sample's
    // order (the seed's cart), confirmed, processing, then shipped (version 4).
    let stack = &hooks.stack;
    stack.put_demo_cart().await;
    let reply = stack
        .send(
            orders_tests::Call::new("POST", "/api/orders")
                .bearer(&token("user789", ""))
                .json(&orders_tests::checkout("abc123")),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let id = reply.body["order_id"].as_str().unwrap().to_string();
    assert_eq!(id, envelope.detail.order_id);
    stack.advance(&id, &["confirmed"]).await;
    let update = orders::domain::lifecycle::ShippingUpdate {
        to: orders::domain::ShippingStatus::Processing,
        actor: "fulfillment".into(),
        reason: None,
        at: time::OffsetDateTime::now_utc(),
    };
    orders::ports::OrderStore::update_shipping(
        hooks.orders().as_ref(),
        &orders::domain::OrderId::parse(&id).unwrap(),
        &update,
    )
    .await
    .unwrap();
    stack.advance(&id, &["shipped"]).await;
    // The subscription is newer than the sample's event: date the event with it.
    let mut sample = sqs.records[0].clone();
    let occurred = r#""occurred_at":"2026-11-26T09:12:40.120Z""#;
    let body = sample.body.clone().unwrap();
    assert!(body.contains(occurred));
    let created_at = sub["created_at"].as_str().unwrap();
    sample.body = Some(body.replace(occurred, &format!(r#""occurred_at":"{created_at}""#)));
    let response = hooks.local_deliverer().handle(batch(vec![sample])).await;
    assert_eq!(failed_ids(&response), Vec::<String>::new());
    let [delivery] = receiver.received().try_into().unwrap();
    let text = String::from_utf8(delivery.body).unwrap();
    assert!(
        text.starts_with(r#"{"type":"order.shipped","timestamp":"#),
        "{text}"
    );
    assert!(text.contains(r#""total":75.00,"#), "{text}");
}

// ---------------------------------------------------------------------------------
// Late, not lost: a claim whose answer came too late, and a claim held elsewhere
// (issue 25: events that never reached a healthy receiver under load).
// ---------------------------------------------------------------------------------

/// A proxy in front of the emulator's DynamoDB that forwards every request at once but
/// holds back the answer to the first webhook claim (an `UpdateItem` setting a lease)
/// for `hold`: longer than the SDK's attempt timeout, the emulator under load does
/// the same. The SDK then resends the claim, which the emulator has already applied.
async fn slow_first_claim(hold: Duration) -> (String, Arc<Mutex<usize>>) {
    let upstream = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (the emulator)");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let claims = Arc::new(Mutex::new(0usize));
    let seen = claims.clone();
    let client = reqwest::Client::new();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (seen, client, upstream) = (seen.clone(), client.clone(), upstream.clone());
            tokio::spawn(async move {
                let service = service_fn(move |request: http::Request<Incoming>| {
                    let (seen, client, upstream) = (seen.clone(), client.clone(), upstream.clone());
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body.collect().await?.to_bytes();
                        let target = parts
                            .headers
                            .get("x-amz-target")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("");
                        let is_claim = target.ends_with(".UpdateItem")
                            && String::from_utf8_lossy(&body).contains("lease_until");
                        let mut forward = client.request(
                            parts.method.clone(),
                            format!("{upstream}{}", parts.uri.path()),
                        );
                        for (name, value) in &parts.headers {
                            if name != "host" {
                                forward = forward.header(name, value);
                            }
                        }
                        let answer = forward.body(body.to_vec()).send().await.unwrap();
                        let status = answer.status();
                        let headers = answer.headers().clone();
                        let bytes = answer.bytes().await.unwrap();
                        if is_claim {
                            let first = {
                                let mut count = seen.lock().unwrap();
                                *count += 1;
                                *count == 1
                            };
                            if first {
                                tokio::time::sleep(hold).await;
                            }
                        }
                        let mut response = http::Response::new(Full::new(bytes));
                        *response.status_mut() = status;
                        for (name, value) in &headers {
                            if name != "content-length" && name != "transfer-encoding" {
                                response.headers_mut().insert(name, value.clone());
                            }
                        }
                        Ok::<_, hyper::Error>(response)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, claims)
}

#[tokio::test]
async fn a_claim_resent_by_the_sdk_is_still_ours_and_the_event_goes_out_at_once() {
    let hooks = Hooks::local().await;
    let receiver = Receiver::ok().await;
    let sub = hooks.subscribe(&receiver.url, &["*"]).await;
    let event = hooks.order_event("cart-resent-claim", false).await;
    // The deliverer's webhook store reaches DynamoDB through the slow proxy; its first
    // claim's answer comes after the SDK's 2 s attempt timeout.
    let (proxy, claims) = slow_first_claim(Duration::from_secs(3)).await;
    let mut sdk = orders::adapters::aws::sdk_config().await.into_builder();
    sdk.set_endpoint_url(Some(proxy));
    sdk.insert_origin("endpoint_url", aws_types::origin::Origin::shared_config());
    let slow = aws_sdk_dynamodb::Client::new(&sdk.build());
    let sender = HttpWebhookSender::with_timeout(TargetPolicy::LOCAL, Duration::from_secs(5));
    let deliverer = Deliverer(Deliveries::new(
        hooks.orders(),
        Arc::new(DynamoWebhookStore::new(slow, &hooks.stack.table)),
        Arc::new(sender.unwrap()),
        hooks.delays.clone(),
    ));

    let response = deliverer
        .handle(batch(vec![event_message("m1", &event, 1)]))
        .await;

    assert!(
        *claims.lock().unwrap() >= 2,
        "the SDK resent the claim: {}",
        claims.lock().unwrap()
    );
    // Without the claim's own token in its condition, the resend found the claim
    // "held" (by itself), nothing was sent, and the message came back on the retry
    // schedule: 5 s, then 5 minutes, then 30…
    assert_eq!(failed_ids(&response), Vec::<String>::new());
    assert_eq!(receiver.received().len(), 1);
    let log = hooks.deliveries(sub["id"].as_str().unwrap()).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["outcome"], "delivered");
}

#[tokio::test]
async fn a_message_whose_pair_is_held_elsewhere_comes_back_when_the_lease_ends_not_on_the_schedule()
{
    use orders::ports::WebhookStore;

    let hooks = Hooks::local().await;
    let receiver = Receiver::ok().await;
    let sub = hooks.subscribe(&receiver.url, &["*"]).await;
    let event = hooks.order_event("cart-held", false).await;
    let deliverer = hooks.local_deliverer();
    let lease = deliverer.0.claim_lease();
    // Another attempt holds the pair (a twin sending now, or one abandoned at its
    // batch deadline whose claim runs until its lease ends).
    let id = orders::domain::webhook::WebhookId::parse(sub["id"].as_str().unwrap()).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let orders::ports::Claim::Claimed(_) = hooks
        .store
        .claim(
            &id,
            &event.detail.event_id,
            now,
            now + time::Duration::try_from(lease).unwrap(),
        )
        .await
        .unwrap()
    else {
        panic!("a free pair is claimed");
    };

    // Its 2nd and 3rd receives (the schedule would say 5 and 30 minutes).
    for receive in [2, 3] {
        let response = deliverer
            .handle(batch(vec![event_message("m1", &event, receive)]))
            .await;
        assert_eq!(failed_ids(&response), ["m1"]);
    }

    assert!(receiver.received().is_empty());
    let delays: Vec<Duration> = hooks.delays.0.lock().unwrap().iter().map(|d| d.2).collect();
    assert_eq!(delays.len(), 2, "{delays:?}");
    for delay in delays {
        // The lease and up to a tenth of jitter: not minutes or hours.
        assert!(
            delay >= lease && delay <= lease + lease / 10,
            "{delay:?}, lease {lease:?}"
        );
    }
}

mod sealed;
