//! Provider keys (Stripe, Shippo, SendGrid, Twilio) read from AWS Secrets Manager by
//! ARN, so that a function's environment holds the ARN and never the key.
//!
//! A key is read once and kept for the life of the instance. The read starts at init
//! ([`ProviderKey::read_in_background`]) and is waited for by the first call that
//! needs the key, so it runs while the runtime polls for the first event and the
//! handler does its own work (a DynamoDB read, a cart fetch) instead of before them;
//! a read that failed is not kept: the next call that needs the key reads again.
//! When the provider answers 401 with the key, it may have been rotated:
//! [`send_with_key`] reads the secret again, once, and retries the request once with
//! what it found. Concurrent reads share one ([`KeyState::reading`]).
//!
//! A secret's value is its `SecretString`, trimmed: the key itself, not JSON.

use std::sync::{Arc, Mutex as StdMutex, RwLock};

use aws_sdk_secretsmanager::Client;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::adapters::aws::describe;

/// What a key must look like to be used (a Stripe key starts `sk_` or `rk_`).
pub type KeyCheck = fn(&str) -> Result<(), String>;

/// Any value will do.
pub fn any_key(_: &str) -> Result<(), String> {
    Ok(())
}

/// A provider's key as the HTTP adapters use it. Clones share one key: a renewal seen
/// by one is seen by all.
#[derive(Clone)]
pub struct ProviderKey(Arc<KeyState>);

struct KeyState {
    /// The key as last read; `None` until the first read has come back good.
    current: RwLock<Option<Arc<str>>>,
    /// Where it is read from; `None` for a key given as a plain value (local runs).
    source: Option<SecretRef>,
    check: KeyCheck,
    /// The read started at init, until a call takes it.
    started: StdMutex<Option<JoinHandle<Result<String, String>>>>,
    /// Serialises reads, so that a burst of first calls or of 401s costs one.
    reading: Mutex<()>,
}

/// The key could not be had: the secret's ARN and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the key in {arn} cannot be used: {why}")]
pub struct KeyUnavailable {
    pub arn: String,
    pub why: String,
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
        ProviderKey::with_state(Some(Arc::from(value.into())), None, any_key, None)
    }

    /// Reads the secret now and keeps it: for a key every request needs first (a
    /// webhook's signing secret), where there is nothing to overlap the read with.
    pub async fn read(source: SecretRef, check: KeyCheck) -> Result<ProviderKey, String> {
        let value = source.read().await?;
        check(&value)?;
        Ok(ProviderKey::with_state(
            Some(Arc::from(value)),
            Some(source),
            check,
            None,
        ))
    }

    /// Starts reading the secret on its own task and returns at once; the first call
    /// that needs the key waits for that read. Needs a Tokio runtime.
    pub fn read_in_background(source: SecretRef, check: KeyCheck) -> ProviderKey {
        let reader = source.clone();
        let started = tokio::spawn(async move { reader.read().await });
        ProviderKey::with_state(None, Some(source), check, Some(started))
    }

    fn with_state(
        current: Option<Arc<str>>,
        source: Option<SecretRef>,
        check: KeyCheck,
        started: Option<JoinHandle<Result<String, String>>>,
    ) -> ProviderKey {
        ProviderKey(Arc::new(KeyState {
            current: RwLock::new(current),
            source,
            check,
            started: StdMutex::new(started),
            reading: Mutex::new(()),
        }))
    }

    /// The key if it has been read (always, for a fixed key or one read at once).
    pub fn known(&self) -> Option<Arc<str>> {
        self.0
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn keep(&self, value: Arc<str>) {
        *self
            .0
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(value);
    }

    /// The key, waiting for its first read if it has not come back yet; a failed or
    /// refused read is tried again by the next call.
    pub async fn current(&self) -> Result<Arc<str>, KeyUnavailable> {
        if let Some(key) = self.known() {
            return Ok(key);
        }
        let source = self.0.source.as_ref().ok_or_else(|| KeyUnavailable {
            arn: String::new(),
            why: "no key and nowhere to read it".into(),
        })?;
        let _one_at_a_time = self.0.reading.lock().await;
        if let Some(key) = self.known() {
            return Ok(key);
        }
        let started = self
            .0
            .started
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let read = match started {
            Some(read) => read
                .await
                .unwrap_or_else(|e| Err(format!("the read started at init ended: {e}"))),
            None => source.read().await,
        };
        let value = read
            .and_then(|value| (self.0.check)(&value).map(|()| value))
            .map_err(|why| {
                tracing::error!(secret = %source.arn, error = %why, "the provider key cannot be used");
                KeyUnavailable {
                    arn: source.arn.clone(),
                    why,
                }
            })?;
        let value: Arc<str> = Arc::from(value);
        self.keep(value.clone());
        Ok(value)
    }

    /// The provider refused `used`: the key to retry with, read again from Secrets
    /// Manager unless another call already did; `None` when there is nothing newer
    /// (a fixed key, an unreadable secret, or the same value as before).
    pub async fn renew(&self, used: &str) -> Option<Arc<str>> {
        let source = self.0.source.as_ref()?;
        let _one_at_a_time = self.0.reading.lock().await;
        if let Some(now) = self.known().filter(|now| &**now != used) {
            return Some(now);
        }
        match source.read().await {
            Ok(fresh) if fresh != used => match (self.0.check)(&fresh) {
                Ok(()) => {
                    tracing::info!(secret = %source.arn, "provider key renewed after a 401");
                    let fresh: Arc<str> = Arc::from(fresh);
                    self.keep(fresh.clone());
                    Some(fresh)
                }
                Err(why) => {
                    tracing::error!(secret = %source.arn, error = %why, "the secret's new value cannot be used");
                    None
                }
            },
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

/// Why [`send_with_key`] has no answer.
#[derive(Debug, thiserror::Error)]
pub enum KeyedSendError {
    #[error(transparent)]
    Key(#[from] KeyUnavailable),
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

/// Sends the request `build` makes with the current key; on 401, renews the key and
/// sends it once more with the renewed one. Other answers are returned as they are.
pub async fn send_with_key<F>(
    key: &ProviderKey,
    build: F,
) -> Result<reqwest::Response, KeyedSendError>
where
    F: Fn(&str) -> reqwest::RequestBuilder,
{
    let used = key.current().await?;
    let response = build(&used).send().await?;
    if response.status() != reqwest::StatusCode::UNAUTHORIZED {
        return Ok(response);
    }
    match key.renew(&used).await {
        Some(fresh) => Ok(build(&fresh).send().await?),
        None => Ok(response),
    }
}
