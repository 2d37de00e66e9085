//! `POST /api/orders`: create an order from a cart.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::api::serve(orders::api::Endpoint::CreateOrder).await
}
