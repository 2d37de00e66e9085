//! `POST /api/shipping/shippo/webhook?token=…`: Shippo's tracking webhooks, read back
//! from Shippo before they move a parcel or an order.

use orders::inbound::http;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::inbound::logging::init();
    let api = Wiring::from_env().await.shippo_webhook_api()?;
    http::serve(api, |api, request| async move {
        api.shippo_webhook(&request).await
    })
    .await
}
