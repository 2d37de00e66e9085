//! The return endpoints: `POST`/`GET /api/orders/{order_id}/returns`, each step of a
//! return (`…/returns/{return_id}/approve|decline|cancel|receive|refund`) and the
//! queue of returns to handle, `GET /api/returns?status=`.

use std::sync::Arc;

use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::problem::ApiError;
use super::request::{self, Fields, RequestError};
use super::{caller, json_response};
use crate::auth::Authenticator;
use crate::domain::FieldErrors;
use crate::domain::fulfillment::returns::{
    ReceiveRequest, ReceivedLine, ReturnLine, ReturnReason, ReturnStatus,
};
use crate::domain::time::timestamp;
use crate::domain::validation::check_text;
use crate::events::return_view::ReturnView;
use crate::events::view::{ReturnLineView, lines};
use crate::ports::QueuedReturn;
use crate::services::returns::{IdempotentReturn, ReturnRequest, ReturnService, ReturnStep};

/// The most lines one return may name (as an order's lines).
const MAX_LINES: usize = 100;
/// The most of one product a line may hold (as an order's lines).
const MAX_QUANTITY: f64 = 10_000.0;
/// The longest note or reason kept.
const MAX_TEXT: usize = 500;

pub struct ReturnApi {
    pub auth: Arc<Authenticator>,
    pub returns: ReturnService,
}

impl ReturnApi {
    pub async fn create_return(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        let key = request::idempotency_key(request)?;
        let body = request::json_object(request, true)?.unwrap_or_default();
        let asked = return_request(&body)?;
        let idempotency = key.map(|key| IdempotentReturn {
            key,
            fingerprint: request::fingerprint(&body),
        });
        let id = request::path_parameter(request, "order_id");
        let step = self
            .returns
            .request(&caller, &id, asked, idempotency)
            .await?;
        Ok(answer(StatusCode::CREATED, &step))
    }

    pub async fn list_order_returns(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        let id = request::path_parameter(request, "order_id");
        let order = self.returns.list(&caller, &id).await?;
        let returns: Vec<ReturnView> = order
            .returns
            .iter()
            .map(|r| ReturnView::of(&order, r))
            .collect();
        Ok(json_response(
            StatusCode::OK,
            &json!({
                "order_id": order.id.as_str(),
                "return_status": order.return_status().as_str(),
                "returns": returns,
            }),
        ))
    }

    pub async fn approve_return(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        let body = request::json_object(request, false)?.unwrap_or_default();
        let mut errors = FieldErrors::default();
        let fields = Fields::new(&body, "", &["label"]);
        fields.unknown(&mut errors);
        let label = match body.get("label") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(label)) => *label,
            Some(_) => {
                errors.add("label", "must be true or false");
                true
            }
        };
        errors.into_result(()).map_err(RequestError::Invalid)?;
        let (id, return_id) = ids(request);
        let step = self
            .returns
            .approve(&caller, &id, &return_id, label)
            .await?;
        Ok(answer(StatusCode::OK, &step))
    }

    pub async fn decline_return(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        let body = request::json_object(request, true)?.unwrap_or_default();
        let mut errors = FieldErrors::default();
        let fields = Fields::new(&body, "", &["reason"]);
        fields.unknown(&mut errors);
        let reason = request::text(&mut errors, &fields, "reason", MAX_TEXT);
        if reason.as_deref().is_none_or(|r| r.trim().is_empty()) && errors.is_empty() {
            errors.add("reason", "is required: tell the customer why");
        }
        let reason = errors.into_result(reason).map_err(RequestError::Invalid)?;
        let (id, return_id) = ids(request);
        let step = self
            .returns
            .decline(&caller, &id, &return_id, reason.unwrap_or_default())
            .await?;
        Ok(answer(StatusCode::OK, &step))
    }

    pub async fn cancel_return(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        let body = request::json_object(request, false)?.unwrap_or_default();
        let mut errors = FieldErrors::default();
        Fields::new(&body, "", &[]).unknown(&mut errors);
        errors.into_result(()).map_err(RequestError::Invalid)?;
        let (id, return_id) = ids(request);
        let step = self.returns.cancel(&caller, &id, &return_id).await?;
        Ok(answer(StatusCode::OK, &step))
    }

    pub async fn receive_return(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        let key = request::idempotency_key(request)?;
        let body = request::json_object(request, false)?.unwrap_or_default();
        let (id, return_id) = ids(request);
        let (asked, fee) = receive_request(&body)?;
        let idempotency = key.map(|key| IdempotentReturn {
            key,
            fingerprint: request::fingerprint(&body),
        });
        let step = self
            .returns
            .receive(&caller, &id, &return_id, asked, fee, idempotency)
            .await?;
        Ok(answer(settled_status(&step), &step))
    }

    pub async fn refund_return(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        let body = request::json_object(request, false)?.unwrap_or_default();
        let mut errors = FieldErrors::default();
        Fields::new(&body, "", &[]).unknown(&mut errors);
        errors.into_result(()).map_err(RequestError::Invalid)?;
        let (id, return_id) = ids(request);
        let step = self.returns.refund(&caller, &id, &return_id).await?;
        let status = settled_status(&step);
        Ok(answer(status, &step))
    }

    pub async fn list_returns(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        const KNOWN: &[&str] = &["status", "limit", "cursor"];
        let params = request.query_string_parameters();
        let mut errors = FieldErrors::default();
        for (name, _) in params.iter() {
            if !KNOWN.contains(&name) {
                errors.add(name, "is not a known query parameter");
            }
        }
        let status = match params.first("status") {
            None => ReturnStatus::Requested,
            Some(text) => ReturnStatus::parse(text).unwrap_or_else(|| {
                let known: Vec<_> = ReturnStatus::ALL.iter().map(|s| s.as_str()).collect();
                errors.add("status", format!("must be one of {}", known.join(", ")));
                ReturnStatus::Requested
            }),
        };
        let limit = request::limit(&mut errors, params.first("limit"));
        let cursor = params.first("cursor").filter(|c| !c.is_empty());
        errors.into_result(()).map_err(RequestError::Invalid)?;
        let page = self.returns.queue(&caller, status, limit, cursor).await?;
        let returns: Vec<QueuedReturnView> = page.returns.iter().map(Into::into).collect();
        Ok(json_response(
            StatusCode::OK,
            &json!({ "returns": returns, "next_cursor": page.next }),
        ))
    }
}

/// A return in the queue of returns to handle (`GET /api/returns`).
#[derive(Debug, Serialize)]
struct QueuedReturnView {
    return_id: String,
    order_id: String,
    user_id: String,
    status: &'static str,
    created_at: String,
    items: Vec<ReturnLineView>,
}

impl From<&QueuedReturn> for QueuedReturnView {
    fn from(q: &QueuedReturn) -> Self {
        QueuedReturnView {
            return_id: q.return_id.to_string(),
            order_id: q.order_id.to_string(),
            user_id: q.user_id.clone(),
            status: q.status.as_str(),
            created_at: timestamp(q.created_at),
            items: lines(&q.items),
        }
    }
}

fn ids(request: &Request) -> (String, String) {
    (
        request::path_parameter(request, "order_id"),
        request::path_parameter(request, "return_id"),
    )
}

/// 202 while the received return's restock or refund is still to finish (the
/// provider was unavailable): `POST …/refund` or the receive's retry finishes it.
fn settled_status(step: &ReturnStep) -> StatusCode {
    let unsettled = step
        .order
        .return_of(&step.return_id)
        .and_then(|r| r.receipt.as_ref())
        .is_some_and(|r| !r.settled());
    if unsettled {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    }
}

fn answer(status: StatusCode, step: &ReturnStep) -> Response<Body> {
    let view = step
        .order
        .return_of(&step.return_id)
        .map(|r| ReturnView::of(&step.order, r));
    let mut response = json_response(status, &view);
    if step.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

fn quantity(errors: &mut FieldErrors, field: &str, value: Option<&Value>) -> Option<u32> {
    match value {
        None | Some(Value::Null) => {
            errors.add(field, "is required");
            None
        }
        // JSON's integers include `2.0`; no line holds more than 10,000.
        Some(value) => match value
            .as_f64()
            .filter(|q| q.fract() == 0.0 && (1.0..=MAX_QUANTITY).contains(q))
        {
            Some(q) => Some(q as u32),
            None => {
                errors.add(field, "must be a whole number from 1 to 10000");
                None
            }
        },
    }
}

fn lines_of<'a>(
    errors: &mut FieldErrors,
    body: &'a Map<String, Value>,
    required: bool,
) -> Option<Vec<(usize, &'a Map<String, Value>)>> {
    match body.get("items") {
        None | Some(Value::Null) if !required => None,
        None | Some(Value::Null) => {
            errors.add("items", "is required");
            None
        }
        Some(Value::Array(lines)) if lines.is_empty() => {
            errors.add("items", "must name at least one line");
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
                .filter_map(|(i, line)| match line.as_object() {
                    Some(object) => Some((i, object)),
                    None => {
                        errors.add(format!("items[{i}]"), "must be an object");
                        None
                    }
                })
                .collect(),
        ),
        Some(_) => {
            errors.add("items", "must be an array");
            None
        }
    }
}

fn product_id(errors: &mut FieldErrors, fields: &Fields<'_>, field: &str) -> Option<String> {
    let id = fields.string(errors, "product_id");
    match &id {
        None => errors.add(format!("{field}.product_id"), "is required"),
        Some(id) if !crate::domain::validation::is_valid_id(id) => {
            errors.add(format!("{field}.product_id"), "is not a valid product id")
        }
        Some(_) => {}
    }
    id
}

/// `POST …/returns`: `items` (each `product_id`, `quantity`, `reason`, optional
/// `note`) and an optional `note`; every problem reported together, by field.
fn return_request(body: &Map<String, Value>) -> Result<ReturnRequest, RequestError> {
    let mut errors = FieldErrors::default();
    let fields = Fields::new(body, "", &["items", "note"]);
    fields.unknown(&mut errors);
    let note = request::text(&mut errors, &fields, "note", MAX_TEXT);
    let mut items = Vec::new();
    for (i, object) in lines_of(&mut errors, body, true).unwrap_or_default() {
        let field = format!("items[{i}]");
        let line = Fields::new(
            object,
            &field,
            &["product_id", "quantity", "reason", "note"],
        );
        line.unknown(&mut errors);
        let product_id = product_id(&mut errors, &line, &field);
        let quantity = quantity(
            &mut errors,
            &format!("{field}.quantity"),
            object.get("quantity"),
        );
        let reason = match line.string(&mut errors, "reason") {
            None => {
                if !object.contains_key("reason") || object["reason"].is_null() {
                    errors.add(format!("{field}.reason"), "is required");
                }
                None
            }
            Some(text) => ReturnReason::parse(&text).or_else(|| {
                let known: Vec<_> = ReturnReason::ALL.iter().map(|r| r.as_str()).collect();
                errors.add(
                    format!("{field}.reason"),
                    format!("must be one of {}", known.join(", ")),
                );
                None
            }),
        };
        let note = line.string(&mut errors, "note").inspect(|n| {
            check_text(&mut errors, &format!("{field}.note"), n, MAX_TEXT);
        });
        if let (Some(product_id), Some(quantity), Some(reason)) = (product_id, quantity, reason) {
            items.push(ReturnLine {
                product_id,
                quantity,
                reason,
                note,
            });
        }
    }
    errors
        .into_result(ReturnRequest { items, note })
        .map_err(RequestError::Invalid)
}

/// `POST …/receive`: every member optional. The fee comes back as text: it is read in
/// the order's currency by the service.
fn receive_request(
    body: &Map<String, Value>,
) -> Result<(ReceiveRequest, Option<String>), RequestError> {
    let mut errors = FieldErrors::default();
    let fields = Fields::new(
        body,
        "",
        &["items", "refund", "refund_shipping", "restocking_fee"],
    );
    fields.unknown(&mut errors);
    let lines = lines_of(&mut errors, body, false).map(|lines| {
        lines
            .into_iter()
            .filter_map(|(i, object)| {
                let field = format!("items[{i}]");
                let line = Fields::new(object, &field, &["product_id", "quantity", "restock"]);
                line.unknown(&mut errors);
                let product_id = product_id(&mut errors, &line, &field);
                let quantity = quantity(
                    &mut errors,
                    &format!("{field}.quantity"),
                    object.get("quantity"),
                );
                let restock = flag(&mut errors, object, "restock", &format!("{field}.restock"));
                Some(ReceivedLine {
                    product_id: product_id?,
                    quantity: quantity?,
                    restock: restock.unwrap_or(true),
                })
            })
            .collect::<Vec<_>>()
    });
    let refund = flag(&mut errors, body, "refund", "refund");
    let refund_shipping = flag(&mut errors, body, "refund_shipping", "refund_shipping");
    let fee = match body.get("restocking_fee") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(Value::Number(number)) => Some(number.to_string()),
        Some(_) => {
            errors.add(
                "restocking_fee",
                "must be a decimal amount such as \"5.00\"",
            );
            None
        }
    };
    errors.into_result(()).map_err(RequestError::Invalid)?;
    let request = ReceiveRequest {
        lines,
        refund,
        refund_shipping: refund_shipping.unwrap_or(false),
        restocking_fee: None,
    };
    Ok((request, fee))
}

fn flag(
    errors: &mut FieldErrors,
    object: &Map<String, Value>,
    name: &str,
    field: &str,
) -> Option<bool> {
    match object.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            errors.add(field, "must be true or false");
            None
        }
    }
}
