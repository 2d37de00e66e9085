//! No personal data where it does not belong (issue 22): one order's whole life, with
//! marker values in its address, email and phone, through the API, localstripe, the
//! event pipeline (stream, publisher, bus, queues, consumers), the SES emulator and a
//! webhook receiver; then everything the service emitted on the way is scanned:
//!
//! - every log line, as the functions write them (JSON), at TRACE for this service's
//!   crates and at INFO (the deployed level) for the libraries beneath;
//! - every metric, as the EMF lines the functions print;
//! - every event on the bus (an integrator's queue) and every webhook payload.
//!
//! Logs and metrics carry no address, email or phone; events and webhooks carry no
//! email or phone (the shipping address stays in them, for the integrators who ship).
//!
//! A test binary of its own (`cargo test --test emitted`), so no other test runs in the
//! process while it listens to `tracing`: tracing's interest and level caches are
//! process-wide, and tests starting beside it left them deaf to this thread's subscriber.
//! One thread (a current-thread runtime): the pipeline's pollers run on it too, so the
//! log subscriber installed for this thread sees every line the flow writes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use lambda_http::tracing::subscriber::filter::EnvFilter;
use lambda_http::tracing::{Dispatch, dispatcher};
use orders::adapters::dynamo::DynamoInventory;
use orders::adapters::emf::{EmfMetrics, NAMESPACE};
use orders::ports::{Inventory, MetricSet, Metrics};
use orders::wiring::{LOCAL_MODE, Wiring};
use orders_dev::pipeline;
use orders_tests::{ADMIN, Call, Stack, checkout, subscribe_queue, template, token, unique};
use serde_json::{Value, json};

/// Every email SES on the emulator sent to `to` (scripts/emulator_ses.py).
async fn sent_emails(to: &str) -> Vec<Value> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("the emulator");
    let text = reqwest::Client::new()
        .get(format!(
            "{endpoint}/_ses/messages?to={}",
            to.replace('+', "%2B")
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let answer: Value = serde_json::from_str(&text).unwrap();
    answer["messages"].as_array().cloned().unwrap_or_default()
}

const NAME: &str = "Quentin Zyxmarkfield";
const STREET: &str = "77 Wvutsmarker Lane";
const CITY: &str = "Qorvilmarkton";
const EMAIL: &str = "scan.zyxwv.marker@example.com";
const PHONE: &str = "+12125550188";

/// Log output, shared with the subscriber's writer.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The EMF lines the functions would print, as `adapters::emf` writes them.
#[derive(Default)]
struct EmfLines(Mutex<Vec<String>>);

impl Metrics for EmfLines {
    fn record(&self, set: MetricSet) {
        let line = EmfMetrics::new(NAMESPACE).line(&set, time::OffsetDateTime::now_utc());
        self.0.lock().unwrap().push(line);
    }
}

/// A webhook receiver on this machine that keeps every body it is sent.
async fn receiver() -> (String, Arc<Mutex<Vec<Bytes>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/orders", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&received);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        let log = Arc::clone(&log);
                        async move {
                            let body = request
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            log.lock().unwrap().push(body);
                            let mut response = hyper::Response::new(Full::new(Bytes::new()));
                            *response.status_mut() = hyper::StatusCode::NO_CONTENT;
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, received)
}

/// Polls `check` until it yields a value; fails after `deadline`.
async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = Instant::now() + deadline;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// localstripe: the customer pays the intent with a test card.
async fn pay_at_stripe(intent: &str) -> Value {
    let base = std::env::var("STRIPE_API_BASE").expect("STRIPE_API_BASE (make test)");
    let http = reqwest::Client::new();
    let call = |path: String, form: &'static str| {
        http.post(format!("{base}{path}"))
            .bearer_auth("sk_test_orders_tests")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
    };
    let update = call(
        format!("/v1/payment_intents/{intent}"),
        "payment_method=pm_card_visa",
    )
    .await
    .unwrap();
    assert_eq!(update.status(), 200);
    let confirmed = call(format!("/v1/payment_intents/{intent}/confirm"), "")
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 200);
    serde_json::from_str(&confirmed.text().await.unwrap()).unwrap()
}

fn stripe_signature(secret: &str, body: &str) -> String {
    let t = time::OffsetDateTime::now_utc().unix_timestamp();
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, format!("{t}.{body}").as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

#[tokio::test]
async fn logs_metrics_events_and_webhooks_carry_no_personal_data_where_it_does_not_belong() {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = lambda_http::tracing::subscriber::fmt()
        .json()
        .with_env_filter(EnvFilter::new("orders=trace,orders_dev=trace,info"))
        .with_writer(move || writer.clone())
        .finish();
    let dispatch = Dispatch::new(subscriber);
    let guard = dispatcher::set_default(&dispatch);
    // Callsites other tests' threads registered before this subscriber existed had
    // their interest cached without it: asked again, so this thread sees them all.
    lambda_http::tracing::callsite::rebuild_interest_cache();
    let metrics = Arc::new(EmfLines::default());

    // A stack with payments on (localstripe), in local mode (a receiver on this
    // machine), its pipeline running, every figure captured.
    let webhook_secret = format!("whsec_{}", unique("scan").replace('-', ""));
    let base = Stack::with_settings(|s| {
        s.with(LOCAL_MODE, "true")
            .with("STRIPE_SECRET_KEY", "sk_test_orders_tests")
            .with("STRIPE_API_BASE", std::env::var("STRIPE_API_BASE").unwrap())
            .with("STRIPE_WEBHOOK_SECRET", &webhook_secret)
    })
    .await;
    let sdk = orders::adapters::aws::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let bus = base.table.clone();
    let template = template();
    let queues = pipeline::provision(
        &sqs,
        &aws_sdk_eventbridge::Client::new(&sdk),
        &bus,
        &format!("{bus}-"),
        &template.queues(),
        &template.rules().unwrap(),
    )
    .await
    .unwrap();
    let integrator = subscribe_queue(
        &sqs,
        &aws_sdk_eventbridge::Client::new(&sdk),
        &bus,
        &unique("integrator"),
    )
    .await
    .unwrap();
    let mut settings = base.wiring.settings().clone().with("EVENT_BUS_NAME", &bus);
    if let Some((url, _)) = queues.get("WebhookQueue") {
        settings = settings.with("WEBHOOK_QUEUE_URL", url);
    }
    let pipeline_wiring = Wiring::load(settings.clone(), sdk.clone())
        .await
        .with_metrics(metrics.clone());
    let tasks = pipeline::start(
        pipeline::Local {
            sdk: sdk.clone(),
            table: base.table.clone(),
            queues,
        },
        &pipeline_wiring,
        &template.consumers(),
    )
    .await
    .unwrap();
    let wiring = Wiring::load(settings, sdk.clone())
        .await
        .with_metrics(metrics.clone());
    let stack = Stack {
        app: Arc::new(wiring.api().unwrap()),
        router: base.router.clone(),
        wiring,
        dynamodb: base.dynamodb.clone(),
        table: base.table.clone(),
        carts_table: base.carts_table.clone(),
    };
    DynamoInventory::new(stack.dynamodb.clone(), &stack.table)
        .set_stock("p001", 10)
        .await
        .unwrap();
    let (hook_url, webhooks) = receiver().await;
    let subscribed = stack
        .send(
            Call::new("POST", "/api/webhooks")
                .bearer(&token("admin", ADMIN))
                .json(&json!({"url": hook_url, "events": ["*"]})),
        )
        .await;
    assert_eq!(subscribed.status, 201, "{subscribed:?}");
    let subscribed_at = time::OffsetDateTime::now_utc().unix_timestamp();

    // Placed, with the markers, by card.
    let user = unique("scan-user");
    let cart = unique("scan-cart");
    stack
        .put_cart(&cart, &user, &[("p001", "USB Cable", 2, "10.00")])
        .await;
    let mut body = checkout(&cart);
    body["shipping_address"] = json!({
        "name": NAME, "address": STREET, "city": CITY, "state": "NY", "zip": "10001",
        "country": "US"
    });
    body["contact"] = json!({"email": EMAIL, "phone": PHONE});
    let created = stack
        .send(
            Call::new("POST", "/api/orders")
                .bearer(&token(&user, ""))
                .json(&body),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.body["order_id"].as_str().unwrap().to_string();
    let intent = created.body["payment"]["intent_id"]
        .as_str()
        .unwrap()
        .to_string();

    // Paid at localstripe; Stripe's signed event, as localstripe sends it. Stripe
    // stamps events in whole seconds and the payment's history entry takes that time:
    // one stamped in the second the subscription was made would be from before it
    // (and, rightly, not sent to it), so the event comes in a later second.
    eventually("the next second", Duration::from_secs(5), || async {
        (time::OffsetDateTime::now_utc().unix_timestamp() > subscribed_at).then_some(())
    })
    .await;
    let paid = pay_at_stripe(&intent).await;
    let event = json!({
        "id": format!("evt_{}", unique("scan").replace('-', "")),
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": time::OffsetDateTime::now_utc().unix_timestamp(),
        "data": {"object": paid},
    })
    .to_string();
    let notice = stack
        .send(
            Call::new("POST", "/api/payments/stripe/webhook")
                .header(
                    "stripe-signature",
                    &stripe_signature(&webhook_secret, &event),
                )
                .raw_body("application/json", &event),
        )
        .await;
    assert_eq!(notice.status, 200, "{notice:?}");

    // Fulfillment reserves it; then it ships and is delivered.
    let admin = token("admin", ADMIN);
    eventually("fulfillment", Duration::from_secs(60), || async {
        let order = stack
            .send(Call::new("GET", &format!("/api/orders/{id}")).bearer(&admin))
            .await;
        (order.body["shipping_status"] == "processing").then_some(())
    })
    .await;
    stack.advance(&id, &["shipped", "delivered"]).await;
    let order = stack
        .send(Call::new("GET", &format!("/api/orders/{id}")).bearer(&admin))
        .await;
    let changes = order.body["version"].as_u64().unwrap() as usize;

    // Everything downstream happened: the emails, every webhook, every event.
    let emails = eventually("four emails", Duration::from_secs(60), || async {
        let sent = sent_emails(EMAIL).await;
        (sent.len() >= 4).then_some(sent)
    })
    .await;
    let until = Instant::now() + Duration::from_secs(60);
    let hooks = loop {
        let got = webhooks.lock().unwrap().clone();
        if got.len() >= changes {
            break got;
        }
        assert!(
            Instant::now() < until,
            "{} of {changes} webhooks",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while events.len() < changes {
        assert!(
            Instant::now() < deadline,
            "only {} events on the bus",
            events.len()
        );
        let received = sqs
            .receive_message()
            .queue_url(&integrator)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        events.extend(received.messages().iter().filter_map(|m| m.body.clone()));
    }
    for task in tasks {
        task.abort();
    }
    drop(guard);

    let contact = [EMAIL, "scan.zyxwv.marker", PHONE, "2125550188"];
    let personal = [
        EMAIL,
        "scan.zyxwv.marker",
        PHONE,
        "2125550188",
        NAME,
        "Zyxmarkfield",
        STREET,
        "Wvutsmarker",
        CITY,
    ];

    // Logs: the capture saw the flow (the order's id, at debug and info), and no marker.
    let logs = lines.text();
    assert!(
        logs.lines().count() > 20,
        "the capture saw the flow: {logs}"
    );
    assert!(logs.contains(&id), "the order's lines are captured");
    for line in logs.lines() {
        for marker in personal {
            assert!(!line.contains(marker), "{marker} logged: {line}");
        }
    }
    // Metrics: figures were recorded (placed, paid), none with a marker.
    let metrics = metrics.0.lock().unwrap().clone();
    assert!(
        metrics.iter().any(|l| l.contains("OrdersPlaced")),
        "{metrics:?}"
    );
    for line in &metrics {
        for marker in personal {
            assert!(!line.contains(marker), "{marker} in a metric: {line}");
        }
    }
    // Events and webhooks: the address (for the integrators who ship), never the contact.
    assert!(events.iter().any(|e| e.contains(STREET)), "{events:?}");
    for event in &events {
        for marker in contact {
            assert!(!event.contains(marker), "{marker} on the bus: {event}");
        }
    }
    for hook in &hooks {
        let body = String::from_utf8_lossy(hook);
        assert!(body.contains(STREET), "{body}");
        for marker in contact {
            assert!(!body.contains(marker), "{marker} in a webhook: {body}");
        }
    }
    // Where the contact belongs, it went: the customer's mailbox.
    assert!(emails.len() >= 4);
}
