//! `DELETE /api/webhooks/{webhook_id}`: unsubscribe; deliveries stop (admin).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::api::serve(orders::api::Endpoint::DeleteWebhook).await
}
