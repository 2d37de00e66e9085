//! The ports: every trait the services need from the outside world, with the outcomes
//! and errors they answer. Adapters in `adapters/` implement them on AWS and HTTP;
//! nothing here knows which.

use async_trait::async_trait;
use time::OffsetDateTime;

use std::time::Duration;

use crate::domain::fulfillment::{Parcel, ShipmentId, Tracked, TrackingEvent};
use crate::domain::invoice::{Invoice, InvoiceDraft};
use crate::domain::lifecycle::ShippingUpdate;
use crate::domain::notification::{Channel, Notice};
use crate::domain::payment::RefundHold;
use crate::domain::payment::notice::PaymentChange;
use crate::domain::rate_limit::{RateLimit, Window};
use crate::domain::stock::{ReleaseOutcome, ReserveOutcome, ShippedOutcome, StockLine};
use crate::domain::webhook::{Attempt, Subscription, WebhookId};
use crate::domain::{
    Cart, HistoryEntry, Money, Order, OrderId, OrderStatus, PaymentStatus, Refund, ShippingAddress,
    StatusChange,
};
use crate::events::OrderEvent;

/// Where orders live.
#[async_trait]
pub trait OrderStore: Send + Sync {
    /// Stores a new order, with `idempotency` its idempotency record and with
    /// `charge` one create on the caller's counter, all in the same atomic write: a
    /// refused create writes nothing. Refusals are outcomes, not errors.
    async fn create(
        &self,
        order: &Order,
        idempotency: Option<&IdempotencyRecord>,
        charge: Option<&RateCharge>,
    ) -> Result<CreateOutcome, StoreError>;

    /// Reads one order, strongly consistent.
    async fn get(&self, id: &OrderId) -> Result<Option<Order>, StoreError>;

    /// Reads one order as of `version` or later, for a consumer of the event of that
    /// version: eventually consistent (half the read units), read again strongly only
    /// when that copy is older than `version` or not there yet. `None`: no such order.
    async fn get_since(&self, id: &OrderId, version: u64) -> Result<Option<Order>, StoreError>;

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
    /// Stored by this call, or found stored by an earlier attempt of this very
    /// request (the same `Order` value, resent).
    Created,
    /// A request with the same idempotency key came first.
    KeySeen(IdempotencyRecord),
    /// The cart already became this order.
    CartOrdered(Box<Order>),
    /// The caller has used up its creates for the charge's window.
    LimitReached,
}

/// One create counted against its caller's limit in the window it falls in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateCharge {
    pub caller: String,
    pub limit: RateLimit,
    pub window: Window,
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

// ----------------------------------------------------------------------------------
// Fulfillment: stock and shipping.
// ----------------------------------------------------------------------------------

/// Stock per product, and reservations of it per order.
#[async_trait]
pub trait Inventory: Send + Sync {
    /// Takes `lines` out of stock for `order_id`, all or nothing, at most once per
    /// order. Shortage and a second reservation are outcomes, not errors.
    async fn reserve(
        &self,
        order_id: &OrderId,
        lines: &[StockLine],
    ) -> Result<ReserveOutcome, StoreError>;

    /// Takes `lines` out of stock for an order whose goods have already left (shipped,
    /// delivered): at most once per order, sharing `reserve`'s record, so whichever of
    /// the two comes first takes the stock and the other finds it reserved. Never
    /// refused for shortage: a product the count is short of is taken down to zero
    /// and the missing units are recorded as oversold (on the reservation and the
    /// product's stock item). `lines` are the whole order's.
    async fn reserve_shipped(
        &self,
        order_id: &OrderId,
        lines: &[StockLine],
    ) -> Result<ShippedOutcome, StoreError>;

    /// Puts an order's reserved stock back, at most once (less what was oversold: it
    /// never was in the count); a no-op when there is nothing reserved.
    async fn release(&self, order_id: &OrderId) -> Result<ReleaseOutcome, StoreError>;

    /// Sets a product's available stock (seeding, restocking), on one item.
    async fn set_stock(&self, product_id: &str, available: u64) -> Result<(), StoreError>;

    /// Sets a hot product's available stock split evenly over `shards` items (1 to
    /// `domain::stock::MAX_STOCK_SHARDS`), so that its reservations spread over them
    /// (a flash sale; `docs/scale.md`). Never oversells: a dry item falls back on the
    /// others.
    async fn split_stock(
        &self,
        product_id: &str,
        available: u64,
        shards: u32,
    ) -> Result<(), StoreError>;
}

/// Where an order's parcels are recorded: on the order's own item, so that reading
/// an order costs no second request, with an index of tracking numbers beside it.
#[async_trait]
pub trait ShipmentStore: Send + Sync {
    /// Writes `after` (an order whose shipments, status, shipping status and last
    /// history entry a shipping change planned from the version before it) in one
    /// conditional write on that version, once `indexed` are indexed (an index entry
    /// whose order write is then refused may stay: readers of the index check the
    /// order). Refused: the order as the store found it (`None`: no such order).
    async fn record_shipping(
        &self,
        after: &Order,
        indexed: &[Tracked],
    ) -> Result<ChangeOutcome, StoreError>;

    /// The parcels and return labels with this carrier and tracking number, in one
    /// Query.
    async fn find_tracking(
        &self,
        carrier: &str,
        tracking_number: &str,
    ) -> Result<Vec<TrackingOf>, StoreError>;
}

/// What a tracking number is on: an order's parcel, or the label a return is sent
/// back with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackingOf {
    Parcel(OrderId, ShipmentId),
    Return(OrderId, crate::domain::fulfillment::returns::ReturnId),
}

/// Which way a label sends the parcel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelDirection {
    /// From the warehouse to the customer.
    Outbound,
    /// The customer's goods back to the warehouse: the outbound addresses as they
    /// are, marked a return (Shippo's `extra.is_return`), which Shippo swaps.
    Return,
}

/// Buys shipping labels (Shippo). Buying is two steps, quote then purchase, so that
/// the chosen rate can be remembered before anything is bought: a purchase whose
/// answer was lost is then found by its rate instead of being bought again.
#[async_trait]
pub trait LabelProvider: Send + Sync {
    /// The rate for a parcel to `to` (for a return: from `to`, back to the
    /// warehouse): the service level asked for, else the cheapest.
    async fn quote(
        &self,
        reference: &str,
        to: &ShippingAddress,
        parcel: &Parcel,
        servicelevel: Option<&str>,
        direction: LabelDirection,
    ) -> Result<LabelRate, LabelError>;

    /// Buys the label at `rate`, tagged with `reference`.
    async fn purchase(&self, rate: &LabelRate, reference: &str) -> Result<Label, LabelError>;

    /// The label bought at `rate` earlier, if there is one.
    async fn purchased(&self, rate: &LabelRate) -> Result<Option<Label>, LabelError>;

    /// Registers a hand-entered tracking number, so that its tracking arrives.
    async fn register_tracking(
        &self,
        carrier: &str,
        tracking_number: &str,
        reference: &str,
    ) -> Result<(), LabelError>;

    /// Refunds (voids) the label of `transaction_id`; done already is done.
    async fn refund(&self, transaction_id: &str) -> Result<(), LabelError>;

    /// The carrier's reports on a tracking number as Shippo has them now, oldest
    /// first (its history and its current status).
    async fn tracking(
        &self,
        carrier: &str,
        tracking_number: &str,
    ) -> Result<Vec<TrackingEvent>, LabelError>;
}

/// A rate chosen for a label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelRate {
    pub rate_id: String,
    /// The carrier's token, lower case (`usps`).
    pub carrier: String,
    pub servicelevel: Option<String>,
    pub cost: Option<Money>,
}

/// A label bought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub transaction_id: String,
    pub tracking_number: String,
    pub tracking_url: Option<String>,
    pub label_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// The provider said no (a bad address, no rate): its messages, for the caller.
    #[error("the shipping provider refused the label: {}", .0.join("; "))]
    Refused(Vec<String>),
    /// Unreachable, timed out, 5xx, rate limited: worth retrying.
    #[error("the shipping provider is unavailable: {0}")]
    Unavailable(String),
}

/// The one attempt that may buy a label: claimed with a lease, and remembering the
/// rate chosen (across attempts) before it is bought. A label is named by what it is
/// for: a shipment's id (`SHP…`) or a return's (`RET…`).
#[async_trait]
pub trait LabelClaims: Send + Sync {
    /// Claims buying `label` until `lease_until`. `None`: another attempt holds the
    /// claim and its lease runs. Claimed: the rate an earlier attempt chose, if one
    /// did.
    async fn claim(
        &self,
        label: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Option<(ClaimToken, Option<LabelRate>)>, StoreError>;

    /// Remembers the rate about to be bought.
    async fn note_rate(
        &self,
        label: &str,
        claim: &ClaimToken,
        rate: &LabelRate,
    ) -> Result<(), StoreError>;

    /// Ends the claim (done, or failed), keeping the rate.
    async fn release(&self, label: &str, claim: &ClaimToken) -> Result<(), StoreError>;

    /// Holds `order`'s label purchases until `lease_until`: one at a time per order,
    /// from before the order is read to after the parcel is written, so that two
    /// requests (an automatic label and an admin's) never both buy one for the same
    /// lines. `None`: another purchase holds it and its lease runs.
    async fn hold_order(
        &self,
        order: &OrderId,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Option<ClaimToken>, StoreError>;

    /// Ends the hold, if `claim` still has it.
    async fn release_order(&self, order: &OrderId, claim: &ClaimToken) -> Result<(), StoreError>;
}

// ----------------------------------------------------------------------------------
// Events and webhooks.
// ----------------------------------------------------------------------------------

#[async_trait]
pub trait EventBus: Send + Sync {
    /// Publishes `events` in their order. The outcome of `events[i]` is at index `i`.
    async fn publish(&self, events: &[OrderEvent]) -> Vec<Result<(), PublishError>>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The bus refused this entry (PutEvents' per-entry `ErrorCode`), e.g. throttled.
    #[error("the event bus rejected the event: {code}: {message}")]
    Rejected { code: String, message: String },
    /// The request did not go through, or was not sent because an earlier one in the
    /// same call did not.
    #[error("the event bus is unavailable: {0}")]
    Unavailable(String),
    /// The event cannot be sent as it is (too large for a PutEvents request).
    #[error("the event cannot be published: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptPage {
    pub attempts: Vec<Attempt>,
    pub next: Option<PagePosition>,
}

/// Where subscriptions, attempts and delivered markers are kept.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Stores a new subscription (its id is fresh, so it cannot exist).
    async fn create(&self, subscription: &Subscription) -> Result<(), StoreError>;

    async fn get(&self, id: &WebhookId) -> Result<Option<Subscription>, StoreError>;

    /// Every subscription, newest first.
    async fn list(&self) -> Result<Vec<Subscription>, StoreError>;

    /// Removes a subscription; `false` when there was none.
    async fn delete(&self, id: &WebhookId) -> Result<bool, StoreError>;

    /// Stops deliveries to a subscription (a deleted one stays deleted).
    async fn disable(
        &self,
        id: &WebhookId,
        at: OffsetDateTime,
        reason: &str,
    ) -> Result<(), StoreError>;

    async fn record_attempt(&self, attempt: &Attempt) -> Result<(), StoreError>;

    /// A subscription's attempts, newest first. `None` when the subscription does not
    /// exist, which only the first page can tell (later pages start past it).
    async fn attempts(
        &self,
        id: &WebhookId,
        limit: usize,
        after: Option<&PagePosition>,
    ) -> Result<Option<AttemptPage>, StoreError>;

    /// Claims the sending of `event_id` to this subscription until `lease_until`, in
    /// one conditional write: at most one claimer holds a pair at a time, and a
    /// claimer that crashed loses its claim when the lease runs out.
    async fn claim(
        &self,
        id: &WebhookId,
        event_id: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Claim, StoreError>;

    /// Gives a claim back after a failed send, so the next attempt may claim at once.
    /// A no-op when the claim is no longer this one's.
    async fn release(
        &self,
        id: &WebhookId,
        event_id: &str,
        claim: &ClaimToken,
    ) -> Result<(), StoreError>;

    /// Remembers that `event_id` reached this subscription (idempotent); replaces the
    /// claim, so the pair is never claimed again.
    async fn mark_delivered(
        &self,
        id: &WebhookId,
        event_id: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;
}

/// What claiming an (event, subscription) pair found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Ours to send until the lease ends.
    Claimed(ClaimToken),
    /// An earlier attempt delivered it.
    Delivered,
    /// Another attempt holds it and its lease has not run out.
    Held,
}

/// Names one claim, so that only its claimer releases it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimToken(pub String);

/// One signed POST, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// What became of a POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// The receiver answered (any status; redirects are not followed).
    Answered {
        status: u16,
        /// From `Retry-After` (in seconds), when the receiver asks for a pause.
        retry_after: Option<Duration>,
    },
    /// No answer: refused target, DNS, connection, TLS or timeout.
    Failed(String),
}

/// Sends webhooks over HTTP (`adapters::http::webhook_sender`).
#[async_trait]
pub trait WebhookSender: Send + Sync {
    async fn send(&self, request: &Outgoing) -> Sent;
}

/// Keeps a received queue message hidden for a while, so that its next attempt
/// comes later (`adapters::webhook_queue`).
#[async_trait]
pub trait RetryDelay: Send + Sync {
    /// `queue_arn` is the message's `eventSourceARN`.
    async fn postpone(
        &self,
        queue_arn: Option<&str>,
        receipt_handle: &str,
        delay: Duration,
    ) -> Result<(), String>;
}

/// The payment provider (Stripe). Every create carries an idempotency key, so a
/// resent request is answered with what the first one made.
#[async_trait]
pub trait PaymentGateway: Send + Sync {
    /// A payment of `amount` for `order_id`.
    async fn create_intent(
        &self,
        order_id: &OrderId,
        amount: &Money,
        idempotency_key: &str,
    ) -> Result<CreatedIntent, PaymentError>;

    /// Withdraws an unpaid intent, so that it can no longer be paid.
    async fn cancel_intent(&self, intent_id: &str) -> Result<CancelOutcome, PaymentError>;

    /// Gives `amount` of the intent's payment back.
    async fn refund(
        &self,
        intent_id: &str,
        amount: &Money,
        idempotency_key: &str,
    ) -> Result<String, PaymentError>;

    /// The refund of the intent made with `idempotency_key` (kept in its metadata), if
    /// any: the provider forgets idempotency keys after a day, the metadata stays.
    async fn find_refund(
        &self,
        intent_id: &str,
        idempotency_key: &str,
    ) -> Result<Option<String>, PaymentError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedIntent {
    pub intent_id: String,
    pub client_secret: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    Cancelled,
    /// The provider would not cancel it: paid, or cancelled already.
    NotCancellable,
}

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// Unreachable, timed out, or answered 429/5xx: try again later.
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the request (4xx); resending it will not help.
    #[error("the payment provider refused: {0}")]
    Refused(String),
}

/// The payment side of an order's item: the writes payments, refunds and the checkout
/// of a card order make. Each is one conditional write.
#[async_trait]
pub trait PaymentLedger: Send + Sync {
    /// Reserves the right to create `order_id`'s payment intent until `lease_until`,
    /// so that concurrent twins of a checkout never create two.
    async fn claim_payment(
        &self,
        order_id: &OrderId,
        lease_until: OffsetDateTime,
    ) -> Result<PaymentClaim, StoreError>;

    /// Takes over a claim whose lease ran out (its holder died before storing the
    /// order), at most one taker winning.
    async fn take_over_payment_claim(
        &self,
        order_id: &OrderId,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<PaymentClaim, StoreError>;

    /// Gives a claim up (the intent could not be created), so a retry may go on.
    async fn release_payment_claim(&self, order_id: &OrderId) -> Result<(), StoreError>;

    /// Records a payment change at `change.expected_version`, marking its provider
    /// event applied.
    async fn record_payment(
        &self,
        id: &OrderId,
        change: &PaymentChange,
    ) -> Result<ChangeOutcome, StoreError>;

    /// Reserves a refund on the order at `expected_version`, if none is in flight.
    async fn hold_refund(
        &self,
        id: &OrderId,
        hold: &RefundHold,
        expected_version: u64,
    ) -> Result<ChangeOutcome, StoreError>;

    /// Records the held refund `refund.key` as made, with its history entry.
    async fn complete_refund(
        &self,
        id: &OrderId,
        refund: &Refund,
        payment_status: PaymentStatus,
        entry: &HistoryEntry,
    ) -> Result<ChangeOutcome, StoreError>;

    /// Drops the hold `key` (the provider refused the refund).
    async fn release_refund(&self, id: &OrderId, key: &str) -> Result<(), StoreError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentClaim {
    Claimed,
    /// Another request holds it, or held it and went on to store the order.
    Held,
}

/// A business or health figure, by its metric name (docs/observability.md lists them
/// with their dimensions). Payments, refunds and notifications report theirs here too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// One per order created (not per replay).
    OrdersPlaced,
    /// The created order's total in minor units, dimension `currency`.
    OrderValue,
    /// A status change refused, dimension `reason` (the problem code).
    RefusedMoves,
    /// Milliseconds from a change's commit to its consumer, dimension `consumer`.
    ConsumerLag,
    /// A change the publisher could not put on the bus.
    PublishFailures,
    /// A webhook attempt that did not get a 2xx, dimension `failure`.
    WebhookFailures,
    /// A payment that succeeded, dimension `provider`.
    PaymentsSucceeded,
    /// A payment that failed, dimension `provider`.
    PaymentsFailed,
    /// A refund made, dimensions `provider`, `currency`; its value as `RefundValue`.
    Refunds,
    /// A refund's amount in minor units.
    RefundValue,
    /// An email or SMS that could not be sent, dimension `channel`.
    NotificationFailures,
    /// Units shipped that the stock count did not have (recorded as oversold).
    StockOversold,
    /// An automatic label the provider refused (the order is `label_failed`).
    LabelFailures,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::OrdersPlaced => "OrdersPlaced",
            Metric::OrderValue => "OrderValue",
            Metric::RefusedMoves => "RefusedMoves",
            Metric::ConsumerLag => "ConsumerLag",
            Metric::PublishFailures => "PublishFailures",
            Metric::WebhookFailures => "WebhookFailures",
            Metric::PaymentsSucceeded => "PaymentsSucceeded",
            Metric::PaymentsFailed => "PaymentsFailed",
            Metric::Refunds => "Refunds",
            Metric::RefundValue => "RefundValue",
            Metric::NotificationFailures => "NotificationFailures",
            Metric::StockOversold => "StockOversold",
            Metric::LabelFailures => "LabelFailures",
        }
    }

    /// The CloudWatch unit.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::ConsumerLag => "Milliseconds",
            Metric::OrderValue | Metric::RefundValue => "None",
            _ => "Count",
        }
    }
}

/// Figures that share their dimensions, reported together (one EMF line).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricSet {
    pub dimensions: Vec<(&'static str, String)>,
    pub values: Vec<(Metric, f64)>,
}

impl MetricSet {
    pub fn of(metric: Metric, value: f64) -> MetricSet {
        MetricSet {
            dimensions: Vec::new(),
            values: vec![(metric, value)],
        }
    }

    pub fn and(mut self, metric: Metric, value: f64) -> MetricSet {
        self.values.push((metric, value));
        self
    }

    pub fn by(mut self, dimension: &'static str, value: impl Into<String>) -> MetricSet {
        self.dimensions.push((dimension, value.into()));
        self
    }
}

/// Where figures go (`adapters::emf`: CloudWatch Embedded Metric Format on stdout).
/// Recording never fails the use case and never waits on I/O beyond a log line.
pub trait Metrics: Send + Sync {
    fn record(&self, set: MetricSet);
}

/// Figures nobody reads: the default of every service, and the local stack's.
pub struct NoMetrics;

impl Metrics for NoMetrics {
    fn record(&self, _: MetricSet) {}
}

// ----------------------------------------------------------------------------------
// Messages to customers, and invoices.
// ----------------------------------------------------------------------------------

/// An email ready to send: both parts rendered, attachments in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailMessage {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

/// A text message ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextMessage {
    /// E.164.
    pub to: String,
    pub body: String,
}

/// Why a message was not sent. Either way the message is retried, then dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: unreachable, timed out, throttled, 5xx.
    #[error("the message provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider said no (4xx): a retry is unlikely to help.
    #[error("the message provider refused the message: {0}")]
    Refused(String),
}

/// Sends email: Amazon SES (the default) or SendGrid.
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Answers the provider's id of the message.
    async fn send(&self, message: &EmailMessage) -> Result<String, SendError>;
}

/// Sends text messages: Twilio.
#[async_trait]
pub trait TextMessenger: Send + Sync {
    /// Answers the provider's id of the message.
    async fn send(&self, message: &TextMessage) -> Result<String, SendError>;
}

/// A rendered email's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template {template}: {why}")]
pub struct TemplateError {
    pub template: String,
    pub why: String,
}

/// Words for a notice: the message templates.
pub trait MessageTemplates: Send + Sync {
    fn email(
        &self,
        notice: &Notice,
        order: &Order,
        invoice: Option<&Invoice>,
    ) -> Result<RenderedEmail, TemplateError>;

    /// The email of a refund (`Notice::Refunded`), naming the credit note that
    /// documents it.
    fn refund_email(
        &self,
        notice: &Notice,
        order: &Order,
        credit_note: &crate::domain::billing::CreditNote,
    ) -> Result<RenderedEmail, TemplateError>;

    /// The email of a step of return `return_id` (`Notice::Return`), showing the
    /// return as `order` has it: its items, label, reason, refund.
    fn return_email(
        &self,
        notice: &Notice,
        order: &Order,
        return_id: &crate::domain::fulfillment::returns::ReturnId,
    ) -> Result<RenderedEmail, TemplateError>;

    fn text(&self, notice: &Notice, order: &Order) -> Result<String, TemplateError>;
}

/// The invoice as a document.
pub trait InvoiceRenderer: Send + Sync {
    /// A PDF.
    fn pdf(&self, invoice: &Invoice) -> Vec<u8>;
}

/// Which messages went out: one claim per (event, channel), so that a redelivered
/// or duplicated event sends nothing twice.
#[async_trait]
pub trait MessageLog: Send + Sync {
    /// Claims sending `channel`'s message for `event_id` until `lease_until`, in one
    /// conditional write (the same outcomes as a webhook claim).
    async fn claim(
        &self,
        event_id: &str,
        channel: Channel,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Claim, StoreError>;

    /// Gives a claim back after a failed send, so the retry may claim at once.
    async fn release(
        &self,
        event_id: &str,
        channel: Channel,
        claim: &ClaimToken,
    ) -> Result<(), StoreError>;

    /// Records that the message went out (`provider_id`); it is never claimed again.
    async fn mark_sent(
        &self,
        event_id: &str,
        channel: Channel,
        at: OffsetDateTime,
        provider_id: &str,
    ) -> Result<(), StoreError>;

    /// Counts one more message to `recipient` (an address) on the day of `at`, in one
    /// conditional write: `false`, and nothing counted, once `cap` were counted.
    async fn count_for_recipient(
        &self,
        recipient: &str,
        at: OffsetDateTime,
        cap: u32,
    ) -> Result<bool, StoreError>;
}

/// Where invoices are kept and numbered.
#[async_trait]
pub trait InvoiceStore: Send + Sync {
    /// The order's invoice, if it has one.
    async fn get(&self, order_id: &OrderId) -> Result<Option<Invoice>, StoreError>;

    /// The order's invoice: the one it has, or `draft` with the next number of its
    /// year, stored atomically with the number it takes, so that no number is lost
    /// or given twice, and an order never gets two.
    async fn issue(&self, draft: &InvoiceDraft) -> Result<Invoice, StoreError>;
}

// Returns (issue 20): the order's returns, the queue of returns to handle, and stock
// coming back.

/// A return re-filed in the queue of its status (`from`: the status it leaves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnFiling {
    pub return_id: crate::domain::fulfillment::returns::ReturnId,
    pub from: Option<crate::domain::fulfillment::returns::ReturnStatus>,
}

/// A return label's tracking number, to index beside the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedReturn {
    pub return_id: crate::domain::fulfillment::returns::ReturnId,
    pub carrier: String,
    pub tracking_number: String,
}

/// One return in the queue of its status, as the queue holds it (no second read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedReturn {
    pub order_id: OrderId,
    pub user_id: String,
    pub return_id: crate::domain::fulfillment::returns::ReturnId,
    pub status: crate::domain::fulfillment::returns::ReturnStatus,
    pub created_at: OffsetDateTime,
    pub items: Vec<crate::domain::fulfillment::returns::ReturnLine>,
}

/// A page of a return queue, oldest first; `next` continues it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnQueuePage {
    pub returns: Vec<QueuedReturn>,
    pub next: Option<String>,
}

#[async_trait]
pub trait ReturnStore: Send + Sync {
    /// Writes `after` (an order whose returns and last history entry changed) in one
    /// conditional write on the version before it, filing `filing`'s return in the
    /// queue of its new status in the same transaction. `Refused` with the order as
    /// it is when it changed meanwhile.
    /// `indexed`: a return label's tracking number, indexed in the same transaction
    /// (as parcels' are) so the carrier's reports find the return.
    async fn record_return(
        &self,
        after: &Order,
        filing: Option<&ReturnFiling>,
        indexed: Option<&TrackedReturn>,
    ) -> Result<ChangeOutcome, StoreError>;

    /// The returns in `status`, oldest first, from `after` (a page's `next`): one
    /// Query. `None`: `after` is not a cursor of this queue.
    async fn return_queue(
        &self,
        status: crate::domain::fulfillment::returns::ReturnStatus,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Option<ReturnQueuePage>, StoreError>;
}

/// What putting returned goods back in stock did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestockOutcome {
    Restocked,
    /// This key put its goods back already: nothing added.
    AlreadyRestocked,
}

#[async_trait]
pub trait Restock: Send + Sync {
    /// Adds `lines` back to the available stock, all or nothing, at most once per
    /// `key` (a return's id).
    async fn restock(&self, key: &str, lines: &[StockLine]) -> Result<RestockOutcome, StoreError>;
}

/// Where credit notes are kept and numbered: one per refund, from a gapless series
/// per year of their own.
#[async_trait]
pub trait CreditNoteStore: Send + Sync {
    /// The order's credit notes, oldest first.
    async fn list(
        &self,
        order_id: &OrderId,
    ) -> Result<Vec<crate::domain::billing::CreditNote>, StoreError>;

    /// The refund's credit note: the one it has, or `draft` with the next number of
    /// its year, stored atomically with the number it takes, so that no number is
    /// lost or given twice, and a refund never gets two.
    async fn issue(
        &self,
        draft: &crate::domain::billing::CreditNoteDraft,
    ) -> Result<crate::domain::billing::CreditNote, StoreError>;
}

/// The credit note as a document.
pub trait CreditNoteRenderer: Send + Sync {
    /// A PDF.
    fn pdf(&self, note: &crate::domain::billing::CreditNote) -> Vec<u8>;
}

// ----------------------------------------------------------------------------------
// Customers' personal data: erasure and export (`services::privacy`).
// ----------------------------------------------------------------------------------

/// Where erasures are written and their jobs kept, and what the export reads beside
/// the orders.
#[async_trait]
pub trait PrivacyStore: Send + Sync {
    /// Writes `erased` (planned by `domain::privacy::erase` from the version before
    /// it) in one conditional write on that version: its address, contact, history
    /// and parcels, bumping the version. Refused: the order as the store found it
    /// (changed meanwhile, or erased by a twin).
    async fn write_erasure(&self, erased: &Order) -> Result<ChangeOutcome, StoreError>;

    /// The customer's latest erasure job, if any.
    async fn erasure_job(
        &self,
        user_id: &str,
    ) -> Result<Option<crate::domain::privacy::ErasureJob>, StoreError>;

    /// Records `job` as the customer's job, unless one is running: then that one.
    async fn start_erasure(
        &self,
        job: &crate::domain::privacy::ErasureJob,
    ) -> Result<ErasureStart, StoreError>;

    /// Saves `after`, a page later than `before`, if the stored job is still at
    /// `before`'s page: `false` when a twin continuation saved that page first.
    async fn save_erasure(
        &self,
        before: &crate::domain::privacy::ErasureJob,
        after: &crate::domain::privacy::ErasureJob,
    ) -> Result<bool, StoreError>;

    /// The message log's records of an order's events (versions `1..=version`).
    async fn messages(
        &self,
        order: &OrderId,
        version: u64,
    ) -> Result<Vec<MessageRecord>, StoreError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErasureStart {
    Started,
    /// A run for this customer is under way: the request joins it.
    Running(crate::domain::privacy::ErasureJob),
}

/// One message about an order as the message log holds it: which event, which
/// channel, and whether and when it went out (no address: the log keeps none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    pub event_id: String,
    pub channel: Channel,
    pub sent_at: Option<OffsetDateTime>,
    pub provider_id: Option<String>,
}

/// Hands an erasure job's next page to the background (an SQS message to the
/// `erase-customer-data` function), so no one request has to erase thousands of
/// orders.
#[async_trait]
pub trait ErasureQueue: Send + Sync {
    async fn continue_later(&self, user_id: &str, job_id: &str) -> Result<(), StoreError>;
}

/// An erasure queue message's body: whose job goes on. Nothing personal beyond the
/// user id the job is kept under.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ErasureMessage {
    pub user_id: String,
    pub job_id: String,
}

/// Addresses the mail provider said not to mail again (`services::suppressions`),
/// kept by a hash of the address, never the address.
#[async_trait]
pub trait Suppressions: Send + Sync {
    /// Suppresses `address` (case-insensitive); a second report keeps the first.
    async fn suppress(
        &self,
        address: &str,
        why: &crate::domain::suppression::Suppression,
    ) -> Result<(), StoreError>;

    /// The address's suppression, if it has one.
    async fn suppressed(
        &self,
        address: &str,
    ) -> Result<Option<crate::domain::suppression::Suppression>, StoreError>;

    /// Lifts it; `false` when there was none.
    async fn clear(&self, address: &str) -> Result<bool, StoreError>;

    /// Writes `noted` (an order one version on, its history noting a withheld
    /// message: `domain::suppression::note_unreachable`) in one conditional write on
    /// the version before it.
    async fn note_unreachable(&self, noted: &Order) -> Result<ChangeOutcome, StoreError>;
}
