//! Bearer-token authentication (brief §4).
//!
//! Every request carries `Authorization: Bearer <JWT>`. API Gateway's JWT authorizer checks it
//! first; we verify it again here (defence in depth) and turn it into a [`Principal`].
//!
//! Two key sources, chosen once at start-up:
//! - **JWKS** (`JWT_JWKS_URL`, production): RS256 / ES256 public keys fetched lazily from the
//!   issuer, cached in memory by `kid`. An unknown `kid` causes at most one refetch, and
//!   refetches are rate-limited so a flood of made-up `kid`s cannot hammer the issuer.
//! - **Secret** (`JWT_SECRET`, local and tests): HS256 only.
//!
//! If both are configured the JWKS wins and HS256 is not accepted at all, so a token "signed"
//! with a public key as an HMAC secret can never pass (HS/RS confusion).
//!
//! Rules: the algorithm is pinned by the key, never chosen by the token (`none` is never
//! accepted); `exp` and a non-empty `sub` are required; `nbf` is honoured; `exp`/`nbf` allow
//! [`CLOCK_LEEWAY_SECS`] of clock skew; `iss` / `aud` are required and checked when
//! `JWT_ISSUER` / `JWT_AUDIENCE` are set (an `aud` claim is accepted as-is when no audience is
//! configured, as Cognito access tokens carry none). Header fields that point at keys (`jku`,
//! `jwk`, `x5u`) are ignored: keys only ever come from the configured source.
//!
//! A header with another scheme (e.g. `Basic …`) is treated as [`AuthError::Missing`]: it carries
//! no bearer token, and RFC 6750 §3.1 answers that case without an error code.
//!
//! Layout: this module holds the [`Authenticator`], its errors and the checks every token
//! goes through; [`claims`] turns verified claims into a [`Principal`]; [`hs256`] holds the
//! shared-secret keys and dev tokens; [`jwks`] the issuer's key set, fetched and cached.

mod claims;
mod hs256;
mod jwks;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Once;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::domain::Principal;
pub use claims::{SCOPE_ADMIN, SCOPE_FULFILL};
pub use hs256::{DEV_JWT_SECRET, issue_hs256_token};

use claims::Claims;
use hs256::MIN_SECRET_LEN;
use jwks::JwksCache;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const CLOCK_LEEWAY_SECS: u64 = 30;

const ENV_JWKS_URL: &str = "JWT_JWKS_URL";
const ENV_SECRET: &str = "JWT_SECRET";
const ENV_ISSUER: &str = "JWT_ISSUER";
const ENV_AUDIENCE: &str = "JWT_AUDIENCE";

/// Why a request could not be authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No bearer token in the request → 401.
    #[error("missing bearer token")]
    Missing,
    /// The token was rejected → 401. The detail is safe to show (never a secret or key).
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The JWKS endpoint could not be read, so the token cannot be checked → 503.
    #[error("signing keys unavailable: {0}")]
    KeysUnavailable(String),
}

/// Start-up configuration problems (see [`Authenticator::from_env`]).
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    /// Neither `JWT_JWKS_URL` nor `JWT_SECRET` is set.
    #[error(
        "no token verification configured: set JWT_JWKS_URL (production) or JWT_SECRET (local/test)"
    )]
    NotConfigured,
    /// `JWT_JWKS_URL` is not an http(s) URL.
    #[error("JWT_JWKS_URL must be an http:// or https:// URL")]
    InvalidJwksUrl,
    /// `JWT_SECRET` is shorter than 32 bytes.
    #[error("JWT_SECRET must be at least {MIN_SECRET_LEN} bytes (HS256 needs a 256-bit key)")]
    WeakSecret,
}

/// Verifies bearer tokens. Send + Sync; build once and share (e.g. in an `Arc`).
pub struct Authenticator {
    keys: KeySource,
    issuer: Option<String>,
    audience: Option<String>,
}

enum KeySource {
    Secret(VerifyingKey),
    Jwks(JwksCache),
}

/// A public key or secret together with the one algorithm it may be used with.
struct VerifyingKey {
    alg: Algorithm,
    key: DecodingKey,
}

impl Authenticator {
    /// `JWT_JWKS_URL` (RS256/ES256 keys from a JWKS, production) or `JWT_SECRET` (HS256,
    /// local/test, at least 32 bytes); `JWT_ISSUER` / `JWT_AUDIENCE` checked when set. If both
    /// URL and secret are set, the JWKS wins and HS256 is NOT accepted. Empty values count as unset.
    pub fn from_env() -> Result<Self, AuthConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, AuthConfigError> {
        let var = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut auth = if let Some(url) = var(ENV_JWKS_URL) {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(AuthConfigError::InvalidJwksUrl);
            }
            Self::jwks(url)
        } else if let Some(secret) = var(ENV_SECRET) {
            if secret.len() < MIN_SECRET_LEN {
                return Err(AuthConfigError::WeakSecret);
            }
            Self::hs256(secret.as_bytes())
        } else {
            return Err(AuthConfigError::NotConfigured);
        };
        if let Some(iss) = var(ENV_ISSUER) {
            auth = auth.with_issuer(iss);
        }
        if let Some(aud) = var(ENV_AUDIENCE) {
            auth = auth.with_audience(aud);
        }
        Ok(auth)
    }

    /// RS256/ES256 keys from the JWKS at `url`, fetched on first use.
    pub fn jwks(url: impl Into<String>) -> Self {
        install_crypto_provider();
        Self::with_keys(KeySource::Jwks(JwksCache::new(url.into())))
    }

    fn with_keys(keys: KeySource) -> Self {
        Self {
            keys,
            issuer: None,
            audience: None,
        }
    }

    /// Require `iss` to equal `iss`.
    pub fn with_issuer(mut self, iss: impl Into<String>) -> Self {
        self.issuer = Some(iss.into());
        self
    }

    /// Require `aud` to be (or contain) `aud`.
    pub fn with_audience(mut self, aud: impl Into<String>) -> Self {
        self.audience = Some(aud.into());
        self
    }

    /// `authorization` is the raw Authorization header value, if any (`Bearer <jwt>`, scheme
    /// case-insensitive).
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        let token = bearer_token(authorization).ok_or(AuthError::Missing)?;
        // Fails for `"alg":"none"` too: jsonwebtoken has no such algorithm.
        let header = jsonwebtoken::decode_header(token).map_err(rejection)?;
        if header.crit.is_some() {
            // We implement no JWS extensions, so we cannot honour any critical one (RFC 7515 §4.1.11).
            return Err(invalid("unsupported critical header"));
        }

        let fetched;
        let key = match &self.keys {
            KeySource::Secret(key) => key,
            KeySource::Jwks(jwks) => {
                let kid = header
                    .kid
                    .as_deref()
                    .ok_or_else(|| invalid("missing key id"))?;
                fetched = jwks.key(kid).await?;
                &*fetched
            }
        };
        // The key decides the algorithm, never the token: this is what stops HS/RS confusion.
        if header.alg != key.alg {
            return Err(invalid("algorithm not allowed"));
        }

        let claims = jsonwebtoken::decode::<Claims>(token, &key.key, &self.validation(key.alg))
            .map_err(rejection)?
            .claims;
        claims.into_principal()
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = CLOCK_LEEWAY_SECS;
        v.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        // jsonwebtoken only compares iss/aud when present, so make them required when configured.
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
            required.push("iss");
        }
        match &self.audience {
            Some(aud) => {
                v.set_audience(&[aud]);
                required.push("aud");
            }
            None => v.validate_aud = false,
        }
        v.set_required_spec_claims(&required);
        v
    }
}

impl fmt::Debug for Authenticator {
    // Hand-written so that a secret can never end up in a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = match &self.keys {
            KeySource::Secret(_) => "HS256 secret (redacted)".to_owned(),
            KeySource::Jwks(jwks) => format!("JWKS {}", jwks.url),
        };
        f.debug_struct("Authenticator")
            .field("keys", &keys)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

/// jsonwebtoken 11 picks its crypto backend from crate features; installing aws-lc-rs
/// explicitly keeps us working even if feature unification ever enables a second backend.
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err only means a provider is already installed, which is fine.
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    });
}

/// The token of a `Bearer` Authorization header; `None` for no header, another scheme or an
/// empty token.
fn bearer_token(authorization: Option<&str>) -> Option<&str> {
    let (scheme, token) = authorization?.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn invalid(detail: &str) -> AuthError {
    AuthError::Invalid(detail.to_owned())
}

/// Maps a jsonwebtoken error to a short reason a client may see.
fn rejection(err: jsonwebtoken::errors::Error) -> AuthError {
    AuthError::Invalid(match err.kind() {
        ErrorKind::ExpiredSignature => "token expired".into(),
        ErrorKind::ImmatureSignature => "token not yet valid".into(),
        ErrorKind::InvalidSignature => "bad signature".into(),
        ErrorKind::InvalidIssuer => "wrong issuer".into(),
        ErrorKind::InvalidAudience => "wrong audience".into(),
        ErrorKind::InvalidAlgorithm => "algorithm not allowed".into(),
        // Claim names come from our own required list, so they are safe to echo.
        ErrorKind::MissingRequiredClaim(claim) => format!("missing {claim} claim"),
        ErrorKind::InvalidClaimFormat(claim) => format!("malformed {claim} claim"),
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => "malformed token".into(),
        // Key-format and provider errors: nothing the caller can act on.
        _ => "token rejected".into(),
    })
}
