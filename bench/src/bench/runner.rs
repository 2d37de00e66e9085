//! Each binary runs as Lambda runs it: a fresh process, pointed by
//! `AWS_LAMBDA_RUNTIME_API` at a Lambda Runtime API that this module serves on
//! 127.0.0.1. Cold start = spawn to its first `GET /2018-06-01/runtime/invocation/next`
//! (our mains build their SDK clients before polling). That poll is answered with the
//! event given, the answer is recorded (first answer = spawn to that response: what the
//! first caller waits for, init included), then `warm` more invocations of the same
//! event are handed out, each timed from its poll's answer to its response, then the
//! last poll is awaited, `VmHWM` is read from `/proc/<pid>/status` and the process killed. The emulator's counters
//! (crate::emulator) give the DynamoDB requests it made meanwhile.

use std::convert::Infallible;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::sync::{Notify, mpsc};

use crate::Error;
use crate::emulator::Counters;

/// How long a process may take to poll, to answer, and to poll again.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// The fake Lambda Runtime API (and a webhook receiver on the same port).

enum Signal {
    Next(Instant),
    Response(Instant, Bytes),
    Error(Bytes),
    InitError(Bytes),
}

struct RuntimeApi {
    /// The events handed out by the next polls, one each; afterwards polls wait.
    pending: Mutex<std::collections::VecDeque<Bytes>>,
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
        let event = api.pending.lock().unwrap().pop_front();
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
        Signal::Response(at, body)
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
// Running one binary once.

/// Runs binaries one at a time against the fake Runtime API, counting the DynamoDB
/// requests each makes of the run's tables.
pub struct Runner {
    api: Arc<RuntimeApi>,
    signals: mpsc::UnboundedReceiver<Signal>,
    /// host:port of the fake Runtime API (and of the webhook receiver, at `/hook`).
    pub runtime_api: String,
    bin_dir: PathBuf,
    log_dir: PathBuf,
    /// The environment every binary gets (besides the Runtime API's variables).
    pub env: Vec<(String, String)>,
    /// None: the emulator's requests are not counted (`make invoke`).
    emulator: Option<Counters>,
    /// The orders and carts tables: requests that name neither are not counted.
    pub table: String,
    pub carts_table: String,
    /// Set for some rows only (see `coldstart::variants`).
    pub extra_env: Vec<(String, String)>,
    wrap: Vec<String>,
    /// Warm invocations after the first (the same event again).
    pub warm: usize,
}

/// A DynamoDB request a call made, as the emulator counted it.
pub struct DynamoRequest {
    pub operation: String,
    pub status: u64,
    /// The request reads the carts table (the cart lookup, which the target sets aside).
    pub cart_lookup: bool,
}

/// When a run's milestones came.
struct Timing {
    cold_start: Duration,
    first_answer: Duration,
    warm: Vec<Duration>,
}

pub enum Answer {
    /// The function's response document.
    Response(Value),
    Error(String),
}

pub struct Run {
    pub cold_start: Duration,
    /// Spawn to the first invocation's response.
    pub first_answer: Duration,
    /// The warm invocations' durations: event handed out to response.
    pub warm: Vec<Duration>,
    pub answer: Answer,
    /// VmHWM after the invocation, in KiB.
    pub peak_kib: Option<u64>,
    pub dynamo: Vec<DynamoRequest>,
}

impl Answer {
    /// A short description: the HTTP status (and error code), or the batch outcome.
    pub fn summary(&self) -> String {
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

    pub fn body(&self) -> Value {
        match self {
            Answer::Response(v) => v["body"]
                .as_str()
                .and_then(|b| serde_json::from_str(b).ok())
                .unwrap_or(Value::Null),
            Answer::Error(_) => Value::Null,
        }
    }

    pub fn is_success(&self) -> bool {
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

impl Runner {
    /// Serves the fake Runtime API on a free loopback port.
    pub async fn start(
        bin_dir: PathBuf,
        log_dir: PathBuf,
        emulator: Option<Counters>,
        table: String,
        carts_table: String,
        wrap: Vec<String>,
    ) -> Result<Runner, Error> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let runtime_api = listener.local_addr()?.to_string();
        let (tx, rx) = mpsc::unbounded_channel();
        let api = Arc::new(RuntimeApi {
            pending: Mutex::new(std::collections::VecDeque::new()),
            signals: tx,
            run_over: Notify::new(),
            hooks_received: Mutex::new(0),
        });
        tokio::spawn(serve_runtime_api(Arc::clone(&api), listener));
        Ok(Runner {
            api,
            signals: rx,
            runtime_api,
            bin_dir,
            log_dir,
            env: Vec::new(),
            emulator,
            table,
            carts_table,
            extra_env: Vec::new(),
            wrap,
            warm: 0,
        })
    }

    pub fn binary(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    /// Starts `name`, hands it `event` at its first poll, waits for its answer and its
    /// next poll, reads its peak memory, and stops it.
    pub async fn run(&mut self, name: &str, event: &Value) -> Result<Run, Error> {
        while self.signals.try_recv().is_ok() {}
        let event = Bytes::from(serde_json::to_vec(event)?);
        *self.api.pending.lock().unwrap() = std::iter::repeat_n(event, 1 + self.warm).collect();
        if let Some(emulator) = &self.emulator {
            emulator.reset().await?;
        }
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
            // What the font layer (template.yaml, PdfFontLayer) puts at /opt in Lambda.
            .env("PDF_FONT_PATH", orders::adapters::invoice_pdf::SOURCE_FONT)
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
        self.api.pending.lock().unwrap().clear();
        let (timing, answer, peak_kib) = result.map_err(|e| {
            format!(
                "{name}: {e} (its log: {})",
                self.log_dir.join(format!("{name}.log")).display()
            )
        })?;
        let requests = match &self.emulator {
            Some(emulator) => emulator.requests().await?,
            None => Vec::new(),
        };
        let dynamo = requests
            .into_iter()
            .filter(|r| {
                r.tables
                    .iter()
                    .any(|t| *t == self.table || *t == self.carts_table)
            })
            .map(|r| DynamoRequest {
                cart_lookup: r.tables.contains(&self.carts_table),
                operation: r.operation,
                status: r.status,
            })
            .collect();
        Ok(Run {
            cold_start: timing.cold_start,
            first_answer: timing.first_answer,
            warm: timing.warm,
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
    ) -> Result<(Timing, Answer, Option<u64>), Error> {
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        let mut cold_start = None;
        let mut first_answer = None;
        let mut answer = None;
        let mut handed_out = None;
        let mut warm = Vec::new();
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
                            _ => "next poll",
                        }
                    ).into());
                }
            };
            match signal {
                Signal::Next(at) => {
                    if cold_start.is_none() {
                        cold_start = Some(at.duration_since(started));
                    } else if answer.is_none() {
                        return Err("polled again without answering".into());
                    }
                    if first_answer.is_some() && warm.len() == self.warm {
                        let timing = Timing {
                            cold_start: cold_start.unwrap_or_default(),
                            first_answer: first_answer.unwrap_or_default(),
                            warm,
                        };
                        let answer = answer.ok_or("no answer")?;
                        return Ok((timing, answer, peak_kib(pid)));
                    }
                    handed_out = Some(at);
                }
                Signal::Response(at, body) => {
                    match first_answer {
                        None => first_answer = Some(at.duration_since(started)),
                        Some(_) => warm.push(at.duration_since(handed_out.unwrap_or(at))),
                    }
                    // The first invocation's answer is the one reported.
                    if answer.is_none() {
                        answer = Some(Answer::Response(
                            serde_json::from_slice(&body).unwrap_or(Value::Null),
                        ));
                    }
                }
                Signal::Error(body) => {
                    if first_answer.is_none() {
                        first_answer = Some(started.elapsed());
                    } else {
                        warm.push(handed_out.map(|h| h.elapsed()).unwrap_or_default());
                    }
                    if answer.is_none() {
                        answer = Some(Answer::Error(String::from_utf8_lossy(&body).into_owned()));
                    }
                }
                Signal::InitError(body) => {
                    return Err(format!("init error: {}", String::from_utf8_lossy(&body)).into());
                }
            }
        }
    }
}
