//! The HTTP API: API Gateway requests in, JSON or problem details out.
//!
//! - [`orders`]: the order endpoints; [`webhooks`]: the webhook subscriptions;
//! - [`request`]: reading requests; [`problem`]: every failure as RFC 9457, mapped in
//!   one place.
//!
//! Each Lambda function serves one endpoint: its `main` builds that endpoint's API
//! (`wiring`) and hands [`serve`] the one handler, so its binary holds only what that
//! handler uses. The local stack and the tests serve every endpoint through [`Api`].

pub mod console;
pub mod credit_notes;
pub mod invoices;
pub mod method_not_allowed;
pub mod orders;
pub mod payments;
pub mod privacy;
pub mod problem;
pub mod request;
pub mod returns;
pub mod shipments;
pub mod shippo_webhook;
pub mod suppressions;
pub mod webhooks;

use std::future::Future;
use std::sync::Arc;

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response, service_fn};
use serde::Serialize;

use crate::auth::Authenticator;
use crate::domain::Principal;
pub use credit_notes::CreditNoteApi;
pub use invoices::InvoiceApi;
pub use orders::{CheckoutApi, OrderApi};
pub use payments::PaymentApi;
pub use privacy::PrivacyApi;
use problem::{ApiError, Problem};
pub use returns::ReturnApi;
pub use shipments::ShippingApi;
pub use shippo_webhook::ShippoWebhookApi;
pub use suppressions::SuppressionApi;
pub use webhooks::WebhookApi;

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
    GetOrderInvoice,
    CreateWebhook,
    ListWebhooks,
    GetWebhook,
    DeleteWebhook,
    ListWebhookDeliveries,
    StripeWebhook,
    CreateRefund,
    CreateShipment,
    ListShipments,
    ShippoWebhook,
    VoidShipment,
    CreateReturn,
    ListOrderReturns,
    ApproveReturn,
    DeclineReturn,
    CancelReturn,
    ReceiveReturn,
    RefundReturn,
    ListReturns,
    ListCreditNotes,
    GetCreditNote,
    RequestErasure,
    GetErasure,
    ExportCustomerData,
    SendGridEvents,
    DeleteSuppression,
}

impl Endpoint {
    pub const ALL: [Endpoint; 33] = [
        Endpoint::CreateOrder,
        Endpoint::GetOrder,
        Endpoint::ListOrders,
        Endpoint::UpdateOrderStatus,
        Endpoint::CancelOrder,
        Endpoint::GetOrderHistory,
        Endpoint::GetOrderInvoice,
        Endpoint::CreateWebhook,
        Endpoint::ListWebhooks,
        Endpoint::GetWebhook,
        Endpoint::DeleteWebhook,
        Endpoint::ListWebhookDeliveries,
        Endpoint::StripeWebhook,
        Endpoint::CreateRefund,
        Endpoint::CreateShipment,
        Endpoint::ListShipments,
        Endpoint::ShippoWebhook,
        Endpoint::VoidShipment,
        Endpoint::CreateReturn,
        Endpoint::ListOrderReturns,
        Endpoint::ApproveReturn,
        Endpoint::DeclineReturn,
        Endpoint::CancelReturn,
        Endpoint::ReceiveReturn,
        Endpoint::RefundReturn,
        Endpoint::ListReturns,
        Endpoint::ListCreditNotes,
        Endpoint::GetCreditNote,
        Endpoint::RequestErasure,
        Endpoint::GetErasure,
        Endpoint::ExportCustomerData,
        Endpoint::SendGridEvents,
        Endpoint::DeleteSuppression,
    ];

    pub fn binary_name(self) -> &'static str {
        match self {
            Endpoint::CreateOrder => "create-order",
            Endpoint::GetOrder => "get-order",
            Endpoint::ListOrders => "list-orders",
            Endpoint::UpdateOrderStatus => "update-order-status",
            Endpoint::CancelOrder => "cancel-order",
            Endpoint::GetOrderHistory => "get-order-history",
            Endpoint::GetOrderInvoice => "get-order-invoice",
            Endpoint::CreateWebhook => "create-webhook",
            Endpoint::ListWebhooks => "list-webhooks",
            Endpoint::GetWebhook => "get-webhook",
            Endpoint::DeleteWebhook => "delete-webhook",
            Endpoint::ListWebhookDeliveries => "list-webhook-deliveries",
            Endpoint::StripeWebhook => "stripe-webhook",
            Endpoint::CreateRefund => "create-refund",
            Endpoint::CreateShipment => "create-shipment",
            Endpoint::ListShipments => "list-shipments",
            Endpoint::ShippoWebhook => "shippo-webhook",
            Endpoint::VoidShipment => "void-shipment",
            Endpoint::CreateReturn => "create-return",
            Endpoint::ListOrderReturns => "list-order-returns",
            Endpoint::ApproveReturn => "approve-return",
            Endpoint::DeclineReturn => "decline-return",
            Endpoint::CancelReturn => "cancel-return",
            Endpoint::ReceiveReturn => "receive-return",
            Endpoint::RefundReturn => "refund-return",
            Endpoint::ListReturns => "list-returns",
            Endpoint::ListCreditNotes => "list-credit-notes",
            Endpoint::GetCreditNote => "get-credit-note",
            Endpoint::RequestErasure => "request-erasure",
            Endpoint::GetErasure => "get-erasure",
            Endpoint::ExportCustomerData => "export-customer-data",
            Endpoint::SendGridEvents => "sendgrid-events",
            Endpoint::DeleteSuppression => "delete-suppression",
        }
    }

    pub fn from_binary_name(name: &str) -> Option<Self> {
        Endpoint::ALL.into_iter().find(|e| e.binary_name() == name)
    }
}

/// Every endpoint, for the local stack's server and the tests.
pub struct Api {
    pub orders: OrderApi,
    pub checkout: CheckoutApi,
    pub webhooks: WebhookApi,
    /// `None` when payments are off (no `STRIPE_SECRET_KEY`): their routes answer 404.
    pub payments: Option<PaymentApi>,
    pub invoices: InvoiceApi,
    pub shipments: ShippingApi,
    /// `None` when Shippo is off (no `SHIPPO_API_TOKEN`): its webhook answers 404.
    pub shippo: Option<ShippoWebhookApi>,
    pub returns: ReturnApi,
    pub credit_notes: CreditNoteApi,
    /// A customer's data: erasure and export.
    pub privacy: PrivacyApi,
    /// Bounces and complaints: SendGrid's events, clearing a suppression.
    pub suppressions: SuppressionApi,
}

impl Api {
    /// Answers one request; every failure becomes a problem document here.
    pub async fn handle(&self, endpoint: Endpoint, request: Request) -> Response<Body> {
        let result = match endpoint {
            Endpoint::CreateOrder => self.checkout.create_order(&request).await,
            Endpoint::GetOrder => self.orders.get_order(&request).await,
            Endpoint::ListOrders => self.orders.list_orders(&request).await,
            Endpoint::UpdateOrderStatus => self.orders.update_order_status(&request).await,
            Endpoint::CancelOrder => self.orders.cancel_order(&request).await,
            Endpoint::GetOrderHistory => self.orders.get_order_history(&request).await,
            Endpoint::GetOrderInvoice => self.invoices.get_invoice(&request).await,
            Endpoint::CreateWebhook => self.webhooks.create_webhook(&request).await,
            Endpoint::ListWebhooks => self.webhooks.list_webhooks(&request).await,
            Endpoint::GetWebhook => self.webhooks.get_webhook(&request).await,
            Endpoint::DeleteWebhook => self.webhooks.delete_webhook(&request).await,
            Endpoint::ListWebhookDeliveries => {
                self.webhooks.list_webhook_deliveries(&request).await
            }
            Endpoint::StripeWebhook => match &self.payments {
                Some(payments) => payments.stripe_webhook(&request).await,
                None => Err(payments_off()),
            },
            Endpoint::CreateRefund => match &self.payments {
                Some(payments) => payments.create_refund(&request).await,
                None => Err(payments_off()),
            },
            Endpoint::CreateShipment => self.shipments.create_shipment(&request).await,
            Endpoint::ListShipments => self.shipments.list_shipments(&request).await,
            Endpoint::VoidShipment => self.shipments.void_shipment(&request).await,
            Endpoint::CreateReturn => self.returns.create_return(&request).await,
            Endpoint::ListOrderReturns => self.returns.list_order_returns(&request).await,
            Endpoint::ApproveReturn => self.returns.approve_return(&request).await,
            Endpoint::DeclineReturn => self.returns.decline_return(&request).await,
            Endpoint::CancelReturn => self.returns.cancel_return(&request).await,
            Endpoint::ReceiveReturn => self.returns.receive_return(&request).await,
            Endpoint::RefundReturn => self.returns.refund_return(&request).await,
            Endpoint::ListReturns => self.returns.list_returns(&request).await,
            Endpoint::ShippoWebhook => match &self.shippo {
                Some(shippo) => shippo.shippo_webhook(&request).await,
                None => Err(ApiError::Shipment(
                    crate::services::shipping::ShipmentError::ShippoOff,
                )),
            },
            Endpoint::ListCreditNotes => self.credit_notes.list_credit_notes(&request).await,
            Endpoint::GetCreditNote => self.credit_notes.get_credit_note(&request).await,
            Endpoint::RequestErasure => self.privacy.request_erasure(&request).await,
            Endpoint::GetErasure => self.privacy.get_erasure(&request).await,
            Endpoint::ExportCustomerData => self.privacy.export(&request).await,
            Endpoint::SendGridEvents => self.suppressions.sendgrid_events(&request).await,
            Endpoint::DeleteSuppression => self.suppressions.delete_suppression(&request).await,
        };
        result.unwrap_or_else(|err| Problem::from(err).into_response())
    }
}

/// A Lambda function's whole life: the API built once, then `handler` for every
/// request, its failures answered as problem documents.
pub async fn serve<A, H, F>(api: A, handler: H) -> Result<(), lambda_http::Error>
where
    A: Send + Sync + 'static,
    H: Fn(Arc<A>, Request) -> F + Send + Sync + 'static,
    F: Future<Output = Result<Response<Body>, ApiError>> + Send,
{
    let api = Arc::new(api);
    let handler = Arc::new(handler);
    lambda_http::run(service_fn(move |request: Request| {
        let (api, handler) = (Arc::clone(&api), Arc::clone(&handler));
        async move {
            let response = handler(api, request).await;
            Ok::<_, std::convert::Infallible>(
                response.unwrap_or_else(|err| Problem::from(err).into_response()),
            )
        }
    }))
    .await
}

fn payments_off() -> ApiError {
    ApiError::Payment(crate::services::payments::PaymentServiceError::Off)
}

/// The caller, from the request's bearer token.
async fn caller(auth: &Authenticator, request: &Request) -> Result<Principal, ApiError> {
    Ok(auth
        .authenticate(request::header(request, "authorization"))
        .await?)
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
