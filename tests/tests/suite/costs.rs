//! The item sizes docs/cost.md prices: one order taken through its life (created with
//! an Idempotency-Key under the create limit, confirmed, reserved by fulfillment,
//! shipped, delivered) and one webhook delivery, read raw from the emulator and sized
//! by DynamoDB's documented rules. The doc's table must say what this measures, so the
//! cost model cannot drift from what the code writes.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use orders::adapters::dynamo::DynamoWebhookStore;
use orders::adapters::dynamo::inventory::DynamoInventory;
use orders::domain::webhook::{Attempt, Outcome, WebhookId};
use orders::domain::{Order, OrderId};
use orders::events::{Envelope, OrderEvent, SOURCE};
use orders::ports::{Inventory, OrderStore, WebhookStore};
use orders_tests::{ADMIN, Call, Stack, checkout, token};
use serde_json::json;

type Item = HashMap<String, AttributeValue>;

/// The size of an item as DynamoDB counts it
/// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html):
/// every attribute's name and value; strings and binaries by their bytes; a number 1
/// byte per two significant digits plus 1; null and boolean 1; a list or map 3 bytes
/// plus its elements, each element 1 byte more (a map's also its name). Trailing zeros
/// are counted as significant: DynamoDB trims them, so a time such as `expires_at` is a
/// byte smaller now and then; counting them makes the size an upper bound that does
/// not depend on the clock.
pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
        _ => panic!("an attribute type DynamoDB does not have: {value:?}"),
    }
}

fn number_size(text: &str) -> usize {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').len();
    significant.div_ceil(2) + 1
}

fn write_units(bytes: usize) -> usize {
    bytes.div_ceil(1024).max(1)
}

/// The rows of docs/cost.md's item-size table: (item, state) -> (bytes, write units).
fn documented_sizes() -> BTreeMap<(String, String), (usize, usize)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/cost.md");
    let text = std::fs::read_to_string(path).expect("docs/cost.md");
    let table = text
        .split("<!-- item sizes: begin -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- item sizes: end -->").next())
        .expect("docs/cost.md has the item-size table between its markers");
    table
        .lines()
        .filter(|l| l.starts_with('|') && !l.contains("---") && !l.contains("bytes"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            let number = |i: usize| {
                cells[i]
                    .parse::<usize>()
                    .unwrap_or_else(|_| panic!("{line}"))
            };
            (
                (cells[0].trim_matches('`').to_string(), cells[1].to_string()),
                (number(2), number(3)),
            )
        })
        .collect()
}

fn row(item: &str, state: &str, stored: &Item) -> ((String, String), (usize, usize)) {
    let bytes = item_size(stored);
    (
        (item.to_string(), state.to_string()),
        (bytes, write_units(bytes)),
    )
}

async fn item(stack: &Stack, pk: &str, sk: &str) -> Item {
    stack
        .dynamodb
        .get_item()
        .table_name(&stack.table)
        .key("PK", AttributeValue::S(pk.into()))
        .key("SK", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_else(|| panic!("no item {pk} / {sk}"))
}

fn confirmed_message(before: &Order, after: &Order) -> String {
    let detail = OrderEvent::for_change(Some(before), after).unwrap();
    serde_json::to_string(&Envelope {
        id: "evt-1".into(),
        detail_type: detail.detail_type(),
        source: SOURCE.into(),
        time: detail.occurred_at.clone(),
        detail,
    })
    .unwrap()
}

/// The sizes the cost model is built on are the sizes the code writes.
#[tokio::test]
async fn the_item_sizes_in_the_cost_model_are_what_the_code_stores() {
    let stack = Stack::new().await;
    stack.put_demo_cart().await;
    let inventory = DynamoInventory::new(stack.dynamodb.clone(), &stack.table);
    inventory.set_stock("p001", 100).await.unwrap();
    inventory.set_stock("p002", 100).await.unwrap();
    let mut measured = BTreeMap::new();

    // The README's create, with a key, under the default create limit.
    let mut body = checkout("abc123");
    body["user_id"] = json!("user789");
    let reply = stack
        .send(
            Call::new("POST", "/api/orders")
                .bearer(&token("user789", ""))
                .header("Idempotency-Key", "checkout-2026-12-02-0001")
                .json(&body),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let id = reply.body["order_id"].as_str().unwrap().to_string();
    let order_pk = format!("ORDER#{id}");
    let created = item(&stack, &order_pk, "ORDER").await;
    measured.extend([row("order", "created", &created)]);
    let items = stack.all_items().await;
    let text = |i: &Item, k: &str| {
        i.get(k)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let record = items
        .iter()
        .find(|i| text(i, "PK").starts_with("IDEMPOTENCY#"))
        .unwrap();
    let counter = items
        .iter()
        .find(|i| text(i, "PK").starts_with("RATE#"))
        .unwrap();
    measured.extend([
        row("idempotency record", "created", record),
        row("create counter", "first create", counter),
    ]);

    // Confirmed (admin), reserved by fulfillment, shipped and delivered (fulfillment).
    stack.advance(&id, &["confirmed"]).await;
    let confirmed = item(&stack, &order_pk, "ORDER").await;
    measured.extend([row("order", "confirmed", &confirmed)]);
    let store = stack.wiring.fulfillment().unwrap();
    let orders =
        orders::adapters::dynamo::DynamoOrderStore::new(stack.dynamodb.clone(), &stack.table);
    let after = orders
        .get(&OrderId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    let mut before = after.clone();
    before.status = orders::domain::OrderStatus::Pending;
    before.version -= 1;
    store
        .handle(Some(&confirmed_message(&before, &after)))
        .await
        .unwrap();
    let processing = item(&stack, &order_pk, "ORDER").await;
    assert_eq!(processing["shipping_status"].as_s().unwrap(), "processing");
    measured.extend([
        row("order", "processing", &processing),
        row(
            "reservation",
            "reserved",
            &item(&stack, &format!("RESERVATION#{id}"), "RESERVATION").await,
        ),
        row(
            "stock",
            "one product",
            &item(&stack, "STOCK#p001", "STOCK").await,
        ),
    ]);
    let fulfill = token("warehouse", "orders:fulfill");
    let reply = stack
        .send(
            Call::new("PUT", &format!("/api/orders/{id}/status"))
                .bearer(&fulfill)
                .json(&json!({ "status": "shipped", "tracking_number": "1Z999AA10123456784", "carrier": "UPS" })),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let shipped = item(&stack, &order_pk, "ORDER").await;
    measured.extend([row("order", "shipped", &shipped)]);
    assert_eq!(
        stack.set_status(&id, "delivered", &fulfill).await.status,
        200
    );
    let delivered = item(&stack, &order_pk, "ORDER").await;
    measured.extend([row("order", "delivered", &delivered)]);

    // One webhook subscription, and one event delivered to it: claim, attempt, marker.
    let reply = stack
        .send(
            Call::new("POST", "/api/webhooks")
                .bearer(&token("admin", ADMIN))
                .json(&json!({ "url": "https://hooks.example.com/orders", "events": ["*"], "description": "Warehouse ERP" })),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let webhook = WebhookId::parse(reply.body["id"].as_str().unwrap()).unwrap();
    let webhook_pk = format!("WEBHOOK#{}", webhook.as_str());
    measured.extend([row(
        "webhook subscription",
        "created",
        &item(&stack, &webhook_pk, "WEBHOOK").await,
    )]);
    let hooks = DynamoWebhookStore::new(stack.dynamodb.clone(), &stack.table);
    let event_id = format!("{id}:2");
    let now = time::OffsetDateTime::now_utc();
    hooks
        .claim(&webhook, &event_id, now, now + time::Duration::seconds(30))
        .await
        .unwrap();
    let marker_sk = format!("DELIVERED#{event_id}");
    measured.extend([row(
        "delivery marker",
        "claimed",
        &item(&stack, &webhook_pk, &marker_sk).await,
    )]);
    hooks
        .record_attempt(&Attempt {
            webhook_id: webhook.clone(),
            event_id: event_id.clone(),
            event_type: "order.confirmed".into(),
            attempt: 1,
            at: now,
            duration_ms: 143,
            status_code: Some(200),
            error: None,
            outcome: Outcome::Delivered,
        })
        .await
        .unwrap();
    hooks
        .mark_delivered(&webhook, &event_id, now)
        .await
        .unwrap();
    measured.extend([row(
        "delivery marker",
        "delivered",
        &item(&stack, &webhook_pk, &marker_sk).await,
    )]);
    let attempt = stack
        .all_items()
        .await
        .into_iter()
        .find(|i| text(i, "PK") == webhook_pk && text(i, "SK").starts_with("DELIVERY#"))
        .unwrap();
    measured.extend([row("delivery attempt", "2xx", &attempt)]);

    // A card order with payments on (localstripe): its payment claim, and the order
    // item with its payment once Stripe's notice confirmed it.
    let stripe =
        std::env::var("STRIPE_API_BASE").expect("STRIPE_API_BASE (make test starts localstripe)");
    let paying = Stack::with_settings(|s| {
        s.with("STRIPE_SECRET_KEY", "sk_test_orders_costs")
            .with("STRIPE_API_BASE", &stripe)
            .with("STRIPE_WEBHOOK_SECRET", "whsec_costs")
    })
    .await;
    paying.put_demo_cart().await;
    let reply = paying
        .send(
            Call::new("POST", "/api/orders")
                .bearer(&token("user789", ""))
                .json(&checkout("abc123")),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let card_pk = format!("ORDER#{}", reply.body["order_id"].as_str().unwrap());
    let intent = reply.body["payment"]["intent_id"]
        .as_str()
        .unwrap()
        .to_string();
    measured.extend([
        row(
            "payment claim",
            "created",
            &item(
                &paying,
                &format!("PAYMENT#{}", reply.body["order_id"].as_str().unwrap()),
                "CLAIM",
            )
            .await,
        ),
        row(
            "card order",
            "created",
            &item(&paying, &card_pk, "ORDER").await,
        ),
    ]);
    let event = json!({
        "id": "evt_3QCostModelEvent01", "type": "payment_intent.succeeded", "created": now.unix_timestamp(),
        "data": {"object": {"id": intent, "amount": 7500, "amount_received": 7500, "currency": "usd",
            "metadata": {"order_id": reply.body["order_id"]}}}
    })
    .to_string();
    let t = now.unix_timestamp();
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"whsec_costs");
    let tag = aws_lc_rs::hmac::sign(&key, format!("{t}.{event}").as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let paid = paying
        .send(
            Call::new("POST", "/api/payments/stripe/webhook")
                .header("stripe-signature", &format!("t={t},v1={hex}"))
                .raw_body("application/json", &event),
        )
        .await;
    assert_eq!(paid.body["outcome"], "applied", "{paid:?}");
    measured.extend([row(
        "card order",
        "paid (confirmed)",
        &item(&paying, &card_pk, "ORDER").await,
    )]);

    let table: String = measured
        .iter()
        .map(|((item, state), (bytes, wcu))| format!("| `{item}` | {state} | {bytes} | {wcu} |\n"))
        .collect();
    assert!(
        documented_sizes() == measured,
        "docs/cost.md's item sizes differ from what the code stores; the measured rows:\n{table}"
    );
}

#[test]
fn item_sizes_follow_the_documented_rules() {
    let item: Item = HashMap::from([
        ("name".to_string(), AttributeValue::S("Jane".into())),
        ("total".to_string(), AttributeValue::N("7500".into())),
        ("version".to_string(), AttributeValue::N("12345".into())),
        ("flag".to_string(), AttributeValue::Bool(true)),
        (
            "items".to_string(),
            AttributeValue::L(vec![AttributeValue::M(HashMap::from([(
                "id".to_string(),
                AttributeValue::S("p1".into()),
            )]))]),
        ),
    ]);
    // name 4+4; total 5 + (7500: 2) + 1; version 7 + (5 digits: 3) + 1; flag 4 + 1;
    // items 5 + 3 + (1 + map 3 + (1 + 2 + 2)).
    assert_eq!(item_size(&item), 8 + 8 + 11 + 5 + (5 + 3 + 1 + 3 + 5));
}

/// The DynamoDB requests one request or event made, as the emulator saw them: per
/// operation (reads marked when eventually consistent, transactions and batches with
/// their item count) and how many, sorted, so that concurrent sends count the same.
struct Requests {
    tables: [String; 2],
    seen: usize,
}

impl Requests {
    async fn on(stack: &Stack) -> Requests {
        let mut requests = Requests {
            tables: [stack.table.clone(), stack.carts_table.clone()],
            seen: 0,
        };
        requests.seen = requests.all().await.len();
        requests
    }

    async fn all(&self) -> Vec<String> {
        let tables: Vec<&str> = self.tables.iter().map(String::as_str).collect();
        requests_naming(&tables)
            .await
            .iter()
            .map(|r| {
                let target = r["target"].as_str().unwrap_or_default();
                let operation = target.rsplit('.').next().unwrap_or(target);
                let read = matches!(operation, "GetItem" | "Query" | "Scan" | "BatchGetItem");
                let mut notes = Vec::new();
                if let Some(items) = r["items"].as_u64() {
                    notes.push(format!("{items} items"));
                }
                if read && r["consistent"] != true {
                    notes.push("eventual".to_string());
                }
                match notes.is_empty() {
                    true => operation.to_string(),
                    false => format!("{operation} ({})", notes.join(", ")),
                }
            })
            .collect()
    }

    /// What was made since the last call, as `2 × GetItem, UpdateItem`.
    async fn since(&mut self) -> String {
        let all = self.all().await;
        let mut made: BTreeMap<String, usize> = BTreeMap::new();
        for request in &all[self.seen..] {
            *made.entry(request.clone()).or_default() += 1;
        }
        self.seen = all.len();
        made.iter()
            .map(|(request, n)| match n {
                1 => request.clone(),
                n => format!("{n} × {request}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Forgets what was made since the last call (the harness's own reads).
    async fn skip(&mut self) {
        self.seen = self.all().await.len();
    }
}

/// The DynamoDB requests naming any of `tables` that the emulator has counted so far
/// (scripts/emulator_bench.py, `/_bench/requests`), oldest first, as it recorded them.
pub async fn requests_naming(tables: &[&str]) -> Vec<serde_json::Value> {
    let url = format!(
        "{}/_bench/requests",
        std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (the emulator)")
    );
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    let mut answer: serde_json::Value = serde_json::from_str(&text).unwrap();
    let records = answer["requests"].take();
    let serde_json::Value::Array(records) = records else {
        panic!("the emulator's request log is not a list: {text}");
    };
    records
        .into_iter()
        .filter(|r| {
            r["tables"]
                .as_array()
                .is_some_and(|named| named.iter().any(|t| tables.iter().any(|m| t == m)))
        })
        .collect()
}

/// The rows of docs/cost.md's requests-per-step table: step -> requests.
fn documented_requests() -> BTreeMap<String, String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/cost.md");
    let text = std::fs::read_to_string(path).expect("docs/cost.md");
    let table = text
        .split("<!-- requests per step: begin -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- requests per step: end -->").next())
        .expect("docs/cost.md has the requests-per-step table between its markers");
    table
        .lines()
        .filter(|l| l.starts_with('|') && !l.contains("---") && !l.contains("| step |"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            (cells[0].to_string(), cells[1].to_string())
        })
        .collect()
}

/// The flow docs/cost.md prices, step by step through the real handlers and consumers
/// on the emulator: a card order created with a key under the create limit, paid by
/// Stripe's webhook, reserved by fulfillment, shipped with a tracking number and
/// delivered; read by its customer; its five events delivered to one webhook
/// subscription and told by email (four messages, the invoice with the second).
#[tokio::test]
async fn each_step_of_an_order_makes_the_requests_the_cost_model_prices() {
    let stripe =
        std::env::var("STRIPE_API_BASE").expect("STRIPE_API_BASE (make test starts localstripe)");
    let stack = Stack::with_settings(|s| {
        s.with(orders::wiring::LOCAL_MODE, "true")
            .with("STRIPE_SECRET_KEY", "sk_test_orders_costs")
            .with("STRIPE_API_BASE", &stripe)
            .with("STRIPE_WEBHOOK_SECRET", "whsec_costs")
    })
    .await;
    stack.put_demo_cart().await;
    let inventory = DynamoInventory::new(stack.dynamodb.clone(), &stack.table);
    inventory.set_stock("p001", 100).await.unwrap();
    inventory.set_stock("p002", 100).await.unwrap();
    let receiver = super::notifications::StandIn::start(|_, _| (200, vec![], String::new())).await;
    let reply = stack
        .send(
            Call::new("POST", "/api/webhooks")
                .bearer(&token("admin", ADMIN))
                .json(&json!({ "url": format!("{}/hooks", receiver.url), "events": ["*"] })),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let email = super::notifications::address("costs");
    let customer = super::notifications::token_with_contact("user789", Some(&email), None);
    let fulfill = token("warehouse", "orders:fulfill");
    let mut measured = BTreeMap::new();
    let mut events = Vec::new();
    let mut previous = None;
    let mut requests = Requests::on(&stack).await;

    let mut body = checkout("abc123");
    body["user_id"] = json!("user789");
    let created = stack
        .send(
            Call::new("POST", "/api/orders")
                .bearer(&customer)
                .header("Idempotency-Key", "checkout-costs-0001")
                .json(&body),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    measured.insert("1 create".to_string(), requests.since().await);
    let id = created.body["order_id"].as_str().unwrap().to_string();
    events.push(next_event(&stack, &id, &mut previous).await);
    requests.skip().await;

    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // Stripe stamps its event in whole seconds; the order takes that as the time of its
    // confirmation, which must not fall before the subscription made a moment ago.
    let notice = json!({
        "id": "evt_3QCostModelSteps01", "type": "payment_intent.succeeded", "created": now + 1,
        "data": {"object": {"id": created.body["payment"]["intent_id"], "amount": 7500,
            "amount_received": 7500, "currency": "usd", "metadata": {"order_id": id}}}
    })
    .to_string();
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"whsec_costs");
    let tag = aws_lc_rs::hmac::sign(&key, format!("{now}.{notice}").as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let paid = stack
        .send(
            Call::new("POST", "/api/payments/stripe/webhook")
                .header("stripe-signature", &format!("t={now},v1={hex}"))
                .raw_body("application/json", &notice),
        )
        .await;
    assert_eq!(paid.body["outcome"], "applied", "{paid:?}");
    measured.insert(
        "2 paid (Stripe's webhook)".to_string(),
        requests.since().await,
    );
    let confirmed = next_event(&stack, &id, &mut previous).await;
    events.push(confirmed.clone());
    requests.skip().await;

    let fulfillment = stack.wiring.fulfillment().unwrap();
    let failed = orders::inbound::sqs::fulfill(&fulfillment, sqs_batch(vec![confirmed])).await;
    assert!(failed.batch_item_failures.is_empty());
    measured.insert("3 fulfillment".to_string(), requests.since().await);
    events.push(next_event(&stack, &id, &mut previous).await);
    requests.skip().await;

    let shipped = stack
        .send(
            Call::new("PUT", &format!("/api/orders/{id}/status"))
                .bearer(&fulfill)
                .json(&json!({ "status": "shipped", "tracking_number": "1Z999AA10123456784", "carrier": "UPS" })),
        )
        .await;
    assert_eq!(shipped.status, 200, "{shipped:?}");
    measured.insert("4 ship".to_string(), requests.since().await);
    events.push(next_event(&stack, &id, &mut previous).await);
    requests.skip().await;

    assert_eq!(
        stack.set_status(&id, "delivered", &fulfill).await.status,
        200
    );
    measured.insert("5 deliver".to_string(), requests.since().await);
    events.push(next_event(&stack, &id, &mut previous).await);
    requests.skip().await;

    for path in [
        format!("/api/orders/{id}"),
        format!("/api/orders/{id}"),
        format!("/api/orders/{id}/history"),
        "/api/orders".to_string(),
    ] {
        let reply = stack.send(Call::new("GET", &path).bearer(&customer)).await;
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
    }
    measured.insert(
        "6 reads (2 gets, history, list)".to_string(),
        requests.since().await,
    );

    let deliveries = stack.wiring.deliveries().unwrap();
    let failed = orders::inbound::sqs::deliver(&deliveries, sqs_batch(events.clone())).await;
    assert!(failed.batch_item_failures.is_empty());
    let kinds: Vec<String> = events
        .iter()
        .map(|m| {
            serde_json::from_str::<Envelope>(m.body.as_deref().unwrap())
                .unwrap()
                .detail_type
        })
        .collect();
    let sent: Vec<String> = receiver
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(sent.len(), 5, "{kinds:?} {sent:?}");
    measured.insert(
        "7 webhooks (5 events, 1 batch)".to_string(),
        requests.since().await,
    );

    let notifications = stack.wiring.notifications().unwrap();
    let failed = orders::inbound::sqs::notify(&notifications, sqs_batch(events)).await;
    assert!(failed.batch_item_failures.is_empty());
    assert_eq!(super::notifications::sent_emails(&email).await.len(), 4);
    measured.insert(
        "8 messages (5 events, 4 emails, the invoice)".to_string(),
        requests.since().await,
    );

    let table: String = measured
        .iter()
        .map(|(step, made)| format!("| {step} | {made} |\n"))
        .collect();
    assert!(
        documented_requests() == measured,
        "docs/cost.md's requests per step differ from what the code makes; the measured rows:\n{table}"
    );
}

/// The event of the order's change since `previous`, as the publisher makes it from
/// the stream's old and new images, in an SQS message.
async fn next_event(
    stack: &Stack,
    id: &str,
    previous: &mut Option<Order>,
) -> aws_lambda_events::event::sqs::SqsMessage {
    let current = super::notifications::stored(stack, id).await;
    let detail = OrderEvent::for_change(previous.as_ref(), &current).expect("a recorded change");
    *previous = Some(current);
    super::notifications::message(&Envelope {
        id: format!("evt-{}", detail.event_id),
        detail_type: detail.detail_type(),
        source: SOURCE.into(),
        time: detail.occurred_at.clone(),
        detail,
    })
}

fn sqs_batch(
    messages: Vec<aws_lambda_events::event::sqs::SqsMessage>,
) -> aws_lambda_events::event::sqs::SqsEvent {
    let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
    event.records = messages;
    event
}

/// A consumer's read of the order its event names costs half a unit, and is made
/// again strongly only when the copy it got has not reached the event's version yet.
#[tokio::test]
async fn an_event_s_order_is_read_eventually_and_again_strongly_only_when_behind() {
    let stack = Stack::new().await;
    stack.put_demo_cart().await;
    let id = stack.order_for("user789", "abc123").await;
    let orders =
        orders::adapters::dynamo::DynamoOrderStore::new(stack.dynamodb.clone(), &stack.table);
    let id = OrderId::parse(&id).unwrap();
    let mut requests = Requests::on(&stack).await;

    let order = orders.get_since(&id, 1).await.unwrap().unwrap();
    assert_eq!(order.version, 1);
    assert_eq!(requests.since().await, "GetItem (eventual)");
    // An event of a version this order has not reached (or not yet in that copy).
    let order = orders.get_since(&id, 2).await.unwrap().unwrap();
    assert_eq!(order.version, 1);
    assert_eq!(requests.since().await, "GetItem, GetItem (eventual)");
    // No such order: none in either read.
    let missing = OrderId::for_cart("no-such-cart");
    assert!(orders.get_since(&missing, 1).await.unwrap().is_none());
    assert_eq!(requests.since().await, "GetItem, GetItem (eventual)");
}
