//! `GET /api/customers/{user_id}/export`: the customer (or an admin) reads everything
//! kept about them, a page of orders at a time with a `next` link.

use orders::inbound::http;
use orders::wiring::Wiring;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::inbound::logging::init();
    let api = Wiring::from_env().await.export_api()?;
    http::serve(
        api,
        |api, request| async move { api.export(&request).await },
    )
    .await
}
