use super::*;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

const SECRET: &[u8] = b"unit-test-secret-at-least-32-bytes-long";
const RSA_KID: &str = "test-rsa-1";
const EC_KID: &str = "test-ec-1";
// Fixed test-only keys generated with openssl; the JWKs hold their public halves.
const RSA_PRIVATE_PEM: &str = include_str!("../../tests/fixtures/auth/rsa_private.pem");
const RSA_PUBLIC_PEM: &str = include_str!("../../tests/fixtures/auth/rsa_public.pem");
const EC_PRIVATE_PEM: &str = include_str!("../../tests/fixtures/auth/ec_private.pem");
const RSA_JWK: &str = include_str!("../../tests/fixtures/auth/rsa_public.jwk.json");
const EC_JWK: &str = include_str!("../../tests/fixtures/auth/ec_public.jwk.json");

// ---- token helpers ----

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn claims(sub: &str, scope: &str) -> Value {
    json!({ "sub": sub, "scope": scope, "iat": now(), "exp": now() + 300 })
}

/// PEM → DER by hand, so the tests need no `use_pem` feature.
fn pem_der(pem: &str) -> Vec<u8> {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(b64).unwrap()
}

fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_der(&pem_der(RSA_PRIVATE_PEM))
}

fn ec_key() -> EncodingKey {
    EncodingKey::from_ec_der(&pem_der(EC_PRIVATE_PEM))
}

fn sign(alg: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
    install_crypto_provider();
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn hs(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        None,
        claims,
        &EncodingKey::from_secret(SECRET),
    )
}

fn rs(kid: &str, claims: &Value) -> String {
    sign(Algorithm::RS256, Some(kid), claims, &rsa_key())
}

fn es(kid: &str, claims: &Value) -> String {
    sign(Algorithm::ES256, Some(kid), claims, &ec_key())
}

/// An unsigned token, built by hand because jsonwebtoken refuses to make one.
fn unsigned(header: &Value, claims: &Value) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.", part(header), part(claims))
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn check(auth: &Authenticator, token: &str) -> Result<Principal, AuthError> {
    auth.authenticate(Some(&bearer(token))).await
}

#[track_caller]
fn assert_invalid(result: Result<Principal, AuthError>, detail: &str) {
    match result {
        Err(AuthError::Invalid(d)) => assert_eq!(d, detail),
        other => panic!("expected Invalid({detail:?}), got {other:?}"),
    }
}

// ---- a loopback JWKS endpoint that counts its requests ----

struct JwksServer {
    url: String,
    hits: Arc<AtomicUsize>,
    /// What the next request gets; tests change it to rotate keys or misbehave.
    response: Arc<std::sync::Mutex<Reply>>,
}

#[derive(Clone)]
struct Reply {
    status: u16,
    /// Extra header lines, each ending in CRLF.
    headers: String,
    body: String,
    /// Send Content-Length; without it the body ends when the connection closes.
    content_length: bool,
}

impl Reply {
    fn new(status: u16, body: String) -> Self {
        Self {
            status,
            headers: String::new(),
            body,
            content_length: true,
        }
    }
}

impl JwksServer {
    async fn start(jwks: &[&str]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Self {
            url: format!(
                "http://{}/.well-known/jwks.json",
                listener.local_addr().unwrap()
            ),
            hits: Arc::default(),
            response: Arc::new(std::sync::Mutex::new(Reply::new(200, jwks_json(jwks)))),
        };
        let (hits, response) = (server.hits.clone(), server.response.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                read_request(&stream).await;
                hits.fetch_add(1, Ordering::SeqCst);
                let reply = response.lock().unwrap().clone();
                let length = if reply.content_length {
                    format!("Content-Length: {}\r\n", reply.body.len())
                } else {
                    String::new()
                };
                let bytes = format!(
                    "HTTP/1.1 {} X\r\nContent-Type: application/json\r\n{}{length}\
                     Connection: close\r\n\r\n{}",
                    reply.status, reply.headers, reply.body
                );
                write_all(&stream, bytes.as_bytes()).await;
            }
        });
        server
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn serve(&self, status: u16, body: String) {
        self.serve_reply(Reply::new(status, body));
    }

    fn serve_reply(&self, reply: Reply) {
        *self.response.lock().unwrap() = reply;
    }

    fn auth(&self) -> Authenticator {
        Authenticator::jwks(&self.url)
    }

    /// An authenticator that may refetch at once, to observe refetches without waiting.
    fn eager_auth(&self) -> Authenticator {
        let mut auth = self.auth();
        if let KeySource::Jwks(jwks) = &mut auth.keys {
            jwks.refetch_interval = Duration::ZERO;
        }
        auth
    }
}

fn jwks_json(keys: &[&str]) -> String {
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| serde_json::from_str(k).unwrap())
        .collect();
    json!({ "keys": keys }).to_string()
}

// tokio's `io-util` feature is not enabled, so read and write with the readiness API.
async fn read_request(stream: &TcpStream) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        stream.readable().await.unwrap();
        match stream.try_read(&mut buf) {
            Ok(0) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// Stops quietly on a write error: a client that gives up early (the size cap) resets the
/// connection, and the server must keep serving the next test request.
async fn write_all(stream: &TcpStream, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        if stream.writable().await.is_err() {
            return;
        }
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// A loopback URL nobody listens on: connection refused, immediately.
async fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/jwks.json")
}

// ---- fixtures ----

#[test]
fn fixture_jwks_match_the_private_keys() {
    install_crypto_provider();
    let expected_rsa = Jwk::from_encoding_key(&rsa_key(), Algorithm::RS256).unwrap();
    let expected_ec = Jwk::from_encoding_key(&ec_key(), Algorithm::ES256).unwrap();
    let rsa: Jwk = serde_json::from_str(RSA_JWK).unwrap();
    let ec: Jwk = serde_json::from_str(EC_JWK).unwrap();
    assert_eq!(rsa.algorithm, expected_rsa.algorithm);
    assert_eq!(ec.algorithm, expected_ec.algorithm);
}

// ---- HS256 mode ----

/// Issue 23, defect 11: the refund and webhooks scopes grant only their own; the admin
/// scope grants both.
#[tokio::test]
async fn refund_and_webhooks_scopes_grant_their_own_and_admin_their_union() {
    let auth = Authenticator::hs256(SECRET);
    let roles = |p: Principal| (p.admin, p.refunds, p.webhooks, p.fulfillment);
    for (scope, want) in [
        ("orders:refund", (false, true, false, false)),
        ("orders:webhooks", (false, false, true, false)),
        ("orders:admin", (true, true, true, false)),
        ("orders:refund orders:webhooks", (false, true, true, false)),
        ("", (false, false, false, false)),
    ] {
        let principal = check(&auth, &hs(&claims("u", scope))).await.unwrap();
        assert_eq!(roles(principal), want, "{scope:?}");
    }
    let settings = AuthSettings {
        jwt_secret: Some(String::from_utf8(SECRET.to_vec()).unwrap()),
        refund_scope: "orders/refund".into(),
        webhooks_scope: "orders/webhooks".into(),
        ..AuthSettings::default()
    };
    let auth = Authenticator::from_settings(&settings).unwrap();
    let principal = check(&auth, &hs(&claims("u", "orders/refund")))
        .await
        .unwrap();
    assert_eq!(roles(principal), (false, true, false, false));
    let blank = AuthSettings {
        webhooks_scope: " ".into(),
        ..settings
    };
    assert!(matches!(
        Authenticator::from_settings(&blank),
        Err(AuthConfigError::InvalidScope("WEBHOOKS_SCOPE"))
    ));
}

#[tokio::test]
async fn hs256_accepts_a_valid_token() {
    let auth = Authenticator::hs256(SECRET);
    let principal = check(&auth, &hs(&claims("user-1", ""))).await.unwrap();
    assert_eq!(
        principal,
        Principal {
            user_id: "user-1".into(),
            admin: false,
            fulfillment: false,
            refunds: false,
            webhooks: false,
            email: None,
            phone: None,
        }
    );
}

#[tokio::test]
async fn scopes_are_parsed() {
    let auth = Authenticator::hs256(SECRET);
    let roles = |scope: &'static str| {
        let auth = &auth;
        async move {
            let p = check(auth, &hs(&claims("u", scope))).await.unwrap();
            (p.admin, p.fulfillment)
        }
    };
    assert_eq!(roles("orders:admin").await, (true, false));
    assert_eq!(roles("orders:fulfill").await, (false, true));
    assert_eq!(
        roles("openid  orders:fulfill orders:admin").await,
        (true, true)
    );
    assert_eq!(roles("orders:administrator orders").await, (false, false));
    let no_scope = json!({ "sub": "u", "exp": now() + 60 });
    assert_eq!(check(&auth, &hs(&no_scope)).await.unwrap().user_id, "u");
}

#[tokio::test]
async fn issued_dev_tokens_verify() {
    let auth = Authenticator::hs256(DEV_JWT_SECRET.as_bytes());
    let ttl = Duration::from_secs(3600);
    let token = issue_hs256_token(DEV_JWT_SECRET.as_bytes(), "dev-user", "orders:admin", ttl);
    let principal = check(&auth, &token).await.unwrap();
    assert_eq!(
        (principal.user_id.as_str(), principal.admin),
        ("dev-user", true)
    );

    let plain = issue_hs256_token(DEV_JWT_SECRET.as_bytes(), "u", "", ttl);
    let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(&plain).unwrap();
    assert!(
        claims.get("scope").is_none(),
        "empty scope must be omitted: {claims}"
    );
    let exp = claims["exp"].as_u64().unwrap();
    assert_eq!(exp - claims["iat"].as_u64().unwrap(), 3600);
}

#[tokio::test]
async fn expired_token_is_rejected() {
    let auth = Authenticator::hs256(SECRET);
    let token = hs(&json!({ "sub": "u", "exp": now() - 120 }));
    assert_invalid(check(&auth, &token).await, "token expired");
}

#[tokio::test]
async fn expiry_within_the_leeway_is_tolerated() {
    let auth = Authenticator::hs256(SECRET);
    let token = hs(&json!({ "sub": "u", "exp": now() - 5 }));
    assert!(check(&auth, &token).await.is_ok());
}

#[tokio::test]
async fn token_used_before_nbf_is_rejected() {
    let auth = Authenticator::hs256(SECRET);
    let early = hs(&json!({ "sub": "u", "nbf": now() + 120, "exp": now() + 600 }));
    assert_invalid(check(&auth, &early).await, "token not yet valid");
    let ok = hs(&json!({ "sub": "u", "nbf": now() - 1, "exp": now() + 600 }));
    assert!(check(&auth, &ok).await.is_ok());
}

#[tokio::test]
async fn exp_and_sub_are_required() {
    let auth = Authenticator::hs256(SECRET);
    let no_exp = hs(&json!({ "sub": "u" }));
    assert_invalid(check(&auth, &no_exp).await, "missing exp claim");
    let no_sub = hs(&json!({ "exp": now() + 60 }));
    assert_invalid(check(&auth, &no_sub).await, "missing sub claim");
    let empty_sub = hs(&json!({ "sub": " ", "exp": now() + 60 }));
    assert_invalid(check(&auth, &empty_sub).await, "missing sub claim");
}

#[tokio::test]
async fn wrong_secret_is_a_bad_signature() {
    let auth = Authenticator::hs256(SECRET);
    let forged = sign(
        Algorithm::HS256,
        None,
        &claims("u", "orders:admin"),
        &EncodingKey::from_secret(b"another-secret-another-secret-xx"),
    );
    assert_invalid(check(&auth, &forged).await, "bad signature");
}

#[tokio::test]
async fn tampered_claims_are_a_bad_signature() {
    let auth = Authenticator::hs256(SECRET);
    let token = hs(&claims("u", ""));
    let parts: Vec<&str> = token.split('.').collect();
    let evil = URL_SAFE_NO_PAD.encode(claims("u", "orders:admin").to_string());
    let tampered = format!("{}.{}.{}", parts[0], evil, parts[2]);
    assert_invalid(check(&auth, &tampered).await, "bad signature");
}

#[tokio::test]
async fn missing_or_non_bearer_header_is_missing() {
    let auth = Authenticator::hs256(SECRET);
    for header in [
        None,
        Some(""),
        Some("Bearer"),
        Some("Bearer   "),
        Some("Basic dXNlcjpwdw=="),
    ] {
        let result = auth.authenticate(header).await;
        assert!(
            matches!(result, Err(AuthError::Missing)),
            "{header:?}: {result:?}"
        );
    }
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive() {
    let auth = Authenticator::hs256(SECRET);
    let token = hs(&claims("u", ""));
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let header = format!("{scheme} {token}");
        assert!(auth.authenticate(Some(&header)).await.is_ok(), "{scheme}");
    }
}

#[tokio::test]
async fn garbage_is_a_malformed_token() {
    let auth = Authenticator::hs256(SECRET);
    for token in ["abc", "a.b.c", "a.b"] {
        assert_invalid(check(&auth, token).await, "malformed token");
    }
}

#[tokio::test]
async fn alg_none_is_rejected() {
    let auth = Authenticator::hs256(SECRET);
    for alg in ["none", "None", "NONE"] {
        let token = unsigned(
            &json!({ "alg": alg, "typ": "JWT" }),
            &claims("u", "orders:admin"),
        );
        assert_invalid(check(&auth, &token).await, "malformed token");
    }
    // A real algorithm name with the signature stripped.
    let stripped = unsigned(&json!({ "alg": "HS256" }), &claims("u", "orders:admin"));
    assert_invalid(check(&auth, &stripped).await, "bad signature");
}

#[tokio::test]
async fn secret_mode_accepts_only_hs256() {
    let auth = Authenticator::hs256(SECRET);
    let rs_token = rs(RSA_KID, &claims("u", ""));
    assert_invalid(check(&auth, &rs_token).await, "algorithm not allowed");
    let hs512 = sign(
        Algorithm::HS512,
        None,
        &claims("u", ""),
        &EncodingKey::from_secret(SECRET),
    );
    assert_invalid(check(&auth, &hs512).await, "algorithm not allowed");
}

#[tokio::test]
async fn critical_headers_are_rejected() {
    let auth = Authenticator::hs256(SECRET);
    let mut header = Header::new(Algorithm::HS256);
    header.crit = Some(vec!["exp".into()]);
    let token =
        jsonwebtoken::encode(&header, &claims("u", ""), &EncodingKey::from_secret(SECRET)).unwrap();
    assert_invalid(check(&auth, &token).await, "unsupported critical header");
}

#[tokio::test]
async fn issuer_is_checked_when_configured() {
    let auth = Authenticator::hs256(SECRET).with_issuer("https://issuer.example");
    let with_iss = |iss: &str| hs(&json!({ "sub": "u", "iss": iss, "exp": now() + 60 }));
    assert!(
        check(&auth, &with_iss("https://issuer.example"))
            .await
            .is_ok()
    );
    assert_invalid(
        check(&auth, &with_iss("https://evil.example")).await,
        "wrong issuer",
    );
    assert_invalid(
        check(&auth, &hs(&claims("u", ""))).await,
        "missing iss claim",
    );
}

#[tokio::test]
async fn audience_is_checked_when_configured() {
    let auth = Authenticator::hs256(SECRET).with_audience("orders-api");
    let with_aud = |aud: Value| hs(&json!({ "sub": "u", "aud": aud, "exp": now() + 60 }));
    assert!(check(&auth, &with_aud(json!("orders-api"))).await.is_ok());
    assert!(
        check(&auth, &with_aud(json!(["other", "orders-api"])))
            .await
            .is_ok()
    );
    assert_invalid(
        check(&auth, &with_aud(json!("other-api"))).await,
        "wrong audience",
    );
    assert_invalid(
        check(&auth, &hs(&claims("u", ""))).await,
        "missing aud claim",
    );

    // Without a configured audience, any `aud` is accepted.
    let open = Authenticator::hs256(SECRET);
    assert!(check(&open, &with_aud(json!("anything"))).await.is_ok());
}

// ---- Cognito token shapes ----

/// A Cognito-shaped access token: `client_id`, no `aud`.
fn access_token(client_id: &str, scope: &str) -> String {
    hs(&json!({
        "sub": "svc", "client_id": client_id, "token_use": "access",
        "scope": scope, "exp": now() + 60,
    }))
}

#[tokio::test]
async fn access_token_matches_the_audience_by_client_id() {
    let auth = Authenticator::hs256(SECRET).with_audience("client-1");
    let p = check(&auth, &access_token("client-1", "orders:admin"))
        .await
        .unwrap();
    assert_eq!((p.user_id.as_str(), p.admin), ("svc", true));
    assert_invalid(
        check(&auth, &access_token("client-2", "")).await,
        "wrong audience",
    );
    // `aud` wins: a token for another audience cannot pass on its client_id.
    let both =
        hs(&json!({ "sub": "u", "aud": "other", "client_id": "client-1", "exp": now() + 60 }));
    assert_invalid(check(&auth, &both).await, "wrong audience");
    let neither = hs(&json!({ "sub": "u", "exp": now() + 60 }));
    assert_invalid(check(&auth, &neither).await, "missing aud claim");
    // With no audience configured, client_id is not looked at.
    let open = Authenticator::hs256(SECRET);
    check(&open, &access_token("anyone", "")).await.unwrap();
}

/// `JWT_AUDIENCE` may list the app clients whose tokens the API takes (the service
/// client and the operator console's).
#[tokio::test]
async fn any_listed_audience_is_accepted() {
    let auth = Authenticator::hs256(SECRET).with_audience("client-1, console-1");
    check(&auth, &access_token("client-1", "")).await.unwrap();
    check(&auth, &access_token("console-1", "")).await.unwrap();
    assert_invalid(
        check(&auth, &access_token("client-1, console-1", "")).await,
        "wrong audience",
    );
    assert_invalid(
        check(&auth, &access_token("console", "")).await,
        "wrong audience",
    );
}

#[tokio::test]
async fn id_tokens_are_accepted_without_roles() {
    let auth = Authenticator::hs256(SECRET).with_audience("client-1");
    let id_token = hs(&json!({
        "sub": "alice", "aud": "client-1", "token_use": "id",
        "scope": "orders:admin orders:fulfill", "exp": now() + 60,
    }));
    let p = check(&auth, &id_token).await.unwrap();
    assert_eq!(
        p,
        Principal {
            user_id: "alice".into(),
            admin: false,
            fulfillment: false,
            refunds: false,
            webhooks: false,
            email: None,
            phone: None,
        }
    );
}

#[tokio::test]
async fn other_token_uses_are_rejected() {
    let auth = Authenticator::hs256(SECRET);
    for token_use in ["refresh", "ID", "", "admin"] {
        let token = hs(&json!({ "sub": "u", "token_use": token_use, "exp": now() + 60 }));
        assert_invalid(check(&auth, &token).await, "unsupported token_use");
    }
    let access = hs(&json!({ "sub": "u", "token_use": "access", "exp": now() + 60 }));
    check(&auth, &access).await.unwrap();
}

// ---- JWKS mode ----

#[tokio::test]
async fn jwks_accepts_rs256_and_es256_and_caches_the_set() {
    let server = JwksServer::start(&[RSA_JWK, EC_JWK]).await;
    let auth = server.auth();
    assert_eq!(server.hits(), 0, "keys are fetched lazily");

    let p = check(&auth, &rs(RSA_KID, &claims("rsa-user", "orders:fulfill")))
        .await
        .unwrap();
    assert_eq!((p.user_id.as_str(), p.fulfillment), ("rsa-user", true));
    let p = check(&auth, &es(EC_KID, &claims("ec-user", "")))
        .await
        .unwrap();
    assert_eq!(p.user_id, "ec-user");
    check(&auth, &rs(RSA_KID, &claims("again", "")))
        .await
        .unwrap();
    assert_eq!(server.hits(), 1, "one fetch serves every later token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_requests_share_one_fetch() {
    let server = JwksServer::start(&[RSA_JWK]).await;
    let auth = Arc::new(server.auth());
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let auth = auth.clone();
            let token = rs(RSA_KID, &claims(&format!("user-{i}"), ""));
            tokio::spawn(async move { check(&auth, &token).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn unknown_kid_triggers_exactly_one_refetch() {
    let server = JwksServer::start(&[RSA_JWK]).await;
    let auth = server.eager_auth();
    check(&auth, &rs(RSA_KID, &claims("u", ""))).await.unwrap();
    assert_eq!(server.hits(), 1);

    let stranger = rs("no-such-kid", &claims("u", ""));
    assert_invalid(check(&auth, &stranger).await, "unknown key id");
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn refetches_are_rate_limited() {
    let server = JwksServer::start(&[RSA_JWK]).await;
    let auth = server.auth();
    check(&auth, &rs(RSA_KID, &claims("u", ""))).await.unwrap();
    for i in 0..20 {
        let stranger = rs(&format!("made-up-{i}"), &claims("u", ""));
        assert_invalid(check(&auth, &stranger).await, "unknown key id");
    }
    assert_eq!(
        server.hits(),
        1,
        "within the refetch interval no request is made"
    );
}

#[tokio::test]
async fn first_use_with_unknown_kid_fetches_once() {
    let server = JwksServer::start(&[RSA_JWK]).await;
    let auth = server.eager_auth();
    assert_invalid(
        check(&auth, &rs("no-such-kid", &claims("u", ""))).await,
        "unknown key id",
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn rotated_in_key_is_picked_up_by_the_refetch() {
    let server = JwksServer::start(&[RSA_JWK]).await;
    let auth = server.eager_auth();
    check(&auth, &rs(RSA_KID, &claims("u", ""))).await.unwrap();

    // The issuer rotates: EC key added, RSA key withdrawn.
    server.serve(200, jwks_json(&[EC_JWK]));
    check(&auth, &es(EC_KID, &claims("u", ""))).await.unwrap();
    assert_eq!(server.hits(), 2);
    assert_invalid(
        check(&auth, &rs(RSA_KID, &claims("u", ""))).await,
        "unknown key id",
    );
}

/// Issue 23, defect 7: a key the issuer withdraws stops verifying once the cached set is
/// past its max age (an hour, `max_age` here standing in for it), without any unknown
/// `kid` to prompt a refetch.
#[tokio::test]
async fn a_withdrawn_key_stops_verifying_once_the_set_is_past_its_max_age() {
    let server = JwksServer::start(&[RSA_JWK]).await;
    let mut auth = server.auth();
    if let KeySource::Jwks(jwks) = &mut auth.keys {
        jwks.refetch_interval = Duration::ZERO;
        jwks.max_age = Duration::ZERO;
    }
    check(&auth, &rs(RSA_KID, &claims("u", ""))).await.unwrap();
    server.serve(200, jwks_json(&[EC_JWK]));
    assert_invalid(
        check(&auth, &rs(RSA_KID, &claims("u", ""))).await,
        "unknown key id",
    );
    assert_eq!(server.hits(), 2);
    // An issuer that cannot answer has withdrawn nothing: the stale set still serves.
    server.serve(200, jwks_json(&[RSA_JWK]));
    check(&auth, &rs(RSA_KID, &claims("u", ""))).await.unwrap();
    server.serve(503, String::new());
    check(&auth, &rs(RSA_KID, &claims("u", ""))).await.unwrap();
}

/// The answer's `Cache-Control` shortens the max age (here to nothing).
#[tokio::test]
async fn cache_control_bounds_how_long_the_set_is_believed() {
    let server = JwksServer::start(&[RSA_JWK]).await;
    let mut reply = Reply::new(200, jwks_json(&[RSA_JWK]));
    reply.headers = "Cache-Control: public, max-age=0\r\n".into();
    server.serve_reply(reply);
    let auth = server.eager_auth();
    check(&auth, &rs(RSA_KID, &claims("u", ""))).await.unwrap();
    server.serve(200, jwks_json(&[EC_JWK]));
    assert_invalid(
        check(&auth, &rs(RSA_KID, &claims("u", ""))).await,
        "unknown key id",
    );
    // Without it, the set is believed (no refetch for a known kid).
    let server = JwksServer::start(&[RSA_JWK]).await;
    let auth = server.eager_auth();
    check(&auth, &rs(RSA_KID, &claims("u", ""))).await.unwrap();
    check(&auth, &rs(RSA_KID, &claims("u", ""))).await.unwrap();
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_rejected() {
    let server = JwksServer::start(&[RSA_JWK]).await;
    let auth = server.auth();
    let confused = EncodingKey::from_secret(RSA_PUBLIC_PEM.as_bytes());
    let token = sign(
        Algorithm::HS256,
        Some(RSA_KID),
        &claims("u", "orders:admin"),
        &confused,
    );
    assert_invalid(check(&auth, &token).await, "algorithm not allowed");
}

#[tokio::test]
async fn each_key_verifies_only_its_own_algorithm() {
    let server = JwksServer::start(&[RSA_JWK, EC_JWK]).await;
    let auth = server.auth();
    // Signed by the EC key but claiming the RSA key's kid, and vice versa.
    assert_invalid(
        check(&auth, &es(RSA_KID, &claims("u", ""))).await,
        "algorithm not allowed",
    );
    assert_invalid(
        check(&auth, &rs(EC_KID, &claims("u", ""))).await,
        "algorithm not allowed",
    );
    let ps256 = sign(
        Algorithm::PS256,
        Some(RSA_KID),
        &claims("u", ""),
        &rsa_key(),
    );
    assert_invalid(check(&auth, &ps256).await, "algorithm not allowed");
}

#[tokio::test]
async fn jwks_mode_rejects_alg_none_and_kidless_tokens() {
    let server = JwksServer::start(&[RSA_JWK]).await;
    let auth = server.auth();
    let none = unsigned(&json!({ "alg": "none", "kid": RSA_KID }), &claims("u", ""));
    assert_invalid(check(&auth, &none).await, "malformed token");
    let kidless = sign(Algorithm::RS256, None, &claims("u", ""), &rsa_key());
    assert_invalid(check(&auth, &kidless).await, "missing key id");
}

#[tokio::test]
async fn unusable_jwks_entries_are_skipped() {
    let hmac_key = json!({ "kty": "oct", "kid": "hmac", "k": URL_SAFE_NO_PAD.encode(SECRET) });
    let mut enc_key: Value = serde_json::from_str(EC_JWK).unwrap();
    enc_key["use"] = json!("enc");
    let mut mislabelled: Value = serde_json::from_str(RSA_JWK).unwrap();
    mislabelled["kid"] = json!("rs512");
    mislabelled["alg"] = json!("RS512");
    let body = json!({ "keys": [hmac_key, enc_key, mislabelled, { "kty": "weird" },
        serde_json::from_str::<Value>(RSA_JWK).unwrap()] });

    let server = JwksServer::start(&[]).await;
    server.serve(200, body.to_string());
    let auth = server.auth();
    let hs_token = sign(
        Algorithm::HS256,
        Some("hmac"),
        &claims("u", ""),
        &EncodingKey::from_secret(SECRET),
    );
    assert_invalid(check(&auth, &hs_token).await, "unknown key id");
    assert_invalid(
        check(&auth, &es(EC_KID, &claims("u", ""))).await,
        "unknown key id",
    );
    assert_invalid(
        check(&auth, &rs("rs512", &claims("u", ""))).await,
        "unknown key id",
    );
    // The good key in the same set still works.
    check(&auth, &rs(RSA_KID, &claims("u", ""))).await.unwrap();
}

#[tokio::test]
async fn unreachable_jwks_is_keys_unavailable() {
    let auth = Authenticator::jwks(dead_url().await);
    let result = check(&auth, &rs(RSA_KID, &claims("u", ""))).await;
    assert!(
        matches!(result, Err(AuthError::KeysUnavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn broken_jwks_responses_are_keys_unavailable() {
    let server = JwksServer::start(&[]).await;
    let token = rs(RSA_KID, &claims("u", ""));
    for (status, body) in [(500, "oops"), (200, "<html>not json</html>")] {
        server.serve(status, body.into());
        let result = check(&server.eager_auth(), &token).await;
        assert!(
            matches!(result, Err(AuthError::KeysUnavailable(_))),
            "{status}: {result:?}"
        );
    }
}

#[tokio::test]
async fn failed_refetch_keeps_known_keys_and_retries_later() {
    let server = JwksServer::start(&[RSA_JWK]).await;
    let auth = server.eager_auth();
    check(&auth, &rs(RSA_KID, &claims("u", ""))).await.unwrap();

    server.serve(503, String::new());
    let result = check(&auth, &es(EC_KID, &claims("u", ""))).await;
    assert!(
        matches!(result, Err(AuthError::KeysUnavailable(_))),
        "{result:?}"
    );
    check(&auth, &rs(RSA_KID, &claims("u", ""))).await.unwrap();

    // The issuer recovers; the next miss fetches again.
    server.serve(200, jwks_json(&[RSA_JWK, EC_JWK]));
    check(&auth, &es(EC_KID, &claims("u", ""))).await.unwrap();
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn jwks_redirects_are_not_followed() {
    let elsewhere = JwksServer::start(&[RSA_JWK]).await;
    let server = JwksServer::start(&[]).await;
    let mut reply = Reply::new(302, String::new());
    reply.headers = format!("Location: {}\r\n", elsewhere.url);
    server.serve_reply(reply);
    let result = check(&server.auth(), &rs(RSA_KID, &claims("u", ""))).await;
    match result {
        Err(AuthError::KeysUnavailable(reason)) => {
            assert_eq!(reason, "JWKS endpoint answered HTTP 302")
        }
        other => panic!("expected KeysUnavailable, got {other:?}"),
    }
    assert_eq!(elsewhere.hits(), 0, "the redirect target was never asked");
}

/// A valid key set padded with trailing whitespace to exactly `len` bytes.
fn padded_jwks(len: usize) -> String {
    let mut body = jwks_json(&[RSA_JWK]);
    assert!(body.len() <= len);
    body.extend(std::iter::repeat_n(' ', len - body.len()));
    body
}

#[tokio::test]
async fn oversized_jwks_is_refused_with_or_without_content_length() {
    let server = JwksServer::start(&[]).await;
    let token = rs(RSA_KID, &claims("u", ""));
    for content_length in [true, false] {
        server.serve_reply(Reply {
            content_length,
            ..Reply::new(200, padded_jwks(jwks::MAX_JWKS_BYTES + 1))
        });
        match check(&server.eager_auth(), &token).await {
            Err(AuthError::KeysUnavailable(reason)) => {
                assert_eq!(reason, "JWKS response too large", "{content_length}")
            }
            other => panic!("content_length {content_length}: {other:?}"),
        }
        // Exactly at the cap is fine.
        server.serve_reply(Reply {
            content_length,
            ..Reply::new(200, padded_jwks(jwks::MAX_JWKS_BYTES))
        });
        check(&server.eager_auth(), &token).await.unwrap();
    }
}

#[tokio::test]
async fn refetch_without_usable_keys_keeps_the_cached_ones() {
    let server = JwksServer::start(&[RSA_JWK]).await;
    let auth = server.eager_auth();
    check(&auth, &rs(RSA_KID, &claims("u", ""))).await.unwrap();

    let hmac_only = json!({ "keys": [{ "kty": "oct", "kid": "h", "k": "c2VjcmV0" }] });
    for body in [r#"{"keys":[]}"#.to_owned(), hmac_only.to_string()] {
        server.serve(200, body);
        let result = check(&auth, &es(EC_KID, &claims("u", ""))).await;
        match result {
            Err(AuthError::KeysUnavailable(reason)) => {
                assert_eq!(reason, "JWKS has no usable signing key")
            }
            other => panic!("expected KeysUnavailable, got {other:?}"),
        }
        // The key fetched before still verifies.
        check(&auth, &rs(RSA_KID, &claims("u", ""))).await.unwrap();
    }
    assert_eq!(server.hits(), 3);

    // On first use, an empty set is an outage, not "unknown key id".
    let empty = JwksServer::start(&[]).await;
    let result = check(&empty.auth(), &rs(RSA_KID, &claims("u", ""))).await;
    assert!(
        matches!(result, Err(AuthError::KeysUnavailable(_))),
        "{result:?}"
    );
}

// ---- configuration ----

fn from(vars: &[(&str, &str)]) -> Result<Authenticator, AuthConfigError> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Authenticator::from_settings(&AuthSettings::from_vars(|name| vars.get(name).cloned()))
}

#[test]
fn config_needs_a_key_source() {
    assert!(matches!(from(&[]), Err(AuthConfigError::NotConfigured)));
    assert!(matches!(
        from(&[(ENV_SECRET, " ")]),
        Err(AuthConfigError::NotConfigured)
    ));
    assert!(matches!(
        from(&[(ENV_SECRET, "short")]),
        Err(AuthConfigError::WeakSecret)
    ));
    assert!(matches!(
        from(&[(ENV_JWKS_URL, "file:///etc/passwd")]),
        Err(AuthConfigError::InvalidJwksUrl)
    ));
}

#[tokio::test]
async fn config_secret_mode_with_issuer_and_audience() {
    let auth = from(&[
        (ENV_SECRET, DEV_JWT_SECRET),
        (ENV_LOCAL_MODE, "true"),
        (ENV_ISSUER, "iss-1"),
        (ENV_AUDIENCE, "aud-1"),
    ])
    .unwrap();
    assert!(matches!(auth.keys, KeySource::Secret(_)));
    assert_eq!(auth.issuer.as_deref(), Some("iss-1"));
    assert_eq!(auth.audience.as_deref(), Some("aud-1"));
    let claims = json!({ "sub": "u", "iss": "iss-1", "aud": "aud-1", "exp": now() + 60 });
    let key = EncodingKey::from_secret(DEV_JWT_SECRET.as_bytes());
    check(&auth, &sign(Algorithm::HS256, None, &claims, &key))
        .await
        .unwrap();
}

#[tokio::test]
async fn config_jwks_wins_over_secret() {
    let server = JwksServer::start(&[RSA_JWK]).await;
    let auth = from(&[(ENV_JWKS_URL, &server.url), (ENV_SECRET, DEV_JWT_SECRET)]).unwrap();
    assert!(matches!(auth.keys, KeySource::Jwks(_)));
    let key = EncodingKey::from_secret(DEV_JWT_SECRET.as_bytes());
    let hs_token = sign(Algorithm::HS256, Some(RSA_KID), &claims("u", ""), &key);
    assert_invalid(check(&auth, &hs_token).await, "algorithm not allowed");
    check(&auth, &rs(RSA_KID, &claims("u", ""))).await.unwrap();
}

#[test]
fn settings_from_the_environment_and_their_defaults() {
    let settings = AuthSettings::from_vars(|_| None);
    assert_eq!(settings, AuthSettings::default());
    assert_eq!(settings.admin_scope, DEFAULT_ADMIN_SCOPE);
    assert_eq!(settings.fulfill_scope, DEFAULT_FULFILL_SCOPE);
    assert!(!settings.local_mode);

    let vars: HashMap<&str, &str> = [
        (ENV_SECRET, " s "),
        (ENV_JWKS_URL, "https://issuer.example/jwks.json"),
        (ENV_ISSUER, "iss"),
        (ENV_AUDIENCE, "aud"),
        (ENV_ADMIN_SCOPE, "orders/admin"),
        (ENV_FULFILL_SCOPE, " "),
        (ENV_LOCAL_MODE, "TRUE"),
    ]
    .into();
    let settings = AuthSettings::from_vars(|name| vars.get(name).map(|v| v.to_string()));
    assert_eq!(
        settings,
        AuthSettings {
            jwt_secret: Some("s".into()),
            jwks_url: Some("https://issuer.example/jwks.json".into()),
            issuer: Some("iss".into()),
            audience: Some("aud".into()),
            admin_scope: "orders/admin".into(),
            // Empty counts as unset: the default.
            fulfill_scope: DEFAULT_FULFILL_SCOPE.into(),
            refund_scope: DEFAULT_REFUND_SCOPE.into(),
            webhooks_scope: DEFAULT_WEBHOOKS_SCOPE.into(),
            local_mode: true,
        }
    );
    for (value, local) in [("1", true), ("true", true), ("0", false), ("yes", false)] {
        let settings =
            AuthSettings::from_vars(|name| (name == ENV_LOCAL_MODE).then(|| value.to_owned()));
        assert_eq!(settings.local_mode, local, "LOCAL_MODE={value}");
    }
    assert!(
        !format!("{settings:?}").contains("\"s\""),
        "secret redacted"
    );
}

#[tokio::test]
async fn dev_secret_is_refused_outside_local_mode() {
    for local in [None, Some("false"), Some("0")] {
        let mut vars = vec![(ENV_SECRET, DEV_JWT_SECRET)];
        vars.extend(local.map(|v| (ENV_LOCAL_MODE, v)));
        let err = from(&vars).unwrap_err();
        assert!(
            matches!(err, AuthConfigError::DevSecret),
            "{local:?}: {err:?}"
        );
        assert!(err.to_string().contains("JWT_SECRET"), "{err}");
    }
    for local in ["true", "1"] {
        let auth = from(&[(ENV_SECRET, DEV_JWT_SECRET), (ENV_LOCAL_MODE, local)]).unwrap();
        let token = issue_hs256_token(DEV_JWT_SECRET.as_bytes(), "u", "", Duration::from_secs(60));
        check(&auth, &token).await.unwrap();
    }
    // Short secrets are refused in local mode too: there is no reason to allow them.
    let short = [(ENV_SECRET, "short"), (ENV_LOCAL_MODE, "true")];
    let err = from(&short).unwrap_err();
    assert!(matches!(err, AuthConfigError::WeakSecret));
    assert!(err.to_string().contains("JWT_SECRET"), "{err}");
    // A secret of one's own passes without local mode.
    from(&[(ENV_SECRET, std::str::from_utf8(SECRET).unwrap())]).unwrap();
}

#[tokio::test]
async fn scope_names_come_from_the_settings() {
    let secret = std::str::from_utf8(SECRET).unwrap();
    let auth = from(&[
        (ENV_SECRET, secret),
        (ENV_ADMIN_SCOPE, "orders/admin"),
        (ENV_FULFILL_SCOPE, "orders/fulfill"),
    ])
    .unwrap();
    let roles = |scope: &'static str| {
        let auth = &auth;
        async move {
            let p = check(auth, &hs(&claims("u", scope))).await.unwrap();
            (p.admin, p.fulfillment)
        }
    };
    assert_eq!(roles("orders/admin").await, (true, false));
    assert_eq!(roles("openid orders/fulfill").await, (false, true));
    // The defaults no longer grant anything once other names are configured.
    assert_eq!(roles("orders:admin orders:fulfill").await, (false, false));
}

#[test]
fn scope_settings_must_be_one_name() {
    let secret = std::str::from_utf8(SECRET).unwrap();
    for (setting, value) in [
        (ENV_ADMIN_SCOPE, "orders admin"),
        (ENV_FULFILL_SCOPE, "a\tb"),
    ] {
        let err = from(&[(ENV_SECRET, secret), (setting, value)]).unwrap_err();
        assert!(
            matches!(err, AuthConfigError::InvalidScope(name) if name == setting),
            "{err:?}"
        );
        assert!(err.to_string().contains(setting), "{err}");
    }
    let empty = AuthSettings {
        jwt_secret: Some(secret.into()),
        admin_scope: String::new(),
        ..AuthSettings::default()
    };
    assert!(matches!(
        Authenticator::from_settings(&empty),
        Err(AuthConfigError::InvalidScope("ADMIN_SCOPE"))
    ));
}

#[test]
fn authenticator_can_be_shared_across_tasks() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: T) {}
    let auth = Authenticator::jwks("http://127.0.0.1:9/jwks.json");
    send_sync(&auth);
    send(auth.authenticate(None));
}

#[test]
fn debug_output_hides_the_secret() {
    let shown = format!("{:?}", Authenticator::hs256(SECRET));
    assert!(
        !shown.contains(std::str::from_utf8(SECRET).unwrap()),
        "{shown}"
    );
}
