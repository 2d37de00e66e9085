//! Creates the local stack's tables on the emulator as `template.yaml` declares
//! them, and seeds the demo data.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TableStatus, TimeToLiveSpecification,
};

use crate::template::{KeyElement, TableSpec};

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("DynamoDB: {0}")]
    Dynamo(String),
    #[error("table {0} did not become active in time")]
    NotActive(String),
    #[error("SES: {0}")]
    Ses(String),
}

fn dynamo<E: std::error::Error + 'static>(err: E) -> ProvisionError {
    ProvisionError::Dynamo(orders::adapters::aws::describe(&err))
}

fn keys(elements: &[KeyElement]) -> Result<Vec<KeySchemaElement>, ProvisionError> {
    elements
        .iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(&k.attribute_name)
                .key_type(KeyType::from(k.key_type.as_str()))
                .build()
                .map_err(dynamo)
        })
        .collect()
}

/// Creates `name` from `spec` unless it exists already; waits until it is active.
pub async fn ensure_table(
    client: &Client,
    name: &str,
    spec: &TableSpec,
) -> Result<bool, ProvisionError> {
    if client
        .describe_table()
        .table_name(name)
        .send()
        .await
        .is_ok()
    {
        return Ok(false);
    }
    let mut request = client
        .create_table()
        .table_name(name)
        .set_key_schema(Some(keys(&spec.key_schema)?))
        .billing_mode(BillingMode::from(
            spec.billing_mode.as_deref().unwrap_or("PAY_PER_REQUEST"),
        ));
    for attribute in &spec.attribute_definitions {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(&attribute.attribute_name)
                .attribute_type(ScalarAttributeType::from(attribute.attribute_type.as_str()))
                .build()
                .map_err(dynamo)?,
        );
    }
    for index in &spec.global_secondary_indexes {
        let projection = Projection::builder()
            .projection_type(ProjectionType::from(
                index.projection.projection_type.as_str(),
            ))
            .set_non_key_attributes(
                (!index.projection.non_key_attributes.is_empty())
                    .then(|| index.projection.non_key_attributes.clone()),
            )
            .build();
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(&index.index_name)
                .set_key_schema(Some(keys(&index.key_schema)?))
                .projection(projection)
                .build()
                .map_err(dynamo)?,
        );
    }
    if let Some(stream) = &spec.stream_specification {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(stream.stream_view_type.as_str()))
                .build()
                .map_err(dynamo)?,
        );
    }
    request.send().await.map_err(dynamo)?;
    wait_until_active(client, name).await?;
    if let Some(ttl) = &spec.time_to_live_specification {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(&ttl.attribute_name)
                    .enabled(ttl.enabled)
                    .build()
                    .map_err(dynamo)?,
            )
            .send()
            .await
            .map_err(dynamo)?;
    }
    Ok(true)
}

async fn wait_until_active(client: &Client, name: &str) -> Result<(), ProvisionError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(dynamo)?
            .table()
            .and_then(|t| t.table_status().cloned());
        if status == Some(TableStatus::Active) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(ProvisionError::NotActive(name.to_string()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The carts table belongs to the Shopping Cart service; locally we stand it up
/// with its documented shape: key `cart_id`, items as in the Cart API.
pub fn carts_table_spec() -> TableSpec {
    TableSpec {
        attribute_definitions: vec![crate::template::AttributeDefinition {
            attribute_name: "cart_id".into(),
            attribute_type: "S".into(),
        }],
        key_schema: vec![KeyElement {
            attribute_name: "cart_id".into(),
            key_type: "HASH".into(),
        }],
        global_secondary_indexes: vec![],
        billing_mode: Some("PAY_PER_REQUEST".into()),
        stream_specification: None,
        time_to_live_specification: None,
    }
}

/// A cart line for seeding: product id, name, quantity, unit price as decimal text.
pub type SeedLine<'a> = (&'a str, &'a str, u32, &'a str);

/// Writes a cart into the carts table, as the Shopping Cart service would.
pub async fn put_cart(
    client: &Client,
    table: &str,
    cart_id: &str,
    user_id: &str,
    currency: &str,
    lines: &[SeedLine<'_>],
) -> Result<(), ProvisionError> {
    let s = |v: &str| AttributeValue::S(v.to_string());
    let items = lines
        .iter()
        .map(|(product_id, name, quantity, price)| {
            AttributeValue::M(
                [
                    ("product_id".to_string(), s(product_id)),
                    ("name".to_string(), s(name)),
                    (
                        "quantity".to_string(),
                        AttributeValue::N(quantity.to_string()),
                    ),
                    ("price".to_string(), AttributeValue::N(price.to_string())),
                ]
                .into(),
            )
        })
        .collect();
    client
        .put_item()
        .table_name(table)
        .item("cart_id", s(cart_id))
        .item("user_id", s(user_id))
        .item("currency", s(currency))
        .item("items", AttributeValue::L(items))
        .send()
        .await
        .map_err(dynamo)?;
    Ok(())
}

/// Stores a cart given as the Shopping Cart API's JSON (shipping, discounts, taxes
/// and all) in the carts table: strings as strings, numbers as DynamoDB numbers with
/// their digits as written, so a priced cart reads back exactly as sent.
pub async fn put_cart_json(
    client: &Client,
    table: &str,
    cart: &serde_json::Value,
) -> Result<(), ProvisionError> {
    fn value(v: &serde_json::Value) -> AttributeValue {
        use serde_json::Value;
        match v {
            Value::Null => AttributeValue::Null(true),
            Value::Bool(b) => AttributeValue::Bool(*b),
            Value::Number(n) => AttributeValue::N(n.to_string()),
            Value::String(s) => AttributeValue::S(s.clone()),
            Value::Array(items) => AttributeValue::L(items.iter().map(value).collect()),
            Value::Object(members) => {
                AttributeValue::M(members.iter().map(|(k, v)| (k.clone(), value(v))).collect())
            }
        }
    }
    let AttributeValue::M(item) = value(cart) else {
        return Err(ProvisionError::Dynamo("a cart is a JSON object".into()));
    };
    client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
        .map_err(dynamo)?;
    Ok(())
}

/// The README's priced cart, `eu123` of `user789`: EUR, VAT added, DHL shipping and
/// a 4.00 code; 20.00 − 4.00 + 4.90 + 3.97 = 24.87.
pub fn demo_priced_cart() -> serde_json::Value {
    serde_json::json!({
        "cart_id": "eu123", "user_id": "user789", "currency": "EUR", "taxes_included": false,
        "items": [{"product_id": "p001", "name": "USB Cable", "quantity": 2, "price": "10.00",
                   "tax_lines": [{"name": "VAT", "rate": "0.19", "amount": "3.04"}]}],
        "shipping": {"method": "dhl_paket", "name": "DHL Paket", "amount": "4.90",
                     "tax_lines": [{"name": "VAT", "rate": "0.19", "amount": "0.93"}]},
        "discounts": [{"code": "WELCOME10", "amount": "4.00"}]
    })
}

/// The demo cart of the README walk-through: `abc123` of `user789`, totalling 75.00.
pub const DEMO_CART: (&str, &str, &[SeedLine<'static>]) = (
    "abc123",
    "user789",
    &[
        ("p001", "USB Cable", 2, "10.00"),
        ("p002", "Keyboard", 1, "55.00"),
    ],
);

/// Creates the SES identity of `from` (`Name <address>` or an address), as
/// template.yaml's `SenderIdentity` declares it for `MAIL_FROM`, unless it exists;
/// the emulator, like SES, sends only from identities it has.
pub async fn ensure_sender(sdk: &aws_config::SdkConfig, from: &str) -> Result<(), ProvisionError> {
    let (_, address) = orders::adapters::http::sendgrid::split_mailbox(from);
    let ses = aws_sdk_sesv2::Client::new(sdk);
    if ses
        .get_email_identity()
        .email_identity(&address)
        .send()
        .await
        .is_ok()
    {
        return Ok(());
    }
    match ses
        .create_email_identity()
        .email_identity(&address)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_already_exists_exception()) =>
        {
            Ok(())
        }
        Err(err) => Err(ProvisionError::Ses(orders::adapters::aws::describe(&err))),
    }
}
