//! The ports: what the order service needs from the outside world, as small traits.
//! Adapters in `adapters/` implement them for DynamoDB and HTTP.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::lifecycle::ShippingUpdate;
use crate::domain::{Cart, Order, OrderId, OrderStatus, StatusChange};

/// Where orders live.
#[async_trait]
pub trait OrderStore: Send + Sync {
    /// Stores a new order, and with `idempotency` its idempotency record in the same
    /// atomic write. Refusals are outcomes, not errors.
    async fn create(
        &self,
        order: &Order,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<CreateOutcome, StoreError>;

    /// Reads one order, strongly consistent.
    async fn get(&self, id: &OrderId) -> Result<Option<Order>, StoreError>;

    /// Applies `change` in one conditional write, if the order is in one of `from`
    /// (and, per the change, owned by the actor and at the expected version).
    /// A refusal carries the order as the store found it, without a second read.
    async fn change_status(
        &self,
        id: &OrderId,
        change: &StatusChange,
        from: &[OrderStatus],
    ) -> Result<ChangeOutcome, StoreError>;

    /// Records fulfillment's progress on a confirmed order in one conditional write,
    /// with its history entry, exactly as `change_status` records a move.
    async fn update_shipping(
        &self,
        id: &OrderId,
        update: &ShippingUpdate,
    ) -> Result<ChangeOutcome, StoreError>;

    /// One page of orders, newest first.
    async fn list(&self, query: &OrderQuery) -> Result<OrderPage, StoreError>;

    /// The record left by an earlier request with this key, if it has not expired.
    async fn idempotency_record(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    Created,
    /// A request with the same idempotency key came first.
    KeySeen(IdempotencyRecord),
    /// The cart already became this order.
    CartOrdered(Box<Order>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOutcome {
    Changed(Box<Order>),
    /// The condition failed; the order as it was (`None`: there is no such order).
    Refused(Option<Box<Order>>),
}

/// An `Idempotency-Key`, scoped to the caller who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub caller: String,
    pub key: String,
}

/// What a first request with a key did, so that its retries can be answered alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub key: IdempotencyKey,
    /// SHA-256 of the request body, canonicalised.
    pub fingerprint: String,
    pub order_id: OrderId,
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderQuery {
    pub user_id: Option<String>,
    pub status: Option<OrderStatus>,
    pub created_after: Option<OffsetDateTime>,
    pub created_before: Option<OffsetDateTime>,
    pub limit: usize,
    /// Where the previous page ended, as the store described it.
    pub after: Option<PagePosition>,
}

/// A store-defined bookmark between pages. The service signs it before it leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagePosition(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderPage {
    pub orders: Vec<Order>,
    pub next: Option<PagePosition>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("the order store is unreachable: {0}")]
    Unavailable(String),
    #[error("the order store is throttling requests")]
    Throttled,
    #[error("another request is changing the same items")]
    Contention,
    #[error("a page position that this store did not write")]
    BadPosition,
    #[error("stored order is unreadable: {0}")]
    Corrupt(String),
    #[error("order store error: {0}")]
    Other(String),
}

/// Where carts come from: the Shopping Cart API or its table.
#[async_trait]
pub trait CartSource: Send + Sync {
    async fn cart(&self, cart_id: &str) -> Result<Option<Cart>, CartSourceError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CartSourceError {
    #[error("the cart service is unavailable: {0}")]
    Unavailable(String),
    #[error("the cart service sent an unreadable cart: {0}")]
    Malformed(String),
}
