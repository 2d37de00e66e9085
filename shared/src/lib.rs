//! Orders: a serverless order management API.
//!
//! Read top-down; arrows point inward only (`docs/architecture.md`):
//! - [`domain`]: the order, its lifecycle, money, validation, stock, webhooks; no AWS,
//!   no HTTP, no Lambda.
//! - [`events`]: the event published for every recorded change, and the order view it
//!   carries (the API answers with the same view).
//! - [`ports`]: every trait the services need from outside, with its outcomes.
//! - [`services`]: the use cases, over the ports.
//! - [`adapters`]: the ports on DynamoDB, EventBridge, SQS and HTTP.
//! - [`auth`]: who is calling, from a bearer JWT.
//! - [`inbound`]: Lambda's requests and batches in, answers and partial failures out.
//! - [`wiring`]: the configuration, read once, and a builder per function.

pub mod adapters;
pub mod auth;
pub mod domain;
pub mod events;
pub mod inbound;
pub mod ports;
pub mod services;
pub mod wiring;
