//! Every sample in `events/` answers 2xx through the handler its function runs, prepared
//! exactly as `make invoke` prepares it (`orders_dev::samples`: a token for the sample's
//! caller, the ids of what exists, the demo order arranged through the API first).

use std::path::{Path, PathBuf};

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use orders::adapters::dynamo::DynamoInventory;
use orders::ports::Inventory;
use orders_dev::provision::DEMO_CART;
use orders_dev::samples::{self, Function};
use orders_tests::{SECRET, Stack, unique};

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// A stack of its own, as `make invoke` finds one: the demo cart, its stock, a bus.
async fn stack() -> Stack {
    let bus = unique("bus");
    let stripe = std::env::var("STRIPE_API_BASE")
        .expect("STRIPE_API_BASE is not set: run the tests with `make test`");
    // Shippo on, as `make dev` runs it (the shippo-webhook sample needs it).
    let stack = Stack::with_settings(|s| {
        orders_tests::with_shippo(s)
            .with(orders::wiring::LOCAL_MODE, "true")
            .with("EVENT_BUS_NAME", &bus)
            .with("STRIPE_API_BASE", &stripe)
            .with(
                "STRIPE_SECRET_KEY",
                orders_dev::local::DEV_STRIPE_SECRET_KEY,
            )
            .with("STRIPE_WEBHOOK_SECRET", samples::stripe_webhook_secret())
            .with(
                "SENDGRID_WEBHOOK_PUBLIC_KEY",
                orders_dev::local::DEV_SENDGRID_PUBLIC_KEY,
            )
    })
    .await;
    stack.put_demo_cart().await;
    let inventory = DynamoInventory::new(stack.dynamodb.clone(), &stack.table);
    for (product_id, _, _, _) in DEMO_CART.2 {
        inventory.set_stock(product_id, 100).await.unwrap();
    }
    let sdk = orders::adapters::aws::sdk_config().await;
    orders_dev::pipeline::provision(
        &aws_sdk_sqs::Client::new(&sdk),
        &aws_sdk_eventbridge::Client::new(&sdk),
        &bus,
        "",
        &[],
        &[],
    )
    .await
    .unwrap();
    stack
}

/// What the sample's handler answered, or why it did not succeed.
async fn answer(stack: &Stack, name: &str) -> Result<String, String> {
    let dir = events_dir();
    let secret = SECRET.as_bytes();
    let ids = samples::arrange(&stack.wiring, &stack.app, &dir, name, secret)
        .await
        .map_err(|e| e.to_string())?;
    let event = samples::load(&dir, name, &ids, secret).map_err(|e| e.to_string())?;
    let wiring = &stack.wiring;
    let failures = match Function::named(name).ok_or("not a function")? {
        // What this function is for: the 405, with the methods the path has.
        Function::MethodNotAllowed => {
            let request = samples::api_request(name, &event).map_err(|e| e.to_string())?;
            let response = orders::inbound::http::method_not_allowed::handle(&request);
            let allow = response.headers().get("allow").cloned();
            return match (response.status().as_u16(), allow) {
                (405, Some(allow)) => Ok(format!("405, Allow: {allow:?}")),
                (status, _) => Err(format!("{status} {:?}", response.body())),
            };
        }
        // Static files: the sample asks for the console's page, as the deployed stack
        // (not local mode) serves it.
        Function::ServeConsole => {
            let request = samples::api_request(name, &event).map_err(|e| e.to_string())?;
            let site = orders::wiring::console_site(&orders::wiring::Settings::default())
                .map_err(|e| e.to_string())?;
            let response = site.respond(request.method().as_str(), request.uri().path());
            return match response.status().as_u16() {
                200 => Ok("200".into()),
                status => Err(format!("{status} {:?}", response.body())),
            };
        }
        Function::Api(endpoint) => {
            let request = samples::api_request(name, &event).map_err(|e| e.to_string())?;
            let response = stack.app.handle(endpoint, request).await;
            let status = response.status();
            return if status.is_success() {
                Ok(status.to_string())
            } else {
                Err(format!("{status} {:?}", response.body()))
            };
        }
        Function::FulfillOrders => {
            let event: SqsEvent = serde_json::from_value(event).map_err(|e| e.to_string())?;
            let fulfillment = wiring.fulfillment().map_err(|e| e.to_string())?;
            orders::inbound::sqs::fulfill(&fulfillment, event)
                .await
                .batch_item_failures
                .len()
        }
        Function::NotifyCustomers => {
            let event: SqsEvent = serde_json::from_value(event).map_err(|e| e.to_string())?;
            let notifications = wiring.notifications().map_err(|e| e.to_string())?;
            orders::inbound::sqs::notify(&notifications, event)
                .await
                .batch_item_failures
                .len()
        }
        Function::DeliverWebhooks => {
            let event: SqsEvent = serde_json::from_value(event).map_err(|e| e.to_string())?;
            let deliveries = wiring.deliveries().map_err(|e| e.to_string())?;
            orders::inbound::sqs::deliver(&deliveries, event)
                .await
                .batch_item_failures
                .len()
        }
        Function::SettlePayments => {
            let event: SqsEvent = serde_json::from_value(event).map_err(|e| e.to_string())?;
            let payments = wiring.payment_service().map_err(|e| e.to_string())?;
            let returns = wiring.return_service().map_err(|e| e.to_string())?;
            orders::inbound::sqs::settle(&payments, Some(&returns), event)
                .await
                .batch_item_failures
                .len()
        }
        Function::ExpireOrders => {
            let payments = wiring.payment_service().map_err(|e| e.to_string())?;
            let ttl = wiring.pending_payment_ttl().map_err(|e| e.to_string())?;
            orders::inbound::schedule::expire_unpaid(&payments, ttl)
                .await
                .map_err(|e| e.to_string())?;
            0
        }
        Function::EraseCustomerData => {
            let event: SqsEvent = serde_json::from_value(event).map_err(|e| e.to_string())?;
            let privacy = wiring.privacy_service().map_err(|e| e.to_string())?;
            orders::inbound::sqs::erase(&privacy, event)
                .await
                .batch_item_failures
                .len()
        }
        Function::SuppressBounces => {
            let event: SqsEvent = serde_json::from_value(event).map_err(|e| e.to_string())?;
            let suppressions = wiring.suppression_service().map_err(|e| e.to_string())?;
            orders::inbound::sqs::suppress(&suppressions, event)
                .await
                .batch_item_failures
                .len()
        }
        Function::PublishEvents => {
            let event: StreamEvent = serde_json::from_value(event).map_err(|e| e.to_string())?;
            let publisher = wiring.publisher().map_err(|e| e.to_string())?;
            orders::inbound::stream::publish(&publisher, event)
                .await
                .batch_item_failures
                .len()
        }
    };
    match failures {
        0 => Ok("no batch item failures".into()),
        n => Err(format!("{n} batch item failure(s)")),
    }
}

#[tokio::test]
async fn every_sample_answers_2xx_through_its_handler() {
    // (method-not-allowed's sample answers the 405 it exists for.)
    let names = samples::names(&events_dir()).unwrap();
    assert!(names.len() >= 14, "{names:?}");
    let mut failed = Vec::new();
    for name in &names {
        let stack = stack().await;
        match answer(&stack, name).await {
            Ok(_) => {}
            Err(why) => failed.push(format!("{name}: {why}")),
        }
        // The fulfillment sample (an order.confirmed) did its work: stock reserved.
        if name == "fulfill-orders" {
            let order = stack.stored_order(samples::SAMPLE_ORDER).await.unwrap();
            assert_eq!(
                order["shipping_status"].as_s().unwrap(),
                "processing",
                "{order:?}"
            );
        }
    }
    assert!(
        failed.is_empty(),
        "samples that did not succeed:\n{}",
        failed.join("\n")
    );
}

/// The samples name a real caller and real ids: as shipped, before any substitution,
/// every API sample's order id parses, and every caller is one `make invoke` can mint.
#[test]
fn samples_as_shipped_carry_ids_the_api_accepts() {
    for name in samples::names(&events_dir()).unwrap() {
        let text = samples::read(&events_dir(), &name).unwrap();
        assert!(!text.contains("ORD12345"), "{name}");
        let event: serde_json::Value = serde_json::from_str(&text).unwrap();
        if let Some(id) = event["pathParameters"]["order_id"].as_str() {
            assert!(orders::domain::OrderId::parse(id).is_some(), "{name}: {id}");
        }
        if event["headers"]["authorization"].is_string() {
            assert!(
                event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"].is_string(),
                "{name}"
            );
        }
    }
}
