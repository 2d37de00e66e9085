//! `GET /api/orders/{order_id}/history`: an order's audit trail.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::api::serve(orders::api::Endpoint::GetOrderHistory).await
}
