//! Orders: a serverless order management API.
//!
//! Read top-down:
//! - [`domain`]: the order, its lifecycle and money; no AWS, no HTTP.
//! - [`ports`]: what the service needs from outside (an order store, a cart source).
//! - [`service`]: the use cases, over the ports.
//! - [`adapters`]: the ports on DynamoDB and HTTP.
//! - [`auth`]: who is calling, from a bearer JWT.
//! - [`api`]: API Gateway requests in, problem details or JSON out.
//! - [`events`]: the event published for every recorded change.
//! - [`pipeline`]: the stream publisher and the queue consumers.
//! - [`webhooks`]: outbound webhook subscriptions and their signatures.
//! - [`config`]: the environment, and wiring it all together.

pub mod adapters;
pub mod api;
pub mod auth;
pub mod config;
pub mod domain;
pub mod events;
pub mod method_not_allowed;
pub mod pipeline;
pub mod ports;
pub mod service;
pub mod webhooks;
