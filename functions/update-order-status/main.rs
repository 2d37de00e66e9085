//! `PUT /api/orders/{order_id}/status`: move an order along its lifecycle.

use orders::inbound::http;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::inbound::logging::init();
    let api = Wiring::from_env().await.order_api()?;
    http::serve(api, |api, request| async move {
        api.update_order_status(&request).await
    })
    .await
}
