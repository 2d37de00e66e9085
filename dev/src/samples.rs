//! The sample events in `events/`, made runnable: a token minted for the caller each
//! sample names, the ids of what exists on this stack put in, and what the sample acts
//! on arranged first. `make invoke` and the tests (tests/tests/suite/samples.rs) both
//! build their events here, so what the tests prove is what `make invoke` sends.
//!
//! The samples carry the ids of the local stack's demo data: the order of the demo cart
//! (`OrderId::for_cart("abc123")`, [`SAMPLE_ORDER`]) and a webhook id that
//! [`arrange`] replaces with one that exists.

use std::path::{Path, PathBuf};
use std::time::Duration;

use orders::auth::issue_hs256_token;
use orders::inbound::http::{Api, Endpoint, console, method_not_allowed};
use orders::wiring::Wiring;
use serde_json::{Value, json};

/// The demo cart's order, as the samples name it (`OrderId::for_cart("abc123")`).
pub const SAMPLE_ORDER: &str = "ORDKT9Y9G7TXGSP1QME";
/// The webhook the webhook samples name; [`arrange`] puts a real one in its place.
pub const SAMPLE_WEBHOOK: &str = "wh_3f9a0c1e7b2d4a6c8e0f1a3b";
/// The receiver `events/create-webhook.json` subscribes.
pub const SAMPLE_HOOK_URL: &str = "https://erp.example.com/hooks/orders";
/// The return the return samples name; [`arrange`] puts a real one in its place.
pub const SAMPLE_RETURN: &str = "RETXN15YXR4KRCKNXHQ";
/// Where a sample's `Authorization` goes: replaced by a token for the caller its claims
/// name.
pub const TOKEN_PLACEHOLDER: &str = "Bearer <token>";
/// The payment intent the payment samples name; [`arrange`] puts the demo order's in
/// its place.
pub const SAMPLE_INTENT: &str = "pi_3QSampleIntentOrders";
/// The credit note the get-credit-note sample names; [`arrange`] puts the number the
/// demo order's refund got in its place.
pub const SAMPLE_CREDIT_NOTE: &str = "CN-2026-000001";
/// Where a Stripe sample's `Stripe-Signature` goes: replaced by a signature of its body
/// with the local webhook secret.
pub const SIGNATURE_PLACEHOLDER: &str = "<stripe-signature>";
/// Where a SendGrid sample's signature goes: replaced by one made with the local key.
pub const SENDGRID_SIGNATURE_PLACEHOLDER: &str = "<sendgrid-signature>";
/// How long a minted token lives: long enough to copy the event and invoke it again.
const TOKEN_TTL: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("{path}: {why}")]
    Unreadable { path: PathBuf, why: String },
    #[error("{0}: no such function (its sample would be events/{0}.json)")]
    UnknownFunction(String),
    #[error("{name}: not an API Gateway HTTP API event: {why}")]
    NotAnApiEvent { name: String, why: String },
    #[error("arranging {name}: {why}")]
    Arrange { name: String, why: String },
}

/// What a sample is handed to: an API endpoint, or one of the event consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Api(Endpoint),
    /// `ANY` on a known path: its one answer is 405 with `Allow`.
    MethodNotAllowed,
    /// The operator console's static files (`GET /console/{proxy+}`).
    ServeConsole,
    FulfillOrders,
    NotifyCustomers,
    DeliverWebhooks,
    PublishEvents,
    SettlePayments,
    ExpireOrders,
    EraseCustomerData,
    SuppressBounces,
}

impl Function {
    /// The function whose binary (and sample) is called `name`.
    pub fn named(name: &str) -> Option<Function> {
        match name {
            "fulfill-orders" => Some(Function::FulfillOrders),
            "notify-customers" => Some(Function::NotifyCustomers),
            "deliver-webhooks" => Some(Function::DeliverWebhooks),
            "publish-events" => Some(Function::PublishEvents),
            "settle-payments" => Some(Function::SettlePayments),
            "expire-orders" => Some(Function::ExpireOrders),
            "erase-customer-data" => Some(Function::EraseCustomerData),
            "suppress-bounces" => Some(Function::SuppressBounces),
            method_not_allowed::BINARY => Some(Function::MethodNotAllowed),
            console::BINARY => Some(Function::ServeConsole),
            _ => Endpoint::ALL
                .into_iter()
                .find(|e| e.binary_name() == name)
                .map(Function::Api),
        }
    }
}

/// The ids a sample's placeholders become. Empty: left as the sample has it.
#[derive(Debug, Clone, Default)]
pub struct Ids {
    pub order: String,
    pub webhook: String,
    pub hook_url: String,
    pub intent: String,
    pub return_id: String,
    pub credit_note: String,
}

/// The local Stripe webhook secret: `STRIPE_WEBHOOK_SECRET`, or the documented default.
pub fn stripe_webhook_secret() -> String {
    std::env::var("STRIPE_WEBHOOK_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| crate::local::DEV_STRIPE_WEBHOOK_SECRET.to_string())
}

/// The samples in `events_dir`, by function name, sorted.
pub fn names(events_dir: &Path) -> Result<Vec<String>, SampleError> {
    let unreadable = |e: std::io::Error| SampleError::Unreadable {
        path: events_dir.to_path_buf(),
        why: e.to_string(),
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(events_dir).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        if path.extension().is_some_and(|e| e == "json")
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
        {
            names.push(stem.to_string());
        }
    }
    names.sort();
    Ok(names)
}

/// The text of `events_dir/<name>.json`.
pub fn read(events_dir: &Path, name: &str) -> Result<String, SampleError> {
    let path = events_dir.join(format!("{name}.json"));
    std::fs::read_to_string(&path).map_err(|e| SampleError::Unreadable {
        path,
        why: e.to_string(),
    })
}

/// `events_dir/<name>.json` with `ids` put in and, for an API event, a token signed
/// with `secret` for the caller (`sub`, `scope`) its authorizer claims name.
pub fn load(events_dir: &Path, name: &str, ids: &Ids, secret: &[u8]) -> Result<Value, SampleError> {
    let unreadable = |why: String| SampleError::Unreadable {
        path: events_dir.join(format!("{name}.json")),
        why,
    };
    let mut event = substitute(&read(events_dir, name)?, ids).map_err(unreadable)?;
    mint(&mut event, secret).map_err(unreadable)?;
    sign_stripe(&mut event, &stripe_webhook_secret());
    sign_sendgrid(&mut event);
    Ok(event)
}

/// A sample's text with the ids of `ids` in place of its own.
pub fn substitute(text: &str, ids: &Ids) -> Result<Value, String> {
    let mut text = text.to_string();
    for (from, to) in [
        (SAMPLE_ORDER, &ids.order),
        (SAMPLE_WEBHOOK, &ids.webhook),
        (SAMPLE_HOOK_URL, &ids.hook_url),
        (SAMPLE_INTENT, &ids.intent),
        (SAMPLE_RETURN, &ids.return_id),
        (SAMPLE_CREDIT_NOTE, &ids.credit_note),
    ] {
        if !to.is_empty() {
            text = text.replace(from, to);
        }
    }
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// Replaces an API event's placeholder token with one signed with `secret` for the
/// caller its authorizer claims name (`sub`, `scope`). Other events are left alone.
pub fn mint(event: &mut Value, secret: &[u8]) -> Result<(), String> {
    if event["headers"]["authorization"].as_str() != Some(TOKEN_PLACEHOLDER) {
        return Ok(());
    }
    let claims = &event["requestContext"]["authorizer"]["jwt"]["claims"];
    let sub = claims["sub"]
        .as_str()
        .ok_or("the sample's authorizer claims name no sub")?;
    let token = issue_hs256_token(
        secret,
        sub,
        claims["scope"].as_str().unwrap_or(""),
        TOKEN_TTL,
    );
    event["headers"]["authorization"] = json!(format!("Bearer {token}"));
    Ok(())
}

/// Signs a Stripe sample's body as Stripe would (`t=<now>,v1=<HMAC-SHA256 of t.body>`),
/// in place of its placeholder. Other events are left alone.
pub fn sign_stripe(event: &mut Value, webhook_secret: &str) {
    if event["headers"]["stripe-signature"].as_str() != Some(SIGNATURE_PLACEHOLDER) {
        return;
    }
    let body = event["body"].as_str().unwrap_or_default();
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, webhook_secret.as_bytes());
    let tag = aws_lc_rs::hmac::sign(&key, format!("{t}.{body}").as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    event["headers"]["stripe-signature"] = json!(format!("t={t},v1={hex}"));
}

/// Signs a SendGrid sample's body as SendGrid would (ECDSA P-256 over the timestamp
/// and the body) with the local key pair, in place of its placeholder.
pub fn sign_sendgrid(event: &mut Value) {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    let header = "x-twilio-email-event-webhook-signature";
    if event["headers"][header].as_str() != Some(SENDGRID_SIGNATURE_PLACEHOLDER) {
        return;
    }
    let Ok(pkcs8) = STANDARD.decode(crate::local::DEV_SENDGRID_PRIVATE_KEY) else {
        return;
    };
    let Ok(pair) = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &pkcs8,
    ) else {
        return;
    };
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
        .to_string();
    let mut signed = t.as_bytes().to_vec();
    signed.extend_from_slice(event["body"].as_str().unwrap_or_default().as_bytes());
    let Ok(signature) = pair.sign(&aws_lc_rs::rand::SystemRandom::new(), &signed) else {
        return;
    };
    event["headers"]["x-twilio-email-event-webhook-timestamp"] = json!(t);
    event["headers"][header] = json!(STANDARD.encode(signature.as_ref()));
}

/// An API event as `lambda_http` hands it to a function's handler.
pub fn api_request(name: &str, event: &Value) -> Result<lambda_http::Request, SampleError> {
    lambda_http::request::from_str(&event.to_string()).map_err(|e| SampleError::NotAnApiEvent {
        name: name.to_string(),
        why: e.to_string(),
    })
}

/// Sends the API event `event` (of sample `name`) through `api`; answers the status
/// and the body.
async fn send(api: &Api, name: &str, event: &Value) -> Result<(u16, Value), SampleError> {
    let Some(Function::Api(endpoint)) = Function::named(name) else {
        return Err(SampleError::UnknownFunction(name.to_string()));
    };
    let response = api.handle(endpoint, api_request(name, event)?).await;
    let body = match response.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        lambda_http::Body::Binary(bytes) => serde_json::from_slice(bytes).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    Ok((response.status().as_u16(), body))
}

/// Puts in place, through `api` (the handlers the functions run), what sample `name`
/// acts on, and answers the ids to prepare it with. Idempotent, so it can run against
/// a stack that has seen other samples (`make dev`):
///
/// - every sample but create-order: the demo order exists (created by the create-order
///   sample itself, so that sample then answers its replay);
/// - update-order-status and create-shipment (the fulfillment service ships) and
///   fulfill-orders (an `order.confirmed`): the order is confirmed, as an admin would;
/// - get/delete-webhook and list-webhook-deliveries: the create-webhook sample's
///   subscription exists, and its id replaces the sample's.
///
/// Needs the demo cart (`provision::DEMO_CART`) in the stack's carts table.
pub async fn arrange(
    wiring: &Wiring,
    api: &Api,
    events_dir: &Path,
    name: &str,
    secret: &[u8],
) -> Result<Ids, SampleError> {
    let failed = |why: String| SampleError::Arrange {
        name: name.to_string(),
        why,
    };
    let function =
        Function::named(name).ok_or_else(|| SampleError::UnknownFunction(name.into()))?;
    let as_shipped = Ids::default();
    let mut ids = Ids {
        order: SAMPLE_ORDER.to_string(),
        ..Ids::default()
    };
    if matches!(
        function,
        Function::MethodNotAllowed | Function::ServeConsole
    ) {
        // Answered from the path alone: nothing to put in place.
        return Ok(ids);
    }
    if function != Function::Api(Endpoint::CreateOrder) {
        let create = load(events_dir, "create-order", &as_shipped, secret)?;
        let (status, body) = send(api, "create-order", &create).await?;
        // 409 cart_already_ordered: the demo order was placed another way (the README's curl).
        if status != 201 && body["code"] != "cart_already_ordered" {
            return Err(failed(format!("creating the demo order: {status} {body}")));
        }
    }
    if matches!(
        function,
        Function::Api(
            Endpoint::UpdateOrderStatus
                | Endpoint::GetOrderInvoice
                | Endpoint::CreateShipment
                | Endpoint::VoidShipment
                | Endpoint::CreateReturn
                | Endpoint::ApproveReturn
                | Endpoint::DeclineReturn
                | Endpoint::CancelReturn
                | Endpoint::ReceiveReturn
                | Endpoint::RefundReturn
        ) | Function::FulfillOrders
            | Function::NotifyCustomers
    ) {
        // The update-order-status sample, sent by an admin confirming the payment.
        let mut confirm =
            substitute(&read(events_dir, "update-order-status")?, &as_shipped).map_err(&failed)?;
        let claims = &mut confirm["requestContext"]["authorizer"]["jwt"]["claims"];
        claims["sub"] = json!("admin");
        claims["scope"] = json!("orders:admin");
        let body = json!({"status": "confirmed", "reason": "payment received"}).to_string();
        confirm["headers"]["content-length"] = json!(body.len().to_string());
        confirm["body"] = json!(body);
        mint(&mut confirm, secret).map_err(&failed)?;
        let (status, body) = send(api, "update-order-status", &confirm).await?;
        // 409: the order has moved past confirmed already; the sample answers for itself.
        if status != 200 && status != 409 {
            return Err(failed(format!(
                "confirming the demo order: {status} {body}"
            )));
        }
    }
    // The void-shipment sample voids the label the create-shipment sample buys when
    // its body names no tracking number (Shippo on): the same key names the same parcel.
    if function == Function::Api(Endpoint::VoidShipment) {
        let mut ship =
            substitute(&read(events_dir, "create-shipment")?, &as_shipped).map_err(&failed)?;
        let body = "{}".to_string();
        ship["headers"]["content-length"] = json!(body.len().to_string());
        ship["body"] = json!(body);
        mint(&mut ship, secret).map_err(&failed)?;
        let (status, body) = send(api, "create-shipment", &ship).await?;
        if status != 201 {
            return Err(failed(format!(
                "buying the sample's label: {status} {body}"
            )));
        }
    }
    // The return samples act on a delivered demo order: what is unshipped ships, the
    // order is delivered, and each step's sample gets a return of its own (asked for
    // by support with a key named after the sample, so a second run finds the same).
    if let Function::Api(
        Endpoint::CreateReturn
        | Endpoint::ApproveReturn
        | Endpoint::DeclineReturn
        | Endpoint::CancelReturn
        | Endpoint::ReceiveReturn
        | Endpoint::RefundReturn,
    ) = function
    {
        let mut ship =
            substitute(&read(events_dir, "create-shipment")?, &as_shipped).map_err(&failed)?;
        let body =
            json!({"carrier": "usps", "tracking_number": "9400111899223197428491"}).to_string();
        ship["headers"]["content-length"] = json!(body.len().to_string());
        ship["body"] = json!(body);
        mint(&mut ship, secret).map_err(&failed)?;
        let (status, body) = send(api, "create-shipment", &ship).await?;
        // 409: everything shipped already.
        if status != 201 && status != 409 {
            return Err(failed(format!("shipping the demo order: {status} {body}")));
        }
        let mut deliver =
            substitute(&read(events_dir, "update-order-status")?, &as_shipped).map_err(&failed)?;
        let claims = &mut deliver["requestContext"]["authorizer"]["jwt"]["claims"];
        claims["sub"] = json!("admin");
        claims["scope"] = json!("orders:admin");
        let body = json!({"status": "delivered"}).to_string();
        deliver["headers"]["content-length"] = json!(body.len().to_string());
        deliver["body"] = json!(body);
        mint(&mut deliver, secret).map_err(&failed)?;
        let (status, body) = send(api, "update-order-status", &deliver).await?;
        if status != 200 {
            return Err(failed(format!(
                "delivering the demo order: {status} {body}"
            )));
        }
        // The refund sample releases the refund its receive left for later.
        let (owner, product) = match function {
            Function::Api(Endpoint::RefundReturn | Endpoint::ReceiveReturn) => {
                ("receive-return", "p002")
            }
            Function::Api(Endpoint::ApproveReturn) => ("approve-return", "p001"),
            _ => (name, "p002"),
        };
        if function != Function::Api(Endpoint::CreateReturn) {
            let mut ask =
                substitute(&read(events_dir, "create-return")?, &as_shipped).map_err(&failed)?;
            let body =
                json!({"items": [{"product_id": product, "quantity": 1, "reason": "damaged"}]})
                    .to_string();
            ask["headers"]["content-length"] = json!(body.len().to_string());
            ask["headers"]["idempotency-key"] = json!(format!("sample-{owner}"));
            ask["body"] = json!(body);
            mint(&mut ask, secret).map_err(&failed)?;
            let (status, body) = send(api, "create-return", &ask).await?;
            if status != 201 {
                return Err(failed(format!(
                    "asking for the sample's return: {status} {body}"
                )));
            }
            ids.return_id = body["return_id"].as_str().unwrap_or_default().to_string();
        }
        if function == Function::Api(Endpoint::RefundReturn) {
            let mut receive = load(events_dir, "receive-return", &ids, secret)?;
            mint(&mut receive, secret).map_err(&failed)?;
            let (status, body) = send(api, "receive-return", &receive).await?;
            if status != 200 {
                return Err(failed(format!(
                    "receiving the sample's return: {status} {body}"
                )));
            }
        }
    }
    // An invoice exists once the notifications consumer handled the confirmation: its
    // own sample is that event.
    if function == Function::Api(Endpoint::GetOrderInvoice) {
        let event = load(events_dir, "notify-customers", &ids, secret)?;
        let event = serde_json::from_value(event).map_err(|e| failed(e.to_string()))?;
        let notifications = wiring.notifications().map_err(|e| failed(e.to_string()))?;
        let failures = orders::inbound::sqs::notify(&notifications, event)
            .await
            .batch_item_failures;
        if !failures.is_empty() {
            return Err(failed("issuing the demo order's invoice failed".into()));
        }
    }
    if matches!(
        function,
        Function::Api(Endpoint::StripeWebhook | Endpoint::CreateRefund | Endpoint::GetCreditNote)
    ) {
        ids.intent = demo_intent(api, events_dir, secret)
            .await?
            .map_err(&failed)?;
    }
    if matches!(
        function,
        Function::Api(Endpoint::CreateRefund | Endpoint::GetCreditNote)
    ) {
        // Paid, as the customer and Stripe would: the test card at the Stripe stand-in,
        // then Stripe's signed event (the stripe-webhook sample).
        pay_at_stripe(&ids.intent).await.map_err(&failed)?;
        let notice = load(events_dir, "stripe-webhook", &ids, secret)?;
        let (status, body) = send(api, "stripe-webhook", &notice).await?;
        if status != 200 {
            return Err(failed(format!("paying the demo order: {status} {body}")));
        }
    }
    if function == Function::Api(Endpoint::GetCreditNote) {
        ids.credit_note = demo_credit_note(wiring, api, events_dir, secret)
            .await?
            .map_err(&failed)?;
    }
    if function == Function::SettlePayments {
        // The settle-payments sample is the demo order's `order.cancelled`.
        let cancel = load(events_dir, "cancel-order", &as_shipped, secret)?;
        let (status, body) = send(api, "cancel-order", &cancel).await?;
        if status != 200 && status != 409 {
            return Err(failed(format!(
                "cancelling the demo order: {status} {body}"
            )));
        }
    }
    // A suppression to clear: the suppress-bounces sample's bounce.
    if function == Function::Api(Endpoint::DeleteSuppression) {
        let event = load(events_dir, "suppress-bounces", &ids, secret)?;
        let event = serde_json::from_value(event).map_err(|e| failed(e.to_string()))?;
        let suppressions = wiring
            .suppression_service()
            .map_err(|e| failed(e.to_string()))?;
        let failures = orders::inbound::sqs::suppress(&suppressions, event)
            .await
            .batch_item_failures;
        if !failures.is_empty() {
            return Err(failed("suppressing the sample's address failed".into()));
        }
    }
    // An erasure to read: the request-erasure sample's.
    if function == Function::Api(Endpoint::GetErasure) {
        let request = load(events_dir, "request-erasure", &as_shipped, secret)?;
        let (status, body) = send(api, "request-erasure", &request).await?;
        if status != 202 {
            return Err(failed(format!("requesting the erasure: {status} {body}")));
        }
    }
    if matches!(
        function,
        Function::Api(
            Endpoint::GetWebhook | Endpoint::DeleteWebhook | Endpoint::ListWebhookDeliveries
        )
    ) {
        ids.webhook = sample_webhook(api, events_dir, secret)
            .await?
            .map_err(failed)?;
    }
    Ok(ids)
}

/// The demo order's payment intent, as its owner reads it (payments must be on).
async fn demo_intent(
    api: &Api,
    events_dir: &Path,
    secret: &[u8],
) -> Result<Result<String, String>, SampleError> {
    let get = load(events_dir, "get-order", &Ids::default(), secret)?;
    let (status, body) = send(api, "get-order", &get).await?;
    Ok(match body["payment"]["intent_id"].as_str() {
        Some(intent) => Ok(intent.to_string()),
        None => Err(format!(
            "the demo order has no payment (are payments on? STRIPE_API_BASE): {status} {body}"
        )),
    })
}

/// The number of the credit note of the demo order's refund: the create-refund
/// sample refunds part of the paid order (its key makes a second time a replay), and
/// the notifications consumer issues the refund's credit note, as it does on the
/// refund's event (once per refund).
async fn demo_credit_note(
    wiring: &Wiring,
    api: &Api,
    events_dir: &Path,
    secret: &[u8],
) -> Result<Result<String, String>, SampleError> {
    let refund = load(events_dir, "create-refund", &Ids::default(), secret)?;
    let (status, body) = send(api, "create-refund", &refund).await?;
    if !(200..300).contains(&status) {
        return Ok(Err(format!("refunding the demo order: {status} {body}")));
    }
    let issued = async {
        let admin = orders::domain::Principal {
            user_id: "admin".into(),
            admin: true,
            fulfillment: false,
            refunds: true,
            webhooks: false,
            email: None,
            phone: None,
        };
        let order = wiring
            .order_service()
            .map_err(|e| e.to_string())?
            .get(&admin, SAMPLE_ORDER)
            .await
            .map_err(|e| e.to_string())?;
        let refund = order
            .payment
            .as_ref()
            .and_then(|p| p.refunds.last())
            .ok_or("the demo order has no refund")?;
        let note = wiring
            .notifications()
            .map_err(|e| e.to_string())?
            .issue_credit_note(&order, refund)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the demo order's refund got no credit note")?;
        Ok::<_, String>(note.number.to_string())
    };
    Ok(issued.await)
}

/// Pays `intent` with the test card at the Stripe stand-in (`STRIPE_API_BASE`):
/// localstripe takes the payment method in an update of the intent, then a bare
/// confirm. An intent paid already is left alone.
async fn pay_at_stripe(intent: &str) -> Result<(), String> {
    let base = std::env::var("STRIPE_API_BASE").map_err(|_| "STRIPE_API_BASE is not set")?;
    let http = reqwest::Client::new();
    let post = |path: String, body: &'static str| {
        http.post(format!("{base}{path}"))
            .bearer_auth(crate::local::DEV_STRIPE_SECRET_KEY)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let current = http
        .get(format!("{base}/v1/payment_intents/{intent}"))
        .bearer_auth(crate::local::DEV_STRIPE_SECRET_KEY)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    if current.contains("\"succeeded\"") {
        return Ok(());
    }
    for (path, body) in [
        (
            format!("/v1/payment_intents/{intent}"),
            "payment_method=pm_card_visa",
        ),
        (format!("/v1/payment_intents/{intent}/confirm"), ""),
    ] {
        let response = post(path, body).await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!(
                "the Stripe stand-in answered {}",
                response.status()
            ));
        }
    }
    Ok(())
}

/// The id of a subscription of the create-webhook sample's receiver: one that exists,
/// or a new one.
async fn sample_webhook(
    api: &Api,
    events_dir: &Path,
    secret: &[u8],
) -> Result<Result<String, String>, SampleError> {
    let as_shipped = Ids::default();
    let list = load(events_dir, "list-webhooks", &as_shipped, secret)?;
    let (_, listed) = send(api, "list-webhooks", &list).await?;
    let existing = listed["webhooks"].as_array().and_then(|hooks| {
        hooks
            .iter()
            .find(|h| h["url"] == SAMPLE_HOOK_URL)
            .and_then(|h| h["id"].as_str().or(h["webhook_id"].as_str()))
    });
    if let Some(id) = existing {
        return Ok(Ok(id.to_string()));
    }
    let create = load(events_dir, "create-webhook", &as_shipped, secret)?;
    let (status, body) = send(api, "create-webhook", &create).await?;
    Ok(
        match (status, body["id"].as_str().or(body["webhook_id"].as_str())) {
            (201, Some(id)) => Ok(id.to_string()),
            _ => Err(format!("subscribing the sample webhook: {status} {body}")),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::DEMO_CART;

    #[test]
    fn the_samples_order_is_the_demo_carts() {
        assert_eq!(
            orders::domain::OrderId::for_cart(DEMO_CART.0).as_str(),
            SAMPLE_ORDER
        );
    }

    #[test]
    fn every_sample_is_a_function() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
        for name in names(&dir).unwrap() {
            assert!(Function::named(&name).is_some(), "{name}");
        }
    }

    #[test]
    fn a_token_is_minted_for_the_samples_caller_and_ids_put_in() {
        let text = r#"{"headers": {"authorization": "Bearer <token>"},
            "rawPath": "/api/webhooks/wh_3f9a0c1e7b2d4a6c8e0f1a3b",
            "requestContext": {"authorizer": {"jwt": {"claims": {"sub": "admin", "scope": "orders:admin"}}}}}"#;
        let ids = Ids {
            webhook: "wh_real".into(),
            ..Ids::default()
        };
        let mut event = substitute(text, &ids).unwrap();
        mint(&mut event, b"0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(event["rawPath"], "/api/webhooks/wh_real");
        let bearer = event["headers"]["authorization"].as_str().unwrap();
        assert!(bearer.starts_with("Bearer ey"), "{bearer}");
    }
}
