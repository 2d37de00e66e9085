//! Who is calling: a user id and the roles it holds. How it was proven (a JWT, a test
//! fixture) is the business of `crate::auth`, not of the domain.

/// Who is calling, as proven by a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`.
    pub user_id: String,
    /// Holds the admin scope.
    pub admin: bool,
    /// Holds the fulfill scope. Not implied by `admin`: callers check `admin || fulfillment`.
    pub fulfillment: bool,
    /// May refund orders: holds the refund scope or the admin scope.
    pub refunds: bool,
    /// May manage webhook subscriptions: holds the webhooks scope or the admin scope.
    pub webhooks: bool,
    /// The token's `email` claim, when `email_verified`: the order's contact unless the
    /// create says.
    pub email: Option<String>,
    /// The token's `phone_number` claim (OpenID Connect), if any.
    pub phone: Option<String>,
}
