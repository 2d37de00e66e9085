//! `POST /api/orders/{order_id}/shipments/{shipment_id}/void`: refunds a label the
//! carrier does not have yet and unships its items (admin).

use orders::inbound::http;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::inbound::logging::init();
    let api = Wiring::from_env().await.shipping_api()?;
    http::serve(api, |api, request| async move {
        api.void_shipment(&request).await
    })
    .await
}
