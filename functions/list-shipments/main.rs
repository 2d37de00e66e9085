//! `GET /api/orders/{order_id}/shipments`: the order's parcels with their tracking.

use orders::inbound::http;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::inbound::logging::init();
    let api = Wiring::from_env().await.shipping_api()?;
    http::serve(api, |api, request| async move {
        api.list_shipments(&request).await
    })
    .await
}
