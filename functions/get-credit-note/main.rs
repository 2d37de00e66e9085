//! `GET /api/orders/{order_id}/credit-notes/{number}`: one credit note, as JSON or
//! (`Accept: application/pdf`) a PDF, to the order's owner or an admin.

use orders::inbound::http;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::inbound::logging::init();
    let api = Wiring::from_env().await.credit_note_api()?;
    http::serve(api, |api, request| async move {
        api.get_credit_note(&request).await
    })
    .await
}
