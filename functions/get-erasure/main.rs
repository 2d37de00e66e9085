//! `GET /api/customers/{user_id}/erasure`: an admin reads the progress of a
//! customer's erasure.

use orders::inbound::http;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::inbound::logging::init();
    let api = Wiring::from_env().await.privacy_api()?;
    http::serve(api, |api, request| async move {
        api.get_erasure(&request).await
    })
    .await
}
