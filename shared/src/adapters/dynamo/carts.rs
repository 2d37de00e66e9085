//! `CartSource` on a DynamoDB table of carts (`CARTS_TABLE`), keyed by `cart_id`.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::adapters::aws::{describe, store_error};
use crate::domain::billing::{CartCharges, CartDiscount, CartShipping, CartTaxLine};
use crate::domain::{Cart, CartLine};
use crate::ports::{CartSource, CartSourceError, StoreError};

pub struct CartTable {
    client: Client,
    table: String,
}

impl CartTable {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        CartTable {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl CartSource for CartTable {
    async fn cart(&self, cart_id: &str) -> Result<Option<Cart>, CartSourceError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("cart_id", AttributeValue::S(cart_id.to_string()))
            .send()
            .await
            .map_err(|e| match store_error(e) {
                StoreError::Unavailable(why) => CartSourceError::Unavailable(why),
                StoreError::Throttled => CartSourceError::Unavailable("throttled".into()),
                other => CartSourceError::Unavailable(describe(&other)),
            })?;
        output.item().map(cart_from_item).transpose()
    }
}

type Item = std::collections::HashMap<String, AttributeValue>;

fn cart_from_item(item: &Item) -> Result<Cart, CartSourceError> {
    let bad = |what: &str| CartSourceError::Malformed(format!("carts table item: {what}"));
    let text = |item: &Item, name: &str| -> Result<String, CartSourceError> {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .ok_or_else(|| bad(&format!("{name} is not a string")))
    };
    // A DynamoDB number is decimal text already: the price stays exact.
    let number = |item: &Item, name: &str| -> Result<String, CartSourceError> {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .cloned()
            .ok_or_else(|| bad(&format!("{name} is not a number")))
    };
    // An amount or rate: a DynamoDB number or decimal text, exact either way.
    let decimal = |item: &Item, name: &str| -> Result<String, CartSourceError> {
        match item.get(name) {
            Some(AttributeValue::N(text) | AttributeValue::S(text)) => Ok(text.clone()),
            _ => Err(bad(&format!("{name} is not a number"))),
        }
    };
    let list = |item: &Item, name: &str| -> Result<Vec<AttributeValue>, CartSourceError> {
        match item.get(name) {
            None => Ok(Vec::new()),
            Some(v) => Ok(v
                .as_l()
                .map_err(|_| bad(&format!("{name} is not a list")))?
                .clone()),
        }
    };
    let map = |value: &AttributeValue, name: &str| -> Result<Item, CartSourceError> {
        value
            .as_m()
            .cloned()
            .map_err(|_| bad(&format!("{name} holds something other than maps")))
    };
    let taxes = |item: &Item| -> Result<Vec<CartTaxLine>, CartSourceError> {
        list(item, "tax_lines")?
            .iter()
            .map(|v| {
                let tax = map(v, "tax_lines")?;
                Ok(CartTaxLine {
                    name: text(&tax, "name")?,
                    rate: decimal(&tax, "rate")?,
                    amount: decimal(&tax, "amount")?,
                })
            })
            .collect()
    };
    let shipping = match item.get("shipping") {
        None | Some(AttributeValue::Null(_)) => None,
        Some(v) => {
            let s = map(v, "shipping")?;
            Some(CartShipping {
                method: text(&s, "method")?,
                name: text(&s, "name")?,
                amount: decimal(&s, "amount")?,
                tax_lines: taxes(&s)?,
            })
        }
    };
    let discounts = list(item, "discounts")?
        .iter()
        .map(|v| {
            let d = map(v, "discounts")?;
            Ok(CartDiscount {
                code: text(&d, "code")?,
                amount: decimal(&d, "amount")?,
            })
        })
        .collect::<Result<_, CartSourceError>>()?;
    let taxes_included = match item.get("taxes_included") {
        None => false,
        Some(v) => *v
            .as_bool()
            .map_err(|_| bad("taxes_included is not a boolean"))?,
    };
    let lines = match item.get("items") {
        None => Vec::new(),
        Some(v) => v.as_l().map_err(|_| bad("items is not a list"))?.clone(),
    };
    let items = lines
        .iter()
        .map(|line| {
            let line = line.as_m().map_err(|_| bad("an item is not a map"))?;
            Ok(CartLine {
                product_id: text(line, "product_id")?,
                name: text(line, "name")?,
                quantity: number(line, "quantity")?
                    .parse()
                    .map_err(|_| bad("quantity is not a whole number"))?,
                price: decimal(line, "price")?,
                currency: match line.get("currency") {
                    None => None,
                    Some(_) => Some(text(line, "currency")?),
                },
                tax_lines: taxes(line)?,
            })
        })
        .collect::<Result<_, CartSourceError>>()?;
    Ok(Cart {
        cart_id: text(item, "cart_id")?,
        user_id: text(item, "user_id")?,
        currency: text(item, "currency")?,
        items,
        charges: CartCharges {
            taxes_included,
            shipping,
            discounts,
        },
    })
}
