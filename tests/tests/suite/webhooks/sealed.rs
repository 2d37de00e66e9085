//! Webhook signing secrets sealed by KMS in the table (issue 22, item 5): the stored
//! item holds no plaintext, only the deliverer opens it, and deliveries are still
//! signed with the secret the subscriber was shown.

use aws_sdk_dynamodb::types::AttributeValue;
use orders::adapters::dynamo::webhooks::subscription_to_item;
use orders::domain::webhook::{Subscription, WebhookId};
use orders::ports::WebhookStore;
use orders::wiring::LOCAL_MODE;
use orders_tests::webhook_secrets_key;
use time::OffsetDateTime;

use super::*;

/// Local mode (receivers on this machine) with webhook secrets sealed by a new key.
async fn sealed_hooks() -> Hooks {
    let key = webhook_secrets_key().await;
    let stack = Stack::with_settings(|settings| {
        settings
            .with(LOCAL_MODE, "true")
            .with("WEBHOOK_SECRETS_KEY_ID", &key)
    })
    .await;
    Hooks {
        // A store without the key, as every function but the signing ones has.
        store: Arc::new(DynamoWebhookStore::new(
            stack.dynamodb.clone(),
            &stack.table,
        )),
        stack,
        delays: Arc::default(),
    }
}

/// The deliverer as `deliver-webhooks` builds it.
fn wired_deliverer(hooks: &Hooks) -> Deliverer {
    Deliverer(
        hooks
            .stack
            .wiring
            .deliveries()
            .expect("the deliverer builds"),
    )
}

async fn stored_subscription(hooks: &Hooks, id: &str) -> HashMap<String, AttributeValue> {
    hooks
        .stack
        .dynamodb
        .get_item()
        .table_name(&hooks.stack.table)
        .key("PK", AttributeValue::S(format!("WEBHOOK#{id}")))
        .key("SK", AttributeValue::S("WEBHOOK".into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("the subscription is stored")
}

#[tokio::test]
async fn secrets_are_stored_sealed_and_deliveries_are_still_signed_with_them() {
    let hooks = sealed_hooks().await;
    let receiver = Receiver::ok().await;
    let created = hooks.subscribe(&receiver.url, &["*"]).await;
    let id = created["id"].as_str().unwrap();
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{created}");

    // The item holds the KMS ciphertext, and the secret nowhere, in any form.
    let item = stored_subscription(&hooks, id).await;
    assert!(!item.contains_key("secret"), "{item:?}");
    let sealed = item["secret_sealed"].as_b().expect("a binary ciphertext");
    let base64 = secret.trim_start_matches("whsec_");
    let raw = format!("{item:?}");
    assert!(!raw.contains(base64), "{raw}");
    assert!(
        !String::from_utf8_lossy(sealed.as_ref()).contains(base64),
        "the ciphertext is not the secret"
    );

    // Read by a function that may not open it: everything but the secret.
    let shown = hooks.subscription(id).await;
    assert_eq!(shown["url"], receiver.url.as_str());
    assert!(shown.get("secret").is_none(), "{shown}");
    let read = hooks
        .store
        .get(&WebhookId::parse(id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(read.secret.is_none());

    // The deliverer opens it and signs with it.
    let event = hooks.order_event("cart-sealed", false).await;
    let response = wired_deliverer(&hooks)
        .handle(batch(vec![event_message("m1", &event, 1)]))
        .await;
    assert_eq!(failed_ids(&response), Vec::<String>::new());
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert!(
        received[0].verifies_with(secret),
        "signed with the shown secret"
    );
}

#[tokio::test]
async fn subscriptions_stored_in_plain_text_before_the_key_still_deliver() {
    let hooks = sealed_hooks().await;
    let receiver = Receiver::ok().await;
    let secret = Secret::generate().unwrap();
    let before = Subscription {
        id: WebhookId::generate().unwrap(),
        url: receiver.url.clone(),
        events: vec!["*".into()],
        description: Some("stored before sealing".into()),
        secret: Some(secret.clone()),
        enabled: true,
        created_at: OffsetDateTime::now_utc(),
        disabled_at: None,
        disabled_reason: None,
    };
    hooks
        .stack
        .dynamodb
        .put_item()
        .table_name(&hooks.stack.table)
        .set_item(Some(subscription_to_item(&before)))
        .send()
        .await
        .unwrap();

    let event = hooks.order_event("cart-plain", false).await;
    let response = wired_deliverer(&hooks)
        .handle(batch(vec![event_message("m1", &event, 1)]))
        .await;
    assert_eq!(failed_ids(&response), Vec::<String>::new());
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert!(received[0].verifies_with(&secret.reveal()));
}

#[tokio::test]
async fn a_deliverer_without_the_key_sends_nothing_and_the_event_comes_back() {
    let hooks = sealed_hooks().await;
    let receiver = Receiver::ok().await;
    hooks.subscribe(&receiver.url, &["*"]).await;
    let event = hooks.order_event("cart-no-key", false).await;
    // `hooks.store` cannot open sealed secrets: nothing unsigned goes out.
    let response = hooks
        .local_deliverer()
        .handle(batch(vec![event_message("m1", &event, 1)]))
        .await;
    assert_eq!(failed_ids(&response), ["m1"]);
    assert!(receiver.received().is_empty());
}
