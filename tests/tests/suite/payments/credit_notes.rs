//! Credit notes (issue 19): every refund is allocated over lines, shipping and tax
//! rates and stored so; the notifications consumer, on the refund's event, issues one
//! credit note per refund from a gapless series (`CN-2026-000001`), attaches it to
//! the refund's email, and `GET /api/orders/{id}/credit-notes[/{number}]` reads it as
//! JSON or PDF, to the owner and admins only. Against the emulator and localstripe.

use futures_util::future::join_all;
use orders::domain::billing::CreditNoteNumber;
use orders_tests::{ADMIN, Call, FULFILL, Reply, checkout, token, unique};
use serde_json::{Value, json};

use super::{Payments, USER, payments};
use crate::invoices::pdf_text;
use crate::notifications::{address, last_event, notify, sent_emails, token_with_contact};

/// Two VAT rates, a discount split over both lines, shipping at the standard rate:
/// 30.70 − 4.00 + 4.90 + 4.88 = 36.48 (the money tests' cart). Charged per part:
/// USB Cable net 17.39 + VAT 3.30, Cookbook 9.31 + 0.65, shipping 4.90 + 0.93.
fn two_rate_cart(cart_id: &str, names: [&str; 2]) -> Value {
    json!({
        "cart_id": cart_id, "user_id": USER, "currency": "EUR",
        "items": [
            {"product_id": "p001", "name": names[0], "quantity": 2, "price": "10.00",
             "tax_lines": [{"name": "VAT", "rate": "0.19", "amount": "3.30"}]},
            {"product_id": "b042", "name": names[1], "quantity": 1, "price": "10.70",
             "tax_lines": [{"name": "VAT", "rate": "0.07", "amount": "0.65"}]}
        ],
        "shipping": {"method": "dhl_paket", "name": "DHL Paket", "amount": "4.90",
                     "tax_lines": [{"name": "VAT", "rate": "0.19", "amount": "0.93"}]},
        "discounts": [{"code": "WELCOME10", "amount": "4.00"}]
    })
}

/// A priced card order of `USER` with `email` as its contact, paid at localstripe
/// and confirmed by Stripe's webhook; its id.
async fn paid_priced_order(p: &Payments, email: &str, buyer: &str, names: [&str; 2]) -> String {
    let cart_id = unique("cart");
    p.stack.put_cart_json(&two_rate_cart(&cart_id, names)).await;
    let mut body = checkout(&cart_id);
    body["shipping_address"]["name"] = json!(buyer);
    let reply = p
        .stack
        .send(
            Call::new("POST", "/api/orders")
                .bearer(&token_with_contact(USER, Some(email), None))
                .json(&body),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let order_id = reply.body["order_id"].as_str().unwrap().to_string();
    assert_eq!(p.order(&order_id).await.total.minor(), 3648);
    let intent = reply.body["payment"]["intent_id"].as_str().unwrap();
    assert_eq!(p.stripe.pay(intent, "pm_card_visa").await, 200);
    p.until(&order_id, |o| o.payment_status.as_str() == "paid")
        .await;
    order_id
}

/// The notifications consumer handles the order's latest change (a refund's event).
async fn tell(p: &Payments, order_id: &str) {
    let notifications = p.stack.wiring.notifications().unwrap();
    let failed = notify(&notifications, vec![last_event(&p.stack, order_id).await]).await;
    assert!(failed.is_empty(), "{failed:?}");
}

fn credit_notes_call(order_id: &str, caller: &str) -> Call {
    Call::new("GET", &format!("/api/orders/{order_id}/credit-notes")).bearer(caller)
}

fn credit_note_call(order_id: &str, number: &str, caller: &str) -> Call {
    Call::new(
        "GET",
        &format!("/api/orders/{order_id}/credit-notes/{number}"),
    )
    .bearer(caller)
}

async fn credit_notes(p: &Payments, order_id: &str) -> Vec<Value> {
    let reply = p
        .stack
        .send(credit_notes_call(order_id, &token(USER, "")))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["credit_notes"].as_array().unwrap().clone()
}

/// An amount as the API writes it (`4.77`), for comparing with `json!` numbers.
fn amounts(values: &[f64]) -> Vec<Value> {
    values.iter().map(|v| json!(v)).collect()
}

fn column(rows: &Value, member: &str) -> Vec<Value> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|row| row[member].clone())
        .collect()
}

/// What the stored order's refunds record of their allocation (minor units, in the
/// order of lines' net and taxes, then the shipping's).
async fn stored_allocations(p: &Payments, order_id: &str) -> Vec<Vec<i64>> {
    p.order(order_id)
        .await
        .payment
        .unwrap()
        .refunds
        .iter()
        .map(|r| r.parts.as_ref().expect("an allocated refund").amounts())
        .collect()
}

fn sequence(number: &Value) -> u64 {
    CreditNoteNumber::parse(number.as_str().unwrap())
        .expect("a credit note number")
        .sequence
}

#[tokio::test]
async fn a_partial_refund_is_allocated_pro_rata_and_its_credit_note_adds_up() {
    let p = payments().await;
    let email = address("refunded");
    let order_id = paid_priced_order(&p, &email, "Jane Doe", ["USB Cable", "Cookbook"]).await;

    // 10.00 of 36.48: 27.41 % of every part, the leftover cents by largest remainder.
    let refund = p.refund(&order_id, "10.00", "partial-1").await;
    assert_eq!(refund.status, 201, "{refund:?}");
    assert_eq!(
        stored_allocations(&p, &order_id).await,
        [vec![477, 90, 255, 18, 134, 26]]
    );
    // The order's own view says the same, per line and of the shipping.
    let order = p
        .stack
        .send(Call::new("GET", &format!("/api/orders/{order_id}")).bearer(&token(USER, "")))
        .await;
    assert_eq!(
        order.body["payment"]["refunds"][0]["allocation"],
        json!([
            {"part": "p001", "net": 4.77, "tax": 0.90},
            {"part": "b042", "net": 2.55, "tax": 0.18},
            {"part": "shipping", "net": 1.34, "tax": 0.26}
        ]),
        "{order:?}"
    );
    tell(&p, &order_id).await;

    let notes = credit_notes(&p, &order_id).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    let note = &notes[0];
    let year = time::OffsetDateTime::now_utc().year();
    assert_eq!(note["number"], format!("CN-{year}-000001"));
    let invoice = p
        .stack
        .send(Call::new("GET", &format!("/api/orders/{order_id}/invoice")).bearer(&token(USER, "")))
        .await;
    assert_eq!(invoice.status, 200, "the refund issued the invoice first");
    assert_eq!(note["invoice_number"], invoice.body["invoice_number"]);
    assert_eq!(note["seller"], invoice.body["seller"]);
    assert_eq!(note["buyer"], invoice.body["buyer"]);
    assert_eq!(note["total"], json!(10.00));
    assert_eq!(column(&note["lines"], "net"), amounts(&[4.77, 2.55]));
    assert_eq!(column(&note["lines"], "tax"), amounts(&[0.90, 0.18]));
    assert_eq!(column(&note["lines"], "total"), amounts(&[5.67, 2.73]));
    assert_eq!(note["lines"][0]["tax_lines"][0]["rate"], "0.19");
    assert_eq!(note["shipping"]["net"], json!(1.34));
    assert_eq!(note["shipping"]["tax"], json!(0.26));
    // Per rate: 4.77 + 1.34 at 19 % with 0.90 + 0.26 tax; 2.55 at 7 % with 0.18.
    assert_eq!(
        column(&note["tax_summary"], "rate"),
        [json!("0.19"), json!("0.07")]
    );
    assert_eq!(column(&note["tax_summary"], "net"), amounts(&[6.11, 2.55]));
    assert_eq!(column(&note["tax_summary"], "tax"), amounts(&[1.16, 0.18]));
    assert_eq!(
        (&note["net_total"], &note["tax_total"]),
        (&json!(8.66), &json!(1.34))
    );

    // The customer's refund email names it and carries its PDF, never the admin's
    // note ("damaged in transit").
    let emails = sent_emails(&email).await;
    let refunded = emails
        .iter()
        .find(|e| e["subject"].as_str().unwrap().contains("refunded"))
        .expect("the refund's email");
    let text = refunded["text"].as_str().unwrap();
    assert!(
        text.contains(&format!("Credit note CN-{year}-000001")),
        "{text}"
    );
    for part in ["text", "html", "subject"] {
        assert!(!refunded[part].as_str().unwrap().contains("damaged"));
    }
    let attachments = refunded["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 1, "{attachments:?}");
    assert_eq!(attachments[0]["filename"], format!("CN-{year}-000001.pdf"));

    // The rest: together the two refunds give back every part exactly.
    let rest = p.refund(&order_id, "26.48", "rest-1").await;
    assert_eq!(rest.status, 201, "{rest:?}");
    let allocations = stored_allocations(&p, &order_id).await;
    let both: Vec<i64> = allocations[0]
        .iter()
        .zip(&allocations[1])
        .map(|(a, b)| a + b)
        .collect();
    assert_eq!(both, [1739, 330, 931, 65, 490, 93]);
    tell(&p, &order_id).await;
    let notes = credit_notes(&p, &order_id).await;
    assert_eq!(
        column(&Value::from(notes.clone()), "total"),
        amounts(&[10.00, 26.48])
    );
    assert_eq!(sequence(&notes[1]["number"]), 2);
}

#[tokio::test]
async fn cancelling_a_paid_order_refunds_it_with_a_credit_note_of_every_part() {
    let p = payments().await;
    let order_id = paid_priced_order(
        &p,
        &address("cancelled"),
        "Jane Doe",
        ["USB Cable", "Cookbook"],
    )
    .await;
    let cancel = p
        .stack
        .send(
            Call::new("DELETE", &format!("/api/orders/{order_id}"))
                .bearer(&token("admin", ADMIN))
                .json(&json!({"reason": "customer called"})),
        )
        .await;
    assert_eq!(cancel.status, 200, "{cancel:?}");
    assert!(matches!(
        p.settle(&order_id).await,
        orders::services::payments::Settled::Refunded(_)
    ));
    assert_eq!(
        stored_allocations(&p, &order_id).await,
        [vec![1739, 330, 931, 65, 490, 93]]
    );
    tell(&p, &order_id).await;

    let notes = credit_notes(&p, &order_id).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    let note = &notes[0];
    assert_eq!(note["total"], json!(36.48));
    assert_eq!(column(&note["lines"], "net"), amounts(&[17.39, 9.31]));
    assert_eq!(note["shipping"]["net"], json!(4.90));
    // The whole invoice, taken back rate by rate.
    let invoice = p
        .stack
        .send(
            Call::new("GET", &format!("/api/orders/{order_id}/invoice"))
                .bearer(&token("admin", ADMIN)),
        )
        .await;
    assert_eq!(note["tax_summary"], invoice.body["tax_summary"]);
    assert_eq!(note["tax_total"], invoice.body["tax_total"]);
}

/// One order has one refund in flight at a time, so concurrency is across orders:
/// eight refunds' events handled at once take eight consecutive numbers; every event
/// delivered again takes none.
#[tokio::test]
async fn concurrent_refunds_of_eight_orders_get_consecutive_numbers_once_each() {
    let p = payments().await;
    let orders: Vec<String> = join_all((0..8).map(|n| {
        let email = address(&format!("buyer{n}"));
        let p = &p;
        async move { paid_priced_order(p, &email, "Jane Doe", ["USB Cable", "Cookbook"]).await }
    }))
    .await;
    let mut events = Vec::new();
    for order_id in &orders {
        let refund = p.refund(order_id, "5.00", "concurrent-1").await;
        assert_eq!(refund.status, 201, "{refund:?}");
        events.push(last_event(&p.stack, order_id).await);
    }
    let consumers: Vec<_> = (0..8)
        .map(|_| p.stack.wiring.notifications().unwrap())
        .collect();
    for _ in 0..2 {
        let handled = join_all(
            consumers
                .iter()
                .zip(&events)
                .map(|(consumer, event)| notify(consumer, vec![event.clone()])),
        )
        .await;
        assert!(handled.iter().all(Vec::is_empty), "{handled:?}");
    }

    let mut sequences = Vec::new();
    for order_id in &orders {
        let notes = credit_notes(&p, order_id).await;
        assert_eq!(notes.len(), 1, "{order_id}: {notes:?}");
        assert_eq!(notes[0]["total"], json!(5.00));
        sequences.push(sequence(&notes[0]["number"]));
    }
    sequences.sort_unstable();
    assert_eq!(sequences, (1..=8).collect::<Vec<u64>>());
    let year = time::OffsetDateTime::now_utc().year();
    let items = p.stack.all_items().await;
    let counter = items
        .iter()
        .find(|item| item["PK"].as_s().unwrap() == &format!("CREDIT_NOTE_COUNTER#{year}"))
        .expect("the year's counter");
    assert_eq!(counter["last_sequence"].as_n().unwrap(), "8");
    let stored = items
        .iter()
        .filter(|item| item["PK"].as_s().unwrap().starts_with("CREDIT_NOTE#"))
        .count();
    assert_eq!(stored, 8);
}

#[tokio::test]
async fn credit_notes_are_the_owners_and_admins_only() {
    let p = payments().await;
    let order_id =
        paid_priced_order(&p, &address("owner"), "Jane Doe", ["USB Cable", "Cookbook"]).await;
    // Before any refund: none, for the owner; the order is still nobody else's.
    assert!(credit_notes(&p, &order_id).await.is_empty());
    assert_eq!(p.refund(&order_id, "1.00", "owner-1").await.status, 201);
    tell(&p, &order_id).await;
    let number = credit_notes(&p, &order_id).await[0]["number"]
        .as_str()
        .unwrap()
        .to_string();

    let send = async |call: Call| -> Reply { p.stack.send(call).await };
    for caller in [token(USER, ""), token("admin", ADMIN)] {
        let reply = send(credit_note_call(&order_id, &number, &caller)).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.body["number"], json!(number));
    }
    // Anyone else (the fulfillment service included): no such order, no such note.
    for caller in [token("mallory", ""), token("warehouse", FULFILL)] {
        let list = send(credit_notes_call(&order_id, &caller)).await;
        assert_eq!(
            (list.status, list.code()),
            (404, "order_not_found"),
            "{list:?}"
        );
        let one = send(credit_note_call(&order_id, &number, &caller)).await;
        assert_eq!(one.status, 404, "{one:?}");
    }
    let owner = token(USER, "");
    let year = time::OffsetDateTime::now_utc().year();
    for unknown in [
        format!("CN-{year}-000002"),
        "INV-2026-000001".into(),
        "nope".into(),
    ] {
        let reply = send(credit_note_call(&order_id, &unknown, &owner)).await;
        assert_eq!(reply.status, 404, "{unknown}: {reply:?}");
    }
    let other_order = send(credit_notes_call("ORDNOSUCHORDER00000", &owner)).await;
    assert_eq!(other_order.status, 404);
}

/// The PDF holds the JSON's text: names in Cyrillic and Greek, every amount.
#[tokio::test]
async fn the_pdf_says_what_the_json_says_in_any_script() {
    let p = payments().await;
    let order_id = paid_priced_order(
        &p,
        &address("pdf"),
        "Юлия Ελένη Gößling",
        ["Ελληνικό μέλι", "Чай «Юлия»"],
    )
    .await;
    assert_eq!(p.refund(&order_id, "12.34", "pdf-1").await.status, 201);
    tell(&p, &order_id).await;
    let note = credit_notes(&p, &order_id).await.remove(0);
    let number = note["number"].as_str().unwrap();
    let pdf = p
        .stack
        .send(
            credit_note_call(&order_id, number, &token(USER, ""))
                .header("accept", "application/pdf"),
        )
        .await;
    assert_eq!(pdf.status, 200, "{pdf:?}");
    assert_eq!(pdf.header("content-type"), Some("application/pdf"));
    let printed = pdf_text(&pdf.bytes);
    let mut expected = vec![
        "CREDIT NOTE".to_string(),
        number.to_string(),
        note["invoice_number"].as_str().unwrap().to_string(),
        note["refund_id"].as_str().unwrap().to_string(),
        note["buyer"]["name"].as_str().unwrap().to_string(),
        "Shipping: DHL Paket".into(),
        "VAT 19%".into(),
        "VAT 7%".into(),
        "Total refunded (EUR)".into(),
    ];
    assert_eq!(expected[4], "Юлия Ελένη Gößling");
    for line in note["lines"].as_array().unwrap() {
        expected.push(line["description"].as_str().unwrap().to_string());
        for member in ["net", "tax", "total"] {
            expected.push(format!("{:.2}", line[member].as_f64().unwrap()));
        }
    }
    for row in note["tax_summary"].as_array().unwrap() {
        for member in ["net", "tax"] {
            expected.push(format!("{:.2}", row[member].as_f64().unwrap()));
        }
    }
    for member in ["net_total", "tax_total", "total"] {
        expected.push(format!("{:.2}", note[member].as_f64().unwrap()));
    }
    assert!(expected.contains(&"Ελληνικό μέλι".to_string()));
    for text in &expected {
        assert!(printed.contains(text.as_str()), "{text:?} in:\n{printed}");
    }
}

#[tokio::test]
async fn a_customers_export_carries_their_credit_notes_which_expire_with_the_invoices() {
    let p = payments().await;
    let email = address("exported");
    let order_id = paid_priced_order(&p, &email, "Jane Exported", ["USB Cable", "Cookbook"]).await;
    let refund = p.refund(&order_id, "10.00", "export-1").await;
    assert_eq!(refund.status, 201, "{refund:?}");
    tell(&p, &order_id).await;
    let issued = credit_notes(&p, &order_id).await;
    assert_eq!(issued.len(), 1, "{issued:?}");

    // The customer's export has it, as the credit-notes route shows it.
    let export = p
        .stack
        .send(Call::new("GET", &format!("/api/customers/{USER}/export")).bearer(&token(USER, "")))
        .await;
    assert_eq!(export.status, 200, "{export:?}");
    let exported = export.body["credit_notes"].as_array().unwrap();
    let mine: Vec<&Value> = exported
        .iter()
        .filter(|n| n["order_id"] == order_id.as_str())
        .collect();
    assert_eq!(mine, vec![&issued[0]], "{exported:?}");
    assert_eq!(mine[0]["buyer"]["name"], "Jane Exported");
    assert_eq!(mine[0]["total"], json!(10.00));

    // Stored apart from the order, under the table's TTL: issue + 10 years.
    let items = p
        .stack
        .dynamodb
        .query()
        .table_name(&p.stack.table)
        .key_condition_expression("PK = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("CREDIT_NOTE#{order_id}")),
        )
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    assert_eq!(items.len(), 1);
    let issued_at = time::OffsetDateTime::parse(
        items[0]["issued_at"].as_s().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let expires: i64 = items[0]["expires_at"].as_n().unwrap().parse().unwrap();
    let expected = issued_at.replace_year(issued_at.year() + 10).unwrap();
    assert_eq!(expires, expected.unix_timestamp());
    assert!(
        items[0]["document"]
            .as_s()
            .unwrap()
            .contains("Jane Exported")
    );
}
