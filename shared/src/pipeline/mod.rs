//! The event pipeline's Lambda handlers: the stream publisher and the SQS consumers.
//! Each takes the event exactly as Lambda delivers it and reports partial failures,
//! so the local stack can drive the same code with the same semantics.

pub mod fulfillment;
pub mod publisher;
pub mod webhooks;
