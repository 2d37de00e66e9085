//! `DELETE /api/suppressions/{email}`: an admin lets mail go to an address again.

use orders::inbound::http;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::inbound::logging::init();
    let api = Wiring::from_env().await.suppression_api()?;
    http::serve(api, |api, request| async move {
        api.delete_suppression(&request).await
    })
    .await
}
