//! Returns: a customer sends part of a shipped order back. A return is asked for
//! (`requested`), approved or declined by support, cancelled by its owner before it
//! arrives, and `received` by the warehouse, which decides in the same step what goes
//! back on the shelf and what is refunded.
//!
//! Returns live on the order (like its parcels): every step is planned here, from the
//! order as read, and written in one conditional write on the version it was planned
//! from, so two concurrent steps can never both pass their checks.

use time::OffsetDateTime;

use crate::domain::billing::refund::{LinePart, ShippingPart};
use crate::domain::billing::{Parts, TaxLine, allocate, split_refund};
use crate::domain::fulfillment::shipment::{ShipmentStatus, TrackingEvent};
use crate::domain::lifecycle::Role;
use crate::domain::money::Money;
use crate::domain::order::{HistoryEntry, Order, OrderStatus};
use crate::domain::validation::FieldErrors;

named_enum! {
    /// Why the customer sends goods back.
    ReturnReason {
        Damaged => "damaged",
        Defective => "defective",
        WrongItem => "wrong_item",
        NotAsDescribed => "not_as_described",
        NoLongerNeeded => "no_longer_needed",
        SizeOrFit => "size_or_fit",
        Other => "other",
    }
}

named_enum! {
    /// Where a return is.
    ReturnStatus {
        Requested => "requested",
        Approved => "approved",
        Received => "received",
        Declined => "declined",
        Cancelled => "cancelled",
    }
}

named_enum! {
    /// Where the money of a received return is. `deferred`: received with
    /// `"refund": false`, waiting for `POST …/refund`; `pending`: to be refunded through
    /// the payment provider; `refund_due`: the order was paid by hand, a person pays it.
    RefundState {
        None => "none",
        Deferred => "deferred",
        Pending => "pending",
        Refunded => "refunded",
        Due => "refund_due",
    }
}

named_enum! {
    /// Where the order's returns stand together (`return_status`).
    OrderReturnStatus {
        None => "none",
        Requested => "requested",
        InProgress => "in_progress",
        PartiallyReturned => "partially_returned",
        Returned => "returned",
    }
}

impl ReturnStatus {
    /// Counts against what may still be returned.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            ReturnStatus::Requested | ReturnStatus::Approved | ReturnStatus::Received
        )
    }
}

/// `RET` and 16 Crockford base32 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReturnId(String);

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl ReturnId {
    /// The return an idempotent request makes: the same order, caller and key name the
    /// same return, so a retry finds the one its first attempt wrote.
    pub fn for_request(order: &str, caller: &str, key: &str) -> ReturnId {
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            format!("return:{order}\0{caller}\0{key}").as_bytes(),
        );
        ReturnId::from_bytes(digest.as_ref())
    }

    /// A return of its own (no idempotency key).
    pub fn fresh() -> ReturnId {
        let mut bytes = [0u8; 10];
        // Only fails when the OS has no randomness, and then nothing else works either.
        let _ = crate::domain::random::fill(&mut bytes);
        ReturnId::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8]) -> ReturnId {
        let mut bits: u128 = 0;
        for byte in &bytes[..10] {
            bits = (bits << 8) | u128::from(*byte);
        }
        let mut id = String::from("RET");
        for i in (0..16).rev() {
            id.push(CROCKFORD[((bits >> (i * 5)) & 31) as usize] as char);
        }
        ReturnId(id)
    }

    pub fn parse(text: &str) -> Option<ReturnId> {
        let rest = text.strip_prefix("RET")?;
        (rest.len() == 16 && rest.bytes().all(|b| CROCKFORD.contains(&b)))
            .then(|| ReturnId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ReturnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A product the customer sends back, how many, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnLine {
    pub product_id: String,
    pub quantity: u32,
    pub reason: ReturnReason,
    pub note: Option<String>,
}

/// Who took a step of a return, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub at: OffsetDateTime,
    pub actor: String,
    pub role: Role,
}

/// The label the customer sends the goods back with (Shippo's return label).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnLabel {
    pub carrier: String,
    pub tracking_number: String,
    pub tracking_url: Option<String>,
    pub label_url: Option<String>,
    /// Shippo's transaction, to find the label again.
    pub transaction_id: String,
    /// Where the parcel is on its way back (`label_created`, `in_transit`, `delivered`).
    pub status: ShipmentStatus,
    pub tracking: Vec<TrackingEvent>,
}

/// A product received back, and whether it goes back on the shelf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedLine {
    pub product_id: String,
    pub quantity: u32,
    pub restock: bool,
}

/// What receiving a return decided, written in the same step as `received`, and how
/// far carrying it out has got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub lines: Vec<ReceivedLine>,
    pub refund_shipping: bool,
    pub restocking_fee: Money,
    /// What the receipt gives back (zero when nothing is left refundable).
    pub refund: Money,
    /// `refund` over the order's lines, shipping and taxes.
    pub allocation: Parts,
    pub refund_state: RefundState,
    /// The provider's refund, once made.
    pub refund_id: Option<String>,
    /// The restocked lines are back in stock.
    pub restocked: bool,
    /// The request that received it (caller, `Idempotency-Key` and body), so that its
    /// retry is answered as it was and any other receive is refused.
    pub fingerprint: Option<String>,
}

impl Receipt {
    pub fn to_restock(&self) -> impl Iterator<Item = &ReceivedLine> {
        self.lines.iter().filter(|l| l.restock && l.quantity > 0)
    }

    /// Nothing left to do in the background (restock, refund).
    pub fn settled(&self) -> bool {
        (self.restocked || self.to_restock().next().is_none())
            && self.refund_state != RefundState::Pending
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Return {
    pub return_id: ReturnId,
    pub items: Vec<ReturnLine>,
    pub note: Option<String>,
    pub status: ReturnStatus,
    /// Who asked for it and when (`created_at`).
    pub requested: Step,
    pub approved: Option<Step>,
    pub declined: Option<Step>,
    pub decline_reason: Option<String>,
    pub cancelled: Option<Step>,
    pub received: Option<Step>,
    pub receipt: Option<Receipt>,
    pub label: Option<ReturnLabel>,
    /// The canonical request body's hash, so a replay with another body is told apart.
    pub fingerprint: Option<String>,
}

/// What a receive asks: every member optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiveRequest {
    /// Left out: every item of the return, restocked.
    pub lines: Option<Vec<ReceivedLine>>,
    /// Left out: refund now.
    pub refund: Option<bool>,
    pub refund_shipping: bool,
    /// Left out: no fee.
    pub restocking_fee: Option<Money>,
}

/// Why a step of a return cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReturnRefusal {
    /// Lines that do not fit the order or the return.
    Invalid(FieldErrors),
    /// Nothing of the order has shipped (pending, confirmed, cancelled).
    NotReturnable(OrderStatus),
    /// More than shipped and not yet in a live return.
    TooMany {
        field: String,
        product_id: String,
        requested: u32,
        returnable: u32,
    },
    /// A customer's return of goods not delivered, or delivered too long ago.
    WindowClosed {
        product_id: String,
        days: u32,
    },
    NotFound,
    /// The return is not in a status this step starts from.
    Conflict {
        status: ReturnStatus,
        action: &'static str,
    },
    /// Received already, by another request.
    AlreadyReceived,
    /// `POST …/refund` of a return whose money is not waiting for it.
    NotDeferred(RefundState),
}

impl Order {
    pub fn return_of(&self, id: &ReturnId) -> Option<&Return> {
        self.returns.iter().find(|r| &r.return_id == id)
    }

    /// Units of `product_id` received back.
    pub fn quantity_returned(&self, product_id: &str) -> u32 {
        self.returns
            .iter()
            .filter_map(|r| r.receipt.as_ref())
            .flat_map(|r| &r.lines)
            .filter(|l| l.product_id == product_id)
            .map(|l| l.quantity)
            .sum()
    }

    /// Units of `product_id` in live returns: asked for, or received.
    fn quantity_in_returns(&self, product_id: &str) -> u32 {
        self.returns
            .iter()
            .filter(|r| r.status.is_live())
            .map(|r| match &r.receipt {
                Some(receipt) => receipt
                    .lines
                    .iter()
                    .filter(|l| l.product_id == product_id)
                    .map(|l| l.quantity)
                    .sum::<u32>(),
                None => r
                    .items
                    .iter()
                    .filter(|l| l.product_id == product_id)
                    .map(|l| l.quantity)
                    .sum(),
            })
            .sum()
    }

    /// Where the order's returns stand together.
    pub fn return_status(&self) -> OrderReturnStatus {
        let any = |status: ReturnStatus| self.returns.iter().any(|r| r.status == status);
        let received = any(ReturnStatus::Received);
        if any(ReturnStatus::Approved) || (any(ReturnStatus::Requested) && received) {
            OrderReturnStatus::InProgress
        } else if any(ReturnStatus::Requested) {
            OrderReturnStatus::Requested
        } else if !received {
            OrderReturnStatus::None
        } else if self
            .items
            .iter()
            .all(|l| self.quantity_returned(&l.product_id) >= self.quantity_ordered(&l.product_id))
        {
            OrderReturnStatus::Returned
        } else {
            OrderReturnStatus::PartiallyReturned
        }
    }

    /// Units of `product_id` a caller may still ask to return: shipped (for a customer,
    /// delivered no earlier than `since`), less what live returns hold.
    fn returnable(&self, product_id: &str, since: Option<OffsetDateTime>) -> u32 {
        let sent: u32 = self
            .shipments
            .iter()
            .filter(|s| match since {
                None => true,
                Some(since) => s.status == ShipmentStatus::Delivered && delivered_at(s) >= since,
            })
            .flat_map(|s| &s.items)
            .filter(|l| l.product_id == product_id)
            .map(|l| l.quantity)
            .sum();
        sent.saturating_sub(self.quantity_in_returns(product_id))
    }
}

/// When a delivered parcel arrived: its carrier's delivery report, else (delivered by
/// hand or before tracking) when it was sent.
fn delivered_at(shipment: &crate::domain::fulfillment::Shipment) -> OffsetDateTime {
    shipment
        .tracking
        .iter()
        .filter(|t| t.status == "DELIVERED")
        .map(|t| t.status_date)
        .max()
        .unwrap_or(shipment.created_at)
}

/// The order with `change` made to return `id` (or the new return), one history entry
/// more and its version bumped: exactly what the store writes.
fn with_return(order: &Order, ret: Return, step: &Step, what: String) -> Order {
    let mut after = order.clone();
    match after
        .returns
        .iter_mut()
        .find(|r| r.return_id == ret.return_id)
    {
        Some(existing) => *existing = ret,
        None => after.returns.push(ret),
    }
    after.version += 1;
    after.updated_at = step.at;
    after.history.push(HistoryEntry {
        at: step.at,
        actor: step.actor.clone(),
        role: step.role,
        status: order.status,
        shipping_status: None,
        payment_status: None,
        reason: Some(what),
    });
    after
}

/// A new return of `lines`: refused unless every unit was shipped (for a customer:
/// delivered within `window_days`) and is in no other live return.
#[allow(clippy::too_many_arguments)]
pub fn request_return(
    order: &Order,
    return_id: ReturnId,
    lines: Vec<ReturnLine>,
    note: Option<String>,
    step: Step,
    window_days: u32,
    fingerprint: Option<String>,
) -> Result<Order, ReturnRefusal> {
    if order.shipments.is_empty()
        || matches!(order.status, OrderStatus::Pending | OrderStatus::Cancelled)
    {
        return Err(ReturnRefusal::NotReturnable(order.status));
    }
    let mut errors = FieldErrors::default();
    for (i, line) in lines.iter().enumerate() {
        if order.quantity_ordered(&line.product_id) == 0 {
            errors.add(
                format!("items[{i}].product_id"),
                format!("{} is not in order {}", line.product_id, order.id),
            );
        } else if lines[..i].iter().any(|l| l.product_id == line.product_id) {
            errors.add(
                format!("items[{i}].product_id"),
                format!("{} is named twice", line.product_id),
            );
        }
    }
    if !errors.is_empty() {
        return Err(ReturnRefusal::Invalid(errors));
    }
    // Staff take returns any time; a customer only of what arrived within the window.
    let customer = step.role == Role::Owner;
    let since = customer.then(|| step.at - time::Duration::days(i64::from(window_days)));
    for (i, line) in lines.iter().enumerate() {
        let returnable = order.returnable(&line.product_id, since);
        if line.quantity <= returnable {
            continue;
        }
        // Shipped and free, but not delivered recently enough: the window, not the count.
        if customer && line.quantity <= order.returnable(&line.product_id, None) {
            return Err(ReturnRefusal::WindowClosed {
                product_id: line.product_id.clone(),
                days: window_days,
            });
        }
        return Err(ReturnRefusal::TooMany {
            field: format!("items[{i}].quantity"),
            product_id: line.product_id.clone(),
            requested: line.quantity,
            returnable,
        });
    }
    let what = format!("return {return_id} requested");
    let ret = Return {
        return_id,
        items: lines,
        note,
        status: ReturnStatus::Requested,
        requested: step.clone(),
        approved: None,
        declined: None,
        decline_reason: None,
        cancelled: None,
        received: None,
        receipt: None,
        label: None,
        fingerprint,
    };
    Ok(with_return(order, ret, &step, what))
}

/// What a step does to a return in `from`: `Ok(None)` when it is there already (the
/// step asked again: nothing to write).
fn moved(
    order: &Order,
    id: &ReturnId,
    to: ReturnStatus,
    from: &[ReturnStatus],
    action: &'static str,
) -> Result<Option<Return>, ReturnRefusal> {
    let ret = order.return_of(id).ok_or(ReturnRefusal::NotFound)?;
    if ret.status == to {
        return Ok(None);
    }
    if !from.contains(&ret.status) {
        return Err(ReturnRefusal::Conflict {
            status: ret.status,
            action,
        });
    }
    let mut ret = ret.clone();
    ret.status = to;
    Ok(Some(ret))
}

/// Support approves a requested return (optionally with the label bought for it).
/// `Ok(None)`: approved already.
pub fn approve(
    order: &Order,
    id: &ReturnId,
    step: Step,
    label: Option<ReturnLabel>,
) -> Result<Option<Order>, ReturnRefusal> {
    let Some(mut ret) = moved(
        order,
        id,
        ReturnStatus::Approved,
        &[ReturnStatus::Requested],
        "approve",
    )?
    else {
        return Ok(None);
    };
    ret.approved = Some(step.clone());
    ret.label = label;
    Ok(Some(with_return(
        order,
        ret,
        &step,
        format!("return {id} approved"),
    )))
}

/// Support declines a return not yet received, saying why.
pub fn decline(
    order: &Order,
    id: &ReturnId,
    step: Step,
    reason: String,
) -> Result<Option<Order>, ReturnRefusal> {
    let Some(mut ret) = moved(
        order,
        id,
        ReturnStatus::Declined,
        &[ReturnStatus::Requested, ReturnStatus::Approved],
        "decline",
    )?
    else {
        return Ok(None);
    };
    ret.declined = Some(step.clone());
    ret.decline_reason = Some(reason.clone());
    Ok(Some(with_return(
        order,
        ret,
        &step,
        format!("return {id} declined: {reason}"),
    )))
}

/// The owner (or support) withdraws a return before it is received.
pub fn cancel(order: &Order, id: &ReturnId, step: Step) -> Result<Option<Order>, ReturnRefusal> {
    let Some(mut ret) = moved(
        order,
        id,
        ReturnStatus::Cancelled,
        &[ReturnStatus::Requested, ReturnStatus::Approved],
        "cancel",
    )?
    else {
        return Ok(None);
    };
    ret.cancelled = Some(step.clone());
    Ok(Some(with_return(
        order,
        ret,
        &step,
        format!("return {id} cancelled"),
    )))
}

/// The warehouse receives a requested or approved return: in this one step it is
/// `received`, and the receipt says what goes back in stock and what is refunded.
/// `paid_online`: the order has a provider payment (else the money is `refund_due`);
/// `refundable`: what is left of it to give back (the order's total when paid by
/// hand, less what earlier returns owe).
pub fn receive(
    order: &Order,
    id: &ReturnId,
    request: &ReceiveRequest,
    step: Step,
    fingerprint: Option<String>,
) -> Result<Order, ReturnRefusal> {
    let ret = order.return_of(id).ok_or(ReturnRefusal::NotFound)?;
    match ret.status {
        ReturnStatus::Requested | ReturnStatus::Approved => {}
        ReturnStatus::Received => return Err(ReturnRefusal::AlreadyReceived),
        status => {
            return Err(ReturnRefusal::Conflict {
                status,
                action: "receive",
            });
        }
    }
    let lines = match &request.lines {
        None => ret
            .items
            .iter()
            .map(|l| ReceivedLine {
                product_id: l.product_id.clone(),
                quantity: l.quantity,
                restock: true,
            })
            .collect(),
        Some(lines) => {
            let mut errors = FieldErrors::default();
            for (i, line) in lines.iter().enumerate() {
                let asked: u32 = ret
                    .items
                    .iter()
                    .filter(|l| l.product_id == line.product_id)
                    .map(|l| l.quantity)
                    .sum();
                if asked == 0 {
                    errors.add(
                        format!("items[{i}].product_id"),
                        format!("{} is not in return {id}", line.product_id),
                    );
                } else if lines[..i].iter().any(|l| l.product_id == line.product_id) {
                    errors.add(
                        format!("items[{i}].product_id"),
                        format!("{} is named twice", line.product_id),
                    );
                } else if line.quantity > asked {
                    errors.add(
                        format!("items[{i}].quantity"),
                        format!("at most {asked} of {} are in the return", line.product_id),
                    );
                }
            }
            if !errors.is_empty() {
                return Err(ReturnRefusal::Invalid(errors));
            }
            lines.clone()
        }
    };
    let currency = order.total.currency();
    let fee = request
        .restocking_fee
        .unwrap_or_else(|| Money::zero(currency));
    let gross = returned_parts(order, &lines, request.refund_shipping);
    let left = refundable(order);
    let amount = (gross.total().minor() - fee.minor())
        .min(left.minor())
        .max(0);
    let refund = Money::from_minor(amount, currency);
    let allocation = split_refund(&gross, &[], refund).unwrap_or_else(|| gross.clone());
    let refund_state = if amount == 0 {
        RefundState::None
    } else if request.refund == Some(false) {
        RefundState::Deferred
    } else if paid_online(order) {
        RefundState::Pending
    } else {
        RefundState::Due
    };
    let mut ret = ret.clone();
    ret.status = ReturnStatus::Received;
    ret.received = Some(step.clone());
    ret.receipt = Some(Receipt {
        lines,
        refund_shipping: request.refund_shipping,
        restocking_fee: fee,
        refund,
        allocation,
        refund_state,
        refund_id: None,
        restocked: false,
        fingerprint,
    });
    let what = format!(
        "return {id} received; refund {} {} {}",
        refund.to_decimal_string(),
        currency.code(),
        refund_state
    );
    Ok(with_return(order, ret, &step, what))
}

/// `POST …/refund` of a return received with `"refund": false`: its money is now to
/// be given back (through the provider, or by a person for an order paid by hand).
pub fn release_refund(order: &Order, id: &ReturnId, step: Step) -> Result<Order, ReturnRefusal> {
    let ret = order.return_of(id).ok_or(ReturnRefusal::NotFound)?;
    let receipt = match (&ret.receipt, ret.status) {
        (Some(receipt), ReturnStatus::Received) => receipt,
        _ => {
            return Err(ReturnRefusal::Conflict {
                status: ret.status,
                action: "refund",
            });
        }
    };
    if receipt.refund_state != RefundState::Deferred {
        return Err(ReturnRefusal::NotDeferred(receipt.refund_state));
    }
    let mut ret = ret.clone();
    if let Some(receipt) = ret.receipt.as_mut() {
        receipt.refund_state = if paid_online(order) {
            RefundState::Pending
        } else {
            RefundState::Due
        };
    }
    Ok(with_return(
        order,
        ret,
        &step,
        format!("return {id} refund released"),
    ))
}

/// The receipt of return `id` carried out: `restocked`, and/or the provider's
/// refund. `None` when there is nothing new to record.
pub fn settled(
    order: &Order,
    id: &ReturnId,
    restocked: bool,
    refund_id: Option<String>,
    step: Step,
) -> Option<Order> {
    let mut ret = order.return_of(id)?.clone();
    let receipt = ret.receipt.as_mut()?;
    let mut what = Vec::new();
    if restocked && !receipt.restocked {
        receipt.restocked = true;
        what.push("restocked".to_string());
    }
    if let Some(refund_id) = refund_id
        && receipt.refund_state == RefundState::Pending
    {
        what.push(format!("refunded ({refund_id})"));
        receipt.refund_state = RefundState::Refunded;
        receipt.refund_id = Some(refund_id);
    }
    if what.is_empty() {
        return None;
    }
    let what = format!("return {id} {}", what.join(", "));
    Some(with_return(order, ret, &step, what))
}

/// The order after the carrier's `reports` on return `id`'s label (Shippo's
/// tracking, read back from Shippo): merged into the label's tracking as a parcel's
/// are. Only the return's label moves: the order's status, and the return's own
/// (receiving stays a person's act), do not. `None`: nothing new.
pub fn track_return(
    order: &Order,
    id: &ReturnId,
    reports: &[TrackingEvent],
    at: OffsetDateTime,
) -> Option<Order> {
    let mut ret = order.return_of(id)?.clone();
    let label = ret.label.as_mut()?;
    let previous = label.status;
    if !crate::domain::fulfillment::tracking::merge(&mut label.tracking, &mut label.status, reports)
    {
        return None;
    }
    let what = if label.status == previous {
        format!("return {id} label: tracking updated ({previous})")
    } else {
        format!("return {id} label: {previous} → {}", label.status)
    };
    let step = Step {
        at,
        actor: crate::domain::fulfillment::tracking::CARRIER_ACTOR.to_string(),
        role: Role::Fulfillment,
    };
    Some(with_return(order, ret, &step, what))
}

/// The refund key of a return: its refund through the provider is made at most once.
pub fn refund_key(id: &ReturnId) -> String {
    format!("return:{id}")
}

/// Whether the provider received the order's money (else it was paid by hand, even
/// a card order confirmed by support: a person refunds it).
fn paid_online(order: &Order) -> bool {
    order.payment.as_ref().is_some_and(|p| p.received.is_some())
}

/// What is left to give back: the provider payment's refundable amount, or for an
/// order paid by hand its total less what earlier returns owe.
fn refundable(order: &Order) -> Money {
    let currency = order.total.currency();
    match order.payment.as_ref().and_then(|p| p.refundable()) {
        Some(left) => {
            // Pending and deferred receipts are not refunded yet, but promised; one
            // whose refund the payment already holds or has made (its record on the
            // return not yet written) is in `left` already: not taken off twice.
            let payment = order.payment.as_ref();
            let on_payment = |id: &ReturnId| {
                let key = refund_key(id);
                payment.is_some_and(|p| {
                    p.refunds.iter().any(|f| f.key == key)
                        || p.refund_in_flight.as_ref().is_some_and(|h| h.key == key)
                })
            };
            let promised: i64 = order
                .returns
                .iter()
                .filter(|r| !on_payment(&r.return_id))
                .filter_map(|r| r.receipt.as_ref())
                .filter(|r| matches!(r.refund_state, RefundState::Pending | RefundState::Deferred))
                .map(|r| r.refund.minor())
                .sum();
            Money::from_minor((left.minor() - promised).max(0), currency)
        }
        None => {
            let owed: i64 = order
                .returns
                .iter()
                .filter_map(|r| r.receipt.as_ref())
                .map(|r| r.refund.minor())
                .sum();
            Money::from_minor((order.total.minor() - owed).max(0), currency)
        }
    }
}

/// What `lines` coming back are worth, part by part: each unit its share of its line's
/// price less discount, and of its taxes; the shipping with `shipping` (once per
/// order). Shares are taken of what earlier receipts returned, so returning a line's
/// units one by one gives back exactly the line.
pub fn returned_parts(order: &Order, lines: &[ReceivedLine], shipping: bool) -> Parts {
    let charged = Parts::charged(order);
    let currency = charged.currency;
    let share = |amount: Money, units: u32, of: u32| -> i64 {
        if of == 0 || units == 0 {
            return 0;
        }
        let units = units.min(of);
        allocate(amount.minor(), &[i64::from(units), i64::from(of - units)])
            .map_or(0, |shares| shares[0])
    };
    let slice = |amount: Money, before: u32, now: u32, of: u32| {
        Money::from_minor(
            share(amount, before + now, of) - share(amount, before, of),
            currency,
        )
    };
    let mut parts_lines = Vec::new();
    for (item, part) in order.items.iter().zip(&charged.lines) {
        let now: u32 = lines
            .iter()
            .filter(|l| l.product_id == item.product_id)
            .map(|l| l.quantity)
            .sum();
        let before = order.quantity_returned(&item.product_id);
        parts_lines.push(LinePart {
            net: slice(part.net, before, now, item.quantity),
            tax_lines: part
                .tax_lines
                .iter()
                .map(|t| TaxLine {
                    amount: slice(t.amount, before, now, item.quantity),
                    ..t.clone()
                })
                .collect(),
            ..part.clone()
        });
    }
    let shipped_back_before = order
        .returns
        .iter()
        .filter_map(|r| r.receipt.as_ref())
        .any(|r| r.refund_shipping);
    let zero = |s: &ShippingPart| ShippingPart {
        net: Money::zero(currency),
        tax_lines: s
            .tax_lines
            .iter()
            .map(|t| TaxLine {
                amount: Money::zero(currency),
                ..t.clone()
            })
            .collect(),
        ..s.clone()
    };
    let shipping = charged.shipping.as_ref().map(|s| {
        if shipping && !shipped_back_before {
            s.clone()
        } else {
            zero(s)
        }
    });
    Parts {
        currency,
        lines: parts_lines,
        shipping,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_ids_are_stable_per_request_and_parse_back() {
        let a = ReturnId::for_request("ORD1", "dana", "k1");
        assert_eq!(a, ReturnId::for_request("ORD1", "dana", "k1"));
        assert_ne!(a, ReturnId::for_request("ORD1", "eve", "k1"));
        assert_eq!(ReturnId::parse(a.as_str()), Some(a));
        assert_eq!(ReturnId::parse("SHP0000000000000000"), None);
    }
}
