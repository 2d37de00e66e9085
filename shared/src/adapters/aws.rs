//! Shared AWS plumbing: one SDK configuration and one reading of SDK errors.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use crate::ports::StoreError;

/// Loads region, credentials and `AWS_ENDPOINT_URL` from the environment, with
/// timeouts short enough that an unreachable DynamoDB becomes a prompt 503 instead
/// of an API Gateway timeout.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(2))
                .operation_timeout(Duration::from_secs(5))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .load()
        .await
}

/// One strongly consistent read of one item of `table`.
pub async fn read_item(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    key: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
) -> Result<
    Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
    StoreError,
> {
    let output = client
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .consistent_read(true)
        .send()
        .await
        .map_err(store_error)?;
    Ok(output.item)
}

/// What a failed DynamoDB call means to the order service. Service errors the
/// callers expect (conditional checks, cancelled transactions) are handled before
/// this; everything left is infrastructure.
pub fn store_error<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            StoreError::Unavailable(describe(&err))
        }
        SdkError::ServiceError(service) => match service.err().code() {
            Some(
                "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded",
            ) => StoreError::Throttled,
            Some("TransactionConflictException") => StoreError::Contention,
            Some("InternalServerError" | "ServiceUnavailable") => {
                StoreError::Unavailable(describe(&err))
            }
            _ => StoreError::Other(describe(&err)),
        },
        _ => StoreError::Other(describe(&err)),
    }
}

/// The whole error chain on one line, for logs and for `Other`.
pub fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
