//! `RetryDelay` on SQS: a failed message's visibility timeout is set to its next
//! delay, so retries spread out instead of coming back every visibility timeout.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Mutex;

use super::aws::describe;
use crate::ports::RetryDelay;

/// SQS refuses a visibility timeout past 12 hours from the receive.
pub const MAX_DELAY: Duration = Duration::from_secs(11 * 60 * 60);

pub struct SqsRetryDelay {
    sqs: aws_sdk_sqs::Client,
    /// `WEBHOOK_QUEUE_URL`; without it, the URL is looked up from the message's
    /// queue ARN (needs `sqs:GetQueueUrl`) and remembered.
    queue_url: Option<String>,
    looked_up: Mutex<HashMap<String, String>>,
}

impl SqsRetryDelay {
    pub fn new(sqs: aws_sdk_sqs::Client, queue_url: Option<String>) -> Self {
        SqsRetryDelay {
            sqs,
            queue_url,
            looked_up: Mutex::new(HashMap::new()),
        }
    }

    async fn url(&self, queue_arn: Option<&str>) -> Result<String, String> {
        if let Some(url) = &self.queue_url {
            return Ok(url.clone());
        }
        let arn = queue_arn.ok_or("the message has no eventSourceARN")?;
        let mut cache = self.looked_up.lock().await;
        if let Some(url) = cache.get(arn) {
            return Ok(url.clone());
        }
        // arn:aws:sqs:<region>:<account>:<name>
        let (account, name) = match arn.split(':').collect::<Vec<_>>().as_slice() {
            ["arn", _, "sqs", _, account, name] => (account.to_string(), name.to_string()),
            _ => return Err(format!("{arn} is not an SQS queue ARN")),
        };
        let url = self
            .sqs
            .get_queue_url()
            .queue_name(name)
            .queue_owner_aws_account_id(account)
            .send()
            .await
            .map_err(|e| describe(&e))?
            .queue_url
            .ok_or("GetQueueUrl returned no URL")?;
        cache.insert(arn.to_string(), url.clone());
        Ok(url)
    }
}

#[async_trait]
impl RetryDelay for SqsRetryDelay {
    async fn postpone(
        &self,
        queue_arn: Option<&str>,
        receipt_handle: &str,
        delay: Duration,
    ) -> Result<(), String> {
        let url = self.url(queue_arn).await?;
        let seconds = delay.min(MAX_DELAY).as_secs();
        self.sqs
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(i32::try_from(seconds).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| describe(&e))?;
        Ok(())
    }
}
