//! Addresses that must not be mailed again: a hard bounce or a complaint, reported by
//! the mail provider (SES through SNS, SendGrid's signed event webhook), suppresses
//! the address until an admin clears it. An order whose message was withheld says so
//! in its history: the customer could not be reached.

use time::OffsetDateTime;

use super::notification::Channel;
use super::order::{HistoryEntry, Order, Role};

named_enum! {
    /// Why an address is suppressed.
    SuppressionReason {
        Bounce => "bounce",
        Complaint => "complaint",
    }
}

/// One address's suppression, as recorded (the address itself is kept only hashed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub reason: SuppressionReason,
    /// Who reported it: `ses` or `sendgrid`.
    pub source: String,
    pub at: OffsetDateTime,
}

/// The start of the history entry of a withheld message; the rest names the channel
/// and the reason (`customer could not be reached: email suppressed (bounce)`).
/// Events of that change are `order.contact_unreachable`.
pub const UNREACHABLE_NOTE: &str = "customer could not be reached";

/// The actor of that entry: the notifications consumer.
pub const NOTIFICATIONS_ACTOR: &str = "notifications";

/// `order` one version on, its history noting that `channel`'s message was withheld
/// because the address is suppressed; `None` when it says so already (once per order
/// and channel is enough for whoever reads it).
pub fn note_unreachable(
    order: &Order,
    channel: Channel,
    reason: SuppressionReason,
    at: OffsetDateTime,
) -> Option<Order> {
    let note = format!(
        "{UNREACHABLE_NOTE}: {} suppressed ({})",
        channel.as_str(),
        reason.as_str()
    );
    let prefix = format!("{UNREACHABLE_NOTE}: {} ", channel.as_str());
    if order
        .history
        .iter()
        .any(|h| h.reason.as_deref().is_some_and(|r| r.starts_with(&prefix)))
    {
        return None;
    }
    let mut noted = order.clone();
    noted.version = order.version + 1;
    noted.updated_at = at;
    noted.history.push(HistoryEntry {
        at,
        actor: NOTIFICATIONS_ACTOR.into(),
        role: Role::System,
        status: order.status,
        shipping_status: None,
        payment_status: None,
        reason: Some(note),
    });
    Some(noted)
}

/// Whether `entry` is such a note.
pub fn is_unreachable_entry(entry: &HistoryEntry) -> bool {
    entry.actor == NOTIFICATIONS_ACTOR
        && entry
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with(UNREACHABLE_NOTE))
}

/// SendGrid's signed event webhook: an ECDSA P-256 signature (ASN.1 DER, base64 in
/// `X-Twilio-Email-Event-Webhook-Signature`) over the timestamp header's text followed
/// by the body's bytes, checked with the public key SendGrid shows (base64 of its
/// X.509 SubjectPublicKeyInfo DER, or of the bare uncompressed point).
#[derive(Clone)]
pub struct SendGridKey(Vec<u8>);

impl std::fmt::Debug for SendGridKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SendGridKey(..)")
    }
}

/// A P-256 SubjectPublicKeyInfo ends with the 65-byte uncompressed point.
const P256_POINT: usize = 65;

impl SendGridKey {
    pub fn parse(base64_key: &str) -> Option<SendGridKey> {
        use base64::Engine;
        let der = base64::engine::general_purpose::STANDARD
            .decode(base64_key.trim())
            .ok()?;
        let point = match der.len() {
            P256_POINT => der,
            // SEQUENCE { AlgorithmIdentifier (id-ecPublicKey, prime256v1), BIT STRING }
            91 if der[0] == 0x30 => der[der.len() - P256_POINT..].to_vec(),
            _ => return None,
        };
        (point[0] == 0x04).then_some(SendGridKey(point))
    }

    pub fn verifies(&self, timestamp: &str, body: &[u8], signature_base64: &str) -> bool {
        use base64::Engine;
        let Ok(signature) =
            base64::engine::general_purpose::STANDARD.decode(signature_base64.trim())
        else {
            return false;
        };
        let mut signed = timestamp.as_bytes().to_vec();
        signed.extend_from_slice(body);
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, &self.0)
            .verify(&signed, &signature)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

    #[test]
    fn a_sendgrid_signature_verifies_only_over_its_timestamp_and_body() {
        let random = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &random).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &random)
                .unwrap();
        // SubjectPublicKeyInfo of a P-256 key, as SendGrid shows it: a fixed prefix
        // (id-ecPublicKey, prime256v1, BIT STRING of 66 bytes), then the point.
        let mut spki = vec![
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        spki.extend_from_slice(pair.public_key().as_ref());
        let key = SendGridKey::parse(&STANDARD.encode(&spki)).expect("an SPKI key");
        let body = br#"[{"email":"a@example.com","event":"bounce"}]"#;
        let mut signed = b"1700000000".to_vec();
        signed.extend_from_slice(body);
        let signature = pair.sign(&SystemRandom::new(), &signed).unwrap();
        let signature = STANDARD.encode(signature.as_ref());
        assert!(key.verifies("1700000000", body, &signature));
        assert!(!key.verifies("1700000001", body, &signature));
        assert!(!key.verifies("1700000000", b"[]", &signature));
        assert!(!key.verifies("1700000000", body, "not base64"));
        // The bare point is accepted too; anything else is no key.
        let point = STANDARD.encode(pair.public_key().as_ref());
        assert!(
            SendGridKey::parse(&point)
                .unwrap()
                .verifies("1700000000", body, &signature)
        );
        assert!(SendGridKey::parse("c2hvcnQ=").is_none());
    }
}
