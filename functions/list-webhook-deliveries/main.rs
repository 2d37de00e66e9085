//! `GET /api/webhooks/{webhook_id}/deliveries`: a subscription's delivery attempts, newest first (admin).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::api::serve(orders::api::Endpoint::ListWebhookDeliveries).await
}
