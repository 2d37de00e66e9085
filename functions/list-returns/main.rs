//! `GET /api/returns`: the queue of returns in one status, oldest first (support, fulfillment).

use orders::inbound::http;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::inbound::logging::init();
    let api = Wiring::from_env().await.return_api()?;
    http::serve(api, |api, request| async move {
        api.list_returns(&request).await
    })
    .await
}
