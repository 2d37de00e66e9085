//! The local stack matches what would be deployed: template.yaml's routes and
//! table, the sample events in events/, and the HTTP server `make dev` runs.

use std::collections::BTreeSet;
use std::sync::Arc;

use orders::inbound::http::Endpoint;
use orders_tests::{Stack, checkout, template, token};

#[test]
fn the_template_routes_every_endpoint_once() {
    let routes: BTreeSet<(String, String, String)> = template()
        .routes()
        .unwrap()
        .into_iter()
        .map(|r| (r.method, r.path, r.binary))
        .collect();
    let expected: BTreeSet<(String, String, String)> = [
        ("POST", "/api/orders", "create-order"),
        ("GET", "/api/orders/{order_id}", "get-order"),
        ("GET", "/api/orders", "list-orders"),
        (
            "PUT",
            "/api/orders/{order_id}/status",
            "update-order-status",
        ),
        ("DELETE", "/api/orders/{order_id}", "cancel-order"),
        ("GET", "/api/orders/{order_id}/history", "get-order-history"),
        ("GET", "/api/orders/{order_id}/invoice", "get-order-invoice"),
        ("POST", "/api/webhooks", "create-webhook"),
        ("GET", "/api/webhooks", "list-webhooks"),
        ("GET", "/api/webhooks/{webhook_id}", "get-webhook"),
        ("DELETE", "/api/webhooks/{webhook_id}", "delete-webhook"),
        (
            "GET",
            "/api/webhooks/{webhook_id}/deliveries",
            "list-webhook-deliveries",
        ),
        ("POST", "/api/orders/{order_id}/refunds", "create-refund"),
        ("POST", "/api/payments/stripe/webhook", "stripe-webhook"),
        (
            "POST",
            "/api/orders/{order_id}/shipments",
            "create-shipment",
        ),
        ("GET", "/api/orders/{order_id}/shipments", "list-shipments"),
        ("POST", "/api/shipping/shippo/webhook", "shippo-webhook"),
        (
            "POST",
            "/api/orders/{order_id}/shipments/{shipment_id}/void",
            "void-shipment",
        ),
        ("POST", "/api/orders/{order_id}/returns", "create-return"),
        (
            "GET",
            "/api/orders/{order_id}/returns",
            "list-order-returns",
        ),
        (
            "POST",
            "/api/orders/{order_id}/returns/{return_id}/approve",
            "approve-return",
        ),
        (
            "POST",
            "/api/orders/{order_id}/returns/{return_id}/decline",
            "decline-return",
        ),
        (
            "POST",
            "/api/orders/{order_id}/returns/{return_id}/cancel",
            "cancel-return",
        ),
        (
            "POST",
            "/api/orders/{order_id}/returns/{return_id}/receive",
            "receive-return",
        ),
        (
            "POST",
            "/api/orders/{order_id}/returns/{return_id}/refund",
            "refund-return",
        ),
        ("GET", "/api/returns", "list-returns"),
        (
            "GET",
            "/api/orders/{order_id}/credit-notes",
            "list-credit-notes",
        ),
        (
            "GET",
            "/api/orders/{order_id}/credit-notes/{number}",
            "get-credit-note",
        ),
        (
            "POST",
            "/api/customers/{user_id}/erasure",
            "request-erasure",
        ),
        ("GET", "/api/customers/{user_id}/erasure", "get-erasure"),
        (
            "GET",
            "/api/customers/{user_id}/export",
            "export-customer-data",
        ),
        ("POST", "/api/email/sendgrid/events", "sendgrid-events"),
        ("DELETE", "/api/suppressions/{email}", "delete-suppression"),
    ]
    .into_iter()
    .map(|(m, p, b)| (m.to_string(), p.to_string(), b.to_string()))
    .collect();
    assert_eq!(routes, expected);
    let binaries: BTreeSet<&str> = Endpoint::ALL.iter().map(|e| e.binary_name()).collect();
    assert_eq!(binaries, routes.iter().map(|r| r.2.as_str()).collect());
}

/// Defect 10: API Gateway answers a method no route has with 404, so every path has
/// an `ANY` route to the method-not-allowed function, whose `Allow` table lists exactly
/// the methods the template routes there; locally and in the harness the same request
/// is the same 405.
#[tokio::test]
async fn a_known_path_with_another_method_is_405_with_allow() {
    let template = template();
    let routes = template.routes().unwrap();
    let fallbacks = template.method_fallbacks().unwrap();
    let paths: BTreeSet<&str> = routes.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        fallbacks.iter().map(|r| r.path.as_str()).collect(),
        "every path, and only those, has an ANY route"
    );
    for route in &fallbacks {
        assert_eq!(
            route.binary,
            orders::inbound::http::method_not_allowed::BINARY
        );
    }
    let table: BTreeSet<(String, String)> = orders::inbound::http::method_not_allowed::ALLOWED
        .iter()
        .map(|(p, a)| (p.to_string(), a.to_string()))
        .collect();
    let from_template: BTreeSet<(String, String)> = paths
        .iter()
        .map(|path| {
            let mut methods: Vec<&str> = routes
                .iter()
                .filter(|r| r.path == *path)
                .map(|r| r.method.as_str())
                .collect();
            methods.sort_unstable();
            (path.to_string(), methods.join(", "))
        })
        .collect();
    assert_eq!(
        table, from_template,
        "method_not_allowed::ALLOWED is template.yaml's"
    );

    // The function, on its sample event (PATCH /api/orders/ORD12345).
    let events = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let text = std::fs::read_to_string(events.join("method-not-allowed.json")).unwrap();
    let request = lambda_http::request::from_str(&text).unwrap();
    let reply =
        orders_tests::Reply::from(orders::inbound::http::method_not_allowed::handle(&request));
    assert_eq!(reply.status, 405, "{reply:?}");
    assert_eq!(reply.header("allow"), Some("DELETE, GET"));
    assert_eq!(reply.code(), "method_not_allowed");

    // The harness answers as the server does.
    let stack = Stack::new().await;
    for (method, path, allow) in [
        ("PATCH", "/api/orders/ORD12345", "DELETE, GET"),
        ("PUT", "/api/orders", "GET, POST"),
        ("GET", "/api/orders/ORD12345/status", "PUT"),
        ("POST", "/api/webhooks/wh_1/deliveries", "GET"),
    ] {
        let reply = stack
            .send(orders_tests::Call::new(method, path).bearer(&token("admin", "orders:admin")))
            .await;
        assert_eq!(reply.status, 405, "{method} {path}: {reply:?}");
        assert_eq!(reply.header("allow"), Some(allow), "{method} {path}");
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
    }
    let reply = stack
        .send(orders_tests::Call::new("GET", "/api/nothing"))
        .await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.code(), "route_not_found");
}

#[test]
fn every_function_has_a_binary_and_a_sample_event_for_its_route() {
    let events = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    for route in template().routes().unwrap() {
        let file = events.join(format!("{}.json", route.binary));
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let request = lambda_http::request::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not an API Gateway event: {e}", file.display()));
        assert_eq!(
            request.method().as_str(),
            route.method,
            "{}",
            file.display()
        );
        let router = orders_dev::server::Router::new(vec![route.clone()]).unwrap();
        assert!(
            router.find(&route.method, request.uri().path()).is_some(),
            "{} does not match {} {}",
            file.display(),
            route.method,
            route.path
        );
        let binary = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../functions")
            .join(&route.binary)
            .join("main.rs");
        assert!(binary.exists(), "{} has no main", route.binary);
    }
}

#[tokio::test]
async fn the_local_table_is_the_template_table() {
    let stack = Stack::new().await;
    let spec = template().table("OrdersTable").unwrap();
    let table = stack.orders_table().await;

    let keys = |schema: &[aws_sdk_dynamodb::types::KeySchemaElement]| -> Vec<(String, String)> {
        schema
            .iter()
            .map(|k| {
                (
                    k.attribute_name().to_string(),
                    k.key_type().as_str().to_string(),
                )
            })
            .collect()
    };
    let spec_keys = |schema: &[orders_dev::template::KeyElement]| -> Vec<(String, String)> {
        schema
            .iter()
            .map(|k| (k.attribute_name.clone(), k.key_type.clone()))
            .collect()
    };
    assert_eq!(keys(table.key_schema()), spec_keys(&spec.key_schema));
    assert_eq!(
        spec_keys(&spec.key_schema),
        [
            ("PK".to_string(), "HASH".to_string()),
            ("SK".to_string(), "RANGE".to_string())
        ]
    );

    let mut indexes: Vec<_> = table
        .global_secondary_indexes()
        .iter()
        .map(|i| {
            (
                i.index_name().unwrap().to_string(),
                keys(i.key_schema()),
                i.projection()
                    .and_then(|p| p.projection_type())
                    .map(|t| t.as_str().to_string()),
            )
        })
        .collect();
    indexes.sort();
    let mut expected: Vec<_> = spec
        .global_secondary_indexes
        .iter()
        .map(|i| {
            (
                i.index_name.clone(),
                spec_keys(&i.key_schema),
                Some(i.projection.projection_type.clone()),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(indexes, expected);
    let names: Vec<&str> = expected.iter().map(|i| i.0.as_str()).collect();
    assert_eq!(names, ["by_created", "by_status", "by_user"]);

    let stream = table.stream_specification().expect("stream enabled");
    assert!(stream.stream_enabled());
    assert_eq!(
        stream.stream_view_type().map(|v| v.as_str()),
        spec.stream_specification
            .as_ref()
            .map(|s| s.stream_view_type.as_str())
    );
}

#[tokio::test]
async fn the_dev_server_serves_the_api_over_http() {
    let stack = Stack::new().await;
    stack
        .put_cart("abc123", "user789", &[("p001", "USB Cable", 2, "10.00")])
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(orders_dev::server::serve(
        listener,
        Arc::clone(&stack.app),
        Arc::clone(&stack.router),
    ));
    let http = reqwest::Client::new();

    let health = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    let created = http
        .post(format!("{base}/api/orders"))
        .bearer_auth(token("user789", ""))
        .header("content-type", "application/json")
        .body(checkout("abc123").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_string();
    let got = http
        .get(format!("{base}{location}"))
        .bearer_auth(token("user789", ""))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert!(got.text().await.unwrap().contains(r#""total":20.00"#));

    let listed = http
        .get(format!("{base}/api/orders?status=pending&limit=5"))
        .bearer_auth(token("user789", ""))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);

    let unknown = http
        .get(format!("{base}/api/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.headers()["content-type"],
        "application/problem+json"
    );

    // Defect 10: a known path with another method is 405 with Allow, not 404.
    let patched = http
        .patch(format!("{base}{location}"))
        .bearer_auth(token("user789", ""))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 405);
    assert_eq!(patched.headers()["allow"], "DELETE, GET");
    assert_eq!(
        patched.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = serde_json::from_str(&patched.text().await.unwrap()).unwrap();
    assert_eq!(problem["code"], "method_not_allowed");

    let too_large = http
        .post(format!("{base}/api/orders"))
        .bearer_auth(token("user789", ""))
        .header("content-type", "application/json")
        .body(vec![b' '; 200 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(too_large.status(), 413);
    server.abort();
}

#[test]
fn every_queue_has_a_dead_letter_queue_and_room_for_its_consumer() {
    let template = template();
    let queues = template.queues();
    let consumers = template.consumers();
    let queue_consumers: Vec<_> = consumers
        .iter()
        .filter_map(|c| match &c.trigger {
            orders_dev::template::Trigger::Queue { queue, .. } => Some((queue.clone(), c)),
            _ => None,
        })
        .collect();
    assert!(queue_consumers.len() >= 2, "{consumers:?}");
    for (queue, consumer) in queue_consumers {
        let spec = queues
            .iter()
            .find(|q| q.logical_id == queue)
            .expect("queue declared");
        let (_, max_receives) = spec
            .dead_letter
            .as_ref()
            .unwrap_or_else(|| panic!("{queue} has no DLQ"));
        assert!(
            *max_receives >= 5,
            "{queue}: maxReceiveCount {max_receives}"
        );
        let timeout = consumer.timeout.expect("function timeout");
        let visibility = spec.visibility_timeout.expect("visibility timeout");
        assert!(
            visibility >= 6 * timeout,
            "{queue}: visibility {visibility} < 6 x {timeout}"
        );
    }
    assert!(consumers.iter().any(|c| c.binary == "publish-events"
        && matches!(c.trigger, orders_dev::template::Trigger::Stream { .. })));
}

#[tokio::test]
async fn the_local_pipeline_is_the_template_pipeline() {
    let sdk = orders::adapters::aws::sdk_config().await;
    orders_tests::dynamodb().await; // asserts the emulator is configured
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let template = template();
    let bus = format!("orders-pipeline-test-{}", std::process::id());
    let prefix = format!("stack{}-", std::process::id());
    let queues = orders_dev::pipeline::provision(
        &sqs,
        &events,
        &bus,
        &prefix,
        &template.queues(),
        &template.rules().unwrap(),
    )
    .await
    .unwrap();

    for spec in template.queues() {
        let (url, _) = &queues[&spec.logical_id];
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default();
        let get = |name: aws_sdk_sqs::types::QueueAttributeName| attributes.get(&name).cloned();
        if let Some(timeout) = spec.visibility_timeout {
            assert_eq!(
                get(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout),
                Some(timeout.to_string())
            );
        }
        if let Some((dead_letter, max_receives)) = &spec.dead_letter {
            let policy: serde_json::Value = serde_json::from_str(
                &get(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy).unwrap(),
            )
            .unwrap();
            assert_eq!(
                policy["deadLetterTargetArn"],
                queues[dead_letter].1.as_str()
            );
            assert_eq!(
                policy["maxReceiveCount"].to_string().trim_matches('"'),
                max_receives.to_string()
            );
        }
    }
    for rule in template.rules().unwrap() {
        let described = events
            .describe_rule()
            .name(format!("{prefix}{}", rule.logical_id))
            .event_bus_name(&bus)
            .send()
            .await
            .unwrap();
        let pattern: serde_json::Value =
            serde_json::from_str(described.event_pattern().unwrap()).unwrap();
        assert_eq!(pattern, rule.pattern);
        let targets = events
            .list_targets_by_rule()
            .rule(format!("{prefix}{}", rule.logical_id))
            .event_bus_name(&bus)
            .send()
            .await
            .unwrap();
        let arns: Vec<&str> = targets.targets().iter().map(|t| t.arn()).collect();
        let expected: Vec<&str> = rule
            .targets
            .iter()
            .map(|(_, q)| queues[q].1.as_str())
            .collect();
        assert_eq!(arns, expected);
    }
}

/// The deployed create limit is the one the code defaults to, reaches the create
/// function, and sits behind a route throttle stricter than the stage's.
#[test]
fn the_template_limits_creates_as_the_code_does() {
    use orders::domain::rate_limit::{DEFAULT_CREATE_LIMIT, RateLimit};
    use serde_norway::Value;

    let text = std::fs::read_to_string(orders_tests::template_path()).unwrap();
    let template: Value = serde_norway::from_str(&text).unwrap();
    let parameter = |name: &str| template["Parameters"][name]["Default"].clone();
    let number = |name: &str| parameter(name).as_u64().unwrap_or_else(|| panic!("{name}"));

    assert_eq!(
        parameter("OrderCreateLimit").as_str(),
        Some(DEFAULT_CREATE_LIMIT)
    );
    assert!(RateLimit::parse(DEFAULT_CREATE_LIMIT).unwrap().is_some());
    let function = &template["Resources"]["CreateOrderFunction"]["Properties"];
    let Value::Tagged(reference) = &function["Environment"]["Variables"]["ORDER_CREATE_LIMIT"]
    else {
        panic!("ORDER_CREATE_LIMIT is not set from a parameter");
    };
    assert_eq!(reference.value.as_str(), Some("OrderCreateLimit"));

    let route = &function["Events"]["Api"]["Properties"]["RouteSettings"];
    for (route_parameter, stage_parameter, setting) in [
        (
            "CreateOrderBurstLimit",
            "ThrottlingBurstLimit",
            "ThrottlingBurstLimit",
        ),
        (
            "CreateOrderRateLimit",
            "ThrottlingRateLimit",
            "ThrottlingRateLimit",
        ),
    ] {
        let Value::Tagged(reference) = &route[setting] else {
            panic!("POST /api/orders has no {setting}");
        };
        assert_eq!(reference.value.as_str(), Some(route_parameter));
        assert!(
            number(route_parameter) < number(stage_parameter),
            "{route_parameter} is not stricter than {stage_parameter}"
        );
    }
}

/// The consumers act on `orders` events; only the publisher's role may put them on
/// the bus (an explicit Deny for everyone else, whatever IAM allows them).
#[test]
fn only_the_publisher_may_put_orders_events_on_the_bus() {
    let text = std::fs::read_to_string(orders_tests::template_path()).unwrap();
    let document: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let resources = document["Resources"].as_mapping().unwrap();
    let policies: Vec<_> = resources
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::Events::EventBusPolicy"))
        .collect();
    assert_eq!(policies.len(), 1, "one policy on the bus");
    let properties = &policies[0]["Properties"];
    let tagged = |v: &serde_norway::Value| match v {
        serde_norway::Value::Tagged(t) => Some((t.tag.to_string(), t.value.clone())),
        _ => None,
    };
    assert_eq!(
        tagged(&properties["EventBusName"]).map(|(_, v)| v),
        Some("OrdersBus".into())
    );
    let statement = &properties["Statement"];
    assert_eq!(statement["Effect"].as_str(), Some("Deny"));
    assert_eq!(statement["Principal"].as_str(), Some("*"));
    assert_eq!(statement["Action"].as_str(), Some("events:PutEvents"));
    let condition = &statement["Condition"];
    assert_eq!(
        condition["ForAnyValue:StringEquals"]["events:source"][0].as_str(),
        Some("orders")
    );
    let (_, role) = tagged(&condition["ArnNotEquals"]["aws:PrincipalArn"]).unwrap();
    assert_eq!(role.as_str(), Some("PublishEventsFunctionRole.Arn"));
    // SAM names a function's generated role "<function>Role"; the function must not
    // bring its own under another name.
    assert!(resources["PublishEventsFunction"]["Properties"]["Role"].is_null());
}

/// A webhook batch stops sending before Lambda stops the deliverer.
#[test]
fn the_webhook_batch_deadline_is_below_the_deliverer_timeout() {
    let deliverer = template()
        .consumers()
        .into_iter()
        .find(|c| c.binary == "deliver-webhooks")
        .expect("the deliverer is a queue consumer");
    let timeout = std::time::Duration::from_secs(deliverer.timeout.unwrap().into());
    let deadline = orders::services::deliveries::DEFAULT_BATCH_DEADLINE;
    assert!(
        deadline + std::time::Duration::from_secs(5) <= timeout,
        "{deadline:?} leaves no room within {timeout:?}"
    );
}
