//! `POST /api/orders/{order_id}/returns/{return_id}/refund`: support releases (or finishes) a received return's refund.

use orders::inbound::http;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::inbound::logging::init();
    let api = Wiring::from_env().await.return_api()?;
    http::serve(api, |api, request| async move {
        api.refund_return(&request).await
    })
    .await
}
