//! `WebhookSender` over reqwest: short timeouts, no redirects, no proxies, and every
//! address checked against the target policy, including each one DNS returns (the
//! check is in the resolver, so the address checked is the address connected to).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::RETRY_AFTER;
use reqwest::redirect::Policy;
use reqwest::{StatusCode, Url};

use crate::adapters::aws::describe;
use crate::domain::webhook::target::{Target, TargetPolicy, host, non_public};
use crate::ports::{Outgoing, Sent, WebhookSender};

/// A receiver should answer quickly and do its work later; a slow one must not hold
/// up the batch (Lambda's timeout) or the other receivers.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// `Retry-After` is honoured up to this long (SQS keeps a message hidden 12 h at most).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(6 * 60 * 60);

pub struct HttpWebhookSender {
    http: reqwest::Client,
    policy: TargetPolicy,
}

impl HttpWebhookSender {
    pub fn new(policy: TargetPolicy) -> Result<Self, String> {
        Self::with_timeout(policy, TIMEOUT)
    }

    /// The same sender with another total timeout (tests use a short one).
    pub fn with_timeout(policy: TargetPolicy, timeout: Duration) -> Result<Self, String> {
        let mut builder = super::tls::http_client_builder()
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            // A 3xx is a failure to fix in the subscription, not a hop to follow
            // (a redirect could also point inside the network).
            .redirect(Policy::none())
            // A proxy would resolve names itself, past the address check.
            .no_proxy()
            .user_agent(concat!("orders-webhooks/", env!("CARGO_PKG_VERSION")));
        if !policy.allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        let http = builder.build().map_err(|e| describe(&e))?;
        Ok(HttpWebhookSender { http, policy })
    }
}

#[async_trait]
impl WebhookSender for HttpWebhookSender {
    async fn send(&self, request: &Outgoing) -> Sent {
        let url = match Url::parse(&request.url) {
            Ok(url) => url,
            Err(e) => return Sent::Failed(format!("invalid URL: {e}")),
        };
        // An address in the URL is never resolved, so the resolver cannot check it.
        if let Some(Target::Ip(ip)) = host(&url)
            && let Err(why) = self.policy.check_ip(ip)
        {
            return Sent::Failed(format!("refused target: {why}"));
        }
        let mut post = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(request.body.clone());
        for (name, value) in &request.headers {
            post = post.header(*name, value);
        }
        match post.send().await {
            Ok(response) => Sent::Answered {
                status: response.status().as_u16(),
                retry_after: retry_after(&response),
            },
            Err(e) if e.is_timeout() => Sent::Failed("timed out waiting for the receiver".into()),
            // The error names the URL, whose path or query may hold the receiver's
            // token; it goes to the log and the delivery log, so it goes without.
            Err(e) => Sent::Failed(describe(&e.without_url())),
        }
    }
}

/// `Retry-After: <seconds>` on a 429 or 503 (an HTTP date is rare here and ignored).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    if !matches!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        return None;
    }
    let seconds: u64 = response
        .headers()
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

/// The system resolver, refusing names with any non-public address: a name that
/// resolves both ways is a rebinding attempt more often than a real receiver.
struct PublicOnly;

#[derive(Debug, thiserror::Error)]
#[error("refused target: {name} resolves to {ip}, {kind}")]
struct Refused {
    name: String,
    ip: std::net::IpAddr,
    kind: &'static str,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let name = name.as_str().to_string();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if let Some((ip, kind)) = addresses
                .iter()
                .find_map(|a| non_public(a.ip()).map(|kind| (a.ip(), kind)))
            {
                return Err(Box::new(Refused { name, ip, kind }) as _);
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}
