//! The claims we read from a verified token, and the [`Principal`] they make.
//!
//! Cognito shapes: an access token has `token_use: "access"`, `client_id` (no `aud`) and a
//! `scope`; an ID token has `token_use: "id"`, `aud` (the client id) and no `scope`. We accept
//! both, as API Gateway's JWT authorizer does, but an ID token never grants a role: roles are
//! for callers an app client was authorised to act for, which only access tokens show.

use serde::Deserialize;

use super::{AuthError, invalid};
use crate::domain::Principal;

/// Default name of the scope granting every operation (setting `ADMIN_SCOPE`).
pub const DEFAULT_ADMIN_SCOPE: &str = "orders:admin";
/// Default name of the scope granting the shipping moves, confirmed → shipped → delivered
/// (setting `FULFILL_SCOPE`).
pub const DEFAULT_FULFILL_SCOPE: &str = "orders:fulfill";
/// Default name of the scope granting refunds (setting `REFUND_SCOPE`); the admin scope
/// grants them too.
pub const DEFAULT_REFUND_SCOPE: &str = "orders:refund";
/// Default name of the scope granting webhook subscriptions (setting `WEBHOOKS_SCOPE`);
/// the admin scope grants them too.
pub const DEFAULT_WEBHOOKS_SCOPE: &str = "orders:webhooks";

/// The configured scope names that grant roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Scopes {
    pub(super) admin: String,
    pub(super) fulfill: String,
    pub(super) refund: String,
    pub(super) webhooks: String,
}

impl Default for Scopes {
    fn default() -> Self {
        Self {
            admin: DEFAULT_ADMIN_SCOPE.to_owned(),
            fulfill: DEFAULT_FULFILL_SCOPE.to_owned(),
            refund: DEFAULT_REFUND_SCOPE.to_owned(),
            webhooks: DEFAULT_WEBHOOKS_SCOPE.to_owned(),
        }
    }
}

/// The claims we read; `exp`, `nbf` and `iss` are checked by `jsonwebtoken` itself, the
/// audience by [`Claims::check_audience`] (jsonwebtoken knows nothing of `client_id`).
/// Optional here so that a missing claim is reported by name rather than as malformed JSON.
#[derive(Deserialize)]
pub(super) struct Claims {
    sub: Option<String>,
    scope: Option<String>,
    aud: Option<Audience>,
    client_id: Option<String>,
    token_use: Option<String>,
    email: Option<String>,
    /// OpenID Connect's word that the issuer checked the address (Cognito sends it as
    /// a boolean, some issuers as the string `"true"`).
    email_verified: Option<Verified>,
    phone_number: Option<String>,
    phone_number_verified: Option<Verified>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Verified {
    Flag(bool),
    Text(String),
}

/// Whether a `*_verified` claim says yes; absent is no.
fn verified(claim: Option<&Verified>) -> bool {
    match claim {
        Some(Verified::Flag(flag)) => *flag,
        Some(Verified::Text(text)) => text.eq_ignore_ascii_case("true"),
        None => false,
    }
}

/// RFC 7519 §4.1.3: one string or an array of them.
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, wanted: &str) -> bool {
        match self {
            Audience::One(aud) => aud == wanted,
            Audience::Many(auds) => auds.iter().any(|aud| aud == wanted),
        }
    }
}

impl Claims {
    /// `aud` must be (or contain) `expected`; a token without `aud` may name it in
    /// `client_id` instead (Cognito access tokens). `aud` wins when both are present, so a
    /// token issued to another audience cannot pass on its `client_id`.
    ///
    /// `expected` may list several audiences, comma-separated (the API's service client
    /// and the operator console's, say): any one of them will do.
    pub(super) fn check_audience(&self, expected: &str) -> Result<(), AuthError> {
        let mut expected = expected.split(',').map(str::trim).filter(|e| !e.is_empty());
        let matches = match (&self.aud, &self.client_id) {
            (Some(aud), _) => expected.any(|e| aud.contains(e)),
            (None, Some(client_id)) => expected.any(|e| client_id == e),
            (None, None) => return Err(invalid("missing aud claim")),
        };
        if matches {
            Ok(())
        } else {
            Err(invalid("wrong audience"))
        }
    }

    /// `sub` must be non-empty; `scope` grants the roles, except on an ID token.
    pub(super) fn into_principal(self, scopes: &Scopes) -> Result<Principal, AuthError> {
        // No `token_use` (our own HS256 tokens, non-Cognito issuers) reads like an access token.
        let grants_roles = match self.token_use.as_deref() {
            None | Some("access") => true,
            Some("id") => false,
            Some(_) => return Err(invalid("unsupported token_use")),
        };
        let user_id = self
            .sub
            .filter(|sub| !sub.trim().is_empty())
            .ok_or_else(|| invalid("missing sub claim"))?;
        let scope = match (grants_roles, self.scope.as_deref()) {
            (true, Some(scope)) => scope,
            _ => "",
        };
        let mut principal = principal(user_id, scope, scopes);
        // Only addresses the issuer checked: an unverified `email` claim is whatever
        // the account typed, and the shop's mail would go to a stranger.
        principal.email = self
            .email
            .filter(|_| verified(self.email_verified.as_ref()));
        principal.phone = self
            .phone_number
            .filter(|_| verified(self.phone_number_verified.as_ref()));
        Ok(principal)
    }
}

/// `scope` is space-separated (RFC 8693 §4.2); unknown scopes are ignored.
fn principal(user_id: String, scope: &str, scopes: &Scopes) -> Principal {
    let has = |wanted: &str| scope.split_whitespace().any(|s| s == wanted);
    let admin = has(&scopes.admin);
    Principal {
        user_id,
        admin,
        fulfillment: has(&scopes.fulfill),
        // The admin scope is the union of every other but fulfillment's.
        refunds: admin || has(&scopes.refund),
        webhooks: admin || has(&scopes.webhooks),
        email: None,
        phone: None,
    }
}
