//! What Lambda hands a function, turned into calls on the services: API Gateway
//! requests (`http`), SQS batches (`sqs`) and DynamoDB stream batches (`stream`).
//! No business rules live here.

pub mod http;
pub mod sqs;
pub mod stream;
