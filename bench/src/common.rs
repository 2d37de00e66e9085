//! What both drivers (`bench` and `load`) need: the machine a report was taken on, and
//! carts and stock for the functions under test.

use orders::adapters::dynamo::inventory::DynamoInventory;
use orders::ports::Inventory;
use orders_dev::provision::{self, SeedLine};

use crate::Error;

/// The CPU count and model, for a report's heading.
pub fn machine() -> (String, String) {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|l| l.split_once(':')))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    (cpus, model)
}

/// The 1, 5 and 15 minute load averages: how busy the machine was besides the run.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub fn now_utc() -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_default()
}

/// Puts `carts` (cart id, user), each holding `lines`, into `carts_table` as the
/// Shopping Cart service would (a few at a time), and stocks `stock` of each of their
/// products in `orders_table`'s inventory.
pub async fn seed(
    dynamodb: &aws_sdk_dynamodb::Client,
    carts_table: &str,
    orders_table: &str,
    carts: &[(String, String)],
    lines: &'static [SeedLine<'static>],
    stock: u64,
) -> Result<(), Error> {
    for chunk in carts.chunks(32) {
        let mut puts = tokio::task::JoinSet::new();
        for (cart_id, user) in chunk {
            let (dynamodb, table, cart_id, user) = (
                dynamodb.clone(),
                carts_table.to_string(),
                cart_id.clone(),
                user.clone(),
            );
            puts.spawn(async move {
                provision::put_cart(&dynamodb, &table, &cart_id, &user, "USD", lines).await
            });
        }
        while let Some(done) = puts.join_next().await {
            done??;
        }
    }
    let inventory = DynamoInventory::new(dynamodb.clone(), orders_table);
    for (product_id, _, _, _) in lines {
        inventory.set_stock(product_id, stock).await?;
    }
    Ok(())
}
