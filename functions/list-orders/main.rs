//! `GET /api/orders`: a page of orders, newest first.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::api::serve(orders::api::Endpoint::ListOrders).await
}
