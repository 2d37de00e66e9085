//! `make bench` and `make load` as a library, with thin binaries (src/bin/) that read
//! their command lines:
//!
//! - [`bench`]: cold start, peak memory, size and DynamoDB requests per call of every
//!   function's binary (and of two floors, src/bin/bare-lambda.rs and src/bin/sdk-floor.rs);
//! - [`load`]: the local stack (`orders-dev`) under load and under faults, everything
//!   checked against what was stored and published;
//! - [`common`] and [`emulator`]: what both need (the machine, cart seeding, the
//!   emulator's `/_bench/` counters).
//!
//! Provisioning and fixtures come from `orders_dev` (tables from template.yaml, carts,
//! the pipeline's queues and rules) and from the test harness `orders_tests` (tokens,
//! unique names, the checkout body, a queue subscribed to the bus).
//!
//! Without the `driver` feature (the floors' builds) the library is empty.

#[cfg(feature = "driver")]
pub mod bench;
#[cfg(feature = "driver")]
pub mod common;
#[cfg(feature = "driver")]
pub mod emulator;
#[cfg(feature = "driver")]
pub mod load;

pub type Error = Box<dyn std::error::Error + Send + Sync>;
