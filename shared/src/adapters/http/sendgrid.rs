//! Email through SendGrid's v3 Mail Send API: `POST {base}/v3/mail/send`, a bearer
//! API key, a JSON body of personalizations, from, subject, content parts and base64
//! attachments; `202 Accepted` with the message id in `X-Message-Id`.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use reqwest::Url;
use serde::Serialize;

use super::body::read_limited;
use crate::adapters::secrets::{ProviderKey, send_with_key};
use crate::ports::{EmailMessage, Mailer, SendError};

pub const SENDGRID_DEFAULT_URL: &str = "https://api.sendgrid.com";

/// An error body is read for its `errors[].message` only.
const MAX_ERROR_BYTES: usize = 64 * 1024;

pub struct SendGridMailer {
    http: reqwest::Client,
    send_url: Url,
    api_key: ProviderKey,
    from: Address,
}

#[derive(Debug, Clone, Serialize)]
struct Address {
    email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

impl SendGridMailer {
    /// `from` as `Name <address>` or a bare address.
    pub fn new(
        base_url: &str,
        api_key: impl Into<ProviderKey>,
        from: &str,
    ) -> Result<Self, String> {
        let mut send_url = Url::parse(base_url).map_err(|e| e.to_string())?;
        match send_url.path_segments_mut() {
            Ok(mut segments) => {
                segments.pop_if_empty().extend(["v3", "mail", "send"]);
            }
            Err(()) => return Err("must be an http(s) URL".into()),
        }
        let http = super::tls::http_client_builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
            // A redirect would re-send the key somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let (name, email) = split_mailbox(from);
        Ok(SendGridMailer {
            http,
            send_url,
            api_key: api_key.into(),
            from: Address { email, name },
        })
    }
}

/// `Orders <orders@example.com>` → (Some("Orders"), "orders@example.com").
pub fn split_mailbox(mailbox: &str) -> (Option<String>, String) {
    match mailbox.rsplit_once('<') {
        Some((name, rest)) if rest.ends_with('>') => {
            let name = name.trim().trim_matches('"').trim();
            (
                (!name.is_empty()).then(|| name.to_string()),
                rest.trim_end_matches('>').trim().to_string(),
            )
        }
        _ => (None, mailbox.trim().to_string()),
    }
}

#[derive(Serialize)]
struct MailSend<'a> {
    personalizations: [Personalization; 1],
    from: &'a Address,
    subject: &'a str,
    /// text/plain first: RFC 2046 puts the preferred (richest) alternative last.
    content: [Content<'a>; 2],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<SendGridAttachment<'a>>,
}

#[derive(Serialize)]
struct Personalization {
    to: [Address; 1],
}

#[derive(Serialize)]
struct Content<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    value: &'a str,
}

#[derive(Serialize)]
struct SendGridAttachment<'a> {
    content: String,
    #[serde(rename = "type")]
    kind: &'a str,
    filename: &'a str,
    disposition: &'static str,
}

#[async_trait]
impl Mailer for SendGridMailer {
    async fn send(&self, message: &EmailMessage) -> Result<String, SendError> {
        let body = MailSend {
            personalizations: [Personalization {
                to: [Address {
                    email: message.to.clone(),
                    name: None,
                }],
            }],
            from: &self.from,
            subject: &message.subject,
            content: [
                Content {
                    kind: "text/plain",
                    value: &message.text,
                },
                Content {
                    kind: "text/html",
                    value: &message.html,
                },
            ],
            attachments: message
                .attachments
                .iter()
                .map(|a| SendGridAttachment {
                    content: base64::engine::general_purpose::STANDARD.encode(&a.content),
                    kind: &a.content_type,
                    filename: &a.filename,
                    disposition: "attachment",
                })
                .collect(),
        };
        let body = serde_json::to_vec(&body).map_err(|e| SendError::Refused(e.to_string()))?;
        let response = send_with_key(&self.api_key, |key| {
            self.http
                .post(self.send_url.clone())
                .bearer_auth(key)
                .header("content-type", "application/json")
                .body(body.clone())
        })
        .await
        .map_err(|e| SendError::Unavailable(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            let id = response
                .headers()
                .get("x-message-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("accepted")
                .to_string();
            return Ok(id);
        }
        let detail = read_limited(response, MAX_ERROR_BYTES)
            .await
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["errors"][0]["message"].as_str().map(str::to_string))
            .unwrap_or_default();
        let why = format!("SendGrid answered {status}: {detail}");
        if super::retry_later(status) {
            Err(SendError::Unavailable(why))
        } else {
            Err(SendError::Refused(why))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailboxes_split_into_name_and_address() {
        assert_eq!(
            split_mailbox("Orders <orders@example.com>"),
            (Some("Orders".into()), "orders@example.com".into())
        );
        assert_eq!(
            split_mailbox("\"The Shop\" <shop@example.com>"),
            (Some("The Shop".into()), "shop@example.com".into())
        );
        assert_eq!(
            split_mailbox("orders@example.com"),
            (None, "orders@example.com".into())
        );
    }
}
