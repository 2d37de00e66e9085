//! HS256 with a shared secret: for local runs and tests, and the dev tokens `make dev` prints.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::Serialize;

use super::{Authenticator, KeySource, VerifyingKey, install_crypto_provider};

/// The documented local default for JWT_SECRET.
pub const DEV_JWT_SECRET: &str = "orders-local-dev-secret-change-me";

/// RFC 7518 §3.2: an HS256 key must be at least 256 bits.
pub(super) const MIN_SECRET_LEN: usize = 32;

impl Authenticator {
    /// HS256 with a shared secret (local and tests). No length check here; `from_settings` has one.
    pub fn hs256(secret: &[u8]) -> Self {
        install_crypto_provider();
        Self::with_keys(KeySource::Secret(VerifyingKey {
            alg: Algorithm::HS256,
            key: DecodingKey::from_secret(secret),
        }))
    }
}

/// Mints an HS256 token (for `make dev`'s printed dev token and for tests): sub, scope (omitted
/// if empty), iat, exp = now + ttl.
pub fn issue_hs256_token(secret: &[u8], sub: &str, scope: &str, ttl: Duration) -> String {
    #[derive(Serialize)]
    struct Minted<'a> {
        sub: &'a str,
        #[serde(skip_serializing_if = "str::is_empty")]
        scope: &'a str,
        iat: u64,
        exp: u64,
    }
    install_crypto_provider();
    let iat = jsonwebtoken::get_current_timestamp();
    let claims = Minted {
        sub,
        scope,
        iat,
        exp: iat.saturating_add(ttl.as_secs()),
    };
    let key = EncodingKey::from_secret(secret);
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)
        .expect("HS256 signing with an in-memory secret cannot fail")
}

/// The same, with `extra` claims beside `sub` and `scope` (`email`, `phone_number`:
/// the dev token of `make dev` and the tests of contacts).
pub fn issue_hs256_token_with_claims(
    secret: &[u8],
    sub: &str,
    scope: &str,
    extra: &serde_json::Value,
    ttl: Duration,
) -> String {
    install_crypto_provider();
    let iat = jsonwebtoken::get_current_timestamp();
    let mut claims =
        serde_json::json!({ "sub": sub, "iat": iat, "exp": iat.saturating_add(ttl.as_secs()) });
    if !scope.is_empty() {
        claims["scope"] = scope.into();
    }
    if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
        for (name, value) in extra {
            claims.insert(name.clone(), value.clone());
        }
    }
    let key = EncodingKey::from_secret(secret);
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)
        .expect("HS256 signing with an in-memory secret cannot fail")
}
