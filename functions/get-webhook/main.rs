//! `GET /api/webhooks/{webhook_id}`: one subscription.

use orders::inbound::http;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::inbound::logging::init();
    let api = Wiring::from_env().await.webhook_api()?;
    http::serve(api, |api, request| async move {
        api.get_webhook(&request).await
    })
    .await
}
