//! Webhook receivers on 127.0.0.1: a healthy one that answers 204 at once and records
//! every delivery, and one that accepts the connection and never answers.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use orders::domain::webhook::signature::{Secret, verify};
use tokio::net::TcpListener;

use crate::Error;

/// One delivery the healthy receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `webhook-id`: the event's id.
    pub id: String,
    pub arrived: SystemTime,
    /// The event's `occurred_at` (RFC 3339), from the body.
    pub occurred_at: Option<String>,
    /// The signature verified with the subscription's secret.
    pub signed: bool,
}

pub struct Healthy {
    pub url: String,
    secret: Arc<OnceLock<Secret>>,
    log: Arc<Mutex<Vec<Delivery>>>,
}

impl Healthy {
    pub async fn start() -> Result<Healthy, Error> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hooks/orders", listener.local_addr()?);
        let secret: Arc<OnceLock<Secret>> = Arc::new(OnceLock::new());
        let log = Arc::new(Mutex::new(Vec::new()));
        let (secret_, log_) = (Arc::clone(&secret), Arc::clone(&log));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (secret, log) = (Arc::clone(&secret_), Arc::clone(&log_));
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let (secret, log) = (Arc::clone(&secret), Arc::clone(&log));
                        async move { Ok::<_, Infallible>(receive(request, &secret, &log).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Healthy { url, secret, log })
    }

    /// The secret the subscription got, to verify what arrives from now on.
    pub fn set_secret(&self, secret: &str) -> Result<(), Error> {
        let secret = Secret::parse(secret).map_err(|e| format!("webhook secret: {e:?}"))?;
        let _ = self.secret.set(secret);
        Ok(())
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.log.lock().unwrap().clone()
    }
}

async fn receive(
    request: Request<Incoming>,
    secret: &OnceLock<Secret>,
    log: &Mutex<Vec<Delivery>>,
) -> Response<Full<Bytes>> {
    let arrived = SystemTime::now();
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let id = header("webhook-id");
    let signed = match (secret.get(), header("webhook-timestamp").parse::<i64>()) {
        (Some(secret), Ok(timestamp)) => {
            verify(secret, &id, timestamp, &body, &header("webhook-signature"))
        }
        _ => false,
    };
    let payload: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    log.lock().unwrap().push(Delivery {
        id,
        arrived,
        occurred_at: payload["data"]["occurred_at"].as_str().map(str::to_string),
        signed,
    });
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// Accepts connections and holds them open without reading or answering: a receiver
/// that hangs. Dropping it closes them all.
pub struct Hanging {
    pub url: String,
    connections: Arc<Mutex<Vec<tokio::net::TcpStream>>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Hanging {
    pub async fn start() -> Result<Hanging, Error> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hooks/hang", listener.local_addr()?);
        let connections = Arc::new(Mutex::new(Vec::new()));
        let held = Arc::clone(&connections);
        let accepting = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                held.lock().unwrap().push(stream);
            }
        });
        Ok(Hanging {
            url,
            connections,
            accepting,
        })
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.lock().unwrap().len()
    }
}

impl Drop for Hanging {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// The webhook subscriptions API, as an admin calls it.
pub struct Subscriptions {
    http: reqwest::Client,
    api: String,
    token: String,
}

/// A created subscription.
pub struct Subscription {
    pub id: String,
    pub secret: String,
    /// Its `created_at`: it gets the events that occurred from then on.
    pub created_at: Option<SystemTime>,
}

impl Subscriptions {
    pub fn new(api: &str) -> Subscriptions {
        Subscriptions {
            http: reqwest::Client::new(),
            api: api.to_string(),
            token: orders_tests::token("admin", orders_tests::ADMIN),
        }
    }

    /// Subscribes `url` to every event.
    pub async fn subscribe(&self, url: &str, description: &str) -> Result<Subscription, Error> {
        let body = serde_json::json!({ "url": url, "events": ["*"], "description": description });
        let response = self
            .http
            .post(format!("{}/api/webhooks", self.api))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await?;
        let status = response.status();
        let created: serde_json::Value = serde_json::from_slice(&response.bytes().await?)?;
        if status != reqwest::StatusCode::CREATED {
            return Err(format!("subscribing {url}: {status} {created}").into());
        }
        let field = |name: &str| created[name].as_str().unwrap_or_default().to_string();
        Ok(Subscription {
            id: field("id"),
            secret: field("secret"),
            created_at: super::checks::system_time(&field("created_at")),
        })
    }

    /// Every delivery attempt recorded for `id`, following `next_cursor`.
    pub async fn attempts(&self, id: &str) -> Result<Vec<serde_json::Value>, Error> {
        let mut attempts = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = reqwest::Url::parse(&format!(
                "{}/api/webhooks/{id}/deliveries?limit=100",
                self.api
            ))?;
            if let Some(cursor) = &cursor {
                url.query_pairs_mut().append_pair("cursor", cursor);
            }
            let response = self.http.get(url).bearer_auth(&self.token).send().await?;
            let status = response.status();
            let page: serde_json::Value = serde_json::from_slice(&response.bytes().await?)?;
            if !status.is_success() {
                return Err(format!("deliveries of {id}: {status} {page}").into());
            }
            attempts.extend(page["deliveries"].as_array().cloned().unwrap_or_default());
            cursor = page["next_cursor"].as_str().map(str::to_string);
            if cursor.is_none() {
                return Ok(attempts);
            }
        }
    }

    pub async fn unsubscribe(&self, id: &str) -> Result<(), Error> {
        let response = self
            .http
            .delete(format!("{}/api/webhooks/{id}", self.api))
            .bearer_auth(&self.token)
            .send()
            .await?;
        if response.status() != reqwest::StatusCode::NO_CONTENT {
            return Err(format!("deleting webhook {id}: {}", response.status()).into());
        }
        Ok(())
    }
}
