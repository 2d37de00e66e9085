//! `ANY` on a path of the API whose method has no route: 405 with `Allow`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::method_not_allowed::serve().await
}
