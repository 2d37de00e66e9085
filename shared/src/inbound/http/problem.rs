//! RFC 9457 problem details, and the one place where every error becomes an HTTP
//! status.

use lambda_http::http::{HeaderMap, HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::auth::AuthError;
use crate::domain::payment::refund::RefundRefusal;
use crate::domain::{CartProblem, FieldErrors, RateLimit};
use crate::ports::{CartSourceError, LabelError, PaymentError, StoreError};
use crate::services::orders::OrderError;
use crate::services::payments::PaymentServiceError;
use crate::services::privacy::PrivacyError;
use crate::services::returns::ReturnError;
use crate::services::shipping::ShipmentError;
use crate::services::suppressions::SuppressionError;
use crate::services::webhooks::WebhookError;

use super::request::RequestError;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Order(#[from] OrderError),
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    #[error(transparent)]
    Payment(#[from] PaymentServiceError),
    #[error(transparent)]
    Shipment(#[from] ShipmentError),
    #[error(transparent)]
    Return(#[from] ReturnError),
    #[error(transparent)]
    Privacy(#[from] PrivacyError),
    #[error(transparent)]
    Suppression(#[from] SuppressionError),
    /// A provider's webhook whose `token` is missing or wrong (Shippo).
    #[error("the webhook token is missing or wrong")]
    BadToken,
    /// A payment provider's webhook whose `Stripe-Signature` does not verify.
    #[error("{0}")]
    BadSignature(String),
}

/// A problem details document (`application/problem+json`).
#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// Stable and machine-readable; `type` is `/problems/{code}`.
    pub code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldErrorView>>,
    /// Extension members, such as the order's current status on a conflict.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    #[serde(skip)]
    retry_after: Option<u32>,
    #[serde(skip)]
    bearer_challenge: bool,
    /// The create limit that refused the request, and seconds until its window ends.
    #[serde(skip)]
    rate_limit: Option<(RateLimit, u64)>,
}

#[derive(Debug, Serialize)]
pub struct FieldErrorView {
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("/problems/{code}"),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: detail.into(),
            code,
            errors: None,
            extra: Map::new(),
            retry_after: None,
            bearer_challenge: false,
            rate_limit: None,
        }
    }

    fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.into(), value);
        self
    }

    fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    fn invalid(errors: FieldErrors) -> Self {
        let mut problem = Problem::new(
            StatusCode::BAD_REQUEST,
            "validation_failed",
            "One or more fields are invalid.",
        );
        problem.errors = Some(
            errors
                .0
                .into_iter()
                .map(|e| FieldErrorView {
                    field: e.field,
                    message: e.message,
                })
                .collect(),
        );
        problem
    }

    fn unavailable(code: &'static str, detail: &str, retry_after: u32) -> Self {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, code, detail).retry_after(retry_after)
    }

    fn internal() -> Self {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Something went wrong on our side; it has been logged.",
        )
    }

    pub fn into_response(self) -> Response<Body> {
        let body = serde_json::to_string(&self).unwrap_or_default();
        let mut response = Response::new(Body::Text(body));
        *response.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.bearer_challenge {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some((limit, reset)) = self.rate_limit {
            insert_rate_limit(headers, limit, Some((0, reset)));
        }
        response
    }
}

impl From<ApiError> for Problem {
    fn from(err: ApiError) -> Self {
        match err {
            ApiError::Request(e) => request_problem(e),
            ApiError::Auth(e) => auth_problem(e),
            ApiError::Order(e) => order_problem(e),
            ApiError::Webhook(e) => webhook_problem(e),
            ApiError::Payment(e) => payment_problem(e),
            ApiError::Shipment(e) => shipment_problem(e),
            ApiError::Return(e) => return_problem(e),
            ApiError::Privacy(e) => privacy_problem(e),
            ApiError::Suppression(e) => suppression_problem(e),
            ApiError::BadToken => Problem::new(
                StatusCode::UNAUTHORIZED,
                "invalid_webhook_token",
                "The webhook token is missing or wrong.",
            ),
            ApiError::BadSignature(why) => {
                Problem::new(StatusCode::BAD_REQUEST, "invalid_signature", why)
            }
        }
    }
}

fn request_problem(err: RequestError) -> Problem {
    let detail = err.to_string();
    match err {
        RequestError::TooLarge { .. } => {
            Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", detail)
        }
        RequestError::NotJson => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            detail,
        ),
        RequestError::MissingBody | RequestError::Malformed(_) => {
            Problem::new(StatusCode::BAD_REQUEST, "malformed_json", detail)
        }
        RequestError::Invalid(errors) => Problem::invalid(errors),
    }
}

fn auth_problem(err: AuthError) -> Problem {
    match err {
        AuthError::KeysUnavailable(why) => {
            tracing::warn!(%why, "signing keys unavailable");
            Problem::unavailable(
                "auth_unavailable",
                "The token issuer's signing keys cannot be fetched right now.",
                5,
            )
        }
        other => {
            let mut problem =
                Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", other.to_string());
            problem.bearer_challenge = true;
            problem
        }
    }
}

fn order_problem(err: OrderError) -> Problem {
    let detail = err.to_string();
    match err {
        OrderError::Invalid(errors) => Problem::invalid(errors),
        OrderError::Forbidden(_) => Problem::new(StatusCode::FORBIDDEN, "forbidden", detail),
        OrderError::NotFound => Problem::new(StatusCode::NOT_FOUND, "order_not_found", detail),
        // The cart a schema-valid create names is not there (or not the caller's, which
        // is not told apart): 404, as the document lists it.
        OrderError::CartNotFound(_) | OrderError::Cart(CartProblem::NotYours(_)) => {
            Problem::new(StatusCode::NOT_FOUND, "cart_not_found", detail)
        }
        OrderError::Cart(problem) => {
            // The cart member at fault, as `errors` names request fields.
            let member = match &problem {
                CartProblem::BadLine { line, message } => Some((format!("items[{line}]"), message)),
                CartProblem::BadMember { member, message } => Some((member.clone(), message)),
                _ => None,
            };
            let (status, code) = match problem {
                CartProblem::Empty(_) => (StatusCode::BAD_REQUEST, "cart_empty"),
                // The request is fine; the cart it names cannot be priced.
                _ => (StatusCode::UNPROCESSABLE_ENTITY, "cart_invalid"),
            };
            let mut answer = Problem::new(status, code, detail);
            answer.errors = member.map(|(member, message)| {
                vec![FieldErrorView {
                    field: format!("cart.{member}"),
                    message: message.clone(),
                }]
            });
            answer
        }
        OrderError::CartAlreadyOrdered { order_id, .. } => {
            Problem::new(StatusCode::CONFLICT, "cart_already_ordered", detail)
                .with("order_id", json!(order_id.as_str()))
        }
        OrderError::Conflict { current, to } => {
            Problem::new(StatusCode::CONFLICT, "invalid_transition", detail)
                .with("current_status", json!(current.status.as_str()))
                .with("requested_status", json!(to.as_str()))
                .with("version", json!(current.version))
        }
        OrderError::Backordered { current } => {
            Problem::new(StatusCode::CONFLICT, "order_backordered", detail)
                .with("current_status", json!(current.status.as_str()))
                .with("shipping_status", json!(current.shipping_status.as_str()))
                .with("version", json!(current.version))
        }
        OrderError::StaleVersion { current } => {
            Problem::new(StatusCode::PRECONDITION_FAILED, "version_mismatch", detail)
                .with("current_version", json!(current.version))
                .with("current_status", json!(current.status.as_str()))
        }
        OrderError::KeyReused => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            detail,
        ),
        OrderError::CreateLimitReached { limit, retry_after } => {
            let seconds = u32::try_from(retry_after).unwrap_or(u32::MAX);
            let mut problem = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "create_limit_reached",
                detail,
            )
            .with("limit", json!(limit.count))
            .with("window_seconds", json!(limit.window))
            .retry_after(seconds);
            problem.rate_limit = Some((limit, retry_after));
            problem
        }
        OrderError::Contention => Problem::new(StatusCode::CONFLICT, "concurrent_change", detail),
        OrderError::BadCursor => Problem::new(StatusCode::BAD_REQUEST, "invalid_cursor", detail),
        OrderError::Store(e) => store_problem(e),
        OrderError::CartSource(CartSourceError::Unavailable(why)) => {
            tracing::warn!(%why, "cart source unavailable");
            Problem::unavailable(
                "cart_service_unavailable",
                "The cart service is unavailable.",
                2,
            )
        }
        OrderError::Payment(e) => provider_problem(e),
        OrderError::CartSource(CartSourceError::Malformed(why)) => {
            tracing::error!(%why, "cart source sent a malformed cart");
            Problem::new(
                StatusCode::BAD_GATEWAY,
                "cart_service_error",
                "The cart service sent a cart that could not be read.",
            )
        }
    }
}

fn webhook_problem(err: WebhookError) -> Problem {
    let detail = err.to_string();
    match err {
        WebhookError::Invalid(errors) => Problem::invalid(errors),
        WebhookError::Forbidden => Problem::new(StatusCode::FORBIDDEN, "forbidden", detail),
        WebhookError::NotFound => Problem::new(StatusCode::NOT_FOUND, "webhook_not_found", detail),
        WebhookError::BadCursor => Problem::new(StatusCode::BAD_REQUEST, "invalid_cursor", detail),
        WebhookError::Store(e) => store_problem(e),
        WebhookError::Secret(_) => {
            tracing::error!(error = %detail, "webhook endpoint failure");
            Problem::internal()
        }
    }
}

fn payment_problem(err: PaymentServiceError) -> Problem {
    let detail = err.to_string();
    match err {
        PaymentServiceError::NotFound => {
            Problem::new(StatusCode::NOT_FOUND, "order_not_found", detail)
        }
        PaymentServiceError::Forbidden(_) => {
            Problem::new(StatusCode::FORBIDDEN, "forbidden", detail)
        }
        PaymentServiceError::Invalid(errors) => Problem::invalid(errors),
        PaymentServiceError::Refused(refusal) => {
            let code = match refusal {
                RefundRefusal::NoPayment | RefundRefusal::NotPaid => "order_not_paid",
                RefundRefusal::InProgress => "refund_in_progress",
                RefundRefusal::TooMuch(_) => "refund_exceeds_payment",
                RefundRefusal::Nothing => "refund_amount_invalid",
                RefundRefusal::Allocation(_) => "refund_allocation_invalid",
            };
            let status = match refusal {
                RefundRefusal::Nothing
                | RefundRefusal::TooMuch(_)
                | RefundRefusal::Allocation(_) => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::CONFLICT,
            };
            Problem::new(status, code, detail)
        }
        PaymentServiceError::KeyReused => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            detail,
        ),
        PaymentServiceError::Provider(e) => provider_problem(e),
        PaymentServiceError::Contention => {
            Problem::new(StatusCode::CONFLICT, "concurrent_change", detail)
        }
        PaymentServiceError::Store(e) => store_problem(e),
        PaymentServiceError::BadEvent(_) => {
            Problem::new(StatusCode::BAD_REQUEST, "bad_event", detail)
        }
        PaymentServiceError::Off => Problem::new(StatusCode::NOT_FOUND, "payments_off", detail),
    }
}

fn shipment_problem(err: ShipmentError) -> Problem {
    let detail = err.to_string();
    match err {
        ShipmentError::Invalid(errors) => Problem::invalid(errors),
        ShipmentError::Forbidden => Problem::new(StatusCode::FORBIDDEN, "forbidden", detail),
        ShipmentError::NotFound => Problem::new(StatusCode::NOT_FOUND, "order_not_found", detail),
        ShipmentError::NotShippable { current } => {
            Problem::new(StatusCode::CONFLICT, "order_not_shippable", detail)
                .with("current_status", json!(current.status.as_str()))
                .with("version", json!(current.version))
        }
        ShipmentError::Backordered { current } => {
            Problem::new(StatusCode::CONFLICT, "order_backordered", detail)
                .with("current_status", json!(current.status.as_str()))
                .with("shipping_status", json!(current.shipping_status.as_str()))
                .with("version", json!(current.version))
        }
        ShipmentError::TooMany {
            field,
            product_id,
            requested,
            unshipped,
        } => {
            let mut problem =
                Problem::new(StatusCode::CONFLICT, "quantity_exceeds_unshipped", &detail)
                    .with("product_id", json!(product_id))
                    .with("unshipped", json!(unshipped));
            problem.errors = Some(vec![FieldErrorView {
                field,
                message: format!("{requested} asked for, {unshipped} left unshipped"),
            }]);
            problem
        }
        ShipmentError::NothingToShip(_) => {
            Problem::new(StatusCode::CONFLICT, "nothing_to_ship", detail)
        }
        ShipmentError::KeyReused => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            detail,
        ),
        ShipmentError::Contention => {
            Problem::new(StatusCode::CONFLICT, "concurrent_change", detail)
        }
        ShipmentError::Label(LabelError::Refused(messages)) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "label_refused",
            "The shipping provider refused the label; nothing was bought or recorded.",
        )
        .with("messages", json!(messages)),
        ShipmentError::Label(LabelError::Unavailable(why)) => {
            tracing::warn!(%why, "label provider unavailable");
            Problem::unavailable(
                "shipping_provider_unavailable",
                "The shipping provider is unavailable; no shipment was recorded. Retry with the same Idempotency-Key.",
                5,
            )
        }
        ShipmentError::LabelInProgress => {
            Problem::new(StatusCode::CONFLICT, "label_in_progress", detail)
        }
        ShipmentError::LabelsOff => {
            let mut errors = FieldErrors::default();
            errors.add("parcel", detail);
            Problem::invalid(errors)
        }
        ShipmentError::ShipmentNotFound(_) => {
            Problem::new(StatusCode::NOT_FOUND, "shipment_not_found", detail)
        }
        ShipmentError::NotVoidable(_) => {
            Problem::new(StatusCode::CONFLICT, "shipment_not_voidable", detail)
        }
        ShipmentError::ShippoOff => Problem::new(StatusCode::NOT_FOUND, "shippo_off", detail),
        ShipmentError::Store(e) => store_problem(e),
    }
}

fn return_problem(err: ReturnError) -> Problem {
    let detail = err.to_string();
    let conflict = |code| Problem::new(StatusCode::CONFLICT, code, &detail);
    match err {
        ReturnError::Invalid(errors) => Problem::invalid(errors),
        ReturnError::Forbidden(_) => Problem::new(StatusCode::FORBIDDEN, "forbidden", detail),
        ReturnError::NotFound => Problem::new(StatusCode::NOT_FOUND, "order_not_found", detail),
        ReturnError::ReturnNotFound(_) => {
            Problem::new(StatusCode::NOT_FOUND, "return_not_found", detail)
        }
        ReturnError::NotReturnable { status, .. } => {
            conflict("order_not_returnable").with("current_status", json!(status.as_str()))
        }
        ReturnError::TooMany {
            field,
            product_id,
            requested,
            returnable,
        } => {
            let mut problem = conflict("quantity_exceeds_returnable")
                .with("product_id", json!(product_id))
                .with("returnable", json!(returnable));
            problem.errors = Some(vec![FieldErrorView {
                field,
                message: format!("{requested} asked for, {returnable} can be returned"),
            }]);
            problem
        }
        ReturnError::WindowClosed { product_id, days } => conflict("return_window_closed")
            .with("product_id", json!(product_id))
            .with("return_window_days", json!(days)),
        ReturnError::Conflict { status, .. } => {
            conflict("return_status_conflict").with("return_status", json!(status.as_str()))
        }
        ReturnError::AlreadyReceived(_) => conflict("return_already_received"),
        ReturnError::NotDeferred { state, .. } => {
            conflict("refund_not_deferred").with("refund_status", json!(state.as_str()))
        }
        ReturnError::KeyReused => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            detail,
        ),
        ReturnError::Contention => conflict("concurrent_change"),
        ReturnError::PaymentsOff => payment_problem(PaymentServiceError::Off),
        ReturnError::Payment(e) => payment_problem(e),
        ReturnError::Label(e) => shipment_problem(ShipmentError::Label(e)),
        ReturnError::LabelInProgress => shipment_problem(ShipmentError::LabelInProgress),
        ReturnError::Store(e) => store_problem(e),
    }
}

fn privacy_problem(err: PrivacyError) -> Problem {
    let detail = err.to_string();
    match err {
        PrivacyError::Forbidden(_) => Problem::new(StatusCode::FORBIDDEN, "forbidden", detail),
        PrivacyError::InvalidUser => {
            let mut errors = FieldErrors::default();
            errors.add("user_id", detail);
            Problem::invalid(errors)
        }
        PrivacyError::OpenOrders(open) => {
            let orders: Vec<Value> = open
                .iter()
                .map(|o| {
                    let returns: Vec<Value> = o
                        .open_returns
                        .iter()
                        .map(|(id, status)| {
                            json!({ "return_id": id.as_str(), "status": status.as_str() })
                        })
                        .collect();
                    json!({
                        "order_id": o.order_id.as_str(),
                        "status": o.status.as_str(),
                        "open_returns": returns,
                    })
                })
                .collect();
            Problem::new(StatusCode::CONFLICT, "orders_still_open", detail)
                .with("open_orders", json!(orders))
        }
        PrivacyError::NoErasure => Problem::new(StatusCode::NOT_FOUND, "erasure_not_found", detail),
        PrivacyError::BadCursor => Problem::new(StatusCode::BAD_REQUEST, "invalid_cursor", detail),
        PrivacyError::Contention => Problem::new(StatusCode::CONFLICT, "concurrent_change", detail),
        PrivacyError::Store(e) => store_problem(e),
    }
}

fn suppression_problem(err: SuppressionError) -> Problem {
    let detail = err.to_string();
    match err {
        SuppressionError::Forbidden => Problem::new(StatusCode::FORBIDDEN, "forbidden", detail),
        SuppressionError::InvalidAddress => {
            let mut errors = FieldErrors::default();
            errors.add("email", detail);
            Problem::invalid(errors)
        }
        SuppressionError::NotFound => {
            Problem::new(StatusCode::NOT_FOUND, "suppression_not_found", detail)
        }
        SuppressionError::SendGridOff => {
            Problem::new(StatusCode::NOT_FOUND, "sendgrid_off", detail)
        }
        SuppressionError::BadSignature => {
            Problem::new(StatusCode::BAD_REQUEST, "invalid_signature", detail)
        }
        SuppressionError::Malformed(_) => {
            Problem::new(StatusCode::BAD_REQUEST, "bad_event", detail)
        }
        SuppressionError::Store(e) => store_problem(e),
    }
}

fn provider_problem(err: PaymentError) -> Problem {
    match err {
        PaymentError::Unavailable(why) => {
            tracing::warn!(%why, "payment provider unavailable");
            Problem::unavailable(
                "payment_provider_unavailable",
                "The payment provider is unavailable; nothing was charged or stored.",
                5,
            )
        }
        // The provider's text (an account or key error) is for the shop's operators,
        // not for whoever made the request: logged, and a generic answer.
        PaymentError::Refused(why) => {
            tracing::error!(%why, "payment provider refused a request");
            Problem::new(
                StatusCode::BAD_GATEWAY,
                "payment_provider_refused",
                "The payment provider refused the request; it has been logged.",
            )
        }
    }
}

fn store_problem(err: StoreError) -> Problem {
    match err {
        StoreError::Unavailable(why) => {
            tracing::warn!(%why, "order store unavailable");
            Problem::unavailable("store_unavailable", "The order store is unavailable.", 1)
        }
        StoreError::Throttled => Problem::unavailable(
            "store_throttled",
            "The order store is busy; retry shortly.",
            2,
        ),
        other => {
            tracing::error!(error = %other, "order store failure");
            Problem::internal()
        }
    }
}

/// The name the create limit goes by in the rate-limit headers.
const CREATE_POLICY: &str = "create";

/// `RateLimit-Policy` and, when the counter is known (`(remaining, seconds to reset)`),
/// `RateLimit`, as draft-ietf-httpapi-ratelimit-headers (-08 and later) spells them:
/// `"create";q=10;w=60` and `"create";r=0;t=42`.
pub fn insert_rate_limit(headers: &mut HeaderMap, limit: RateLimit, current: Option<(u32, u64)>) {
    let policy = format!("\"{CREATE_POLICY}\";q={};w={}", limit.count, limit.window);
    if let Ok(value) = HeaderValue::from_str(&policy) {
        headers.insert("ratelimit-policy", value);
    }
    if let Some((remaining, reset)) = current
        && let Ok(value) =
            HeaderValue::from_str(&format!("\"{CREATE_POLICY}\";r={remaining};t={reset}"))
    {
        headers.insert("ratelimit", value);
    }
}
