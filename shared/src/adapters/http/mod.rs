//! The HTTP side: the Shopping Cart API, the shipping provider, the payment provider,
//! webhook receivers,
//! and the TLS configuration every client shares.

pub mod body;
pub mod cart_api;
pub mod sendgrid;
pub mod shipping;
pub mod stripe;
pub mod tls;
pub mod twilio;
pub mod webhook_sender;

pub use cart_api::CartApi;
pub use stripe::StripeGateway;
pub use webhook_sender::HttpWebhookSender;
