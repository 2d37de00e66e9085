//! Provider keys (Stripe, Shippo, SendGrid, Twilio) read from AWS Secrets Manager by
//! ARN, so that a function's environment holds the ARN and never the key.
//!
//! Each key is read once, at init, and kept for the life of the instance. When the
//! provider answers 401 with it, the key may have been rotated: [`send_with_key`] reads
//! the secret again, once, and retries the request once with what it found. Concurrent
//! 401s share one read ([`ProviderKey::renew`] holds a lock and checks whether another
//! call has already renewed).
//!
//! A secret's value is its `SecretString`, trimmed: the key itself, not JSON.

use std::sync::{Arc, RwLock};

use aws_sdk_secretsmanager::Client;
use tokio::sync::Mutex;

use crate::adapters::aws::describe;

/// A provider's key as the HTTP adapters use it. Clones share one key: a renewal seen
/// by one is seen by all.
#[derive(Clone)]
pub struct ProviderKey(Arc<KeyState>);

struct KeyState {
    current: RwLock<Arc<str>>,
    /// Where it was read from; `None` for a key given as a plain value (local runs).
    source: Option<SecretRef>,
    /// Serialises renewals, so that a burst of 401s costs one read.
    renewing: Mutex<()>,
}

/// One secret of Secrets Manager, by ARN.
#[derive(Clone)]
pub struct SecretRef {
    client: Client,
    arn: String,
}

impl SecretRef {
    pub fn new(client: Client, arn: impl Into<String>) -> SecretRef {
        SecretRef {
            client,
            arn: arn.into(),
        }
    }

    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// One `GetSecretValue` of the current version.
    pub async fn read(&self) -> Result<String, String> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(&self.arn)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        output
            .secret_string()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or_else(|| format!("{} holds no SecretString", self.arn))
    }
}

impl ProviderKey {
    /// A key given as a value: nothing to read again.
    pub fn fixed(value: impl Into<String>) -> ProviderKey {
        ProviderKey(Arc::new(KeyState {
            current: RwLock::new(Arc::from(value.into())),
            source: None,
            renewing: Mutex::new(()),
        }))
    }

    /// Reads the secret (once) and keeps it.
    pub async fn read(source: SecretRef) -> Result<ProviderKey, String> {
        let value = source.read().await?;
        Ok(ProviderKey(Arc::new(KeyState {
            current: RwLock::new(Arc::from(value)),
            source: Some(source),
            renewing: Mutex::new(()),
        })))
    }

    pub fn current(&self) -> Arc<str> {
        self.0
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The provider refused `used`: the key to retry with, read again from Secrets
    /// Manager unless another call already did; `None` when there is nothing newer
    /// (a fixed key, an unreadable secret, or the same value as before).
    pub async fn renew(&self, used: &str) -> Option<Arc<str>> {
        let source = self.0.source.as_ref()?;
        let _one_at_a_time = self.0.renewing.lock().await;
        let now = self.current();
        if &*now != used {
            return Some(now);
        }
        match source.read().await {
            Ok(fresh) if fresh != used => {
                tracing::info!(secret = %source.arn, "provider key renewed after a 401");
                let fresh: Arc<str> = Arc::from(fresh);
                *self
                    .0
                    .current
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh.clone();
                Some(fresh)
            }
            Ok(_) => {
                tracing::warn!(secret = %source.arn, "the provider refuses the key and the secret still holds it");
                None
            }
            Err(why) => {
                tracing::warn!(secret = %source.arn, error = %why, "the secret could not be read again");
                None
            }
        }
    }
}

/// Never the key itself in a log line.
impl std::fmt::Debug for ProviderKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0.source {
            Some(source) => write!(f, "ProviderKey({})", source.arn),
            None => f.write_str("ProviderKey(fixed)"),
        }
    }
}

/// A key given as a value (local runs, tests).
impl From<String> for ProviderKey {
    fn from(value: String) -> ProviderKey {
        ProviderKey::fixed(value)
    }
}

impl From<&str> for ProviderKey {
    fn from(value: &str) -> ProviderKey {
        ProviderKey::fixed(value)
    }
}

/// Sends the request `build` makes with the current key; on 401, renews the key and
/// sends it once more with the renewed one. Other answers are returned as they are.
pub async fn send_with_key<F>(
    key: &ProviderKey,
    build: F,
) -> Result<reqwest::Response, reqwest::Error>
where
    F: Fn(&str) -> reqwest::RequestBuilder,
{
    let used = key.current();
    let response = build(&used).send().await?;
    if response.status() != reqwest::StatusCode::UNAUTHORIZED {
        return Ok(response);
    }
    match key.renew(&used).await {
        Some(fresh) => build(&fresh).send().await,
        None => Ok(response),
    }
}
