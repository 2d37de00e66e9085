//! Bounces and complaints: the mail provider's reports suppress the address, so the
//! notifications consumer stops mailing it (and notes on the order that the customer
//! could not be reached); an admin clears a suppression.
//!
//! - SES publishes to an SNS topic subscribed by the bounce queue: each message is
//!   SNS's envelope (`Type: Notification`, the SES notification as its `Message`),
//!   as SES documents it (`notificationType`, or `eventType` from a configuration
//!   set's event destination). A permanent bounce and a complaint suppress; a
//!   transient bounce does not (the mailbox was full, the next may go through).
//! - SendGrid posts its event webhook, signed (`domain::suppression::SendGridKey`):
//!   `bounce` (not `blocked`, SendGrid's temporary kind) and `spamreport` suppress.
//!
//! Addresses are never logged: counts only.

use std::sync::Arc;

use serde::Deserialize;
use time::OffsetDateTime;

use crate::domain::Principal;
use crate::domain::contact::is_email;
use crate::domain::suppression::{SendGridKey, Suppression, SuppressionReason};
use crate::ports::{StoreError, Suppressions};

#[derive(Debug, thiserror::Error)]
pub enum SuppressionError {
    #[error("only an admin may clear a suppression")]
    Forbidden,
    #[error("not an email address")]
    InvalidAddress,
    #[error("this address is not suppressed")]
    NotFound,
    #[error("SendGrid's event webhook is not configured (SENDGRID_WEBHOOK_PUBLIC_KEY)")]
    SendGridOff,
    #[error("the SendGrid signature is missing or does not verify")]
    BadSignature,
    #[error("not a notification this service reads: {0}")]
    Malformed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct SuppressionService {
    list: Arc<dyn Suppressions>,
    sendgrid: Option<SendGridKey>,
}

/// SNS's envelope of a message it delivers to an SQS queue.
#[derive(Deserialize)]
struct SnsEnvelope {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "Message")]
    message: String,
}

/// The parts of SES's bounce and complaint notifications this service reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SesNotification {
    notification_type: Option<String>,
    event_type: Option<String>,
    bounce: Option<SesBounce>,
    complaint: Option<SesComplaint>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SesBounce {
    bounce_type: String,
    bounced_recipients: Vec<SesRecipient>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SesComplaint {
    complained_recipients: Vec<SesRecipient>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SesRecipient {
    email_address: String,
}

/// One event of SendGrid's event webhook (the members this service reads).
#[derive(Deserialize)]
struct SendGridEvent {
    email: Option<String>,
    event: String,
    #[serde(rename = "type")]
    kind: Option<String>,
}

impl SuppressionService {
    pub fn new(list: Arc<dyn Suppressions>, sendgrid: Option<SendGridKey>) -> Self {
        SuppressionService { list, sendgrid }
    }

    /// One message of the bounce queue; answers how many addresses it suppressed.
    pub async fn from_ses(&self, body: Option<&str>) -> Result<usize, SuppressionError> {
        let body = body.ok_or_else(|| SuppressionError::Malformed("no body".into()))?;
        // With raw message delivery the body is SES's notification itself.
        let text = match serde_json::from_str::<SnsEnvelope>(body) {
            Ok(envelope) if envelope.kind == "Notification" => envelope.message,
            Ok(envelope) => {
                tracing::info!(kind = %envelope.kind, "not an SNS notification; ignored");
                return Ok(0);
            }
            Err(_) => body.to_string(),
        };
        let notification: SesNotification = serde_json::from_str(&text)
            .map_err(|e| SuppressionError::Malformed(format!("SES notification: {e}")))?;
        let kind = notification
            .notification_type
            .or(notification.event_type)
            .unwrap_or_default();
        let (reason, recipients) =
            match (kind.as_str(), notification.bounce, notification.complaint) {
                ("Bounce", Some(bounce), _) if bounce.bounce_type == "Permanent" => {
                    (SuppressionReason::Bounce, bounce.bounced_recipients)
                }
                ("Complaint", _, Some(complaint)) => (
                    SuppressionReason::Complaint,
                    complaint.complained_recipients,
                ),
                _ => {
                    tracing::info!(kind = %kind, "SES notification that suppresses nothing");
                    return Ok(0);
                }
            };
        let addresses: Vec<String> = recipients.into_iter().map(|r| r.email_address).collect();
        self.suppress_all(&addresses, reason, "ses").await
    }

    /// SendGrid's event webhook: verified, then every hard bounce and spam report.
    pub async fn from_sendgrid(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<usize, SuppressionError> {
        let key = self
            .sendgrid
            .as_ref()
            .ok_or(SuppressionError::SendGridOff)?;
        let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
            return Err(SuppressionError::BadSignature);
        };
        if !key.verifies(timestamp, body, signature) {
            return Err(SuppressionError::BadSignature);
        }
        let events: Vec<SendGridEvent> = serde_json::from_slice(body)
            .map_err(|e| SuppressionError::Malformed(format!("SendGrid events: {e}")))?;
        let mut suppressed = 0;
        for reason in [SuppressionReason::Bounce, SuppressionReason::Complaint] {
            let addresses: Vec<String> = events
                .iter()
                .filter(|e| match reason {
                    SuppressionReason::Bounce => {
                        e.event == "bounce" && e.kind.as_deref() != Some("blocked")
                    }
                    SuppressionReason::Complaint => e.event == "spamreport",
                })
                .filter_map(|e| e.email.clone())
                .collect();
            suppressed += self.suppress_all(&addresses, reason, "sendgrid").await?;
        }
        Ok(suppressed)
    }

    async fn suppress_all(
        &self,
        addresses: &[String],
        reason: SuppressionReason,
        source: &str,
    ) -> Result<usize, SuppressionError> {
        let why = Suppression {
            reason,
            source: source.into(),
            at: OffsetDateTime::now_utc(),
        };
        let mut count = 0;
        for address in addresses.iter().filter(|a| is_email(a.trim())) {
            self.list.suppress(address, &why).await?;
            count += 1;
        }
        tracing::info!(
            reason = reason.as_str(),
            source,
            count,
            "addresses suppressed"
        );
        Ok(count)
    }

    /// `DELETE /api/suppressions/{email}` (admins): mail may go to it again.
    pub async fn clear(&self, caller: &Principal, address: &str) -> Result<(), SuppressionError> {
        if !caller.admin {
            return Err(SuppressionError::Forbidden);
        }
        if !is_email(address) {
            return Err(SuppressionError::InvalidAddress);
        }
        if !self.list.clear(address).await? {
            return Err(SuppressionError::NotFound);
        }
        tracing::info!(actor = %caller.user_id, "suppression cleared");
        Ok(())
    }
}
