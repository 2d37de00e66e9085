//! `make bench`: for every function's release binary (and two floors: a bare Rust Lambda,
//! and the same with our SDK configuration and a DynamoDB client) its cold start, peak
//! memory after one invocation, binary and zip size; and the DynamoDB requests each API
//! call makes, counted at the emulator.
//!
//! Each binary runs as Lambda runs it: a fresh process, pointed by
//! `AWS_LAMBDA_RUNTIME_API` at a Lambda Runtime API that this program serves on
//! 127.0.0.1. Cold start = spawn to its first `GET /2018-06-01/runtime/invocation/next`
//! (our mains build their SDK clients before polling). That poll is answered with the
//! function's sample event from `events/` (real ids and a minted token put in), the
//! answer is checked, the second poll is awaited, then `VmHWM` is read from
//! `/proc/<pid>/status` and the process killed.
//!
//! Needs `AWS_ENDPOINT_URL` (an emulator started by scripts/emulator.py, which counts
//! DynamoDB requests at `/_bench/requests`); `make bench` runs it under
//! scripts/with-emulator.sh.
//!
//!     bench [--runs 15] [--bin-dir target/release] [--out docs/bench.md]
//!           [--only create-order,get-order] [--command "make bench"]

mod common;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use orders::webhooks::WebhookStore;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, mpsc};

type Error = Box<dyn std::error::Error + Send + Sync>;

const BARE: &str = "bare-lambda";
/// The bare Lambda plus our SDK configuration and a DynamoDB client (bench/src/bin/sdk-floor.rs).
const SDK_FLOOR: &str = "sdk-floor";
/// The cold-start runs' order: webhooks after the orders they are about, the floor first.
const FUNCTIONS: [&str; 14] = [
    "create-order",
    "get-order",
    "list-orders",
    "update-order-status",
    "cancel-order",
    "get-order-history",
    "publish-events",
    "fulfill-orders",
    "create-webhook",
    "get-webhook",
    "list-webhooks",
    "list-webhook-deliveries",
    "deliver-webhooks",
    "delete-webhook",
];
const JWT_SECRET: &str = "orders-bench-jwt-secret-at-least-32-bytes";
const CURSOR_SECRET: &str = "orders-bench-cursor-secret";
const USER: &str = "user789";
/// How long a process may take to poll, to answer, and to poll again.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// The fake Lambda Runtime API (and a webhook receiver on the same port).

enum Signal {
    Next(Instant),
    Response(Bytes),
    Error(Bytes),
    InitError(Bytes),
}

struct RuntimeApi {
    /// The event handed out by the next `next`; afterwards polls wait.
    pending: Mutex<Option<Bytes>>,
    signals: mpsc::UnboundedSender<Signal>,
    /// Wakes polls left waiting when a run ends.
    run_over: Notify,
    hooks_received: Mutex<u64>,
}

async fn serve_runtime_api(
    api: Arc<RuntimeApi>,
    listener: tokio::net::TcpListener,
) -> Result<(), Error> {
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let api = Arc::clone(&api);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let api = Arc::clone(&api);
                async move { Ok::<_, Infallible>(runtime_api(api, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

async fn runtime_api(api: Arc<RuntimeApi>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let at = Instant::now();
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    if method == Method::GET && path == "/2018-06-01/runtime/invocation/next" {
        let _ = api.signals.send(Signal::Next(at));
        let event = api.pending.lock().unwrap().take();
        let Some(event) = event else {
            api.run_over.notified().await;
            return reply(StatusCode::GONE, "run over");
        };
        let deadline = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            + Duration::from_secs(30);
        let mut response = reply(StatusCode::OK, event);
        let headers = response.headers_mut();
        let mut set = |name: &'static str, value: String| {
            if let Ok(value) = hyper::header::HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        };
        set("content-type", "application/json".into());
        set(
            "lambda-runtime-aws-request-id",
            "8476a536-e9f4-11e8-9739-2dfe598c3fcd".into(),
        );
        set(
            "lambda-runtime-deadline-ms",
            deadline.as_millis().to_string(),
        );
        set(
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:bench".into(),
        );
        set(
            "lambda-runtime-trace-id",
            "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1".into(),
        );
        return response;
    }
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return reply(StatusCode::BAD_REQUEST, "unreadable body"),
    };
    if method != Method::POST {
        return reply(StatusCode::NOT_FOUND, "");
    }
    let signal = if path == "/2018-06-01/runtime/init/error" {
        Signal::InitError(body)
    } else if path.starts_with("/2018-06-01/runtime/invocation/") && path.ends_with("/response") {
        Signal::Response(body)
    } else if path.starts_with("/2018-06-01/runtime/invocation/") && path.ends_with("/error") {
        Signal::Error(body)
    } else if path == "/hook" {
        *api.hooks_received.lock().unwrap() += 1;
        return reply(StatusCode::NO_CONTENT, "");
    } else {
        return reply(StatusCode::NOT_FOUND, "");
    };
    let _ = api.signals.send(signal);
    reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
}

// ---------------------------------------------------------------------------------------
// The emulator's request log (scripts/emulator.py, `/_bench/`).

struct Emulator {
    /// host:port
    address: String,
}

impl Emulator {
    fn from_url(url: &str) -> Result<Emulator, Error> {
        let address = url
            .strip_prefix("http://")
            .ok_or("AWS_ENDPOINT_URL must be an http:// emulator URL")?
            .trim_end_matches('/')
            .to_string();
        Ok(Emulator { address })
    }

    /// One HTTP/1.0 exchange; the emulator closes the connection after answering.
    async fn call(&self, method: &str, path: &str) -> Result<(u16, Vec<u8>), Error> {
        let mut stream = tokio::net::TcpStream::connect(&self.address).await?;
        let request = format!(
            "{method} {path} HTTP/1.0\r\nHost: {}\r\nContent-Length: 0\r\n\r\n",
            self.address
        );
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("malformed emulator response")?;
        let head = String::from_utf8_lossy(&raw[..split]);
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Ok((status, raw[split + 4..].to_vec()))
    }

    async fn reset(&self) -> Result<bool, Error> {
        Ok(self.call("POST", "/_bench/reset").await?.0 == 200)
    }

    /// The DynamoDB requests since the last reset that name one of `tables`.
    async fn requests(&self, tables: &[&str]) -> Result<Vec<DynamoRequest>, Error> {
        let (status, body) = self.call("GET", "/_bench/requests").await?;
        if status != 200 {
            return Err(format!("GET /_bench/requests answered {status}").into());
        }
        let log: Value = serde_json::from_slice(&body)?;
        let requests = log["requests"].as_array().cloned().unwrap_or_default();
        Ok(requests
            .iter()
            .filter(|r| {
                r["tables"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| tables.contains(&t.as_str().unwrap_or(""))))
            })
            .map(|r| DynamoRequest {
                operation: r["target"]
                    .as_str()
                    .unwrap_or("")
                    .rsplit('.')
                    .next()
                    .unwrap_or("")
                    .to_string(),
                status: r["status"].as_u64().unwrap_or(0),
                cart_lookup: r["tables"].as_array().is_some_and(|t| {
                    t.iter()
                        .any(|t| t.as_str().is_some_and(|t| t.starts_with("bench-carts-")))
                }),
            })
            .collect())
    }
}

struct DynamoRequest {
    operation: String,
    status: u64,
    /// The request reads the carts table (the cart lookup, which the target sets aside).
    cart_lookup: bool,
}

// ---------------------------------------------------------------------------------------
// Running one binary once.

struct Bench {
    api: Arc<RuntimeApi>,
    signals: mpsc::UnboundedReceiver<Signal>,
    runtime_api: String,
    bin_dir: PathBuf,
    log_dir: PathBuf,
    env: Vec<(String, String)>,
    emulator: Emulator,
    tables: Vec<String>,
    /// Set for some rows only (see `VARIANTS`).
    extra_env: Vec<(String, String)>,
    wrap: Vec<String>,
}

enum Answer {
    /// The function's response document.
    Response(Value),
    Error(String),
}

struct Run {
    cold_start: Duration,
    answer: Answer,
    /// VmHWM after the invocation, in KiB.
    peak_kib: Option<u64>,
    dynamo: Vec<DynamoRequest>,
}

impl Answer {
    /// A short description: the HTTP status (and error code), or the batch outcome.
    fn summary(&self) -> String {
        match self {
            Answer::Error(e) => format!("error: {}", truncate(e, 80)),
            Answer::Response(v) => {
                if let Some(status) = v["statusCode"].as_u64() {
                    let body: Value = v["body"]
                        .as_str()
                        .and_then(|b| serde_json::from_str(b).ok())
                        .unwrap_or(Value::Null);
                    let replayed = v["headers"]["idempotent-replayed"].as_str() == Some("true");
                    match body["code"].as_str() {
                        Some(code) => format!("{status} {code}"),
                        None if replayed => format!("{status} replayed"),
                        None => status.to_string(),
                    }
                } else if let Some(failures) = v["batchItemFailures"].as_array() {
                    if failures.is_empty() {
                        "ok".into()
                    } else {
                        format!("{} failed", failures.len())
                    }
                } else {
                    truncate(&v.to_string(), 40)
                }
            }
        }
    }

    fn body(&self) -> Value {
        match self {
            Answer::Response(v) => v["body"]
                .as_str()
                .and_then(|b| serde_json::from_str(b).ok())
                .unwrap_or(Value::Null),
            Answer::Error(_) => Value::Null,
        }
    }

    fn is_success(&self) -> bool {
        match self {
            Answer::Error(_) => false,
            Answer::Response(v) => match v["statusCode"].as_u64() {
                Some(status) => (200..300).contains(&status),
                None => v["batchItemFailures"]
                    .as_array()
                    .is_none_or(|f| f.is_empty()),
            },
        }
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl Bench {
    fn binary(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    /// Starts `name`, hands it `event` at its first poll, waits for its answer and its
    /// next poll, reads its peak memory, and stops it.
    async fn run(&mut self, name: &str, event: &Value) -> Result<Run, Error> {
        while self.signals.try_recv().is_ok() {}
        *self.api.pending.lock().unwrap() = Some(Bytes::from(serde_json::to_vec(event)?));
        self.emulator.reset().await?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_dir.join(format!("{name}.log")))?;
        let mut command = match self.wrap.split_first() {
            Some((program, wrap_args)) => {
                let mut command = tokio::process::Command::new(program);
                command.args(wrap_args).arg(self.binary(name));
                command
            }
            None => tokio::process::Command::new(self.binary(name)),
        };
        command
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", &self.runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/01/01/[$LATEST]bench")
            .envs(self.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);

        let started = Instant::now();
        let mut child = command.spawn()?;
        let pid = child.id().ok_or("no pid")?;
        let result = self.observe(&mut child, started, pid).await;
        let _ = child.start_kill();
        let _ = child.wait().await;
        self.api.run_over.notify_waiters();
        *self.api.pending.lock().unwrap() = None;
        let (cold_start, answer, peak_kib) = result.map_err(|e| {
            format!(
                "{name}: {e} (its log: {})",
                self.log_dir.join(format!("{name}.log")).display()
            )
        })?;
        let tables: Vec<&str> = self.tables.iter().map(String::as_str).collect();
        let dynamo = self.emulator.requests(&tables).await?;
        Ok(Run {
            cold_start,
            answer,
            peak_kib,
            dynamo,
        })
    }

    async fn observe(
        &mut self,
        child: &mut tokio::process::Child,
        started: Instant,
        pid: u32,
    ) -> Result<(Duration, Answer, Option<u64>), Error> {
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        let mut cold_start = None;
        let mut answer = None;
        loop {
            let signal = tokio::select! {
                signal = self.signals.recv() => signal.ok_or("runtime API stopped")?,
                status = child.wait() => {
                    return Err(format!("exited with {} before it was done", status?).into());
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(format!(
                        "timed out ({} s) waiting for its {}",
                        STEP_TIMEOUT.as_secs(),
                        match (cold_start, &answer) {
                            (None, _) => "first poll",
                            (Some(_), None) => "answer",
                            _ => "second poll",
                        }
                    ).into());
                }
            };
            match signal {
                Signal::Next(at) => match cold_start {
                    None => cold_start = Some(at.duration_since(started)),
                    Some(cold) => {
                        let answer = answer.ok_or("polled again without answering")?;
                        return Ok((cold, answer, peak_kib(pid)));
                    }
                },
                Signal::Response(body) => {
                    answer = Some(Answer::Response(
                        serde_json::from_slice(&body).unwrap_or(Value::Null),
                    ));
                }
                Signal::Error(body) => {
                    answer = Some(Answer::Error(String::from_utf8_lossy(&body).into_owned()));
                }
                Signal::InitError(body) => {
                    return Err(format!("init error: {}", String::from_utf8_lossy(&body)).into());
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Events: the samples in events/, with real ids and a minted token.

#[derive(Clone, Default)]
struct Ids {
    /// The order the get/list/status/history samples are about.
    order: String,
    /// The order the cancel sample cancels.
    cancel_order: String,
    webhook: String,
    hook_url: String,
}

fn sample(events_dir: &Path, name: &str, ids: &Ids) -> Result<Value, Error> {
    let path = events_dir.join(format!("{name}.json"));
    let mut text =
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let order = if name == "cancel-order" {
        &ids.cancel_order
    } else {
        &ids.order
    };
    for (from, to) in [
        ("ORD12345", order),
        ("ORDKT9Y9G7TXGSP1QME", &ids.order),
        ("wh_3f9a0c1e7b2d4a6c8e0f1a3b", &ids.webhook),
        ("https://erp.example.com/hooks/orders", &ids.hook_url),
    ] {
        if !to.is_empty() {
            text = text.replace(from, to);
        }
    }
    let mut event: Value = serde_json::from_str(&text)?;
    if event["headers"]["authorization"].as_str() == Some("Bearer <token>") {
        let claims = &event["requestContext"]["authorizer"]["jwt"]["claims"];
        let token = token(
            claims["sub"].as_str().unwrap_or(USER),
            claims["scope"].as_str().unwrap_or(""),
        );
        event["headers"]["authorization"] = json!(format!("Bearer {token}"));
    }
    Ok(event)
}

fn token(sub: &str, scope: &str) -> String {
    common::token(JWT_SECRET, sub, scope)
}

/// Replaces an HTTP event's JSON body (and its content-length).
fn with_body(mut event: Value, body: Value) -> Value {
    let text = body.to_string();
    event["headers"]["content-length"] = json!(text.len().to_string());
    event["body"] = json!(text);
    event
}

/// Sets an HTTP event's Idempotency-Key (the sample's own key stays for the cold runs).
fn with_key(mut event: Value, key: &str) -> Value {
    event["headers"]["idempotency-key"] = json!(format!("bench-{key}"));
    event
}

fn with_caller(mut event: Value, sub: &str, scope: &str) -> Value {
    event["headers"]["authorization"] = json!(format!("Bearer {}", token(sub, scope)));
    event
}

// ---------------------------------------------------------------------------------------
// Setup: tables, carts, stock and bus, named for this run.

struct Setup {
    table: String,
    carts: String,
    bus: String,
}

async fn provision(template: &Path, setup: &Setup) -> Result<(), Error> {
    use orders::pipeline::fulfillment::Inventory;
    use orders_dev::provision as p;

    let sdk = orders::adapters::aws::sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let template = orders_dev::template::Template::load(template)?;
    p::ensure_table(&dynamodb, &setup.table, &template.table("OrdersTable")?).await?;
    p::ensure_table(&dynamodb, &setup.carts, &p::carts_table_spec()).await?;
    let (sample_cart, _, lines) = p::DEMO_CART;
    for cart in [sample_cart, "bench-nokey", "bench-cancel"] {
        p::put_cart(&dynamodb, &setup.carts, cart, USER, "USD", lines).await?;
    }
    let inventory =
        orders::adapters::inventory_table::DynamoInventory::new(dynamodb.clone(), &setup.table);
    for (product_id, _, _, _) in lines {
        inventory.set_stock(product_id, 1_000_000).await?;
    }
    aws_sdk_eventbridge::Client::new(&sdk)
        .create_event_bus()
        .name(&setup.bus)
        .send()
        .await
        .map_err(|e| orders::adapters::aws::describe(&e))?;
    Ok(())
}

/// Keeps only `keep` among the webhook subscriptions (the cold-start runs of
/// create-webhook make one each), so deliver-webhooks delivers to one receiver.
async fn prune_webhooks(table: &str, keep: &str) -> Result<(), Error> {
    let sdk = orders::adapters::aws::sdk_config().await;
    let store = orders::adapters::webhook_table::DynamoWebhookStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        table,
    );
    for subscription in store.list().await? {
        if subscription.id.as_str() != keep {
            store.delete(&subscription.id).await?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Figures.

struct Row {
    name: String,
    cold_ms: Vec<f64>,
    peak_kib: Vec<u64>,
    binary_bytes: u64,
    zip_bytes: u64,
    answers: BTreeMap<String, usize>,
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Zips `binary` as `bootstrap` (deflate, as cargo-lambda does) with python's zipfile and
/// returns the zip's size.
fn zip_size(binary: &Path, work: &Path) -> Result<u64, Error> {
    let zip = work.join(format!(
        "{}.zip",
        binary.file_name().unwrap_or_default().to_string_lossy()
    ));
    let script = "import sys, zipfile\n\
        info = zipfile.ZipInfo('bootstrap', (2026, 1, 1, 0, 0, 0))\n\
        info.external_attr = 0o100755 << 16\n\
        info.compress_type = zipfile.ZIP_DEFLATED\n\
        with zipfile.ZipFile(sys.argv[2], 'w') as z, open(sys.argv[1], 'rb') as f:\n\
        \x20   z.writestr(info, f.read())\n";
    let status = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(binary)
        .arg(&zip)
        .status()?;
    if !status.success() {
        return Err(format!("zipping {} failed", binary.display()).into());
    }
    Ok(std::fs::metadata(&zip)?.len())
}

// ---------------------------------------------------------------------------------------

struct Args {
    runs: usize,
    bin_dir: PathBuf,
    out: Option<PathBuf>,
    only: Option<Vec<String>>,
    command: String,
    /// A command to run each binary under (e.g. `strace -f -tt -o /tmp/t`), for analysis.
    wrap: Vec<String>,
}

fn args() -> Result<Args, Error> {
    let mut args = Args {
        runs: 15,
        bin_dir: PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or("target".into()))
            .join("release"),
        out: None,
        only: None,
        command: "make bench".into(),
        wrap: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--runs" => args.runs = value()?.parse()?,
            "--bin-dir" => args.bin_dir = value()?.into(),
            "--out" => args.out = Some(value()?.into()),
            "--only" => args.only = Some(value()?.split(',').map(String::from).collect()),
            "--command" => args.command = value()?,
            "--wrap" => args.wrap = value()?.split_whitespace().map(String::from).collect(),
            other => return Err(format!("unknown argument {other} (see bench/src/main.rs)").into()),
        }
    }
    if args.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = args()?;
    let endpoint = std::env::var("AWS_ENDPOINT_URL").map_err(|_| {
        "AWS_ENDPOINT_URL is not set: run `make bench` (it starts an emulator), or point it at one"
    })?;
    let emulator = Emulator::from_url(&endpoint)?;
    if !emulator.reset().await? {
        return Err(format!(
            "the emulator at {endpoint} has no /_bench/ endpoints (start it with scripts/emulator.py)"
        )
        .into());
    }
    for name in FUNCTIONS.iter().chain([&BARE, &SDK_FLOOR]) {
        let path = args.bin_dir.join(name);
        if !path.is_file() {
            return Err(format!(
                "{} is missing: build first (make bench does: cargo build --release -p functions -p orders-bench --no-default-features --features sdk-floor --bins)",
                path.display()
            )
            .into());
        }
    }

    let suffix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis()
        .to_string();
    let setup = Setup {
        table: format!("bench-orders-{suffix}"),
        carts: format!("bench-carts-{suffix}"),
        bus: format!("bench-bus-{suffix}"),
    };
    provision(Path::new("template.yaml"), &setup).await?;

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let runtime_api = listener.local_addr()?.to_string();
    let (tx, rx) = mpsc::unbounded_channel();
    let api = Arc::new(RuntimeApi {
        pending: Mutex::new(None),
        signals: tx,
        run_over: Notify::new(),
        hooks_received: Mutex::new(0),
    });
    tokio::spawn(serve_runtime_api(Arc::clone(&api), listener));

    let work = std::env::temp_dir().join(format!("orders-bench-{suffix}"));
    let log_dir = work.join("logs");
    std::fs::create_dir_all(&log_dir)?;
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or(default.into());
    let env: Vec<(String, String)> = [
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_string()),
        ("LANG", "en_US.UTF-8".into()),
        ("TZ", ":UTC".into()),
        ("LAMBDA_TASK_ROOT", args.bin_dir.display().to_string()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        ("AWS_REGION", var("AWS_REGION", "us-east-1")),
        ("AWS_DEFAULT_REGION", var("AWS_REGION", "us-east-1")),
        ("AWS_ACCESS_KEY_ID", var("AWS_ACCESS_KEY_ID", "test")),
        (
            "AWS_SECRET_ACCESS_KEY",
            var("AWS_SECRET_ACCESS_KEY", "test"),
        ),
        ("AWS_SESSION_TOKEN", "bench".into()),
        ("AWS_ENDPOINT_URL", endpoint.clone()),
        ("TABLE_NAME", setup.table.clone()),
        ("CARTS_TABLE", setup.carts.clone()),
        ("EVENT_BUS_NAME", setup.bus.clone()),
        ("JWT_SECRET", JWT_SECRET.into()),
        ("CURSOR_SECRET", CURSOR_SECRET.into()),
        // The webhook samples are pointed at this program's receiver on 127.0.0.1.
        ("WEBHOOKS_ALLOW_PRIVATE_TARGETS", "true".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();

    let mut bench = Bench {
        api,
        signals: rx,
        runtime_api: runtime_api.clone(),
        bin_dir: args.bin_dir.clone(),
        log_dir,
        env,
        emulator,
        tables: vec![setup.table.clone(), setup.carts.clone()],
        extra_env: Vec::new(),
        wrap: args.wrap.clone(),
    };
    let events_dir = PathBuf::from("events");
    let mut ids = Ids {
        hook_url: format!("http://{runtime_api}/hook"),
        ..Ids::default()
    };
    let selected = |name: &str| {
        args.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|n| n == name))
    };

    // 1. One call per API operation, each in a fresh process, counting DynamoDB requests.
    eprintln!("bench: DynamoDB requests per API call (one fresh process per call)");
    let mut calls: Vec<(String, String, Run)> = Vec::new();
    let mut call = async |bench: &mut Bench, label: &str, binary: &str, event: Value| {
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
    let create = sample(&events_dir, "create-order", &ids)?;
    let mut no_key = create.clone();
    if let Some(headers) = no_key["headers"].as_object_mut() {
        headers.remove("idempotency-key");
    }
    let body: Value = serde_json::from_str(create["body"].as_str().unwrap_or("{}"))?;
    let mut nokey_body = body.clone();
    nokey_body["cart_id"] = json!("bench-nokey");
    let created = call(
        &mut bench,
        "create order (no Idempotency-Key)",
        "create-order",
        with_body(no_key, nokey_body),
    )
    .await?;
    ids.order = created["order_id"].as_str().unwrap_or_default().to_string();
    let mut cancel_body = body.clone();
    cancel_body["cart_id"] = json!("bench-cancel");
    let created = call(
        &mut bench,
        "create order (Idempotency-Key)",
        "create-order",
        with_key(with_body(create.clone(), cancel_body.clone()), &suffix),
    )
    .await?;
    ids.cancel_order = created["order_id"].as_str().unwrap_or_default().to_string();
    call(
        &mut bench,
        "create order (Idempotency-Key, replayed)",
        "create-order",
        with_key(with_body(create.clone(), cancel_body), &suffix),
    )
    .await?;
    if ids.order.is_empty() || ids.cancel_order.is_empty() {
        return Err("create-order did not create the bench's orders; see the log above".into());
    }
    call(
        &mut bench,
        "get order",
        "get-order",
        sample(&events_dir, "get-order", &ids)?,
    )
    .await?;
    call(
        &mut bench,
        "list orders (user, status)",
        "list-orders",
        sample(&events_dir, "list-orders", &ids)?,
    )
    .await?;
    let update = sample(&events_dir, "update-order-status", &ids)?;
    call(
        &mut bench,
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
        &mut bench,
        "change status confirmed -> shipped (fulfillment)",
        "update-order-status",
        update,
    )
    .await?;
    call(
        &mut bench,
        "cancel order (owner, pending)",
        "cancel-order",
        sample(&events_dir, "cancel-order", &ids)?,
    )
    .await?;
    call(
        &mut bench,
        "order history",
        "get-order-history",
        sample(&events_dir, "get-order-history", &ids)?,
    )
    .await?;
    let created = call(
        &mut bench,
        "create webhook",
        "create-webhook",
        sample(&events_dir, "create-webhook", &ids)?,
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
        call(
            &mut bench,
            label,
            binary,
            sample(&events_dir, binary, &ids)?,
        )
        .await?;
    }

    // 2. Cold start, peak memory and size of every binary. The runs go in rounds (every
    //    binary once per round, the floor first) so that whatever else the machine is
    //    doing weighs on every row alike, and the ratios to the floor stay meaningful.
    eprintln!(
        "bench: cold start over {} rounds of every binary (runtime API on {runtime_api})",
        args.runs
    );
    let plain = [BARE, SDK_FLOOR]
        .into_iter()
        .chain(FUNCTIONS)
        .map(|name| (name, name.to_string(), None));
    let variants = variants();
    let variants = variants
        .iter()
        .map(|(name, label, var, value)| (*name, label.clone(), Some((*var, value.as_str()))));
    let mut entries = Vec::new();
    for (name, label, setting) in plain.chain(variants) {
        if name != BARE && name != SDK_FLOOR && !selected(name) {
            continue;
        }
        let binary = bench.binary(name);
        let row = Row {
            name: label,
            cold_ms: Vec::new(),
            peak_kib: Vec::new(),
            binary_bytes: std::fs::metadata(&binary)?.len(),
            zip_bytes: zip_size(&binary, &work)?,
            answers: BTreeMap::new(),
        };
        entries.push((name, setting, row));
    }
    for _ in 0..args.runs {
        for (name, setting, row) in &mut entries {
            let name: &str = name;
            bench.extra_env = setting
                .map(|(k, v)| vec![(k.to_string(), v.to_string())])
                .unwrap_or_default();
            if name == "get-webhook" && !ids.webhook.is_empty() {
                prune_webhooks(&setup.table, &ids.webhook).await?;
            }
            let event = if name == BARE || name == SDK_FLOOR {
                json!({"bench": true})
            } else {
                sample(&events_dir, name, &ids)?
            };
            let run = bench.run(name, &event).await?;
            if name == "create-webhook" {
                let body = run.answer.body();
                if let Some(id) = body["webhook_id"].as_str().or(body["id"].as_str()) {
                    ids.webhook = id.to_string();
                }
            }
            row.cold_ms.push(run.cold_start.as_secs_f64() * 1000.0);
            row.peak_kib.extend(run.peak_kib);
            *row.answers.entry(run.answer.summary()).or_default() += 1;
        }
    }
    let mut rows = Vec::new();
    for (_, _, mut row) in entries {
        row.cold_ms.sort_by(f64::total_cmp);
        row.peak_kib.sort_unstable();
        eprintln!(
            "  {:<24} median {:>7.2} ms  peak {:>5.1} MiB  {}",
            row.name,
            median(&row.cold_ms),
            row.peak_kib.last().copied().unwrap_or(0) as f64 / 1024.0,
            answers(&row.answers)
        );
        rows.push(row);
    }

    let report = report(&args, &rows, &calls, &common::load_average());
    println!("\n{report}");
    if let Some(out) = &args.out {
        std::fs::write(out, &report)?;
        eprintln!("bench: wrote {}", out.display());
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// Extra rows: get-order under settings the plain rows leave out, to show what its cold
/// start is made of (see docs/bench.md).
/// - `SSL_CERT_FILE` = the system bundle: every HTTPS client then trusts the platform's
///   store (shared/src/adapters/tls.rs) and parses its ~150 roots at start, instead of the
///   Amazon roots (AWS SDK) and the compiled-in roots (reqwest) it uses by default.
/// - `JWT_JWKS_URL` (production token verification): the authenticator builds its HTTPS
///   client before the first poll; keys are only fetched on first use, and the bench's
///   HS256 token is refused before that (401).
fn variants() -> Vec<(&'static str, String, &'static str, String)> {
    let mut variants = Vec::new();
    let bundle = "/etc/ssl/certs/ca-certificates.crt";
    if Path::new(bundle).is_file() {
        variants.push((
            "get-order",
            "get-order + SSL_CERT_FILE=system bundle".to_string(),
            "SSL_CERT_FILE",
            bundle.to_string(),
        ));
    }
    variants.push((
        "get-order",
        "get-order + JWT_JWKS_URL".to_string(),
        "JWT_JWKS_URL",
        "https://jwks.invalid/.well-known/jwks.json".to_string(),
    ));
    variants
}

fn answers(answers: &BTreeMap<String, usize>) -> String {
    answers
        .iter()
        .map(|(a, n)| format!("{a} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn report(args: &Args, rows: &[Row], calls: &[(String, String, Run)], load: &str) -> String {
    use std::fmt::Write;
    let (cpus, model) = common::machine();
    let mut out = String::new();
    let floor_of = |name: &str| {
        rows.iter()
            .find(|r| r.name == name)
            .map(|r| median(&r.cold_ms))
    };
    let (floor, sdk_floor) = (floor_of(BARE), floor_of(SDK_FLOOR));
    let _ = writeln!(out, "# Benchmark figures\n");
    let _ = writeln!(
        out,
        "Measured {} on {cpus} CPUs ({model}), load average before the report {load}, with `{}`.",
        common::now_utc(),
        args.command
    );
    let _ = writeln!(
        out,
        "Release binaries built natively (`cargo build --release`, the workspace profile as is: \
         opt-level 3, fat LTO, 1 codegen unit, symbols stripped, unwinding panics — cargo-lambda \
         adds panic=abort for its builds, this does not). Cold start: spawn to the first \
         `GET /2018-06-01/runtime/invocation/next`, {} runs each in rounds (every binary once a round), SDK clients built. Peak: VmHWM \
         after one invocation of the sample event in `events/` (highest of the runs). Zip: the \
         binary as `bootstrap`, deflated (python zipfile). Rows \
         `get-order + …`: the same binary with one more setting, to show what its cold start \
         is made of (bench/src/main.rs, `variants`). `sdk-floor`: the bare Lambda plus the \
         shared SDK configuration and a DynamoDB client, built like the functions — what \
         any of them pays before its own code.\n",
        args.runs
    );
    let _ = writeln!(
        out,
        "| function | cold start median ms | min ms | max ms | × floor | × SDK floor | peak RSS MiB | binary MiB | zip MiB | answers |"
    );
    let _ = writeln!(
        out,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    );
    for row in rows {
        let median = median(&row.cold_ms);
        let _ = writeln!(
            out,
            "| {}{} | {:.2} | {:.2} | {:.2} | {} | {} | {:.1} | {:.2} | {:.2} | {} |",
            row.name,
            match row.name.as_str() {
                BARE => " (floor)",
                SDK_FLOOR => " (SDK floor)",
                _ => "",
            },
            median,
            row.cold_ms.first().copied().unwrap_or(f64::NAN),
            row.cold_ms.last().copied().unwrap_or(f64::NAN),
            floor.map_or("".into(), |f| format!("{:.2}", median / f)),
            sdk_floor.map_or("".into(), |f| format!("{:.2}", median / f)),
            row.peak_kib.last().copied().unwrap_or(0) as f64 / 1024.0,
            mib(row.binary_bytes),
            mib(row.zip_bytes),
            answers(&row.answers),
        );
    }
    let _ = writeln!(
        out,
        "\n## DynamoDB requests per API call\n\n\
         Counted at the emulator (scripts/emulator.py, `/_bench/requests`), one fresh process per \
         call; the HTTP status is the emulator's (400: a condition or transaction that did not \
         hold, as intended). ConsumedCapacity is not reported: the handlers do not ask for it \
         (no ReturnConsumedCapacity), and moto's figures are placeholders anyway (a fixed 0.5 \
         on every UpdateItem, fixed 0.5/1.0 on Get/Put/Query/Delete only when asked, none for \
         TransactWriteItems), not computed from item sizes.\n"
    );
    let _ = writeln!(
        out,
        "| API call | function | requests | operations (HTTP status) | answer |"
    );
    let _ = writeln!(out, "| --- | --- | ---: | --- | --- |");
    for (label, binary, run) in calls {
        let operations = run
            .dynamo
            .iter()
            .map(|r| format!("{} ({})", r.operation, r.status))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "| {label} | {binary} | {} | {operations} | {}{} |",
            run.dynamo.len(),
            run.answer.summary(),
            if run.answer.is_success() {
                ""
            } else {
                " (not a success)"
            },
        );
    }
    let _ = writeln!(out, "\n## Against the targets (issue 4, item 4)\n");
    let mut misses = Vec::new();
    // The `+` rows are analysis (see `variants`), not functions as deployed.
    for row in rows
        .iter()
        .filter(|r| r.name != BARE && r.name != SDK_FLOOR && !r.name.contains(" + "))
    {
        let ratio = floor.map(|f| median(&row.cold_ms) / f).unwrap_or(f64::NAN);
        if ratio.is_nan() || ratio > 1.5 {
            misses.push(format!(
                "{}: median cold start {:.2} × the bare Lambda's (target ≤ 1.5 ×)",
                row.name, ratio
            ));
        }
        let peak = row.peak_kib.last().copied().unwrap_or(0) as f64 / 1024.0;
        if peak >= 32.0 {
            misses.push(format!(
                "{}: peak {peak:.1} MiB (target < 32 MiB)",
                row.name
            ));
        }
    }
    for (label, _, run) in calls {
        let n = run.dynamo.iter().filter(|r| !r.cart_lookup).count();
        if n != 1 {
            misses.push(format!(
                "{label}: {n} DynamoDB requests besides the cart lookup (target 1)"
            ));
        }
    }
    if let (Some(bare), Some(sdk)) = (floor, sdk_floor) {
        let _ = writeln!(
            out,
            "The SDK floor (a bare Lambda that also builds the shared SDK configuration and a \
             DynamoDB client before its first poll, as every function must) starts in {sdk:.2} ms, \
             {:.2} × the bare Lambda's {bare:.2} ms: that much of the target is the AWS SDK's \
             before any of our code runs.\n",
            sdk / bare
        );
    }
    if misses.is_empty() {
        let _ = writeln!(out, "Every figure meets its target.");
    } else {
        for miss in &misses {
            let _ = writeln!(out, "- miss: {miss}");
        }
    }
    let _ = writeln!(
        out,
        "\n## Reproduce\n\n\
         ```sh\n\
         make bench                 # BENCH_RUNS=15 cold starts per binary; AWS_ENDPOINT_URL: use that emulator\n\
         ```\n\n\
         It builds the 14 functions and `bench/`'s two floors with one \
         `cargo build --release -p functions -p orders-bench --no-default-features --features sdk-floor --bins` (native, \
         not cross-compiled), starts scripts/emulator.py through scripts/with-emulator.sh unless \
         `AWS_ENDPOINT_URL` is set, provisions fresh tables from template.yaml, and runs \
         `bench/` (its source says how each figure is taken), which overwrites this file. The \
         figures depend on the machine and on its load: compare rows of one run, not runs."
    );
    out
}
