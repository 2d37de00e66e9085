//! The order endpoints: checkout, read, list, move, cancel and the audit trail. Each
//! turns an API Gateway request into one call on a service, and its outcome into an
//! answer; failures become problem documents in `problem`.

use std::sync::Arc;

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde_json::json;

use super::problem::ApiError;
use super::request::{self, Fields, MAX_REASON_LEN, RequestError};
use super::{caller, json_response, with_etag};
use crate::auth::Authenticator;
use crate::domain::{FieldErrors, OrderStatus};
use crate::events::view::{self, OrderView, Reader};
use crate::services::checkout::{CheckoutService, IdempotentCreate};
use crate::services::orders::{MoveRequest, Moved, OrderService};

/// `POST /api/orders`: the only endpoint that reads carts.
pub struct CheckoutApi {
    pub auth: Arc<Authenticator>,
    pub checkout: CheckoutService,
}

impl CheckoutApi {
    pub async fn create_order(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        let key = request::idempotency_key(request)?;
        let body = request::json_object(request, true)?.unwrap_or_default();
        let checkout = request::checkout(&body)?;
        let idempotency = key.map(|key| IdempotentCreate {
            key,
            fingerprint: request::fingerprint(&body),
        });
        let placed = self.checkout.place(&caller, checkout, idempotency).await?;
        let location = format!("/api/orders/{}", placed.order_id);
        let mut response = json_response(
            StatusCode::CREATED,
            &Acknowledgement {
                order_id: placed.order_id.as_str(),
                status: OrderStatus::Pending.as_str(),
                message: "Order received and pending payment.".into(),
                payment: placed.payment.as_ref().map(|p| PaymentToMake {
                    provider: "stripe",
                    intent_id: &p.intent_id,
                    client_secret: &p.client_secret,
                }),
            },
        );
        let headers = response.headers_mut();
        if let Ok(location) = HeaderValue::from_str(&location) {
            headers.insert(header::LOCATION, location);
        }
        if placed.replayed {
            headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        // The policy only: what is left of it is not known without another request.
        if let Some(limit) = self.checkout.create_limit() {
            super::problem::insert_rate_limit(headers, limit, None);
        }
        Ok(response)
    }
}

/// Every other order endpoint.
pub struct OrderApi {
    pub auth: Arc<Authenticator>,
    pub orders: OrderService,
}

impl OrderApi {
    pub async fn get_order(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        let order = self
            .orders
            .get(&caller, &request::path_parameter(request, "order_id"))
            .await?;
        Ok(with_etag(
            json_response(StatusCode::OK, &OrderView::for_reader(&order, &caller)),
            order.version,
        ))
    }

    pub async fn list_orders(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        let (query, cursor) = request::list_request(request)?;
        let listed = self.orders.list(&caller, query, cursor.as_deref()).await?;
        let orders: Vec<OrderView> = listed
            .orders
            .iter()
            .map(|order| OrderView::for_reader(order, &caller))
            .collect();
        Ok(json_response(
            StatusCode::OK,
            &OrderPageView {
                orders,
                next_cursor: listed.next_cursor,
            },
        ))
    }

    pub async fn update_order_status(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        let expected_version = request::if_match(request)?;
        let body = request::json_object(request, true)?.unwrap_or_default();
        let mut errors = FieldErrors::default();
        let fields = Fields::new(
            &body,
            "",
            &["status", "reason", "tracking_number", "carrier"],
        );
        fields.unknown(&mut errors);
        let status = match fields.string(&mut errors, "status") {
            None => {
                errors.add("status", "is required");
                None
            }
            Some(s) => OrderStatus::parse(&s).or_else(|| {
                let known: Vec<_> = OrderStatus::ALL.iter().map(|s| s.as_str()).collect();
                errors.add("status", format!("must be one of {}", known.join(", ")));
                None
            }),
        };
        let move_request = MoveRequest {
            reason: request::text(&mut errors, &fields, "reason", MAX_REASON_LEN),
            tracking_number: request::text(&mut errors, &fields, "tracking_number", 100),
            carrier: request::text(&mut errors, &fields, "carrier", 100),
            expected_version,
        };
        let (Some(status), true) = (status, errors.is_empty()) else {
            return Err(RequestError::Invalid(errors).into());
        };
        let id = request::path_parameter(request, "order_id");
        let moved = self
            .orders
            .change_status(&caller, &id, status, move_request)
            .await?;
        Ok(with_etag(
            json_response(
                StatusCode::OK,
                &OrderView::for_reader(&moved.order, &caller),
            ),
            moved.order.version,
        ))
    }

    pub async fn cancel_order(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        let body = request::json_object(request, false)?.unwrap_or_default();
        let mut errors = FieldErrors::default();
        let fields = Fields::new(&body, "", &["reason"]);
        fields.unknown(&mut errors);
        let reason = request::text(&mut errors, &fields, "reason", MAX_REASON_LEN);
        if !errors.is_empty() {
            return Err(RequestError::Invalid(errors).into());
        }
        let id = request::path_parameter(request, "order_id");
        let Moved { order, .. } = self.orders.cancel(&caller, &id, reason).await?;
        Ok(with_etag(
            json_response(
                StatusCode::OK,
                &Acknowledgement {
                    order_id: order.id.as_str(),
                    status: order.status.as_str(),
                    message: format!("Order {} cancelled successfully.", order.id),
                    payment: None,
                },
            ),
            order.version,
        ))
    }

    pub async fn get_order_history(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(&self.auth, request).await?;
        let order = self
            .orders
            .get(&caller, &request::path_parameter(request, "order_id"))
            .await?;
        let reader = if caller.admin || caller.fulfillment {
            Reader::Staff
        } else {
            Reader::Customer
        };
        Ok(json_response(
            StatusCode::OK,
            &json!({ "order_id": order.id.as_str(), "history": view::history(&order, reader) }),
        ))
    }
}

/// A page of orders. A struct, not `json!`: going through `serde_json::Value` would
/// turn `75.00` into `75.0`.
#[derive(Serialize)]
struct OrderPageView {
    orders: Vec<OrderView>,
    next_cursor: Option<String>,
}

/// The short answer to a create or a cancel, in the words the README documents.
#[derive(Serialize)]
struct Acknowledgement<'a> {
    order_id: &'a str,
    status: &'static str,
    message: String,
    /// A card order's payment, for the customer's browser to pay (Stripe.js).
    #[serde(skip_serializing_if = "Option::is_none")]
    payment: Option<PaymentToMake<'a>>,
}

#[derive(Serialize)]
struct PaymentToMake<'a> {
    provider: &'static str,
    intent_id: &'a str,
    client_secret: &'a str,
}
