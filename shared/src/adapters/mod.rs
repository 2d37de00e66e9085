//! Adapters: the ports implemented on AWS and HTTP.

pub mod aws;
pub mod dynamo;
pub mod emf;
pub mod event_bus;
pub mod http;
pub mod webhook_queue;
