//! `POST /api/payments/stripe/webhook`: Stripe's signed events confirm orders
//! (`payment_intent.succeeded`) or record failed attempts.

use orders::inbound::http;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::inbound::logging::init();
    let api = Wiring::from_env().await.stripe_webhook_api()?;
    http::serve(api, |api, request| async move {
        api.stripe_webhook(&request).await
    })
    .await
}
