//! `ANY` on a path of the API whose method has no route: 405 with `Allow`.

use orders::inbound::http::{self, method_not_allowed};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::inbound::logging::init();
    // No configuration and no clients: the answer depends on the path alone.
    http::serve((), |_, request| async move {
        Ok(method_not_allowed::handle(&request))
    })
    .await
}
