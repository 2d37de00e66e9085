//! Every integration test, in one binary: one link of the AWS SDKs instead of one per
//! area, and one harness (`orders_tests`, in `src/lib.rs`). Each module is one area;
//! all of them run against the emulator that `make test` starts.

mod auto_labels;
mod console;
mod costs;
mod create;
mod fulfillment;
mod invoices;
mod layout;
mod lifecycle;
mod lists;
mod money;
mod notifications;
mod openapi;
mod operations;
mod outage;
mod payments;
mod pipeline;
mod privacy;
mod publisher;
mod returns;
mod samples;
mod secrets;
mod security;
mod shards;
mod shipping;
mod stack;
mod stock;
mod suppressions;
mod webhooks;
