//! `GET /console` and `GET /console/{proxy+}`: the operator console's static files
//! (console/, embedded), its sign-in settings and a strict Content-Security-Policy. No
//! AWS client: it reads nothing but its settings.

use orders::wiring::{Settings, console_site};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    orders::inbound::logging::init();
    let site = console_site(&Settings::from_env())?;
    orders::inbound::http::console::serve(site).await
}
