//! `docs/openapi.yaml` describes exactly the API that `template.yaml` deploys: the
//! same (method, path) pairs, each operation named after the function binary
//! that serves it. Needs no emulator.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use orders::domain::OrderId;
use orders::inbound::http::Endpoint;
use serde_norway::Value;

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn document_text() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn document() -> Value {
    serde_norway::from_str(&document_text()).expect("docs/openapi.yaml is YAML")
}

/// (METHOD, path) → the operation object, for every operation in `paths`.
fn operations(document: &Value) -> BTreeMap<(String, String), Value> {
    let paths = document
        .get("paths")
        .and_then(Value::as_mapping)
        .expect("docs/openapi.yaml has paths");
    let mut operations = BTreeMap::new();
    for (path, item) in paths {
        let path = path.as_str().expect("paths are strings");
        let item = item.as_mapping().expect("a path item is a mapping");
        for (key, operation) in item {
            let key = key.as_str().expect("path item keys are strings");
            if METHODS.contains(&key) {
                operations.insert(
                    (key.to_ascii_uppercase(), path.to_string()),
                    operation.clone(),
                );
            }
        }
    }
    operations
}

fn operation_id(operation: &Value) -> Option<&str> {
    operation.get("operationId").and_then(Value::as_str)
}

#[test]
fn the_paths_are_the_templates_routes_named_after_their_binaries() {
    let routes = orders_tests::template()
        .routes()
        .expect("template.yaml routes");
    let documented = operations(&document());

    let deployed: BTreeSet<(String, String)> = routes
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    let described: BTreeSet<(String, String)> = documented.keys().cloned().collect();
    assert_eq!(
        described, deployed,
        "docs/openapi.yaml's operations differ from template.yaml's HttpApi routes"
    );
    assert_eq!(
        deployed.len(),
        routes.len(),
        "template.yaml routes a (method, path) twice"
    );

    for route in &routes {
        let operation = &documented[&(route.method.clone(), route.path.clone())];
        assert_eq!(
            operation_id(operation),
            Some(route.binary.as_str()),
            "{} {}: operationId must be the function binary",
            route.method,
            route.path
        );
        assert!(
            Endpoint::from_binary_name(&route.binary).is_some(),
            "{} is not an endpoint of the API",
            route.binary
        );
    }
}

/// Every handler authenticates the caller (Stripe's webhook by its signature, a 400)
/// and talks to the store, so every operation can answer 401, 500 and 503; and API
/// Gateway may throttle any of them.
#[test]
fn every_operation_documents_the_answers_any_request_can_get() {
    for ((method, path), operation) in operations(&document()) {
        let responses = operation
            .get("responses")
            .and_then(Value::as_mapping)
            .unwrap_or_else(|| panic!("{method} {path} has no responses"));
        let statuses: BTreeSet<&str> = responses.keys().filter_map(Value::as_str).collect();
        let unauthenticated = operation
            .get("security")
            .and_then(Value::as_sequence)
            .is_some_and(|s| s.is_empty());
        for status in ["401", "429", "500", "503"] {
            if status == "401" && unauthenticated {
                continue;
            }
            assert!(
                statuses.contains(status),
                "{method} {path} does not document {status}"
            );
        }
        assert!(
            statuses.iter().any(|s| s.starts_with('2')),
            "{method} {path} documents no success"
        );
    }
}

/// The examples' order ids are ids the API can produce (and so would not answer
/// with 404), and the demo cart `abc123` becomes the order they show.
#[test]
fn example_order_ids_are_real_order_ids() {
    let text = document_text();
    let seed_order = OrderId::for_cart("abc123");
    assert!(
        text.contains(seed_order.as_str()),
        "the examples should show the demo cart's order {seed_order}"
    );
    let mut rest = text.as_str();
    while let Some(at) = rest.find("ORD") {
        let candidate: String = rest[at..]
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        rest = &rest[at + 3..];
        // Prose such as "ORDER" is not an id; anything id-shaped must parse.
        if candidate.len() == 3 + 16 {
            assert!(
                OrderId::parse(&candidate).is_some(),
                "{candidate} in docs/openapi.yaml is not a valid order id"
            );
        }
    }
}
