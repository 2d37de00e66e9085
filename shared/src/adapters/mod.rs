//! Adapters: the ports implemented on AWS and HTTP.

pub mod aws;
pub mod credit_note_pdf;
pub mod dynamo;
pub mod emf;
pub mod erasure_queue;
pub mod event_bus;
pub mod http;
pub mod invoice_pdf;
pub mod kms;
pub mod secrets;
pub mod ses;
pub mod templates;
pub mod webhook_queue;
