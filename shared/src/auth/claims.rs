//! The claims we read from a verified token, and the [`Principal`] they make.

use serde::Deserialize;

use super::{AuthError, invalid};
use crate::domain::Principal;

/// Scope granting every operation.
pub const SCOPE_ADMIN: &str = "orders:admin";
/// Scope granting the shipping moves (confirmed → shipped → delivered).
pub const SCOPE_FULFILL: &str = "orders:fulfill";

/// The claims we read; `exp`, `nbf`, `iss` and `aud` are checked by `jsonwebtoken` itself.
/// Optional here so that a missing claim is reported by name rather than as malformed JSON.
#[derive(Deserialize)]
pub(super) struct Claims {
    sub: Option<String>,
    scope: Option<String>,
}

impl Claims {
    /// `sub` must be non-empty; `scope` grants the roles.
    pub(super) fn into_principal(self) -> Result<Principal, AuthError> {
        let user_id = self
            .sub
            .filter(|sub| !sub.trim().is_empty())
            .ok_or_else(|| invalid("missing sub claim"))?;
        Ok(principal(user_id, self.scope.as_deref().unwrap_or("")))
    }
}

/// `scope` is space-separated (RFC 8693 §4.2); unknown scopes are ignored.
fn principal(user_id: String, scope: &str) -> Principal {
    let has = |wanted: &str| scope.split_whitespace().any(|s| s == wanted);
    Principal {
        user_id,
        admin: has(SCOPE_ADMIN),
        fulfillment: has(SCOPE_FULFILL),
    }
}
