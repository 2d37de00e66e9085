//! `POST /api/orders`: create an order from a cart.

use orders::inbound::http;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::inbound::logging::init();
    let api = Wiring::from_env().await.checkout_api()?;
    http::serve(api, |api, request| async move {
        api.create_order(&request).await
    })
    .await
}
