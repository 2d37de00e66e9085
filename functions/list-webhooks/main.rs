//! `GET /api/webhooks`: every webhook subscription, newest first (admin).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::api::serve(orders::api::Endpoint::ListWebhooks).await
}
