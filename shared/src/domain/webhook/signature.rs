//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): a `whsec_`
//! secret per subscription, and `webhook-signature: v1,<base64 HMAC-SHA256>` over
//! `{webhook-id}.{webhook-timestamp}.{body}`.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;

pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// How a symmetric secret is shown: `whsec_` and the base64 of its bytes.
pub const SECRET_PREFIX: &str = "whsec_";
/// 256 bits; the specification asks for 24 to 64 bytes.
const SECRET_BYTES: usize = 32;
const SIGNATURE_VERSION: &str = "v1";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a webhook secret is `whsec_` followed by base64")]
    Malformed,
    #[error("the system random generator failed")]
    Random,
}

/// A subscription's signing key. Never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn generate() -> Result<Secret, SecretError> {
        let mut bytes = vec![0; SECRET_BYTES];
        crate::domain::random::fill(&mut bytes).map_err(|_| SecretError::Random)?;
        Ok(Secret(bytes))
    }

    /// Reads `whsec_<base64>` (the prefix is optional, as in the reference libraries).
    pub fn parse(text: &str) -> Result<Secret, SecretError> {
        let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| SecretError::Malformed)?;
        if bytes.is_empty() {
            return Err(SecretError::Malformed);
        }
        Ok(Secret(bytes))
    }

    /// The secret as the receiver configures it: `whsec_<base64>`.
    pub fn reveal(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    fn key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(whsec_…)")
    }
}

fn signed_content(id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut content = format!("{id}.{timestamp}.").into_bytes();
    content.extend_from_slice(body);
    content
}

/// The `webhook-signature` value for one message: `v1,<base64>`.
pub fn sign(secret: &Secret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = hmac::sign(&secret.key(), &signed_content(id, timestamp, body));
    format!("{SIGNATURE_VERSION},{}", STANDARD.encode(tag.as_ref()))
}

/// What a receiver does: true when any `v1` signature in the space-separated header
/// matches, compared in constant time. Checking that the timestamp is recent (the
/// replay window) is the receiver's call and not done here.
pub fn verify(secret: &Secret, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let content = signed_content(id, timestamp, body);
    header.split_whitespace().any(|candidate| {
        let Some((SIGNATURE_VERSION, encoded)) = candidate.split_once(',') else {
            return false;
        };
        STANDARD
            .decode(encoded)
            .is_ok_and(|tag| hmac::verify(&secret.key(), &content, &tag).is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The published vector: standard-webhooks/standard-webhooks,
    // libraries/go/webhook_test.go, TestWebhookSign.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const PAYLOAD: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_the_specifications_test_vector() {
        let secret = Secret::parse(SECRET).unwrap();
        assert_eq!(sign(&secret, ID, TIMESTAMP, PAYLOAD), SIGNATURE);
        assert_eq!(secret.reveal(), SECRET);
    }

    #[test]
    fn verifies_any_matching_signature_and_nothing_else() {
        let secret = Secret::parse(SECRET).unwrap();
        assert!(verify(&secret, ID, TIMESTAMP, PAYLOAD, SIGNATURE));
        let rotated = format!("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {SIGNATURE}");
        assert!(verify(&secret, ID, TIMESTAMP, PAYLOAD, &rotated));
        assert!(!verify(&secret, ID, TIMESTAMP + 1, PAYLOAD, SIGNATURE));
        assert!(!verify(
            &secret,
            ID,
            TIMESTAMP,
            b"{\"test\": 2432232315}",
            SIGNATURE
        ));
        assert!(!verify(
            &secret,
            ID,
            TIMESTAMP,
            PAYLOAD,
            &SIGNATURE.replace("v1,", "v2,")
        ));
        let other = Secret::generate().unwrap();
        assert!(!verify(&other, ID, TIMESTAMP, PAYLOAD, SIGNATURE));
    }

    #[test]
    fn generated_secrets_are_32_random_bytes_shown_as_whsec() {
        let a = Secret::generate().unwrap();
        let b = Secret::generate().unwrap();
        assert_ne!(a, b);
        let shown = a.reveal();
        assert!(shown.starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&shown[6..]).unwrap().len(), 32);
        assert_eq!(Secret::parse(&shown).unwrap(), a);
        assert_eq!(format!("{a:?}"), "Secret(whsec_…)");
        assert_eq!(
            Secret::parse("whsec_not base64!"),
            Err(SecretError::Malformed)
        );
    }
}
