//! Returns: a customer (or support) asks to send shipped goods back, support approves
//! or declines, the owner may cancel, and the warehouse receives them, which puts them
//! back in stock and refunds them.
//!
//! Every step is planned from the order as read (`domain::fulfillment::returns`) and
//! written in one conditional write on the version it was read at
//! (`ReturnStore::record_return`); a write that loses a race gets the order as it now
//! is and plans again, so of two concurrent receives one wins and the other finds the
//! return received (409).
//!
//! Receiving is one write that records what to restock and what to refund. Carrying
//! it out follows in the same request and is safe to repeat: the restock is keyed by
//! the return (`Restock`), the refund by a key derived from it (`refund_key`), and
//! each is then recorded on the return. A request that dies between them leaves the
//! return `received` with its receipt unsettled; the payments queue's consumer
//! (`finish_received`, from the `order.return_received` event), the retry of the
//! receive with its `Idempotency-Key`, or `POST …/refund`, finishes it, and nothing is
//! done twice: the restock's tombstone and the refund's key (held on the order, and
//! Stripe's idempotency key) make every racer find the other's work.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::domain::fulfillment::ShipmentStatus;
use crate::domain::fulfillment::returns::{
    self, ReceiveRequest, RefundState, ReturnId, ReturnLabel, ReturnLine, ReturnRefusal,
    ReturnStatus, Step,
};
use crate::domain::stock::StockLine;
use crate::domain::{FieldErrors, Money, Order, OrderId, OrderStatus, Principal, Role};
use crate::events::Envelope;
use crate::ports::{
    ChangeOutcome, LabelDirection, LabelError, OrderStore, Restock, ReturnFiling, ReturnQueuePage,
    ReturnStore, StoreError, TrackedReturn,
};
use crate::services::payments::{PaymentService, PaymentServiceError};
use crate::services::shipping::{LabelPurchase, Labels, PurchaseError, buy_once};

/// How often a step is planned again after losing a race before giving up (409).
const ATTEMPTS: usize = 5;

/// The default of `RETURN_WINDOW_DAYS`.
pub const DEFAULT_RETURN_WINDOW_DAYS: u32 = 30;

#[derive(Debug, thiserror::Error)]
pub enum ReturnError {
    #[error("the request is invalid")]
    Invalid(FieldErrors),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("order not found")]
    NotFound,
    #[error("order {0} has no such return")]
    ReturnNotFound(OrderId),
    #[error("order {id} is {status} and nothing of it has shipped: there is nothing to return")]
    NotReturnable { id: OrderId, status: OrderStatus },
    #[error("{field}: {requested} of {product_id} asked for, {returnable} can be returned")]
    TooMany {
        field: String,
        product_id: String,
        requested: u32,
        returnable: u32,
    },
    #[error(
        "{product_id} was not delivered within the last {days} days: the return window is closed (support can still take it back)"
    )]
    WindowClosed { product_id: String, days: u32 },
    #[error("return {id} is {status}: it cannot be {action}d")]
    Conflict {
        id: ReturnId,
        status: ReturnStatus,
        action: &'static str,
    },
    #[error(
        "return {0} was received already (by another request; the same request's retry with its Idempotency-Key is answered as it was)"
    )]
    AlreadyReceived(ReturnId),
    #[error(
        "return {id}'s refund is {state}: only a refund left for later (\"refund\": false) is released here"
    )]
    NotDeferred { id: ReturnId, state: RefundState },
    #[error("this Idempotency-Key was used with a different request")]
    KeyReused,
    #[error("concurrent requests are changing this order; retry")]
    Contention,
    #[error("the order was paid online and payments are off here: its refund cannot be made")]
    PaymentsOff,
    #[error(transparent)]
    Payment(#[from] PaymentServiceError),
    #[error(transparent)]
    Label(#[from] LabelError),
    #[error("a label for this return is being bought by another request; retry shortly")]
    LabelInProgress,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `Idempotency-Key` and the fingerprint of the body it came with.
#[derive(Debug, Clone)]
pub struct IdempotentReturn {
    pub key: String,
    pub fingerprint: String,
}

/// A step taken (or found taken by an earlier attempt of the same request).
#[derive(Debug)]
pub struct ReturnStep {
    pub order: Order,
    pub return_id: ReturnId,
    /// The same request's earlier answer, replayed.
    pub replayed: bool,
}

/// What the payments queue's backstop did with a received return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    /// Its restock and refund carried out (now, or found done by a racing request).
    Settled(ReturnId),
    Nothing(&'static str),
}

/// What a request for a return asks.
#[derive(Debug, Clone)]
pub struct ReturnRequest {
    pub items: Vec<ReturnLine>,
    pub note: Option<String>,
}

pub struct ReturnService {
    orders: Arc<dyn OrderStore>,
    returns: Arc<dyn ReturnStore>,
    restock: Arc<dyn Restock>,
    payments: Option<Arc<PaymentService>>,
    /// With Shippo on: approvals buy return labels.
    labels: Option<Labels>,
    window_days: u32,
}

impl ReturnService {
    pub fn new(
        orders: Arc<dyn OrderStore>,
        returns: Arc<dyn ReturnStore>,
        restock: Arc<dyn Restock>,
        window_days: u32,
    ) -> Self {
        ReturnService {
            orders,
            returns,
            restock,
            payments: None,
            labels: None,
            window_days,
        }
    }

    /// With Shippo on: an approval buys the return's label (unless told not to).
    pub fn with_labels(mut self, labels: Labels) -> Self {
        self.labels = Some(labels);
        self
    }

    /// With payments on: received returns of orders paid online are refunded.
    pub fn with_payments(mut self, payments: Arc<PaymentService>) -> Self {
        self.payments = Some(payments);
        self
    }

    /// The order and its returns, for its owner, admins and the fulfillment service.
    pub async fn list(&self, caller: &Principal, id: &str) -> Result<Order, ReturnError> {
        let order = self.read(id).await?;
        if caller.admin || caller.fulfillment || order.user_id == caller.user_id {
            Ok(order)
        } else {
            Err(ReturnError::NotFound)
        }
    }

    /// The returns waiting in `status`, oldest first (admins and fulfillment).
    pub async fn queue(
        &self,
        caller: &Principal,
        status: ReturnStatus,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<ReturnQueuePage, ReturnError> {
        if !(caller.admin || caller.fulfillment) {
            return Err(ReturnError::Forbidden(
                "only support and the fulfillment service read the return queue",
            ));
        }
        self.returns
            .return_queue(status, limit, cursor)
            .await?
            .ok_or_else(|| {
                let mut errors = FieldErrors::default();
                errors.add("cursor", "is not a cursor of this list");
                ReturnError::Invalid(errors)
            })
    }

    /// `POST /api/orders/{id}/returns`: the owner or an admin asks to send goods back.
    pub async fn request(
        &self,
        caller: &Principal,
        id: &str,
        request: ReturnRequest,
        idempotency: Option<IdempotentReturn>,
    ) -> Result<ReturnStep, ReturnError> {
        let order = self.read(id).await?;
        let role = if caller.admin {
            Role::Admin
        } else if order.user_id == caller.user_id {
            Role::Owner
        } else if caller.fulfillment {
            return Err(ReturnError::Forbidden(
                "returns are asked for by the order's owner or support",
            ));
        } else {
            return Err(ReturnError::NotFound);
        };
        let return_id = match &idempotency {
            Some(i) => ReturnId::for_request(order.id.as_str(), &caller.user_id, &i.key),
            None => ReturnId::fresh(),
        };
        let fingerprint = idempotency.map(|i| i.fingerprint);
        let window = self.window_days;
        self.change(order, &return_id, |current| {
            if let Some(existing) = current.return_of(&return_id) {
                // An earlier attempt of this very request: answer as it was answered.
                return if existing.fingerprint == fingerprint {
                    Ok(None)
                } else {
                    Err(ReturnError::KeyReused)
                };
            }
            returns::request_return(
                current,
                return_id.clone(),
                request.items.clone(),
                request.note.clone(),
                step(caller, role),
                window,
                fingerprint.clone(),
            )
            .map(Some)
            .map_err(|r| refused(r, current, &return_id))
        })
        .await
    }

    /// Support approves a return; with Shippo on and `label`, a return label is bought
    /// first (at most once per return, [`buy_once`] under the return's own claim)
    /// and written with the approval, its tracking number indexed in the same
    /// transaction. A label the provider refuses refuses the approval (the return
    /// stays `requested`: support fixes the address or approves with `"label":
    /// false`); a label bought for an approval that is not recorded (the return
    /// declined or cancelled meanwhile, or approved without one) is refunded.
    pub async fn approve(
        &self,
        caller: &Principal,
        id: &str,
        return_id: &str,
        label: bool,
    ) -> Result<ReturnStep, ReturnError> {
        self.admin_only(caller)?;
        let (order, return_id) = self.find(id, return_id).await?;
        // Checked before anything is bought: approved already is answered as it is,
        // and a return that cannot be approved buys nothing.
        let planned = returns::approve(&order, &return_id, step(caller, Role::Admin), None)
            .map_err(|r| refused(r, &order, &return_id))?;
        let bought = match (&self.labels, label, planned) {
            (Some(labels), true, Some(_)) => {
                Some(self.buy_label(labels, &order, &return_id).await?)
            }
            _ => None,
        };
        let indexed = bought.as_ref().map(|l| TrackedReturn {
            return_id: return_id.clone(),
            carrier: l.carrier.clone(),
            tracking_number: l.tracking_number.clone(),
        });
        let taken = self
            .change_indexed(order, &return_id, indexed.as_ref(), |current| {
                returns::approve(
                    current,
                    &return_id,
                    step(caller, Role::Admin),
                    bought.clone(),
                )
                .map_err(|r| refused(r, current, &return_id))
            })
            .await;
        if let (Some(labels), Some(mine)) = (&self.labels, &bought) {
            let recorded = match &taken {
                Ok(step) => step
                    .order
                    .return_of(&return_id)
                    .and_then(|r| r.label.as_ref())
                    .is_some_and(|l| l.transaction_id == mine.transaction_id),
                // The write may have happened: the retry finds the label by its rate.
                Err(ReturnError::Store(_) | ReturnError::Contention) => true,
                Err(_) => false,
            };
            if !recorded {
                refund_unrecorded(labels, mine, &return_id).await;
            }
        }
        taken
    }

    /// Buys return `id`'s label: the outbound shipment's addresses as they were
    /// (warehouse → customer) marked a return, the default parcel, the cheapest rate.
    async fn buy_label(
        &self,
        labels: &Labels,
        order: &Order,
        id: &ReturnId,
    ) -> Result<ReturnLabel, ReturnError> {
        let reference = format!("{} {id}", order.id);
        let purchase = LabelPurchase {
            label: id.as_str(),
            reference: &reference,
            address: &order.shipping_address,
            parcel: &labels.default_parcel,
            servicelevel: None,
            direction: LabelDirection::Return,
        };
        let (rate, label) = buy_once(labels, &purchase).await.map_err(|e| match e {
            PurchaseError::InProgress => ReturnError::LabelInProgress,
            PurchaseError::Label(e) => ReturnError::Label(e),
            PurchaseError::Store(e) => ReturnError::Store(e),
        })?;
        tracing::info!(order_id = %order.id, return_id = %id, tracking_number = %label.tracking_number, "return label bought");
        Ok(ReturnLabel {
            carrier: rate.carrier,
            tracking_number: label.tracking_number,
            tracking_url: label.tracking_url,
            label_url: label.label_url,
            transaction_id: label.transaction_id,
            status: ShipmentStatus::LabelCreated,
            tracking: Vec::new(),
        })
    }

    /// Support declines a return not yet received, saying why.
    pub async fn decline(
        &self,
        caller: &Principal,
        id: &str,
        return_id: &str,
        reason: String,
    ) -> Result<ReturnStep, ReturnError> {
        self.admin_only(caller)?;
        let (order, return_id) = self.find(id, return_id).await?;
        self.change(order, &return_id, |current| {
            returns::decline(
                current,
                &return_id,
                step(caller, Role::Admin),
                reason.clone(),
            )
            .map_err(|r| refused(r, current, &return_id))
        })
        .await
    }

    /// The owner (or support) withdraws a return before it is received.
    pub async fn cancel(
        &self,
        caller: &Principal,
        id: &str,
        return_id: &str,
    ) -> Result<ReturnStep, ReturnError> {
        let (order, return_id) = self.find(id, return_id).await?;
        let role = if caller.admin {
            Role::Admin
        } else if order.user_id == caller.user_id {
            Role::Owner
        } else if caller.fulfillment {
            return Err(ReturnError::Forbidden(
                "returns are cancelled by the order's owner or support",
            ));
        } else {
            return Err(ReturnError::NotFound);
        };
        self.change(order, &return_id, |current| {
            returns::cancel(current, &return_id, step(caller, role))
                .map_err(|r| refused(r, current, &return_id))
        })
        .await
    }

    /// The warehouse receives a return: one write records it `received` with what to
    /// restock and refund; then both are carried out (see the module's note).
    pub async fn receive(
        &self,
        caller: &Principal,
        id: &str,
        return_id: &str,
        mut request: ReceiveRequest,
        restocking_fee: Option<String>,
        idempotency: Option<IdempotentReturn>,
    ) -> Result<ReturnStep, ReturnError> {
        let role = if caller.admin {
            Role::Admin
        } else if caller.fulfillment {
            Role::Fulfillment
        } else {
            return Err(ReturnError::Forbidden(
                "only support and the fulfillment service receive returns",
            ));
        };
        let (order, return_id) = self.find(id, return_id).await?;
        if let Some(fee) = restocking_fee {
            let currency = order.total.currency();
            request.restocking_fee = Some(Money::parse(&fee, currency).map_err(|e| {
                let mut errors = FieldErrors::default();
                errors.add("restocking_fee", format!("{e} (in {})", currency.code()));
                ReturnError::Invalid(errors)
            })?);
        }
        // The receipt remembers the request (caller, key, body): its retry is
        // recognised, any other receive refused.
        let fingerprint = idempotency
            .map(|i| fingerprint_of(&format!("{}\0{}\0{}", caller.user_id, i.key, i.fingerprint)));
        let taken = self
            .change(order, &return_id, |current| {
                let receipt = current
                    .return_of(&return_id)
                    .and_then(|r| r.receipt.as_ref());
                if let Some(receipt) = receipt
                    && fingerprint.is_some()
                    && receipt.fingerprint == fingerprint
                {
                    return Ok(None);
                }
                returns::receive(
                    current,
                    &return_id,
                    &request,
                    step(caller, role),
                    fingerprint.clone(),
                )
                .map(Some)
                .map_err(|r| refused(r, current, &return_id))
            })
            .await?;
        let order = self
            .settle_or_leave(taken.order, &return_id, caller, role)
            .await?;
        Ok(ReturnStep { order, ..taken })
    }

    /// `POST …/refund`: releases the refund of a return received with `"refund":
    /// false`, or finishes one a failed request left pending.
    pub async fn refund(
        &self,
        caller: &Principal,
        id: &str,
        return_id: &str,
    ) -> Result<ReturnStep, ReturnError> {
        if !(caller.admin || caller.refunds) {
            return Err(ReturnError::Forbidden(
                "only support (the refund or admin scope) refunds returns",
            ));
        }
        let (order, return_id) = self.find(id, return_id).await?;
        let taken = self
            .change(order, &return_id, |current| {
                let pending = current
                    .return_of(&return_id)
                    .and_then(|r| r.receipt.as_ref())
                    .is_some_and(|r| !r.settled());
                if pending {
                    // Left unfinished by a failed request: finish it, nothing to write.
                    return Ok(None);
                }
                returns::release_refund(current, &return_id, step(caller, Role::Admin))
                    .map(Some)
                    .map_err(|r| refused(r, current, &return_id))
            })
            .await?;
        // Asked for by a person: a failure is theirs to see (and retry).
        let order = self
            .settle(taken.order, &return_id, caller, Role::Admin)
            .await?;
        Ok(ReturnStep {
            order,
            replayed: false,
            return_id,
        })
    }

    /// The payments queue's backstop (`settle-payments`, from `order.return_received`):
    /// a receipt still unsettled in the stored order (the receive's request died, or
    /// lost its refund to an outage: answered 202) is carried out as the request
    /// would have, by the same keyed restock and refund, so it is done once however
    /// it races the request, its retry or `POST …/refund`. An error (the provider
    /// unavailable, a refund in flight elsewhere) leaves the message for a retry.
    pub async fn finish_received(&self, body: Option<&str>) -> Result<Finished, ReturnError> {
        let Ok(envelope) = serde_json::from_str::<Envelope>(body.unwrap_or_default()) else {
            return Ok(Finished::Nothing("not an order event"));
        };
        let event = &envelope.detail;
        let (Some(order_id), Some(return_id)) = (
            OrderId::parse(&event.order_id),
            event.return_id.as_deref().and_then(ReturnId::parse),
        ) else {
            return Ok(Finished::Nothing("the event names no return"));
        };
        // The stored order decides, not the event: it may be stale or not ours.
        let Some(order) = self.orders.get(&order_id).await? else {
            return Ok(Finished::Nothing("no such order"));
        };
        let unsettled = order
            .return_of(&return_id)
            .and_then(|r| r.receipt.as_ref())
            .is_some_and(|r| !r.settled());
        if !unsettled {
            return Ok(Finished::Nothing("settled already, or nothing to settle"));
        }
        let caller = Principal {
            user_id: crate::domain::payment::PAYMENTS_ACTOR.to_string(),
            admin: false,
            fulfillment: false,
            refunds: true,
            webhooks: false,
            email: None,
            phone: None,
        };
        let after = self
            .settle(order, &return_id, &caller, Role::Payments)
            .await?;
        let state = after
            .return_of(&return_id)
            .and_then(|r| r.receipt.as_ref())
            .map(|r| r.refund_state);
        tracing::info!(%order_id, %return_id, ?state, "received return settled by the payments queue");
        Ok(Finished::Settled(return_id))
    }

    /// [`Self::settle`], or, when it fails (the provider unavailable), the order as it
    /// now is: the return stays received with its receipt unsettled (answered 202),
    /// and `POST …/refund` or the receive's retry finishes it.
    async fn settle_or_leave(
        &self,
        order: Order,
        id: &ReturnId,
        caller: &Principal,
        role: Role,
    ) -> Result<Order, ReturnError> {
        let order_id = order.id.clone();
        match self.settle(order, id, caller, role).await {
            Ok(order) => Ok(order),
            Err(err) => {
                tracing::warn!(%order_id, return_id = %id, error = %err, "return received, its restock or refund left to finish");
                self.orders
                    .get(&order_id)
                    .await?
                    .ok_or(ReturnError::NotFound)
            }
        }
    }

    /// Carries out return `id`'s receipt: restock, refund, then records both on the
    /// return. Each part is keyed by the return, so a repeat does nothing twice.
    async fn settle(
        &self,
        mut order: Order,
        id: &ReturnId,
        caller: &Principal,
        role: Role,
    ) -> Result<Order, ReturnError> {
        let Some(receipt) = order.return_of(id).and_then(|r| r.receipt.clone()) else {
            return Ok(order);
        };
        let mut restocked = false;
        let lines: Vec<StockLine> = receipt
            .to_restock()
            .map(|l| StockLine {
                product_id: l.product_id.clone(),
                quantity: u64::from(l.quantity),
            })
            .collect();
        if !receipt.restocked && !lines.is_empty() {
            let outcome = self.restock.restock(id.as_str(), &lines).await?;
            tracing::info!(order_id = %order.id, return_id = %id, ?outcome, "return restocked");
            restocked = true;
        }
        // A refund that fails leaves the restock recorded, then fails the call.
        let mut refund_id = None;
        let mut failure = None;
        if receipt.refund_state == RefundState::Pending {
            match &self.payments {
                None => failure = Some(ReturnError::PaymentsOff),
                Some(payments) => match payments
                    .refund_return(
                        order.clone(),
                        returns::refund_key(id),
                        receipt.refund,
                        &caller.user_id,
                        format!("return {id}"),
                        receipt.allocation.clone(),
                    )
                    .await
                {
                    Ok((after, made)) => {
                        tracing::info!(order_id = %after.id, return_id = %id, refund_id = %made, "return refunded");
                        order = after;
                        refund_id = Some(made);
                    }
                    Err(err) => failure = Some(err.into()),
                },
            }
        }
        for _ in 0..ATTEMPTS {
            let Some(after) =
                returns::settled(&order, id, restocked, refund_id.clone(), step(caller, role))
            else {
                return failure.map_or(Ok(order), Err);
            };
            match self.returns.record_return(&after, None, None).await? {
                ChangeOutcome::Changed(after) => return failure.map_or(Ok(*after), Err),
                ChangeOutcome::Refused(Some(current)) => order = *current,
                ChangeOutcome::Refused(None) => return Err(ReturnError::NotFound),
            }
        }
        Err(ReturnError::Contention)
    }

    /// Plans with `plan` on the order as read and writes the plan on that version;
    /// plans again on the order a lost race returns. `Ok(None)` from the plan: nothing
    /// to write (a replay, or the step taken already), answered as the order is.
    async fn change(
        &self,
        current: Order,
        return_id: &ReturnId,
        plan: impl Fn(&Order) -> Result<Option<Order>, ReturnError>,
    ) -> Result<ReturnStep, ReturnError> {
        self.change_indexed(current, return_id, None, plan).await
    }

    /// [`Self::change`], indexing a return label's tracking number with the write.
    async fn change_indexed(
        &self,
        mut current: Order,
        return_id: &ReturnId,
        indexed: Option<&TrackedReturn>,
        plan: impl Fn(&Order) -> Result<Option<Order>, ReturnError>,
    ) -> Result<ReturnStep, ReturnError> {
        for _ in 0..ATTEMPTS {
            let Some(after) = plan(&current)? else {
                return Ok(ReturnStep {
                    order: current,
                    return_id: return_id.clone(),
                    replayed: true,
                });
            };
            let from = current.return_of(return_id).map(|r| r.status);
            let to = after.return_of(return_id).map(|r| r.status);
            let filing = (from != to).then(|| ReturnFiling {
                return_id: return_id.clone(),
                from,
            });
            match self
                .returns
                .record_return(&after, filing.as_ref(), indexed)
                .await?
            {
                ChangeOutcome::Changed(order) => {
                    tracing::info!(order_id = %order.id, %return_id, status = ?to, "return recorded");
                    return Ok(ReturnStep {
                        order: *order,
                        return_id: return_id.clone(),
                        replayed: false,
                    });
                }
                ChangeOutcome::Refused(None) => return Err(ReturnError::NotFound),
                // Someone changed the order since it was read: plan again from it.
                ChangeOutcome::Refused(Some(order)) => current = *order,
            }
        }
        Err(ReturnError::Contention)
    }

    async fn read(&self, id: &str) -> Result<Order, ReturnError> {
        let id = OrderId::parse(id).ok_or(ReturnError::NotFound)?;
        self.orders.get(&id).await?.ok_or(ReturnError::NotFound)
    }

    /// The order and the id of one of its returns; a return it does not have is 404.
    async fn find(&self, id: &str, return_id: &str) -> Result<(Order, ReturnId), ReturnError> {
        let order = self.read(id).await?;
        let return_id = ReturnId::parse(return_id)
            .filter(|r| order.return_of(r).is_some())
            .ok_or_else(|| ReturnError::ReturnNotFound(order.id.clone()))?;
        Ok((order, return_id))
    }

    fn admin_only(&self, caller: &Principal) -> Result<(), ReturnError> {
        if caller.admin {
            Ok(())
        } else {
            Err(ReturnError::Forbidden(
                "only support approves and declines returns",
            ))
        }
    }
}

/// Refunds a return label bought for an approval that was not recorded, so it is
/// not paid for silently; a refund that fails is logged for a person to void it.
async fn refund_unrecorded(labels: &Labels, label: &ReturnLabel, id: &ReturnId) {
    match labels.provider.refund(&label.transaction_id).await {
        Ok(()) => {
            tracing::warn!(return_id = %id, transaction = %label.transaction_id, "a return label whose approval was not recorded was refunded")
        }
        Err(err) => {
            tracing::error!(return_id = %id, transaction = %label.transaction_id, error = %err, "a return label whose approval was not recorded could not be refunded: void it at Shippo")
        }
    }
}

fn step(caller: &Principal, role: Role) -> Step {
    Step {
        at: OffsetDateTime::now_utc(),
        actor: caller.user_id.clone(),
        role,
    }
}

fn fingerprint_of(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest
        .as_ref()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn refused(refusal: ReturnRefusal, order: &Order, id: &ReturnId) -> ReturnError {
    match refusal {
        ReturnRefusal::Invalid(errors) => ReturnError::Invalid(errors),
        ReturnRefusal::NotReturnable(status) => ReturnError::NotReturnable {
            id: order.id.clone(),
            status,
        },
        ReturnRefusal::TooMany {
            field,
            product_id,
            requested,
            returnable,
        } => ReturnError::TooMany {
            field,
            product_id,
            requested,
            returnable,
        },
        ReturnRefusal::WindowClosed { product_id, days } => {
            ReturnError::WindowClosed { product_id, days }
        }
        ReturnRefusal::NotFound => ReturnError::ReturnNotFound(order.id.clone()),
        ReturnRefusal::Conflict { status, action } => ReturnError::Conflict {
            id: id.clone(),
            status,
            action,
        },
        ReturnRefusal::AlreadyReceived => ReturnError::AlreadyReceived(id.clone()),
        ReturnRefusal::NotDeferred(state) => ReturnError::NotDeferred {
            id: id.clone(),
            state,
        },
    }
}
