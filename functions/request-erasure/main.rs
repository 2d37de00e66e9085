//! `POST /api/customers/{user_id}/erasure`: an admin asks for a customer's personal
//! data to be erased from their orders; 202 with the job, the first page done here,
//! the rest by `erase-customer-data`.

use orders::inbound::http;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::inbound::logging::init();
    let api = Wiring::from_env().await.privacy_api()?;
    http::serve(api, |api, request| async move {
        api.request_erasure(&request).await
    })
    .await
}
