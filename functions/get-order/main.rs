//! `GET /api/orders/{order_id}`: one order, to its owner or an admin.

use orders::inbound::http;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::inbound::logging::init();
    let api = Wiring::from_env().await.order_api()?;
    http::serve(
        api,
        |api, request| async move { api.get_order(&request).await },
    )
    .await
}
