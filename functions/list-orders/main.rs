//! `GET /api/orders`: a page of orders, newest first.

use orders::inbound::http;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::inbound::logging::init();
    let api = Wiring::from_env().await.order_list_api()?;
    http::serve(api, |api, request| async move {
        api.list_orders(&request).await
    })
    .await
}
