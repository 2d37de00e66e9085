//! Goods that ship come off the stock exactly once, whatever the order of events: the
//! fulfillment consumer handling `order.confirmed` after a person already shipped the
//! order (the queue lagged), against a fresh table on the emulator. Each test reads
//! back the stock, the reservation and what was recorded as oversold.

use std::sync::{Arc, Mutex};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use orders::adapters::dynamo::DynamoOrderStore;
use orders::adapters::dynamo::inventory::{DynamoInventory, ReservationState};
use orders::domain::stock::{ReserveOutcome, ShippedOutcome, Shortfall, StockLine};
use orders::domain::{OrderId, OrderStatus};
use orders::events::{Envelope, OrderEvent, SOURCE};
use orders::inbound::sqs;
use orders::ports::{Inventory, Metric, MetricSet, Metrics, OrderStore, Restock};
use orders::services::fulfillment::Fulfillment;
use orders_tests::{Call, FULFILL, Stack, checkout, token};
use serde_json::json;

/// Figures as the consumer reports them.
#[derive(Default)]
struct Recorded(Mutex<Vec<MetricSet>>);

impl Metrics for Recorded {
    fn record(&self, set: MetricSet) {
        self.0.lock().unwrap().push(set);
    }
}

impl Recorded {
    fn total(&self, metric: Metric) -> f64 {
        self.0
            .lock()
            .unwrap()
            .iter()
            .flat_map(|set| set.values.iter())
            .filter(|(m, _)| *m == metric)
            .map(|(_, v)| v)
            .sum()
    }
}

struct Consumer {
    fulfillment: Fulfillment,
    inventory: Arc<DynamoInventory>,
    store: Arc<DynamoOrderStore>,
    metrics: Arc<Recorded>,
}

fn consumer(stack: &Stack) -> Consumer {
    let store = Arc::new(DynamoOrderStore::new(stack.dynamodb.clone(), &stack.table));
    let inventory = Arc::new(DynamoInventory::new(stack.dynamodb.clone(), &stack.table));
    let metrics = Arc::new(Recorded::default());
    Consumer {
        fulfillment: Fulfillment::new(store.clone(), inventory.clone())
            .with_metrics(metrics.clone()),
        inventory,
        store,
        metrics,
    }
}

impl Consumer {
    /// The `order.confirmed` message of an order confirmed just now (version 2).
    async fn confirmed_message(&self, id: &str) -> SqsMessage {
        let after = self.order(id).await;
        assert_eq!(after.status, OrderStatus::Confirmed);
        let mut before = after.clone();
        before.status = OrderStatus::Pending;
        before.version -= 1;
        let detail = OrderEvent::for_change(Some(&before), &after).unwrap();
        let envelope = Envelope {
            id: format!("evt-{}", detail.event_id),
            detail_type: detail.detail_type(),
            source: SOURCE.to_string(),
            time: detail.occurred_at.clone(),
            detail,
        };
        let mut message = SqsMessage::default();
        message.message_id = Some(format!("msg-{}", envelope.detail.event_id));
        message.body = Some(serde_json::to_string(&envelope).unwrap());
        message.event_source = Some("aws:sqs".into());
        message
    }

    /// Hands one message over as Lambda would; answers the failed message ids.
    async fn handle(&self, message: SqsMessage) -> Vec<String> {
        let mut event = SqsEvent::default();
        event.records = vec![message];
        sqs::fulfill(&self.fulfillment, event)
            .await
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect()
    }

    async fn order(&self, id: &str) -> orders::domain::Order {
        self.store
            .get(&OrderId::parse(id).unwrap())
            .await
            .unwrap()
            .expect("order stored")
    }

    async fn stock(&self, product: &str) -> (Option<u64>, u64) {
        (
            self.inventory.available(product).await.unwrap(),
            self.inventory.oversold(product).await.unwrap(),
        )
    }

    async fn reservation(
        &self,
        id: &str,
    ) -> Option<orders::adapters::dynamo::inventory::StoredReservation> {
        self.inventory
            .reservation(&OrderId::parse(id).unwrap())
            .await
            .unwrap()
    }
}

fn line(product: &str, quantity: u64) -> StockLine {
    StockLine {
        product_id: product.into(),
        quantity,
    }
}

/// A confirmed order of `lines` (product, quantity) for `user`.
async fn confirmed_order(stack: &Stack, user: &str, cart: &str, lines: &[(&str, u32)]) -> String {
    let lines: Vec<_> = lines
        .iter()
        .map(|(product, quantity)| (*product, "Thing", *quantity, "10.00"))
        .collect();
    stack.put_cart(cart, user, &lines).await;
    let reply = stack
        .send(
            Call::new("POST", "/api/orders")
                .bearer(&token(user, ""))
                .json(&checkout(cart)),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let id = reply.body["order_id"].as_str().unwrap().to_string();
    stack.advance(&id, &["confirmed"]).await;
    id
}

/// The warehouse ships it (the fulfill token), as a person does when the queue lags.
async fn ship(stack: &Stack, id: &str) {
    let reply = stack
        .send(
            Call::new("PUT", &format!("/api/orders/{id}/status"))
                .bearer(&token("warehouse", FULFILL))
                .json(&json!({ "status": "shipped", "tracking_number": "1Z999AA10123456784" })),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

#[tokio::test]
async fn an_order_shipped_before_its_confirmation_is_handled_takes_its_stock_once() {
    let stack = Stack::new().await;
    let c = consumer(&stack);
    c.inventory.set_stock("p001", 5).await.unwrap();
    let id = confirmed_order(&stack, "ann", "cart-1", &[("p001", 2)]).await;
    let confirmed = c.confirmed_message(&id).await;

    ship(&stack, &id).await;
    assert_eq!(c.stock("p001").await, (Some(5), 0), "nothing taken yet");
    let failed = c.handle(confirmed.clone()).await;

    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(c.stock("p001").await, (Some(3), 0));
    let reservation = c.reservation(&id).await.expect("a reservation");
    assert_eq!(reservation.state, ReservationState::Reserved);
    assert_eq!(reservation.lines, [line("p001", 2)]);
    assert!(reservation.oversold.is_empty());
    // The order is as the warehouse left it: fulfillment adds no entry to a shipped one.
    let order = c.order(&id).await;
    assert_eq!(
        (order.status, order.shipping_status.as_str(), order.version),
        (OrderStatus::Shipped, "shipped", 3)
    );

    // Redelivered, and again once delivered: the stock is taken once.
    assert!(c.handle(confirmed.clone()).await.is_empty());
    stack.advance(&id, &["delivered"]).await;
    assert!(c.handle(confirmed).await.is_empty());
    assert_eq!(c.stock("p001").await, (Some(3), 0));
    assert_eq!(c.metrics.total(Metric::StockOversold), 0.0);
}

#[tokio::test]
async fn goods_shipped_beyond_the_count_are_taken_to_zero_and_recorded_as_oversold() {
    let stack = Stack::new().await;
    let c = consumer(&stack);
    c.inventory.set_stock("p001", 1).await.unwrap();
    c.inventory.set_stock("p002", 9).await.unwrap();
    // p003 was never stocked at all.
    let id = confirmed_order(
        &stack,
        "ann",
        "cart-1",
        &[("p001", 3), ("p002", 2), ("p003", 1)],
    )
    .await;
    let confirmed = c.confirmed_message(&id).await;
    ship(&stack, &id).await;

    assert!(c.handle(confirmed.clone()).await.is_empty());

    assert_eq!(c.stock("p001").await, (Some(0), 2));
    assert_eq!(c.stock("p002").await, (Some(7), 0));
    assert_eq!(c.stock("p003").await, (Some(0), 1));
    let reservation = c.reservation(&id).await.expect("a reservation");
    assert_eq!(
        reservation.lines,
        [line("p001", 3), line("p002", 2), line("p003", 1)]
    );
    assert_eq!(reservation.oversold, [line("p001", 2), line("p003", 1)]);
    assert_eq!(c.metrics.total(Metric::StockOversold), 3.0);

    // A redelivery neither takes nor records anything twice.
    assert!(c.handle(confirmed).await.is_empty());
    assert_eq!(c.stock("p001").await, (Some(0), 2));
    assert_eq!(c.stock("p003").await, (Some(0), 1));
    assert_eq!(c.metrics.total(Metric::StockOversold), 3.0);
    assert_eq!(c.order(&id).await.version, 3);
}

#[tokio::test]
async fn a_confirmed_order_short_of_stock_is_still_backordered_not_oversold() {
    let stack = Stack::new().await;
    let c = consumer(&stack);
    c.inventory.set_stock("p001", 1).await.unwrap();
    let id = confirmed_order(&stack, "ann", "cart-1", &[("p001", 2)]).await;

    assert!(c.handle(c.confirmed_message(&id).await).await.is_empty());

    // Nothing has left the warehouse: the order waits, the stock is untouched.
    assert_eq!(c.order(&id).await.shipping_status.as_str(), "backordered");
    assert_eq!(c.stock("p001").await, (Some(1), 0));
    assert!(c.reservation(&id).await.is_none());
}

#[tokio::test]
async fn the_shipping_path_and_fulfillment_share_one_reservation() {
    let stack = Stack::new().await;
    let c = consumer(&stack);
    c.inventory.set_stock("p001", 5).await.unwrap();
    let id = confirmed_order(&stack, "ann", "cart-1", &[("p001", 2)]).await;
    let order_id = OrderId::parse(&id).unwrap();
    let confirmed = c.confirmed_message(&id).await;

    // A shipment created before fulfillment ran takes the goods on the spot…
    let taken = c
        .inventory
        .reserve_shipped(&order_id, &[line("p001", 2)])
        .await
        .unwrap();
    assert_eq!(taken, ShippedOutcome::Taken { oversold: vec![] });
    assert_eq!(
        c.inventory
            .reserve_shipped(&order_id, &[line("p001", 2)])
            .await
            .unwrap(),
        ShippedOutcome::AlreadyReserved
    );
    // …and the fulfillment message that comes later finds them reserved.
    assert!(c.handle(confirmed).await.is_empty());
    assert_eq!(c.stock("p001").await, (Some(3), 0));
    assert_eq!(c.order(&id).await.shipping_status.as_str(), "processing");
}

#[tokio::test]
async fn a_release_gives_back_only_what_was_in_stock() {
    let stack = Stack::new().await;
    let c = consumer(&stack);
    c.inventory.set_stock("p001", 1).await.unwrap();
    let order = OrderId::for_cart("oversold-then-released");

    let taken = c
        .inventory
        .reserve_shipped(&order, &[line("p001", 3)])
        .await
        .unwrap();
    assert_eq!(
        taken,
        ShippedOutcome::Taken {
            oversold: vec![Shortfall {
                product_id: "p001".into(),
                wanted: 3,
                available: 1
            }]
        }
    );
    assert_eq!(c.stock("p001").await, (Some(0), 2));

    // Given back once (a voided shipment, then a cancellation): the one unit the count
    // had, not the two it never had.
    c.inventory.release(&order).await.unwrap();
    c.inventory.release(&order).await.unwrap();
    assert_eq!(c.stock("p001").await, (Some(1), 2));
}

#[tokio::test]
async fn shipped_orders_racing_for_the_last_units_oversell_exactly_the_difference() {
    let stack = Stack::new().await;
    let c = consumer(&stack);
    c.inventory.set_stock("p001", 3).await.unwrap();
    let orders: Vec<OrderId> = (0..4)
        .map(|i| OrderId::for_cart(&format!("race-{i}")))
        .collect();

    // Four shipped orders of 2 units each, taken at once: 8 units left, 3 were counted.
    let lines = [line("p001", 2)];
    let outcomes = futures_util::future::join_all(
        orders
            .iter()
            .map(|order| c.inventory.reserve_shipped(order, &lines)),
    )
    .await;

    for outcome in &outcomes {
        assert!(
            matches!(outcome, Ok(ShippedOutcome::Taken { .. })),
            "{outcome:?}"
        );
    }
    assert_eq!(c.stock("p001").await, (Some(0), 5));
    let mut oversold = 0;
    for order in &orders {
        let reservation = c.inventory.reservation(order).await.unwrap().unwrap();
        oversold += reservation.oversold.iter().map(|l| l.quantity).sum::<u64>();
    }
    assert_eq!(
        oversold, 5,
        "each order's share adds up to the product's total"
    );
}

/// A flash sale: one product's last units split over four items, many more orders
/// than units reserving at once, each from its own instance (none knows the split
/// yet). Exactly the units there were are reserved, never more; every item ends at
/// zero; the orders that got nothing are told so.
#[tokio::test]
async fn a_split_product_under_a_rush_reserves_exactly_its_units() {
    let stack = Stack::new().await;
    let c = consumer(&stack);
    c.inventory.split_stock("p001", 20, 4).await.unwrap();
    assert_eq!(
        c.inventory.shard_counts("p001").await.unwrap(),
        [5, 5, 5, 5]
    );

    let orders: Vec<OrderId> = (0..36)
        .map(|i| OrderId::for_cart(&format!("flash-{i}")))
        .collect();
    let instances: Vec<DynamoInventory> = (0..6)
        .map(|_| DynamoInventory::new(stack.dynamodb.clone(), &stack.table))
        .collect();
    let outcomes = futures_util::future::join_all(orders.iter().enumerate().map(|(i, order)| {
        let inventory = &instances[i % instances.len()];
        async move { inventory.reserve(order, &[line("p001", 1)]).await }
    }))
    .await;

    let reserved = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(ReserveOutcome::Reserved)))
        .count();
    let short = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(ReserveOutcome::Short(_))))
        .count();
    assert_eq!(reserved, 20, "{outcomes:?}");
    assert_eq!(short, 16, "{outcomes:?}");
    assert_eq!(c.stock("p001").await, (Some(0), 0));
    assert_eq!(
        c.inventory.shard_counts("p001").await.unwrap(),
        [0, 0, 0, 0]
    );

    // What the reservations say they took adds up to the 20 units, item by item.
    let mut taken = 0;
    for order in &orders {
        if let Some(reservation) = c.inventory.reservation(order).await.unwrap() {
            let from_items: u64 = reservation.takes.iter().map(|t| t.quantity).sum();
            assert_eq!(from_items, 1, "{reservation:?}");
            taken += from_items;
        }
    }
    assert_eq!(taken, 20);
}

/// An order bigger than its own item takes the rest from the others, and a release
/// gives every unit back to the item it came from; restocked units on the product's
/// own item are found when the shards run dry.
#[tokio::test]
async fn a_split_product_falls_back_on_its_other_items_and_gets_units_back_where_they_came_from() {
    let stack = Stack::new().await;
    let c = consumer(&stack);
    c.inventory.split_stock("p001", 9, 3).await.unwrap();
    let big = OrderId::for_cart("flash-big");

    assert_eq!(
        c.inventory.reserve(&big, &[line("p001", 7)]).await.unwrap(),
        ReserveOutcome::Reserved
    );
    assert_eq!(c.stock("p001").await, (Some(2), 0));
    let reservation = c.inventory.reservation(&big).await.unwrap().unwrap();
    assert_eq!(reservation.takes.len(), 3, "{reservation:?}");

    c.inventory.release(&big).await.unwrap();
    assert_eq!(c.inventory.shard_counts("p001").await.unwrap(), [3, 3, 3]);

    // Drain the shards, then restock the product's own item (a return's restock).
    let all = OrderId::for_cart("flash-all");
    c.inventory.reserve(&all, &[line("p001", 9)]).await.unwrap();
    c.store
        .restock("flash-return", &[line("p001", 2)])
        .await
        .unwrap();
    let late = OrderId::for_cart("flash-late");
    assert_eq!(
        c.inventory
            .reserve(&late, &[line("p001", 2)])
            .await
            .unwrap(),
        ReserveOutcome::Reserved
    );
    assert_eq!(c.stock("p001").await, (Some(0), 0));
    assert_eq!(
        c.inventory
            .reserve(&OrderId::for_cart("flash-none"), &[line("p001", 1)])
            .await
            .unwrap(),
        ReserveOutcome::Short(vec![Shortfall {
            product_id: "p001".into(),
            wanted: 1,
            available: 0,
        }])
    );
}

/// Goods that left before their stock was taken: a split product drains every item
/// and records the rest as oversold, once; an instance that learnt an earlier split
/// follows the product when it is no longer split.
#[tokio::test]
async fn a_split_product_oversells_only_what_left_without_a_count_and_can_be_joined_again() {
    let stack = Stack::new().await;
    let c = consumer(&stack);
    c.inventory.split_stock("p001", 3, 2).await.unwrap();
    let shipped = OrderId::for_cart("flash-shipped");
    let outcome = c
        .inventory
        .reserve_shipped(&shipped, &[line("p001", 5)])
        .await
        .unwrap();
    assert_eq!(
        outcome,
        ShippedOutcome::Taken {
            oversold: vec![Shortfall {
                product_id: "p001".into(),
                wanted: 5,
                available: 3,
            }]
        }
    );
    assert_eq!(c.stock("p001").await, (Some(0), 2));
    c.inventory.release(&shipped).await.unwrap();
    assert_eq!(
        c.stock("p001").await,
        (Some(3), 2),
        "the 3 counted units only"
    );

    // Joined again on one item: an instance that knew the split finds it gone.
    c.inventory.set_stock("p001", 4).await.unwrap();
    assert!(c.inventory.shard_counts("p001").await.unwrap().is_empty());
    let stale = DynamoInventory::new(stack.dynamodb.clone(), &stack.table);
    stale.split_stock("p002", 2, 2).await.unwrap();
    c.inventory.split_stock("p002", 1, 1).await.unwrap();
    c.inventory.set_stock("p002", 6).await.unwrap();
    assert_eq!(
        stale
            .reserve(&OrderId::for_cart("flash-stale"), &[line("p002", 5)])
            .await
            .unwrap(),
        ReserveOutcome::Reserved
    );
    assert_eq!(c.stock("p002").await, (Some(1), 0));
}
