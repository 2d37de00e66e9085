//! Property tests of request reading: no query string or body panics, and the dates
//! a list request parses are the dates it was sent.

use std::collections::HashMap;

use lambda_http::http::header::CONTENT_TYPE;
use proptest::prelude::*;
use time::UtcOffset;

use super::*;

fn list(params: Vec<(String, String)>) -> Result<(OrderQuery, Option<String>), RequestError> {
    let mut query: HashMap<String, Vec<String>> = HashMap::new();
    for (name, value) in params {
        query.entry(name).or_default().push(value);
    }
    list_request(&Request::default().with_query_string_parameters(query))
}

fn body(content_type: &str, text: String) -> Request {
    let mut request = Request::new(Body::Text(text));
    if let Ok(value) = content_type.parse() {
        request.headers_mut().insert(CONTENT_TYPE, value);
    }
    request
}

/// An RFC 3339 time in years 1 to 9998 (UTC) at any offset; the far end of year 9999
/// is the fuzz branch's defect (a time whose UTC is year 10000).
fn rfc3339() -> impl Strategy<Value = (OffsetDateTime, String)> {
    (
        -62_135_596_800i64..253_370_764_800,
        0u32..1_000_000_000,
        -86_399i32..=86_399,
    )
        .prop_map(|(seconds, nanos, offset)| {
            let at = (OffsetDateTime::from_unix_timestamp(seconds).unwrap()
                + time::Duration::nanoseconds(i64::from(nanos)))
            .to_offset(UtcOffset::from_whole_seconds(offset - offset % 60).unwrap());
            let text = at.format(&Rfc3339).unwrap();
            (at, text)
        })
}

fn param_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            &[
                "user_id",
                "status",
                "created_after",
                "created_before",
                "limit",
                "cursor"
            ][..]
        )
        .prop_map(String::from),
        ".{0,12}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    prop::sample::select(
                        &[
                            "cart_id",
                            "user_id",
                            "shipping_address",
                            "payment_method",
                            "name",
                            "address",
                            "city",
                            "state",
                            "zip",
                            "country",
                            "status",
                            "reason"
                        ][..]
                    )
                    .prop_map(String::from),
                    ".{0,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any query string is an answer (the query, or field errors), never a panic.
    #[test]
    fn no_query_string_panics(
        params in prop::collection::vec((param_name(), ".{0,40}"), 0..8),
    ) {
        let _ = list(params);
    }

    /// A date sent in created_after or created_before is the instant parsed (held in
    /// UTC, whatever offset it came with), and renders back as that instant.
    #[test]
    fn dates_parse_back_as_sent((after, after_text) in rfc3339(), (before, before_text) in rfc3339()) {
        let (query, _) = list(vec![("created_after".into(), after_text.clone())]).unwrap();
        prop_assert_eq!(query.created_after, Some(after));
        let rendered = query.created_after.unwrap().format(&Rfc3339).unwrap();
        prop_assert_eq!(OffsetDateTime::parse(&rendered, &Rfc3339).unwrap(), after);
        let both = list(vec![
            ("created_after".into(), after_text),
            ("created_before".into(), before_text),
        ]);
        match both {
            Ok((query, _)) => {
                prop_assert!(after < before);
                prop_assert_eq!(query.created_before, Some(before));
            }
            Err(_) => prop_assert!(after >= before),
        }
    }

    /// Any body text, under any content type, is read or refused, never a panic.
    #[test]
    fn no_body_text_panics(
        content_type in prop_oneof![Just("application/json".to_string()), ".{0,30}"],
        text in ".{0,200}",
        required in any::<bool>(),
    ) {
        let _ = json_object(&body(&content_type, text), required);
    }

    /// Any JSON object is a checkout or field errors, never a panic.
    #[test]
    fn no_json_body_panics(value in json_value()) {
        let request = body("application/json", value.to_string());
        if let Ok(Some(object)) = json_object(&request, true) {
            let _ = checkout(&object);
            let _ = fingerprint(&object);
        }
    }
}
