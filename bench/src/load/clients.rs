//! The load: N clients, each a customer with its own carts and its own keep-alive
//! connection, taking orders through their whole life over HTTP, for a fixed time:
//! created, paid by card at localstripe (or by bank transfer, confirmed by an admin),
//! then one of the [`Path`]s — cancelled and refunded, refunded in part, shipped with a
//! Shippo label and delivered by the carrier's report, returned — reading the invoice
//! and credit notes on the way, then the history and the customer's list. Every
//! request is recorded (endpoint, status, latency, and for errors the problem's code
//! and `Retry-After`), the stand-ins' too.
//!
//! What is asynchronous (a payment confirmed by Stripe's webhook, fulfillment's
//! reservation, a parcel delivered by the carrier's report, an invoice or a credit
//! note issued by the notifications consumer) is polled for, with a deadline, never
//! slept on. A client answered 503 waits what `Retry-After` says and sends the same
//! request again (with the same `Idempotency-Key`), as the API asks its callers to;
//! every other unexpected answer ends that order's flow and is reported.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use orders_tests::{ADMIN, FULFILL, token};

use super::stack::form;

/// How long a client waits for any one answer: far above any healthy latency, so a
/// request that hits it is a hang, reported as status 0.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// After the load window, how long a client keeps retrying a request answered 503
/// (so that every create it started resolves).
const RETRY_GRACE: Duration = Duration::from_secs(60);
/// How often a client looks again at something asynchronous. (Each look is a read at
/// the emulator, which is the bottleneck: not much oftener than a step takes.)
pub const POLL_EVERY: Duration = Duration::from_millis(500);
/// How long a client waits for one asynchronous step before it gives up on the order.
const STEP_DEADLINE: Duration = Duration::from_secs(90);
/// A payment not confirmed this long after the card was charged: the driver sends
/// Stripe's event again, as Stripe retries a webhook that was not answered 2xx
/// (localstripe sends each event once, 1 s after the charge, with a 10 s timeout).
const STRIPE_RETRY_AFTER: Duration = Duration::from_secs(15);
/// The problem code of a 409 the API answers when the order changed between its read
/// and its conditional write: retryable.
pub const CONCURRENT_CHANGE: &str = "concurrent_change";
/// How long a label request answered 409 `label_in_progress` waits before it is sent
/// again.
const LABEL_RETRY: Duration = Duration::from_secs(2);
/// localstripe takes any `sk_` key; orders-dev's is the local one.
const STRIPE_KEY: &str = orders_dev::local::DEV_STRIPE_SECRET_KEY;
/// Every order's cart (stack::CART_LINES) holds 2 × load-p1 at 10.00 and 1 × load-p2
/// at 55.00: the amounts the money paths ask for, in cents.
pub const ORDER_TOTAL: i64 = 7500;
pub const PARTIAL_REFUND: i64 = 2500;
/// One load-p1 comes back: its price.
pub const RETURN_REFUND: i64 = 1000;
pub const RETURNED_PRODUCT: &str = "load-p1";

/// One request as a client saw it.
#[derive(Debug, Clone)]
pub struct Sample {
    pub endpoint: &'static str,
    /// When it was sent, from the start of the phase.
    pub sent: Duration,
    pub latency: Duration,
    /// 0: no answer (connection failed or CLIENT_TIMEOUT).
    pub status: u16,
    /// The status is one the flow expected (201 for a create, 200 for most).
    pub expected: bool,
    pub code: Option<String>,
    pub retry_after: Option<String>,
    pub problem_json: bool,
}

/// What an order goes through after it is created (and read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// By card: paid, then cancelled by an admin, which refunds it in full.
    PaidCancelled,
    /// By card: paid, refunded 25.00 by an admin, shipped and delivered through the
    /// status route; its credit note read.
    PartlyRefunded,
    /// By card: paid, shipped with a Shippo label once fulfillment has reserved its
    /// stock, delivered by the carrier's report; the invoice read, and as a PDF.
    Labelled,
    /// As `Labelled`, then one cable comes back: the customer asks, support approves
    /// with a Shippo return label, the carrier brings it back, the warehouse receives
    /// it: restocked and refunded 10.00 at Stripe; its credit note read.
    Returned,
    /// By bank transfer: cancelled by its owner while pending.
    OwnerCancelled,
    /// By bank transfer: confirmed by an admin, then cancelled by an admin.
    ConfirmedCancelled,
    /// By bank transfer: confirmed by an admin, shipped and delivered through the
    /// status route; the invoice read.
    Delivered,
}

/// The paths in the order each client takes them, its carts in turn across the phases
/// (client i starts at the i-th), a
/// return twice: it is the longest, and its endpoints need requests for a p99.
pub const PATHS: [Path; 8] = [
    Path::Returned,
    Path::PaidCancelled,
    Path::Labelled,
    Path::PartlyRefunded,
    Path::Returned,
    Path::OwnerCancelled,
    Path::ConfirmedCancelled,
    Path::Delivered,
];

impl Path {
    fn by_card(self) -> bool {
        matches!(
            self,
            Path::PaidCancelled | Path::PartlyRefunded | Path::Labelled | Path::Returned
        )
    }
}

/// An order a client placed, and what it expects of it.
#[derive(Debug, Clone)]
pub struct Placed {
    pub order_id: String,
    pub cart_id: String,
    pub user: String,
    pub key: String,
    pub path: Path,
    /// Creates sent (more than one: answered 503 and retried with the same key).
    pub create_attempts: u32,
    /// The answer that gave the order id was a replay (`Idempotent-Replayed: true`).
    pub replayed: bool,
    /// The status after the client's last accepted move; `None` when a move was
    /// answered unexpectedly, so nobody knows what to expect.
    pub expected_status: Option<&'static str>,
    /// The card order's Stripe PaymentIntent.
    pub intent_id: Option<String>,
    /// The order was confirmed (paid, or by an admin): it must have an invoice.
    pub confirmed: bool,
    /// The payment status it must end with (card orders whose flow ran to its end).
    pub payment_status: Option<&'static str>,
    /// The refunds its flow made or caused, in cents, in order.
    pub refunds: Vec<i64>,
    /// The return asked for, and whether the warehouse's receipt was answered.
    pub return_id: Option<String>,
    pub returned: bool,
    /// Why the flow stopped before its end, if it did.
    pub stopped: Option<String>,
    /// Times the driver sent Stripe's event again (Stripe's retry).
    pub stripe_resends: u32,
    /// Times it sent the carrier's report again (Shippo's retry).
    pub shippo_resends: u32,
}

/// A create that never got its 201 (the cart may or may not be ordered).
#[derive(Debug, Clone)]
pub struct NotCreated {
    pub cart_id: String,
    pub status: u16,
}

/// What one phase's clients did.
#[derive(Default)]
pub struct Traffic {
    /// When the window opened (set by the caller), and from then to the last client's
    /// last answer.
    pub started_at: Option<std::time::SystemTime>,
    pub elapsed: Duration,
    pub samples: Vec<Sample>,
    pub placed: Vec<Placed>,
    pub not_created: Vec<NotCreated>,
    /// Some client ran out of carts before the window closed.
    pub capped: bool,
    /// The share of one CPU each of stack::PROCESSES used over the window (set by
    /// the caller).
    pub cpu: Vec<Option<f64>>,
}

/// The carts not ordered yet, per client (client i is user `load-user-i`), each with
/// its number among the client's carts.
pub struct Carts {
    per_client: Vec<Mutex<VecDeque<(usize, String)>>>,
}

impl Carts {
    /// `total` carts spread over `clients` users: (cart id, user) to seed.
    pub fn new(clients: usize, total: usize) -> (Carts, Vec<(String, String)>) {
        let mut seeds = Vec::new();
        let per_client = (0..clients)
            .map(|client| {
                let carts: VecDeque<(usize, String)> = (0..total.div_ceil(clients))
                    .map(|n| (n, format!("load-{client}-{n}")))
                    .collect();
                seeds.extend(carts.iter().map(|(_, c)| (c.clone(), user(client))));
                Mutex::new(carts)
            })
            .collect();
        (Carts { per_client }, seeds)
    }

    fn next(&self, client: usize) -> Option<(usize, String)> {
        self.per_client[client].lock().unwrap().pop_front()
    }
}

pub fn user(client: usize) -> String {
    format!("load-user-{client}")
}

/// Where customer `user`'s messages go (its token's verified `email` claim).
pub fn email(user: &str) -> String {
    format!("{user}@example.com")
}

/// Where the clients send their requests.
#[derive(Clone)]
pub struct Targets {
    pub api: String,
    pub stripe: String,
    pub shippo: String,
}

/// Runs `clients` clients against `targets` for `window` from `started` (each
/// finishes the order it is on), or until their carts run out.
pub async fn run(
    targets: &Targets,
    carts: &Arc<Carts>,
    clients: usize,
    started: Instant,
    window: Duration,
) -> Traffic {
    let stop_at = started + window;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..clients {
        let client = Client::new(targets, i, started);
        let carts = Arc::clone(carts);
        tasks.spawn(client.run(carts, stop_at));
    }
    let mut traffic = Traffic::default();
    while let Some(done) = tasks.join_next().await {
        // A client task cannot fail short of a panic, which we pass on.
        let client = done.expect("a load client panicked");
        traffic.samples.extend(client.samples);
        traffic.placed.extend(client.placed);
        traffic.not_created.extend(client.not_created);
        traffic.capped |= client.capped;
    }
    traffic.elapsed = started.elapsed();
    traffic
}

/// The answer to one request, as far as a flow needs it.
struct Answer {
    status: u16,
    body: Value,
    replayed: bool,
}

/// Why an order's flow stopped short.
type Stop = String;

struct Client {
    index: usize,
    http: reqwest::Client,
    targets: Targets,
    phase_started: Instant,
    user: String,
    user_token: String,
    admin_token: String,
    fulfill_token: String,
    samples: Vec<Sample>,
    /// Until when a 503 is retried (set per run).
    retry_until: Instant,
}

impl Client {
    fn new(targets: &Targets, index: usize, phase_started: Instant) -> Client {
        let user = user(index);
        // A customer's token carries its verified email, as make dev's does: the order
        // takes it as its contact, so the customer is sent its messages.
        let user_token = orders::auth::issue_hs256_token_with_claims(
            orders_tests::SECRET.as_bytes(),
            &user,
            "",
            &json!({ "email": email(&user), "email_verified": true }),
            Duration::from_secs(3600),
        );
        Client {
            index,
            // One keep-alive connection per client and host, as a browser or a service
            // would hold.
            http: reqwest::Client::builder()
                .timeout(CLIENT_TIMEOUT)
                .pool_max_idle_per_host(1)
                .build()
                .expect("a plain HTTP client builds"),
            targets: targets.clone(),
            phase_started,
            user_token,
            admin_token: token("admin", ADMIN),
            fulfill_token: token("fulfillment", FULFILL),
            user,
            samples: Vec::new(),
            retry_until: phase_started,
        }
    }

    async fn run(mut self, carts: Arc<Carts>, stop_at: Instant) -> Traffic {
        self.retry_until = stop_at + RETRY_GRACE;
        let mut traffic = Traffic::default();
        while Instant::now() < stop_at {
            let Some((n, cart)) = carts.next(self.index) else {
                traffic.capped = true;
                break;
            };
            // The turn goes on from phase to phase: a short run takes every path too.
            let path = PATHS[(self.index + n) % PATHS.len()];
            match self.one_order(&cart, path).await {
                Ok(order) => traffic.placed.push(order),
                Err(not_created) => traffic.not_created.push(not_created),
            }
        }
        traffic.samples = std::mem::take(&mut self.samples);
        traffic
    }

    /// One order's life: create, read, then its path, then the history and the
    /// customer's list.
    async fn one_order(&mut self, cart_id: &str, path: Path) -> Result<Placed, NotCreated> {
        let key = format!("load-{cart_id}");
        let mut body = orders_tests::checkout(cart_id);
        if !path.by_card() {
            body["payment_method"] = json!("bank_transfer");
        }
        let create = self
            .api("create", Method::POST, "/api/orders", Who::Owner)
            .json(&body)
            .key(&key)
            .expect(&[201]);
        let (created, attempts) = self.call(&create).await;
        let not_created = NotCreated {
            cart_id: cart_id.to_string(),
            status: created.status,
        };
        let Some(order_id) = created.body["order_id"]
            .as_str()
            .filter(|_| created.status == 201)
        else {
            return Err(not_created);
        };
        let mut order = Placed {
            order_id: order_id.to_string(),
            cart_id: cart_id.to_string(),
            user: self.user.clone(),
            key,
            path,
            create_attempts: attempts,
            replayed: created.replayed,
            expected_status: Some("pending"),
            intent_id: created.body["payment"]["intent_id"]
                .as_str()
                .map(str::to_string),
            confirmed: false,
            payment_status: None,
            refunds: Vec::new(),
            return_id: None,
            returned: false,
            stopped: None,
            stripe_resends: 0,
            shippo_resends: 0,
        };
        let this = format!("/api/orders/{}", order.order_id);
        self.call(&self.api("get", Method::GET, &this, Who::Owner))
            .await;

        if let Err(why) = self.live(&mut order).await {
            // What the order is now is nobody's guess: not compared.
            order.expected_status = None;
            order.payment_status = None;
            order.stopped = Some(why);
        }

        let history = format!("{this}/history");
        self.call(&self.api("history", Method::GET, &history, Who::Owner))
            .await;
        self.call(&self.api("list", Method::GET, "/api/orders?limit=10", Who::Owner))
            .await;
        Ok(order)
    }

    /// The order's path, step by step; stops at the first step that goes wrong.
    async fn live(&mut self, order: &mut Placed) -> Result<(), Stop> {
        let this = format!("/api/orders/{}", order.order_id);
        let status = format!("{this}/status");
        match order.path {
            // The owner cancels while pending.
            Path::OwnerCancelled => self.cancel(order, Who::Owner).await,
            // Confirmed by an admin, then cancelled by one: fulfillment gives the
            // stock back.
            Path::ConfirmedCancelled => {
                self.confirm(order).await?;
                self.cancel(order, Who::Admin).await
            }
            Path::Delivered => {
                self.confirm(order).await?;
                self.ship_by_status(order, &status).await?;
                self.deliver_by_status(order, &status).await?;
                self.invoice(order, false).await
            }
            // Cancelling a paid order refunds what remains, in the background.
            Path::PaidCancelled => {
                self.pay(order).await?;
                self.cancel(order, Who::Admin).await?;
                order.refunds.push(ORDER_TOTAL);
                order.payment_status = Some("refunded");
                Ok(())
            }
            Path::PartlyRefunded => {
                self.pay(order).await?;
                let refund = self
                    .api(
                        "refund",
                        Method::POST,
                        &format!("{this}/refunds"),
                        Who::Admin,
                    )
                    .json(&json!({ "amount": "25.00", "reason": "load: a partial refund" }))
                    .key(&format!("refund-{}", order.key))
                    .expect(&[201]);
                let answer = self.step(&refund).await?;
                if answer.body["payment_status"] != "partially_refunded" {
                    return Err(format!("refund answered {}", answer.body["payment_status"]));
                }
                order.refunds.push(PARTIAL_REFUND);
                order.payment_status = Some("partially_refunded");
                self.ship_by_status(order, &status).await?;
                self.deliver_by_status(order, &status).await?;
                self.invoice(order, false).await?;
                self.credit_notes(order).await
            }
            Path::Labelled => {
                self.pay(order).await?;
                self.ship_with_label(order).await?;
                self.invoice(order, true).await
            }
            Path::Returned => {
                self.pay(order).await?;
                self.ship_with_label(order).await?;
                self.invoice(order, false).await?;
                self.give_back(order).await?;
                self.credit_notes(order).await
            }
        }
    }

    /// The customer pays at localstripe as a browser's Stripe.js would (a test card,
    /// then confirm), and waits until Stripe's webhook has confirmed the order.
    async fn pay(&mut self, order: &mut Placed) -> Result<(), Stop> {
        let intent = order
            .intent_id
            .clone()
            .ok_or("the create answered no payment intent")?;
        let url = format!("{}/v1/payment_intents/{intent}", self.targets.stripe);
        let card = Call::to("localstripe: card", Method::POST, url.clone())
            .basic(STRIPE_KEY)
            .form(&[("payment_method", "pm_card_visa")]);
        self.step(&card).await?;
        let confirm = Call::to(
            "localstripe: confirm",
            Method::POST,
            format!("{url}/confirm"),
        )
        .basic(STRIPE_KEY);
        let charged_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let confirmed = self.step(&confirm).await?;
        if confirmed.body["status"] != "succeeded" {
            return Err(format!(
                "localstripe's intent is {}",
                confirmed.body["status"]
            ));
        }
        let this = format!("/api/orders/{}", order.order_id);
        let deadline = Instant::now() + STEP_DEADLINE;
        loop {
            let paid = |o: &Value| o["status"] == "confirmed" && o["payment_status"] == "paid";
            let wait = STRIPE_RETRY_AFTER.min(deadline.saturating_duration_since(Instant::now()));
            if self
                .wait_for("wait: paid", &this, paid, wait)
                .await
                .is_some()
            {
                order.expected_status = Some("confirmed");
                order.payment_status = Some("paid");
                order.confirmed = true;
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err("never confirmed after its payment".into());
            }
            self.resend_stripe_event(&intent, charged_at).await;
            order.stripe_resends += 1;
        }
    }

    /// Stripe's retry of `payment_intent.succeeded` for `intent`: the event as
    /// localstripe made it, signed with the webhook secret, posted to orders-dev's
    /// Stripe webhook (which drops what it has seen).
    async fn resend_stripe_event(&mut self, intent: &str, charged_at: u64) {
        // localstripe lists oldest first, 100 at most a page: the events since the
        // charge, page by page.
        let mut after: Option<String> = None;
        let event = loop {
            let mut url = format!(
                "{}/v1/events?type=payment_intent.succeeded&limit=100&created%5Bgte%5D={}",
                self.targets.stripe,
                charged_at.saturating_sub(2)
            );
            if let Some(last) = &after {
                url.push_str(&format!("&starting_after={last}"));
            }
            let list = Call::to("localstripe: events", Method::GET, url).basic(STRIPE_KEY);
            let (page, _) = self.call(&list).await;
            let events = page.body["data"].as_array().cloned().unwrap_or_default();
            if let Some(event) = events.iter().find(|e| e["data"]["object"]["id"] == intent) {
                break event.clone();
            }
            match events.last().and_then(|e| e["id"].as_str()) {
                Some(last) if page.body["has_more"] == true => after = Some(last.to_string()),
                _ => return,
            }
        };
        let mut signed = json!({
            "headers": { "stripe-signature": orders_dev::samples::SIGNATURE_PLACEHOLDER },
            "body": event.to_string(),
        });
        orders_dev::samples::sign_stripe(&mut signed, orders_dev::local::DEV_STRIPE_WEBHOOK_SECRET);
        let resend = Call::to(
            "Stripe webhook (resent)",
            Method::POST,
            format!("{}/api/payments/stripe/webhook", self.targets.api),
        )
        .header(
            "stripe-signature",
            signed["headers"]["stripe-signature"]
                .as_str()
                .unwrap_or_default(),
        )
        .raw_json(event.to_string());
        self.call(&resend).await;
    }

    async fn confirm(&mut self, order: &mut Placed) -> Result<(), Stop> {
        let status = format!("/api/orders/{}/status", order.order_id);
        let confirm = self
            .api("confirm", Method::PUT, &status, Who::Admin)
            .json(&json!({ "status": "confirmed", "reason": "bank transfer received" }));
        self.step(&confirm).await?;
        order.expected_status = Some("confirmed");
        order.confirmed = true;
        Ok(())
    }

    async fn cancel(&mut self, order: &mut Placed, who: Who) -> Result<(), Stop> {
        let this = format!("/api/orders/{}", order.order_id);
        let cancel = self
            .api("cancel", Method::DELETE, &this, who)
            .json(&json!({ "reason": "load: changed my mind" }));
        self.step(&cancel).await?;
        order.expected_status = Some("cancelled");
        Ok(())
    }

    async fn ship_by_status(&mut self, order: &mut Placed, status: &str) -> Result<(), Stop> {
        let ship = self
            .api("ship", Method::PUT, status, Who::Fulfillment)
            .json(&json!({ "status": "shipped", "tracking_number": "1Z999AA10123456784", "carrier": "UPS" }));
        self.step(&ship).await?;
        order.expected_status = Some("shipped");
        Ok(())
    }

    async fn deliver_by_status(&mut self, order: &mut Placed, status: &str) -> Result<(), Stop> {
        let deliver = self
            .api("deliver", Method::PUT, status, Who::Fulfillment)
            .json(&json!({ "status": "delivered" }));
        self.step(&deliver).await?;
        order.expected_status = Some("delivered");
        Ok(())
    }

    /// Once fulfillment has reserved the stock, the warehouse ships everything in one
    /// parcel with a Shippo label; the carrier reports it delivered (the stand-in's
    /// control route), which reaches the order through Shippo's webhook.
    async fn ship_with_label(&mut self, order: &mut Placed) -> Result<(), Stop> {
        let this = format!("/api/orders/{}", order.order_id);
        let reserved = |o: &Value| o["shipping_status"] == "processing";
        self.wait_for("wait: reserved", &this, reserved, STEP_DEADLINE)
            .await
            .ok_or("fulfillment never reserved its stock")?;
        let label = self
            .api(
                "ship with label",
                Method::POST,
                &format!("{this}/shipments"),
                Who::Fulfillment,
            )
            .json(&json!({}))
            .key(&format!("label-{}", order.key))
            .expect(&[201]);
        let parcel = self.label_step(&label).await?;
        order.expected_status = Some("shipped");
        let (carrier, tracking) = (
            parcel.body["carrier"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            parcel.body["tracking_number"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        order.shippo_resends += self.carrier_delivers(&carrier, &tracking).await?;
        let delivered = |o: &Value| o["status"] == "delivered";
        self.wait_for("wait: delivered", &this, delivered, STEP_DEADLINE)
            .await
            .ok_or("the carrier's report never delivered it")?;
        order.expected_status = Some("delivered");
        Ok(())
    }

    /// The carrier reports parcel `tracking` delivered: the Shippo stand-in posts
    /// `track_updated` to orders-dev before it answers, and says what it was answered.
    /// One not answered 2xx is sent again (as Shippo retries), until the deadline.
    /// Answers the times it was sent again.
    async fn carrier_delivers(&mut self, carrier: &str, tracking: &str) -> Result<u32, Stop> {
        let track = format!(
            "{}/_control/tracks/{carrier}/{tracking}",
            self.targets.shippo
        );
        let report = Call::to(
            "Shippo stand-in: carrier report",
            Method::POST,
            track.clone(),
        )
        .raw_json(json!({ "status": "DELIVERED" }).to_string());
        let mut answer = self.step(&report).await?;
        let deadline = Instant::now() + STEP_DEADLINE;
        let mut resends = 0;
        let accepted = |a: &Answer| {
            a.body["deliveries"].as_array().is_some_and(|d| {
                !d.is_empty()
                    && d.iter()
                        .all(|d| d["status"].as_u64().is_some_and(|s| s < 300))
            })
        };
        while !accepted(&answer) {
            if Instant::now() >= deadline {
                return Err(format!(
                    "orders-dev never took the carrier's report of {tracking}"
                ));
            }
            tokio::time::sleep(POLL_EVERY).await;
            let resend = Call::to(
                "Shippo stand-in: carrier report",
                Method::POST,
                format!("{track}/resend"),
            )
            .raw_json("{}".into());
            answer = self.step(&resend).await?;
            resends += 1;
        }
        Ok(resends)
    }

    /// One load-p1 comes back: asked for by the customer, approved by support with a
    /// return label, carried back (the carrier's report), received by the warehouse:
    /// restocked and refunded.
    async fn give_back(&mut self, order: &mut Placed) -> Result<(), Stop> {
        let returns = format!("/api/orders/{}/returns", order.order_id);
        let ask = self
            .api("return", Method::POST, &returns, Who::Owner)
            .json(&json!({ "items": [{ "product_id": RETURNED_PRODUCT, "quantity": 1, "reason": "damaged" }], "note": "load: bent connector" }))
            .key(&format!("return-{}", order.key))
            .expect(&[201]);
        let asked = self.step(&ask).await?;
        let return_id = asked.body["return_id"]
            .as_str()
            .ok_or("the return's answer has no return_id")?
            .to_string();
        order.return_id = Some(return_id.clone());
        let this = format!("{returns}/{return_id}");
        let approve = self.api(
            "approve return",
            Method::POST,
            &format!("{this}/approve"),
            Who::Admin,
        );
        let approved = self.label_step(&approve).await?;
        let label = &approved.body["label"];
        let (carrier, tracking) = (
            label["carrier"].as_str().unwrap_or_default().to_string(),
            label["tracking_number"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        order.shippo_resends += self.carrier_delivers(&carrier, &tracking).await?;
        let back = |r: &Value| {
            r["returns"].as_array().is_some_and(|all| {
                all.iter().any(|r| {
                    r["return_id"] == return_id.as_str() && r["label"]["status"] == "delivered"
                })
            })
        };
        self.wait_for("wait: return delivered", &returns, back, STEP_DEADLINE)
            .await
            .ok_or("the return parcel's delivery never reached the return")?;
        // Received: 200 once restocked and refunded; 202 while either is still to
        // finish, which the same request (same key) finishes.
        let receive = self
            .api("receive return", Method::POST, &format!("{this}/receive"), Who::Fulfillment)
            .json(&json!({ "items": [{ "product_id": RETURNED_PRODUCT, "quantity": 1, "restock": true }], "refund_shipping": false, "restocking_fee": "0.00" }))
            .key(&format!("receive-{}", order.key))
            .expect(&[200, 202]);
        let deadline = Instant::now() + STEP_DEADLINE;
        let received = loop {
            let answer = self.step(&receive).await?;
            if answer.status == 200 || Instant::now() >= deadline {
                break answer;
            }
            tokio::time::sleep(POLL_EVERY).await;
        };
        let refund = &received.body["refund"];
        if received.body["status"] != "received"
            || refund["status"] != "refunded"
            || cents(&refund["amount"]) != Some(RETURN_REFUND)
        {
            return Err(format!(
                "the receipt answered {} {}, refund {refund}",
                received.status, received.body["status"]
            ));
        }
        order.returned = true;
        order.refunds.push(RETURN_REFUND);
        order.payment_status = Some("partially_refunded");
        Ok(())
    }

    /// The invoice, issued by the notifications consumer once the order is confirmed:
    /// read (404 until it is issued), and as a PDF when `pdf`.
    async fn invoice(&mut self, order: &Placed, pdf: bool) -> Result<(), Stop> {
        let invoice = format!("/api/orders/{}/invoice", order.order_id);
        let issued = |i: &Value| i["invoice_number"].is_string();
        let deadline = Instant::now() + STEP_DEADLINE;
        let read = self
            .api("invoice", Method::GET, &invoice, Who::Owner)
            .expect(&[200, 404]);
        loop {
            let (answer, _) = self.call(&read).await;
            if answer.status == 200 && issued(&answer.body) {
                break;
            }
            if !read.expected.contains(&answer.status) {
                return Err(format!("the invoice answered {}", answer.status));
            }
            if Instant::now() >= deadline {
                return Err("its invoice was never issued".into());
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
        if pdf {
            let read = self
                .api("invoice pdf", Method::GET, &invoice, Who::Owner)
                .header("accept", "application/pdf");
            self.step(&read).await?;
        }
        Ok(())
    }

    /// Waits until the order lists one credit note per refund it made.
    async fn credit_notes(&mut self, order: &Placed) -> Result<(), Stop> {
        let path = format!("/api/orders/{}/credit-notes", order.order_id);
        let wanted = order.refunds.len();
        let all = |b: &Value| {
            b["credit_notes"]
                .as_array()
                .is_some_and(|c| c.len() >= wanted)
        };
        self.wait_for("credit notes", &path, all, STEP_DEADLINE)
            .await
            .map(|_| ())
            .ok_or_else(|| format!("fewer than {wanted} credit note(s)"))
    }

    /// GETs `path` as the owner (recorded as `endpoint`) until its body satisfies
    /// `done`, every POLL_EVERY, for at most `limit`. Answers the body, or `None`.
    async fn wait_for(
        &mut self,
        endpoint: &'static str,
        path: &str,
        done: impl Fn(&Value) -> bool,
        limit: Duration,
    ) -> Option<Value> {
        let deadline = Instant::now() + limit;
        let read = self.api(endpoint, Method::GET, path, Who::Owner);
        loop {
            let (answer, _) = self.call(&read).await;
            if answer.status == 200 && done(&answer.body) {
                return Some(answer.body);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// A request that buys a label (`ship with label`, `approve return`). A 409
    /// `label_in_progress` says that another attempt holds the claim on the label
    /// purchase ("retry shortly"): after a 503 whose write reached the table once the
    /// emulator resumed, that is this request's own earlier attempt, whose claim lapses
    /// with its lease. So it is sent again (same key) every [`LABEL_RETRY`] until the step's
    /// deadline; the 409s stay in the samples, unexpected, for the phase to judge.
    async fn label_step(&mut self, call: &Call) -> Result<Answer, Stop> {
        let deadline = Instant::now() + STEP_DEADLINE;
        loop {
            let (answer, _) = self.call(call).await;
            let held = answer.status == 409 && answer.body["code"] == "label_in_progress";
            if !held || Instant::now() >= deadline {
                return self.judge(call, answer);
            }
            tokio::time::sleep(LABEL_RETRY).await;
        }
    }

    /// A request of the flow: an answer it did not expect stops the flow.
    async fn step(&mut self, call: &Call) -> Result<Answer, Stop> {
        let (answer, _) = self.call(call).await;
        self.judge(call, answer)
    }

    /// `answer` if `call` expected it; otherwise why the flow stops.
    fn judge(&self, call: &Call, answer: Answer) -> Result<Answer, Stop> {
        if call.expected.contains(&answer.status) {
            Ok(answer)
        } else {
            Err(format!(
                "{} answered {} {}",
                call.endpoint,
                answer.status,
                answer.body["code"].as_str().unwrap_or_default()
            ))
        }
    }

    /// A request to the API as `who`, expected to be answered 200.
    fn api(&self, endpoint: &'static str, method: Method, path: &str, who: Who) -> Call {
        let token = match who {
            Who::Owner => &self.user_token,
            Who::Admin => &self.admin_token,
            Who::Fulfillment => &self.fulfill_token,
        };
        Call::to(endpoint, method, format!("{}{path}", self.targets.api))
            .header("authorization", &format!("Bearer {token}"))
    }

    /// Sends one request; while it is answered 503 (or 409 `concurrent_change`: the
    /// order changed between the API's read and its write, "retry", as the OpenAPI
    /// document says) and retries are still allowed, waits `Retry-After` (or a moment)
    /// and sends it again. Answers the last answer and how many
    /// requests it took.
    async fn call(&mut self, call: &Call) -> (Answer, u32) {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (answer, retry_after) = self.send(call).await;
            let raced = answer.status == 409 && answer.body["code"] == CONCURRENT_CHANGE;
            if !(answer.status == 503 || raced) || Instant::now() >= self.retry_until {
                return (answer, attempts);
            }
            let pause = if raced {
                POLL_EVERY
            } else {
                Duration::from_secs(1)
            };
            tokio::time::sleep(retry_after.unwrap_or(pause)).await;
        }
    }

    /// One request, recorded.
    async fn send(&mut self, call: &Call) -> (Answer, Option<Duration>) {
        let mut request = self.http.request(call.method.clone(), call.url.as_str());
        for (name, value) in &call.headers {
            request = request.header(*name, value);
        }
        if let Some(user) = &call.basic_user {
            request = request.basic_auth(user, None::<&str>);
        }
        if let Some(body) = &call.body {
            request = request.body(body.clone());
        }
        let sent = Instant::now();
        let answered = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let (retry_after, content_type, replayed) = (
                header("retry-after"),
                header("content-type"),
                header("idempotent-replayed"),
            );
            let bytes = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, retry_after, content_type, replayed, bytes))
        }
        .await;
        let latency = sent.elapsed();
        let (status, retry_after, content_type, replayed, bytes) =
            answered.unwrap_or((0, None, None, None, Default::default()));
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        self.samples.push(Sample {
            endpoint: call.endpoint,
            sent: sent.duration_since(self.phase_started),
            latency,
            status,
            expected: call.expected.contains(&status),
            code: body["code"].as_str().map(str::to_string),
            retry_after: retry_after.clone(),
            problem_json: content_type.as_deref() == Some("application/problem+json"),
        });
        let wait = retry_after
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let answer = Answer {
            status,
            body,
            replayed: replayed.as_deref() == Some("true"),
        };
        (answer, wait)
    }
}

/// Whose token an API request carries.
#[derive(Clone, Copy)]
enum Who {
    /// The customer who placed the order.
    Owner,
    Admin,
    Fulfillment,
}

/// One request of a client, and the statuses it may get.
struct Call {
    /// The endpoint's name in the report.
    endpoint: &'static str,
    method: Method,
    url: String,
    headers: Vec<(&'static str, String)>,
    basic_user: Option<String>,
    body: Option<String>,
    expected: &'static [u16],
}

impl Call {
    /// A request without a body, expected to be answered 200.
    fn to(endpoint: &'static str, method: Method, url: String) -> Call {
        Call {
            endpoint,
            method,
            url,
            headers: Vec::new(),
            basic_user: None,
            body: None,
            expected: &[200],
        }
    }

    fn header(mut self, name: &'static str, value: &str) -> Call {
        self.headers.push((name, value.to_string()));
        self
    }

    fn json(self, body: &Value) -> Call {
        self.raw_json(body.to_string())
    }

    fn raw_json(mut self, body: String) -> Call {
        self.body = Some(body);
        self.header("content-type", "application/json")
    }

    /// Stripe's form body.
    fn form(mut self, pairs: &[(&str, &str)]) -> Call {
        self.body = Some(form(pairs).unwrap_or_default());
        self.header("content-type", "application/x-www-form-urlencoded")
    }

    /// Stripe's authentication: the secret key as the basic-auth user.
    fn basic(mut self, key: &str) -> Call {
        self.basic_user = Some(key.to_string());
        self
    }

    fn key(self, key: &str) -> Call {
        self.header("idempotency-key", key)
    }

    fn expect(mut self, statuses: &'static [u16]) -> Call {
        self.expected = statuses;
        self
    }
}

/// A JSON amount (`25.0`, `"25.00"`) in cents.
pub fn cents(amount: &Value) -> Option<i64> {
    let value = match amount {
        Value::String(text) => text.parse::<f64>().ok()?,
        other => other.as_f64()?,
    };
    Some((value * 100.0).round() as i64)
}
