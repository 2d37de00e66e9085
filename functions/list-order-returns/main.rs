//! `GET /api/orders/{order_id}/returns`: the order's returns and where each stands.

use orders::inbound::http;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::inbound::logging::init();
    let api = Wiring::from_env().await.return_api()?;
    http::serve(api, |api, request| async move {
        api.list_order_returns(&request).await
    })
    .await
}
