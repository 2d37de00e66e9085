//! The test harness: a fresh, uniquely named orders table (created from
//! template.yaml) and carts table on the emulator for each test, and requests
//! routed by template.yaml's routes to the same handlers the Lambdas run.
//!
//! Needs `AWS_ENDPOINT_URL` pointing at the emulator; `make test` starts one.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use hyper::body::Bytes;
use lambda_http::Body;
use orders::auth::issue_hs256_token;
use orders::inbound::http::Api;
use orders::wiring::{LOCAL_MODE, Settings, Wiring};
use orders_dev::pipeline::{self, PipelineError};
use orders_dev::provision::{self, SeedLine};
use orders_dev::server::{Resolved, Router, unrouted_response};
use orders_dev::template::{QueueSpec, RuleSpec, Template};
use serde_json::{Value, json};

pub const SECRET: &str = "orders-test-secret-at-least-32-bytes!";
pub const ADMIN: &str = "orders:admin";
pub const FULFILL: &str = "orders:fulfill";

pub fn template_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml")
}

pub fn template() -> Template {
    Template::load(template_path()).expect("template.yaml loads")
}

/// A bearer token for `sub` with `scope` (space-separated, may be empty).
pub fn token(sub: &str, scope: &str) -> String {
    issue_hs256_token(SECRET.as_bytes(), sub, scope, Duration::from_secs(3600))
}

pub async fn dynamodb() -> Client {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run the tests with `make test`, which starts the emulator"
    );
    let sdk = orders::adapters::aws::sdk_config().await;
    Client::new(&sdk)
}

/// A name no other test (or test process) uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The sender of the tests' stacks' emails (an SES identity on the emulator).
pub const MAIL_FROM: &str = "Orders Tests <orders@tests.example.com>";
/// The seller on the tests' invoices.
pub const INVOICE_SELLER: &str = r#"{"name": "Test Shop", "address": ["9 Test Lane", "Springfield 12345", "US"], "tax_id": "US-TEST-9", "email": "billing@tests.example.com"}"#;

/// The cursor secret the tests' stacks sign with.
pub const CURSOR_SECRET: &str = "test-cursor-secret-of-at-least-32-bytes";

/// One isolated copy of the service on the emulator, built by the same wiring as the
/// Lambda functions, from settings naming this copy's own tables.
pub struct Stack {
    pub app: Arc<Api>,
    pub router: Arc<Router>,
    pub wiring: Wiring,
    pub dynamodb: Client,
    pub table: String,
    pub carts_table: String,
}

pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Value,
    /// The body exactly as sent, for checks on its text (`"total":75.00`).
    pub text: String,
    /// The body's bytes (a PDF).
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `code` of a problem document.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// The fields a validation problem names, in its order.
    pub fn error_fields(&self) -> Vec<&str> {
        self.body["errors"]
            .as_array()
            .map(|errors| errors.iter().filter_map(|e| e["field"].as_str()).collect())
            .unwrap_or_default()
    }
}

impl From<lambda_http::Response<Body>> for Reply {
    fn from(response: lambda_http::Response<Body>) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = match response.body() {
            Body::Text(text) => text.as_bytes().to_vec(),
            Body::Binary(bytes) => bytes.clone(),
            _ => Vec::new(),
        };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
            bytes,
        }
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.body)
    }
}

/// A request to the API, built up fluently.
#[derive(Clone)]
pub struct Call {
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

impl Call {
    pub fn new(method: &str, uri: &str) -> Call {
        Call {
            method: method.into(),
            uri: uri.into(),
            headers: vec![],
            body: None,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Call {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn bearer(self, token: &str) -> Call {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn json(self, body: &Value) -> Call {
        self.raw_body("application/json", &body.to_string())
    }

    pub fn raw_body(mut self, content_type: &str, body: &str) -> Call {
        self.headers
            .push(("content-type".into(), content_type.into()));
        self.body = Some(body.into());
        self
    }
}

impl Stack {
    /// As deployed: public webhook receivers only, carts from a carts table.
    pub async fn new() -> Stack {
        Stack::with_settings(|settings| settings).await
    }

    /// As `make dev` runs: local mode, so webhook receivers on this machine may
    /// subscribe.
    pub async fn local_mode() -> Stack {
        Stack::with_settings(|settings| settings.with(LOCAL_MODE, "true")).await
    }

    /// A stack whose settings `adjust` changes (another cart source, say). Provider
    /// keys among them are stored in the emulator's Secrets Manager and given to the
    /// functions by ARN, as deployed. (Webhook secrets are sealed only with a
    /// `WEBHOOK_SECRETS_KEY_ID`: see [`webhook_secrets_key`].)
    pub async fn with_settings(adjust: impl FnOnce(Settings) -> Settings) -> Stack {
        Stack::build(orders::adapters::aws::sdk_config().await, adjust, true).await
    }

    /// A stack whose functions reach AWS through `sdk` (a dead endpoint, say), while
    /// the harness provisions and reads through the emulator. Provider keys stay plain
    /// settings: the functions could not read a secret through `sdk`.
    pub async fn on_sdk(
        sdk: aws_config::SdkConfig,
        adjust: impl FnOnce(Settings) -> Settings,
    ) -> Stack {
        Stack::build(sdk, adjust, false).await
    }

    async fn build(
        sdk: aws_config::SdkConfig,
        adjust: impl FnOnce(Settings) -> Settings,
        as_deployed: bool,
    ) -> Stack {
        let dynamodb = dynamodb().await;
        let template = template();
        let table = unique("orders");
        let carts_table = unique("carts");
        provision::ensure_table(&dynamodb, &table, &template.table("OrdersTable").unwrap())
            .await
            .expect("orders table");
        provision::ensure_table(&dynamodb, &carts_table, &provision::carts_table_spec())
            .await
            .expect("carts table");
        let mut settings = Settings::default()
            .with("TABLE_NAME", &table)
            .with("JWT_SECRET", SECRET)
            .with("CURSOR_SECRET", CURSOR_SECRET)
            // On, so that every create goes through the limited transaction as
            // deployed, but too high for any test to reach unless it sets its own.
            .with("ORDER_CREATE_LIMIT", "1000/60")
            .with("MAIL_FROM", MAIL_FROM)
            .with("INVOICE_SELLER", INVOICE_SELLER);
        settings = adjust(settings);
        let emulator = orders::adapters::aws::sdk_config().await;
        provision::ensure_sender(&emulator, settings.get("MAIL_FROM").unwrap_or(MAIL_FROM))
            .await
            .expect("the sender's SES identity");
        if settings.get("CART_API_URL").is_none() && settings.get("CARTS_TABLE").is_none() {
            settings = settings.with("CARTS_TABLE", &carts_table);
        }
        if as_deployed {
            settings = orders_dev::secrets::keys_by_arn(&emulator, settings, &table)
                .await
                .expect("the stack's secrets and key on the emulator");
        }
        let wiring = Wiring::load(settings, sdk).await;
        let app = wiring
            .api()
            .expect("the test stack's settings are complete");
        Stack {
            app: Arc::new(app),
            router: Arc::new(
                Router::new(template.routes().unwrap())
                    .and_then(|r| r.with_method_fallbacks(template.method_fallbacks().unwrap()))
                    .unwrap(),
            ),
            wiring,
            dynamodb,
            table,
            carts_table,
        }
    }

    /// Sends `call` the way API Gateway would: routed by template.yaml, with path
    /// and query parameters extracted, to the endpoint's handler; a method the path
    /// has no route for is 405 with `Allow`, an unknown path 404, as the local server
    /// answers.
    pub async fn send(&self, call: Call) -> Reply {
        let path = call.uri.split('?').next().unwrap_or_default();
        let (endpoint, params) = match self.router.resolve(&call.method, path) {
            Resolved::Endpoint(endpoint, params) => (endpoint, params),
            unrouted => return Reply::from(unrouted_response(&call.method, &unrouted)),
        };
        let mut builder = http::Request::builder()
            .method(call.method.as_str())
            .uri(&call.uri);
        for (name, value) in &call.headers {
            builder = builder.header(name, value);
        }
        let (parts, ()) = builder.body(()).unwrap().into_parts();
        let body = call.body.map(Bytes::from).unwrap_or_default();
        let request = orders_dev::server::lambda_request(parts, body, params);
        Reply::from(self.app.handle(endpoint, request).await)
    }

    pub async fn put_cart(&self, cart_id: &str, user_id: &str, lines: &[SeedLine<'_>]) {
        provision::put_cart(
            &self.dynamodb,
            &self.carts_table,
            cart_id,
            user_id,
            "USD",
            lines,
        )
        .await
        .expect("cart stored");
    }

    /// Stores `cart` (the Shopping Cart API's JSON: shipping, discounts, taxes) in the
    /// carts table.
    pub async fn put_cart_json(&self, cart: &Value) {
        provision::put_cart_json(&self.dynamodb, &self.carts_table, cart)
            .await
            .expect("cart stored");
    }

    /// The orders table as the emulator describes it.
    pub async fn orders_table(&self) -> aws_sdk_dynamodb::types::TableDescription {
        self.dynamodb
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .unwrap()
            .table
            .expect("the orders table exists")
    }

    /// The demo cart (`abc123` of `user789`, 75.00), as `make dev` seeds it.
    pub async fn put_demo_cart(&self) {
        let (cart_id, user_id, lines) = provision::DEMO_CART;
        self.put_cart(cart_id, user_id, lines).await;
    }

    /// Creates a one-line cart for `user` and checks it out; returns the order id.
    pub async fn order_for(&self, user: &str, cart_id: &str) -> String {
        self.put_cart(cart_id, user, &[("p001", "USB Cable", 2, "10.00")])
            .await;
        let reply = self
            .send(
                Call::new("POST", "/api/orders")
                    .bearer(&token(user, ""))
                    .json(&checkout(cart_id)),
            )
            .await;
        assert_eq!(reply.status, 201, "{reply:?}");
        reply.body["order_id"].as_str().unwrap().to_string()
    }

    /// Moves an order, as an admin, along the lifecycle to `status`.
    pub async fn advance(&self, order_id: &str, path: &[&str]) {
        for status in path {
            let reply = self
                .set_status(order_id, status, &token("admin", ADMIN))
                .await;
            assert_eq!(reply.status, 200, "moving to {status}: {reply:?}");
        }
    }

    pub async fn set_status(&self, order_id: &str, status: &str, token: &str) -> Reply {
        self.send(
            Call::new("PUT", &format!("/api/orders/{order_id}/status"))
                .bearer(token)
                .json(&json!({ "status": status })),
        )
        .await
    }

    /// The order's item as stored, read straight from the table.
    pub async fn stored_order(&self, order_id: &str) -> Option<HashMap<String, AttributeValue>> {
        self.dynamodb
            .get_item()
            .table_name(&self.table)
            .key("PK", AttributeValue::S(format!("ORDER#{order_id}")))
            .key("SK", AttributeValue::S("ORDER".into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
    }

    /// Every item in this test's table (a test may scan; the product never does).
    pub async fn all_items(&self) -> Vec<HashMap<String, AttributeValue>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .dynamodb
                .scan()
                .table_name(&self.table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            items.extend(page.items().iter().cloned());
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return items;
            }
        }
    }

    /// The order items in this test's table.
    pub async fn stored_orders(&self) -> Vec<HashMap<String, AttributeValue>> {
        self.all_items()
            .await
            .into_iter()
            .filter(|item| {
                item.get("SK")
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str)
                    == Some("ORDER")
            })
            .collect()
    }
}

/// A new KMS key on the emulator, for a stack's `WEBHOOK_SECRETS_KEY_ID`.
pub async fn webhook_secrets_key() -> String {
    let emulator = orders::adapters::aws::sdk_config().await;
    orders_dev::secrets::webhook_secrets_key(&emulator, "tests: webhook signing secrets")
        .await
        .expect("a KMS key on the emulator")
}

/// `settings` with Shippo on, as `make test` exports it (scripts/with-emulator.sh starts
/// the Shippo stand-in): `SHIPPO_API_URL`, `SHIPPO_API_TOKEN`, `SHIPPO_WEBHOOK_TOKEN`,
/// `SHIPPO_ADDRESS_FROM`.
pub fn with_shippo(mut settings: Settings) -> Settings {
    for name in [
        "SHIPPO_API_URL",
        "SHIPPO_API_TOKEN",
        "SHIPPO_WEBHOOK_TOKEN",
        "SHIPPO_ADDRESS_FROM",
    ] {
        let value = std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run the tests with `make test`, which starts the Shippo stand-in")
        });
        settings = settings.with(name, value);
    }
    settings
}

/// The README's example create body for `cart_id`, without `user_id`.
pub fn checkout(cart_id: &str) -> Value {
    json!({
        "cart_id": cart_id,
        "payment_method": "credit_card",
        "shipping_address": {
            "name": "Jane Doe",
            "address": "123 Main St",
            "city": "New York",
            "state": "NY",
            "zip": "10001",
            "country": "US"
        }
    })
}

/// An integrator's queue named `name` on `bus`, subscribed by a rule (also `name`) to
/// every order event (`source: orders`); creates the bus if it is missing. Answers the
/// queue's URL. (On AWS the queue would also need a policy letting events.amazonaws.com
/// send to it; the emulator does not check.)
pub async fn subscribe_queue(
    sqs: &aws_sdk_sqs::Client,
    events: &aws_sdk_eventbridge::Client,
    bus: &str,
    name: &str,
) -> Result<String, PipelineError> {
    let queue = QueueSpec {
        logical_id: name.to_string(),
        visibility_timeout: None,
        dead_letter: None,
    };
    let rule = RuleSpec {
        logical_id: name.to_string(),
        pattern: json!({ "source": [orders::events::SOURCE] }),
        targets: vec![("integrator".to_string(), name.to_string())],
    };
    let queues = pipeline::provision(sqs, events, bus, "", &[queue], &[rule]).await?;
    Ok(queues
        .get(name)
        .map(|(url, _)| url.clone())
        .unwrap_or_default())
}
