//! `ErasureQueue` on SQS (`ERASURE_QUEUE_URL`): one message per page still to erase,
//! `{"user_id", "job_id"}`, consumed by `erase-customer-data`.

use async_trait::async_trait;

use super::aws::store_error;
use crate::ports::{ErasureMessage, ErasureQueue, StoreError};

pub struct SqsErasureQueue {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsErasureQueue {
    pub fn new(sqs: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        SqsErasureQueue {
            sqs,
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait]
impl ErasureQueue for SqsErasureQueue {
    async fn continue_later(&self, user_id: &str, job_id: &str) -> Result<(), StoreError> {
        let body = serde_json::to_string(&ErasureMessage {
            user_id: user_id.to_string(),
            job_id: job_id.to_string(),
        })
        .map_err(|e| StoreError::Other(e.to_string()))?;
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
