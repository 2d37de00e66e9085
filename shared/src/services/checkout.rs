//! Checkout: a cart becomes an order. One cart becomes at most one order, and one
//! `Idempotency-Key` at most one answer, however often and concurrently it is sent.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::orders::OrderError;
use crate::domain::Principal;
use crate::domain::RateLimit;
use crate::domain::contact;
use crate::domain::{Checkout, Order, OrderId};
use crate::ports::{
    CartSource, CreateOutcome, IdempotencyKey, IdempotencyRecord, OrderStore, RateCharge,
    StoreError,
};

/// How long a retry with the same `Idempotency-Key` is answered from the record.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// A create that was answered: freshly, or as a replay of the first request.
#[derive(Debug)]
pub struct Placed {
    pub order_id: OrderId,
    pub replayed: bool,
}

/// `Idempotency-Key` on a create, with the fingerprint of the request it came with.
pub struct IdempotentCreate {
    pub key: String,
    pub fingerprint: String,
}

pub struct CheckoutService {
    store: Arc<dyn OrderStore>,
    carts: Arc<dyn CartSource>,
    create_limit: Option<RateLimit>,
}

impl CheckoutService {
    /// Without a limit on creates; see [`CheckoutService::with_create_limit`].
    pub fn new(store: Arc<dyn OrderStore>, carts: Arc<dyn CartSource>) -> Self {
        CheckoutService {
            store,
            carts,
            create_limit: None,
        }
    }

    /// Each caller (the token's `sub`, admins too) may create `limit.count` orders
    /// per window; `None` is no limit.
    pub fn with_create_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.create_limit = limit;
        self
    }

    pub fn create_limit(&self) -> Option<RateLimit> {
        self.create_limit
    }

    /// Places the order of `checkout`'s cart, for the caller or, for an admin, anyone.
    pub async fn place(
        &self,
        caller: &Principal,
        checkout: Checkout,
        idempotency: Option<IdempotentCreate>,
    ) -> Result<Placed, OrderError> {
        let customer = match &checkout.user_id {
            Some(user) if *user != caller.user_id && !caller.admin => {
                return Err(OrderError::Forbidden(
                    "user_id must be your own user id".into(),
                ));
            }
            Some(user) => user.clone(),
            None => caller.user_id.clone(),
        };
        // The token's email and phone are the caller's: they reach the order only when
        // the caller orders for itself, and only where the request's contact is silent.
        let mut checkout = checkout;
        if customer == caller.user_id {
            let claimed = contact::from_claims(caller.email.as_deref(), caller.phone.as_deref());
            let contact = &mut checkout.contact;
            contact.email = contact.email.take().or(claimed.email);
            contact.phone = contact.phone.take().or(claimed.phone);
        }
        let key = idempotency.map(|i| {
            (
                IdempotencyKey {
                    caller: caller.user_id.clone(),
                    key: i.key,
                },
                i.fingerprint,
            )
        });

        let now = OffsetDateTime::now_utc();
        let cart_id = checkout.cart_id.clone();
        // A keyed retry is answered from its record whatever the cart says now
        // (emptied, changed hands, gone, its service down). The record is read only
        // when the cart is refused, so a first request costs no read.
        let order = match self.order_from_cart(checkout, &customer, caller, now).await {
            Ok(order) => order,
            Err(refused) => {
                if let Some((key, fingerprint)) = &key
                    && let Some(record) = self.store.idempotency_record(key).await?
                {
                    return replay(record, fingerprint);
                }
                return Err(refused);
            }
        };
        let record = key.map(|(key, fingerprint)| IdempotencyRecord {
            key,
            fingerprint,
            order_id: order.id.clone(),
            expires_at: now + IDEMPOTENCY_TTL,
        });
        // The caller is charged, not the customer: an admin ordering for others
        // spends its own allowance.
        let charge = self.create_limit.map(|limit| RateCharge {
            caller: caller.user_id.clone(),
            limit,
            window: limit.window_at(now),
        });
        match self
            .store
            .create(&order, record.as_ref(), charge.as_ref())
            .await?
        {
            CreateOutcome::Created => Ok(Placed {
                order_id: order.id,
                replayed: false,
            }),
            CreateOutcome::KeySeen(first) => {
                let fingerprint = record.map(|r| r.fingerprint).unwrap_or_default();
                replay(first, &fingerprint)
            }
            CreateOutcome::CartOrdered(existing) => Err(OrderError::CartAlreadyOrdered {
                cart_id,
                order_id: existing.id,
            }),
            CreateOutcome::LimitReached => match charge {
                Some(RateCharge { limit, window, .. }) => Err(OrderError::CreateLimitReached {
                    limit,
                    retry_after: window.seconds_left(OffsetDateTime::now_utc()),
                }),
                None => Err(OrderError::Store(StoreError::Other(
                    "a create without a charge was refused for its limit".into(),
                ))),
            },
        }
    }
}

impl CheckoutService {
    async fn order_from_cart(
        &self,
        checkout: Checkout,
        customer: &str,
        caller: &Principal,
        now: OffsetDateTime,
    ) -> Result<Order, OrderError> {
        match self.carts.cart(&checkout.cart_id).await? {
            // Someone else's cart is as unknown to this caller as a missing one.
            Some(cart) if cart.user_id == customer => {
                Ok(checkout.place(&cart, customer, &caller.user_id, now)?)
            }
            _ => Err(OrderError::CartNotFound(checkout.cart_id)),
        }
    }
}

/// The first request's answer, if this one is the same request.
fn replay(first: IdempotencyRecord, fingerprint: &str) -> Result<Placed, OrderError> {
    if first.fingerprint != fingerprint {
        return Err(OrderError::KeyReused);
    }
    Ok(Placed {
        order_id: first.order_id,
        replayed: true,
    })
}
