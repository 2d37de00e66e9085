//! The operator console: the static files of `console/` (top of the repository),
//! embedded in the binary and served at `/console/` by the `serve-console` function and
//! by the local stack (`dev/`). One list of files and one set of headers for both, so
//! what `make dev` shows is what is deployed.
//!
//! The console talks to the API as any client does (same origin, bearer token); it
//! only needs to know how to sign in, which it reads from `/console/config.json`,
//! written here from the settings ([`SignIn`]).
//!
//! Every answer carries a strict Content-Security-Policy (scripts and styles from this
//! origin only: no inline script, no `eval`, no plugins, no framing), so that even a
//! value from the API that slipped into the page as markup could not run.

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response, service_fn};
use serde_json::json;

/// The binary (and template.yaml's `BuildProperties.Binary`) that serves the console.
pub const BINARY: &str = "serve-console";

/// Where the console lives on the API's origin.
pub const PREFIX: &str = "/console";

/// One file of `console/`, as it is served.
struct Asset {
    /// Below `/console/`.
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $content_type:expr) => {
        Asset {
            path: $path,
            content_type: $content_type,
            body: include_bytes!(concat!("../../../../console/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// The files served: everything in `console/` but its tests (a test of this module
/// checks the folder against this list).
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("auth.js", JS),
    asset!("dialog.js", JS),
    asset!("dom.js", JS),
    asset!("format.js", JS),
    asset!("views/signin.js", JS),
    asset!("views/orders.js", JS),
    asset!("views/order.js", JS),
    asset!("views/actions.js", JS),
    asset!("views/webhooks.js", JS),
];

/// The console's files, by their path below `/console/`.
pub fn files() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|a| a.path)
}

/// How operators sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignIn {
    /// `make dev`: a form into which a dev token is pasted.
    Local,
    /// Cognito's hosted UI, authorization code with PKCE, on a public app client.
    Cognito {
        /// The hosted UI's host: `orders-….auth.us-east-1.amazoncognito.com`.
        domain: String,
        client_id: String,
        /// Where Cognito sends the browser back: the console's own address, as the app
        /// client lists it among its callback URLs.
        redirect_uri: String,
    },
    /// Deployed without a console app client: the console says how to set one up.
    Off,
}

/// The scopes that make a caller an admin or the fulfillment service (the console shows
/// each role only the actions it may take; the API decides all the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles {
    pub admin_scope: String,
    pub fulfill_scope: String,
}

/// The console as one deployment serves it: its files, its settings and its headers.
#[derive(Debug, Clone)]
pub struct ConsoleSite {
    config: String,
    csp: String,
}

impl ConsoleSite {
    pub fn new(sign_in: &SignIn, roles: &Roles) -> ConsoleSite {
        let mut config = json!({
            "sign_in": "off",
            "admin_scope": roles.admin_scope,
            "fulfill_scope": roles.fulfill_scope,
        });
        // The token endpoint is the one place outside this origin the page talks to.
        let mut connect = "'self'".to_string();
        match sign_in {
            SignIn::Local => config["sign_in"] = json!("local"),
            SignIn::Cognito {
                domain,
                client_id,
                redirect_uri,
            } => {
                config["sign_in"] = json!("cognito");
                config["authorize_url"] = json!(format!("https://{domain}/oauth2/authorize"));
                config["token_url"] = json!(format!("https://{domain}/oauth2/token"));
                config["logout_url"] = json!(format!("https://{domain}/logout"));
                config["client_id"] = json!(client_id);
                config["redirect_uri"] = json!(redirect_uri);
                config["scopes"] = json!(["openid", roles.admin_scope, roles.fulfill_scope]);
                connect = format!("'self' https://{domain}");
            }
            SignIn::Off => {}
        }
        let csp = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src {connect}; base-uri 'none'; form-action 'self'; \
             frame-ancestors 'none'; object-src 'none'"
        );
        ConsoleSite {
            config: config.to_string(),
            csp,
        }
    }

    /// The Content-Security-Policy every answer carries.
    pub fn content_security_policy(&self) -> &str {
        &self.csp
    }

    /// Whether `path` is the console's (`/console`, `/console/…`).
    pub fn owns(path: &str) -> bool {
        path == PREFIX
            || path
                .strip_prefix(PREFIX)
                .is_some_and(|rest| rest.starts_with('/'))
    }

    /// The answer to `method` on `path`: a file, the settings, 404 or 405.
    pub fn respond(&self, method: &str, path: &str) -> Response<Body> {
        if method != "GET" && method != "HEAD" {
            let mut response = self.text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        let file = path
            .strip_prefix(PREFIX)
            .map(|rest| rest.trim_start_matches('/'))
            .unwrap_or(path);
        let mut response = match file {
            // The page itself, also at `/console` (its links are absolute).
            "" | "index.html" => self.asset(&ASSETS[0]),
            "config.json" => {
                let mut response = self.answer(
                    StatusCode::OK,
                    "application/json",
                    Body::Text(self.config.clone()),
                );
                response
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                response
            }
            file => match ASSETS.iter().find(|a| a.path == file) {
                Some(asset) => self.asset(asset),
                None => self.text(StatusCode::NOT_FOUND, "Not Found\n"),
            },
        };
        if method == "HEAD" {
            *response.body_mut() = Body::Empty;
        }
        response
    }

    fn asset(&self, asset: &Asset) -> Response<Body> {
        let body = match std::str::from_utf8(asset.body) {
            Ok(text) => Body::Text(text.to_string()),
            Err(_) => Body::Binary(asset.body.to_vec()),
        };
        self.answer(StatusCode::OK, asset.content_type, body)
    }

    fn text(&self, status: StatusCode, text: &str) -> Response<Body> {
        self.answer(
            status,
            "text/plain; charset=utf-8",
            Body::Text(text.to_string()),
        )
    }

    fn answer(&self, status: StatusCode, content_type: &'static str, body: Body) -> Response<Body> {
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Ok(csp) = HeaderValue::from_str(&self.csp) {
            headers.insert(header::CONTENT_SECURITY_POLICY, csp);
        }
        // Revalidated on every load: a new deployment shows at once.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        headers.insert(
            "cross-origin-opener-policy",
            HeaderValue::from_static("same-origin"),
        );
        response
    }
}

/// The `serve-console` function's whole life: every request answered from `site`.
pub async fn serve(site: ConsoleSite) -> Result<(), lambda_http::Error> {
    let site = std::sync::Arc::new(site);
    lambda_http::run(service_fn(move |request: Request| {
        let site = std::sync::Arc::clone(&site);
        async move {
            let path = match request.raw_http_path() {
                "" => request.uri().path().to_string(),
                path => path.to_string(),
            };
            Ok::<_, std::convert::Infallible>(site.respond(request.method().as_str(), &path))
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles() -> Roles {
        Roles {
            admin_scope: "orders/admin".into(),
            fulfill_scope: "orders/fulfill".into(),
        }
    }

    fn header<'a>(response: &'a Response<Body>, name: &str) -> &'a str {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn text(response: &Response<Body>) -> &str {
        match response.body() {
            Body::Text(text) => text,
            _ => "",
        }
    }

    #[test]
    fn serves_every_file_of_the_folder_but_its_tests() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../console");
        let mut on_disk = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let relative = path
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .to_string();
                if path.is_dir() {
                    if relative != "tests" {
                        dirs.push(path);
                    }
                } else if !relative.starts_with('.') {
                    on_disk.push(relative.replace('\\', "/"));
                }
            }
        }
        on_disk.sort();
        let mut served: Vec<String> = files().map(str::to_string).collect();
        served.sort();
        assert_eq!(on_disk, served, "console/ and the served list differ");
    }

    #[test]
    fn every_answer_carries_the_policy_and_no_inline_script_is_allowed() {
        let site = ConsoleSite::new(&SignIn::Local, &roles());
        let csp = site.content_security_policy();
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        for path in [
            "/console",
            "/console/",
            "/console/app.js",
            "/console/nope",
            "/console/config.json",
        ] {
            let response = site.respond("GET", path);
            assert_eq!(header(&response, "content-security-policy"), csp, "{path}");
            assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        }
        let page = site.respond("GET", "/console/");
        assert_eq!(page.status(), 200);
        assert!(header(&page, "content-type").starts_with("text/html"));
        assert!(text(&page).contains("<script type=\"module\" src=\"/console/app.js\">"));
        assert!(!text(&page).contains("<script>"), "no inline script");
        assert_eq!(site.respond("GET", "/console/views/order.js").status(), 200);
        assert_eq!(site.respond("GET", "/console/../Cargo.toml").status(), 404);
        assert_eq!(
            site.respond("GET", "/console/tests/test_console.py")
                .status(),
            404
        );
        let post = site.respond("POST", "/console/");
        assert_eq!(post.status(), 405);
        assert_eq!(header(&post, "allow"), "GET, HEAD");
        assert!(matches!(
            site.respond("HEAD", "/console/").body(),
            Body::Empty
        ));
    }

    #[test]
    fn the_settings_say_how_to_sign_in() {
        let local = ConsoleSite::new(&SignIn::Local, &roles());
        let config: serde_json::Value =
            serde_json::from_str(text(&local.respond("GET", "/console/config.json"))).unwrap();
        assert_eq!(config["sign_in"], "local");
        assert_eq!(config["admin_scope"], "orders/admin");

        let cognito = ConsoleSite::new(
            &SignIn::Cognito {
                domain: "orders-1.auth.eu-west-1.amazoncognito.com".into(),
                client_id: "4abc".into(),
                redirect_uri: "https://api.example.com/console/".into(),
            },
            &roles(),
        );
        let response = cognito.respond("GET", "/console/config.json");
        assert_eq!(header(&response, "cache-control"), "no-store");
        let config: serde_json::Value = serde_json::from_str(text(&response)).unwrap();
        assert_eq!(config["sign_in"], "cognito");
        assert_eq!(
            config["authorize_url"],
            "https://orders-1.auth.eu-west-1.amazoncognito.com/oauth2/authorize"
        );
        assert_eq!(config["client_id"], "4abc");
        assert_eq!(config["scopes"][1], "orders/admin");
        assert!(
            cognito
                .content_security_policy()
                .contains("connect-src 'self' https://orders-1.auth.eu-west-1.amazoncognito.com;")
        );
    }

    #[test]
    fn owns_only_its_prefix() {
        assert!(ConsoleSite::owns("/console"));
        assert!(ConsoleSite::owns("/console/app.js"));
        assert!(!ConsoleSite::owns("/consoles"));
        assert!(!ConsoleSite::owns("/api/orders"));
    }
}
