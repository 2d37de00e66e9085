//! The third floor for `make bench`: the SDK floor that, on every invocation, makes one
//! DynamoDB request of the kind a function makes first (`FLOOR_OPERATION`: GetItem,
//! Query, PutItem, UpdateItem, DeleteItem, TransactWriteItems; on `TABLE_NAME`, a key of
//! its own, `FLOOR_PK`) and answers `{}`. A function's first answer next to this one's
//! is our code's share of what the first caller waits for.
//!
//! A fair floor reads what the function reads: for a `GetItem` the bench names the
//! function's own item (`FLOOR_PK`, `FLOOR_SK`: the order a get-order reads), read as
//! strongly consistent as the function reads it, and answers it rendered as JSON, so
//! that the item's size and its rendering weigh on both sides alike.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let dynamodb = aws_sdk_dynamodb::Client::new(&orders::adapters::aws::sdk_config().await);
    let table = std::env::var("TABLE_NAME")?;
    let operation = std::env::var("FLOOR_OPERATION").unwrap_or_else(|_| "GetItem".into());
    let pk = std::env::var("FLOOR_PK").unwrap_or_else(|_| "BENCH#floor".into());
    let sk = std::env::var("FLOOR_SK").unwrap_or_else(|_| "FLOOR".into());
    let (dynamodb, table, operation, pk, sk) = (&dynamodb, &table, &operation, &pk, &sk);
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
                let read = dynamodb
                    .get_item()
                    .table_name(table)
                    .key("PK", key(pk))
                    .key("SK", key(sk))
                    .consistent_read(true)
                    .send()
                    .await?;
                return Ok(json!({ "item": read.item.as_ref().map(render) }));
            }
        }
        Ok::<_, Error>(json!({}))
    }))
    .await
}

/// An item as JSON, every attribute by its value (what a handler's rendering of the
/// same item costs, give or take its field names).
fn render(item: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(item.iter().map(|(k, v)| (k.clone(), value(v))).collect())
}

fn value(v: &AttributeValue) -> Value {
    match v {
        AttributeValue::S(s) | AttributeValue::N(s) => json!(s),
        AttributeValue::Bool(b) => json!(b),
        AttributeValue::L(list) => Value::Array(list.iter().map(value).collect()),
        AttributeValue::M(map) => render(map),
        AttributeValue::Ss(set) | AttributeValue::Ns(set) => json!(set),
        _ => Value::Null,
    }
}
