//! Email through Amazon SES (API v2, `SendEmail`), as one raw MIME message: a
//! text and an HTML alternative, and the attachments (the invoice PDF), which the
//! simple content type of `SendEmail` cannot carry. The sender identity is declared in
//! template.yaml (`SenderIdentity`); `make dev` creates it on the emulator.

use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};
use mail_builder::MessageBuilder;

use super::aws::describe;
use super::http::sendgrid::split_mailbox;
use crate::ports::{EmailMessage, Mailer, SendError};

pub struct SesMailer {
    client: Client,
    /// `Name <address>` or an address, of a verified identity.
    from: String,
    configuration_set: Option<String>,
}

impl SesMailer {
    pub fn new(client: Client, from: impl Into<String>, configuration_set: Option<String>) -> Self {
        SesMailer {
            client,
            from: from.into(),
            configuration_set,
        }
    }
}

/// The message as RFC 5322 text: `multipart/mixed` of a `multipart/alternative`
/// (text, then HTML) and the attachments.
pub fn mime(from: &str, message: &EmailMessage) -> Result<Vec<u8>, String> {
    let (name, address) = split_mailbox(from);
    let mut builder = MessageBuilder::new()
        .from(match &name {
            Some(name) => (name.as_str(), address.as_str()).into(),
            None => mail_builder::headers::address::Address::from(address.as_str()),
        })
        .to(message.to.as_str())
        .subject(message.subject.as_str())
        .text_body(message.text.as_str())
        .html_body(message.html.as_str());
    for attachment in &message.attachments {
        builder = builder.attachment(
            attachment.content_type.as_str(),
            attachment.filename.as_str(),
            attachment.content.as_slice(),
        );
    }
    builder.write_to_vec().map_err(|e| e.to_string())
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, message: &EmailMessage) -> Result<String, SendError> {
        let raw = mime(&self.from, message).map_err(SendError::Refused)?;
        let raw = RawMessage::builder()
            .data(Blob::new(raw))
            .build()
            .map_err(|e| SendError::Refused(e.to_string()))?;
        let result = self
            .client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(&message.to).build())
            .content(EmailContent::builder().raw(raw).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await;
        match result {
            Ok(output) => Ok(output.message_id.unwrap_or_default()),
            Err(err) => Err(send_error(err)),
        }
    }
}

fn send_error<E, R>(err: SdkError<E, R>) -> SendError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let why = describe(&err);
    match &err {
        SdkError::ServiceError(service) => match service.err().code() {
            Some(
                "TooManyRequestsException"
                | "ThrottlingException"
                | "LimitExceededException"
                | "SendingPausedException"
                | "InternalFailure"
                | "ServiceUnavailable",
            ) => SendError::Unavailable(why),
            _ => SendError::Refused(why),
        },
        _ => SendError::Unavailable(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::Attachment;

    #[test]
    fn the_raw_message_has_both_parts_and_the_attachment() {
        let message = EmailMessage {
            to: "jane@example.com".into(),
            subject: "Your order ORD1 is confirmed".into(),
            text: "Thank you.".into(),
            html: "<p>Thank you.</p>".into(),
            attachments: vec![Attachment {
                filename: "INV-2026-000001.pdf".into(),
                content_type: "application/pdf".into(),
                content: b"%PDF-1.7".to_vec(),
            }],
        };
        let raw =
            String::from_utf8(mime("Orders <orders@example.com>", &message).unwrap()).unwrap();
        for part in [
            "From: \"Orders\" <orders@example.com>",
            "To: <jane@example.com>",
            "Subject: Your order ORD1 is confirmed",
            "multipart/mixed",
            "multipart/alternative",
            "text/plain",
            "text/html",
            "application/pdf",
            "INV-2026-000001.pdf",
        ] {
            assert!(raw.contains(part), "{part} in\n{raw}");
        }
    }
}
