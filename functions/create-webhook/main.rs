//! `POST /api/webhooks`: subscribe a URL to order events (admin); answers the secret once.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::api::serve(orders::api::Endpoint::CreateWebhook).await
}
