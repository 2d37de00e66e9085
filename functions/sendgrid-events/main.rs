//! `POST /api/email/sendgrid/events`: SendGrid's signed event webhook; hard bounces and
//! spam reports suppress the address.

use orders::inbound::http;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::inbound::logging::init();
    let api = Wiring::from_env().await.suppression_api()?;
    http::serve(api, |api, request| async move {
        api.sendgrid_events(&request).await
    })
    .await
}
