//! Shared AWS plumbing: one SDK configuration and one reading of SDK errors.

use std::time::Duration;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

use crate::ports::StoreError;

/// The longest one AWS request may take, its SDK retries included: the API's bound
/// on a store call before it answers 503.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

/// Loads region, credentials and `AWS_ENDPOINT_URL` from the environment, with
/// timeouts short enough that an unreachable DynamoDB becomes a prompt 503 instead
/// of an API Gateway timeout. The HTTPS client trusts Amazon's roots only
/// (see [`super::tls`]: the platform's store costs milliseconds of every cold start).
pub async fn sdk_config() -> SdkConfig {
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .tls_context(super::http::tls::aws_endpoints())
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(2))
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(3));
    // Lambda puts the region and the role's credentials in the environment, where the
    // default chains look first anyway. Taking them from there directly skips building
    // the chains' other sources (an STS client, an instance-metadata client), which
    // were a third of a function's start-up work (docs/bench.md).
    let set = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(region) = set("AWS_REGION") {
        loader = loader.region(Region::new(region));
    }
    if set("AWS_ACCESS_KEY_ID").is_some() && set("AWS_SECRET_ACCESS_KEY").is_some() {
        loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
    }
    loader.load().await
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
    read_item_with(client, table, key, true).await
}

/// One read of one item of `table`, strongly consistent or (half the read units, and
/// possibly missing the last second's writes) eventually consistent.
pub async fn read_item_with(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    key: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    consistent: bool,
) -> Result<
    Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
    StoreError,
> {
    let output = client
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .consistent_read(consistent)
        .send()
        .await
        .map_err(store_error)?;
    Ok(output.item)
}

/// How many times [`read_items`] asks again for the keys DynamoDB left unprocessed
/// (it does so when a partition is throttled) before it gives up with `Throttled`.
const BATCH_READ_ATTEMPTS: u32 = 5;

/// The items of `table` under `keys`, in any order, the missing ones left out: one
/// `BatchGetItem` per 100 keys, and again for what DynamoDB left unprocessed, after a
/// short backoff, at most [`BATCH_READ_ATTEMPTS`] times. `consistent` asks for
/// strongly consistent reads (one read unit a 4 KB item instead of half a unit).
pub async fn read_items(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    keys: Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
    consistent: bool,
) -> Result<
    Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
    StoreError,
> {
    let mut items = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(100) {
        let mut pending = chunk.to_vec();
        let mut attempt = 0;
        while !pending.is_empty() {
            if attempt == BATCH_READ_ATTEMPTS {
                return Err(StoreError::Throttled);
            }
            if attempt > 0 {
                // 10, 20, 40, 80 ms: DynamoDB's advice for unprocessed keys.
                tokio::time::sleep(Duration::from_millis(10 << (attempt - 1))).await;
            }
            attempt += 1;
            let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(consistent)
                .build()
                .map_err(|e| StoreError::Other(e.to_string()))?;
            let output = client
                .batch_get_item()
                .request_items(table, request)
                .send()
                .await
                .map_err(store_error)?;
            pending = output
                .unprocessed_keys()
                .and_then(|u| u.get(table))
                .map(|k| k.keys().to_vec())
                .unwrap_or_default();
            if let Some(found) = output.responses.and_then(|mut r| r.remove(table)) {
                items.extend(found);
            }
        }
    }
    Ok(items)
}

/// A transaction DynamoDB cancelled: one reason per item, in the order they were sent.
/// An item whose condition failed carries the item as it was, when the put or update
/// asked for `ReturnValuesOnConditionCheckFailure = ALL_OLD`.
#[derive(Debug)]
pub struct Cancelled(pub Vec<aws_sdk_dynamodb::types::CancellationReason>);

impl Cancelled {
    /// The reason for item `index`, if it was its condition that failed.
    pub fn refused(&self, index: usize) -> Option<&aws_sdk_dynamodb::types::CancellationReason> {
        self.0
            .get(index)
            .filter(|r| r.code() == Some("ConditionalCheckFailed"))
    }

    /// A cancellation that none of the caller's conditions explains.
    pub fn into_error(self) -> StoreError {
        let any = |codes: &[&str]| {
            self.0
                .iter()
                .any(|r| r.code().is_some_and(|c| codes.contains(&c)))
        };
        if any(&["TransactionConflict"]) {
            StoreError::Contention
        } else if any(&["ThrottlingError", "ProvisionedThroughputExceeded"]) {
            StoreError::Throttled
        } else {
            StoreError::Other(format!(
                "transaction cancelled: {:?}",
                self.0.iter().map(|r| r.code()).collect::<Vec<_>>()
            ))
        }
    }
}

/// Runs one `TransactWriteItems`: `Ok(Ok(()))` committed, `Ok(Err(_))` cancelled
/// (the caller reads why), `Err(_)` anything else.
pub async fn transact(
    client: &aws_sdk_dynamodb::Client,
    items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
) -> Result<Result<(), Cancelled>, StoreError> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match client
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await
    {
        Ok(_) => Ok(Ok(())),
        Err(err) => match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                Ok(Err(Cancelled(cancelled.cancellation_reasons().to_vec())))
            }
            _ => Err(store_error(err)),
        },
    }
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

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::error::{ErrorMetadata, SdkError};
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_sdk_dynamodb::types::error::ProvisionedThroughputExceededException;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;

    use super::*;

    /// A throttled table is a 503 with Retry-After for the caller, never a 500.
    #[test]
    fn throttling_and_unreachable_tables_are_not_internal_errors() {
        let throttled = GetItemError::ProvisionedThroughputExceededException(
            ProvisionedThroughputExceededException::builder()
                .message("slow down")
                .meta(
                    ErrorMetadata::builder()
                        .code("ProvisionedThroughputExceededException")
                        .build(),
                )
                .build(),
        );
        let raw = Response::new(StatusCode::try_from(400).unwrap(), SdkBody::empty());
        assert_eq!(
            store_error(SdkError::service_error(throttled, raw)),
            StoreError::Throttled
        );

        let unreachable: SdkError<GetItemError, Response> =
            SdkError::timeout_error("no answer in 2 s");
        assert!(matches!(
            store_error(unreachable),
            StoreError::Unavailable(_)
        ));
    }
}
