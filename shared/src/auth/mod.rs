//! Bearer-token authentication (README, Authentication).
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
//! [`CLOCK_LEEWAY_SECS`] of clock skew; `iss` is required and checked when `JWT_ISSUER` is
//! set. When `JWT_AUDIENCE` is set (one audience, or several comma-separated, any of
//! which will do), `aud` must be (or contain) it, or, for a token without
//! `aud` (a Cognito access token), `client_id` must equal it; with no audience configured
//! both are accepted as-is. `token_use`, where present, must be `access` or `id`, and an ID
//! token grants no roles (see [`claims`]). Header fields that point at keys (`jku`, `jwk`,
//! `x5u`) are ignored: keys only ever come from the configured source.
//!
//! Roles come from `scope`: [`AuthSettings::admin_scope`] grants everything,
//! [`AuthSettings::fulfill_scope`] the shipping moves, [`AuthSettings::refund_scope`] refunds
//! and [`AuthSettings::webhooks_scope`] webhook subscriptions (settings `ADMIN_SCOPE`,
//! `FULFILL_SCOPE`, `REFUND_SCOPE`, `WEBHOOKS_SCOPE`; Cognito resource-server scopes look like
//! `orders/admin`). The admin scope grants what the refund and webhooks scopes grant.
//!
//! Outside `LOCAL_MODE`, the published [`DEV_JWT_SECRET`] is refused: anyone could mint an
//! admin token with it.
//!
//! A header with another scheme (e.g. `Basic …`) is treated as [`AuthError::Missing`]: it carries
//! no bearer token, and RFC 6750 §3.1 answers that case without an error code.
//!
//! Layout: this module holds the [`Authenticator`], its settings and errors and the checks
//! every token goes through; [`claims`] turns verified claims into a [`Principal`]; [`hs256`]
//! holds the shared-secret keys and dev tokens; [`jwks`] the issuer's key set, fetched and
//! cached.

mod claims;
mod hs256;
mod jwks;
mod ring_crypto;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Once;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

pub use claims::{
    DEFAULT_ADMIN_SCOPE, DEFAULT_FULFILL_SCOPE, DEFAULT_REFUND_SCOPE, DEFAULT_WEBHOOKS_SCOPE,
};
pub use hs256::{DEV_JWT_SECRET, issue_hs256_token, issue_hs256_token_with_claims};

use crate::domain::Principal;
use claims::{Claims, Scopes};
use hs256::MIN_SECRET_LEN;
use jwks::JwksCache;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const CLOCK_LEEWAY_SECS: u64 = 30;

const ENV_JWKS_URL: &str = "JWT_JWKS_URL";
const ENV_SECRET: &str = "JWT_SECRET";
const ENV_ISSUER: &str = "JWT_ISSUER";
const ENV_AUDIENCE: &str = "JWT_AUDIENCE";
const ENV_ADMIN_SCOPE: &str = "ADMIN_SCOPE";
const ENV_FULFILL_SCOPE: &str = "FULFILL_SCOPE";
const ENV_REFUND_SCOPE: &str = "REFUND_SCOPE";
const ENV_WEBHOOKS_SCOPE: &str = "WEBHOOKS_SCOPE";
pub const ENV_LOCAL_MODE: &str = "LOCAL_MODE";

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

/// Start-up configuration problems (see [`Authenticator::from_settings`]). Each message names
/// the setting to fix.
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
    /// `JWT_SECRET` is the published development default, outside local mode.
    #[error(
        "JWT_SECRET is the published development default, which lets anyone mint tokens; \
         set a secret of your own (or LOCAL_MODE=true for a local run)"
    )]
    DevSecret,
    /// A scope setting (`ADMIN_SCOPE`, `FULFILL_SCOPE`, `REFUND_SCOPE`, `WEBHOOKS_SCOPE`:
    /// the field names it) is empty or holds whitespace.
    #[error("{0} must be one scope name: not empty, no spaces")]
    InvalidScope(&'static str),
}

/// Everything the [`Authenticator`] is configured with, as plain data (see the README's
/// configuration table). Empty strings count as unset.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// `JWT_SECRET`: HS256 key, at least 32 bytes (local runs and tests).
    pub jwt_secret: Option<String>,
    /// `JWT_JWKS_URL`: the issuer's key set (production); wins over `jwt_secret`.
    pub jwks_url: Option<String>,
    /// `JWT_ISSUER`: required `iss` when set.
    pub issuer: Option<String>,
    /// `JWT_AUDIENCE`: required `aud`, or `client_id` on a token without `aud`, when set.
    pub audience: Option<String>,
    /// `ADMIN_SCOPE`: the scope granting everything.
    pub admin_scope: String,
    /// `FULFILL_SCOPE`: the scope granting the shipping moves.
    pub fulfill_scope: String,
    /// `REFUND_SCOPE`: the scope granting refunds (as `ADMIN_SCOPE` does).
    pub refund_scope: String,
    /// `WEBHOOKS_SCOPE`: the scope granting webhook subscriptions (as `ADMIN_SCOPE` does).
    pub webhooks_scope: String,
    /// `LOCAL_MODE` (`true` or `1`): a local run, where [`DEV_JWT_SECRET`] is allowed.
    pub local_mode: bool,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            jwks_url: None,
            issuer: None,
            audience: None,
            admin_scope: DEFAULT_ADMIN_SCOPE.to_owned(),
            fulfill_scope: DEFAULT_FULFILL_SCOPE.to_owned(),
            refund_scope: DEFAULT_REFUND_SCOPE.to_owned(),
            webhooks_scope: DEFAULT_WEBHOOKS_SCOPE.to_owned(),
            local_mode: false,
        }
    }
}

impl fmt::Debug for AuthSettings {
    // Hand-written so that the secret can never end up in a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthSettings")
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "(redacted)"),
            )
            .field("jwks_url", &self.jwks_url)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("admin_scope", &self.admin_scope)
            .field("fulfill_scope", &self.fulfill_scope)
            .field("refund_scope", &self.refund_scope)
            .field("webhooks_scope", &self.webhooks_scope)
            .field("local_mode", &self.local_mode)
            .finish()
    }
}

impl AuthSettings {
    /// `JWT_SECRET`, `JWT_JWKS_URL`, `JWT_ISSUER`, `JWT_AUDIENCE`, `ADMIN_SCOPE`,
    /// `FULFILL_SCOPE` (defaults when unset or empty) and `LOCAL_MODE`, looked up by
    /// `var` (the wiring's settings).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        Self {
            jwt_secret: var(ENV_SECRET),
            jwks_url: var(ENV_JWKS_URL),
            issuer: var(ENV_ISSUER),
            audience: var(ENV_AUDIENCE),
            admin_scope: var(ENV_ADMIN_SCOPE).unwrap_or_else(|| DEFAULT_ADMIN_SCOPE.to_owned()),
            fulfill_scope: var(ENV_FULFILL_SCOPE)
                .unwrap_or_else(|| DEFAULT_FULFILL_SCOPE.to_owned()),
            refund_scope: var(ENV_REFUND_SCOPE).unwrap_or_else(|| DEFAULT_REFUND_SCOPE.to_owned()),
            webhooks_scope: var(ENV_WEBHOOKS_SCOPE)
                .unwrap_or_else(|| DEFAULT_WEBHOOKS_SCOPE.to_owned()),
            local_mode: var(ENV_LOCAL_MODE)
                .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true")),
        }
    }
}

/// Verifies bearer tokens. Send + Sync; build once and share (e.g. in an `Arc`).
pub struct Authenticator {
    keys: KeySource,
    issuer: Option<String>,
    audience: Option<String>,
    scopes: Scopes,
}

enum KeySource {
    Secret(VerifyingKey),
    // Boxed: the cache is several times the size of a key.
    Jwks(Box<JwksCache>),
}

/// A public key or secret together with the one algorithm it may be used with.
struct VerifyingKey {
    alg: Algorithm,
    key: DecodingKey,
}

impl Authenticator {
    /// `jwks_url` (RS256/ES256 keys from a JWKS, production) or `jwt_secret` (HS256,
    /// local/test, at least 32 bytes, not [`DEV_JWT_SECRET`] unless `local_mode`); `issuer` /
    /// `audience` checked when set. If both URL and secret are set, the JWKS wins and HS256 is
    /// NOT accepted (the unused secret is then not checked). Empty values count as unset.
    pub fn from_settings(settings: &AuthSettings) -> Result<Self, AuthConfigError> {
        let set = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let scopes = Scopes {
            admin: scope_name(&settings.admin_scope, ENV_ADMIN_SCOPE)?,
            fulfill: scope_name(&settings.fulfill_scope, ENV_FULFILL_SCOPE)?,
            refund: scope_name(&settings.refund_scope, ENV_REFUND_SCOPE)?,
            webhooks: scope_name(&settings.webhooks_scope, ENV_WEBHOOKS_SCOPE)?,
        };
        let mut auth = if let Some(url) = set(&settings.jwks_url) {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(AuthConfigError::InvalidJwksUrl);
            }
            Self::jwks(url)
        } else if let Some(secret) = set(&settings.jwt_secret) {
            if secret == DEV_JWT_SECRET && !settings.local_mode {
                return Err(AuthConfigError::DevSecret);
            }
            if secret.len() < MIN_SECRET_LEN {
                return Err(AuthConfigError::WeakSecret);
            }
            Self::hs256(secret.as_bytes())
        } else {
            return Err(AuthConfigError::NotConfigured);
        };
        auth.scopes = scopes;
        if let Some(iss) = set(&settings.issuer) {
            auth = auth.with_issuer(iss);
        }
        if let Some(aud) = set(&settings.audience) {
            auth = auth.with_audience(aud);
        }
        Ok(auth)
    }

    /// RS256/ES256 keys from the JWKS at `url`, fetched on first use.
    pub fn jwks(url: impl Into<String>) -> Self {
        install_crypto_provider();
        Self::with_keys(KeySource::Jwks(Box::new(JwksCache::new(url.into()))))
    }

    fn with_keys(keys: KeySource) -> Self {
        Self {
            keys,
            issuer: None,
            audience: None,
            scopes: Scopes::default(),
        }
    }

    /// Require `iss` to equal `iss`.
    pub fn with_issuer(mut self, iss: impl Into<String>) -> Self {
        self.issuer = Some(iss.into());
        self
    }

    /// Require `aud` to be (or contain) `aud`, or, on a token without `aud`, `client_id` to
    /// equal it.
    pub fn with_audience(mut self, aud: impl Into<String>) -> Self {
        self.audience = Some(aud.into());
        self
    }

    /// The scope names granting the admin and fulfillment roles (defaults
    /// [`DEFAULT_ADMIN_SCOPE`], [`DEFAULT_FULFILL_SCOPE`]). Not validated here;
    /// `from_settings` checks them.
    pub fn with_scopes(mut self, admin: impl Into<String>, fulfill: impl Into<String>) -> Self {
        self.scopes = Scopes {
            admin: admin.into(),
            fulfill: fulfill.into(),
            ..Scopes::default()
        };
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
        if let Some(aud) = &self.audience {
            claims.check_audience(aud)?;
        }
        claims.into_principal(&self.scopes)
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = CLOCK_LEEWAY_SECS;
        v.validate_nbf = true;
        // The audience is ours to check: jsonwebtoken knows `aud` but not Cognito's `client_id`.
        v.validate_aud = false;
        let mut required = vec!["exp", "sub"];
        // jsonwebtoken only compares iss when present, so make it required when configured.
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
            required.push("iss");
        }
        v.set_required_spec_claims(&required);
        v
    }
}

/// A scope setting, trimmed; one name, since `scope` claims are space-separated.
fn scope_name(value: &str, setting: &'static str) -> Result<String, AuthConfigError> {
    let name = value.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(AuthConfigError::InvalidScope(setting));
    }
    Ok(name.to_owned())
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
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// jsonwebtoken 11 has no backend of its own here (its aws-lc and RustCrypto ones would
/// be a second cryptographic library in every binary): [`ring_crypto`] is installed
/// before the first token is signed or verified.
pub(crate) fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err only means a provider is already installed, which is fine.
        let _ = ring_crypto::PROVIDER.install_default();
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
