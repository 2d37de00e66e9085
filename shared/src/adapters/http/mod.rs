//! The HTTP side: the Shopping Cart API, Shippo (labels and tracking), the payment provider,
//! webhook receivers,
//! and the TLS configuration every client shares.

pub mod body;
pub mod cart_api;
pub mod sendgrid;
pub mod shippo;
pub mod stripe;
pub mod tls;
pub mod twilio;
pub mod webhook_sender;

pub use cart_api::CartApi;
pub use stripe::StripeGateway;
pub use webhook_sender::HttpWebhookSender;

/// Whether a service's answer says "later, not never": rate-limited (429) or a server
/// error. The HTTP clients turn these into their port's `Unavailable`, retried; any other
/// 4xx is a refusal that resending will not change.
pub fn retry_later(status: reqwest::StatusCode) -> bool {
    status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}
