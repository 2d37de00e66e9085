//! Telling the customer: the notifications consumer on SQS batches of the events the
//! publisher makes, sending email through SES on the emulator (read back from its
//! `GET /_ses/messages`) and SMS through a Twilio stand-in; the SendGrid and Twilio
//! adapters against stand-ins that answer as the documented APIs do; the contact on
//! the order, and who sees it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use base64::Engine;
use orders::adapters::dynamo::DynamoOrderStore;
use orders::adapters::http::sendgrid::SendGridMailer;
use orders::adapters::http::twilio::TwilioMessenger;
use orders::domain::{Order, OrderId};
use orders::events::{Envelope, OrderEvent, SOURCE};
use orders::inbound::sqs;
use orders::ports::{
    Attachment, EmailMessage, Mailer, OrderStore, SendError, TextMessage, TextMessenger,
};
use orders::services::notifications::Notifications;
use orders::wiring::Settings;
use orders_tests::{ADMIN, Call, FULFILL, SECRET, Stack, checkout, token, unique};
use serde_json::{Value, json};

// ----------------------------------------------------------------------------------
// Harness
// ----------------------------------------------------------------------------------

pub const TWILIO_SID: &str = "AC00000000000000000000000000000001";
const TWILIO_TOKEN: &str = "twilio-test-token";
const TWILIO_FROM: &str = "+15005550006";
const SENDGRID_KEY: &str = "SG.test-key";

/// A token for `user` with `email` and `phone_number` claims.
pub fn token_with_contact(user: &str, email: Option<&str>, phone: Option<&str>) -> String {
    let mut claims = json!({});
    if let Some(email) = email {
        claims["email"] = json!(email);
        claims["email_verified"] = json!(true);
    }
    if let Some(phone) = phone {
        claims["phone_number"] = json!(phone);
        claims["phone_number_verified"] = json!(true);
    }
    orders::auth::issue_hs256_token_with_claims(
        SECRET.as_bytes(),
        user,
        "",
        &claims,
        std::time::Duration::from_secs(3600),
    )
}

/// A fresh address for one test.
pub fn address(name: &str) -> String {
    format!("{}@example.com", unique(name))
}

/// Every email SES on the emulator sent to `to`, oldest first (scripts/emulator_ses.py).
pub async fn sent_emails(to: &str) -> Vec<Value> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("the emulator");
    let bytes = reqwest::Client::new()
        .get(format!(
            "{endpoint}/_ses/messages?to={}",
            to.replace('+', "%2B")
        ))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    answer["messages"].as_array().cloned().unwrap_or_default()
}

/// Places an order from a fresh one-line cart for `user`, with `token`; its id.
pub async fn place(stack: &Stack, user: &str, token: &str, body_extra: Value) -> String {
    let cart = unique("cart");
    stack
        .put_cart(&cart, user, &[("p001", "USB Cable", 2, "10.00")])
        .await;
    let mut body = checkout(&cart);
    if let (Some(body), Some(extra)) = (body.as_object_mut(), body_extra.as_object()) {
        body.extend(extra.clone());
    }
    let reply = stack
        .send(Call::new("POST", "/api/orders").bearer(token).json(&body))
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    reply.body["order_id"].as_str().unwrap().to_string()
}

pub async fn stored(stack: &Stack, id: &str) -> Order {
    DynamoOrderStore::new(stack.dynamodb.clone(), &stack.table)
        .get(&OrderId::parse(id).unwrap())
        .await
        .unwrap()
        .expect("the order is stored")
}

/// The event of the order's latest recorded change, as the publisher makes it and a
/// rule delivers it: an SQS message.
pub async fn last_event(stack: &Stack, id: &str) -> SqsMessage {
    let after = stored(stack, id).await;
    let before = (after.version > 1).then(|| {
        let mut before = after.clone();
        before.version -= 1;
        before.status = after.history[after.version as usize - 2].status;
        before
    });
    let detail = OrderEvent::for_change(before.as_ref(), &after).expect("a recorded change");
    message(&Envelope {
        id: format!("evt-{}", detail.event_id),
        detail_type: detail.detail_type(),
        source: SOURCE.to_string(),
        time: detail.occurred_at.clone(),
        detail,
    })
}

pub fn message(envelope: &Envelope) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(format!("msg-{}", unique("m")));
    message.body = Some(serde_json::to_string(envelope).unwrap());
    message.event_source = Some("aws:sqs".into());
    message
}

/// Hands `messages` to the consumer as one batch; the ids that failed.
pub async fn notify(notifications: &Notifications, messages: Vec<SqsMessage>) -> Vec<String> {
    let mut event = SqsEvent::default();
    event.records = messages;
    sqs::notify(notifications, event)
        .await
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect()
}

/// A stack whose SMS go to `twilio`.
pub async fn stack_texting(twilio: &StandIn) -> Stack {
    let url = twilio.url.clone();
    Stack::with_settings(move |s: Settings| {
        s.with("TWILIO_ACCOUNT_SID", TWILIO_SID)
            .with("TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
            .with("TWILIO_FROM", TWILIO_FROM)
            .with("TWILIO_API_URL", url)
    })
    .await
}

/// One request a stand-in received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The form fields of an `application/x-www-form-urlencoded` body.
    pub fn form(&self) -> HashMap<String, String> {
        url_decode_form(&String::from_utf8_lossy(&self.body))
    }
}

fn url_decode_form(text: &str) -> HashMap<String, String> {
    let url = reqwest::Url::parse(&format!("http://x/?{text}")).unwrap();
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

type Answer = (u16, Vec<(&'static str, String)>, String);

/// An HTTP server on a free loopback port that records every request and answers it
/// with `answer`, unless a scripted status comes first (a provider failing).
pub struct StandIn {
    pub url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
    pub script: Arc<Mutex<VecDeque<u16>>>,
}

impl StandIn {
    pub async fn start(answer: fn(&Received, usize) -> Answer) -> StandIn {
        use http_body_util::{BodyExt, Full};
        use hyper::body::Bytes;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let (seen, scripted) = (received.clone(), script.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (seen, scripted) = (seen.clone(), scripted.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |request: hyper::Request<hyper::body::Incoming>| {
                            let (seen, scripted) = (seen.clone(), scripted.clone());
                            async move {
                                let method = request.method().to_string();
                                let path = request.uri().path().to_string();
                                let headers = request
                                    .headers()
                                    .iter()
                                    .map(|(k, v)| {
                                        (k.as_str().to_string(), v.to_str().unwrap_or("").into())
                                    })
                                    .collect();
                                let body = request
                                    .into_body()
                                    .collect()
                                    .await
                                    .unwrap()
                                    .to_bytes()
                                    .to_vec();
                                let received = Received {
                                    method,
                                    path,
                                    headers,
                                    body,
                                };
                                let n = {
                                    let mut seen = seen.lock().unwrap();
                                    seen.push(received.clone());
                                    seen.len()
                                };
                                let scripted = scripted.lock().unwrap().pop_front();
                                let (status, headers, body) = match scripted {
                                    Some(status) => (
                                        status,
                                        vec![],
                                        r#"{"code":20500,"message":"scripted failure"}"#.into(),
                                    ),
                                    None => answer(&received, n),
                                };
                                let mut response =
                                    hyper::Response::new(Full::new(Bytes::from(body)));
                                *response.status_mut() =
                                    hyper::StatusCode::from_u16(status).unwrap();
                                response.headers_mut().insert(
                                    "content-type",
                                    hyper::header::HeaderValue::from_static("application/json"),
                                );
                                for (name, value) in headers {
                                    response.headers_mut().insert(
                                        name,
                                        hyper::header::HeaderValue::from_str(&value).unwrap(),
                                    );
                                }
                                Ok::<_, std::convert::Infallible>(response)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        StandIn {
            url,
            received,
            script,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The next requests fail with these statuses, in order.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.script.lock().unwrap().extend(statuses);
    }
}

/// Twilio's `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, as documented:
/// HTTP basic auth with the account SID and auth token, a form with `To`, `From` and
/// `Body`; `201` with the Message resource, `401` (code 20003) for bad credentials,
/// `400` (code 21211 / 21602) for a bad `To` or an empty body.
pub fn twilio_answer(request: &Received, n: usize) -> Answer {
    let expected_path = format!("/2010-04-01/Accounts/{TWILIO_SID}/Messages.json");
    if request.method != "POST" || request.path != expected_path {
        return (
            404,
            vec![],
            r#"{"code":20404,"message":"not found"}"#.into(),
        );
    }
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{TWILIO_SID}:{TWILIO_TOKEN}"));
    if request.headers.get("authorization") != Some(&format!("Basic {credentials}")) {
        return (
            401,
            vec![],
            r#"{"code":20003,"message":"Authenticate"}"#.into(),
        );
    }
    if request.headers.get("content-type").map(String::as_str)
        != Some("application/x-www-form-urlencoded")
    {
        return (
            400,
            vec![],
            r#"{"code":21601,"message":"not a form"}"#.into(),
        );
    }
    let form = request.form();
    let to = form.get("To").cloned().unwrap_or_default();
    if !orders::domain::contact::is_e164(&to) {
        return (
            400,
            vec![],
            r#"{"code":21211,"message":"Invalid 'To' Phone Number"}"#.into(),
        );
    }
    if form.get("Body").is_none_or(|b| b.is_empty()) || !form.contains_key("From") {
        return (
            400,
            vec![],
            r#"{"code":21602,"message":"Message body is required"}"#.into(),
        );
    }
    let sid = format!("SM{n:032}");
    let resource = json!({
        "sid": sid, "account_sid": TWILIO_SID, "to": to, "from": form["From"],
        "body": form["Body"], "status": "queued", "num_segments": "1",
        "uri": format!("/2010-04-01/Accounts/{TWILIO_SID}/Messages/{sid}.json"),
    });
    (201, vec![], resource.to_string())
}

/// SendGrid's `POST /v3/mail/send`, as documented: `Authorization: Bearer <key>`,
/// JSON with `personalizations[].to[].email`, `from.email`, `subject`, `content[]`
/// (`type`, `value`; text/plain before text/html) and optional `attachments[]`
/// (`content` base64, `filename`, `type`); `202` with `X-Message-Id`, `401` for a bad
/// key, `400` with `errors[]` for a bad body.
pub fn sendgrid_answer(request: &Received, n: usize) -> Answer {
    if request.method != "POST" || request.path != "/v3/mail/send" {
        return (
            404,
            vec![],
            r#"{"errors":[{"message":"not found"}]}"#.into(),
        );
    }
    if request.headers.get("authorization") != Some(&format!("Bearer {SENDGRID_KEY}")) {
        return (
            401,
            vec![],
            r#"{"errors":[{"message":"The provided authorization grant is invalid, expired, or revoked","field":null,"help":null}]}"#.into(),
        );
    }
    let body = request.json();
    let bad = |field: &str| {
        (
            400,
            vec![],
            json!({"errors": [{"message": format!("{field} is invalid"), "field": field}]})
                .to_string(),
        )
    };
    let to = &body["personalizations"][0]["to"][0]["email"];
    if !to.as_str().is_some_and(orders::domain::contact::is_email) {
        return bad("personalizations.0.to.0.email");
    }
    if !body["from"]["email"]
        .as_str()
        .is_some_and(orders::domain::contact::is_email)
    {
        return bad("from.email");
    }
    if body["subject"].as_str().is_none_or(str::is_empty) {
        return bad("subject");
    }
    let types: Vec<&str> = body["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["type"].as_str())
        .collect();
    if types.first() != Some(&"text/plain") || !types.contains(&"text/html") {
        return bad("content");
    }
    for (i, attachment) in body["attachments"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let decodes = attachment["content"]
            .as_str()
            .is_some_and(|c| base64::engine::general_purpose::STANDARD.decode(c).is_ok());
        if !decodes || attachment["filename"].as_str().is_none() {
            return bad(&format!("attachments.{i}"));
        }
    }
    (
        202,
        vec![("x-message-id", format!("sg-{n:08}"))],
        String::new(),
    )
}

fn subjects(emails: &[Value]) -> Vec<String> {
    emails
        .iter()
        .map(|e| e["subject"].as_str().unwrap_or_default().to_string())
        .collect()
}

// ----------------------------------------------------------------------------------
// The contact
// ----------------------------------------------------------------------------------

#[tokio::test]
async fn the_contact_comes_from_the_body_or_the_token_and_only_owner_and_admins_see_it() {
    let stack = Stack::new().await;
    let email = address("jane");
    // The body's contact wins; the token fills what it leaves out.
    let token = token_with_contact("jane", Some("claimed@example.com"), Some("+12125550100"));
    let id = place(
        &stack,
        "jane",
        &token,
        json!({ "contact": { "email": email } }),
    )
    .await;
    let order = stored(&stack, &id).await;
    assert_eq!(order.contact.email.as_deref(), Some(email.as_str()));
    assert_eq!(order.contact.phone.as_deref(), Some("+12125550100"));
    let item = stack.stored_order(&id).await.unwrap();
    assert_eq!(item["contact_email"].as_s().unwrap(), &email);

    let read = |t: String| {
        let stack = &stack;
        let id = id.clone();
        async move {
            stack
                .send(Call::new("GET", &format!("/api/orders/{id}")).bearer(&t))
                .await
        }
    };
    let owner = read(token.clone()).await;
    assert_eq!(
        owner.body["contact"],
        json!({"email": email, "phone": "+12125550100"})
    );
    let admin = read(orders_tests::token("admin", ADMIN)).await;
    assert_eq!(admin.body["contact"]["email"], json!(email));
    let fulfillment = read(orders_tests::token("shipper", FULFILL)).await;
    assert_eq!(fulfillment.status, 200);
    assert!(fulfillment.body.get("contact").is_none(), "{fulfillment:?}");

    // Never in an event (so never in a webhook).
    let event = last_event(&stack, &id).await;
    let body = event.body.unwrap();
    assert!(!body.contains(&email) && !body.contains("+12125550100") && !body.contains("contact"));

    // Without a contact anywhere, there is none; the seed's body still works.
    let plain = place(&stack, "ann", &orders_tests::token("ann", ""), json!({})).await;
    assert!(stored(&stack, &plain).await.contact.is_empty());

    // An admin ordering for someone else: the admin's own claims are not the contact.
    let admin_token = orders::auth::issue_hs256_token_with_claims(
        SECRET.as_bytes(),
        "admin",
        ADMIN,
        &json!({"email": "support@example.com"}),
        std::time::Duration::from_secs(600),
    );
    let for_bob = place(&stack, "bob", &admin_token, json!({ "user_id": "bob" })).await;
    assert!(stored(&stack, &for_bob).await.contact.is_empty());
}

#[tokio::test]
async fn a_bad_contact_is_a_400_naming_each_field_and_nothing_is_written() {
    let stack = Stack::new().await;
    stack
        .put_cart("c1", "jane", &[("p001", "USB Cable", 1, "10.00")])
        .await;
    let mut body = checkout("c1");
    body["contact"] = json!({ "email": "jane at example", "phone": "555-0100", "fax": "1" });
    let reply = stack
        .send(
            Call::new("POST", "/api/orders")
                .bearer(&token("jane", ""))
                .json(&body),
        )
        .await;
    assert_eq!(reply.status, 400, "{reply:?}");
    let mut fields = reply.error_fields();
    fields.sort_unstable();
    assert_eq!(fields, ["contact.email", "contact.fax", "contact.phone"]);
    assert!(stack.stored_orders().await.is_empty());
}

// ----------------------------------------------------------------------------------
// The consumer
// ----------------------------------------------------------------------------------

#[tokio::test]
async fn a_whole_lifecycle_reaches_the_contact_by_email_and_the_parcel_moves_by_sms() {
    let twilio = StandIn::start(twilio_answer).await;
    let stack = stack_texting(&twilio).await;
    let notifications = stack.wiring.notifications().unwrap();
    let email = address("jane");
    let phone = "+12125550123";
    let customer = token_with_contact("jane", Some(&email), Some(phone));
    let id = place(&stack, "jane", &customer, json!({})).await;
    assert!(
        notify(&notifications, vec![last_event(&stack, &id).await])
            .await
            .is_empty()
    );

    // Paid (an admin confirms), shipped with tracking, delivered.
    stack.advance(&id, &["confirmed"]).await;
    assert!(
        notify(&notifications, vec![last_event(&stack, &id).await])
            .await
            .is_empty()
    );
    let shipped = stack
        .send(
            Call::new("PUT", &format!("/api/orders/{id}/status"))
                .bearer(&token("shipper", FULFILL))
                .json(&json!({"status": "shipped", "tracking_number": "1Z999AA10123456784", "carrier": "UPS"})),
        )
        .await;
    assert_eq!(shipped.status, 200, "{shipped:?}");
    assert!(
        notify(&notifications, vec![last_event(&stack, &id).await])
            .await
            .is_empty()
    );
    assert_eq!(
        stack
            .set_status(&id, "delivered", &token("shipper", FULFILL))
            .await
            .status,
        200
    );
    assert!(
        notify(&notifications, vec![last_event(&stack, &id).await])
            .await
            .is_empty()
    );

    let emails = sent_emails(&email).await;
    assert_eq!(
        subjects(&emails),
        [
            format!("Order {id} received"),
            format!("Payment received for order {id}"),
            format!("Order {id} has shipped"),
            format!("Order {id} was delivered"),
        ]
    );
    for email_sent in &emails {
        assert_eq!(email_sent["from"], json!(orders_tests::MAIL_FROM));
        for part in ["text", "html"] {
            let body = email_sent[part].as_str().unwrap();
            assert!(body.contains(&id), "{part} names the order: {body}");
            assert!(
                body.contains("Jane Doe") && body.contains("20.00"),
                "{body}"
            );
        }
    }
    let shipped_text = emails[2]["text"].as_str().unwrap();
    assert!(
        shipped_text.contains("Tracking number: 1Z999AA10123456784"),
        "{shipped_text}"
    );
    assert!(shipped_text.contains("with UPS"));
    // The confirmation carries the invoice.
    let attachments = emails[1]["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 1, "{attachments:?}");
    assert_eq!(attachments[0]["content_type"], "application/pdf");
    assert!(
        attachments[0]["filename"]
            .as_str()
            .unwrap()
            .starts_with("INV-")
    );
    assert!(emails[1]["text"].as_str().unwrap().contains("INV-"));
    for other in [&emails[0], &emails[2], &emails[3]] {
        assert_eq!(other["attachments"], json!([]));
    }

    // SMS for shipped and delivered only.
    let texts = twilio.received();
    assert_eq!(texts.len(), 2, "{texts:?}");
    let forms: Vec<_> = texts.iter().map(Received::form).collect();
    for form in &forms {
        assert_eq!(form["To"], phone);
        assert_eq!(form["From"], TWILIO_FROM);
        assert!(form["Body"].contains(&id), "{form:?}");
    }
    assert!(forms[0]["Body"].contains("shipped with UPS. Tracking: 1Z999AA10123456784"));
    assert!(forms[1]["Body"].contains("was delivered"));
}

#[tokio::test]
async fn a_redelivered_or_duplicated_event_sends_nothing_twice() {
    let twilio = StandIn::start(twilio_answer).await;
    let stack = stack_texting(&twilio).await;
    let email = address("dup");
    let customer = token_with_contact("dup", Some(&email), Some("+12125550124"));
    let id = place(&stack, "dup", &customer, json!({})).await;
    stack.advance(&id, &["confirmed"]).await;
    let confirmed = last_event(&stack, &id).await;

    // Redelivered: the same message three times, one after another.
    let notifications = stack.wiring.notifications().unwrap();
    for _ in 0..3 {
        assert!(
            notify(&notifications, vec![confirmed.clone()])
                .await
                .is_empty()
        );
    }
    assert_eq!(sent_emails(&email).await.len(), 1);

    // Duplicated: the shipped event in two batches handled at the same time by two
    // consumers (two Lambda instances). One sends; the other finds it sent, or held and
    // is retried, and then finds it sent.
    stack.advance(&id, &["shipped"]).await;
    let shipped = last_event(&stack, &id).await;
    let (one, two) = (
        stack.wiring.notifications().unwrap(),
        stack.wiring.notifications().unwrap(),
    );
    let (a, b) = tokio::join!(
        notify(&one, vec![shipped.clone()]),
        notify(&two, vec![shipped.clone()])
    );
    for failed in [a, b] {
        if !failed.is_empty() {
            assert!(notify(&one, vec![shipped.clone()]).await.is_empty());
        }
    }
    let emails = sent_emails(&email).await;
    assert_eq!(
        subjects(&emails),
        [
            format!("Payment received for order {id}"),
            format!("Order {id} has shipped")
        ]
    );
    assert_eq!(twilio.received().len(), 1, "one SMS for shipped");

    // Both channels' claims are recorded as sent, once each.
    let claims: Vec<_> = stack
        .all_items()
        .await
        .into_iter()
        .filter(|item| item["PK"].as_s().unwrap().starts_with("MESSAGE#"))
        .collect();
    let mut states: Vec<(String, String, String)> = claims
        .iter()
        .map(|c| {
            (
                c["event_id"].as_s().unwrap().clone(),
                c["channel"].as_s().unwrap().clone(),
                c["state"].as_s().unwrap().clone(),
            )
        })
        .collect();
    states.sort();
    assert_eq!(
        states,
        [
            (format!("{id}:2"), "email".into(), "sent".into()),
            (format!("{id}:3"), "email".into(), "sent".into()),
            (format!("{id}:3"), "sms".into(), "sent".into()),
        ]
    );
}

#[tokio::test]
async fn a_failed_send_releases_its_claim_and_the_retry_sends_it_once() {
    let twilio = StandIn::start(twilio_answer).await;
    let stack = stack_texting(&twilio).await;
    let notifications = stack.wiring.notifications().unwrap();
    let email = address("retry");
    let customer = token_with_contact("retry", Some(&email), Some("+12125550125"));
    let id = place(&stack, "retry", &customer, json!({})).await;
    stack.advance(&id, &["confirmed", "shipped"]).await;
    let shipped = last_event(&stack, &id).await;

    // Twilio fails twice (503, then 500): the message stays on the queue each time.
    twilio.fail_next(&[503, 500]);
    let message_id = shipped.message_id.clone().unwrap();
    assert_eq!(
        notify(&notifications, vec![shipped.clone()]).await,
        std::slice::from_ref(&message_id)
    );
    assert_eq!(
        notify(&notifications, vec![shipped.clone()]).await,
        [message_id]
    );
    // The retry sends the SMS; the email, sent on the first attempt, is not resent.
    assert!(
        notify(&notifications, vec![shipped.clone()])
            .await
            .is_empty()
    );
    assert!(notify(&notifications, vec![shipped]).await.is_empty());
    assert_eq!(sent_emails(&email).await.len(), 1);
    assert_eq!(
        twilio.received().len(),
        3,
        "two failures, one success, nothing after"
    );
}

#[tokio::test]
async fn a_no_op_status_change_records_nothing_and_so_tells_nothing() {
    let stack = Stack::new().await;
    let email = address("noop");
    let customer = token_with_contact("noop", Some(&email), None);
    let id = place(&stack, "noop", &customer, json!({})).await;
    stack.advance(&id, &["confirmed"]).await;
    let before = stored(&stack, &id).await;
    // Confirming a confirmed order is a 200 no-op: no write, so no stream record and
    // no event (the publisher makes none for an unchanged version).
    stack.advance(&id, &["confirmed"]).await;
    let after = stored(&stack, &id).await;
    assert_eq!(after.version, before.version);
    assert_eq!(OrderEvent::for_change(Some(&before), &after), None);

    let notifications = stack.wiring.notifications().unwrap();
    // Only the real change is told, however often its event arrives.
    let confirmed = last_event(&stack, &id).await;
    assert!(
        notify(&notifications, vec![confirmed.clone(), confirmed])
            .await
            .is_empty()
    );
    assert_eq!(sent_emails(&email).await.len(), 1);
}

#[tokio::test]
async fn refunds_and_cancellations_are_told_and_other_events_are_not() {
    let stack = Stack::new().await;
    let notifications = stack.wiring.notifications().unwrap();
    let email = address("refund");
    let customer = token_with_contact("refund", Some(&email), None);
    let id = place(&stack, "refund", &customer, json!({})).await;
    stack.advance(&id, &["confirmed"]).await;
    let confirmed = last_event(&stack, &id).await;
    let envelope: Envelope = serde_json::from_str(confirmed.body.as_deref().unwrap()).unwrap();

    // A payment change as the payments feature will publish it: same status, the
    // order's payment_status moved to (partially_)refunded.
    for (n, status) in [(1, "partially_refunded"), (2, "refunded"), (3, "failed")] {
        let mut refund = envelope.clone();
        refund.detail_type = "order.payment_status_changed".into();
        let mut order = refund.detail.order.value();
        order["payment_status"] = json!(status);
        refund.detail.order = serde_json::from_str(&order.to_string()).unwrap();
        // Another event id per payment change (the payments feature's own sequence).
        refund.detail.event_id = format!("{}:refund-{n}", refund.detail.order_id);
        assert!(
            notify(&notifications, vec![message(&refund)])
                .await
                .is_empty()
        );
    }
    stack.advance(&id, &["cancelled"]).await;
    assert!(
        notify(&notifications, vec![last_event(&stack, &id).await])
            .await
            .is_empty()
    );

    // A shipping-status change (fulfillment's progress) is not told.
    let mut progress = envelope.clone();
    progress.detail_type = orders::events::SHIPPING_STATUS_CHANGED.into();
    assert!(
        notify(&notifications, vec![message(&progress)])
            .await
            .is_empty()
    );

    assert_eq!(
        subjects(&sent_emails(&email).await),
        [
            format!("Part of order {id} was refunded"),
            format!("Order {id} was refunded"),
            format!("Order {id} was cancelled"),
        ]
    );
}

#[tokio::test]
async fn a_forged_event_or_an_unknown_order_is_dead_lettered_with_no_message() {
    let stack = Stack::new().await;
    let notifications = stack.wiring.notifications().unwrap();
    let email = address("forged");
    let customer = token_with_contact("forged", Some(&email), None);
    let id = place(&stack, "forged", &customer, json!({})).await;
    let created = last_event(&stack, &id).await;
    let mut envelope: Envelope = serde_json::from_str(created.body.as_deref().unwrap()).unwrap();
    // Claims the order was delivered at a version it never reached.
    envelope.detail_type = "order.delivered".into();
    envelope.detail.status = "delivered".into();
    envelope.detail.sequence = 7;
    let forged = message(&envelope);
    let failed = notify(&notifications, vec![forged.clone()]).await;
    assert_eq!(failed, [forged.message_id.unwrap()]);
    let mut poison = SqsMessage::default();
    poison.message_id = Some("poison".into());
    poison.body = Some("not json".into());
    assert_eq!(notify(&notifications, vec![poison]).await, ["poison"]);
    assert!(sent_emails(&email).await.is_empty());
}

// ----------------------------------------------------------------------------------
// The HTTP adapters against stand-ins
// ----------------------------------------------------------------------------------

fn invoice_email(to: &str) -> EmailMessage {
    EmailMessage {
        to: to.into(),
        subject: "Payment received for order ORD1".into(),
        text: "Thank you.".into(),
        html: "<p>Thank you.</p>".into(),
        attachments: vec![Attachment {
            filename: "INV-2026-000001.pdf".into(),
            content_type: "application/pdf".into(),
            content: b"%PDF-1.7 test".to_vec(),
        }],
    }
}

#[tokio::test]
async fn sendgrid_gets_its_documented_mail_send_request() {
    let sendgrid = StandIn::start(sendgrid_answer).await;
    let mailer =
        SendGridMailer::new(&sendgrid.url, SENDGRID_KEY, "Orders <orders@example.com>").unwrap();
    let id = mailer
        .send(&invoice_email("jane@example.com"))
        .await
        .unwrap();
    assert_eq!(id, "sg-00000001");

    let request = &sendgrid.received()[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/v3/mail/send")
    );
    assert_eq!(request.headers["content-type"], "application/json");
    let body = request.json();
    assert_eq!(
        body["personalizations"],
        json!([{"to": [{"email": "jane@example.com"}]}])
    );
    assert_eq!(
        body["from"],
        json!({"email": "orders@example.com", "name": "Orders"})
    );
    assert_eq!(body["subject"], "Payment received for order ORD1");
    assert_eq!(
        body["content"],
        json!([{"type": "text/plain", "value": "Thank you."}, {"type": "text/html", "value": "<p>Thank you.</p>"}])
    );
    assert_eq!(
        body["attachments"],
        json!([{
            "content": base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.7 test"),
            "type": "application/pdf",
            "filename": "INV-2026-000001.pdf",
            "disposition": "attachment"
        }])
    );

    // A wrong key is refused (retrying will not help); a 5xx or 429 is worth a retry.
    let wrong = SendGridMailer::new(&sendgrid.url, "SG.wrong", "orders@example.com").unwrap();
    let refused = wrong
        .send(&invoice_email("jane@example.com"))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, SendError::Refused(why) if why.contains("401") && why.contains("invalid")),
        "{refused:?}"
    );
    sendgrid.fail_next(&[503, 429]);
    for _ in 0..2 {
        let err = mailer
            .send(&invoice_email("jane@example.com"))
            .await
            .unwrap_err();
        assert!(matches!(err, SendError::Unavailable(_)), "{err:?}");
    }
}

#[tokio::test]
async fn twilio_gets_its_documented_messages_request() {
    let twilio = StandIn::start(twilio_answer).await;
    let messenger =
        TwilioMessenger::new(&twilio.url, TWILIO_SID, TWILIO_TOKEN, TWILIO_FROM).unwrap();
    let text = TextMessage {
        to: "+12125550123".into(),
        body: "Order ORD1 has shipped & is on its way: 1Z999".into(),
    };
    let sid = messenger.send(&text).await.unwrap();
    assert_eq!(sid, format!("SM{:032}", 1));
    let request = &twilio.received()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.path,
        format!("/2010-04-01/Accounts/{TWILIO_SID}/Messages.json")
    );
    let form = request.form();
    assert_eq!(form["To"], "+12125550123");
    assert_eq!(form["From"], TWILIO_FROM);
    assert_eq!(form["Body"], text.body);

    let wrong = TwilioMessenger::new(&twilio.url, TWILIO_SID, "wrong-token", TWILIO_FROM).unwrap();
    let refused = wrong.send(&text).await.unwrap_err();
    assert!(
        matches!(&refused, SendError::Refused(why) if why.contains("20003")),
        "{refused:?}"
    );
    twilio.fail_next(&[500]);
    assert!(matches!(
        messenger.send(&text).await,
        Err(SendError::Unavailable(_))
    ));
}

#[tokio::test]
async fn sendgrid_is_chosen_by_settings_and_sends_the_lifecycle_too() {
    let sendgrid = StandIn::start(sendgrid_answer).await;
    let url = sendgrid.url.clone();
    let stack = Stack::with_settings(move |s: Settings| {
        s.with("MAIL_PROVIDER", "sendgrid")
            .with("SENDGRID_API_KEY", SENDGRID_KEY)
            .with("SENDGRID_API_URL", url)
    })
    .await;
    let notifications = stack.wiring.notifications().unwrap();
    let email = address("sg");
    let id = place(
        &stack,
        "sg",
        &token_with_contact("sg", Some(&email), None),
        json!({}),
    )
    .await;
    stack.advance(&id, &["confirmed"]).await;
    assert!(
        notify(&notifications, vec![last_event(&stack, &id).await])
            .await
            .is_empty()
    );
    let requests = sendgrid.received();
    assert_eq!(requests.len(), 1);
    let body = requests[0].json();
    assert_eq!(body["personalizations"][0]["to"][0]["email"], json!(email));
    assert_eq!(
        body["subject"],
        json!(format!("Payment received for order {id}"))
    );
    assert_eq!(body["attachments"][0]["type"], "application/pdf");
    assert!(
        sent_emails(&email).await.is_empty(),
        "nothing went through SES"
    );

    // A misconfigured provider stops the function at init, naming the setting.
    let bad = Stack::with_settings(|s: Settings| s.with("MAIL_PROVIDER", "pigeon")).await;
    let why = bad.wiring.notifications().err().unwrap().to_string();
    assert!(why.starts_with("MAIL_PROVIDER"), "{why}");
    let missing =
        Stack::with_settings(|s: Settings| s.with("TWILIO_ACCOUNT_SID", TWILIO_SID)).await;
    let why = missing.wiring.notifications().err().unwrap().to_string();
    assert!(why.contains("TWILIO_AUTH_TOKEN"), "{why}");
}
