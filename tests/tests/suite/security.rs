//! Issue 23's findings outside payments (those are in `payments::security`), each a
//! test that fails without its fix: invisible characters in addresses and reasons (8),
//! whose email a message goes to (9), the refund and webhook scopes (11), and the
//! document saying what the API does (12).

use orders_tests::{ADMIN, Call, Stack, checkout, token};
use serde_json::json;

const USER: &str = "user789";

/// Defect 8: U+202E (right-to-left override) and zero-width characters are refused in
/// an address and in a reason, as in cart item names; nothing is written.
#[tokio::test]
async fn invisible_direction_and_zero_width_characters_are_refused() {
    let stack = Stack::new().await;
    stack.put_demo_cart().await;
    let mut body = checkout("abc123");
    body["shipping_address"]["name"] = json!("Jane \u{202e}eoD");
    body["shipping_address"]["address"] = json!("123\u{200b} Main St");
    let reply = stack
        .send(
            Call::new("POST", "/api/orders")
                .bearer(&token(USER, ""))
                .json(&body),
        )
        .await;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(
        reply.error_fields(),
        ["shipping_address.name", "shipping_address.address"]
    );
    assert!(stack.stored_orders().await.is_empty());

    let order_id = stack.order_for(USER, "cart-bidi").await;
    for (method, uri, body) in [
        (
            "DELETE",
            format!("/api/orders/{order_id}"),
            json!({ "reason": "changed my mind\u{2066}" }),
        ),
        (
            "PUT",
            format!("/api/orders/{order_id}/status"),
            json!({ "status": "confirmed", "reason": "paid\u{feff}" }),
        ),
    ] {
        let reply = stack
            .send(
                Call::new(method, &uri)
                    .bearer(&token("admin", ADMIN))
                    .json(&body),
            )
            .await;
        assert_eq!(reply.status, 400, "{method}: {reply:?}");
        assert_eq!(reply.error_fields(), ["reason"], "{method}");
    }
    let stored = stack.stored_order(&order_id).await.unwrap();
    assert_eq!(stored["version"].as_n().unwrap(), "1");
}

/// Defect 12: an empty `cursor=` (which the document allows) is the first page, on
/// both lists; a schema-valid create naming an unknown cart is the 404 the document
/// lists, not a 400.
#[tokio::test]
async fn an_empty_cursor_is_the_first_page_and_an_unknown_cart_is_404() {
    let stack = Stack::new().await;
    let order_id = stack.order_for(USER, "cart-cursor").await;
    let page = stack
        .send(Call::new("GET", "/api/orders?cursor=").bearer(&token(USER, "")))
        .await;
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(page.body["orders"][0]["order_id"], order_id.as_str());
    let hook = stack
        .send(
            Call::new("POST", "/api/webhooks")
                .bearer(&token("admin", ADMIN))
                .json(&json!({ "url": "https://hooks.example.com/orders", "events": ["order.created"] })),
        )
        .await;
    assert_eq!(hook.status, 201, "{hook:?}");
    let id = hook.body["id"].as_str().unwrap();
    let deliveries = stack
        .send(
            Call::new("GET", &format!("/api/webhooks/{id}/deliveries?cursor="))
                .bearer(&token("admin", ADMIN)),
        )
        .await;
    assert_eq!(deliveries.status, 200, "{deliveries:?}");

    let unknown = stack
        .send(
            Call::new("POST", "/api/orders")
                .bearer(&token(USER, ""))
                .json(&checkout("no-such-cart")),
        )
        .await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (404, "cart_not_found"),
        "{unknown:?}"
    );
}

/// Defect 9: a token's `email` is the order's contact only when `email_verified`; a
/// message to an address the create named (anyone's) does not greet with the
/// caller's shipping name, while one to the account's own verified address does.
#[tokio::test]
async fn only_verified_emails_are_taken_and_strangers_are_not_greeted_by_the_caller() {
    use crate::notifications::{address, last_event, notify, place, sent_emails, stored};
    let stack = Stack::new().await;
    let notifications = stack.wiring.notifications().unwrap();
    let mint = |user: &str, claims: serde_json::Value| {
        orders::auth::issue_hs256_token_with_claims(
            orders_tests::SECRET.as_bytes(),
            user,
            "",
            &claims,
            std::time::Duration::from_secs(3600),
        )
    };
    // Unverified (absent, false, "false"): not taken.
    let typed = address("typed");
    for verified in [None, Some(json!(false)), Some(json!("false"))] {
        let mut claims = json!({ "email": typed });
        if let Some(flag) = verified {
            claims["email_verified"] = flag;
        }
        let id = place(&stack, "mallory", &mint("mallory", claims), json!({})).await;
        assert_eq!(stored(&stack, &id).await.contact.email, None);
    }
    // Verified: taken, and its mails greet by the shipping name.
    let own = address("own");
    let verified = mint("jane", json!({ "email": own, "email_verified": "true" }));
    let id = place(&stack, "jane", &verified, json!({})).await;
    assert!(stored(&stack, &id).await.contact.email_verified);
    assert!(
        notify(&notifications, vec![last_event(&stack, &id).await])
            .await
            .is_empty()
    );
    let mail = &sent_emails(&own).await[0];
    assert!(
        mail["text"]
            .as_str()
            .unwrap()
            .starts_with("Hello Jane Doe,"),
        "{mail}"
    );

    // A stranger's address in the body, a spoofing "name": no greeting by it.
    let victim = address("victim");
    let mut body = json!({ "contact": { "email": victim } });
    body["shipping_address"] = checkout("x")["shipping_address"].clone();
    body["shipping_address"]["name"] = json!("Claim your prize at evil.example");
    let id = place(&stack, "mallory", &token("mallory", ""), body).await;
    assert!(!stored(&stack, &id).await.contact.email_verified);
    assert!(
        notify(&notifications, vec![last_event(&stack, &id).await])
            .await
            .is_empty()
    );
    let mail = &sent_emails(&victim).await[0];
    for part in ["text", "html"] {
        let text = mail[part].as_str().unwrap();
        assert!(!text.contains("evil.example"), "{part}: {text}");
    }
    assert!(
        mail["text"].as_str().unwrap().starts_with("Hello,"),
        "{mail}"
    );
}

/// Defect 9: one address gets at most a few messages a day about unpaid orders
/// (`UNPAID_MESSAGES_PER_RECIPIENT_PER_DAY`), however many orders name it; the
/// message past the cap is recorded as handled, not sent, and not retried.
#[tokio::test]
async fn messages_about_unpaid_orders_are_capped_per_recipient_and_day() {
    use crate::notifications::{address, last_event, notify, place};
    use orders::domain::notification::UNPAID_MESSAGES_PER_RECIPIENT_PER_DAY as CAP;
    let stack = Stack::new().await;
    let notifications = stack.wiring.notifications().unwrap();
    let victim = address("victim");
    // Written differently each time: the cap is the address's, whatever its case.
    let mut events = Vec::new();
    for i in 0..=CAP {
        let written = if i % 2 == 0 {
            victim.clone()
        } else {
            victim.to_uppercase()
        };
        let body = json!({ "contact": { "email": written } });
        let id = place(&stack, "mallory", &token("mallory", ""), body).await;
        events.push(last_event(&stack, &id).await);
    }
    let redelivered = events.last().cloned().unwrap();
    assert!(notify(&notifications, events).await.is_empty());
    assert!(notify(&notifications, vec![redelivered]).await.is_empty());
    // The emulator matches recipients in any case.
    let sent = crate::notifications::sent_emails(&victim).await;
    assert_eq!(sent.len(), CAP as usize);
}

/// Defect 10: the provider webhooks (anonymous) have their own route throttle, stricter
/// than the stage's, and an optional WAF (off by default) puts per-IP and per-caller
/// rate rules in front of the API.
#[test]
fn provider_webhooks_are_throttled_apart_and_a_waf_can_front_the_api() {
    use serde_norway::Value;
    let text = std::fs::read_to_string(orders_tests::template_path()).unwrap();
    let template: Value = serde_norway::from_str(&text).unwrap();
    let reference = |value: &Value| match value {
        Value::Tagged(tagged) => tagged.value.as_str().map(str::to_string),
        _ => None,
    };
    let default = |name: &str| template["Parameters"][name]["Default"].as_u64().unwrap();
    let route = &template["Resources"]["StripeWebhookFunction"]["Properties"]["Events"]["Api"]["Properties"]
        ["RouteSettings"];
    for (setting, parameter, stage) in [
        (
            "ThrottlingBurstLimit",
            "ProviderWebhookBurstLimit",
            "ThrottlingBurstLimit",
        ),
        (
            "ThrottlingRateLimit",
            "ProviderWebhookRateLimit",
            "ThrottlingRateLimit",
        ),
    ] {
        assert_eq!(reference(&route[setting]).as_deref(), Some(parameter));
        assert!(default(parameter) < default(stage), "{parameter}");
    }

    assert_eq!(
        template["Parameters"]["EnableWaf"]["Default"].as_str(),
        Some("false")
    );
    let acl = &template["Resources"]["ApiWebAcl"];
    assert_eq!(acl["Condition"].as_str(), Some("WithWaf"));
    let rules = acl["Properties"]["Rules"].as_sequence().unwrap();
    let keys: Vec<&str> = rules
        .iter()
        .map(|rule| {
            rule["Statement"]["RateBasedStatement"]["AggregateKeyType"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(keys, ["IP", "IP", "CUSTOM_KEYS"]);
    assert!(rules.iter().all(|r| r["Action"].get("Block").is_some()));
    let distribution = &template["Resources"]["ApiDistribution"];
    assert_eq!(distribution["Condition"].as_str(), Some("WithWaf"));
    assert!(
        distribution["Properties"]["DistributionConfig"]
            .get("WebACLId")
            .is_some()
    );
}
