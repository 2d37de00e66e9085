//! `PUT /api/orders/{order_id}/status`: move an order along its lifecycle.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::api::serve(orders::api::Endpoint::UpdateOrderStatus).await
}
