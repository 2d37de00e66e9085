//! The operator console (console/, issue 21) as the template deploys it and the local
//! stack serves it: the same files and the same Content-Security-Policy from one list
//! (`orders::inbound::http::console`). Its behaviour in a browser is tested by
//! console/tests/ (scripts/console_test.sh, Playwright and Chromium).

use std::sync::Arc;

use orders::inbound::http::console::{self, ConsoleSite};
use orders::wiring::{LOCAL_MODE, Settings, console_site};
use orders_tests::{Stack, template, template_path};
use serde_norway::Value;

#[test]
fn the_template_serves_the_console_without_a_token_and_apart_from_the_api() {
    let mut routes: Vec<(String, String, String)> = template()
        .console_routes()
        .unwrap()
        .into_iter()
        .map(|r| (r.method, r.path, r.binary))
        .collect();
    routes.sort();
    let expected = [("GET", "/console"), ("GET", "/console/{proxy+}")]
        .map(|(m, p)| (m.to_string(), p.to_string(), console::BINARY.to_string()));
    assert_eq!(routes, expected);
    // Not an API route: docs/openapi.yaml and the API router never see it.
    assert!(
        template()
            .routes()
            .unwrap()
            .iter()
            .all(|r| r.binary != console::BINARY)
    );

    let text = std::fs::read_to_string(template_path()).unwrap();
    let document: Value = serde_norway::from_str(&text).unwrap();
    let function = &document["Resources"]["ServeConsoleFunction"];
    let events = function["Properties"]["Events"].as_mapping().unwrap();
    for (name, event) in events {
        assert_eq!(
            event["Properties"]["Auth"]["Authorizer"].as_str(),
            Some("NONE"),
            "{name:?}: the page must load before anyone signs in"
        );
    }
    // The console's own app client is a public code-flow client.
    let client = &document["Resources"]["ConsoleClient"]["Properties"];
    assert_eq!(client["GenerateSecret"].as_bool(), Some(false));
    assert_eq!(client["AllowedOAuthFlows"][0].as_str(), Some("code"));

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    assert!(root.join("functions/serve-console/main.rs").exists());
    let sample = std::fs::read_to_string(root.join("events/serve-console.json")).unwrap();
    let request = lambda_http::request::from_str(&sample).unwrap();
    let site = console_site(&Settings::default()).unwrap();
    let page = site.respond(request.method().as_str(), request.uri().path());
    assert_eq!(page.status(), 200);
}

#[tokio::test]
async fn the_dev_server_serves_the_console_with_the_functions_headers() {
    let stack = Stack::new().await;
    let local = Settings::default().with(LOCAL_MODE, "true");
    let site = console_site(&local).unwrap();
    let router = orders_dev::server::Router::new(template().routes().unwrap())
        .unwrap()
        .with_console(site.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(orders_dev::server::serve(
        listener,
        Arc::clone(&stack.app),
        Arc::new(router),
    ));
    let http = reqwest::Client::new();

    for (path, status, content_type) in [
        ("/console", 200, "text/html"),
        ("/console/", 200, "text/html"),
        ("/console/app.js", 200, "text/javascript"),
        ("/console/views/order.js", 200, "text/javascript"),
        ("/console/config.json", 200, "application/json"),
        ("/console/nope.js", 404, "text/plain"),
    ] {
        let response = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), status, "{path}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        };
        assert!(header("content-type").starts_with(content_type), "{path}");
        assert_eq!(
            header("content-security-policy"),
            site.content_security_policy(),
            "{path}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
    }
    let config = http
        .get(format!("{base}/console/config.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["sign_in"], "local");
    let post = http.post(format!("{base}/console/")).send().await.unwrap();
    assert_eq!(post.status(), 405);
    // The API beside it is untouched.
    let api = http.get(format!("{base}/api/orders")).send().await.unwrap();
    assert_eq!(api.status(), 401);
    assert!(ConsoleSite::owns("/console/app.js"));
    server.abort();
}
