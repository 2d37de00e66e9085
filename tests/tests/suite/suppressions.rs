//! Bounces and complaints (issue 22): SES's notifications in the shapes SES documents,
//! inside SNS's envelope as the bounce queue receives them, and SendGrid's signed event
//! webhook suppress the address; the notifications consumer then sends it nothing (the
//! SES emulator receives nothing) and the order's history says the customer could not
//! be reached; an admin clears the suppression and mail flows again.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use orders::domain::suppression::UNREACHABLE_NOTE;
use orders::events::CONTACT_UNREACHABLE;
use orders_tests::{ADMIN, Call, Reply, Stack, token, unique};
use serde_json::{Value, json};

use crate::notifications::{address, last_event, notify, place, sent_emails, stored};

/// SES's bounce notification (docs.aws.amazon.com/ses/latest/dg/notification-contents.html).
fn ses_bounce(to: &str, bounce_type: &str) -> Value {
    json!({
        "notificationType": "Bounce",
        "bounce": {
            "feedbackId": "0100018c2a1b3c4d-5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9-000000",
            "bounceType": bounce_type,
            "bounceSubType": if bounce_type == "Permanent" { "General" } else { "MailboxFull" },
            "bouncedRecipients": [{
                "emailAddress": to,
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown"
            }],
            "timestamp": "2026-11-25T20:40:12.000Z",
            "reportingMTA": "dsn; a8-50.smtp-out.amazonses.com"
        },
        "mail": {
            "timestamp": "2026-11-25T20:40:10.000Z",
            "source": "orders@tests.example.com",
            "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/orders@tests.example.com",
            "sendingAccountId": "123456789012",
            "messageId": "0100018c2a1b3c4d-0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d-000000",
            "destination": [to]
        }
    })
}

/// SES's complaint, as a configuration set's event destination publishes it.
fn ses_complaint(to: &str) -> Value {
    json!({
        "eventType": "Complaint",
        "complaint": {
            "feedbackId": "0100018c2a1b3c4d-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee-000000",
            "complaintSubType": null,
            "complainedRecipients": [{"emailAddress": to}],
            "timestamp": "2026-11-25T20:41:00.000Z",
            "userAgent": "ExampleCorp Feedback Loop (V0.01)",
            "complaintFeedbackType": "abuse"
        },
        "mail": {
            "timestamp": "2026-11-25T20:40:10.000Z",
            "source": "orders@tests.example.com",
            "messageId": "0100018c2a1b3c4d-0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5e-000000",
            "destination": [to]
        }
    })
}

/// The bounce queue's message: SNS's envelope around `notification`.
fn from_sns(notification: &Value) -> SqsMessage {
    let envelope = json!({
        "Type": "Notification",
        "MessageId": "5d6c0b2e-8f3a-5b1c-9e7d-2a4f6c8e0b13",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:orders-BounceTopic",
        "Message": notification.to_string(),
        "Timestamp": "2026-11-25T20:40:12.512Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
    });
    let mut message = SqsMessage::default();
    message.message_id = Some(unique("bounce"));
    message.body = Some(envelope.to_string());
    message
}

/// Hands `messages` to the bounce queue's consumer; the ids that failed.
async fn suppress(stack: &Stack, messages: Vec<SqsMessage>) -> Vec<String> {
    let service = stack.wiring.suppression_service().unwrap();
    let mut event = SqsEvent::default();
    event.records = messages;
    orders::inbound::sqs::suppress(&service, event)
        .await
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect()
}

async fn clear(stack: &Stack, email: &str, caller: &str) -> Reply {
    stack
        .send(Call::new("DELETE", &format!("/api/suppressions/{email}")).bearer(caller))
        .await
}

/// An order of a fresh customer mailed at `email`, confirmed by an admin: its id.
async fn confirmed_order(stack: &Stack, email: &str) -> String {
    let user = unique("customer");
    let id = place(
        stack,
        &user,
        &token(&user, ""),
        json!({"contact": {"email": email}}),
    )
    .await;
    stack.advance(&id, &["confirmed"]).await;
    id
}

#[tokio::test]
async fn a_permanent_bounce_stops_mail_and_the_order_says_the_customer_could_not_be_reached() {
    let stack = Stack::new().await;
    let bounced = address("bounced");
    let full = address("mailbox-full");
    // A transient bounce (a full mailbox) suppresses nothing; a permanent one does.
    let failed = suppress(
        &stack,
        vec![
            from_sns(&ses_bounce(&full, "Transient")),
            from_sns(&ses_bounce(&bounced.to_uppercase(), "Permanent")),
        ],
    )
    .await;
    assert!(failed.is_empty(), "{failed:?}");

    let notifications = stack.wiring.notifications().unwrap();
    let id = confirmed_order(&stack, &bounced).await;
    let before = stored(&stack, &id).await.version;
    assert!(
        notify(&notifications, vec![last_event(&stack, &id).await])
            .await
            .is_empty()
    );
    assert!(
        sent_emails(&bounced).await.is_empty(),
        "nothing went to a bounced address"
    );
    let order = stored(&stack, &id).await;
    assert_eq!(order.version, before + 1, "one note, in one write");
    let note = order.history.last().unwrap();
    assert_eq!(note.actor, "notifications");
    assert_eq!(
        note.reason.as_deref(),
        Some(format!("{UNREACHABLE_NOTE}: email suppressed (bounce)").as_str())
    );
    assert_eq!(note.status, order.history[order.history.len() - 2].status);
    // Staff see it in the history; integrators get it as an event.
    let history = stack
        .send(Call::new("GET", &format!("/api/orders/{id}/history")).bearer(&token("admin", ADMIN)))
        .await;
    assert!(history.text.contains(UNREACHABLE_NOTE), "{}", history.text);
    let event = last_event(&stack, &id).await;
    let body: Value = serde_json::from_str(event.body.as_deref().unwrap()).unwrap();
    assert_eq!(body["detail-type"], CONTACT_UNREACHABLE);

    // The next message about it is withheld too, without a second note.
    stack.advance(&id, &["shipped"]).await;
    let shipped = stored(&stack, &id).await;
    let mut message = last_event(&stack, &id).await;
    assert!(
        notify(&notifications, vec![message.clone()])
            .await
            .is_empty()
    );
    assert!(sent_emails(&bounced).await.is_empty());
    assert_eq!(stored(&stack, &id).await.version, shipped.version);
    // A redelivery of that message sends nothing either.
    message.message_id = Some(unique("again"));
    assert!(notify(&notifications, vec![message]).await.is_empty());
    assert!(sent_emails(&bounced).await.is_empty());

    // The transient bounce's address is mailed as before.
    let other = confirmed_order(&stack, &full).await;
    assert!(
        notify(&notifications, vec![last_event(&stack, &other).await])
            .await
            .is_empty()
    );
    assert_eq!(sent_emails(&full).await.len(), 1);

    // An admin clears it (any case); mail goes out again.
    assert_eq!(
        clear(&stack, &bounced.to_uppercase(), &token("support", ""))
            .await
            .status,
        403
    );
    let cleared = clear(&stack, &bounced, &token("admin", ADMIN)).await;
    assert_eq!(cleared.status, 204, "{cleared:?}");
    assert_eq!(
        clear(&stack, &bounced, &token("admin", ADMIN)).await.code(),
        "suppression_not_found"
    );
    assert_eq!(
        clear(&stack, "not-an-address", &token("admin", ADMIN))
            .await
            .status,
        400
    );
    stack.advance(&id, &["delivered"]).await;
    assert!(
        notify(&notifications, vec![last_event(&stack, &id).await])
            .await
            .is_empty()
    );
    assert_eq!(
        sent_emails(&bounced).await.len(),
        1,
        "the delivered message went out"
    );
}

#[tokio::test]
async fn a_complaint_suppresses_and_unreadable_messages_are_dropped_not_retried() {
    let stack = Stack::new().await;
    let complained = address("complained");
    let mut garbage = SqsMessage::default();
    garbage.message_id = Some("garbage".into());
    garbage.body = Some("{\"Type\": \"Notification\", \"Message\": \"not json\"}".into());
    let failed = suppress(&stack, vec![from_sns(&ses_complaint(&complained)), garbage]).await;
    assert!(failed.is_empty(), "{failed:?}");
    let notifications = stack.wiring.notifications().unwrap();
    let id = confirmed_order(&stack, &complained).await;
    assert!(
        notify(&notifications, vec![last_event(&stack, &id).await])
            .await
            .is_empty()
    );
    assert!(sent_emails(&complained).await.is_empty());
    let note = stored(&stack, &id).await.history.last().unwrap().clone();
    assert_eq!(
        note.reason.as_deref(),
        Some(format!("{UNREACHABLE_NOTE}: email suppressed (complaint)").as_str())
    );
}

/// A stack checking SendGrid's signatures with a fresh key; the key to sign with.
async fn sendgrid_stack() -> (Stack, EcdsaKeyPair) {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
    let public = STANDARD.encode(pair.public_key().as_der().unwrap().as_ref());
    let stack = Stack::with_settings(|s| s.with("SENDGRID_WEBHOOK_PUBLIC_KEY", &public)).await;
    (stack, pair)
}

fn signed(pair: &EcdsaKeyPair, timestamp: &str, body: &str) -> String {
    let mut message = timestamp.as_bytes().to_vec();
    message.extend_from_slice(body.as_bytes());
    STANDARD.encode(pair.sign(&SystemRandom::new(), &message).unwrap().as_ref())
}

async fn post_events(stack: &Stack, body: &str, timestamp: &str, signature: &str) -> Reply {
    stack
        .send(
            Call::new("POST", "/api/email/sendgrid/events")
                .header("x-twilio-email-event-webhook-timestamp", timestamp)
                .header("x-twilio-email-event-webhook-signature", signature)
                .raw_body("application/json", body),
        )
        .await
}

#[tokio::test]
async fn sendgrids_signed_bounces_and_spam_reports_suppress_and_forgeries_change_nothing() {
    let (stack, pair) = sendgrid_stack().await;
    let bounced = address("sg-bounced");
    let reported = address("sg-spam");
    let blocked = address("sg-blocked");
    let body = json!([
        {"email": bounced, "event": "bounce", "type": "bounce", "sg_event_id": "a"},
        {"email": reported, "event": "spamreport", "sg_event_id": "b"},
        {"email": blocked, "event": "bounce", "type": "blocked", "sg_event_id": "c"},
        {"email": blocked, "event": "delivered", "sg_event_id": "d"}
    ])
    .to_string();
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp().to_string();

    // Forged: another key, another body, no signature. Nothing is suppressed.
    let (_, stranger) = sendgrid_stack().await;
    let forged = post_events(
        &stack,
        &body,
        &timestamp,
        &signed(&stranger, &timestamp, &body),
    )
    .await;
    assert_eq!(forged.status, 400, "{forged:?}");
    assert_eq!(forged.code(), "invalid_signature");
    let tampered = post_events(
        &stack,
        &body.replace("spamreport", "open"),
        &timestamp,
        &signed(&pair, &timestamp, &body),
    )
    .await;
    assert_eq!(tampered.code(), "invalid_signature");
    let unsigned = stack
        .send(Call::new("POST", "/api/email/sendgrid/events").raw_body("application/json", &body))
        .await;
    assert_eq!(unsigned.code(), "invalid_signature");
    let notifications = stack.wiring.notifications().unwrap();
    let early = confirmed_order(&stack, &bounced).await;
    assert!(
        notify(&notifications, vec![last_event(&stack, &early).await])
            .await
            .is_empty()
    );
    assert_eq!(
        sent_emails(&bounced).await.len(),
        1,
        "not suppressed by a forgery"
    );

    let accepted = post_events(&stack, &body, &timestamp, &signed(&pair, &timestamp, &body)).await;
    assert_eq!(accepted.status, 200, "{accepted:?}");
    assert_eq!(accepted.body["suppressed"], 2);
    for (address, sent) in [(&bounced, 1), (&reported, 0), (&blocked, 1)] {
        let id = confirmed_order(&stack, address).await;
        assert!(
            notify(&notifications, vec![last_event(&stack, &id).await])
                .await
                .is_empty()
        );
        assert_eq!(sent_emails(address).await.len(), sent, "{address}");
    }

    // Without a key configured, the webhook is not there.
    let off = Stack::new().await;
    let reply = post_events(&off, &body, &timestamp, &signed(&pair, &timestamp, &body)).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.code(), "sendgrid_off");
}
