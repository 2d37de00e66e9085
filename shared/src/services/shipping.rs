//! Shipping: an order's parcels. `POST /api/orders/{id}/shipments` adds one (by line
//! and quantity, with a hand-entered tracking number), `GET …/shipments` lists them.
//!
//! Every change is planned from the order as read and written in one conditional
//! write on the version it was read at (`ShipmentStore::record_shipping`); a write
//! that loses a race gets the order as it now is and plans again from it, so two
//! concurrent parcels never ship the same line twice. An `Idempotency-Key` names the
//! shipment (`ShipmentId::for_request`): a retry finds the shipment its first attempt
//! wrote on the order itself and is answered with it, so no key ever makes two.
//!
//! A label is bought under a hold on the order (`LabelClaims::hold_order`), taken
//! before the order is read and kept until the parcel is written: one purchase per
//! order at a time, so an automatic label (`SHIPPING_LABELS=auto`, fulfillment's
//! `automatic_label`) and an admin's call never both buy one for the same lines. A
//! label whose parcel still loses the race (its lines shipped by hand meanwhile) is
//! refunded before the refusal is answered.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::domain::fulfillment::label_failure::label_failed;
use crate::domain::fulfillment::returns::track_return;
use crate::domain::fulfillment::shipment::{
    VoidRefusal, add_shipment, parcel_lines, shippable, tracked, void,
};
use crate::domain::fulfillment::tracking::track;
use crate::domain::fulfillment::{
    Parcel, Shipment, ShipmentId, ShipmentLine, ShipmentRefusal, ShipmentStatus,
};
use crate::domain::stock::{ShippedOutcome, Shortfall, StockLine};
use crate::domain::{FieldErrors, Order, OrderId, Principal, Role, ShippingStatus};
use crate::ports::{
    ChangeOutcome, Inventory, Label, LabelClaims, LabelDirection, LabelError, LabelProvider,
    LabelRate, Metric, MetricSet, Metrics, OrderStore, ReturnStore, ShipmentStore, StoreError,
    TrackingOf,
};

/// How often a shipment is planned again after losing a race before giving up (409).
const ATTEMPTS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum ShipmentError {
    #[error("the request is invalid")]
    Invalid(FieldErrors),
    #[error("only admins and the fulfillment service ship orders")]
    Forbidden,
    #[error("order not found")]
    NotFound,
    #[error("order {} is {}; only a confirmed order ships", current.id, current.status)]
    NotShippable { current: Box<Order> },
    #[error(
        "order {} is backordered: no stock is reserved for it, so it cannot be shipped until fulfillment reserves it",
        current.id
    )]
    Backordered { current: Box<Order> },
    #[error("{field}: {requested} of {product_id} asked for, {unshipped} left unshipped")]
    TooMany {
        field: String,
        product_id: String,
        requested: u32,
        unshipped: u32,
    },
    #[error("every line of order {0} is shipped already")]
    NothingToShip(OrderId),
    #[error("this Idempotency-Key was used with a different request")]
    KeyReused,
    #[error("concurrent requests are changing this order; retry")]
    Contention,
    #[error(transparent)]
    Label(#[from] LabelError),
    #[error("a label for this order is being bought by another request; retry shortly")]
    LabelInProgress,
    #[error(
        "parcel only describes a label to buy, and no label provider is configured: give carrier and tracking_number"
    )]
    LabelsOff,
    #[error("Shippo is off here (no SHIPPO_API_TOKEN)")]
    ShippoOff,
    #[error("order {0} has no such shipment")]
    ShipmentNotFound(OrderId),
    #[error("shipment is {0}: only a label the carrier does not have yet can be voided")]
    NotVoidable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a caller asks to ship; every member optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShipmentRequest {
    /// Left out: everything not yet shipped.
    pub items: Option<Vec<ShipmentLine>>,
    /// Shippo's carrier token, lower case.
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub servicelevel: Option<String>,
    /// The box, for a label; the configured default when left out.
    pub parcel: Option<Parcel>,
}

/// `Idempotency-Key` and the fingerprint of the body it came with.
#[derive(Debug, Clone)]
pub struct IdempotentShipment {
    pub key: String,
    pub fingerprint: String,
}

/// What a carrier's report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CarrierReport {
    /// No parcel has that tracking number: ignored.
    Unknown,
    /// Shippo's tracking held nothing the parcels did not have (a resend).
    NothingNew,
    /// This many parcels changed.
    Recorded(usize),
}

/// What buying an order's automatic label did.
#[derive(Debug)]
pub enum AutomaticLabel {
    /// Bought and recorded, now or by an earlier delivery of the same message.
    Bought(Box<Order>),
    /// The provider refused it: the order is `label_failed` with its messages.
    Refused(Vec<String>),
    /// The order no longer waits for one (shipped, even in part, by hand; cancelled).
    NothingToDo(Box<Order>),
}

/// The `actor` of automatic labels, and the key that makes them one per order.
pub const AUTOMATIC_ACTOR: &str = "fulfillment";

/// A shipment made (or found made by an earlier attempt of the same request).
#[derive(Debug)]
pub struct Shipped {
    pub order: Order,
    pub shipment: Shipment,
    pub replayed: bool,
}

pub struct ShippingService {
    orders: Arc<dyn OrderStore>,
    shipments: Arc<dyn ShipmentStore>,
    inventory: Arc<dyn Inventory>,
    metrics: Arc<dyn Metrics>,
    labels: Option<Labels>,
    /// Where return labels' tracking is written (`None`: their reports are ignored).
    returns: Option<Arc<dyn ReturnStore>>,
}

/// What buying labels takes: the provider, the claims that keep one purchase per
/// shipment, and the parcel used when a request names none.
pub struct Labels {
    pub provider: Arc<dyn LabelProvider>,
    pub claims: Arc<dyn LabelClaims>,
    pub default_parcel: Parcel,
}

/// How long one attempt may hold a label purchase before another may take it over
/// (it died): longer than a quote and a purchase take together.
const LABEL_LEASE: time::Duration = time::Duration::seconds(60);

impl ShippingService {
    pub fn new(
        orders: Arc<dyn OrderStore>,
        shipments: Arc<dyn ShipmentStore>,
        inventory: Arc<dyn Inventory>,
        metrics: Arc<dyn Metrics>,
    ) -> Self {
        ShippingService {
            orders,
            shipments,
            inventory,
            metrics,
            labels: None,
            returns: None,
        }
    }

    /// The carrier's reports on return labels move the returns' labels, written here.
    pub fn with_return_tracking(mut self, returns: Arc<dyn ReturnStore>) -> Self {
        self.returns = Some(returns);
        self
    }

    /// With Shippo: a shipment without a tracking number buys its label, and a
    /// hand-entered number is registered for tracking.
    pub fn with_labels(mut self, labels: Labels) -> Self {
        self.labels = Some(labels);
        self
    }

    /// The order's parcels, for whoever may read the order.
    pub async fn list(&self, caller: &Principal, id: &str) -> Result<Order, ShipmentError> {
        let id = OrderId::parse(id).ok_or(ShipmentError::NotFound)?;
        match self.orders.get(&id).await? {
            Some(order)
                if caller.admin || caller.fulfillment || order.user_id == caller.user_id =>
            {
                Ok(order)
            }
            _ => Err(ShipmentError::NotFound),
        }
    }

    /// Ships `request`'s lines of the order as one parcel.
    pub async fn create(
        &self,
        caller: &Principal,
        id: &str,
        request: ShipmentRequest,
        idempotency: Option<IdempotentShipment>,
    ) -> Result<Shipped, ShipmentError> {
        let role = if caller.admin {
            Role::Admin
        } else if caller.fulfillment {
            Role::Fulfillment
        } else {
            return Err(ShipmentError::Forbidden);
        };
        let id = OrderId::parse(id).ok_or(ShipmentError::NotFound)?;
        let shipment_id = match &idempotency {
            Some(i) => ShipmentId::for_request(id.as_str(), &caller.user_id, &i.key),
            None => ShipmentId::fresh(),
        };
        let fingerprint = idempotency.map(|i| i.fingerprint);
        let labels = match (&self.labels, &request.tracking_number) {
            (Some(labels), None) => labels,
            (None, _) if request.parcel.is_some() => return Err(ShipmentError::LabelsOff),
            // Nothing to buy: no hold needed.
            _ => {
                return self
                    .ship(caller, role, &id, shipment_id, request, fingerprint)
                    .await;
            }
        };
        let now = OffsetDateTime::now_utc();
        let Some(hold) = labels
            .claims
            .hold_order(&id, now, now + LABEL_LEASE)
            .await?
        else {
            return Err(ShipmentError::LabelInProgress);
        };
        let shipped = self
            .ship(caller, role, &id, shipment_id, request, fingerprint)
            .await;
        if let Err(err) = labels.claims.release_order(&id, &hold).await {
            tracing::warn!(order_id = %id, error = %err, "label hold not released; its lease will run out");
        }
        shipped
    }

    /// Plans the parcel on the order as read, buys its label if it needs one, and
    /// writes it; plans again from the order as it is after losing a race.
    async fn ship(
        &self,
        caller: &Principal,
        role: Role,
        id: &OrderId,
        shipment_id: ShipmentId,
        request: ShipmentRequest,
        fingerprint: Option<String>,
    ) -> Result<Shipped, ShipmentError> {
        let mut current = self.orders.get(id).await?.ok_or(ShipmentError::NotFound)?;
        let mut reserved = false;
        // A retried label request whose parcel cannot be made any more may have left a
        // label behind (an earlier attempt died, or lost Shippo's answer, before its
        // write): found by the rate its claim remembers, it goes back too.
        let earlier =
            (self.labels.is_some() && request.tracking_number.is_none() && fingerprint.is_some())
                .then_some(&shipment_id);
        // The label bought for this request, and the lines it was bought for: a plan
        // made again after a lost race keeps them.
        let mut bought: Option<(LabelRate, Label, Vec<ShipmentLine>)> = None;
        for _ in 0..ATTEMPTS {
            if let Some(existing) = current.shipment(&shipment_id) {
                // An earlier attempt of this very request: answer as it was answered.
                if existing.fingerprint != fingerprint {
                    return Err(ShipmentError::KeyReused);
                }
                let shipment = existing.clone();
                return Ok(Shipped {
                    order: current,
                    shipment,
                    replayed: true,
                });
            }
            let now = OffsetDateTime::now_utc();
            let asked = match &bought {
                Some((_, _, items)) => Some(items.as_slice()),
                None => request.items.as_deref(),
            };
            let items = match shippable(&current).and_then(|()| parcel_lines(&current, asked)) {
                Ok(items) => items,
                // Shipped or cancelled meanwhile: a label bought for these lines goes back.
                Err(r) => {
                    return Err(self.unbuy(&bought, earlier, refused(r, &current)).await);
                }
            };
            let mut shipment = Shipment {
                shipment_id: shipment_id.clone(),
                items,
                carrier: request.carrier.clone(),
                servicelevel: request.servicelevel.clone(),
                tracking_number: request.tracking_number.clone(),
                tracking_url: None,
                label_url: None,
                cost: None,
                // Handed to the carrier by a person: on its way.
                status: ShipmentStatus::InTransit,
                tracking: Vec::new(),
                created_at: now,
                fingerprint: fingerprint.clone(),
                label_transaction: None,
            };
            if let (Some(labels), None, None) = (&self.labels, &request.tracking_number, &bought) {
                // Checked first that the order ships these lines; then the label.
                add_shipment(&current, shipment.clone(), &caller.user_id, role)
                    .map_err(|r| refused(r, &current))?;
                let (rate, label) = self
                    .buy_label(labels, &current, &shipment_id, &request)
                    .await?;
                bought = Some((rate, label, shipment.items.clone()));
            }
            if let Some((rate, label, _)) = &bought {
                shipment.carrier = Some(rate.carrier.clone());
                shipment.servicelevel = rate.servicelevel.clone();
                shipment.tracking_number = Some(label.tracking_number.clone());
                shipment.tracking_url = label.tracking_url.clone();
                shipment.label_url = label.label_url.clone();
                shipment.cost = rate.cost;
                shipment.label_transaction = Some(label.transaction_id.clone());
                shipment.status = ShipmentStatus::LabelCreated;
            }
            let change = match add_shipment(&current, shipment.clone(), &caller.user_id, role) {
                Ok(change) => change,
                Err(r) => {
                    return Err(self.unbuy(&bought, earlier, refused(r, &current)).await);
                }
            };
            if !reserved {
                // Goods that ship come off the stock: the order's reservation, made
                // now if fulfillment has not made it yet (at most once per order).
                self.reserve(&current).await?;
                reserved = true;
            }
            let after = change.apply(&current);
            match self
                .shipments
                .record_shipping(&after, &change.indexed)
                .await?
            {
                ChangeOutcome::Changed(order) => {
                    tracing::info!(order_id = %id, shipment_id = %shipment_id, status = %order.status, "shipment recorded");
                    self.register_tracking(&shipment, bought.is_some()).await;
                    return Ok(Shipped {
                        order: *order,
                        shipment,
                        replayed: false,
                    });
                }
                ChangeOutcome::Refused(None) => {
                    return Err(self.unbuy(&bought, earlier, ShipmentError::NotFound).await);
                }
                // Someone changed the order since it was read: plan again from it.
                ChangeOutcome::Refused(Some(order)) => current = *order,
            }
        }
        Err(self.unbuy(&bought, None, ShipmentError::Contention).await)
    }

    /// A label bought for a parcel that will not be recorded (its lines shipped by
    /// another meanwhile, the order cancelled or changing too fast) is refunded, so
    /// it is not paid for silently; then `refusal` is the answer. Without one bought
    /// by this attempt, the label an `earlier` attempt of the same request bought, if
    /// any. A refund that fails is logged for a person to void the label at Shippo.
    async fn unbuy(
        &self,
        bought: &Option<(LabelRate, Label, Vec<ShipmentLine>)>,
        earlier: Option<&ShipmentId>,
        refusal: ShipmentError,
    ) -> ShipmentError {
        let Some(labels) = &self.labels else {
            return refusal;
        };
        let label = match (bought, earlier) {
            (Some((_, label, _)), _) => label.clone(),
            (None, Some(shipment_id)) => match self.earlier_label(labels, shipment_id).await {
                Ok(Some(label)) => label,
                Ok(None) => return refusal,
                Err(err) => {
                    tracing::warn!(%shipment_id, error = %err, "an earlier attempt's label not looked for");
                    return refusal;
                }
            },
            (None, None) => return refusal,
        };
        self.refund_unrecorded(labels, &label, &refusal.to_string())
            .await;
        refusal
    }

    /// The label an earlier attempt of `shipment_id`'s request bought at the rate its
    /// claim remembers and never recorded, if it bought one. Taken with the claim, so
    /// an attempt buying it right now is left alone (it records or refunds its own).
    async fn earlier_label(
        &self,
        labels: &Labels,
        shipment_id: &ShipmentId,
    ) -> Result<Option<Label>, ShipmentError> {
        let now = OffsetDateTime::now_utc();
        let Some((claim, rate)) = labels
            .claims
            .claim(shipment_id.as_str(), now, now + LABEL_LEASE)
            .await?
        else {
            return Ok(None);
        };
        let label = match rate {
            // It never chose a rate: it bought nothing.
            None => Ok(None),
            Some(rate) => labels.provider.purchased(&rate).await.map_err(Into::into),
        };
        if let Err(err) = labels.claims.release(shipment_id.as_str(), &claim).await {
            tracing::warn!(%shipment_id, error = %err, "label claim not released; its lease will run out");
        }
        label
    }

    /// Refunds `label`, bought for a parcel that will not be recorded (`why`). A
    /// refund that fails is logged for a person to void the label at Shippo.
    async fn refund_unrecorded(&self, labels: &Labels, label: &Label, why: &str) {
        match labels.provider.refund(&label.transaction_id).await {
            Ok(()) => tracing::warn!(
                transaction = %label.transaction_id,
                tracking_number = %label.tracking_number,
                %why,
                "a label bought for a parcel that was not recorded was refunded"
            ),
            Err(err) => tracing::error!(
                transaction = %label.transaction_id,
                tracking_number = %label.tracking_number,
                %why,
                error = %err,
                "a label bought for a parcel that was not recorded could not be refunded: void it at Shippo"
            ),
        }
    }

    /// For fulfillment, when an order moved on (shipped by hand, even in part, or
    /// cancelled) without its automatic label: the label an earlier delivery of its
    /// message bought and never recorded (it died, or lost Shippo's answer), if any,
    /// is refunded. Under the order's label hold, so a purchase under way is left to
    /// record or refund its own. An outage is an error, for the queue to retry.
    pub async fn return_unrecorded_automatic_label(
        &self,
        order: &Order,
    ) -> Result<(), ShipmentError> {
        let Some(labels) = &self.labels else {
            return Ok(());
        };
        let (caller, idempotency) = automatic_request(&order.id);
        let shipment_id =
            ShipmentId::for_request(order.id.as_str(), &caller.user_id, &idempotency.key);
        if order.shipment(&shipment_id).is_some() {
            return Ok(());
        }
        let now = OffsetDateTime::now_utc();
        let Some(hold) = labels
            .claims
            .hold_order(&order.id, now, now + LABEL_LEASE)
            .await?
        else {
            return Ok(());
        };
        let found = self.earlier_label(labels, &shipment_id).await;
        if let Ok(Some(label)) = &found {
            let why = format!(
                "order {} moved on to {}/{} without it",
                order.id, order.status, order.shipping_status
            );
            self.refund_unrecorded(labels, label, &why).await;
        }
        if let Err(err) = labels.claims.release_order(&order.id, &hold).await {
            tracing::warn!(order_id = %order.id, error = %err, "label hold not released; its lease will run out");
        }
        found.map(|_| ())
    }

    /// Buys the whole order's label as `POST …/shipments` with no body would, for
    /// fulfillment (`SHIPPING_LABELS=auto`), under the key `auto-label:<order>`: a
    /// redelivered message finds the parcel its first delivery made, and the order's
    /// label hold keeps a concurrent admin call from buying a second one. A refusal
    /// (bad address, no rate) marks the order `label_failed` with the provider's
    /// messages in one conditional write (event `order.shipment_failed`), and is
    /// counted (`LabelFailures`); an outage is an error, for the queue to retry.
    pub async fn automatic_label(&self, id: &OrderId) -> Result<AutomaticLabel, ShipmentError> {
        let (caller, idempotency) = automatic_request(id);
        let shipped = self
            .create(
                &caller,
                id.as_str(),
                ShipmentRequest::default(),
                Some(idempotency),
            )
            .await;
        match shipped {
            Ok(shipped) => Ok(AutomaticLabel::Bought(Box::new(shipped.order))),
            Err(ShipmentError::Label(LabelError::Refused(messages))) => {
                self.record_label_failure(id, messages).await
            }
            // Shipped by hand (even in part) or cancelled since it was confirmed.
            Err(
                ShipmentError::NotShippable { current } | ShipmentError::Backordered { current },
            ) => Ok(AutomaticLabel::NothingToDo(current)),
            Err(ShipmentError::NothingToShip(_) | ShipmentError::TooMany { .. }) => {
                let current = self.orders.get(id).await?.ok_or(ShipmentError::NotFound)?;
                Ok(AutomaticLabel::NothingToDo(Box::new(current)))
            }
            Err(err) => Err(err),
        }
    }

    /// Marks the order `label_failed` with the provider's `messages`, in one
    /// conditional write on the version it was planned from.
    async fn record_label_failure(
        &self,
        id: &OrderId,
        messages: Vec<String>,
    ) -> Result<AutomaticLabel, ShipmentError> {
        tracing::warn!(order_id = %id, ?messages, "the shipping provider refused the automatic label");
        self.metrics
            .record(MetricSet::of(Metric::LabelFailures, 1.0).by("provider", "shippo"));
        let mut current = self.orders.get(id).await?.ok_or(ShipmentError::NotFound)?;
        for _ in 0..ATTEMPTS {
            let now = OffsetDateTime::now_utc();
            let Some(after) = label_failed(
                &current,
                messages.clone(),
                AUTOMATIC_ACTOR,
                Role::Fulfillment,
                now,
            ) else {
                return Ok(match current.shipping_status {
                    ShippingStatus::LabelFailed => AutomaticLabel::Refused(messages),
                    _ => AutomaticLabel::NothingToDo(Box::new(current)),
                });
            };
            match self.shipments.record_shipping(&after, &[]).await? {
                ChangeOutcome::Changed(_) => return Ok(AutomaticLabel::Refused(messages)),
                ChangeOutcome::Refused(None) => return Err(ShipmentError::NotFound),
                ChangeOutcome::Refused(Some(order)) => current = *order,
            }
        }
        Err(ShipmentError::Contention)
    }

    /// Buys the label of `shipment_id` at most once ([`buy_once`]); a concurrent twin
    /// of the request gets 409.
    async fn buy_label(
        &self,
        labels: &Labels,
        order: &Order,
        shipment_id: &ShipmentId,
        request: &ShipmentRequest,
    ) -> Result<(LabelRate, Label), ShipmentError> {
        let reference = format!("{} {shipment_id}", order.id);
        let parcel = request.parcel.as_ref().unwrap_or(&labels.default_parcel);
        let purchase = LabelPurchase {
            label: shipment_id.as_str(),
            reference: &reference,
            address: &order.shipping_address,
            parcel,
            servicelevel: request.servicelevel.as_deref(),
            direction: LabelDirection::Outbound,
        };
        buy_once(labels, &purchase).await.map_err(|e| match e {
            PurchaseError::InProgress => ShipmentError::LabelInProgress,
            PurchaseError::Label(e) => ShipmentError::Label(e),
            PurchaseError::Store(e) => ShipmentError::Store(e),
        })
    }

    /// With Shippo on, a hand-entered number is registered so its tracking arrives.
    /// The parcel is recorded either way: a failure is logged, not the caller's.
    async fn register_tracking(&self, shipment: &Shipment, bought: bool) {
        let (Some(labels), false) = (&self.labels, bought) else {
            return;
        };
        if let Some(tracked) = tracked(shipment)
            && let Err(err) = labels
                .provider
                .register_tracking(
                    &tracked.carrier,
                    &tracked.tracking_number,
                    shipment.shipment_id.as_str(),
                )
                .await
        {
            tracing::warn!(shipment_id = %shipment.shipment_id, error = %err, "tracking number not registered with Shippo");
        }
    }

    /// A carrier's report that `tracking_number` moved (Shippo's `track_updated`). The
    /// report itself is not believed: the tracking is read back from Shippo, and
    /// what Shippo answers is merged into each parcel or return label with that
    /// number (normally one), each in one conditional write.
    pub async fn carrier_report(
        &self,
        carrier: &str,
        tracking_number: &str,
    ) -> Result<CarrierReport, ShipmentError> {
        let labels = self.labels.as_ref().ok_or(ShipmentError::ShippoOff)?;
        let parcels = self
            .shipments
            .find_tracking(carrier, tracking_number)
            .await?;
        if parcels.is_empty() {
            return Ok(CarrierReport::Unknown);
        }
        let reports = labels.provider.tracking(carrier, tracking_number).await?;
        let mut changed = 0;
        for found in parcels {
            let order_id = match &found {
                TrackingOf::Parcel(order_id, _) | TrackingOf::Return(order_id, _) => order_id,
            };
            let mut recorded = false;
            for _ in 0..ATTEMPTS {
                let Some(order) = self.orders.get(order_id).await? else {
                    recorded = true;
                    break;
                };
                let now = OffsetDateTime::now_utc();
                let written = match &found {
                    TrackingOf::Parcel(_, shipment_id) => {
                        let Some(after) = track(&order, shipment_id, &reports, now) else {
                            recorded = true;
                            break;
                        };
                        self.shipments.record_shipping(&after, &[]).await?
                    }
                    // A return label's tracking moves the return's label only: never the
                    // order's status, nor the return's (receiving is a person's act).
                    TrackingOf::Return(_, return_id) => {
                        let (Some(returns), Some(after)) = (
                            &self.returns,
                            track_return(&order, return_id, &reports, now),
                        ) else {
                            recorded = true;
                            break;
                        };
                        returns.record_return(&after, None, None).await?
                    }
                };
                match written {
                    ChangeOutcome::Changed(order) => {
                        tracing::info!(order_id = %order.id, ?found, status = %order.status, shipping = %order.shipping_status, "carrier report recorded");
                        changed += 1;
                        recorded = true;
                        break;
                    }
                    ChangeOutcome::Refused(None) => {
                        recorded = true;
                        break;
                    }
                    // Changed meanwhile: merge into the order as it now is.
                    ChangeOutcome::Refused(Some(_)) => {}
                }
            }
            if !recorded {
                return Err(ShipmentError::Contention);
            }
        }
        Ok(if changed == 0 {
            CarrierReport::NothingNew
        } else {
            CarrierReport::Recorded(changed)
        })
    }

    /// Voids a bought label the carrier does not have yet (admin): refunded at Shippo
    /// first, then the parcel taken off the order in one conditional write, its items
    /// unshipped again. A void whose write was lost is retried safely: Shippo answers
    /// a second refund of the same label as done.
    pub async fn void(
        &self,
        caller: &Principal,
        id: &str,
        shipment_id: &str,
    ) -> Result<Order, ShipmentError> {
        if !caller.admin {
            return Err(ShipmentError::Forbidden);
        }
        let id = OrderId::parse(id).ok_or(ShipmentError::NotFound)?;
        let shipment_id =
            ShipmentId::parse(shipment_id).ok_or(ShipmentError::ShipmentNotFound(id.clone()))?;
        let mut current = self.orders.get(&id).await?.ok_or(ShipmentError::NotFound)?;
        let mut refunded = false;
        for _ in 0..ATTEMPTS {
            let now = OffsetDateTime::now_utc();
            let after = match void(&current, &shipment_id, &caller.user_id, Role::Admin, now) {
                Ok(after) => after,
                Err(VoidRefusal::NotFound) => {
                    return Err(ShipmentError::ShipmentNotFound(id));
                }
                Err(VoidRefusal::NotVoidable(status)) => {
                    return Err(ShipmentError::NotVoidable(status.to_string()));
                }
            };
            if !refunded {
                let labels = self.labels.as_ref().ok_or(ShipmentError::ShippoOff)?;
                let transaction = current
                    .shipment(&shipment_id)
                    .and_then(|s| s.label_transaction.clone())
                    .unwrap_or_default();
                match labels.provider.refund(&transaction).await {
                    Ok(()) => refunded = true,
                    // The carrier has it (Shippo knows before we do).
                    Err(LabelError::Refused(messages)) => {
                        return Err(ShipmentError::NotVoidable(messages.join("; ")));
                    }
                    Err(err) => return Err(err.into()),
                }
            }
            match self.shipments.record_shipping(&after, &[]).await? {
                ChangeOutcome::Changed(order) => return Ok(*order),
                ChangeOutcome::Refused(None) => return Err(ShipmentError::NotFound),
                ChangeOutcome::Refused(Some(order)) => current = *order,
            }
        }
        Err(ShipmentError::Contention)
    }

    async fn reserve(&self, order: &Order) -> Result<(), StoreError> {
        let lines: Vec<StockLine> = order
            .items
            .iter()
            .map(|l| StockLine {
                product_id: l.product_id.clone(),
                quantity: u64::from(l.quantity),
            })
            .collect();
        // The goods are in hand and leave: a short count is recorded as oversold and
        // counted (StockOversoldAlarm), never a reason to refuse.
        match self.inventory.reserve_shipped(&order.id, &lines).await? {
            ShippedOutcome::Taken { oversold } if !oversold.is_empty() => {
                let units: u64 = oversold.iter().map(Shortfall::missing).sum();
                tracing::error!(order_id = %order.id, ?oversold, "shipped beyond the stock count: recorded as oversold");
                self.metrics
                    .record(MetricSet::of(Metric::StockOversold, units as f64));
            }
            outcome => tracing::info!(order_id = %order.id, ?outcome, "stock for a shipment"),
        }
        Ok(())
    }
}

/// One label to buy: what it is for (`label`, a shipment's or a return's id, which
/// names its claim), Shippo's `metadata`, the customer's address, the box, the
/// service level asked for (else the cheapest) and which way it goes.
pub(crate) struct LabelPurchase<'a> {
    pub label: &'a str,
    pub reference: &'a str,
    pub address: &'a crate::domain::ShippingAddress,
    pub parcel: &'a crate::domain::fulfillment::Parcel,
    pub servicelevel: Option<&'a str>,
    pub direction: LabelDirection,
}

/// Why [`buy_once`] bought nothing.
#[derive(Debug)]
pub(crate) enum PurchaseError {
    /// Another attempt holds the label's claim.
    InProgress,
    Label(LabelError),
    Store(StoreError),
}

impl From<LabelError> for PurchaseError {
    fn from(e: LabelError) -> Self {
        PurchaseError::Label(e)
    }
}

impl From<StoreError> for PurchaseError {
    fn from(e: StoreError) -> Self {
        PurchaseError::Store(e)
    }
}

/// Buys `purchase`'s label at most once, whatever happens to this attempt (a
/// parcel's or a return's):
///
/// 1. One attempt at a time holds the label's claim (a lease, so a dead attempt's
///    claim passes on); a concurrent twin gets `InProgress`.
/// 2. The rate is chosen and written on the claim before anything is bought.
/// 3. Before buying, Shippo is asked for a label already bought at that rate (an
///    earlier attempt whose answer, or whose write, was lost); only without one is
///    the label bought.
///
/// So a label is bought only at a rate remembered beforehand, and every later
/// attempt finds it there before it could buy another.
pub(crate) async fn buy_once(
    labels: &Labels,
    purchase: &LabelPurchase<'_>,
) -> Result<(LabelRate, Label), PurchaseError> {
    let now = OffsetDateTime::now_utc();
    let key = purchase.label;
    let Some((claim, noted)) = labels.claims.claim(key, now, now + LABEL_LEASE).await? else {
        return Err(PurchaseError::InProgress);
    };
    let bought = async {
        let rate = match noted {
            Some(rate) => rate,
            None => {
                let rate = labels
                    .provider
                    .quote(
                        purchase.reference,
                        purchase.address,
                        purchase.parcel,
                        purchase.servicelevel,
                        purchase.direction,
                    )
                    .await?;
                labels.claims.note_rate(key, &claim, &rate).await?;
                rate
            }
        };
        let label = match labels.provider.purchased(&rate).await? {
            Some(label) => {
                tracing::info!(label = key, "label bought earlier found");
                label
            }
            None => labels.provider.purchase(&rate, purchase.reference).await?,
        };
        Ok::<_, PurchaseError>((rate, label))
    }
    .await;
    // Done or failed, the next attempt may go on (the rate stays noted).
    if let Err(err) = labels.claims.release(key, &claim).await {
        tracing::warn!(label = key, error = %err, "label claim not released; its lease will run out");
    }
    bought
}

/// Who asks for an order's automatic label, and the key that makes it one per order.
fn automatic_request(id: &OrderId) -> (Principal, IdempotentShipment) {
    let caller = Principal {
        user_id: AUTOMATIC_ACTOR.to_string(),
        admin: false,
        fulfillment: true,
        refunds: false,
        webhooks: false,
        email: None,
        phone: None,
    };
    let key = format!("auto-label:{id}");
    let idempotency = IdempotentShipment {
        fingerprint: key.clone(),
        key,
    };
    (caller, idempotency)
}

fn refused(refusal: ShipmentRefusal, order: &Order) -> ShipmentError {
    match refusal {
        ShipmentRefusal::NotShippable(_) => ShipmentError::NotShippable {
            current: Box::new(order.clone()),
        },
        ShipmentRefusal::Backordered => ShipmentError::Backordered {
            current: Box::new(order.clone()),
        },
        ShipmentRefusal::Invalid(errors) => ShipmentError::Invalid(errors),
        ShipmentRefusal::TooMany {
            field,
            product_id,
            requested,
            unshipped,
        } => ShipmentError::TooMany {
            field,
            product_id,
            requested,
            unshipped,
        },
        ShipmentRefusal::NothingToShip => ShipmentError::NothingToShip(order.id.clone()),
    }
}
