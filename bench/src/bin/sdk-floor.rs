//! The second floor for `make bench`: the bare Lambda plus what every function of ours
//! builds before its first poll — the shared SDK configuration and a DynamoDB client —
//! and nothing else. The gap between it and a function is our own start-up code; the
//! gap between it and the bare Lambda is the AWS SDK's.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let dynamodb = aws_sdk_dynamodb::Client::new(&orders::adapters::aws::sdk_config().await);
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| {
        // Held by the handler, as the functions hold theirs.
        let _client = &dynamodb;
        async { Ok::<_, Error>(json!({})) }
    }))
    .await
}
