//! The use cases, over the ports. Free of Lambda event types: `inbound/` hands them
//! requests and message bodies, and turns their outcomes into answers.

pub mod checkout;
pub mod credit_notes;
pub mod deliveries;
pub mod fulfillment;
pub mod invoices;
pub mod notifications;
pub mod orders;
pub mod payments;
pub mod privacy;
pub mod publisher;
pub mod returns;
pub mod shipping;
pub mod suppressions;
pub mod webhooks;
