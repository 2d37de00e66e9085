//! Checkout: a cart becomes an order. One cart becomes at most one order, and one
//! `Idempotency-Key` at most one answer, however often and concurrently it is sent.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::orders::OrderError;
use crate::domain::Principal;
use crate::domain::RateLimit;
use crate::domain::contact;
use crate::domain::{Checkout, Order, OrderId, Payment, PaymentMethod};
use crate::ports::{
    CartSource, CartSourceError, CreateOutcome, IdempotencyKey, IdempotencyRecord, OrderStore,
    PaymentClaim, PaymentGateway, PaymentLedger, RateCharge, StoreError,
};
use crate::ports::{Metric, MetricSet, Metrics, NoMetrics};

/// How long a retry with the same `Idempotency-Key` is answered from the record.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// How long a checkout may take between claiming an order's payment and storing the
/// order: past it, a retry may take the claim over (the first attempt died).
pub const PAYMENT_CLAIM_LEASE: Duration = Duration::from_secs(30);

/// How long a checkout waits on its cart, a keyed retry's fallback to its record
/// included, unless `with_cart_deadline` says otherwise: an unreachable cart source
/// is a 503 within it, not after one timeout for the cart and another for the record.
pub const CART_DEADLINE: Duration = Duration::from_secs(5);

/// A create that was answered: freshly, or as a replay of the first request.
#[derive(Debug)]
pub struct Placed {
    pub order_id: OrderId,
    pub replayed: bool,
    /// The order's online payment, to pay it with; `None` when it takes none.
    pub payment: Option<Payment>,
}

/// The payment provider and the claims that keep it to one intent per order.
pub struct CheckoutPayments {
    pub gateway: Arc<dyn PaymentGateway>,
    pub ledger: Arc<dyn PaymentLedger>,
}

/// Where creating an order's payment left the checkout.
enum PaymentStart {
    Created(Box<Payment>),
    /// The order is stored already (an earlier attempt, or a twin): answer with it.
    Stored(Box<Order>),
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
    payments: Option<CheckoutPayments>,
    metrics: Arc<dyn Metrics>,
    cart_deadline: Duration,
}

impl CheckoutService {
    /// Without a limit on creates; see [`CheckoutService::with_create_limit`].
    pub fn new(store: Arc<dyn OrderStore>, carts: Arc<dyn CartSource>) -> Self {
        CheckoutService {
            store,
            carts,
            create_limit: None,
            payments: None,
            metrics: Arc::new(NoMetrics),
            cart_deadline: CART_DEADLINE,
        }
    }

    /// The cart read and a keyed retry's record read share this deadline (wiring sets
    /// it to the SDK's operation timeout, the API's bound on one store request).
    pub fn with_cart_deadline(mut self, deadline: Duration) -> Self {
        self.cart_deadline = deadline;
        self
    }

    /// Card orders get a payment intent at checkout; `None`: payments are off and
    /// every order waits for an admin's confirmation.
    pub fn with_payments(mut self, payments: Option<CheckoutPayments>) -> Self {
        self.payments = payments;
        self
    }

    /// Reports `OrdersPlaced` and `OrderValue` (by currency) for every order created.
    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = metrics;
        self
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
            contact.email = contact.email.take().or(claimed.email.clone());
            contact.phone = contact.phone.take().or(claimed.phone);
            contact.email_verified = contact.email.is_some() && contact.email == claimed.email;
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
        // when the cart is refused, so a first request costs no read. Both reads share
        // one deadline: a cart source that hangs leaves no time for a second wait.
        let deadline = tokio::time::Instant::now() + self.cart_deadline;
        let from_cart = self.order_from_cart(checkout, &customer, caller, now);
        let cart = tokio::time::timeout_at(deadline, from_cart)
            .await
            .unwrap_or_else(|_| Err(self.cart_too_slow()));
        let mut order = match cart {
            Ok(order) => order,
            Err(refused) => {
                if let Some((key, fingerprint)) = &key {
                    let record = self.store.idempotency_record(key);
                    match tokio::time::timeout_at(deadline, record).await {
                        Ok(Ok(Some(record))) => return replay(record, fingerprint),
                        Ok(Ok(None)) => {}
                        Ok(Err(err)) => return Err(err.into()),
                        // Out of time: the cart's answer stands; a retry may replay.
                        Err(_) => {}
                    }
                }
                return Err(refused);
            }
        };
        if let Some(payments) = &self.payments
            && order.payment_method == PaymentMethod::CreditCard
        {
            match self.start_payment(payments, &order, now).await? {
                PaymentStart::Created(payment) => order.payment = Some(*payment),
                PaymentStart::Stored(existing) => {
                    return self.answer_stored(*existing, key.as_ref()).await;
                }
            }
        }
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
        let outcome = self
            .store
            .create(&order, record.as_ref(), charge.as_ref())
            .await?;
        let label = match &outcome {
            CreateOutcome::Created => "created",
            CreateOutcome::KeySeen(_) => "key_seen",
            CreateOutcome::CartOrdered(_) => "cart_already_ordered",
            CreateOutcome::LimitReached => "create_limit_reached",
        };
        tracing::info!(order_id = %order.id, actor = %caller.user_id, outcome = label, "create");
        if matches!(outcome, CreateOutcome::Created) {
            self.metrics.record(
                MetricSet::of(Metric::OrdersPlaced, 1.0)
                    .and(Metric::OrderValue, order.total.minor() as f64)
                    .by("currency", order.total.currency().code()),
            );
        }
        match outcome {
            CreateOutcome::Created => Ok(Placed {
                order_id: order.id,
                replayed: false,
                payment: order.payment,
            }),
            CreateOutcome::KeySeen(first) => {
                let fingerprint = record.map(|r| r.fingerprint).unwrap_or_default();
                let placed = replay(first, &fingerprint);
                if placed.is_err()
                    && let Some(payments) = &self.payments
                    && order.payment.is_some()
                {
                    // This request stored nothing: let the cart's own checkout go on.
                    payments.ledger.release_payment_claim(&order.id).await?;
                }
                self.with_stored_payment(placed?).await
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
    /// Claims the order's payment and creates its intent, unless the order is
    /// stored already or another attempt is creating it (409, retry).
    async fn start_payment(
        &self,
        payments: &CheckoutPayments,
        order: &Order,
        now: OffsetDateTime,
    ) -> Result<PaymentStart, OrderError> {
        let lease_until = now + PAYMENT_CLAIM_LEASE;
        let claim = payments
            .ledger
            .claim_payment(&order.id, lease_until)
            .await?;
        if claim == PaymentClaim::Held {
            if let Some(existing) = self.store.get(&order.id).await? {
                return Ok(PaymentStart::Stored(Box::new(existing)));
            }
            let taken = payments
                .ledger
                .take_over_payment_claim(&order.id, now, lease_until)
                .await?;
            if taken == PaymentClaim::Held {
                return Err(OrderError::Contention);
            }
        }
        // The provider's key is the order's: real Stripe answers a resend (a retry
        // after a lost answer, a claim taken over) with the intent it made first.
        let key = format!("order-{}-intent", order.id);
        match payments
            .gateway
            .create_intent(&order.id, &order.total, &key)
            .await
        {
            Ok(intent) => Ok(PaymentStart::Created(Box::new(Payment::new(
                intent.intent_id,
                intent.client_secret,
            )))),
            Err(err) => {
                // Nothing was stored; a retry may claim again at once.
                if let Err(release) = payments.ledger.release_payment_claim(&order.id).await {
                    tracing::warn!(order_id = %order.id, error = %release, "claim not released; its lease will run out");
                }
                Err(OrderError::Payment(err))
            }
        }
    }

    /// The answer to a checkout whose order is stored already: a keyed retry's
    /// replay, or 409 for the cart's other checkouts.
    async fn answer_stored(
        &self,
        existing: Order,
        key: Option<&(IdempotencyKey, String)>,
    ) -> Result<Placed, OrderError> {
        if let Some((key, fingerprint)) = key
            && let Some(record) = self.store.idempotency_record(key).await?
        {
            let mut placed = replay(record, fingerprint)?;
            if placed.order_id == existing.id {
                placed.payment = existing.payment;
                return Ok(placed);
            }
            return self.with_stored_payment(placed).await;
        }
        Err(OrderError::CartAlreadyOrdered {
            cart_id: existing.cart_id,
            order_id: existing.id,
        })
    }

    /// A replay carries the stored order's payment (one read, on replays only).
    async fn with_stored_payment(&self, mut placed: Placed) -> Result<Placed, OrderError> {
        if self.payments.is_some() {
            placed.payment = self
                .store
                .get(&placed.order_id)
                .await?
                .and_then(|o| o.payment);
        }
        Ok(placed)
    }

    fn cart_too_slow(&self) -> OrderError {
        OrderError::CartSource(CartSourceError::Unavailable(format!(
            "no cart within {} ms",
            self.cart_deadline.as_millis()
        )))
    }

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
        payment: None,
    })
}
