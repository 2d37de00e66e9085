//! Payments: what the provider's notices do to orders, refunds (an admin's partial
//! ones and the full one that follows a cancellation), and the expiry of orders left
//! unpaid. The checkout's side (one intent per order) is in `checkout`.
//!
//! Each step is one conditional write decided on the order as read; a write refused
//! because the order moved on is decided again on the order DynamoDB returned.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::domain::lifecycle::StatusChange;
use crate::domain::payment::notice::{NoticeEffect, NoticeOutcome, PaymentNotice};
use crate::domain::payment::refund::{RefundRefusal, allocate_refund, check_refund};
use crate::domain::payment::{
    CANCELLATION_REFUND, PAYMENT_TIMEOUT, RefundHold, SYSTEM_ACTOR, UNPAID, caller_refund_key,
};
use crate::domain::{
    FieldErrors, HistoryEntry, Money, Order, OrderId, OrderStatus, Principal, Refund, Role,
};
use crate::events::Envelope;
use crate::ports::{
    CancelOutcome, ChangeOutcome, Metric, MetricSet, Metrics, NoMetrics, OrderQuery, OrderStore,
    PaymentError, PaymentGateway, PaymentLedger, StoreError,
};

/// The default of `PENDING_PAYMENT_TTL`: a day, as long as a Stripe Checkout session
/// and this API's idempotency records live.
pub const DEFAULT_PENDING_PAYMENT_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// How often a write is decided again after the order moved under it.
const MAX_ATTEMPTS: usize = 5;

/// Orders one sweep reads per page (each a Query of the status index).
const SWEEP_PAGE: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum PaymentServiceError {
    #[error("order not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(String),
    #[error("the request is invalid")]
    Invalid(FieldErrors),
    #[error(transparent)]
    Refused(#[from] RefundRefusal),
    #[error("this Idempotency-Key was used for another refund")]
    KeyReused,
    #[error(transparent)]
    Provider(#[from] PaymentError),
    #[error("a concurrent request is changing this order")]
    Contention,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the event is not an order event: {0}")]
    BadEvent(String),
    #[error("payments are off: no payment provider is configured")]
    Off,
}

/// What a provider notice came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeHandled {
    Applied { order_id: OrderId, version: u64 },
    Duplicate,
    Ignored(&'static str),
}

/// What the settling of a cancelled order did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    Refunded(String),
    IntentCancelled,
    Nothing(&'static str),
}

/// A refund asked for by an admin.
#[derive(Debug, Clone)]
pub struct RefundRequest {
    /// The amount as the caller wrote it (`"25.00"`), in the order's currency.
    pub amount: String,
    pub reason: Option<String>,
    /// The caller's `Idempotency-Key`, or a fresh one.
    pub key: String,
}

pub struct PaymentService {
    store: Arc<dyn OrderStore>,
    ledger: Arc<dyn PaymentLedger>,
    gateway: Arc<dyn PaymentGateway>,
    metrics: Arc<dyn Metrics>,
}

impl PaymentService {
    pub fn new(
        store: Arc<dyn OrderStore>,
        ledger: Arc<dyn PaymentLedger>,
        gateway: Arc<dyn PaymentGateway>,
    ) -> Self {
        PaymentService {
            store,
            ledger,
            gateway,
            metrics: Arc::new(NoMetrics),
        }
    }

    /// Reports `PaymentsSucceeded`/`PaymentsFailed` for every notice recorded, and
    /// `Refunds`/`RefundValue` (by currency) for every refund made.
    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// A verified provider notice about the payment of `order_id` (its metadata).
    pub async fn handle_notice(
        &self,
        notice: &PaymentNotice,
        order_id: Option<&str>,
    ) -> Result<NoticeHandled, PaymentServiceError> {
        let Some(id) = order_id.and_then(OrderId::parse) else {
            return Ok(NoticeHandled::Ignored("the payment names no order of ours"));
        };
        let Some(mut order) = self.store.get(&id).await? else {
            return Ok(NoticeHandled::Ignored("no such order"));
        };
        for _ in 0..MAX_ATTEMPTS {
            let change = match notice.effect(&order) {
                NoticeEffect::Record(change) => change,
                NoticeEffect::Duplicate => return Ok(NoticeHandled::Duplicate),
                NoticeEffect::Ignore(why) => return Ok(NoticeHandled::Ignored(why)),
            };
            match self.ledger.record_payment(&id, &change).await? {
                ChangeOutcome::Changed(after) => {
                    let metric = match notice.outcome {
                        NoticeOutcome::Succeeded { .. } => Metric::PaymentsSucceeded,
                        NoticeOutcome::Failed { .. } => Metric::PaymentsFailed,
                    };
                    self.metrics
                        .record(MetricSet::of(metric, 1.0).by("provider", "stripe"));
                    return Ok(NoticeHandled::Applied {
                        order_id: id,
                        version: after.version,
                    });
                }
                ChangeOutcome::Refused(Some(current)) => order = *current,
                ChangeOutcome::Refused(None) => return Ok(NoticeHandled::Ignored("no such order")),
            }
        }
        Err(PaymentServiceError::Contention)
    }

    /// `POST /api/orders/{id}/refunds`: an admin gives back part (or the rest) of a
    /// payment. The same key again answers with the refund it made.
    pub async fn refund(
        &self,
        caller: &Principal,
        id: &str,
        request: RefundRequest,
    ) -> Result<(Order, bool), PaymentServiceError> {
        if !caller.refunds {
            return Err(PaymentServiceError::Forbidden(
                "only support (the refund or admin scope) refunds orders".into(),
            ));
        }
        let id = OrderId::parse(id).ok_or(PaymentServiceError::NotFound)?;
        let order = self
            .store
            .get(&id)
            .await?
            .ok_or(PaymentServiceError::NotFound)?;
        let currency = order.total.currency();
        let amount = Money::parse(&request.amount, currency).map_err(|e| {
            let mut errors = FieldErrors::default();
            errors.add("amount", format!("{e} (in {})", currency.code()));
            PaymentServiceError::Invalid(errors)
        })?;
        let hold = RefundHold {
            key: caller_refund_key(&request.key),
            amount,
            // Pro rata over what remains of each line, the shipping and each tax.
            parts: None,
            reason: request.reason,
            actor: caller.user_id.clone(),
            at: OffsetDateTime::now_utc(),
        };
        self.give_back(order, hold).await
    }

    /// Settles a cancelled order's payment, from its `order.cancelled` (or
    /// `order.payment_status_changed`) event: refunds what was paid, or withdraws the
    /// intent so it can no longer be paid. Idempotent on the order.
    pub async fn settle_cancelled(
        &self,
        body: Option<&str>,
    ) -> Result<Settled, PaymentServiceError> {
        let envelope: Envelope = serde_json::from_str(body.unwrap_or_default())
            .map_err(|e| PaymentServiceError::BadEvent(e.to_string()))?;
        let Some(id) = OrderId::parse(&envelope.detail.order_id) else {
            return Ok(Settled::Nothing("not an order id"));
        };
        // The stored order decides, not the event: it may be stale or not ours.
        let Some(order) = self.store.get(&id).await? else {
            return Ok(Settled::Nothing("no such order"));
        };
        if order.status != OrderStatus::Cancelled {
            return Ok(Settled::Nothing("the order is not cancelled"));
        }
        let Some(payment) = &order.payment else {
            return Ok(Settled::Nothing("the order takes no online payment"));
        };
        // Never paid, or confirmed by hand before issue 23 (`paid` with nothing
        // received): withdraw the intent so it can no longer be paid.
        if UNPAID.contains(&order.payment_status) || payment.received.is_none() {
            return Ok(
                match self.gateway.cancel_intent(&payment.intent_id).await? {
                    CancelOutcome::Cancelled => Settled::IntentCancelled,
                    // Paid meanwhile: its notice records the payment and brings the order
                    // back here to be refunded.
                    CancelOutcome::NotCancellable => {
                        Settled::Nothing("the intent cannot be cancelled")
                    }
                },
            );
        }
        if let Some(hold) = &payment.refund_in_flight {
            // A refund in flight: finish it if abandoned, else wait for it; either way
            // the next delivery of this event refunds what is left.
            let hold = hold.clone();
            self.give_back(order, hold).await?;
            return Err(PaymentServiceError::Contention);
        }
        if payment.refunds.iter().any(|r| r.key == CANCELLATION_REFUND) {
            return Ok(Settled::Nothing("refunded already"));
        }
        let Some(left) = payment.refundable().filter(|m| m.minor() > 0) else {
            return Ok(Settled::Nothing("nothing left to refund"));
        };
        let hold = RefundHold {
            key: CANCELLATION_REFUND.into(),
            amount: left,
            // All that remains: every part's remainder.
            parts: None,
            reason: Some("order cancelled".into()),
            actor: crate::domain::payment::PAYMENTS_ACTOR.into(),
            at: OffsetDateTime::now_utc(),
        };
        let (order, _) = self.give_back(order, hold).await?;
        let refund_id = order
            .payment
            .and_then(|p| p.refunds.into_iter().find(|r| r.key == CANCELLATION_REFUND))
            .map(|r| r.refund_id)
            .unwrap_or_default();
        Ok(Settled::Refunded(refund_id))
    }

    /// Cancels every pending order whose payment is still missing `ttl` after it was
    /// placed (actor `system`, reason `payment_timeout`). Reads the status index for
    /// `pending` orders created before the cutoff: a query, never a scan.
    pub async fn expire_unpaid(
        &self,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<Vec<OrderId>, PaymentServiceError> {
        let cutoff = now - ttl;
        let mut expired = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .list(&OrderQuery {
                    user_id: None,
                    status: Some(OrderStatus::Pending),
                    created_after: None,
                    created_before: Some(cutoff),
                    limit: SWEEP_PAGE,
                    after: after.take(),
                })
                .await?;
            for order in page.orders {
                if order.payment.is_none() || !UNPAID.contains(&order.payment_status) {
                    continue;
                }
                let change = StatusChange {
                    to: OrderStatus::Cancelled,
                    role: Role::System,
                    actor: SYSTEM_ACTOR.into(),
                    reason: Some(PAYMENT_TIMEOUT.into()),
                    tracking_number: None,
                    carrier: None,
                    expected_version: None,
                    at: now,
                };
                // Refused: paid or cancelled meanwhile, which is as good.
                if let ChangeOutcome::Changed(_) = self
                    .store
                    .change_status(&order.id, &change, &[OrderStatus::Pending])
                    .await?
                {
                    expired.push(order.id);
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(expired),
            }
        }
    }

    /// Refunds `amount` of a received return (`key`: derived from the return, so it
    /// is made at most once however often this is called). Answers the order and the
    /// provider's refund id.
    pub async fn refund_return(
        &self,
        order: Order,
        key: String,
        amount: Money,
        actor: &str,
        reason: String,
        parts: crate::domain::billing::Parts,
    ) -> Result<(Order, String), PaymentServiceError> {
        let hold = RefundHold {
            key: key.clone(),
            amount,
            parts: Some(parts),
            reason: Some(reason),
            actor: actor.to_string(),
            at: OffsetDateTime::now_utc(),
        };
        let (order, _) = self.give_back(order, hold).await?;
        let refund_id = order
            .payment
            .as_ref()
            .and_then(|p| p.refunds.iter().find(|r| r.key == key))
            .map(|r| r.refund_id.clone())
            .unwrap_or_default();
        Ok((order, refund_id))
    }

    /// The one way money goes back to a customer: holds `hold` on the order (unless
    /// it is held already), asks the provider for it, and records it made. Answers the
    /// order and whether this call made it. `hold.parts` is the refund's allocation
    /// over lines, shipping and taxes: `None` splits the amount pro rata over what
    /// remains of each; a caller's own (a return's) is checked against what remains
    /// (`RefundRefusal::Allocation`). The key makes it idempotent: the same key again
    /// answers the refund it made, with another amount it is refused (`KeyReused`).
    /// Every refund recorded is published (`order.payment_status_changed`) and gets a
    /// credit note from the notifications consumer.
    pub async fn give_back(
        &self,
        mut order: Order,
        hold: RefundHold,
    ) -> Result<(Order, bool), PaymentServiceError> {
        for _ in 0..MAX_ATTEMPTS {
            let payment = order.payment.as_ref().ok_or(RefundRefusal::NoPayment)?;
            if let Some(made) = payment.refunds.iter().find(|r| r.key == hold.key) {
                if made.amount != hold.amount {
                    return Err(PaymentServiceError::KeyReused);
                }
                return Ok((order, false));
            }
            match &payment.refund_in_flight {
                Some(held) if held.key == hold.key && held.amount != hold.amount => {
                    return Err(PaymentServiceError::KeyReused);
                }
                // Its holder died (the provider's answer lost): finish it, looking
                // first for what the provider made. Another caller's request finishes
                // it too (or the order would wait for a retry that may never come) but
                // is answered 409, not with a refund that was not its own.
                Some(held) if held.abandoned(OffsetDateTime::now_utc()) => {
                    let held = held.clone();
                    let theirs = held.key != hold.key;
                    let finished = self.make_refund(order, held, true).await?;
                    if theirs {
                        return Err(RefundRefusal::InProgress.into());
                    }
                    return Ok(finished);
                }
                // Its holder is still at it: asking the provider now could make it twice.
                Some(_) => return Err(RefundRefusal::InProgress.into()),
                None => {}
            }
            check_refund(&order, &hold.amount)?;
            // Decided on the order as read; a write refused because it moved on is
            // decided again, so the allocation always matches what remained.
            let allocated = RefundHold {
                parts: allocate_refund(&order, &hold.amount, hold.parts.clone())?,
                ..hold.clone()
            };
            match self
                .ledger
                .hold_refund(&order.id, &allocated, order.version)
                .await?
            {
                ChangeOutcome::Changed(held) => {
                    return self.make_refund(*held, allocated, false).await;
                }
                ChangeOutcome::Refused(Some(current)) => order = *current,
                ChangeOutcome::Refused(None) => return Err(PaymentServiceError::NotFound),
            }
        }
        Err(PaymentServiceError::Contention)
    }

    /// Asks the provider for the held refund and records it. `resumed`: a hold whose
    /// holder died, perhaps after the provider made it, perhaps more than a day ago,
    /// when the provider no longer knows the idempotency key: the refund is looked up
    /// by its metadata before it is asked for again.
    async fn make_refund(
        &self,
        order: Order,
        hold: RefundHold,
        resumed: bool,
    ) -> Result<(Order, bool), PaymentServiceError> {
        let payment = order.payment.as_ref().ok_or(RefundRefusal::NoPayment)?;
        // The provider's key is the order's and the hold's: a resumed refund is
        // answered with the one the first attempt made.
        let provider_key = format!("refund-{}-{}", order.id, hold.key);
        let made = if resumed {
            self.gateway
                .find_refund(&payment.intent_id, &provider_key)
                .await?
        } else {
            None
        };
        let asked = match made {
            Some(id) => Ok(id),
            None => {
                self.gateway
                    .refund(&payment.intent_id, &hold.amount, &provider_key)
                    .await
            }
        };
        let refund_id = match asked {
            Ok(id) => id,
            Err(PaymentError::Refused(why)) => {
                self.ledger.release_refund(&order.id, &hold.key).await?;
                return Err(PaymentError::Refused(why).into());
            }
            // Unknown whether it was made: the hold stays, and a retry with the same
            // key (or the cancellation's consumer) finishes it.
            Err(unavailable) => return Err(unavailable.into()),
        };
        let status = payment.status_after_refund(&hold.amount);
        // A hold from before refunds were allocated is allocated now.
        let parts = match &hold.parts {
            Some(parts) => Some(parts.clone()),
            None => allocate_refund(&order, &hold.amount, None).unwrap_or(None),
        };
        let refund = Refund {
            key: hold.key.clone(),
            refund_id: refund_id.clone(),
            amount: hold.amount,
            parts,
            reason: hold.reason.clone(),
            actor: hold.actor.clone(),
            at: OffsetDateTime::now_utc(),
        };
        let entry = HistoryEntry {
            at: refund.at,
            actor: hold.actor.clone(),
            role: if hold.key == CANCELLATION_REFUND {
                Role::Payments
            } else {
                Role::Admin
            },
            status: order.status,
            shipping_status: None,
            payment_status: Some(status),
            reason: Some(format!(
                "{}{}",
                refund.summary(),
                hold.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )),
        };
        match self
            .ledger
            .complete_refund(&order.id, &refund, status, &entry)
            .await?
        {
            ChangeOutcome::Changed(after) => {
                self.metrics.record(
                    MetricSet::of(Metric::Refunds, 1.0)
                        .and(Metric::RefundValue, refund.amount.minor() as f64)
                        .by("provider", "stripe")
                        .by("currency", refund.amount.currency().code()),
                );
                Ok((*after, true))
            }
            // Completed by a concurrent resumption of the same hold.
            ChangeOutcome::Refused(Some(current)) => Ok((*current, false)),
            ChangeOutcome::Refused(None) => Err(PaymentServiceError::NotFound),
        }
    }
}
