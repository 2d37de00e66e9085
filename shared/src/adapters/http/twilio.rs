//! Text messages through Twilio's Messages resource:
//! `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded `To`,
//! `From` and `Body`, HTTP basic auth with the account SID and auth token; `201
//! Created` with the Message resource (`sid`).

use std::time::Duration;

use async_trait::async_trait;
use reqwest::Url;

use super::body::read_limited;
use crate::adapters::secrets::{ProviderKey, send_with_key};
use crate::ports::{SendError, TextMessage, TextMessenger};

pub const TWILIO_DEFAULT_URL: &str = "https://api.twilio.com";

/// A Message resource is about 1 KiB.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

pub struct TwilioMessenger {
    http: reqwest::Client,
    messages_url: Url,
    account_sid: String,
    auth_token: ProviderKey,
    from: String,
}

impl TwilioMessenger {
    pub fn new(
        base_url: &str,
        account_sid: &str,
        auth_token: impl Into<ProviderKey>,
        from: impl Into<String>,
    ) -> Result<Self, String> {
        let mut messages_url = Url::parse(base_url).map_err(|e| e.to_string())?;
        match messages_url.path_segments_mut() {
            Ok(mut segments) => {
                segments.pop_if_empty().extend([
                    "2010-04-01",
                    "Accounts",
                    account_sid,
                    "Messages.json",
                ]);
            }
            Err(()) => return Err("must be an http(s) URL".into()),
        }
        let http = super::tls::http_client_builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(TwilioMessenger {
            http,
            messages_url,
            account_sid: account_sid.to_string(),
            auth_token: auth_token.into(),
            from: from.into(),
        })
    }
}

/// `application/x-www-form-urlencoded`, as a URL's query encodes it.
fn form(pairs: &[(&str, &str)]) -> String {
    let mut url = Url::parse("http://form.invalid/").expect("a fixed URL parses");
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_string()
}

#[async_trait]
impl TextMessenger for TwilioMessenger {
    async fn send(&self, message: &TextMessage) -> Result<String, SendError> {
        let body = form(&[
            ("To", &message.to),
            ("From", &self.from),
            ("Body", &message.body),
        ]);
        let response = send_with_key(&self.auth_token, |token| {
            self.http
                .post(self.messages_url.clone())
                .basic_auth(&self.account_sid, Some(token))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "application/json")
                .body(body.clone())
        })
        .await
        .map_err(|e| SendError::Unavailable(e.to_string()))?;
        let status = response.status();
        let answer = read_limited(response, MAX_ANSWER_BYTES)
            .await
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .unwrap_or_default();
        if status.is_success() {
            return answer["sid"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| SendError::Unavailable("Twilio answered without a sid".into()));
        }
        let why = format!(
            "Twilio answered {status}: {} {}",
            answer["code"],
            answer["message"].as_str().unwrap_or_default()
        );
        if super::retry_later(status) {
            Err(SendError::Unavailable(why))
        } else {
            Err(SendError::Refused(why))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn forms_are_url_encoded() {
        assert_eq!(
            super::form(&[("To", "+12125550123"), ("Body", "Shipped: 1Z & co")]),
            "To=%2B12125550123&Body=Shipped%3A+1Z+%26+co"
        );
    }
}
