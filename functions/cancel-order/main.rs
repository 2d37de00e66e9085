//! `DELETE /api/orders/{order_id}`: cancel an order (it is kept, status cancelled).

use orders::inbound::http;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::inbound::logging::init();
    let api = Wiring::from_env().await.order_api()?;
    http::serve(api, |api, request| async move {
        api.cancel_order(&request).await
    })
    .await
}
