//! How to reach the customer about an order: an email address and a phone number,
//! both optional, both checked before they are stored.

use super::validation::FieldErrors;

/// The longest address SMTP carries (RFC 5321's path limit, less the brackets).
pub const MAX_EMAIL_LEN: usize = 254;

/// Where messages about an order go. Shown only to its owner and to admins: the
/// events (and so the webhooks) never carry it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contact {
    pub email: Option<String>,
    /// E.164: `+` and up to 15 digits.
    pub phone: Option<String>,
    /// Whether `email` is the account's own, as its token's issuer verified it (not
    /// whatever a create sent): only then do messages greet by the shipping name.
    pub email_verified: bool,
}

impl Contact {
    pub fn is_empty(&self) -> bool {
        self.email.is_none() && self.phone.is_none()
    }
}

/// The `contact` object of a create request, as it arrived.
#[derive(Debug, Clone, Default)]
pub struct ContactInput {
    pub email: Option<String>,
    pub phone: Option<String>,
}

impl ContactInput {
    /// Checks both fields, reporting each under `contact.<field>`.
    pub fn validate(&self, errors: &mut FieldErrors) -> Contact {
        // Not trimmed: what is stored is what was checked, as docs/openapi.yaml's
        // patterns say.
        let email = self.email.as_deref();
        if let Some(email) = email
            && !is_email(email)
        {
            errors.add(
                "contact.email",
                "must be an email address such as jane@example.com",
            );
        }
        let phone = self.phone.as_deref();
        if let Some(phone) = phone
            && !is_e164(phone)
        {
            errors.add(
                "contact.phone",
                "must be an E.164 phone number: + and 8 to 15 digits, such as +12125550123",
            );
        }
        Contact {
            email: email.map(str::to_string),
            phone: phone.map(str::to_string),
            email_verified: false,
        }
    }
}

/// The token's `email` and `phone_number` claims, kept only where they are valid: a
/// claim the issuer vouches for but that cannot be sent to is no contact.
pub fn from_claims(email: Option<&str>, phone: Option<&str>) -> Contact {
    Contact {
        email: email
            .map(str::trim)
            .filter(|e| is_email(e))
            .map(str::to_string),
        phone: phone
            .map(str::trim)
            .filter(|p| is_e164(p))
            .map(str::to_string),
        email_verified: false,
    }
}

/// An address a mail server accepts: `local@domain`, the local part dot-separated
/// runs of visible ASCII other than `@`, quotes, brackets or commas, the domain
/// dot-separated labels of letters, digits and hyphens (not first or last), its last
/// one letters only. Deliberately stricter than RFC 5322 (no quoted local parts, no
/// IP literals): what passes here every provider sends to. docs/openapi.yaml states
/// the same rule as a pattern.
pub fn is_email(text: &str) -> bool {
    if text.len() > MAX_EMAIL_LEN {
        return false;
    }
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"@\"(),:;<>[\\]".contains(&b));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()));
    local_ok && domain_ok
}

/// E.164 (ITU-T): `+`, a country code that does not start with 0, at most 15 digits
/// in all; 8 at least, the shortest numbers in use with their country code.
pub fn is_e164(text: &str) -> bool {
    let Some(digits) = text.strip_prefix('+') else {
        return false;
    };
    (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_that_providers_send_to_pass_and_others_do_not() {
        for good in [
            "jane@example.com",
            "jane.doe+orders@mail.example.co.uk",
            "j_d-1@x-y.io",
        ] {
            assert!(is_email(good), "{good}");
        }
        for bad in [
            "",
            "jane",
            "@example.com",
            "jane@",
            "jane@example",
            "jane@@example.com",
            "jane doe@example.com",
            "jane@exa mple.com",
            "jane@-example.com",
            "jane@example.c0m",
            ".jane@example.com",
            "ja..ne@example.com",
            "jane@example..com",
            "\"jane\"@example.com",
            "jané@example.com",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
        assert!(!is_email(&format!("{}@example.com", "a".repeat(250))));
        assert!(!is_email(" jane@example.com"));
    }

    #[test]
    fn phones_are_e164() {
        for good in ["+12125550123", "+447911123456", "+49301234567"] {
            assert!(is_e164(good), "{good}");
        }
        for bad in [
            "12125550123",
            "+1 212 555 0123",
            "+0123456789",
            "+1234567",
            "+1234567890123456",
            "+1-212-555-0123",
            "",
        ] {
            assert!(!is_e164(bad), "{bad}");
        }
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut errors = FieldErrors::default();
        let contact = ContactInput {
            email: Some("nope".into()),
            phone: Some("555".into()),
        }
        .validate(&mut errors);
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["contact.email", "contact.phone"]);
        assert_eq!(contact.email.as_deref(), Some("nope"));
    }

    #[test]
    fn invalid_claims_are_dropped() {
        let contact = from_claims(Some("jane@example.com"), Some("not a phone"));
        assert_eq!(contact.email.as_deref(), Some("jane@example.com"));
        assert_eq!(contact.phone, None);
    }
}
