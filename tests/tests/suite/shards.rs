//! The sharded list indexes (`by_status`, `by_created`; `LIST_INDEX_SHARDS`): an order's
//! shard comes from its id, a status change moves it to its new status's shard, and a
//! list merges every shard's newest-first page into one, each order exactly once, in
//! order, for every filter and page size — against orders stored on the emulator.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use orders::adapters::dynamo::DynamoOrderStore;
use orders::adapters::dynamo::order_item::{ListShards, order_to_item};
use orders::domain::{Cart, CartLine, Order, OrderStatus};
use orders::ports::{OrderQuery, OrderStore};
use orders_tests::{ADMIN, Call, Stack, token};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const USERS: [&str; 3] = ["ada", "bo", "cy"];
const STATUSES: [OrderStatus; 4] = [
    OrderStatus::Pending,
    OrderStatus::Confirmed,
    OrderStatus::Shipped,
    OrderStatus::Cancelled,
];

/// `count` orders written straight into the table (as the store writes them, with
/// `shards`), one a millisecond apart except every fifth, which shares its
/// predecessor's millisecond (the order id breaks the tie); users and statuses in turn.
async fn seed(stack: &Stack, prefix: &str, count: usize, shards: ListShards) -> Vec<Order> {
    // Whole milliseconds, as stored, so that bounds made of these times are exact.
    let now = OffsetDateTime::now_utc() - time::Duration::hours(2);
    let start = now.replace_millisecond(now.millisecond()).unwrap();
    let mut orders = Vec::new();
    let mut millis = 0;
    for n in 0..count {
        if n % 5 != 4 {
            millis += 1;
        }
        let user = USERS[n % USERS.len()];
        let cart_id = format!("{prefix}-{n}");
        let cart = Cart {
            cart_id: cart_id.clone(),
            user_id: user.into(),
            currency: "USD".into(),
            items: vec![CartLine {
                product_id: "p1".into(),
                name: "Cable".into(),
                quantity: 1,
                price: "1.00".into(),
                currency: None,
                tax_lines: vec![],
            }],
            charges: Default::default(),
        };
        let mut body = orders_tests::checkout(&cart_id);
        body["user_id"] = user.into();
        let mut order =
            orders::inbound::http::request::checkout(&body.as_object().unwrap().clone())
                .unwrap()
                .place(
                    &cart,
                    user,
                    user,
                    start + time::Duration::milliseconds(millis),
                )
                .unwrap();
        order.status = STATUSES[(n / 2) % STATUSES.len()];
        orders.push(order);
    }
    let writes: Vec<WriteRequest> = orders
        .iter()
        .map(|order| {
            let put = PutRequest::builder()
                .set_item(Some(order_to_item(order, shards)))
                .build()
                .unwrap();
            WriteRequest::builder().put_request(put).build()
        })
        .collect();
    for batch in writes.chunks(25) {
        let out = stack
            .dynamodb
            .batch_write_item()
            .request_items(&stack.table, batch.to_vec())
            .send()
            .await
            .unwrap();
        assert!(out.unprocessed_items().is_none_or(|u| u.is_empty()));
    }
    orders
}

/// Newest first, as the list promises: by creation time, then order id.
fn newest_first(orders: &[&Order]) -> Vec<String> {
    let mut sorted: Vec<&&Order> = orders.iter().collect();
    sorted.sort_by(|a, b| (b.created_at, b.id.as_str()).cmp(&(a.created_at, a.id.as_str())));
    sorted.iter().map(|o| o.id.to_string()).collect()
}

/// Every page of `query`, following `next_cursor`; checks that every page but the
/// last is full and the last is not empty (unless the whole list is).
async fn every_page(stack: &Stack, query: &str, limit: usize, bearer: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..500 {
        let uri = match &cursor {
            Some(c) => format!("/api/orders?limit={limit}&{query}&cursor={c}"),
            None => format!("/api/orders?limit={limit}&{query}"),
        };
        let reply = stack.send(Call::new("GET", &uri).bearer(bearer)).await;
        assert_eq!(reply.status, 200, "{uri}: {reply:?}");
        let page = reply.body["orders"].as_array().unwrap();
        seen.extend(
            page.iter()
                .map(|o| o["order_id"].as_str().unwrap().to_string()),
        );
        match &reply.body["next_cursor"] {
            Value::String(next) => {
                assert_eq!(page.len(), limit, "{uri}: a short page with a cursor");
                cursor = Some(next.clone());
            }
            Value::Null => {
                assert!(
                    !page.is_empty() || seen.is_empty(),
                    "{uri}: an empty last page"
                );
                return seen;
            }
            other => panic!("next_cursor is {other}"),
        }
    }
    panic!("{query}: the cursor never ends");
}

fn at(order: &Order, offset_ms: i64) -> String {
    (order.created_at + time::Duration::milliseconds(offset_ms))
        .format(&Rfc3339)
        .unwrap()
}

/// 120 orders over every shard: an admin's unfiltered list, each status, a creation
/// window, and each user's list, read in small pages of several sizes, visit exactly
/// the matching orders, each once, newest first.
#[tokio::test]
async fn paging_across_shards_visits_every_match_once_in_order() {
    let stack = Stack::new().await;
    let shards = ListShards::DEFAULT;
    let orders = seed(&stack, "shard", 120, shards).await;

    // The orders are spread over every shard of both indexes.
    let items = stack.stored_orders().await;
    let text = |item: &std::collections::HashMap<String, AttributeValue>, name: &str| {
        item[name].as_s().unwrap().clone()
    };
    let created: BTreeSet<String> = items.iter().map(|i| text(i, "entity")).collect();
    let expected: BTreeSet<String> = (0..shards.count()).map(|k| format!("order#{k}")).collect();
    assert_eq!(created, expected);
    for item in &items {
        let status = text(item, "status");
        let shard = text(item, "entity")
            .trim_start_matches("order#")
            .to_string();
        assert_eq!(text(item, "status_shard"), format!("{status}#{shard}"));
    }

    let admin = token("admin", ADMIN);
    let all: Vec<&Order> = orders.iter().collect();
    for limit in [6, 100] {
        assert_eq!(
            every_page(&stack, "", limit, &admin).await,
            newest_first(&all),
            "unfiltered, limit {limit}"
        );
    }
    for status in STATUSES {
        let matching: Vec<&Order> = orders.iter().filter(|o| o.status == status).collect();
        for limit in [if status == OrderStatus::Shipped { 1 } else { 7 }] {
            let query = format!("status={}", status.as_str());
            assert_eq!(
                every_page(&stack, &query, limit, &admin).await,
                newest_first(&matching),
                "{query}, limit {limit}"
            );
        }
    }

    // A creation window, both bounds exclusive, alone and with a status; the lower
    // bound falls on a millisecond that two orders share.
    let (low, high) = (&orders[24], &orders[100]);
    assert_eq!(orders[23].created_at, orders[24].created_at);
    let window = format!(
        "created_after={}&created_before={}",
        at(low, 0),
        at(high, 0)
    );
    let inside = |o: &&Order| o.created_at > low.created_at && o.created_at < high.created_at;
    let matching: Vec<&Order> = orders.iter().filter(inside).collect();
    assert_eq!(
        every_page(&stack, &window, 6, &admin).await,
        newest_first(&matching)
    );
    let matching: Vec<&Order> = matching
        .into_iter()
        .filter(|o| o.status == OrderStatus::Confirmed)
        .collect();
    assert_eq!(
        every_page(&stack, &format!("{window}&status=confirmed"), 4, &admin).await,
        newest_first(&matching)
    );
    let newer: Vec<&Order> = orders
        .iter()
        .filter(|o| o.created_at > low.created_at)
        .collect();
    assert_eq!(
        every_page(&stack, &format!("created_after={}", at(low, 0)), 9, &admin).await,
        newest_first(&newer)
    );

    // Each customer's own list (by_user, not sharded), with and without a status.
    for user in USERS {
        let theirs: Vec<&Order> = orders.iter().filter(|o| o.user_id == user).collect();
        assert_eq!(
            every_page(&stack, "", 5, &token(user, "")).await,
            newest_first(&theirs)
        );
        let shipped: Vec<&Order> = theirs
            .into_iter()
            .filter(|o| o.status == OrderStatus::Shipped)
            .collect();
        assert_eq!(
            every_page(&stack, "status=shipped", 2, &token(user, "")).await,
            newest_first(&shipped)
        );
    }
}

/// A status change moves the order to its new status's shard: the `by_status` list of
/// the old status no longer has it, the new one does, and the unfiltered list still
/// has it once.
#[tokio::test]
async fn a_status_change_moves_the_order_between_status_shards() {
    let stack = Stack::new().await;
    let admin = token("admin", ADMIN);
    let mut ids = Vec::new();
    for n in 0..6 {
        ids.push(stack.order_for("dee", &format!("move-{n}")).await);
    }
    for id in &ids[..3] {
        stack.advance(id, &["confirmed", "shipped"]).await;
    }
    let shipped: BTreeSet<String> = every_page(&stack, "status=shipped", 2, &admin)
        .await
        .into_iter()
        .collect();
    assert_eq!(shipped, ids[..3].iter().cloned().collect());
    let pending: BTreeSet<String> = every_page(&stack, "status=pending", 2, &admin)
        .await
        .into_iter()
        .collect();
    assert_eq!(pending, ids[3..].iter().cloned().collect());
    assert!(
        every_page(&stack, "status=confirmed", 2, &admin)
            .await
            .is_empty()
    );
    assert_eq!(every_page(&stack, "", 4, &admin).await.len(), ids.len());
    let item = stack.stored_order(&ids[0]).await.unwrap();
    let shard = item["entity"].as_s().unwrap().trim_start_matches("order#");
    assert_eq!(
        item["status_shard"].as_s().unwrap(),
        &format!("shipped#{shard}")
    );
}

/// Shards can be added later: orders written with 3 shards are all listed, once and in
/// order, by a store that reads 5 (a setting raised on a running table); and the
/// setting is refused outside 1..=64 at init.
#[tokio::test]
async fn orders_written_with_fewer_shards_stay_listed_when_shards_are_added() {
    let stack = Stack::with_settings(|s| s.with("LIST_INDEX_SHARDS", "3")).await;
    let three = ListShards::new(3).unwrap();
    let orders = seed(&stack, "grow", 40, three).await;
    let created: BTreeSet<String> = stack
        .stored_orders()
        .await
        .iter()
        .map(|i| i["entity"].as_s().unwrap().clone())
        .collect();
    assert_eq!(
        created,
        ["order#0", "order#1", "order#2"].map(String::from).into()
    );

    let five = DynamoOrderStore::new(stack.dynamodb.clone(), &stack.table)
        .with_list_shards(ListShards::new(5).unwrap());
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = five
            .list(&OrderQuery {
                user_id: None,
                status: None,
                created_after: None,
                created_before: None,
                limit: 7,
                after: after.take(),
            })
            .await
            .unwrap();
        seen.extend(page.orders.iter().map(|o| o.id.to_string()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, newest_first(&orders.iter().collect::<Vec<_>>()));

    for bad in ["0", "65", "many"] {
        let wiring = orders::wiring::Wiring::new(
            orders::wiring::Settings::default()
                .with("TABLE_NAME", "t")
                .with("LIST_INDEX_SHARDS", bad),
            orders::adapters::aws::sdk_config().await,
        );
        let err = wiring.list_shards().unwrap_err().to_string();
        assert!(err.contains("LIST_INDEX_SHARDS"), "{err}");
    }
}
