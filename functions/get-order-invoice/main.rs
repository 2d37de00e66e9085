//! `GET /api/orders/{order_id}/invoice`: the invoice of a confirmed order, as JSON or
//! (`Accept: application/pdf`) a PDF, to its owner or an admin.

use orders::inbound::http;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::inbound::logging::init();
    let api = Wiring::from_env().await.invoice_api()?;
    http::serve(api, |api, request| async move {
        api.get_invoice(&request).await
    })
    .await
}
