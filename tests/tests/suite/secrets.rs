//! Provider keys come from Secrets Manager by ARN (issue 22, item 5): a function's
//! settings hold the ARN, never the key; the key is read once per instance (a webhook
//! secret before the first poll, a provider's key in the background from init) and
//! read again once when the provider answers 401, so a rotation needs no redeploy.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use orders::domain::{Currency, Money, OrderId};
use orders::ports::{CancelOutcome, PaymentError};
use orders::wiring::{Settings, Wiring};
use orders_tests::{Stack, unique};
use tokio::net::TcpListener;

/// A Stripe stand-in that knows one key: requests with any other get 401, as Stripe
/// answers a rolled or revoked key. Records the key of every request.
struct OneKeyStripe {
    url: String,
    keys_seen: Arc<Mutex<Vec<String>>>,
}

impl OneKeyStripe {
    async fn start(valid: &'static str) -> OneKeyStripe {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let keys_seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = keys_seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: http::Request<Incoming>| {
                        let log = log.clone();
                        async move {
                            let key = request
                                .headers()
                                .get("authorization")
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.strip_prefix("Bearer "))
                                .unwrap_or_default()
                                .to_string();
                            log.lock().unwrap().push(key.clone());
                            let (status, body) = if key == valid {
                                (200, r#"{"id": "pi_rotation", "status": "canceled"}"#)
                            } else {
                                (401, r#"{"error": {"message": "Invalid API Key provided"}}"#)
                            };
                            let mut response = http::Response::new(Full::new(Bytes::from(body)));
                            *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        OneKeyStripe { url, keys_seen }
    }

    fn keys_seen(&self) -> Vec<String> {
        self.keys_seen.lock().unwrap().clone()
    }
}

fn localstripe() -> String {
    std::env::var("STRIPE_API_BASE").expect(
        "STRIPE_API_BASE is not set: run the tests with `make test`, which starts localstripe",
    )
}

/// The name the harness gives the secret of `key` for `stack`
/// (`orders_dev::secrets::keys_by_arn`).
fn secret_name(stack: &Stack, key: &str) -> String {
    format!("{}/{key}", stack.table)
}

#[tokio::test]
async fn a_stacks_functions_are_given_arns_and_read_the_keys_from_secrets_manager() {
    let stack = Stack::with_settings(|settings| {
        settings
            .with("STRIPE_API_BASE", localstripe())
            .with("STRIPE_SECRET_KEY", "sk_test_from_secrets_manager")
            .with("STRIPE_WEBHOOK_SECRET", "whsec_from_secrets_manager")
    })
    .await;
    let settings = stack.wiring.settings();
    for key in ["STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"] {
        assert_eq!(settings.get(key), None, "{key} is not in the settings");
        let arn = settings.get(&format!("{key}_ARN")).unwrap_or_default();
        assert!(arn.starts_with("arn:aws:secretsmanager:"), "{key}: {arn}");
    }
    // The gateway works with the key read by ARN: localstripe makes an intent.
    let gateway = stack
        .wiring
        .payment_gateway()
        .unwrap()
        .expect("payments on");
    let order = OrderId::for_cart(&unique("cart"));
    let total = Money::from_minor(7500, Currency::from_code("USD").unwrap());
    let intent = gateway
        .create_intent(&order, &total, &unique("key"))
        .await
        .expect("an intent, made with the key from Secrets Manager");
    assert!(intent.intent_id.starts_with("pi_"), "{intent:?}");

    // The function that records Stripe's events holds the signing secret only, the
    // one that refunds the Stripe key only: each is built from its own settings.
    assert!(stack.wiring.stripe_webhook_api().is_ok());
    assert!(stack.wiring.refund_api().is_ok());
}

/// A customer's list, `limit` 1, from `cursor`, as `list-orders` would answer it.
async fn list_one(
    wiring: &Wiring,
    user: &str,
    cursor: Option<&str>,
) -> Result<orders::services::orders::Listed, orders::services::orders::OrderError> {
    let caller = orders::domain::Principal {
        user_id: user.to_string(),
        admin: false,
        fulfillment: false,
        refunds: false,
        webhooks: false,
        email: None,
        phone: None,
    };
    let query = orders::ports::OrderQuery {
        user_id: None,
        status: None,
        created_after: None,
        created_before: None,
        limit: 1,
        after: None,
    };
    wiring
        .order_service()
        .unwrap()
        .list(&caller, query, cursor)
        .await
}

#[tokio::test]
async fn list_cursors_are_signed_with_the_key_read_by_arn_and_rotating_it_invalidates_them() {
    let stack = Stack::new().await;
    let settings = stack.wiring.settings().clone();
    assert_eq!(settings.get("CURSOR_SECRET"), None, "not in the settings");
    let arn = settings.get("CURSOR_SECRET_ARN").unwrap_or_default();
    assert!(arn.starts_with("arn:aws:secretsmanager:"), "{arn}");
    let user = unique("lister");
    for _ in 0..2 {
        crate::notifications::place(
            &stack,
            &user,
            &orders_tests::token(&user, ""),
            serde_json::json!({}),
        )
        .await;
    }
    let first = list_one(&stack.wiring, &user, None).await.unwrap();
    let cursor = first.next_cursor.expect("a second page");
    let second = list_one(&stack.wiring, &user, Some(&cursor)).await.unwrap();
    assert_eq!(second.orders.len(), 1);

    // Rotated: an instance started since reads the new key, and refuses the cursor
    // signed with the old one (the client starts again from the first page).
    let sdk = orders::adapters::aws::sdk_config().await;
    orders_dev::secrets::put_secret(
        &sdk,
        &secret_name(&stack, "CURSOR_SECRET"),
        "a-rotated-cursor-secret-of-at-least-32-bytes",
    )
    .await
    .unwrap();
    let fresh = Wiring::load(settings, sdk).await;
    let refused = list_one(&fresh, &user, Some(&cursor)).await;
    assert!(
        matches!(
            refused,
            Err(orders::services::orders::OrderError::BadCursor)
        ),
        "{:?}",
        refused.map(|l| l.next_cursor)
    );
    let again = list_one(&fresh, &user, None).await.unwrap();
    let cursor = again.next_cursor.expect("a second page");
    assert!(list_one(&fresh, &user, Some(&cursor)).await.is_ok());
}

#[tokio::test]
async fn a_webhook_secret_that_cannot_be_read_stops_the_function_that_needs_it_naming_the_setting()
{
    let sdk = orders::adapters::aws::sdk_config().await;
    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:orders/nothing-here";
    let settings = Settings::default()
        .with("TABLE_NAME", "orders")
        .with("JWT_SECRET", "a-deployed-secret-of-at-least-32-bytes")
        .with("STRIPE_SECRET_KEY", "sk_test_given")
        .with("STRIPE_WEBHOOK_SECRET_ARN", missing);
    let wiring = Wiring::load(settings, sdk).await;
    let why = match wiring.stripe_webhook_api() {
        Ok(_) => panic!("built without its signing secret"),
        Err(err) => err.to_string(),
    };
    assert!(why.starts_with("STRIPE_WEBHOOK_SECRET: "), "{why}");
    // A function that does not use the secret is not held up by it.
    assert!(wiring.order_api().is_ok());
    assert!(wiring.refund_api().is_ok());
}

/// A provider's key is read in the background (its read overlaps the first request's
/// own work): a secret that cannot be read, or holds something that is not a Stripe
/// key, fails the calls that need it with the secret named, and the next call reads
/// it again, so fixing the secret needs no new instance.
#[tokio::test]
async fn a_provider_key_that_cannot_be_read_fails_its_calls_until_the_secret_is_fixed() {
    let sdk = orders::adapters::aws::sdk_config().await;
    let name = format!("orders/{}", unique("stripe-key"));
    let settings = Settings::default()
        .with("TABLE_NAME", "orders")
        .with("JWT_SECRET", "a-deployed-secret-of-at-least-32-bytes")
        .with("STRIPE_API_BASE", localstripe())
        .with("STRIPE_SECRET_KEY_ARN", &name);
    let wiring = Wiring::load(settings, sdk.clone()).await;
    assert!(wiring.refund_api().is_ok(), "built before the key is read");
    let gateway = wiring.payment_gateway().unwrap().expect("payments on");
    let order = OrderId::for_cart(&unique("cart"));
    let total = Money::from_minor(1250, Currency::from_code("USD").unwrap());

    let no_secret = gateway.create_intent(&order, &total, &unique("key")).await;
    assert!(
        matches!(&no_secret, Err(PaymentError::Unavailable(why)) if why.contains(&name)),
        "{no_secret:?}"
    );
    orders_dev::secrets::put_secret(&sdk, &name, "pk_test_a_publishable_key")
        .await
        .unwrap();
    let not_a_secret_key = gateway.create_intent(&order, &total, &unique("key")).await;
    assert!(
        matches!(&not_a_secret_key, Err(PaymentError::Unavailable(why)) if why.contains("is not a Stripe secret key")),
        "{not_a_secret_key:?}"
    );
    orders_dev::secrets::put_secret(&sdk, &name, "sk_test_fixed_in_the_secret")
        .await
        .unwrap();
    let intent = gateway
        .create_intent(&order, &total, &unique("key"))
        .await
        .expect("an intent, once the secret holds a key");
    assert!(intent.intent_id.starts_with("pi_"), "{intent:?}");
}

/// Loading does not wait for a provider key: with Secrets Manager silent, the
/// function is built and only the call that needs the key waits for it.
#[tokio::test]
async fn loading_does_not_wait_for_a_provider_keys_read() {
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    // Accepts and never answers.
    let _held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            open.push(stream);
        }
    });
    let sdk = orders::adapters::aws::sdk_config()
        .await
        .into_builder()
        .endpoint_url(silent_url)
        .build();
    let settings = Settings::default()
        .with("TABLE_NAME", "orders")
        .with("JWT_SECRET", "a-deployed-secret-of-at-least-32-bytes")
        .with(
            "STRIPE_SECRET_KEY_ARN",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:orders/silent",
        );
    // A deadline, not a measurement: the read itself cannot finish before the SDK's
    // own timeout (several seconds against a silent endpoint).
    let wiring = tokio::time::timeout(
        std::time::Duration::from_millis(1500),
        Wiring::load(settings, sdk),
    )
    .await
    .expect("Wiring::load returned without waiting for the key");
    assert!(wiring.refund_api().is_ok());
}

#[tokio::test]
async fn a_rotated_key_is_read_again_once_on_a_401_and_the_call_retried() {
    let stripe = OneKeyStripe::start("sk_test_rotated").await;
    let stack = Stack::with_settings(|settings| {
        settings
            .with("STRIPE_API_BASE", &stripe.url)
            .with("STRIPE_SECRET_KEY", "sk_test_before_rotation")
            .with("STRIPE_WEBHOOK_SECRET", "whsec_rotation")
    })
    .await;
    let gateway = stack
        .wiring
        .payment_gateway()
        .unwrap()
        .expect("payments on");

    // The instance has read its key (on the task started at init), then it is
    // rotated in Secrets Manager.
    let held = stack
        .wiring
        .provider_key("STRIPE_SECRET_KEY")
        .unwrap()
        .expect("given by ARN")
        .current()
        .await
        .unwrap();
    assert_eq!(&*held, "sk_test_before_rotation");
    let emulator = orders::adapters::aws::sdk_config().await;
    orders_dev::secrets::put_secret(
        &emulator,
        &secret_name(&stack, "STRIPE_SECRET_KEY"),
        "sk_test_rotated",
    )
    .await
    .unwrap();

    let outcome = gateway.cancel_intent("pi_rotation").await;
    assert!(
        matches!(outcome, Ok(CancelOutcome::Cancelled)),
        "{outcome:?}"
    );
    assert_eq!(
        stripe.keys_seen(),
        ["sk_test_before_rotation", "sk_test_rotated"],
        "refused with the old key, then retried once with the new one"
    );
    // Kept from then on: no 401, no second read.
    let again = gateway.cancel_intent("pi_rotation").await;
    assert!(matches!(again, Ok(CancelOutcome::Cancelled)), "{again:?}");
    assert_eq!(stripe.keys_seen().len(), 3);
    assert_eq!(stripe.keys_seen()[2], "sk_test_rotated");
}

#[tokio::test]
async fn a_revoked_key_still_in_the_secret_is_refused_without_a_retry() {
    let stripe = OneKeyStripe::start("sk_test_some_other_key").await;
    let stack = Stack::with_settings(|settings| {
        settings
            .with("STRIPE_API_BASE", &stripe.url)
            .with("STRIPE_SECRET_KEY", "sk_test_revoked")
            .with("STRIPE_WEBHOOK_SECRET", "whsec_rotation")
    })
    .await;
    let gateway = stack
        .wiring
        .payment_gateway()
        .unwrap()
        .expect("payments on");
    let outcome = gateway.cancel_intent("pi_rotation").await;
    assert!(
        matches!(&outcome, Err(PaymentError::Refused(why)) if why.starts_with("401")),
        "{outcome:?}"
    );
    // The secret was read again and held the same key: the call is not sent twice.
    assert_eq!(stripe.keys_seen(), ["sk_test_revoked"]);
}

// ---------------------------------------------------------------------------------
// template.yaml: each function is given only the keys it uses, IAM lets it read only
// those, and the item kinds it may touch are named.
// ---------------------------------------------------------------------------------

mod template {
    use std::collections::{BTreeMap, BTreeSet};

    use orders::wiring::{PROVIDER_KEYS, arn_setting};
    use serde_norway::Value;

    fn template() -> Value {
        let text = std::fs::read_to_string(orders_tests::template_path()).unwrap();
        serde_norway::from_str(&text).unwrap()
    }

    fn functions(template: &Value) -> BTreeMap<String, Value> {
        template["Resources"]
            .as_mapping()
            .unwrap()
            .iter()
            .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
            .map(|(name, r)| (name.as_str().unwrap().to_string(), r["Properties"].clone()))
            .collect()
    }

    /// The names `!Ref` names anywhere in `value` (through `!If` and lists).
    fn refs(value: &Value, out: &mut BTreeSet<String>) {
        match value {
            Value::Tagged(tagged) => {
                if tagged.tag.to_string().trim_start_matches('!') == "Ref"
                    && let Some(name) = tagged.value.as_str()
                    && !name.starts_with("AWS::")
                {
                    out.insert(name.to_string());
                }
                refs(&tagged.value, out);
            }
            Value::Sequence(items) => items.iter().for_each(|v| refs(v, out)),
            Value::Mapping(map) => map.values().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    fn text(value: &Value) -> String {
        serde_norway::to_string(value).unwrap()
    }

    /// Every statement of the function's inline policies (through `!If`).
    fn statements(function: &Value) -> Vec<Value> {
        fn walk(value: &Value, out: &mut Vec<Value>) {
            match value {
                Value::Mapping(map) => {
                    if let Some(Value::Sequence(statements)) = map.get("Statement") {
                        out.extend(statements.iter().cloned());
                    } else {
                        map.values().for_each(|v| walk(v, out));
                    }
                }
                Value::Sequence(items) => items.iter().for_each(|v| walk(v, out)),
                Value::Tagged(tagged) => walk(&tagged.value, out),
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(&function["Policies"], &mut out);
        out
    }

    #[test]
    fn each_function_is_given_only_the_keys_it_uses_and_may_read_only_those() {
        let template = template();
        let expected: BTreeMap<&str, &[&str]> = BTreeMap::from([
            ("CreateOrderFunction", &["STRIPE_SECRET_KEY"][..]),
            ("StripeWebhookFunction", &["STRIPE_WEBHOOK_SECRET"][..]),
            ("CreateRefundFunction", &["STRIPE_SECRET_KEY"][..]),
            // Returns refund through Stripe (issue 20).
            ("ReceiveReturnFunction", &["STRIPE_SECRET_KEY"][..]),
            ("RefundReturnFunction", &["STRIPE_SECRET_KEY"][..]),
            ("SettlePaymentsFunction", &["STRIPE_SECRET_KEY"][..]),
            // Approving a return buys its label (issue 20).
            ("ApproveReturnFunction", &["SHIPPO_API_TOKEN"][..]),
            ("CreateShipmentFunction", &["SHIPPO_API_TOKEN"][..]),
            ("FulfillOrdersFunction", &["SHIPPO_API_TOKEN"][..]),
            ("VoidShipmentFunction", &["SHIPPO_API_TOKEN"][..]),
            (
                "ShippoWebhookFunction",
                &["SHIPPO_API_TOKEN", "SHIPPO_WEBHOOK_TOKEN"][..],
            ),
            (
                "NotifyCustomersFunction",
                &["SENDGRID_API_KEY", "TWILIO_AUTH_TOKEN"][..],
            ),
            // The functions that sign and read list cursors.
            ("ListOrdersFunction", &["CURSOR_SECRET"][..]),
            ("ExportCustomerDataFunction", &["CURSOR_SECRET"][..]),
        ]);
        let globals = &template["Globals"]["Function"]["Environment"]["Variables"];
        for key in PROVIDER_KEYS {
            assert!(globals.get(key).is_none() && globals.get(arn_setting(key)).is_none());
        }
        for (name, function) in functions(&template) {
            let variables = &function["Environment"]["Variables"];
            assert!(
                !text(variables).contains("resolve:secretsmanager"),
                "{name}: a key resolved into the environment"
            );
            let mut given = BTreeSet::new();
            let mut given_arns = BTreeSet::new();
            for key in PROVIDER_KEYS {
                assert!(variables.get(key).is_none(), "{name} holds {key} itself");
                if let Some(arn) = variables.get(arn_setting(key)) {
                    given.insert(key);
                    refs(arn, &mut given_arns);
                }
            }
            let wanted: BTreeSet<&str> = expected
                .get(name.as_str())
                .map(|keys| keys.iter().copied().collect())
                .unwrap_or_default();
            assert_eq!(given, wanted, "{name}: the keys it is given");

            let mut readable = BTreeSet::new();
            for statement in statements(&function) {
                if text(&statement["Action"]).contains("secretsmanager:") {
                    assert_eq!(
                        text(&statement["Action"]).trim(),
                        "- secretsmanager:GetSecretValue",
                        "{name}"
                    );
                    refs(&statement["Resource"], &mut readable);
                }
            }
            assert_eq!(readable, given_arns, "{name}: the secrets IAM lets it read");
        }
    }

    #[test]
    fn only_the_deliverer_opens_webhook_secrets_and_only_their_creator_seals_them() {
        let template = template();
        let mut encrypt = BTreeSet::new();
        let mut decrypt = BTreeSet::new();
        let mut given_key = BTreeSet::new();
        for (name, function) in functions(&template) {
            for statement in statements(&function) {
                let actions = text(&statement["Action"]);
                assert!(!actions.contains("kms:*"), "{name}");
                if actions.contains("kms:Encrypt") {
                    encrypt.insert(name.clone());
                }
                if actions.contains("kms:Decrypt") {
                    decrypt.insert(name.clone());
                }
            }
            if function["Environment"]["Variables"]
                .get("WEBHOOK_SECRETS_KEY_ID")
                .is_some()
            {
                given_key.insert(name);
            }
        }
        assert_eq!(
            decrypt,
            BTreeSet::from(["DeliverWebhooksFunction".to_string()])
        );
        assert_eq!(
            encrypt,
            BTreeSet::from(["CreateWebhookFunction".to_string()])
        );
        assert_eq!(given_key, &encrypt | &decrypt);
    }

    /// Every function that may touch the orders table either may not touch webhook
    /// items (the managed Deny), or is a webhook function whose every DynamoDB grant is
    /// limited by `dynamodb:LeadingKeys` to the webhook partitions (and, for the
    /// deliverer, the orders it checks events against).
    #[test]
    fn functions_that_read_orders_cannot_touch_webhook_subscriptions() {
        let template = template();
        let deny = text(&template["Resources"]["NoWebhookItemsPolicy"]);
        assert!(
            deny.contains("Effect: Deny") && deny.contains("WEBHOOK#*"),
            "{deny}"
        );
        let webhook_functions = BTreeSet::from([
            "CreateWebhookFunction",
            "ListWebhooksFunction",
            "GetWebhookFunction",
            "DeleteWebhookFunction",
            "ListWebhookDeliveriesFunction",
            "DeliverWebhooksFunction",
        ]);
        for (name, function) in functions(&template) {
            let grants: Vec<Value> = statements(&function)
                .into_iter()
                .filter(|s| text(&s["Action"]).contains("dynamodb:"))
                .filter(|s| text(&s["Resource"]).contains("OrdersTable"))
                .collect();
            if grants.is_empty() {
                continue;
            }
            let mut policies = BTreeSet::new();
            refs(&function["Policies"], &mut policies);
            if webhook_functions.contains(name.as_str()) {
                assert!(!policies.contains("NoWebhookItemsPolicy"), "{name}");
                for grant in &grants {
                    let keys = text(&grant["Condition"]["ForAllValues:StringLike"]);
                    assert!(
                        keys.contains("dynamodb:LeadingKeys") && keys.contains("WEBHOOK#*"),
                        "{name}: a grant not limited to webhook items: {}",
                        text(grant)
                    );
                    let allowed = keys.contains("ORDER#*");
                    assert_eq!(allowed, name == "DeliverWebhooksFunction", "{name}");
                }
            } else {
                assert!(
                    policies.contains("NoWebhookItemsPolicy"),
                    "{name} may touch OrdersTable: add `- !Ref NoWebhookItemsPolicy` to its Policies"
                );
            }
        }
    }
}
