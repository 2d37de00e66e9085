//! `GET /api/webhooks/{webhook_id}`: one webhook subscription, without its secret (admin).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::api::serve(orders::api::Endpoint::GetWebhook).await
}
