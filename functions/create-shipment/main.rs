//! `POST /api/orders/{order_id}/shipments`: ships lines of a confirmed order as one
//! parcel.

use orders::inbound::http;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::inbound::logging::init();
    let api = Wiring::from_env().await.shipping_api()?;
    http::serve(api, |api, request| async move {
        api.create_shipment(&request).await
    })
    .await
}
