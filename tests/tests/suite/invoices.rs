//! Invoices: issued by the notifications consumer when an order is confirmed, numbered
//! from a gapless sequence per calendar year, read at `GET /api/orders/{id}/invoice`
//! as JSON or PDF (its text extracted with pypdf from the project's .venv).

use std::path::PathBuf;

use orders::domain::invoice::InvoiceNumber;
use orders_tests::{ADMIN, Call, FULFILL, Stack, token, unique};
use serde_json::json;

use crate::notifications::{last_event, notify, place, token_with_contact};

fn invoice_call(id: &str, caller: &str) -> Call {
    Call::new("GET", &format!("/api/orders/{id}/invoice")).bearer(caller)
}

/// The text pypdf extracts from `pdf`.
pub fn pdf_text(pdf: &[u8]) -> String {
    let dir = std::env::temp_dir().join(unique("invoice"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("invoice.pdf");
    std::fs::write(&path, pdf).unwrap();
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let output = std::process::Command::new(&python)
        .arg("-c")
        .arg(
            "import sys, pypdf\n\
             reader = pypdf.PdfReader(sys.argv[1])\n\
             print('\\n'.join(page.extract_text() for page in reader.pages))",
        )
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("{} (make bootstrap installs pypdf): {e}", python.display()));
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        output.status.success(),
        "pypdf: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Places and confirms an order of `user`, and lets the consumer handle the
/// confirmation; the order id.
async fn confirmed_order(stack: &Stack, user: &str) -> String {
    let id = place(stack, user, &token(user, ""), json!({})).await;
    stack.advance(&id, &["confirmed"]).await;
    id
}

fn sequence(number: &str) -> u64 {
    InvoiceNumber::parse(number)
        .expect("an invoice number")
        .sequence
}

#[tokio::test]
async fn four_concurrent_confirmations_get_four_consecutive_numbers() {
    let stack = Stack::new().await;
    let mut events = Vec::new();
    for n in 0..4 {
        let id = confirmed_order(&stack, &format!("buyer{n}")).await;
        events.push((id.clone(), last_event(&stack, &id).await));
    }
    // Four consumers at once, one confirmation each.
    let consumers: Vec<_> = (0..4)
        .map(|_| stack.wiring.notifications().unwrap())
        .collect();
    let handled = futures_util::future::join_all(
        consumers
            .iter()
            .zip(&events)
            .map(|(consumer, (_, event))| notify(consumer, vec![event.clone()])),
    )
    .await;
    assert!(handled.iter().all(Vec::is_empty), "{handled:?}");

    let admin = token("admin", ADMIN);
    let mut numbers = Vec::new();
    for (id, _) in &events {
        let reply = stack.send(invoice_call(id, &admin)).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        numbers.push(reply.body["invoice_number"].as_str().unwrap().to_string());
    }
    let year = time::OffsetDateTime::now_utc().year();
    let mut sequences: Vec<u64> = numbers.iter().map(|n| sequence(n)).collect();
    sequences.sort_unstable();
    assert_eq!(sequences, [1, 2, 3, 4], "{numbers:?}");
    assert!(
        numbers
            .iter()
            .all(|n| n.starts_with(&format!("INV-{year}-00000"))),
        "{numbers:?}"
    );
    // The year's counter says what was taken, and nothing more.
    let counter = stack
        .all_items()
        .await
        .into_iter()
        .find(|item| item["PK"].as_s().unwrap() == &format!("INVOICE_COUNTER#{year}"))
        .expect("the year's counter");
    assert_eq!(counter["last_sequence"].as_n().unwrap(), "4");
}

#[tokio::test]
async fn a_redelivered_confirmation_gets_the_same_invoice_and_takes_no_number() {
    let stack = Stack::new().await;
    let notifications = stack.wiring.notifications().unwrap();
    let id = confirmed_order(&stack, "ann").await;
    let confirmed = last_event(&stack, &id).await;
    for _ in 0..3 {
        assert!(
            notify(&notifications, vec![confirmed.clone()])
                .await
                .is_empty()
        );
    }
    // Another order confirmed afterwards takes the next number: none was used up.
    let next = confirmed_order(&stack, "bob").await;
    assert!(
        notify(&notifications, vec![last_event(&stack, &next).await])
            .await
            .is_empty()
    );

    let admin = token("admin", ADMIN);
    let first = stack.send(invoice_call(&id, &admin)).await;
    let second = stack.send(invoice_call(&next, &admin)).await;
    assert_eq!(sequence(first.body["invoice_number"].as_str().unwrap()), 1);
    assert_eq!(sequence(second.body["invoice_number"].as_str().unwrap()), 2);
    let invoices = stack
        .all_items()
        .await
        .into_iter()
        .filter(|item| item["PK"].as_s().unwrap().starts_with("INVOICE#"))
        .count();
    assert_eq!(invoices, 2);
}

#[tokio::test]
async fn the_invoice_is_for_the_owner_and_admins_once_the_order_is_confirmed() {
    let stack = Stack::new().await;
    let notifications = stack.wiring.notifications().unwrap();
    let customer = token_with_contact("jane", Some("jane.invoice@example.com"), None);
    let id = place(&stack, "jane", &customer, json!({})).await;
    // Pending: no invoice yet.
    assert_eq!(stack.send(invoice_call(&id, &customer)).await.status, 404);
    // The created event issues nothing either.
    assert!(
        notify(&notifications, vec![last_event(&stack, &id).await])
            .await
            .is_empty()
    );
    assert_eq!(stack.send(invoice_call(&id, &customer)).await.status, 404);

    stack.advance(&id, &["confirmed"]).await;
    assert!(
        notify(&notifications, vec![last_event(&stack, &id).await])
            .await
            .is_empty()
    );
    let owner = stack.send(invoice_call(&id, &customer)).await;
    assert_eq!(owner.status, 200, "{owner:?}");
    assert_eq!(owner.header("content-type"), Some("application/json"));
    let invoice = &owner.body;
    assert_eq!(invoice["order_id"], json!(id));
    assert_eq!(invoice["currency"], "USD");
    assert_eq!(invoice["seller"]["name"], "Test Shop");
    assert_eq!(invoice["seller"]["tax_id"], "US-TEST-9");
    assert_eq!(invoice["buyer"]["name"], "Jane Doe");
    assert_eq!(invoice["buyer"]["email"], "jane.invoice@example.com");
    assert_eq!(
        invoice["buyer"]["address"],
        json!(["123 Main St", "New York, NY 10001", "US"])
    );
    assert_eq!(invoice["payment_method"], "credit_card");
    assert_eq!(invoice["payment_reference"], json!(null));
    assert!(owner.text.contains(r#""lines":[{"product_id":"p001","description":"USB Cable","quantity":2,"unit_price":10.00,"amount":20.00,"discount":0.00,"net":20.00,"tax_lines":[],"tax":0.00}]"#), "{}", owner.text);
    assert!(
        owner.text.contains(r#""subtotal":20.00,"discount_total":0.00,"shipping_total":0.00,"tax_total":0.00,"total":20.00"#),
        "{}",
        owner.text
    );

    let admin = stack.send(invoice_call(&id, &token("admin", ADMIN))).await;
    assert_eq!(admin.status, 200);
    assert_eq!(admin.body, owner.body);
    // Anyone else: as if there were none.
    for other in [token("mallory", ""), token("shipper", FULFILL)] {
        let reply = stack.send(invoice_call(&id, &other)).await;
        assert_eq!(reply.status, 404, "{reply:?}");
        assert_eq!(reply.code(), "order_not_found");
    }
    assert_eq!(
        stack
            .send(invoice_call("ORD0000000000000000", &token("admin", ADMIN)))
            .await
            .status,
        404
    );
    // Only GET: any other method is 405 with Allow.
    let post = stack
        .send(Call::new("POST", &format!("/api/orders/{id}/invoice")).bearer(&customer))
        .await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET"));
}

#[tokio::test]
async fn the_pdf_holds_the_number_the_lines_and_the_total() {
    let stack = Stack::new().await;
    let notifications = stack.wiring.notifications().unwrap();
    stack.put_demo_cart().await;
    let reply = stack
        .send(
            Call::new("POST", "/api/orders")
                .bearer(&token("user789", ""))
                .json(&orders_tests::checkout("abc123")),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let id = reply.body["order_id"].as_str().unwrap().to_string();
    stack.advance(&id, &["confirmed"]).await;
    assert!(
        notify(&notifications, vec![last_event(&stack, &id).await])
            .await
            .is_empty()
    );

    let owner = token("user789", "");
    let json = stack.send(invoice_call(&id, &owner)).await;
    let number = json.body["invoice_number"].as_str().unwrap().to_string();
    let pdf = stack
        .send(invoice_call(&id, &owner).header("accept", "application/pdf"))
        .await;
    assert_eq!(pdf.status, 200);
    assert_eq!(pdf.header("content-type"), Some("application/pdf"));
    assert_eq!(
        pdf.header("content-disposition"),
        Some(format!("inline; filename=\"{number}.pdf\"").as_str())
    );
    assert!(pdf.bytes.starts_with(b"%PDF-"), "a PDF");
    // Small: only the glyphs the document prints are embedded.
    assert!(pdf.bytes.len() < 48 * 1024, "{} bytes", pdf.bytes.len());

    let text = pdf_text(&pdf.bytes);
    for expected in [
        number.as_str(),
        id.as_str(),
        "USB Cable",
        "Keyboard",
        "20.00",
        "55.00",
        "75.00",
        "Total (USD)",
        "Test Shop",
        "Jane Doe",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} in the PDF's text:\n{text}"
        );
    }
}
