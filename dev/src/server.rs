//! The local API: `template.yaml`'s routes on one port, each answered by the same
//! handler its Lambda function runs, with the request shaped as API Gateway
//! would shape it (path and query parameters extracted).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use lambda_http::RequestExt;
use orders::inbound::http::console::ConsoleSite;
use orders::inbound::http::request::MAX_BODY_BYTES;
use orders::inbound::http::{Api, Endpoint};
use tokio::net::TcpListener;

use crate::template::Route;

/// Matches a method and path against the template's routes.
pub struct Router {
    routes: Vec<(Route, Endpoint)>,
    /// Paths with an `ANY` route to the method-not-allowed function.
    fallbacks: Vec<String>,
    /// The operator console at `/console/`, as the `serve-console` function serves it.
    console: Option<ConsoleSite>,
}

/// What the router makes of a request, as API Gateway would.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolved {
    /// A route of this method and path: its endpoint and path parameters.
    Endpoint(Endpoint, HashMap<String, String>),
    /// A path with an `ANY` route but no route of this method: 405, with the route's
    /// path and the methods it has (the `Allow` value).
    MethodNotAllowed { path: String, allow: String },
    /// No route: API Gateway's 404.
    NotFound,
}

#[derive(Debug, thiserror::Error)]
#[error("template.yaml routes {method} {path} to `{binary}`, which is not a function of this API")]
pub struct UnknownFunction {
    pub method: String,
    pub path: String,
    pub binary: String,
}

impl Router {
    pub fn new(routes: Vec<Route>) -> Result<Router, UnknownFunction> {
        let routes = routes
            .into_iter()
            .map(|route| match Endpoint::from_binary_name(&route.binary) {
                Some(endpoint) => Ok((route, endpoint)),
                None => Err(UnknownFunction {
                    method: route.method,
                    path: route.path,
                    binary: route.binary,
                }),
            })
            .collect::<Result<_, _>>()?;
        Ok(Router {
            routes,
            fallbacks: Vec::new(),
            console: None,
        })
    }

    /// Serves the operator console at `/console/` (template.yaml's `serve-console`).
    pub fn with_console(mut self, site: ConsoleSite) -> Router {
        self.console = Some(site);
        self
    }

    /// Adds template.yaml's `ANY` routes, each to the method-not-allowed function.
    pub fn with_method_fallbacks(mut self, routes: Vec<Route>) -> Result<Router, UnknownFunction> {
        for route in routes {
            if route.binary != orders::inbound::http::method_not_allowed::BINARY {
                return Err(UnknownFunction {
                    method: route.method,
                    path: route.path,
                    binary: route.binary,
                });
            }
            self.fallbacks.push(route.path);
        }
        Ok(self)
    }

    /// The endpoint for `method` and `path`, or else 405 when another method is routed
    /// on this path and the template has an `ANY` route for it, or else 404.
    pub fn resolve(&self, method: &str, path: &str) -> Resolved {
        if let Some((endpoint, params)) = self.find(method, path) {
            return Resolved::Endpoint(endpoint, params);
        }
        let Some(fallback) = self
            .fallbacks
            .iter()
            .find(|p| orders::inbound::http::method_not_allowed::path_matches(p, path))
        else {
            return Resolved::NotFound;
        };
        let mut methods: Vec<&str> = self
            .routes
            .iter()
            .filter(|(route, _)| &route.path == fallback)
            .map(|(route, _)| route.method.as_str())
            .collect();
        methods.sort_unstable();
        methods.dedup();
        Resolved::MethodNotAllowed {
            path: fallback.clone(),
            allow: methods.join(", "),
        }
    }

    pub fn routes(&self) -> impl Iterator<Item = &(Route, Endpoint)> {
        self.routes.iter()
    }

    /// The endpoint and the path parameters, decoded as API Gateway decodes them.
    pub fn find(&self, method: &str, path: &str) -> Option<(Endpoint, HashMap<String, String>)> {
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        self.routes.iter().find_map(|(route, endpoint)| {
            if route.method != method {
                return None;
            }
            let pattern: Vec<&str> = route.path.split('/').collect();
            if pattern.len() != segments.len() {
                return None;
            }
            let mut params = HashMap::new();
            for (p, s) in pattern.iter().zip(&segments) {
                match p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    Some(name) if !s.is_empty() => {
                        let value = percent_encoding::percent_decode_str(s).decode_utf8().ok()?;
                        params.insert(name.to_string(), value.into_owned());
                    }
                    Some(_) => return None,
                    None if p == s => {}
                    None => return None,
                }
            }
            Some((*endpoint, params))
        })
    }
}

/// Serves until the listener fails; the caller stops it by dropping the task.
pub async fn serve(
    listener: TcpListener,
    app: Arc<Api>,
    router: Arc<Router>,
) -> std::io::Result<()> {
    loop {
        let (stream, _peer): (_, SocketAddr) = listener.accept().await?;
        let app = Arc::clone(&app);
        let router = Arc::clone(&router);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let app = Arc::clone(&app);
                let router = Arc::clone(&router);
                async move { Ok::<_, Infallible>(answer(&app, &router, request).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(app: &Api, router: &Router, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_string();
    if request.method() == hyper::Method::GET && path == "/health" {
        return plain(StatusCode::OK, "application/json", r#"{"status":"ok"}"#);
    }
    if let Some(console) = &router.console
        && ConsoleSite::owns(&path)
    {
        return to_hyper(console.respond(request.method().as_str(), &path));
    }
    let (endpoint, path_params) = match router.resolve(request.method().as_str(), &path) {
        Resolved::Endpoint(endpoint, params) => (endpoint, params),
        unrouted => return to_hyper(unrouted_response(request.method().as_str(), &unrouted)),
    };
    let (parts, body) = request.into_parts();
    // Read one byte past the limit so that the handler sees, and refuses, a body
    // that is too large, as it would behind API Gateway.
    let bytes = match Limited::new(body, MAX_BODY_BYTES + 1).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::from(vec![b' '; MAX_BODY_BYTES + 1]),
    };
    let lambda_request = lambda_request(parts, bytes, path_params);
    to_hyper(app.handle(endpoint, lambda_request).await)
}

fn to_hyper(response: lambda_http::Response<lambda_http::Body>) -> Response<Full<Bytes>> {
    let (parts, body) = response.into_parts();
    let bytes = match body {
        lambda_http::Body::Empty => Bytes::new(),
        lambda_http::Body::Text(text) => Bytes::from(text),
        lambda_http::Body::Binary(bytes) => Bytes::from(bytes),
        _ => Bytes::new(),
    };
    Response::from_parts(parts, Full::new(bytes))
}

/// The answer to a request no endpoint takes: 405 with `Allow` (what the deployed
/// method-not-allowed function answers), or a 404 problem `route_not_found`.
pub fn unrouted_response(
    method: &str,
    resolved: &Resolved,
) -> lambda_http::Response<lambda_http::Body> {
    match resolved {
        Resolved::MethodNotAllowed { path, allow } => {
            orders::inbound::http::method_not_allowed::response(method, path, allow)
        }
        _ => orders::inbound::http::method_not_allowed::not_found(),
    }
}

/// Shapes a request as API Gateway hands it to a function: the body as text (or
/// bytes), path and query parameters extracted and decoded.
pub fn lambda_request(
    parts: http::request::Parts,
    body: Bytes,
    path_params: HashMap<String, String>,
) -> lambda_http::Request {
    let path = parts.uri.path().to_string();
    let mut query: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()) {
        query
            .entry(k.into_owned())
            .or_default()
            .push(v.into_owned());
    }
    let body = if body.is_empty() {
        lambda_http::Body::Empty
    } else {
        match String::from_utf8(body.to_vec()) {
            Ok(text) => lambda_http::Body::Text(text),
            Err(e) => lambda_http::Body::Binary(e.into_bytes()),
        }
    };
    lambda_http::Request::from_parts(parts, body)
        .with_raw_http_path(path)
        .with_path_parameters(path_params)
        .with_query_string_parameters(query)
}

fn plain(
    status: StatusCode,
    content_type: &'static str,
    body: &'static str,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str, binary: &str) -> Route {
        Route {
            method: method.into(),
            path: path.into(),
            binary: binary.into(),
        }
    }

    #[test]
    fn matches_templates_and_decodes_parameters() {
        let router = Router::new(vec![
            route("GET", "/api/orders", "list-orders"),
            route("GET", "/api/orders/{order_id}", "get-order"),
            route(
                "PUT",
                "/api/orders/{order_id}/status",
                "update-order-status",
            ),
        ])
        .unwrap();
        assert_eq!(
            router.find("GET", "/api/orders").unwrap().0,
            Endpoint::ListOrders
        );
        let (endpoint, params) = router.find("PUT", "/api/orders/ORD%2F1/status").unwrap();
        assert_eq!(endpoint, Endpoint::UpdateOrderStatus);
        assert_eq!(params["order_id"], "ORD/1");
        assert!(router.find("DELETE", "/api/orders/x").is_none());
        assert!(router.find("GET", "/api/orders//status").is_none());
        assert!(Router::new(vec![route("GET", "/x", "nope")]).is_err());
        assert_eq!(
            router.resolve("DELETE", "/api/orders/x"),
            Resolved::NotFound,
            "no ANY route: 404, as API Gateway answers"
        );
        let router = router
            .with_method_fallbacks(vec![
                route("ANY", "/api/orders", "method-not-allowed"),
                route("ANY", "/api/orders/{order_id}", "method-not-allowed"),
            ])
            .unwrap();
        assert_eq!(
            router.resolve("DELETE", "/api/orders/x"),
            Resolved::MethodNotAllowed {
                path: "/api/orders/{order_id}".into(),
                allow: "GET".into()
            }
        );
        assert!(matches!(
            router.resolve("GET", "/api/orders/x"),
            Resolved::Endpoint(Endpoint::GetOrder, _)
        ));
        assert_eq!(router.resolve("GET", "/api/nope"), Resolved::NotFound);
    }
}
