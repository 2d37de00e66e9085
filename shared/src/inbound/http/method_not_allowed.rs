//! 405 Method Not Allowed, with `Allow`, for a known path asked with another method.
//!
//! API Gateway HTTP API answers a method no route has with its own 404, so
//! template.yaml routes `ANY` on every path of the API to the `method-not-allowed`
//! function, which answers this (a route with a method is more specific than `ANY`, so
//! `GET /api/orders/{order_id}` still reaches get-order). The local server (orders-dev)
//! and the test harness answer the same, from template.yaml's routes.

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};

use super::problem::Problem;

/// The binary (and template.yaml's `BuildProperties.Binary`) of the `ANY` routes.
pub const BINARY: &str = "method-not-allowed";

/// The methods template.yaml routes on each path, as `Allow` lists them
/// (tests/tests/suite/stack.rs checks this table against the template).
pub const ALLOWED: &[(&str, &str)] = &[
    ("/api/orders", "GET, POST"),
    ("/api/orders/{order_id}", "DELETE, GET"),
    ("/api/orders/{order_id}/status", "PUT"),
    ("/api/orders/{order_id}/history", "GET"),
    ("/api/orders/{order_id}/refunds", "POST"),
    ("/api/payments/stripe/webhook", "POST"),
    ("/api/orders/{order_id}/invoice", "GET"),
    ("/api/webhooks", "GET, POST"),
    ("/api/webhooks/{webhook_id}", "DELETE, GET"),
    ("/api/webhooks/{webhook_id}/deliveries", "GET"),
    ("/api/orders/{order_id}/shipments", "GET, POST"),
    ("/api/shipping/shippo/webhook", "POST"),
    (
        "/api/orders/{order_id}/shipments/{shipment_id}/void",
        "POST",
    ),
    ("/api/orders/{order_id}/returns", "GET, POST"),
    ("/api/orders/{order_id}/returns/{return_id}/approve", "POST"),
    ("/api/orders/{order_id}/returns/{return_id}/decline", "POST"),
    ("/api/orders/{order_id}/returns/{return_id}/cancel", "POST"),
    ("/api/orders/{order_id}/returns/{return_id}/receive", "POST"),
    ("/api/orders/{order_id}/returns/{return_id}/refund", "POST"),
    ("/api/returns", "GET"),
    ("/api/orders/{order_id}/credit-notes", "GET"),
    ("/api/orders/{order_id}/credit-notes/{number}", "GET"),
    ("/api/customers/{user_id}/erasure", "GET, POST"),
    ("/api/customers/{user_id}/export", "GET"),
    ("/api/email/sendgrid/events", "POST"),
    ("/api/suppressions/{email}", "DELETE"),
];

/// Whether `path` (`/api/orders/ORD1`) is an instance of the route path `template`
/// (`/api/orders/{order_id}`): same segments, each `{…}` one non-empty segment.
pub fn path_matches(template: &str, path: &str) -> bool {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let pattern: Vec<&str> = template.split('/').collect();
    pattern.len() == segments.len()
        && pattern.iter().zip(&segments).all(|(p, s)| {
            if p.starts_with('{') && p.ends_with('}') {
                !s.is_empty()
            } else {
                p == s
            }
        })
}

/// The route path and `Allow` value for a request path, if it is one of the API's.
pub fn allowed(path: &str) -> Option<(&'static str, &'static str)> {
    ALLOWED
        .iter()
        .find(|(template, _)| path_matches(template, path))
        .copied()
}

/// The 405 problem document, with `Allow`.
pub fn response(method: &str, route_path: &str, allow: &str) -> Response<Body> {
    let detail = format!("{method} is not allowed on {route_path}; allowed: {allow}");
    let mut response =
        Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", detail).into_response();
    if let Ok(allow) = HeaderValue::from_str(allow) {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    response
}

/// The 404 of a path that is none of the API's.
pub fn not_found() -> Response<Body> {
    Problem::new(
        StatusCode::NOT_FOUND,
        "route_not_found",
        "No route matches this method and path.",
    )
    .into_response()
}

/// The answer of the `method-not-allowed` function to any request API Gateway routes
/// to it; a path outside the table (not routed to it by template.yaml) is a 404.
pub fn handle(request: &Request) -> Response<Body> {
    let path = request.raw_http_path();
    let path = if path.is_empty() {
        request.uri().path().to_string()
    } else {
        path.to_string()
    };
    match allowed(&path) {
        Some((route_path, allow)) => response(request.method().as_str(), route_path, allow),
        None => not_found(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_paths_get_their_allow_list() {
        assert_eq!(
            allowed("/api/orders/ORD1"),
            Some(("/api/orders/{order_id}", "DELETE, GET"))
        );
        assert_eq!(allowed("/api/orders/"), Some(("/api/orders", "GET, POST")));
        assert_eq!(allowed("/api/orders//status"), None);
        assert_eq!(allowed("/api/nope"), None);
        let response = response("PATCH", "/api/orders", "GET, POST");
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()["allow"], "GET, POST");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
}
