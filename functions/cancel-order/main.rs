//! `DELETE /api/orders/{order_id}`: cancel an order; it is kept, as cancelled.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::api::serve(orders::api::Endpoint::CancelOrder).await
}
