//! `POST /api/orders/{order_id}/refunds`: an admin refunds part (or the rest) of an
//! order's payment.

use orders::inbound::http;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::inbound::logging::init();
    let api = Wiring::from_env().await.refund_api()?;
    http::serve(api, |api, request| async move {
        api.create_refund(&request).await
    })
    .await
}
