//! What Lambda hands a function, turned into calls on the services: API Gateway
//! requests (`http`), SQS batches (`sqs`), DynamoDB stream batches (`stream`) and
//! scheduled invocations (`schedule`); and the log subscriber every function installs
//! first (`logging`).
//! No business rules live here.

pub mod http;
pub mod logging;
pub mod schedule;
pub mod sqs;
pub mod stream;
