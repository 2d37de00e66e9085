//! The HTTP API: one handler per endpoint, each translating an API Gateway request
//! into a call on the order service and its outcome back into a response.

pub mod problem;
pub mod request;
pub mod views;
pub mod webhooks;

use std::sync::Arc;

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response, service_fn};
use serde::Serialize;
use serde_json::json;

use crate::adapters::webhook_table::DynamoWebhookStore;
use crate::auth::Authenticator;
use crate::config::{Config, ConfigError};
use crate::domain::{FieldErrors, OrderStatus, Principal};
use crate::service::{IdempotentCreate, MoveRequest, Moved, OrderError, OrderService};
use crate::webhooks::WebhookService;
use crate::webhooks::target::TargetPolicy;
use problem::{ApiError, Problem};
use request::{Fields, MAX_REASON_LEN, RequestError};
use views::OrderView;

/// The API's endpoints, one Lambda function each. The names are the binaries'
/// names in `functions/` and `template.yaml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    CreateOrder,
    GetOrder,
    ListOrders,
    UpdateOrderStatus,
    CancelOrder,
    GetOrderHistory,
    CreateWebhook,
    ListWebhooks,
    GetWebhook,
    DeleteWebhook,
    ListWebhookDeliveries,
}

impl Endpoint {
    pub const ALL: [Endpoint; 11] = [
        Endpoint::CreateOrder,
        Endpoint::GetOrder,
        Endpoint::ListOrders,
        Endpoint::UpdateOrderStatus,
        Endpoint::CancelOrder,
        Endpoint::GetOrderHistory,
        Endpoint::CreateWebhook,
        Endpoint::ListWebhooks,
        Endpoint::GetWebhook,
        Endpoint::DeleteWebhook,
        Endpoint::ListWebhookDeliveries,
    ];

    pub fn binary_name(self) -> &'static str {
        match self {
            Endpoint::CreateOrder => "create-order",
            Endpoint::GetOrder => "get-order",
            Endpoint::ListOrders => "list-orders",
            Endpoint::UpdateOrderStatus => "update-order-status",
            Endpoint::CancelOrder => "cancel-order",
            Endpoint::GetOrderHistory => "get-order-history",
            Endpoint::CreateWebhook => "create-webhook",
            Endpoint::ListWebhooks => "list-webhooks",
            Endpoint::GetWebhook => "get-webhook",
            Endpoint::DeleteWebhook => "delete-webhook",
            Endpoint::ListWebhookDeliveries => "list-webhook-deliveries",
        }
    }

    /// The `/api/webhooks` endpoints, which need the webhook service.
    pub fn is_webhook(self) -> bool {
        matches!(
            self,
            Endpoint::CreateWebhook
                | Endpoint::ListWebhooks
                | Endpoint::GetWebhook
                | Endpoint::DeleteWebhook
                | Endpoint::ListWebhookDeliveries
        )
    }

    pub fn from_binary_name(name: &str) -> Option<Self> {
        Endpoint::ALL.into_iter().find(|e| e.binary_name() == name)
    }
}

/// Everything a handler needs, built once per Lambda instance.
pub struct App {
    auth: Authenticator,
    orders: OrderService,
    /// Only for the webhook endpoints.
    webhooks: Option<WebhookService>,
}

impl App {
    pub fn new(auth: Authenticator, orders: OrderService) -> Self {
        App {
            auth,
            orders,
            webhooks: None,
        }
    }

    pub fn with_webhooks(mut self, webhooks: WebhookService) -> Self {
        self.webhooks = Some(webhooks);
        self
    }

    /// Wires the adapters the configuration names. Only create-order reads carts.
    pub async fn from_env(endpoint: Option<Endpoint>) -> Result<App, ConfigError> {
        let auth = Authenticator::from_env()?;
        let needs_carts = endpoint.is_none_or(|e| e == Endpoint::CreateOrder);
        let config = Config::from_env()?;
        let dynamodb = aws_sdk_dynamodb::Client::new(&crate::adapters::aws::sdk_config().await);
        let app = App::new(auth, config.order_service(&dynamodb, needs_carts)?);
        if endpoint.is_none_or(Endpoint::is_webhook) {
            let store = DynamoWebhookStore::new(dynamodb, &config.table);
            let webhooks = WebhookService::new(Arc::new(store), TargetPolicy::from_env());
            return Ok(app.with_webhooks(webhooks));
        }
        Ok(app)
    }

    /// Answers one request; every failure becomes a problem document here.
    pub async fn handle(&self, endpoint: Endpoint, request: Request) -> Response<Body> {
        let result = match endpoint {
            Endpoint::CreateOrder => self.create_order(&request).await,
            Endpoint::GetOrder => self.get_order(&request).await,
            Endpoint::ListOrders => self.list_orders(&request).await,
            Endpoint::UpdateOrderStatus => self.update_order_status(&request).await,
            Endpoint::CancelOrder => self.cancel_order(&request).await,
            Endpoint::GetOrderHistory => self.get_order_history(&request).await,
            Endpoint::CreateWebhook => self.create_webhook(&request).await,
            Endpoint::ListWebhooks => self.list_webhooks(&request).await,
            Endpoint::GetWebhook => self.get_webhook(&request).await,
            Endpoint::DeleteWebhook => self.delete_webhook(&request).await,
            Endpoint::ListWebhookDeliveries => self.list_webhook_deliveries(&request).await,
        };
        result.unwrap_or_else(|err| Problem::from(err).into_response())
    }

    async fn caller(&self, request: &Request) -> Result<Principal, ApiError> {
        Ok(self
            .auth
            .authenticate(request::header(request, "authorization"))
            .await?)
    }

    async fn create_order(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = self.caller(request).await?;
        let key = request::idempotency_key(request)?;
        let body = request::json_object(request, true)?.unwrap_or_default();
        let checkout = request::checkout(&body)?;
        let idempotency = key.map(|key| IdempotentCreate {
            key,
            fingerprint: request::fingerprint(&body),
        });
        let placed = self.orders.place(&caller, checkout, idempotency).await?;
        let location = format!("/api/orders/{}", placed.order_id);
        let mut response = json_response(
            StatusCode::CREATED,
            &Acknowledgement {
                order_id: placed.order_id.as_str(),
                status: OrderStatus::Pending.as_str(),
                message: "Order received and pending payment.".into(),
            },
        );
        let headers = response.headers_mut();
        if let Ok(location) = HeaderValue::from_str(&location) {
            headers.insert(header::LOCATION, location);
        }
        if placed.replayed {
            headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        Ok(response)
    }

    async fn get_order(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = self.caller(request).await?;
        let order = self
            .orders
            .get(&caller, &request::path_parameter(request, "order_id"))
            .await?;
        Ok(with_etag(
            json_response(StatusCode::OK, &OrderView::from(&order)),
            order.version,
        ))
    }

    async fn list_orders(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = self.caller(request).await?;
        let list = request::list_request(request)?;
        let listed = self.orders.list(&caller, list).await?;
        let orders: Vec<OrderView> = listed.orders.iter().map(OrderView::from).collect();
        Ok(json_response(
            StatusCode::OK,
            &OrderPageView {
                orders,
                next_cursor: listed.next_cursor,
            },
        ))
    }

    async fn update_order_status(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = self.caller(request).await?;
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
            json_response(StatusCode::OK, &OrderView::from(&moved.order)),
            moved.order.version,
        ))
    }

    async fn cancel_order(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = self.caller(request).await?;
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
                },
            ),
            order.version,
        ))
    }

    async fn get_order_history(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = self.caller(request).await?;
        let order = self
            .orders
            .get(&caller, &request::path_parameter(request, "order_id"))
            .await?;
        Ok(json_response(
            StatusCode::OK,
            &json!({ "order_id": order.id.as_str(), "history": views::history(&order) }),
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

/// The short answer to a create or a cancel, in the seed's words.
#[derive(Serialize)]
struct Acknowledgement<'a> {
    order_id: &'a str,
    status: &'static str,
    message: String,
}

fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    let text = serde_json::to_string(body).unwrap_or_default();
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn with_etag(mut response: Response<Body>, version: u64) -> Response<Body> {
    if let Ok(tag) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(header::ETAG, tag);
    }
    response
}

/// A Lambda function's whole life: build the app once, then answer requests.
pub async fn serve(endpoint: Endpoint) -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let app = Arc::new(App::from_env(Some(endpoint)).await?);
    lambda_http::run(service_fn(move |request: Request| {
        let app = Arc::clone(&app);
        async move { Ok::<_, std::convert::Infallible>(app.handle(endpoint, request).await) }
    }))
    .await
}

impl From<OrderError> for Response<Body> {
    fn from(err: OrderError) -> Self {
        Problem::from(ApiError::from(err)).into_response()
    }
}
