//! Reading an HTTP request: limits, media type, JSON, headers and query strings.

use lambda_http::http::{HeaderMap, header};
use lambda_http::{Body, Request, RequestExt};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::domain::validation::is_valid_id;
use crate::domain::{
    AddressInput, Checkout, CheckoutInput, ContactInput, FieldErrors, OrderStatus,
};
use crate::ports::OrderQuery;

/// The largest request body accepted. A checkout is well under 2 KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const MAX_KEY_LEN: usize = 255;
pub const MAX_REASON_LEN: usize = 500;
pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the body must be JSON (Content-Type: application/json)")]
    NotJson,
    #[error("a JSON body is required")]
    MissingBody,
    #[error("the body is not valid JSON: {0}")]
    Malformed(String),
    #[error("the request is invalid")]
    Invalid(FieldErrors),
}

fn invalid(field: &str, message: impl Into<String>) -> RequestError {
    let mut errors = FieldErrors::default();
    errors.add(field, message);
    RequestError::Invalid(errors)
}

pub fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The body's bytes exactly as they came (a signature covers them).
pub fn body_bytes(request: &Request) -> &[u8] {
    match request.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    }
}

/// The body as a JSON object; `None` when there is no body and none is required.
pub fn json_object(
    request: &Request,
    required: bool,
) -> Result<Option<Map<String, Value>>, RequestError> {
    let bytes = body_bytes(request);
    if bytes.len() > MAX_BODY_BYTES || declared_length(request.headers()) > MAX_BODY_BYTES {
        return Err(RequestError::TooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return if required {
            Err(RequestError::MissingBody)
        } else {
            Ok(None)
        };
    }
    if !is_json(request.headers()) {
        return Err(RequestError::NotJson);
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(RequestError::Malformed(
            "the body must be a JSON object".into(),
        )),
        Err(e) => Err(RequestError::Malformed(e.to_string())),
    }
}

fn declared_length(headers: &HeaderMap) -> usize {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `application/json` or any `application/*+json`, with or without parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Reads named members of a JSON object, collecting every problem by field path and
/// refusing members nobody asked for (a misspelt field is a bug in the client).
pub struct Fields<'a> {
    object: &'a Map<String, Value>,
    prefix: &'a str,
    known: &'static [&'static str],
}

impl<'a> Fields<'a> {
    pub fn new(
        object: &'a Map<String, Value>,
        prefix: &'a str,
        known: &'static [&'static str],
    ) -> Self {
        Fields {
            object,
            prefix,
            known,
        }
    }

    fn path(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    pub fn unknown(&self, errors: &mut FieldErrors) {
        for name in self.object.keys() {
            if !self.known.contains(&name.as_str()) {
                errors.add(self.path(name), "is not a known field");
            }
        }
    }

    /// A string member; `null` counts as absent.
    pub fn string(&self, errors: &mut FieldErrors, name: &str) -> Option<String> {
        match self.object.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                errors.add(self.path(name), "must be a string");
                None
            }
        }
    }

    pub fn object(&self, errors: &mut FieldErrors, name: &str) -> Option<&'a Map<String, Value>> {
        match self.object.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map),
            Some(_) => {
                errors.add(self.path(name), "must be an object");
                None
            }
        }
    }
}

/// The create body (README's example request). Shape errors (unknown members, wrong JSON types) and
/// the domain's checks are reported together, one entry per field.
pub fn checkout(body: &Map<String, Value>) -> Result<Checkout, RequestError> {
    let (input, errors) = checkout_input(body);
    with_checks(errors, input.validate())
}

/// A body's shape errors (unknown members, wrong JSON types) and the domain's checks
/// of what could be read, reported together: a field already reported as the wrong
/// type is not also "required".
pub fn with_checks<T>(
    mut shape: FieldErrors,
    checked: Result<T, FieldErrors>,
) -> Result<T, RequestError> {
    match checked {
        Ok(value) if shape.is_empty() => Ok(value),
        Ok(_) => Err(RequestError::Invalid(shape)),
        Err(checks) => {
            for error in checks.0 {
                if !shape.0.iter().any(|e| e.field == error.field) {
                    shape.0.push(error);
                }
            }
            Err(RequestError::Invalid(shape))
        }
    }
}

fn checkout_input(body: &Map<String, Value>) -> (CheckoutInput, FieldErrors) {
    let mut errors = FieldErrors::default();
    let fields = Fields::new(
        body,
        "",
        &[
            "cart_id",
            "user_id",
            "shipping_address",
            "payment_method",
            "contact",
        ],
    );
    fields.unknown(&mut errors);
    let shipping_address = fields.object(&mut errors, "shipping_address").map(|a| {
        let address = Fields::new(
            a,
            "shipping_address",
            &["name", "address", "city", "state", "zip", "country"],
        );
        address.unknown(&mut errors);
        AddressInput {
            name: address.string(&mut errors, "name"),
            address: address.string(&mut errors, "address"),
            city: address.string(&mut errors, "city"),
            state: address.string(&mut errors, "state"),
            zip: address.string(&mut errors, "zip"),
            country: address.string(&mut errors, "country"),
        }
    });
    let contact = fields.object(&mut errors, "contact").map(|c| {
        let contact = Fields::new(c, "contact", &["email", "phone"]);
        contact.unknown(&mut errors);
        ContactInput {
            email: contact.string(&mut errors, "email"),
            phone: contact.string(&mut errors, "phone"),
        }
    });
    let input = CheckoutInput {
        cart_id: fields.string(&mut errors, "cart_id"),
        user_id: fields.string(&mut errors, "user_id"),
        payment_method: fields.string(&mut errors, "payment_method"),
        shipping_address,
        contact,
    };
    (input, errors)
}

/// SHA-256 of the body with its object keys in a fixed order, so that a retry
/// that serialises the same JSON differently is still the same request.
pub fn fingerprint(body: &Map<String, Value>) -> String {
    // serde_json's Map keeps keys sorted, which is the canonical order.
    let canonical = serde_json::to_string(body).unwrap_or_default();
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// `Idempotency-Key`: 1 to 255 printable ASCII characters.
pub fn idempotency_key(request: &Request) -> Result<Option<String>, RequestError> {
    let Some(value) = request.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or("");
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| (0x20..0x7f).contains(&b))
    {
        return Err(invalid(
            "Idempotency-Key",
            format!("must be 1 to {MAX_KEY_LEN} printable ASCII characters"),
        ));
    }
    Ok(Some(key.to_string()))
}

/// `If-Match: "3"` (or `W/"3"`, or a bare 3) → 3; `*` matches any version.
pub fn if_match(request: &Request) -> Result<Option<u64>, RequestError> {
    let Some(value) = header(request, "if-match") else {
        return Ok(None);
    };
    let tag = value.trim();
    if tag == "*" {
        return Ok(None);
    }
    // Exactly `"3"`, `W/"3"`, `3` or `W/3` (the document's pattern).
    let bare = tag.strip_prefix("W/").unwrap_or(tag);
    let digits = bare
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(bare);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(
            "If-Match",
            "must be the order's ETag, such as \"3\"",
        ));
    }
    // Too large to be any order's version: a mismatch (412), not a malformed header.
    Ok(Some(digits.parse().unwrap_or(u64::MAX)))
}

/// Optional free text, such as a change's `reason`: bounded, no control characters.
pub fn text(
    errors: &mut FieldErrors,
    fields: &Fields<'_>,
    name: &str,
    max: usize,
) -> Option<String> {
    let value = fields.string(errors, name)?;
    crate::domain::validation::check_text(errors, name, &value, max);
    Some(value)
}

pub fn path_parameter(request: &Request, name: &str) -> String {
    request
        .path_parameters()
        .first(name)
        .unwrap_or_default()
        .to_string()
}

/// A page size: 1 to 100 in plain digits, 20 when absent.
pub fn limit(errors: &mut FieldErrors, text: Option<&str>) -> usize {
    match text {
        None => DEFAULT_LIMIT,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) && l.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => {
                errors.add(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_LIMIT}"),
                );
                DEFAULT_LIMIT
            }
        },
    }
}

/// `GET /api/orders` query string: the filters, and the cursor where the previous
/// page ended.
pub fn list_request(request: &Request) -> Result<(OrderQuery, Option<String>), RequestError> {
    const KNOWN: &[&str] = &[
        "user_id",
        "status",
        "created_after",
        "created_before",
        "limit",
        "cursor",
    ];
    let params = request.query_string_parameters();
    let mut errors = FieldErrors::default();
    for (name, _) in params.iter() {
        if !KNOWN.contains(&name) {
            errors.add(name, "is not a known query parameter");
        }
    }
    let one = |name: &str| params.first(name).map(str::to_string);
    let time = |errors: &mut FieldErrors, name: &str| {
        one(name).and_then(|t| match OffsetDateTime::parse(&t, &Rfc3339) {
            // Stored times are UTC with a four-digit year; an offset may push a valid
            // RFC 3339 text out of that range (9999-12-31T23:59:59-01:00).
            Ok(t) => match t.checked_to_offset(time::UtcOffset::UTC) {
                Some(utc) if (0..=9999).contains(&utc.year()) => Some(utc),
                _ => {
                    errors.add(name, "must be within the years 0000 to 9999 in UTC");
                    None
                }
            },
            Err(_) => {
                errors.add(
                    name,
                    "must be an RFC 3339 timestamp such as 2026-11-25T00:00:00Z",
                );
                None
            }
        })
    };
    let status = one("status").and_then(|s| {
        let parsed = OrderStatus::parse(&s);
        if parsed.is_none() {
            let known: Vec<_> = OrderStatus::ALL.iter().map(|s| s.as_str()).collect();
            errors.add("status", format!("must be one of {}", known.join(", ")));
        }
        parsed
    });
    let limit = limit(&mut errors, one("limit").as_deref());
    let user_id = one("user_id");
    if user_id.as_deref().is_some_and(|u| !is_valid_id(u)) {
        errors.add("user_id", "is not a valid user id");
    }
    let created_after = time(&mut errors, "created_after");
    let created_before = time(&mut errors, "created_before");
    if let (Some(after), Some(before)) = (created_after, created_before)
        && after >= before
    {
        errors.add("created_before", "must be later than created_after");
    }
    let query = OrderQuery {
        user_id,
        status,
        created_after,
        created_before,
        limit,
        after: None,
    };
    errors
        // An empty `cursor=` is no cursor: the first page.
        .into_result((query, one("cursor").filter(|c| !c.is_empty())))
        .map_err(RequestError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fingerprints_ignore_key_order_and_whitespace() {
        let a: Map<String, Value> =
            serde_json::from_str(r#"{"b": 1, "a": {"y": 2, "x": 3}}"#).unwrap();
        let b: Map<String, Value> = serde_json::from_str(r#"{"a":{"x":3,"y":2},"b":1}"#).unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let c = json!({"a": {"x": 3, "y": 2}, "b": 2});
        assert_ne!(fingerprint(&a), fingerprint(c.as_object().unwrap()));
    }
}

// Property tests apart, in request_properties.rs.
#[cfg(test)]
#[path = "request_properties.rs"]
mod properties;
