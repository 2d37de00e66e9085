//! Payments against localstripe (the Stripe stand-in `make test` starts) and the
//! emulator: checkout creates one PaymentIntent, Stripe's signed webhook confirms the
//! order, declines and mismatches do not, duplicates and replays have one effect,
//! cancellations and admins refund, and unpaid orders expire.

use std::time::Duration;

use aws_lc_rs::hmac;
use futures_util::future::join_all;
use orders::adapters::dynamo::order_item::order_from_item;
use orders::domain::Order;
use orders::events::{Envelope, OrderEvent};
use orders::services::payments::Settled;
use orders_tests::{ADMIN, Call, Reply, Stack, checkout, token, unique};
use serde_json::{Value, json};
use time::OffsetDateTime;

const USER: &str = "user789";

/// The security review's payment findings (issue 23), over this module's harness.
mod security;

/// Refunds' allocations and their credit notes (issue 19), over this module's harness.
mod credit_notes;

fn stripe_base() -> String {
    std::env::var("STRIPE_API_BASE").expect(
        "STRIPE_API_BASE is not set: run the tests with `make test`, which starts localstripe",
    )
}

/// localstripe, as a test reads and drives it (what a customer's browser and Stripe's
/// dashboard would do).
pub(crate) struct Stripe {
    http: reqwest::Client,
    base: String,
}

impl Stripe {
    fn new() -> Stripe {
        Stripe {
            http: reqwest::Client::new(),
            base: stripe_base(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, &str)],
    ) -> (u16, Value) {
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth("sk_test_orders_tests")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The customer pays: localstripe takes the payment method in an update of the
    /// intent, then a bare confirm.
    async fn pay(&self, intent: &str, method: &str) -> u16 {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                &format!("/v1/payment_intents/{intent}"),
                &[("payment_method", method)],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        self.call(
            reqwest::Method::POST,
            &format!("/v1/payment_intents/{intent}/confirm"),
            &[],
        )
        .await
        .0
    }

    async fn intent(&self, intent: &str) -> Value {
        self.call(
            reqwest::Method::GET,
            &format!("/v1/payment_intents/{intent}"),
            &[],
        )
        .await
        .1
    }

    /// Every intent localstripe holds for `order_id` (its metadata).
    async fn intents_for(&self, order_id: &str) -> Vec<Value> {
        let (_, list) = self
            .call(reqwest::Method::GET, "/v1/payment_intents?limit=100", &[])
            .await;
        list["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["metadata"]["order_id"] == order_id)
            .cloned()
            .collect()
    }

    pub(crate) async fn refunds_of(&self, intent: &str) -> Vec<Value> {
        let (_, list) = self
            .call(
                reqwest::Method::GET,
                &format!("/v1/refunds?payment_intent={intent}"),
                &[],
            )
            .await;
        list["data"].as_array().cloned().unwrap_or_default()
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A stack with payments on, its API served on a local port, and localstripe told to
/// send its signed events there (every test's server gets every event; an order not in
/// a test's table is acknowledged and ignored, as in production).
pub(crate) struct Payments {
    pub(crate) stack: Stack,
    pub(crate) stripe: Stripe,
    secret: String,
    _server: tokio::task::JoinHandle<std::io::Result<()>>,
}

pub(crate) async fn payments() -> Payments {
    payments_hearing_stripe(true).await
}

/// With `hear` false, localstripe is not told about this stack: only what the test
/// delivers reaches its webhook route (no other test's events).
async fn payments_hearing_stripe(hear: bool) -> Payments {
    let base = stripe_base();
    let secret = format!("whsec_{}", unique("t").replace('-', ""));
    let stack = Stack::with_settings(|s| {
        s.with("STRIPE_SECRET_KEY", "sk_test_orders_tests")
            .with("STRIPE_API_BASE", &base)
            .with("STRIPE_WEBHOOK_SECRET", &secret)
    })
    .await;
    stack.put_demo_cart().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(orders_dev::server::serve(
        listener,
        stack.app.clone(),
        stack.router.clone(),
    ));
    let stripe = Stripe::new();
    let url = format!("http://127.0.0.1:{port}/api/payments/stripe/webhook");
    if !hear {
        return Payments {
            stack,
            stripe,
            secret,
            _server: server,
        };
    }
    let (status, body) = stripe
        .call(
            reqwest::Method::POST,
            &format!("/_config/webhooks/{}", unique("hook")),
            &[
                ("url", url.as_str()),
                ("secret", secret.as_str()),
                ("events[]", "payment_intent.succeeded"),
                ("events[]", "payment_intent.payment_failed"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    Payments {
        stack,
        stripe,
        secret,
        _server: server,
    }
}

impl Payments {
    async fn place(&self, cart_id: &str, method: &str) -> Reply {
        let mut body = checkout(cart_id);
        body["payment_method"] = json!(method);
        self.stack
            .send(
                Call::new("POST", "/api/orders")
                    .bearer(&token(USER, ""))
                    .json(&body),
            )
            .await
    }

    /// A cart of its own with the demo cart's lines (75.00): tests share localstripe,
    /// and the order id follows from the cart id.
    async fn fresh_cart(&self) -> String {
        let cart_id = unique("cart");
        let (_, _, lines) = orders_dev::provision::DEMO_CART;
        self.stack.put_cart(&cart_id, USER, lines).await;
        cart_id
    }

    /// A card order of a fresh cart: its id and intent.
    async fn card_order(&self) -> (String, String) {
        let cart_id = self.fresh_cart().await;
        let reply = self.place(&cart_id, "credit_card").await;
        assert_eq!(reply.status, 201, "{reply:?}");
        let intent = reply.body["payment"]["intent_id"].as_str().unwrap();
        (
            reply.body["order_id"].as_str().unwrap().to_string(),
            intent.to_string(),
        )
    }

    async fn order(&self, order_id: &str) -> Order {
        order_from_item(&self.stack.stored_order(order_id).await.unwrap()).unwrap()
    }

    /// Polls the stored order until `done` holds (localstripe sends its webhooks a
    /// second after the event).
    async fn until(&self, order_id: &str, done: impl Fn(&Order) -> bool) -> Order {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let order = self.order(order_id).await;
            if done(&order) {
                return order;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the order never got there: {order:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A card order paid with the test card, as Stripe's webhook confirmed it.
    pub(crate) async fn paid_order(&self) -> (String, String) {
        let (order_id, intent) = self.card_order().await;
        assert_eq!(self.stripe.pay(&intent, "pm_card_visa").await, 200);
        self.until(&order_id, |o| o.payment_status.as_str() == "paid")
            .await;
        (order_id, intent)
    }

    /// Sends `event` to the webhook route, signed with this stack's secret at `t`.
    async fn deliver(&self, event: &Value, t: i64) -> Reply {
        let body = event.to_string();
        self.stack
            .send(
                Call::new("POST", "/api/payments/stripe/webhook")
                    .header("stripe-signature", &signature(&self.secret, t, &body))
                    .raw_body("application/json", &body),
            )
            .await
    }

    async fn refund(&self, order_id: &str, amount: &str, key: &str) -> Reply {
        self.stack
            .send(
                Call::new("POST", &format!("/api/orders/{order_id}/refunds"))
                    .bearer(&token("admin", ADMIN))
                    .header("idempotency-key", key)
                    .json(&json!({ "amount": amount, "reason": "damaged in transit" })),
            )
            .await
    }

    /// What the payments consumer does with the order's `order.cancelled` event.
    async fn settle(&self, order_id: &str) -> Settled {
        self.try_settle(order_id).await.unwrap()
    }

    async fn try_settle(
        &self,
        order_id: &str,
    ) -> Result<Settled, orders::services::payments::PaymentServiceError> {
        let body = self.cancelled_event(order_id).await;
        self.settle_event(&body).await
    }

    async fn settle_event(
        &self,
        body: &str,
    ) -> Result<Settled, orders::services::payments::PaymentServiceError> {
        self.stack
            .wiring
            .payment_service()
            .unwrap()
            .settle_cancelled(Some(body))
            .await
    }

    /// The order's `order.cancelled` event, as the payments queue delivers it.
    async fn cancelled_event(&self, order_id: &str) -> String {
        let order = self.order(order_id).await;
        let envelope = Envelope {
            id: unique("evt"),
            detail_type: "order.cancelled".into(),
            source: "orders".into(),
            time: "2026-12-02T00:00:00Z".into(),
            detail: OrderEvent::for_change(None, &order).unwrap(),
        };
        serde_json::to_string(&envelope).unwrap()
    }
}

fn signature(secret: &str, t: i64, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, format!("{t}.{body}").as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// A `payment_intent.<kind>` event as Stripe sends it (the fields this service reads).
fn intent_event(id: &str, kind: &str, intent: &str, order_id: &str, amount: i64) -> Value {
    json!({
        "id": id,
        "object": "event",
        "type": format!("payment_intent.{kind}"),
        "created": now(),
        "data": { "object": {
            "id": intent,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": if kind == "succeeded" { amount } else { 0 },
            "currency": "usd",
            "metadata": { "order_id": order_id },
            "last_payment_error": if kind == "payment_failed" {
                json!({ "code": "card_declined", "message": "Your card was declined." })
            } else { Value::Null },
        }}
    })
}

#[tokio::test]
async fn paying_a_card_order_confirms_it_and_marks_it_paid() {
    let p = payments().await;
    let (order_id, intent) = p.card_order().await;
    // One intent at Stripe for the order's total, in minor units, naming the order.
    let at_stripe = p.stripe.intent(&intent).await;
    assert_eq!(at_stripe["amount"], 7500);
    assert_eq!(at_stripe["currency"], "usd");
    assert_eq!(at_stripe["metadata"]["order_id"], order_id.as_str());

    // The owner sees what it pays with; an admin and the order's event do not.
    let uri = format!("/api/orders/{order_id}");
    let mine = p
        .stack
        .send(Call::new("GET", &uri).bearer(&token(USER, "")))
        .await;
    assert_eq!(mine.body["payment"]["intent_id"], intent.as_str());
    assert_eq!(
        mine.body["payment"]["client_secret"],
        at_stripe["client_secret"]
    );
    let staff = p
        .stack
        .send(Call::new("GET", &uri).bearer(&token("admin", ADMIN)))
        .await;
    assert_eq!(staff.body["payment"]["intent_id"], intent.as_str());
    assert!(
        staff.body["payment"].get("client_secret").is_none(),
        "{staff:?}"
    );

    // The customer pays; localstripe's signed payment_intent.succeeded confirms it.
    assert_eq!(p.stripe.pay(&intent, "pm_card_visa").await, 200);
    let order = p
        .until(&order_id, |o| o.status.as_str() == "confirmed")
        .await;
    assert_eq!(order.payment_status.as_str(), "paid");
    assert_eq!(order.version, 2);
    let entry = order.history.last().unwrap();
    assert_eq!(
        (entry.actor.as_str(), entry.role.as_str()),
        ("payments", "payments")
    );
    assert_eq!(
        order.payment.unwrap().received.unwrap().to_decimal_string(),
        "75.00"
    );
    // Paid: the client secret is no longer handed out.
    let mine = p
        .stack
        .send(Call::new("GET", &uri).bearer(&token(USER, "")))
        .await;
    assert!(
        mine.body["payment"].get("client_secret").is_none(),
        "{mine:?}"
    );
    // The event of the change is `order.confirmed`, carrying the payment status.
    let event = OrderEvent::for_change(None, &p.order(&order_id).await).unwrap();
    assert_eq!(event.payment_status, "paid");
}

#[tokio::test]
async fn retries_replays_and_concurrent_twins_of_a_checkout_make_one_intent() {
    let p = payments().await;
    let cart_id = p.fresh_cart().await;
    let send = |key: Option<&'static str>| {
        let mut call = Call::new("POST", "/api/orders")
            .bearer(&token(USER, ""))
            .json(&checkout(&cart_id));
        if let Some(key) = key {
            call = call.header("idempotency-key", key);
        }
        p.stack.send(call)
    };
    let replies = join_all([
        send(Some("k-1")),
        send(Some("k-1")),
        send(Some("k-2")),
        send(None),
        send(None),
        send(Some("k-1")),
    ])
    .await;
    let order_id = orders::domain::OrderId::for_cart(&cart_id).to_string();
    assert!(replies.iter().any(|r| r.status == 201), "{replies:?}");
    for reply in &replies {
        // Created, replayed, already ordered, or still being placed: never another order.
        assert!(matches!(reply.status, 201 | 409), "{reply:?}");
    }
    // A keyed retry afterwards is the replay, with the same payment.
    let retry = send(Some("k-1")).await;
    let intents = p.stripe.intents_for(&order_id).await;
    assert_eq!(intents.len(), 1, "{intents:#?}");
    let stored = p.order(&order_id).await.payment.unwrap();
    assert_eq!(intents[0]["id"], stored.intent_id.as_str());
    if retry.status == 201 {
        assert_eq!(retry.header("idempotent-replayed"), Some("true"));
        assert_eq!(
            retry.body["payment"]["intent_id"],
            stored.intent_id.as_str()
        );
    } else {
        assert_eq!(retry.code(), "cart_already_ordered", "{retry:?}");
    }
    for reply in replies.iter().filter(|r| r.status == 201) {
        assert_eq!(
            reply.body["payment"]["intent_id"],
            stored.intent_id.as_str()
        );
    }
}

#[tokio::test]
async fn stripe_unreachable_at_checkout_is_503_and_nothing_is_stored() {
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let stack = Stack::with_settings(|s| {
        s.with("STRIPE_SECRET_KEY", "sk_test_orders_tests")
            .with("STRIPE_API_BASE", &base)
            .with("STRIPE_WEBHOOK_SECRET", "whsec_unused")
    })
    .await;
    stack.put_demo_cart().await;
    let reply = stack
        .send(
            Call::new("POST", "/api/orders")
                .bearer(&token(USER, ""))
                .header("idempotency-key", "k-1")
                .json(&checkout("abc123")),
        )
        .await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(reply.code(), "payment_provider_unavailable");
    assert!(reply.header("retry-after").is_some());
    // No order, no idempotency record, no claim left to block a retry.
    assert!(
        stack.all_items().await.is_empty(),
        "{:?}",
        stack.all_items().await
    );
    // Other payment methods do not need Stripe.
    stack
        .put_cart("cart-bank", USER, &[("p001", "USB Cable", 1, "10.00")])
        .await;
    let mut body = checkout("cart-bank");
    body["payment_method"] = json!("bank_transfer");
    let reply = stack
        .send(
            Call::new("POST", "/api/orders")
                .bearer(&token(USER, ""))
                .json(&body),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    assert!(reply.body.get("payment").is_none());
}

#[tokio::test]
async fn a_declined_card_leaves_the_order_pending_with_a_failed_payment() {
    let p = payments().await;
    let (order_id, intent) = p.card_order().await;
    // localstripe declines `pm_card_visa_chargeDeclined` (4000 0000 0000 0002) only
    // when it is attached to a customer, not when an intent is confirmed with it;
    // `pm_card_chargeCustomerFail` (…0341) is declined at the charge, by Stripe too.
    assert_eq!(
        p.stripe.pay(&intent, "pm_card_chargeCustomerFail").await,
        402
    );
    let order = p
        .until(&order_id, |o| o.payment_status.as_str() == "failed")
        .await;
    assert_eq!(order.status.as_str(), "pending");
    assert_eq!(order.history.last().unwrap().actor, "payments");
    // The customer still sees the secret, to try another card.
    let mine = p
        .stack
        .send(Call::new("GET", &format!("/api/orders/{order_id}")).bearer(&token(USER, "")))
        .await;
    assert!(
        mine.body["payment"]["client_secret"].is_string(),
        "{mine:?}"
    );
}

#[tokio::test]
async fn forged_unsigned_and_stale_signatures_change_nothing() {
    let p = payments().await;
    let (order_id, intent) = p.card_order().await;
    let event = intent_event("evt_forged_1", "succeeded", &intent, &order_id, 7500);
    let body = event.to_string();
    let send = |signature: Option<String>| {
        let mut call = Call::new("POST", "/api/payments/stripe/webhook");
        if let Some(signature) = signature {
            call = call.header("stripe-signature", &signature);
        }
        p.stack.send(call.raw_body("application/json", &body))
    };
    let stale = now() - 301;
    for (what, header) in [
        ("unsigned", None),
        (
            "another secret",
            Some(signature("whsec_not_ours", now(), &body)),
        ),
        ("stale", Some(signature(&p.secret, stale, &body))),
        (
            "another body",
            Some(signature(&p.secret, now(), &body.replace("7500", "1"))),
        ),
        ("garbage", Some("t=abc,v1=zz".to_string())),
    ] {
        let reply = send(header).await;
        assert_eq!(reply.status, 400, "{what}: {reply:?}");
        assert_eq!(reply.code(), "invalid_signature", "{what}");
    }
    let order = p.order(&order_id).await;
    assert_eq!((order.status.as_str(), order.version), ("pending", 1));
    // The same event, signed, is what confirms.
    let reply = p.deliver(&event, now()).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(p.order(&order_id).await.status.as_str(), "confirmed");
    // And the order is listed under its new status (its `by_status` shard moved too).
    for (status, listed) in [("confirmed", true), ("pending", false)] {
        let page = p
            .stack
            .send(
                Call::new("GET", &format!("/api/orders?status={status}"))
                    .bearer(&token("admin", ADMIN)),
            )
            .await;
        let ids: Vec<&str> = page.body["orders"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|o| o["order_id"].as_str())
            .collect();
        assert_eq!(
            ids.contains(&order_id.as_str()),
            listed,
            "{status}: {page:?}"
        );
    }
}

#[tokio::test]
async fn a_replayed_or_concurrently_duplicated_event_has_one_effect() {
    let p = payments().await;
    let (order_id, intent) = p.card_order().await;
    let event = intent_event("evt_dup_1", "succeeded", &intent, &order_id, 7500);
    let t = now();
    let replies = join_all((0..6).map(|_| p.deliver(&event, t))).await;
    assert!(replies.iter().all(|r| r.status == 200), "{replies:?}");
    let applied = replies
        .iter()
        .filter(|r| r.body["outcome"] == "applied")
        .count();
    assert_eq!(applied, 1, "{replies:?}");
    let order = p.order(&order_id).await;
    assert_eq!((order.status.as_str(), order.version), ("confirmed", 2));
    assert_eq!(order.history.len(), 2);
    // A late replay, and a failure reported after the success (out of order), change
    // nothing.
    assert_eq!(p.deliver(&event, now()).await.body["outcome"], "duplicate");
    let failed = intent_event("evt_dup_0", "payment_failed", &intent, &order_id, 7500);
    assert_eq!(p.deliver(&failed, now()).await.body["outcome"], "ignored");
    let after = p.order(&order_id).await;
    assert_eq!((after.payment_status.as_str(), after.version), ("paid", 2));
    // Unknown types and orders are acknowledged.
    let other =
        json!({"id": "evt_x", "type": "charge.refunded", "created": now(), "data": {"object": {}}});
    assert_eq!(p.deliver(&other, now()).await.status, 200);
    let unknown = intent_event(
        "evt_y",
        "succeeded",
        "pi_unknown",
        "ORD0000000000000000",
        7500,
    );
    assert_eq!(p.deliver(&unknown, now()).await.body["outcome"], "ignored");
}

#[tokio::test]
async fn an_amount_mismatch_is_recorded_and_does_not_confirm() {
    let p = payments().await;
    let (order_id, intent) = p.card_order().await;
    let event = intent_event("evt_short_1", "succeeded", &intent, &order_id, 5000);
    assert_eq!(p.deliver(&event, now()).await.body["outcome"], "applied");
    let order = p.order(&order_id).await;
    assert_eq!(order.status.as_str(), "pending");
    assert_eq!(order.payment_status.as_str(), "mismatched");
    let problem = order.payment.unwrap().problem.unwrap();
    assert!(
        problem.contains("5000") && problem.contains("7500"),
        "{problem}"
    );
}

#[tokio::test]
async fn cancelling_a_paid_order_refunds_it_once() {
    let p = payments().await;
    let (order_id, intent) = p.paid_order().await;
    let cancel = p
        .stack
        .send(
            Call::new("DELETE", &format!("/api/orders/{order_id}")).bearer(&token("admin", ADMIN)),
        )
        .await;
    assert_eq!(cancel.status, 200, "{cancel:?}");
    // The event delivered twice, concurrently: one refunds, the other finds the refund
    // in flight and fails (its message is received again), and that redelivery finds
    // the refund made.
    let (a, b) = tokio::join!(p.try_settle(&order_id), p.try_settle(&order_id));
    let refunded = [&a, &b]
        .iter()
        .filter(|s| matches!(s, Ok(Settled::Refunded(_))))
        .count();
    assert_eq!(refunded, 1, "{a:?} {b:?}");
    assert_eq!(
        p.settle(&order_id).await,
        Settled::Nothing("refunded already")
    );
    let refunds = p.stripe.refunds_of(&intent).await;
    assert_eq!(refunds.len(), 1, "{refunds:#?}");
    assert_eq!(refunds[0]["amount"], 7500);
    let order = p.order(&order_id).await;
    assert_eq!(order.payment_status.as_str(), "refunded");
    let payment = order.payment.unwrap();
    assert_eq!(payment.refunds.len(), 1);
    assert_eq!(
        payment.refunds[0].refund_id,
        refunds[0]["id"].as_str().unwrap()
    );
    let event = OrderEvent::for_change(None, &p.order(&order_id).await).unwrap();
    assert_eq!(event.payment_status, "refunded");
}

#[tokio::test]
async fn partial_refunds_add_up_and_the_one_past_the_total_is_refused() {
    let p = payments().await;
    let (order_id, intent) = p.paid_order().await;
    let first = p.refund(&order_id, "25.00", "r-1").await;
    assert_eq!(first.status, 201, "{first:?}");
    assert_eq!(first.body["payment_status"], "partially_refunded");
    // The same key again: the same refund, not a second one.
    let replay = p.refund(&order_id, "25.00", "r-1").await;
    assert_eq!(replay.status, 200, "{replay:?}");
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    // Two refunds at once of 50.00 (all that is left): one is made.
    let (a, b) = tokio::join!(
        p.refund(&order_id, "50.00", "r-2"),
        p.refund(&order_id, "50.00", "r-3")
    );
    let made: Vec<&Reply> = [&a, &b].into_iter().filter(|r| r.status == 201).collect();
    assert_eq!(made.len(), 1, "{a:?} {b:?}");
    assert_eq!(made[0].body["payment_status"], "refunded");
    let refused = if a.status == 201 { &b } else { &a };
    assert!(
        matches!(
            refused.code(),
            "refund_in_progress" | "refund_exceeds_payment"
        ),
        "{refused:?}"
    );
    // Nothing is left: a cent more is refused and changes nothing.
    let past = p.refund(&order_id, "0.01", "r-4").await;
    assert_eq!(past.status, 422, "{past:?}");
    assert_eq!(past.code(), "refund_exceeds_payment");
    let refunds = p.stripe.refunds_of(&intent).await;
    let total: i64 = refunds.iter().map(|r| r["amount"].as_i64().unwrap()).sum();
    assert_eq!((refunds.len(), total), (2, 7500), "{refunds:#?}");
    let order = p.order(&order_id).await;
    let listed = order.payment.unwrap().refunds;
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|r| r.refund_id.starts_with("re_")));
    // Bad amounts and other callers.
    let bad = p.refund(&order_id, "ten", "r-5").await;
    assert_eq!(
        (bad.status, bad.error_fields()),
        (400, vec!["amount"]),
        "{bad:?}"
    );
    let customer = p
        .stack
        .send(
            Call::new("POST", &format!("/api/orders/{order_id}/refunds"))
                .bearer(&token(USER, ""))
                .json(&json!({ "amount": "1.00" })),
        )
        .await;
    assert_eq!(customer.status, 403, "{customer:?}");
}

#[tokio::test]
async fn a_payment_after_cancellation_is_refunded() {
    let p = payments().await;
    let (order_id, intent) = p.card_order().await;
    let cancel = p
        .stack
        .send(Call::new("DELETE", &format!("/api/orders/{order_id}")).bearer(&token(USER, "")))
        .await;
    assert_eq!(cancel.status, 200, "{cancel:?}");
    // The customer pays in another tab before the intent is withdrawn.
    assert_eq!(p.stripe.pay(&intent, "pm_card_visa").await, 200);
    let order = p
        .until(&order_id, |o| o.payment_status.as_str() == "paid")
        .await;
    assert_eq!(order.status.as_str(), "cancelled");
    // That change's event (order.payment_status_changed, status cancelled) reaches the
    // payments consumer, which refunds.
    assert!(matches!(p.settle(&order_id).await, Settled::Refunded(_)));
    let refunds = p.stripe.refunds_of(&intent).await;
    assert_eq!(refunds.len(), 1, "{refunds:#?}");
    assert_eq!(p.order(&order_id).await.payment_status.as_str(), "refunded");
}

#[tokio::test]
async fn the_expiry_sweep_cancels_only_card_orders_left_unpaid_past_the_ttl() {
    let p = payments().await;
    let lines = [("p001", "USB Cable", 1, "10.00")];
    let carts: Vec<String> = (0..5).map(|_| unique("cart")).collect();
    for cart in &carts {
        p.stack.put_cart(cart, USER, &lines).await;
    }
    let [due_cart, failed_cart, paid_cart, bank_cart, recent_cart] = &carts[..] else {
        unreachable!()
    };
    let id = |reply: &Reply| reply.body["order_id"].as_str().unwrap().to_string();
    let due = id(&p.place(due_cart, "credit_card").await);
    let failed = p.place(failed_cart, "credit_card").await;
    let failed_intent = failed.body["payment"]["intent_id"]
        .as_str()
        .unwrap()
        .to_string();
    let failed = id(&failed);
    let declined = intent_event(
        "evt_sweep_f",
        "payment_failed",
        &failed_intent,
        &failed,
        1000,
    );
    p.deliver(&declined, now()).await;
    let paid = p.place(paid_cart, "credit_card").await;
    let paid_intent = paid.body["payment"]["intent_id"]
        .as_str()
        .unwrap()
        .to_string();
    let paid = id(&paid);
    let succeeded = intent_event("evt_sweep_p", "succeeded", &paid_intent, &paid, 1000);
    p.deliver(&succeeded, now()).await;
    let bank = id(&p.place(bank_cart, "bank_transfer").await);
    // One order placed after the cutoff: its created_at is at least a millisecond later.
    let cutoff_order = p.order(&bank).await.created_at;
    while OffsetDateTime::now_utc() - cutoff_order < time::Duration::milliseconds(2) {
        tokio::task::yield_now().await;
    }
    let recent = id(&p.place(recent_cart, "credit_card").await);
    let recent_at = p.order(&recent).await.created_at;

    let ttl = Duration::from_secs(3600);
    let sweep_at = recent_at + ttl;
    let service = p.stack.wiring.payment_service().unwrap();
    let mut expired: Vec<String> = service
        .expire_unpaid(sweep_at, ttl)
        .await
        .unwrap()
        .iter()
        .map(|id| id.to_string())
        .collect();
    expired.sort();
    let mut want = vec![due.clone(), failed.clone()];
    want.sort();
    assert_eq!(expired, want);
    for order_id in [&due, &failed] {
        let order = p.order(order_id).await;
        let entry = order.history.last().unwrap();
        assert_eq!(order.status.as_str(), "cancelled");
        assert_eq!(
            (entry.actor.as_str(), entry.reason.as_deref()),
            ("system", Some("payment_timeout"))
        );
    }
    assert_eq!(p.order(&paid).await.status.as_str(), "confirmed");
    assert_eq!(p.order(&bank).await.status.as_str(), "pending");
    assert_eq!(p.order(&recent).await.status.as_str(), "pending");
    // A second sweep finds nothing more; the payments consumer withdraws the intent.
    assert!(
        service
            .expire_unpaid(sweep_at, ttl)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(p.settle(&due).await, Settled::IntentCancelled);
    let due_intent = p.order(&due).await.payment.unwrap().intent_id;
    assert_eq!(p.stripe.intent(&due_intent).await["status"], "canceled");
}

/// The DynamoDB requests naming this test's table that the emulator has counted so
/// far (scripts/emulator_bench.py), by operation, in order.
async fn requests_on(table: &str) -> Vec<String> {
    super::costs::requests_naming(&[table])
        .await
        .iter()
        .filter_map(|r| r["target"].as_str())
        .map(|t| t.rsplit('.').next().unwrap_or(t).to_string())
        .collect()
}

/// What each payment step costs, as docs/data-design.md states it.
#[tokio::test]
async fn each_payment_step_makes_the_dynamodb_requests_the_data_design_states() {
    let p = payments_hearing_stripe(false).await;
    let table = p.stack.table.clone();
    let mut seen = requests_on(&table).await.len();
    let mut step = async |what: &str| {
        let all = requests_on(&table).await;
        let made = all[seen..].to_vec();
        seen = all.len();
        (what.to_string(), made)
    };
    let (order_id, intent) = p.card_order().await;
    let checkout = step("checkout").await;
    let event = intent_event("evt_cost_1", "succeeded", &intent, &order_id, 7500);
    p.deliver(&event, now()).await;
    let notice = step("webhook").await;
    p.deliver(&event, now()).await;
    let duplicate = step("duplicate").await;
    assert_eq!(
        checkout.1,
        ["PutItem", "TransactWriteItems"],
        "{checkout:?}"
    );
    assert_eq!(notice.1, ["GetItem", "UpdateItem"], "{notice:?}");
    assert_eq!(duplicate.1, ["GetItem"], "{duplicate:?}");

    // Paid at Stripe for real (a refund needs the charge), its event delivered here.
    let (paid, paid_intent) = p.card_order().await;
    assert_eq!(p.stripe.pay(&paid_intent, "pm_card_visa").await, 200);
    let event = intent_event("evt_cost_2", "succeeded", &paid_intent, &paid, 7500);
    p.deliver(&event, now()).await;
    step("paying").await;
    p.refund(&paid, "25.00", "cost-1").await;
    let refund = step("refund").await;
    p.refund(&paid, "25.00", "cost-1").await;
    let replay = step("refund replay").await;
    let cancel = Call::new("DELETE", &format!("/api/orders/{paid}")).bearer(&token("admin", ADMIN));
    p.stack.send(cancel).await;
    let cancelled = p.cancelled_event(&paid).await;
    step("cancel").await;
    p.settle_event(&cancelled).await.unwrap();
    let settle = step("settle").await;
    p.settle_event(&cancelled).await.unwrap();
    let settled = step("settle again").await;
    assert_eq!(
        refund.1,
        ["GetItem", "UpdateItem", "UpdateItem"],
        "{refund:?}"
    );
    assert_eq!(replay.1, ["GetItem"], "{replay:?}");
    assert_eq!(
        settle.1,
        ["GetItem", "UpdateItem", "UpdateItem"],
        "{settle:?}"
    );
    assert_eq!(settled.1, ["GetItem"], "{settled:?}");
}

/// A refund whose holder died after holding it (Stripe's answer lost) is finished by a
/// later request with its key once the hold's lease ran out; while it runs, another
/// refund waits (409) and Stripe is not asked twice.
#[tokio::test]
async fn an_abandoned_refund_hold_is_finished_and_a_live_one_waits() {
    use orders::domain::payment::{REFUND_HOLD_LEASE_SECONDS, RefundHold, caller_refund_key};
    use orders::ports::PaymentLedger;
    let p = payments().await;
    let (order_id, intent) = p.paid_order().await;
    let ledger =
        orders::adapters::dynamo::DynamoOrderStore::new(p.stack.dynamodb.clone(), &p.stack.table);
    let order = p.order(&order_id).await;
    let hold = |at| RefundHold {
        key: caller_refund_key("lost-1"),
        amount: orders::domain::Money::parse("30.00", order.total.currency()).unwrap(),
        parts: None,
        reason: None,
        actor: "admin".into(),
        at,
    };
    // A hold just taken: another refund, and the same key, wait for its holder.
    let fresh = hold(OffsetDateTime::now_utc());
    ledger
        .hold_refund(&order.id, &fresh, order.version)
        .await
        .unwrap();
    let other = p.refund(&order_id, "10.00", "other-1").await;
    assert_eq!(
        (other.status, other.code()),
        (409, "refund_in_progress"),
        "{other:?}"
    );
    let same = p.refund(&order_id, "30.00", "lost-1").await;
    assert_eq!(
        (same.status, same.code()),
        (409, "refund_in_progress"),
        "{same:?}"
    );
    assert!(p.stripe.refunds_of(&intent).await.is_empty());
    // Its holder died: past the lease, the same key finishes it, once.
    ledger
        .release_refund(&order.id, &caller_refund_key("lost-1"))
        .await
        .unwrap();
    let old =
        hold(OffsetDateTime::now_utc() - time::Duration::seconds(REFUND_HOLD_LEASE_SECONDS + 5));
    ledger
        .hold_refund(&order.id, &old, order.version)
        .await
        .unwrap();
    let finished = p.refund(&order_id, "30.00", "lost-1").await;
    assert_eq!(finished.status, 201, "{finished:?}");
    assert_eq!(finished.body["payment_status"], "partially_refunded");
    let again = p.refund(&order_id, "30.00", "lost-1").await;
    assert_eq!(again.status, 200, "{again:?}");
    let refunds = p.stripe.refunds_of(&intent).await;
    assert_eq!(refunds.len(), 1, "{refunds:#?}");
    assert_eq!(refunds[0]["amount"], 3000);
}
