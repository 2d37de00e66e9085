//! `GET /api/orders/{order_id}/credit-notes`: the credit notes of an order's refunds,
//! oldest first, to its owner or an admin.

use orders::inbound::http;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::inbound::logging::init();
    let api = Wiring::from_env().await.credit_note_api()?;
    http::serve(api, |api, request| async move {
        api.list_credit_notes(&request).await
    })
    .await
}
