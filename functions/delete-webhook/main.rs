//! `DELETE /api/webhooks/{webhook_id}`: unsubscribe.

use orders::inbound::http;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::inbound::logging::init();
    let api = Wiring::from_env().await.webhook_api()?;
    http::serve(api, |api, request| async move {
        api.delete_webhook(&request).await
    })
    .await
}
