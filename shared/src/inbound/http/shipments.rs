//! The shipment endpoints: `POST /api/orders/{order_id}/shipments` ships lines of an
//! order as one parcel, `GET` lists the parcels with their tracking histories.

use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{Map, Value, json};

use super::problem::ApiError;
use super::request::{self, Fields, RequestError};
use super::{caller, json_response};
use crate::auth::Authenticator;
use crate::domain::FieldErrors;
use crate::domain::fulfillment::{Parcel, ShipmentLine};
use crate::events::view::ShipmentView;
use crate::services::shipping::{IdempotentShipment, ShipmentRequest, ShippingService};

use std::sync::Arc;

/// The longest tracking number accepted (carriers' run to about 35 characters).
const MAX_TRACKING_LEN: usize = 100;
/// The most of one product a line may hold (as an order's lines).
const MAX_QUANTITY: f64 = 10_000.0;
/// The most lines one parcel may name.
const MAX_LINES: usize = 100;

pub struct ShippingApi {
    pub auth: Arc<Authenticator>,
    pub shipping: ShippingService,
}

impl ShippingApi {
    pub async fn create_shipment(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        let key = request::idempotency_key(request)?;
        let body = request::json_object(request, false)?.unwrap_or_default();
        let shipment = shipment_request(&body)?;
        let idempotency = key.map(|key| IdempotentShipment {
            key,
            fingerprint: request::fingerprint(&body),
        });
        let id = request::path_parameter(request, "order_id");
        let shipped = self
            .shipping
            .create(&caller, &id, shipment, idempotency)
            .await?;
        let mut response = json_response(
            StatusCode::CREATED,
            &ShipmentView::of(&shipped.order, &shipped.shipment),
        );
        if shipped.replayed {
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        Ok(response)
    }

    pub async fn void_shipment(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        let id = request::path_parameter(request, "order_id");
        let shipment = request::path_parameter(request, "shipment_id");
        let order = self.shipping.void(&caller, &id, &shipment).await?;
        Ok(json_response(
            StatusCode::OK,
            &crate::events::view::OrderView::for_reader(&order, &caller),
        ))
    }

    pub async fn list_shipments(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        let id = request::path_parameter(request, "order_id");
        let order = self.shipping.list(&caller, &id).await?;
        let shipments: Vec<ShipmentView> = order
            .shipments
            .iter()
            .map(|s| ShipmentView::of(&order, s))
            .collect();
        Ok(json_response(
            StatusCode::OK,
            &json!({ "order_id": order.id.as_str(), "shipments": shipments }),
        ))
    }
}

/// The body: every member optional; shape problems reported together, by field.
fn shipment_request(body: &Map<String, Value>) -> Result<ShipmentRequest, RequestError> {
    let mut errors = FieldErrors::default();
    let fields = Fields::new(
        body,
        "",
        &[
            "items",
            "carrier",
            "tracking_number",
            "servicelevel",
            "parcel",
        ],
    );
    fields.unknown(&mut errors);
    let items = match body.get("items") {
        None | Some(Value::Null) => None,
        Some(Value::Array(lines)) if lines.is_empty() => {
            errors.add(
                "items",
                "must name at least one line, or be left out to ship everything unshipped",
            );
            None
        }
        Some(Value::Array(lines)) if lines.len() > MAX_LINES => {
            errors.add("items", format!("must have at most {MAX_LINES} lines"));
            None
        }
        Some(Value::Array(lines)) => Some(
            lines
                .iter()
                .enumerate()
                .filter_map(|(i, line)| shipment_line(&mut errors, i, line))
                .collect::<Vec<_>>(),
        ),
        Some(_) => {
            errors.add("items", "must be an array");
            None
        }
    };
    let carrier = fields.string(&mut errors, "carrier").map(|c| {
        let c = c.to_ascii_lowercase();
        if !is_token(&c) {
            errors.add(
                "carrier",
                "must be a carrier token such as usps or ups (letters, digits, _ and -)",
            );
        }
        c
    });
    let tracking_number = fields.string(&mut errors, "tracking_number").inspect(|t| {
        if t.is_empty() || t.len() > MAX_TRACKING_LEN || !t.bytes().all(|b| b.is_ascii_graphic()) {
            errors.add(
                "tracking_number",
                format!("must be 1 to {MAX_TRACKING_LEN} printable characters without spaces"),
            );
        }
    });
    if tracking_number.is_some() && carrier.is_none() {
        errors.add("carrier", "is required with tracking_number");
    }
    let servicelevel = fields.string(&mut errors, "servicelevel").inspect(|s| {
        if !is_token(s) {
            errors.add(
                "servicelevel",
                "must be a service level token such as usps_priority",
            );
        }
    });
    let parcel = fields.object(&mut errors, "parcel").and_then(|object| {
        Fields::new(
            object,
            "parcel",
            &[
                "length",
                "width",
                "height",
                "distance_unit",
                "weight",
                "mass_unit",
            ],
        )
        .unknown(&mut errors);
        Parcel::parse(
            "parcel",
            |name| decimal_member(object.get(name)),
            &mut errors,
        )
    });
    if !errors.is_empty() {
        return Err(RequestError::Invalid(errors));
    }
    Ok(ShipmentRequest {
        items,
        carrier,
        tracking_number,
        servicelevel,
        parcel,
    })
}

/// A parcel's number as Shippo takes it, decimal text: given as text, or as a JSON
/// number rounded to 4 decimals (never in exponent form).
pub fn decimal_member(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => {
            let number = number.as_f64().filter(|n| n.is_finite() && *n >= 0.0)?;
            let text = format!("{number:.4}");
            Some(text.trim_end_matches('0').trim_end_matches('.').to_string())
        }
        _ => None,
    }
}

fn shipment_line(errors: &mut FieldErrors, i: usize, line: &Value) -> Option<ShipmentLine> {
    let field = format!("items[{i}]");
    let Some(object) = line.as_object() else {
        errors.add(field, "must be an object");
        return None;
    };
    let prefix = field.clone();
    let fields = Fields::new(object, &prefix, &["product_id", "quantity"]);
    fields.unknown(errors);
    let product_id = fields.string(errors, "product_id");
    if product_id.is_none() {
        errors.add(format!("{field}.product_id"), "is required");
    }
    let quantity = match object.get("quantity") {
        None | Some(Value::Null) => {
            errors.add(format!("{field}.quantity"), "is required");
            None
        }
        // JSON's integers include `2.0`; no line holds more than 10,000.
        Some(value) => match value
            .as_f64()
            .filter(|q| q.fract() == 0.0 && (0.0..=MAX_QUANTITY).contains(q))
        {
            Some(q) => Some(q as u32),
            None => {
                errors.add(
                    format!("{field}.quantity"),
                    "must be a whole number from 1 to 10000",
                );
                None
            }
        },
    };
    Some(ShipmentLine {
        product_id: product_id?,
        quantity: quantity?,
    })
}

fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 50
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
