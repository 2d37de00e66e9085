//! `GET /api/orders/{order_id}/history`: the order's audit trail.

use orders::inbound::http;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::inbound::logging::init();
    let api = Wiring::from_env().await.order_api()?;
    http::serve(api, |api, request| async move {
        api.get_order_history(&request).await
    })
    .await
}
