//! The third floor for `make bench`: the SDK floor that, on every invocation, makes one
//! DynamoDB request of the kind a function makes first (`FLOOR_OPERATION`: GetItem,
//! Query, PutItem, UpdateItem, DeleteItem, TransactWriteItems; on `TABLE_NAME`, a key of
//! its own, `FLOOR_PK`) and answers `{}`. A function's first answer next to this one's
//! is our code's share of what the first caller waits for.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let dynamodb = aws_sdk_dynamodb::Client::new(&orders::adapters::aws::sdk_config().await);
    let table = std::env::var("TABLE_NAME")?;
    let operation = std::env::var("FLOOR_OPERATION").unwrap_or_else(|_| "GetItem".into());
    let pk = std::env::var("FLOOR_PK").unwrap_or_else(|_| "BENCH#floor".into());
    let (dynamodb, table, operation, pk) = (&dynamodb, &table, &operation, &pk);
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| async move {
        let key = |k: &str| AttributeValue::S(k.to_string());
        match operation.as_str() {
            "Query" => {
                dynamodb
                    .query()
                    .table_name(table)
                    .key_condition_expression("PK = :pk")
                    .expression_attribute_values(":pk", key(pk))
                    .limit(1)
                    .send()
                    .await?;
            }
            "PutItem" => {
                dynamodb
                    .put_item()
                    .table_name(table)
                    .item("PK", key(pk))
                    .item("SK", key("FLOOR"))
                    .send()
                    .await?;
            }
            "UpdateItem" => {
                dynamodb
                    .update_item()
                    .table_name(table)
                    .key("PK", key(pk))
                    .key("SK", key("FLOOR"))
                    .update_expression("ADD calls :one")
                    .expression_attribute_values(":one", AttributeValue::N("1".into()))
                    .send()
                    .await?;
            }
            "DeleteItem" => {
                dynamodb
                    .delete_item()
                    .table_name(table)
                    .key("PK", key(pk))
                    .key("SK", key("FLOOR"))
                    .send()
                    .await?;
            }
            "TransactWriteItems" => {
                let put = Put::builder()
                    .table_name(table)
                    .item("PK", key(pk))
                    .item("SK", key("FLOOR"))
                    .build()?;
                dynamodb
                    .transact_write_items()
                    .transact_items(TransactWriteItem::builder().put(put).build())
                    .send()
                    .await?;
            }
            _ => {
                dynamodb
                    .get_item()
                    .table_name(table)
                    .key("PK", key(pk))
                    .key("SK", key("FLOOR"))
                    .consistent_read(true)
                    .send()
                    .await?;
            }
        }
        Ok::<_, Error>(json!({}))
    }))
    .await
}
