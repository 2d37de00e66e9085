//! `GET /api/orders/{order_id}`: one order, to its owner or an admin.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::api::serve(orders::api::Endpoint::GetOrder).await
}
