//! Money lines: the cart's shipping, discounts and taxes become the order's, allocated
//! to its lines exactly (largest remainder), in every currency's digits; the totals add
//! up; the payment intent is for the total; a cart that cannot be priced is refused
//! naming the member, with nothing written; the seed's cart is priced as it always was.

use orders_tests::{ADMIN, Call, Reply, Stack, checkout, token, unique};
use serde_json::{Value, json};

const USER: &str = "ann";

/// The issue's cart: EUR, VAT added, shipping with its VAT, a 4.00 code.
fn issue_cart(cart_id: &str) -> Value {
    json!({
        "cart_id": cart_id, "user_id": USER, "currency": "EUR", "taxes_included": false,
        "items": [{"product_id": "p001", "name": "USB Cable", "quantity": 2, "price": "10.00",
                   "tax_lines": [{"name": "VAT", "rate": "0.19", "amount": "3.04"}]}],
        "shipping": {"method": "dhl_paket", "name": "DHL Paket", "amount": "4.90",
                     "tax_lines": [{"name": "VAT", "rate": "0.19", "amount": "0.93"}]},
        "discounts": [{"code": "WELCOME10", "amount": "4.00"}]
    })
}

/// Checks out `cart` (stored first) as its user; the create reply.
async fn place(stack: &Stack, cart: &Value) -> Reply {
    stack.put_cart_json(cart).await;
    let cart_id = cart["cart_id"].as_str().unwrap();
    stack
        .send(
            Call::new("POST", "/api/orders")
                .bearer(&token(USER, ""))
                .json(&checkout(cart_id)),
        )
        .await
}

/// Places `cart` and reads the order back as its owner.
async fn order_of(stack: &Stack, cart: &Value) -> Reply {
    let created = place(stack, cart).await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.body["order_id"].as_str().unwrap();
    let reply = stack
        .send(Call::new("GET", &format!("/api/orders/{id}")).bearer(&token(USER, "")))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply
}

/// Every value of the member `name` in the JSON `text`, in order, exactly as written
/// (`20.00`, `34`, `0.003`): a parsed JSON number would have lost its digits.
fn members(text: &str, name: &str) -> Vec<String> {
    let key = format!("\"{name}\":");
    text.match_indices(&key)
        .map(|(at, _)| {
            let rest = &text[at + key.len()..];
            let end = rest.find([',', '}', ']']).unwrap_or(rest.len());
            rest[..end].to_string()
        })
        .collect()
}

/// The order's five totals, as written.
fn totals(text: &str) -> [String; 5] {
    [
        "subtotal",
        "discount_total",
        "shipping_total",
        "tax_total",
        "total",
    ]
    .map(|m| members(text, m).first().cloned().unwrap_or_default())
}

#[tokio::test]
async fn the_issues_cart_becomes_an_order_whose_totals_add_up() {
    let stack = Stack::new().await;
    let reply = order_of(&stack, &issue_cart(&unique("c"))).await;
    let order = &reply.body;

    // 20.00 − 4.00 + 4.90 + (3.04 + 0.93) = 24.87
    assert_eq!(
        totals(&reply.text),
        ["20.00", "4.00", "4.90", "3.97", "24.87"]
    );
    assert_eq!(order["currency"], "EUR");
    assert_eq!(order["taxes_included"], false);
    let line = &order["items"][0];
    assert_eq!(members(&reply.text, "discount"), ["4.00"]);
    assert_eq!(line["tax_lines"][0]["name"], "VAT");
    assert_eq!(line["tax_lines"][0]["rate"], "0.19");
    assert_eq!(order["shipping"]["method"], "dhl_paket");
    assert_eq!(order["shipping"]["name"], "DHL Paket");
    assert_eq!(order["discounts"][0]["code"], "WELCOME10");
    // Shipping, its tax, the code's amount, the line's tax.
    assert_eq!(
        members(&reply.text, "amount"),
        ["4.90", "0.93", "4.00", "3.04"]
    );

    // Stored in minor units: what payments and invoices read.
    let id = order["order_id"].as_str().unwrap();
    let stored = stack.stored_order(id).await.unwrap();
    assert_eq!(stored["total"].as_n().unwrap(), "2487");
    // An admin's list shows the same money.
    let listed = stack
        .send(Call::new("GET", "/api/orders?user_id=ann").bearer(&token("root", ADMIN)))
        .await;
    assert_eq!(totals(&listed.text), totals(&reply.text));
}

#[tokio::test]
async fn taxes_included_are_part_of_the_total() {
    let stack = Stack::new().await;
    let cart = json!({
        "cart_id": unique("c"), "user_id": USER, "currency": "EUR", "taxes_included": true,
        "items": [
            {"product_id": "p1", "name": "Lamp", "quantity": 1, "price": "119.00",
             "tax_lines": [{"name": "VAT", "rate": "0.19", "amount": "17.10"}]},
            {"product_id": "p2", "name": "Book", "quantity": 2, "price": "10.70",
             "tax_lines": [{"name": "VAT", "rate": "0.07", "amount": "1.26"}]}
        ],
        "shipping": {"method": "std", "name": "Standard", "amount": "5.95",
                     "tax_lines": [{"name": "VAT", "rate": "0.19", "amount": "0.95"}]},
        "discounts": [{"code": "SPRING", "amount": "21.00"}, {"code": "VIP", "amount": "7.00"}]
    });
    let reply = order_of(&stack, &cart).await;
    // 140.40 − 28.00 + 5.95 = 118.35, of which 17.10 + 1.26 + 0.95 = 19.31 is tax.
    assert_eq!(
        totals(&reply.text),
        ["140.40", "28.00", "5.95", "19.31", "118.35"]
    );
    // 28.00 over 119.00 and 21.40: 23.7322… and 4.2678… → 23.73 and 4.27.
    assert_eq!(members(&reply.text, "discount"), ["23.73", "4.27"]);
    assert_eq!(reply.body["taxes_included"], true);
}

/// A discount that does not split evenly, in currencies of 2, 0 and 3 digits: the
/// leftover units go to the largest remainders, and the shares add up exactly.
#[tokio::test]
async fn uneven_discounts_split_exactly_in_every_currencys_digits() {
    let stack = Stack::new().await;
    for (currency, prices, discount, shares, total) in [
        (
            "USD",
            ["10.00", "10.00", "10.00"],
            "10.00",
            ["3.34", "3.33", "3.33"],
            "20.00",
        ),
        (
            "JPY",
            ["1000", "1000", "1000"],
            "100",
            ["34", "33", "33"],
            "2900",
        ),
        (
            "KWD",
            ["1.005", "2.010", "0.001"],
            "0.010",
            ["0.003", "0.007", "0.000"],
            "3.006",
        ),
    ] {
        let items: Vec<Value> = prices
            .iter()
            .enumerate()
            .map(|(i, price)| {
                json!({"product_id": format!("p{i}"), "name": "Thing", "quantity": 1, "price": price})
            })
            .collect();
        let cart = json!({
            "cart_id": unique("c"), "user_id": USER, "currency": currency,
            "items": items, "discounts": [{"code": "ODD", "amount": discount}]
        });
        let reply = order_of(&stack, &cart).await;
        assert_eq!(members(&reply.text, "discount"), shares, "{currency}");
        assert_eq!(
            members(&reply.text, "discount_total"),
            [discount],
            "{currency}"
        );
        assert_eq!(members(&reply.text, "total"), [total], "{currency}");
    }
}

#[tokio::test]
async fn a_cart_that_cannot_be_priced_is_refused_naming_the_member() {
    let stack = Stack::new().await;
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut cart = issue_cart(&unique("bad"));
        edit(&mut cart);
        cart
    };
    for (cart, member) in [
        (
            with(&|c| c["items"][0]["tax_lines"][0]["rate"] = json!("19")),
            "cart.items[0].tax_lines[0].rate",
        ),
        (
            with(&|c| c["items"][0]["tax_lines"][0]["amount"] = json!("3.041")),
            "cart.items[0].tax_lines[0].amount",
        ),
        (
            with(&|c| c["shipping"]["amount"] = json!("-4.90")),
            "cart.shipping.amount",
        ),
        (
            with(&|c| c["shipping"]["tax_lines"][0]["amount"] = json!("5.00")),
            "cart.shipping.tax_lines",
        ),
        (
            with(&|c| c["discounts"][0]["amount"] = json!("20.01")),
            "cart.discounts",
        ),
        (
            with(&|c| c["discounts"][0]["code"] = json!("")),
            "cart.discounts[0].code",
        ),
        (
            with(&|c| {
                c["currency"] = json!("JPY");
                c["items"][0]["price"] = json!("1000");
                c["items"][0]["tax_lines"][0]["amount"] = json!("304");
                c["discounts"][0]["amount"] = json!("400");
                c["shipping"]["tax_lines"] = json!([]);
            }),
            "cart.shipping.amount",
        ),
    ] {
        let reply = place(&stack, &cart).await;
        assert_eq!(
            (reply.status, reply.code()),
            (422, "cart_invalid"),
            "{reply:?}"
        );
        assert_eq!(reply.error_fields(), [member], "{reply:?}");
        assert!(
            reply.body["detail"]
                .as_str()
                .unwrap()
                .contains(&member[5..]),
            "{reply:?}"
        );
    }
    assert!(stack.stored_orders().await.is_empty());
}

/// The seed's cart has none of the new members: its order is 75.00 as ever, and its
/// stored item carries nothing new.
#[tokio::test]
async fn the_seed_cart_is_priced_as_it_always_was() {
    let stack = Stack::new().await;
    stack.put_demo_cart().await;
    let created = stack
        .send(
            Call::new("POST", "/api/orders")
                .bearer(&token("user789", ""))
                .json(&checkout("abc123")),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.body["order_id"].as_str().unwrap();
    let reply = stack
        .send(Call::new("GET", &format!("/api/orders/{id}")).bearer(&token("user789", "")))
        .await;
    let order = &reply.body;
    assert_eq!(
        totals(&reply.text),
        ["75.00", "0.00", "0.00", "0.00", "75.00"]
    );
    assert_eq!(order["discounts"], json!([]));
    assert!(order.get("shipping").is_none());
    assert_eq!(members(&reply.text, "discount"), ["0.00", "0.00"]);
    assert_eq!(order["items"][0]["tax_lines"], json!([]));

    let stored = stack.stored_order(id).await.unwrap();
    for member in ["shipping", "discounts", "taxes_included"] {
        assert!(!stored.contains_key(member), "{member}");
    }
    for line in stored["items"].as_l().unwrap() {
        let line = line.as_m().unwrap();
        assert!(!line.contains_key("discount") && !line.contains_key("tax_lines"));
    }
}

/// With Stripe on (localstripe), the card order's PaymentIntent is for the total with
/// shipping, discount and tax, in minor units.
#[tokio::test]
async fn the_payment_intent_is_for_the_total() {
    let base = std::env::var("STRIPE_API_BASE").expect(
        "STRIPE_API_BASE is not set: run the tests with `make test`, which starts localstripe",
    );
    let stack = Stack::with_settings(|s| {
        s.with("STRIPE_SECRET_KEY", "sk_test_orders_tests")
            .with("STRIPE_API_BASE", &base)
            .with("STRIPE_WEBHOOK_SECRET", "whsec_money_tests")
    })
    .await;
    let created = place(&stack, &issue_cart(&unique("c"))).await;
    assert_eq!(created.status, 201, "{created:?}");
    let intent = created.body["payment"]["intent_id"].as_str().unwrap();
    let answer = reqwest::Client::new()
        .get(format!("{base}/v1/payment_intents/{intent}"))
        .bearer_auth("sk_test_orders_tests")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at_stripe: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(at_stripe["amount"], 2487, "{at_stripe}");
    assert_eq!(at_stripe["currency"], "eur");
}

/// Two VAT rates, a discount split over both lines, shipping at the standard rate:
/// 30.70 − 4.00 + 4.90 + 4.88 = 36.48.
fn two_rate_cart(cart_id: &str) -> Value {
    json!({
        "cart_id": cart_id, "user_id": USER, "currency": "EUR",
        "items": [
            {"product_id": "p001", "name": "USB Cable", "quantity": 2, "price": "10.00",
             "tax_lines": [{"name": "VAT", "rate": "0.19", "amount": "3.30"}]},
            {"product_id": "b042", "name": "Cookbook", "quantity": 1, "price": "10.70",
             "tax_lines": [{"name": "VAT", "rate": "0.07", "amount": "0.65"}]}
        ],
        "shipping": {"method": "dhl_paket", "name": "DHL Paket", "amount": "4.90",
                     "tax_lines": [{"name": "VAT", "rate": "0.19", "amount": "0.93"}]},
        "discounts": [{"code": "WELCOME10", "amount": "4.00"}]
    })
}

/// The order's creation event carries its money lines, and the events schema
/// (docs/events.schema.json, which webhooks subscribers read) accepts it.
#[tokio::test]
async fn events_carry_the_money_lines_and_match_their_schema() {
    use orders::adapters::dynamo::order_item::order_from_item;
    use orders::events::OrderEvent;

    let stack = Stack::new().await;
    let reply = order_of(&stack, &two_rate_cart(&unique("c"))).await;
    let id = reply.body["order_id"].as_str().unwrap();
    let order = order_from_item(&stack.stored_order(id).await.unwrap()).unwrap();
    let event = OrderEvent::for_change(None, &order).expect("the creation");
    let text = serde_json::to_string(&event).unwrap();
    assert_eq!(totals(&text), ["30.70", "4.00", "4.90", "4.88", "36.48"]);
    assert_eq!(members(&text, "discount"), ["2.61", "1.39"]);

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/events.schema.json");
    let mut schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    schema["$ref"] = json!("#/$defs/OrderEvent");
    let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");
    let instance: Value = serde_json::from_str(&text).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

/// The tax invoice of a confirmed order: per line its discount, net, rate and tax;
/// shipping as a line; a summary per rate that adds up to the totals; and a PDF
/// whose text holds every one of those amounts.
#[tokio::test]
async fn the_tax_invoice_shows_lines_shipping_and_a_summary_per_rate() {
    use crate::notifications::{last_event, notify};

    let stack = Stack::new().await;
    let notifications = stack.wiring.notifications().unwrap();
    let reply = order_of(&stack, &two_rate_cart(&unique("c"))).await;
    let id = reply.body["order_id"].as_str().unwrap().to_string();
    stack.advance(&id, &["confirmed"]).await;
    assert!(
        notify(&notifications, vec![last_event(&stack, &id).await])
            .await
            .is_empty()
    );

    let call = || Call::new("GET", &format!("/api/orders/{id}/invoice")).bearer(&token(USER, ""));
    let json = stack.send(call()).await;
    assert_eq!(json.status, 200, "{json:?}");
    let invoice = &json.body;
    let text = &json.text;
    assert_eq!(totals(text), ["30.70", "4.00", "4.90", "4.88", "36.48"]);
    // Per line: amount, discount, net (what the tax is on), tax.
    assert_eq!(members(text, "net")[..3], ["17.39", "9.31", "4.90"]);
    assert_eq!(members(text, "tax")[..3], ["3.30", "0.65", "0.93"]);
    assert_eq!(invoice["lines"][0]["tax_lines"][0]["rate"], "0.19");
    assert_eq!(invoice["lines"][1]["tax_lines"][0]["rate"], "0.07");
    assert_eq!(invoice["shipping"]["description"], "DHL Paket");
    // One row per rate: 17.39 + 4.90 at 19 %, 9.31 at 7 %.
    let summary = &invoice["tax_summary"];
    assert_eq!(summary.as_array().unwrap().len(), 2);
    assert_eq!(
        (&summary[0]["name"], &summary[0]["rate"]),
        (&json!("VAT"), &json!("0.19"))
    );
    assert_eq!(summary[1]["rate"], "0.07");
    let at = text.find("\"tax_summary\"").unwrap();
    assert_eq!(members(&text[at..], "net"), ["22.29", "9.31"]);
    assert_eq!(members(&text[at..], "tax")[..2], ["4.23", "0.65"]);
    // Nets and taxes add up to the total: 22.29 + 9.31 + 4.23 + 0.65 = 36.48.
    assert_eq!(invoice["issue_date"], invoice["supply_date"]);
    assert_eq!(invoice["seller"]["tax_id"], "US-TEST-9");
    assert_eq!(invoice["buyer"]["name"], "Jane Doe");

    let pdf = stack.send(call().header("accept", "application/pdf")).await;
    assert_eq!(pdf.status, 200);
    let printed = crate::invoices::pdf_text(&pdf.bytes);
    let number = invoice["invoice_number"].as_str().unwrap();
    for expected in [
        number,
        "USB Cable",
        "Cookbook",
        "Shipping: DHL Paket",
        "Tax summary",
        "VAT 19%",
        "VAT 7%",
        "Supply date",
        "Total (EUR)",
    ] {
        assert!(printed.contains(expected), "{expected:?} in:\n{printed}");
    }
    // Every amount of the JSON document is printed, to the cent.
    for member in [
        "amount",
        "discount",
        "net",
        "tax",
        "unit_price",
        "subtotal",
        "discount_total",
        "shipping_total",
        "tax_total",
        "total",
    ] {
        for value in members(text, member) {
            if value.starts_with('[') || value.starts_with('{') {
                continue;
            }
            assert!(printed.contains(&value), "{member} {value} in:\n{printed}");
        }
    }
}

/// `INVOICE_SERIES=4`: eight concurrent confirmations are numbered in the series their
/// order ids fall in (`INV-2026-03-000001`), each series gapless from 1, its counter
/// at what it handed out.
#[tokio::test]
async fn several_invoice_series_are_each_gapless() {
    use crate::notifications::{last_event, notify};
    use orders::domain::OrderId;
    use orders::domain::invoice::{InvoiceNumber, InvoiceSeries};

    let stack = Stack::with_settings(|s| s.with("INVOICE_SERIES", "4")).await;
    let mut events = Vec::new();
    for _ in 0..8 {
        let reply = place(&stack, &issue_cart(&unique("c"))).await;
        assert_eq!(reply.status, 201, "{reply:?}");
        let id = reply.body["order_id"].as_str().unwrap().to_string();
        stack.advance(&id, &["confirmed"]).await;
        events.push((id.clone(), last_event(&stack, &id).await));
    }
    let consumers: Vec<_> = (0..8)
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

    let series = InvoiceSeries::new(4).unwrap();
    let year = time::OffsetDateTime::now_utc().year();
    let mut by_series: std::collections::BTreeMap<u16, Vec<u64>> = Default::default();
    for (id, _) in &events {
        let reply = stack
            .send(
                Call::new("GET", &format!("/api/orders/{id}/invoice"))
                    .bearer(&token("root", ADMIN)),
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let text = reply.body["invoice_number"].as_str().unwrap();
        let number = InvoiceNumber::parse(text).unwrap();
        let expected = series.of(&OrderId::parse(id).unwrap());
        assert_eq!(number.series, expected, "{text}");
        assert_eq!(number.year, year);
        assert!(
            text.starts_with(&format!("INV-{year}-{:02}-", expected.unwrap())),
            "{text}"
        );
        by_series
            .entry(expected.unwrap())
            .or_default()
            .push(number.sequence);
    }
    let items = stack.all_items().await;
    for (series, mut sequences) in by_series {
        sequences.sort_unstable();
        let gapless: Vec<u64> = (1..=sequences.len() as u64).collect();
        assert_eq!(sequences, gapless, "series {series}");
        let counter = items
            .iter()
            .find(|i| i["PK"].as_s().unwrap() == &format!("INVOICE_COUNTER#{year}#{series:02}"))
            .expect("the series' counter");
        assert_eq!(
            counter["last_sequence"].as_n().unwrap(),
            &sequences.len().to_string()
        );
    }
}

/// Names and products in Latin with ß ł ő ğ, Greek and Cyrillic print in the PDF, and
/// the text pypdf extracts from it is the JSON's; a character the font lacks prints as
/// the replacement character, never dropped.
#[tokio::test]
async fn the_pdf_prints_any_script_the_font_has() {
    use crate::notifications::{last_event, notify};

    let stack = Stack::new().await;
    let notifications = stack.wiring.notifications().unwrap();
    let cart_id = unique("c");
    stack
        .put_cart_json(&json!({
            "cart_id": cart_id, "user_id": USER, "currency": "EUR",
            "items": [
                {"product_id": "p1", "name": "Ελληνικό μέλι", "quantity": 1, "price": "12.00"},
                {"product_id": "p2", "name": "Чай «Юлия»", "quantity": 2, "price": "3.50"},
                {"product_id": "p3", "name": "Tee 日本", "quantity": 1, "price": "1.00"}
            ]
        }))
        .await;
    let mut body = checkout(&cart_id);
    body["shipping_address"] = json!({
        "name": "Łukasz Gößling", "address": "Őrség utca 5, Ğebze", "city": "Wrocław",
        "zip": "50-001", "country": "PL"
    });
    let created = stack
        .send(
            Call::new("POST", "/api/orders")
                .bearer(&token(USER, ""))
                .json(&body),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.body["order_id"].as_str().unwrap().to_string();
    stack.advance(&id, &["confirmed"]).await;
    assert!(
        notify(&notifications, vec![last_event(&stack, &id).await])
            .await
            .is_empty()
    );

    let call = || Call::new("GET", &format!("/api/orders/{id}/invoice")).bearer(&token(USER, ""));
    let invoice = stack.send(call()).await.body;
    let pdf = stack.send(call().header("accept", "application/pdf")).await;
    assert_eq!(pdf.status, 200);
    let printed = crate::invoices::pdf_text(&pdf.bytes);

    let mut expected: Vec<String> = vec![invoice["buyer"]["name"].as_str().unwrap().to_string()];
    for line in invoice["buyer"]["address"].as_array().unwrap() {
        expected.push(line.as_str().unwrap().to_string());
    }
    expected.push(
        invoice["lines"][0]["description"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    expected.push(
        invoice["lines"][1]["description"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    assert_eq!(expected[0], "Łukasz Gößling");
    for text in &expected {
        assert!(printed.contains(text.as_str()), "{text:?} in:\n{printed}");
    }
    // DejaVu Sans has no CJK: a visible replacement, one per character.
    assert_eq!(invoice["lines"][2]["description"], "Tee 日本");
    assert!(printed.contains("Tee \u{fffd}\u{fffd}"), "{printed}");
    assert!(!printed.contains('日'));
    // A subset: a few dozen glyphs, not the font's 6,000.
    assert!(pdf.bytes.len() < 48 * 1024, "{} bytes", pdf.bytes.len());
}
