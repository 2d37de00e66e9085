//! The issuer's key set (JWKS): fetched lazily, cached by `kid` for at most an hour (less
//! when the answer's `Cache-Control` says so), refetched at most once per unknown `kid`
//! and never more often than the rate limit allows.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

use super::{AuthError, VerifyingKey, invalid};
use crate::adapters::http::body::{BodyError, read_limited};

/// A slow issuer must not eat the Lambda's whole time budget.
const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// Minimum gap between JWKS fetches after a successful one (unknown-`kid` refetches).
const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Minimum gap before retrying after a failed fetch; shorter, so a blip heals quickly.
const JWKS_RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);
/// How long a fetched key set is believed: a key the issuer withdraws stops verifying
/// tokens within this time, even in an instance that never sees an unknown `kid`.
const JWKS_MAX_AGE: Duration = Duration::from_secs(60 * 60);
/// Largest key set we read. Cognito's is about 1 KiB; the cap keeps a misbehaving or
/// hostile endpoint from filling a 128 MB Lambda's memory.
pub(super) const MAX_JWKS_BYTES: usize = 64 * 1024;

fn unknown_kid() -> AuthError {
    invalid("unknown key id")
}

/// The issuer's public keys, fetched lazily and cached by `kid`.
pub(super) struct JwksCache {
    pub(super) url: String,
    /// Built once; kept as a Result so a construction failure surfaces as KeysUnavailable.
    client: Result<reqwest::Client, String>,
    keys: RwLock<HashMap<String, Arc<VerifyingKey>>>,
    /// When the cached set goes stale: the fetch's time plus its max age.
    stale_at: RwLock<Option<Instant>>,
    /// Held for the whole fetch, so concurrent cache misses share one request.
    last_fetch: Mutex<Option<FetchOutcome>>,
    /// [`JWKS_REFETCH_INTERVAL`]; a field so tests need not wait 30 s.
    pub(super) refetch_interval: Duration,
    /// [`JWKS_MAX_AGE`]; a field so tests need not wait an hour.
    pub(super) max_age: Duration,
}

struct FetchOutcome {
    at: Instant,
    /// `Some` if the fetch failed, with the reason reported to callers until the next retry.
    error: Option<String>,
}

impl JwksCache {
    pub(super) fn new(url: String) -> Self {
        let client = crate::adapters::http::tls::http_client_builder()
            .timeout(JWKS_FETCH_TIMEOUT)
            // Keys come from the configured URL only: a redirect could send us to a key set
            // the operator never chose (and a 3xx is then reported like any other status).
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build HTTP client: {e}"));
        Self {
            url,
            client,
            keys: RwLock::default(),
            stale_at: RwLock::default(),
            last_fetch: Mutex::default(),
            refetch_interval: JWKS_REFETCH_INTERVAL,
            max_age: JWKS_MAX_AGE,
        }
    }

    /// The key for `kid`, from the cache or from at most one (rate-limited) fetch.
    pub(super) async fn key(&self, kid: &str) -> Result<Arc<VerifyingKey>, AuthError> {
        if let Some(key) = self.cached_fresh(kid).await {
            return Ok(key);
        }
        let mut last = self.last_fetch.lock().await;
        // Another request may have refreshed the set while we waited for the lock.
        if let Some(key) = self.cached_fresh(kid).await {
            return Ok(key);
        }
        if let Some(prev) = last.as_ref() {
            let pause = match prev.error {
                Some(_) => self.refetch_interval.min(JWKS_RETRY_AFTER_FAILURE),
                None => self.refetch_interval,
            };
            if prev.at.elapsed() < pause {
                // Fetched (or tried) a moment ago: the set as it was then still serves.
                if let Some(key) = self.cached(kid).await {
                    return Ok(key);
                }
                return Err(match &prev.error {
                    Some(reason) => AuthError::KeysUnavailable(reason.clone()),
                    None => unknown_kid(),
                });
            }
        }

        let fetched = self.fetch().await;
        *last = Some(FetchOutcome {
            at: Instant::now(),
            error: fetched.as_ref().err().cloned(),
        });
        let (fresh, max_age) = match fetched {
            Ok(fetched) => fetched,
            // On failure (including a set with no usable key) the previous keys stay
            // cached: an issuer that cannot be reached has withdrawn nothing, and known
            // kids keep working until it answers again.
            Err(why) => {
                return match self.cached(kid).await {
                    Some(key) => {
                        tracing::warn!(url = %self.url, %why, "JWKS refetch failed; serving the stale key set");
                        Ok(key)
                    }
                    None => Err(AuthError::KeysUnavailable(why)),
                };
            }
        };
        let found = fresh.get(kid).cloned();
        // Replace rather than merge, so keys the issuer has withdrawn stop working.
        *self.keys.write().await = fresh;
        *self.stale_at.write().await = Some(Instant::now() + max_age.min(self.max_age));
        found.ok_or_else(unknown_kid)
    }

    /// The cached key for `kid` while the set is within its max age.
    async fn cached_fresh(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        let stale_at = (*self.stale_at.read().await)?;
        if Instant::now() >= stale_at {
            return None;
        }
        self.cached(kid).await
    }

    async fn cached(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        self.keys.read().await.get(kid).cloned()
    }

    /// Downloads and parses the key set, with how long its answer lets it be cached.
    /// The error string is shown to callers, so it stays short; the full cause goes to
    /// the log.
    async fn fetch(&self) -> Result<(HashMap<String, Arc<VerifyingKey>>, Duration), String> {
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let failed = |what: &str, err: reqwest::Error| {
            tracing::warn!(url = %self.url, error = ?err, "JWKS {what} failed");
            format!("JWKS {what} failed")
        };
        let response = client
            .get(&self.url)
            .send()
            .await
            .map_err(|e| failed("request", e))?;
        let status = response.status();
        if !status.is_success() {
            tracing::warn!(url = %self.url, %status, "JWKS endpoint answered with an error");
            return Err(format!("JWKS endpoint answered HTTP {}", status.as_u16()));
        }
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(cache_max_age)
            .unwrap_or(JWKS_MAX_AGE);
        let body = read_limited(response, MAX_JWKS_BYTES)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge { .. } => {
                    tracing::warn!(url = %self.url, limit = MAX_JWKS_BYTES, "JWKS response too large");
                    "JWKS response too large".to_owned()
                }
                BodyError::Read(why) => {
                    tracing::warn!(url = %self.url, error = %why, "JWKS download failed");
                    "JWKS download failed".to_owned()
                }
            })?;
        let keys = parse_jwks(&body)?;
        tracing::debug!(url = %self.url, keys = keys.len(), ?max_age, "JWKS loaded");
        Ok((keys, max_age))
    }
}

/// How long `Cache-Control` lets an answer be kept: its `max-age`, none for `no-store`
/// or `no-cache`; `None` when it says neither.
fn cache_max_age(header: &str) -> Option<Duration> {
    header.split(',').map(str::trim).find_map(|directive| {
        let directive = directive.to_ascii_lowercase();
        if directive == "no-store" || directive == "no-cache" {
            return Some(Duration::ZERO);
        }
        let seconds = directive.strip_prefix("max-age=")?;
        seconds
            .trim_matches('"')
            .parse()
            .ok()
            .map(Duration::from_secs)
    })
}

/// Keeps the usable keys of a JWK set: signing keys with a `kid` that are RSA (→ RS256) or
/// EC P-256 (→ ES256), and whose declared `alg`, if any, agrees. Everything else (HMAC `oct`
/// keys above all, encryption keys, other curves or algorithms, entries we cannot parse) is
/// skipped rather than failing the whole set, so one exotic key cannot lock everybody out.
/// A set with no usable key at all is an error: replacing the cache with it would lock
/// everybody out (an issuer mid-deployment, a proxy's empty answer).
fn parse_jwks(body: &[u8]) -> Result<HashMap<String, Arc<VerifyingKey>>, String> {
    #[derive(Deserialize)]
    struct RawSet {
        keys: Vec<serde_json::Value>,
    }
    let set: RawSet =
        serde_json::from_slice(body).map_err(|_| "JWKS response is not a JWK set".to_owned())?;
    let usable = set.keys.into_iter().filter_map(|raw| {
        let jwk: Jwk = serde_json::from_value(raw).ok()?;
        let kid = jwk.common.key_id.clone()?;
        let alg = signing_algorithm(&jwk)?;
        let key = DecodingKey::from_jwk(&jwk).ok()?;
        Some((kid, Arc::new(VerifyingKey { alg, key })))
    });
    let keys: HashMap<_, _> = usable.collect();
    if keys.is_empty() {
        return Err("JWKS has no usable signing key".to_owned());
    }
    Ok(keys)
}

/// The one algorithm a JWK may verify, implied by its key type and checked against its `alg`.
fn signing_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return None;
    }
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        _ => return None,
    };
    match jwk.common.key_algorithm {
        Some(declared) if declared != KeyAlgorithm::from(implied) => None,
        _ => Some(implied),
    }
}
