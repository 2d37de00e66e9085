//! The load: N clients, each a customer with its own carts and its own keep-alive
//! connection, placing orders and moving them along the lifecycle over HTTP, for a
//! fixed time. Every request is recorded (endpoint, status, latency, and for errors
//! the problem's code and `Retry-After`).
//!
//! A client answered 503 waits what `Retry-After` says and sends the same request
//! again (a create with the same `Idempotency-Key`), as the API asks its callers to;
//! every other unexpected answer ends that order's flow and is reported.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use orders_tests::{ADMIN, FULFILL, checkout, token};

/// How long a client waits for any one answer: far above any healthy latency, so a
/// request that hits it is a hang, reported as status 0.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// After the load window, how long a client keeps retrying a request answered 503
/// (so that every create it started resolves).
const RETRY_GRACE: Duration = Duration::from_secs(60);

/// One request as a client saw it.
#[derive(Debug, Clone)]
pub struct Sample {
    pub endpoint: &'static str,
    /// When it was sent, from the start of the phase.
    pub sent: Duration,
    pub latency: Duration,
    /// 0: no answer (connection failed or CLIENT_TIMEOUT).
    pub status: u16,
    /// The status the flow expected (201 for a create, 200 otherwise).
    pub expected: bool,
    pub code: Option<String>,
    pub retry_after: Option<String>,
    pub problem_json: bool,
}

/// An order a client placed, and what it expects of it.
#[derive(Debug, Clone)]
pub struct Placed {
    pub order_id: String,
    pub cart_id: String,
    pub user: String,
    pub key: String,
    /// Creates sent (more than one: answered 503 and retried with the same key).
    pub create_attempts: u32,
    /// The answer that gave the order id was a replay (`Idempotent-Replayed: true`).
    pub replayed: bool,
    /// The status after the client's last accepted move; `None` when a move was
    /// answered unexpectedly, so nobody knows what to expect.
    pub expected_status: Option<&'static str>,
}

/// A create that never got its 201 (the cart may or may not be ordered).
#[derive(Debug, Clone)]
pub struct NotCreated {
    pub cart_id: String,
    pub status: u16,
}

/// What one phase's clients did.
#[derive(Default)]
pub struct Traffic {
    /// When the window opened (set by the caller), and from then to the last client's
    /// last answer.
    pub started_at: Option<std::time::SystemTime>,
    pub elapsed: Duration,
    pub samples: Vec<Sample>,
    pub placed: Vec<Placed>,
    pub not_created: Vec<NotCreated>,
    /// Some client ran out of carts before the window closed.
    pub capped: bool,
    /// The share of one CPU the emulator, orders-dev and the driver used over the
    /// window (set by the caller).
    pub cpu: Vec<Option<f64>>,
}

/// The carts not ordered yet, per client (client i is user `load-user-i`).
pub struct Carts {
    per_client: Vec<Mutex<VecDeque<String>>>,
}

impl Carts {
    /// `total` carts spread over `clients` users: (cart id, user) to seed.
    pub fn new(clients: usize, total: usize) -> (Carts, Vec<(String, String)>) {
        let mut seeds = Vec::new();
        let per_client = (0..clients)
            .map(|client| {
                let carts: VecDeque<String> = (0..total.div_ceil(clients))
                    .map(|n| format!("load-{client}-{n}"))
                    .collect();
                seeds.extend(carts.iter().map(|c| (c.clone(), user(client))));
                Mutex::new(carts)
            })
            .collect();
        (Carts { per_client }, seeds)
    }

    fn next(&self, client: usize) -> Option<String> {
        self.per_client[client].lock().unwrap().pop_front()
    }
}

pub fn user(client: usize) -> String {
    format!("load-user-{client}")
}

/// Runs `clients` clients against `api` for `window` from `started` (each finishes
/// the order it is on), or until their carts run out.
pub async fn run(
    api: &str,
    carts: &Arc<Carts>,
    clients: usize,
    started: Instant,
    window: Duration,
) -> Traffic {
    let stop_at = started + window;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..clients {
        let client = Client::new(api, i, started);
        let carts = Arc::clone(carts);
        tasks.spawn(client.run(carts, stop_at));
    }
    let mut traffic = Traffic::default();
    while let Some(done) = tasks.join_next().await {
        // A client task cannot fail short of a panic, which we pass on.
        let client = done.expect("a load client panicked");
        traffic.samples.extend(client.samples);
        traffic.placed.extend(client.placed);
        traffic.not_created.extend(client.not_created);
        traffic.capped |= client.capped;
    }
    traffic.elapsed = started.elapsed();
    traffic
}

/// One move along the lifecycle: the request, and the status it leads to.
struct Step {
    endpoint: &'static str,
    method: Method,
    path: String,
    token: String,
    body: String,
    to: &'static str,
}

/// The answer to one request, as far as a flow needs it.
struct Answer {
    status: u16,
    body: Value,
    replayed: bool,
}

struct Client {
    index: usize,
    http: reqwest::Client,
    api: String,
    phase_started: Instant,
    user: String,
    user_token: String,
    admin_token: String,
    fulfill_token: String,
    samples: Vec<Sample>,
    /// Until when a 503 is retried (set per run).
    retry_until: Instant,
}

impl Client {
    fn new(api: &str, index: usize, phase_started: Instant) -> Client {
        let user = user(index);
        Client {
            index,
            // One keep-alive connection per client, as a browser or a service would hold.
            http: reqwest::Client::builder()
                .timeout(CLIENT_TIMEOUT)
                .pool_max_idle_per_host(1)
                .build()
                .expect("a plain HTTP client builds"),
            api: api.to_string(),
            phase_started,
            user_token: token(&user, ""),
            admin_token: token("admin", ADMIN),
            fulfill_token: token("fulfillment", FULFILL),
            user,
            samples: Vec::new(),
            retry_until: phase_started,
        }
    }

    async fn run(mut self, carts: Arc<Carts>, stop_at: Instant) -> Traffic {
        self.retry_until = stop_at + RETRY_GRACE;
        let mut traffic = Traffic::default();
        let mut n = 0;
        while Instant::now() < stop_at {
            let Some(cart) = carts.next(self.index) else {
                traffic.capped = true;
                break;
            };
            match self.one_order(&cart, (self.index + n) % 5).await {
                Ok(order) => traffic.placed.push(order),
                Err(not_created) => traffic.not_created.push(not_created),
            }
            n += 1;
        }
        traffic.samples = std::mem::take(&mut self.samples);
        traffic
    }

    /// One order's life: create, read, then one of five paths along the lifecycle,
    /// then the history and the customer's list.
    async fn one_order(&mut self, cart_id: &str, path: usize) -> Result<Placed, NotCreated> {
        let key = format!("load-{cart_id}");
        let body = checkout(cart_id).to_string();
        let token = self.user_token.clone();
        let create = Call {
            body: Some(&body),
            idempotency_key: Some(&key),
            expected: 201,
            ..Call::new("create", Method::POST, "/api/orders", &token)
        };
        let (created, attempts) = self.call(&create).await;
        let not_created = NotCreated {
            cart_id: cart_id.to_string(),
            status: created.status,
        };
        let Some(order_id) = created.body["order_id"]
            .as_str()
            .filter(|_| created.status == 201)
        else {
            return Err(not_created);
        };
        let order_id = order_id.to_string();
        let mut order = Placed {
            order_id: order_id.clone(),
            cart_id: cart_id.to_string(),
            user: self.user.clone(),
            key,
            create_attempts: attempts,
            replayed: created.replayed,
            expected_status: Some("pending"),
        };
        let this = format!("/api/orders/{order_id}");
        self.call(&Call::new("get", Method::GET, &this, &token))
            .await;

        for step in self.path(path, &order_id) {
            let call = Call {
                body: Some(&step.body),
                ..Call::new(step.endpoint, step.method, &step.path, &step.token)
            };
            let (answer, _) = self.call(&call).await;
            if answer.status != 200 {
                order.expected_status = None;
                break;
            }
            order.expected_status = Some(step.to);
        }

        let history = format!("{this}/history");
        self.call(&Call::new("history", Method::GET, &history, &token))
            .await;
        self.call(&Call::new(
            "list",
            Method::GET,
            "/api/orders?limit=10",
            &token,
        ))
        .await;
        Ok(order)
    }

    /// The moves of path `path` (0 to 4) for `order_id`: a mix of everything the
    /// lifecycle allows, by every role that may make each move.
    fn path(&self, path: usize, order_id: &str) -> Vec<Step> {
        let order = format!("/api/orders/{order_id}");
        let status = format!("{order}/status");
        let step = |endpoint, method, path: &str, token: &str, body: Value, to| Step {
            endpoint,
            method,
            path: path.to_string(),
            token: token.to_string(),
            body: body.to_string(),
            to,
        };
        let confirm = step(
            "confirm",
            Method::PUT,
            &status,
            &self.admin_token,
            json!({ "status": "confirmed", "reason": "payment captured" }),
            "confirmed",
        );
        let ship = step(
            "ship",
            Method::PUT,
            &status,
            &self.fulfill_token,
            json!({ "status": "shipped", "tracking_number": "1Z999AA10123456784", "carrier": "UPS" }),
            "shipped",
        );
        let deliver = step(
            "deliver",
            Method::PUT,
            &status,
            &self.fulfill_token,
            json!({ "status": "delivered" }),
            "delivered",
        );
        let cancel = |token: &str| {
            step(
                "cancel",
                Method::DELETE,
                &order,
                token,
                json!({ "reason": "load: changed my mind" }),
                "cancelled",
            )
        };
        match path {
            // The owner cancels while pending.
            0 => vec![cancel(&self.user_token)],
            // Paid, then cancelled by an admin: fulfillment gives the stock back.
            1 => vec![confirm, cancel(&self.admin_token)],
            2 => vec![confirm, ship, deliver],
            3 => vec![confirm, ship],
            _ => vec![confirm],
        }
    }

    /// Sends one request; while it is answered 503 and retries are still allowed,
    /// waits `Retry-After` and sends it again. Answers the last answer and how many
    /// requests it took.
    async fn call(&mut self, call: &Call<'_>) -> (Answer, u32) {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (answer, retry_after) = self.send(call).await;
            if answer.status != 503 || Instant::now() >= self.retry_until {
                return (answer, attempts);
            }
            tokio::time::sleep(retry_after.unwrap_or(Duration::from_secs(1))).await;
        }
    }

    /// One request, recorded.
    async fn send(&mut self, call: &Call<'_>) -> (Answer, Option<Duration>) {
        let Call {
            endpoint,
            ref method,
            path,
            token,
            body,
            idempotency_key,
            expected,
        } = *call;
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.api))
            .header("authorization", format!("Bearer {token}"));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let sent = Instant::now();
        let answered = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let (retry_after, content_type, replayed) = (
                header("retry-after"),
                header("content-type"),
                header("idempotent-replayed"),
            );
            let bytes = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, retry_after, content_type, replayed, bytes))
        }
        .await;
        let latency = sent.elapsed();
        let (status, retry_after, content_type, replayed, bytes) =
            answered.unwrap_or((0, None, None, None, Default::default()));
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        self.samples.push(Sample {
            endpoint,
            sent: sent.duration_since(self.phase_started),
            latency,
            status,
            expected: status == expected,
            code: body["code"].as_str().map(str::to_string),
            retry_after: retry_after.clone(),
            problem_json: content_type.as_deref() == Some("application/problem+json"),
        });
        let wait = retry_after
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let answer = Answer {
            status,
            body,
            replayed: replayed.as_deref() == Some("true"),
        };
        (answer, wait)
    }
}

/// One API request of a client, and the status it should get.
struct Call<'a> {
    /// The endpoint's name in the report.
    endpoint: &'static str,
    method: Method,
    path: &'a str,
    token: &'a str,
    body: Option<&'a str>,
    idempotency_key: Option<&'a str>,
    expected: u16,
}

impl<'a> Call<'a> {
    /// A request without a body or key, expected to be answered 200.
    fn new(endpoint: &'static str, method: Method, path: &'a str, token: &'a str) -> Self {
        Call {
            endpoint,
            method,
            path,
            token,
            body: None,
            idempotency_key: None,
            expected: 200,
        }
    }
}
