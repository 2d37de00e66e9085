//! A customer's personal data (issue 22): erasure through the API, in pages through
//! the erasure queue on the emulator, idempotent and refused for open orders; the
//! export, paged, with invoices and message records; invoices kept for the retention
//! period by the table's TTL.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use orders::domain::privacy::{ERASED, ERASURE_NOTE};
use orders::events::PERSONAL_DATA_ERASED;
use orders_tests::{ADMIN, Call, FULFILL, Reply, Stack, token, unique};
use serde_json::{Value, json};

use crate::notifications::{last_event, notify, place, stored};

const EMAIL_MARK: &str = "erase.me.marker@example.com";
const PHONE_MARK: &str = "+12125550177";

fn admin() -> String {
    token("dpo-admin", ADMIN)
}

async fn request_erasure(stack: &Stack, user: &str, body: Option<Value>, caller: &str) -> Reply {
    let call = Call::new("POST", &format!("/api/customers/{user}/erasure")).bearer(caller);
    let call = match body {
        Some(body) => call.json(&body),
        None => call,
    };
    stack.send(call).await
}

async fn erasure(stack: &Stack, user: &str) -> Reply {
    stack
        .send(Call::new("GET", &format!("/api/customers/{user}/erasure")).bearer(&admin()))
        .await
}

async fn get_order(stack: &Stack, id: &str) -> Value {
    let reply = stack
        .send(Call::new("GET", &format!("/api/orders/{id}")).bearer(&admin()))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body
}

/// An order of `user` with the marker contact, moved along `path`.
async fn order_of(stack: &Stack, user: &str, path: &[&str]) -> String {
    let contact = json!({"contact": {"email": EMAIL_MARK, "phone": PHONE_MARK}});
    let id = place(stack, user, &token(user, ""), contact).await;
    stack.advance(&id, path).await;
    id
}

async fn delivered_order(stack: &Stack, user: &str) -> String {
    order_of(stack, user, &["confirmed", "shipped", "delivered"]).await
}

#[tokio::test]
async fn erasure_removes_what_names_the_customer_and_keeps_the_order() {
    let stack = Stack::new().await;
    let user = unique("customer");
    let delivered = delivered_order(&stack, &user).await;
    // A cancelled order whose reason the customer typed.
    let cancelled = order_of(&stack, &user, &[]).await;
    let cancel = stack
        .send(
            Call::new("DELETE", &format!("/api/orders/{cancelled}"))
                .bearer(&token(&user, ""))
                .json(&json!({"reason": "moving to 12 Elm Street, call Jane"})),
        )
        .await;
    assert_eq!(cancel.status, 200, "{cancel:?}");
    let other = delivered_order(&stack, &unique("bystander")).await;
    let before = get_order(&stack, &delivered).await;
    let bystander_before = get_order(&stack, &other).await;

    let reply = request_erasure(&stack, &user, None, &admin()).await;
    assert_eq!(reply.status, 202, "{reply:?}");
    assert_eq!(
        reply.header("location"),
        Some(format!("/api/customers/{user}/erasure").as_str())
    );
    let job = &reply.body;
    // No queue on this stack: the request erased every page itself.
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["orders_erased"], 2);
    assert_eq!(job["requested_by"], "dpo-admin");
    assert!(job["job_id"].as_str().unwrap().starts_with("ERA"));

    let after = get_order(&stack, &delivered).await;
    let address = &after["shipping_address"];
    for field in ["name", "address", "city", "zip"] {
        assert_eq!(address[field], ERASED, "{field}: {address}");
    }
    assert_eq!(address["country"], before["shipping_address"]["country"]);
    assert!(address.get("state").is_none(), "{address}");
    assert_eq!(after["contact"], json!({"email": null, "phone": null}));
    // The order, its money and its status are as they were; the version moved once.
    for kept in [
        "status",
        "total",
        "currency",
        "items",
        "payment_status",
        "created_at",
    ] {
        assert_eq!(after[kept], before[kept], "{kept}");
    }
    assert_eq!(after["version"], before["version"].as_u64().unwrap() + 1);

    // The history says who erased, when, and not what.
    let history = stack
        .send(Call::new("GET", &format!("/api/orders/{cancelled}/history")).bearer(&admin()))
        .await;
    let entries = history.body["history"].as_array().unwrap();
    let last = entries.last().unwrap();
    assert_eq!(last["reason"], ERASURE_NOTE);
    assert_eq!(last["actor"], "dpo-admin");
    assert_eq!(last["from"], last["to"]);
    assert!(
        !history.text.contains("Elm Street"),
        "the customer's reason is erased: {}",
        history.text
    );

    // Nothing of the markers is left in the customer's items.
    let stored_item = stack.stored_order(&delivered).await.unwrap();
    assert!(!stored_item.contains_key("contact_email"));
    assert!(!stored_item.contains_key("contact_phone"));
    let mine = format!(
        "{:?}{:?}",
        stack.stored_order(&delivered).await,
        stack.stored_order(&cancelled).await
    );
    for marker in [
        EMAIL_MARK,
        PHONE_MARK,
        "Jane Doe",
        "123 Main St",
        "Elm Street",
    ] {
        assert!(!mine.contains(marker), "{marker} left in {mine}");
    }
    // Another customer's order is untouched.
    assert_eq!(get_order(&stack, &other).await, bystander_before);

    // The change is published as order.personal_data_erased, with the erased order.
    let event = last_event(&stack, &delivered).await;
    let body: Value = serde_json::from_str(event.body.as_deref().unwrap()).unwrap();
    assert_eq!(body["detail-type"], PERSONAL_DATA_ERASED);
    assert_eq!(body["detail"]["order"]["shipping_address"]["name"], ERASED);
    assert!(!event.body.unwrap().contains(EMAIL_MARK));
}

#[tokio::test]
async fn a_second_erasure_writes_nothing_new() {
    let stack = Stack::new().await;
    let user = unique("customer");
    let ids = [
        delivered_order(&stack, &user).await,
        delivered_order(&stack, &user).await,
    ];
    let first = request_erasure(&stack, &user, None, &admin()).await;
    assert_eq!(first.status, 202, "{first:?}");
    let versions: Vec<u64> =
        futures_util::future::join_all(ids.iter().map(|id| stored(&stack, id)))
            .await
            .iter()
            .map(|o| o.version)
            .collect();

    let second = request_erasure(&stack, &user, None, &admin()).await;
    assert_eq!(second.status, 202, "{second:?}");
    assert_eq!(second.body["status"], "done");
    assert_eq!(second.body["orders_erased"], 0);
    assert_eq!(second.body["orders_skipped"], 2);
    for (id, version) in ids.iter().zip(versions) {
        let order = stored(&stack, id).await;
        assert_eq!(order.version, version, "no second change of {id}");
        let erasures = order
            .history
            .iter()
            .filter(|h| h.reason.as_deref() == Some(ERASURE_NOTE))
            .count();
        assert_eq!(erasures, 1);
    }
    // The progress is the latest job's.
    let progress = erasure(&stack, &user).await;
    assert_eq!(progress.status, 200);
    assert_eq!(progress.body["job_id"], second.body["job_id"]);
}

#[tokio::test]
async fn open_orders_are_refused_by_name_unless_forced() {
    let stack = Stack::new().await;
    let user = unique("customer");
    let delivered = delivered_order(&stack, &user).await;
    let pending = order_of(&stack, &user, &[]).await;
    let shipped = order_of(&stack, &user, &["confirmed", "shipped"]).await;
    let versions = (
        stored(&stack, &delivered).await.version,
        stored(&stack, &pending).await.version,
    );

    let refused = request_erasure(&stack, &user, None, &admin()).await;
    assert_eq!(refused.status, 409, "{refused:?}");
    assert_eq!(refused.code(), "orders_still_open");
    let mut named: Vec<(String, String)> = refused.body["open_orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["order_id"].as_str().unwrap().to_string(),
                o["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    named.sort();
    let mut expected = vec![
        (pending.clone(), "pending".to_string()),
        (shipped.clone(), "shipped".to_string()),
    ];
    expected.sort();
    assert_eq!(named, expected);
    assert!(refused.body["detail"].as_str().unwrap().contains(&pending));
    // Nothing written: no job, no order changed.
    assert_eq!(erasure(&stack, &user).await.status, 404);
    assert_eq!(stored(&stack, &delivered).await.version, versions.0);
    assert_eq!(stored(&stack, &pending).await.version, versions.1);

    let forced = request_erasure(&stack, &user, Some(json!({"force": true})), &admin()).await;
    assert_eq!(forced.status, 202, "{forced:?}");
    assert_eq!(forced.body["orders_erased"], 3);
    assert_eq!(forced.body["open_orders_erased"], 2);
    assert_eq!(forced.body["force"], true);
    let order = get_order(&stack, &pending).await;
    assert_eq!(order["shipping_address"]["name"], ERASED);
    assert_eq!(order["status"], "pending", "erasure moves no order");
}

/// An open order as a refusal names it: (order id, status, [(return id, status)]).
type Named = (String, String, Vec<(String, String)>);

fn named_open(refused: &Reply) -> Vec<Named> {
    let text = |v: &Value| v.as_str().unwrap().to_string();
    refused.body["open_orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let returns = o["open_returns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (text(&r["return_id"]), text(&r["status"])))
                .collect();
            (text(&o["order_id"]), text(&o["status"]), returns)
        })
        .collect()
}

fn return_step(id: &str, return_id: &str, action: &str, body: Value) -> Call {
    Call::new(
        "POST",
        &format!("/api/orders/{id}/returns/{return_id}/{action}"),
    )
    .bearer(&admin())
    .json(&body)
}

#[tokio::test]
async fn a_delivered_order_with_an_open_return_is_refused_until_the_return_settles() {
    const NOTE_MARK: &str = "ring Jane Marker at 12 Elm Street";
    let stack = Stack::new().await;
    let user = unique("customer");
    let id = delivered_order(&stack, &user).await;
    // A second delivered order whose return was declined: settled, not named.
    let other = delivered_order(&stack, &user).await;
    let ask = |order: &str| {
        Call::new("POST", &format!("/api/orders/{order}/returns"))
            .bearer(&token(&user, ""))
            .json(&json!({
                "note": NOTE_MARK,
                "items": [{"product_id": "p001", "quantity": 1, "reason": "damaged",
                           "note": NOTE_MARK}]
            }))
    };
    let asked = stack.send(ask(&id)).await;
    assert_eq!(asked.status, 201, "{asked:?}");
    let return_id = asked.body["return_id"].as_str().unwrap().to_string();
    let declined = stack.send(ask(&other)).await;
    assert_eq!(declined.status, 201, "{declined:?}");
    let declined_id = declined.body["return_id"].as_str().unwrap();
    let reply = stack
        .send(return_step(
            &other,
            declined_id,
            "decline",
            json!({"reason": "worn before it was sent back"}),
        ))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");

    // Requested, approved, received with its refund deferred: each keeps it open.
    let mut steps = vec![
        ("requested", None),
        ("approved", Some(("approve", json!({})))),
        ("received", Some(("receive", json!({"refund": false})))),
    ]
    .into_iter();
    for (status, step) in steps.by_ref() {
        if let Some((action, body)) = step {
            let moved = stack.send(return_step(&id, &return_id, action, body)).await;
            assert!(moved.status < 300, "{action}: {moved:?}");
        }
        let version = stored(&stack, &id).await.version;
        let refused = request_erasure(&stack, &user, None, &admin()).await;
        assert_eq!(refused.status, 409, "{status}: {refused:?}");
        assert_eq!(refused.code(), "orders_still_open");
        assert_eq!(
            named_open(&refused),
            vec![(
                id.clone(),
                "delivered".to_string(),
                vec![(return_id.clone(), status.to_string())]
            )],
            "{status}"
        );
        let detail = refused.body["detail"].as_str().unwrap();
        assert!(detail.contains(&return_id), "{detail}");
        assert_eq!(erasure(&stack, &user).await.status, 404, "no job");
        assert_eq!(
            stored(&stack, &id).await.version,
            version,
            "nothing written"
        );
    }

    // Forced: the customer's words in the return go like their history reasons.
    let forced = request_erasure(&stack, &user, Some(json!({"force": true})), &admin()).await;
    assert_eq!(forced.status, 202, "{forced:?}");
    assert_eq!(forced.body["orders_erased"], 2);
    assert_eq!(forced.body["open_orders_erased"], 1);
    let order = stored(&stack, &id).await;
    let ret = &order.returns[0];
    assert_eq!(ret.note.as_deref(), Some(ERASED), "{ret:?}");
    assert_eq!(ret.items[0].note.as_deref(), Some(ERASED), "{ret:?}");
    assert_eq!(ret.items[0].reason.as_str(), "damaged");
    assert_eq!(ret.status.as_str(), "received", "erasure moves no return");
    let items = format!(
        "{:?}{:?}",
        stack.stored_order(&id).await,
        stack.stored_order(&other).await
    );
    assert!(!items.contains("Elm Street"), "{items}");

    // The refund released later still works on the erased order (paid by hand: a
    // person pays it), and the return is then settled.
    let released = stack
        .send(return_step(&id, &return_id, "refund", json!({})))
        .await;
    assert_eq!(released.status, 200, "{released:?}");
    assert_eq!(released.body["refund"]["status"], "refund_due");
    // Settled now: a request without force is no longer refused.
    let again = request_erasure(&stack, &user, None, &admin()).await;
    assert_eq!(again.status, 202, "{again:?}");
    assert_eq!(again.body["orders_skipped"], 2);
}

#[tokio::test]
async fn only_admins_erase_and_bad_requests_are_clear() {
    let stack = Stack::new().await;
    let user = unique("customer");
    delivered_order(&stack, &user).await;
    for caller in [token(&user, ""), token("fulfillment", FULFILL)] {
        let reply = request_erasure(&stack, &user, None, &caller).await;
        assert_eq!(reply.status, 403, "{reply:?}");
        let read = stack
            .send(Call::new("GET", &format!("/api/customers/{user}/erasure")).bearer(&caller))
            .await;
        assert_eq!(read.status, 403, "{read:?}");
    }
    let unauthenticated = stack
        .send(Call::new("POST", &format!("/api/customers/{user}/erasure")))
        .await;
    assert_eq!(unauthenticated.status, 401);
    let unknown = request_erasure(&stack, &user, Some(json!({"forse": true})), &admin()).await;
    assert_eq!(unknown.status, 400, "{unknown:?}");
    assert_eq!(unknown.error_fields(), vec!["forse"]);
    let not_bool = request_erasure(&stack, &user, Some(json!({"force": "yes"})), &admin()).await;
    assert_eq!(not_bool.error_fields(), vec!["force"]);
    let not_json = stack
        .send(
            Call::new("POST", &format!("/api/customers/{user}/erasure"))
                .bearer(&admin())
                .raw_body("text/plain", "force"),
        )
        .await;
    assert_eq!(not_json.status, 415);
    // Nothing was erased by any of them.
    let never = erasure(&stack, &user).await;
    assert_eq!(never.status, 404);
    assert_eq!(never.code(), "erasure_not_found");
}

/// Hands every message on `queue` to the erasure consumer, each twice (a duplicate
/// delivery), until the queue stays empty or the deadline passes.
async fn drain(stack: &Stack, sqs: &aws_sdk_sqs::Client, queue: &str) -> usize {
    let privacy = stack.wiring.privacy_service().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut handled = 0;
    while std::time::Instant::now() < deadline {
        let received = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return handled;
        }
        for message in messages {
            let mut record = SqsMessage::default();
            record.message_id = message.message_id.clone();
            record.body = message.body.clone();
            for _ in 0..2 {
                let mut event = SqsEvent::default();
                event.records = vec![record.clone()];
                let failures = orders::inbound::sqs::erase(&privacy, event).await;
                assert!(failures.batch_item_failures.is_empty());
            }
            sqs.delete_message()
                .queue_url(queue)
                .receipt_handle(message.receipt_handle.unwrap())
                .send()
                .await
                .unwrap();
            handled += 1;
        }
    }
    panic!("the erasure queue did not empty within a minute");
}

#[tokio::test]
async fn a_customer_with_many_orders_is_erased_page_by_page_in_the_background() {
    let sdk = orders::adapters::aws::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue = sqs
        .create_queue()
        .queue_name(unique("erasure"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let stack = Stack::with_settings(|s| {
        s.with("ERASURE_QUEUE_URL", &queue)
            .with("ERASURE_PAGE_SIZE", "3")
    })
    .await;
    let user = unique("customer");
    let mut ids = Vec::new();
    for _ in 0..7 {
        ids.push(delivered_order(&stack, &user).await);
    }

    let reply = request_erasure(&stack, &user, None, &admin()).await;
    assert_eq!(reply.status, 202, "{reply:?}");
    assert_eq!(reply.body["status"], "running");
    assert_eq!(reply.body["orders_erased"], 3);
    assert_eq!(reply.body["pages"], 1);
    // While it runs, a second request joins it.
    let joined = request_erasure(&stack, &user, None, &admin()).await;
    assert_eq!(joined.status, 202);
    assert_eq!(joined.body["job_id"], reply.body["job_id"]);
    assert_eq!(joined.body["pages"], 1);

    let handled = drain(&stack, &sqs, &queue).await;
    assert!(handled >= 2, "pages two and three came through the queue");
    let done = erasure(&stack, &user).await;
    assert_eq!(done.body["status"], "done", "{done:?}");
    assert_eq!(done.body["job_id"], reply.body["job_id"]);
    assert_eq!(done.body["orders_erased"], 7);
    assert!(done.body["finished_at"].is_string());
    for id in &ids {
        let order = stored(&stack, id).await;
        assert_eq!(order.shipping_address.name, ERASED);
        assert_eq!(order.contact.email, None);
        let erasures = order
            .history
            .iter()
            .filter(|h| h.reason.as_deref() == Some(ERASURE_NOTE))
            .count();
        assert_eq!(erasures, 1, "{id} erased exactly once despite duplicates");
    }
}

async fn export(stack: &Stack, user: &str, query: &str, caller: &str) -> Reply {
    stack
        .send(Call::new("GET", &format!("/api/customers/{user}/export{query}")).bearer(caller))
        .await
}

#[tokio::test]
async fn the_export_pages_through_orders_with_their_invoices_and_messages() {
    let stack = Stack::new().await;
    let user = unique("customer");
    let pending = order_of(&stack, &user, &[]).await;
    let confirmed = order_of(&stack, &user, &["confirmed"]).await;
    // The notifications consumer issues its invoice and mails the confirmation.
    let notifications = stack.wiring.notifications().unwrap();
    assert!(
        notify(&notifications, vec![last_event(&stack, &confirmed).await])
            .await
            .is_empty()
    );
    let newest = delivered_order(&stack, &user).await;
    delivered_order(&stack, &unique("someone-else")).await;

    let customer = token(&user, "");
    let first = export(&stack, &user, "?limit=2", &customer).await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.header("cache-control"), Some("no-store"));
    let orders = first.body["orders"].as_array().unwrap();
    let ids: Vec<&str> = orders
        .iter()
        .map(|o| o["order"]["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![newest.as_str(), confirmed.as_str()],
        "newest first"
    );
    // The owner's export carries the contact and the whole history.
    assert_eq!(orders[0]["order"]["contact"]["email"], EMAIL_MARK);
    assert_eq!(orders[0]["history"].as_array().unwrap().len(), 4);
    assert_eq!(orders[0]["parcels"].as_array().unwrap().len(), 1);
    let invoices = first.body["invoices"].as_array().unwrap();
    assert_eq!(invoices.len(), 1);
    assert_eq!(invoices[0]["order_id"], confirmed.as_str());
    assert!(
        invoices[0]["invoice_number"]
            .as_str()
            .unwrap()
            .starts_with("INV-")
    );
    // Amounts keep their digits, as everywhere in the API.
    assert!(first.text.contains("\"total\":20.00"), "{}", first.text);
    let messages = first.body["messages"].as_array().unwrap();
    assert!(
        messages
            .iter()
            .any(|m| m["event_id"] == format!("{confirmed}:2")
                && m["channel"] == "email"
                && m["status"] == "sent"),
        "{messages:?}"
    );

    let next = first.body["next"].as_str().expect("a next page");
    let second = stack.send(Call::new("GET", next).bearer(&customer)).await;
    assert_eq!(second.status, 200, "{second:?}");
    let rest: Vec<&str> = second.body["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order"]["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(rest, vec![pending.as_str()]);
    assert_eq!(second.body["next"], Value::Null);
    assert_eq!(second.body["next_cursor"], Value::Null);

    // An admin may export anyone; another customer nobody but themself.
    assert_eq!(export(&stack, &user, "", &admin()).await.status, 200);
    let stranger = export(&stack, &user, "", &token("stranger", "")).await;
    assert_eq!(stranger.status, 403);
    // A cursor is the caller's: another caller's, or a forged one, is refused.
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let reused = export(&stack, &user, &format!("?cursor={cursor}"), &admin()).await;
    assert_eq!(reused.status, 400);
    assert_eq!(reused.code(), "invalid_cursor");
    let bad_limit = export(&stack, &user, "?limit=0", &customer).await;
    assert_eq!(bad_limit.error_fields(), vec!["limit"]);
    let unknown = export(&stack, &user, "?page=2", &customer).await;
    assert_eq!(unknown.error_fields(), vec!["page"]);
}

#[tokio::test]
async fn invoices_expire_after_the_retention_period() {
    let stack = Stack::with_settings(|s| s.with("INVOICE_RETENTION_YEARS", "7")).await;
    let user = unique("customer");
    let confirmed = order_of(&stack, &user, &["confirmed"]).await;
    let notifications = stack.wiring.notifications().unwrap();
    assert!(
        notify(&notifications, vec![last_event(&stack, &confirmed).await])
            .await
            .is_empty()
    );
    let item = stack
        .dynamodb
        .get_item()
        .table_name(&stack.table)
        .key(
            "PK",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("INVOICE#{confirmed}")),
        )
        .key(
            "SK",
            aws_sdk_dynamodb::types::AttributeValue::S("INVOICE".into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .expect("the invoice is stored");
    let issued = time::OffsetDateTime::parse(
        item["issued_at"].as_s().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let expires: i64 = item["expires_at"].as_n().unwrap().parse().unwrap();
    let expected = issued.replace_year(issued.year() + 7).unwrap();
    assert_eq!(expires, expected.unix_timestamp());
    // The table's TTL attribute is the one DynamoDB expires items by.
    let ttl = stack
        .dynamodb
        .describe_time_to_live()
        .table_name(&stack.table)
        .send()
        .await
        .unwrap();
    let attribute = ttl
        .time_to_live_description
        .and_then(|d| d.attribute_name)
        .unwrap_or_default();
    assert_eq!(attribute, "expires_at");
    // A retention that is not a number of years stops the function at init.
    let wrong = orders::wiring::Wiring::new(
        stack
            .wiring
            .settings()
            .clone()
            .with("INVOICE_RETENTION_YEARS", "ten"),
        orders::adapters::aws::sdk_config().await,
    );
    let err = wrong.notifications().err().expect("refused");
    assert!(err.to_string().contains("INVOICE_RETENTION_YEARS"), "{err}");
}
