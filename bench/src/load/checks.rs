//! After each phase: wait (polling, with a deadline) until the pipeline has caught up
//! with what the clients did, then check that nothing was lost or doubled.
//!
//! What is compared:
//! - the clients' record of every order they placed (`Placed`) and every request;
//! - the orders table, read directly (order items, idempotency records, reservations);
//! - what the bus carried, from our catch-all queue (`Observer::bus`);
//! - what the healthy webhook receiver got.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use orders::adapters::dynamo::inventory::ReservationState;
use orders::adapters::dynamo::order_item::{idempotency_key, order_from_item};
use orders::domain::{Order, OrderId, OrderStatus};
use orders::ports::IdempotencyKey;
use serde_json::Value;

use super::clients::{CONCURRENT_CHANGE, Placed, Sample, Traffic};
use super::receivers::{Delivery, Healthy};
use super::stack::{CART_LINES, INITIAL_STOCK, Stack};
use crate::Error;

/// While waiting for the pipeline, how often what it still misses is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(15);

/// One check's outcome, as the report lists it.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

impl Check {
    pub fn new(name: impl Into<String>, passed: bool, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            passed,
            detail: detail.into(),
        }
    }
}

/// An event as the bus carried it (the fields the checks compare).
#[derive(Debug, Clone)]
pub struct BusEvent {
    pub status: String,
    pub shipping_status: String,
    /// When the change was made (`occurred_at`).
    pub occurred_at: Option<std::time::SystemTime>,
}

/// One order's events on the bus: sequence → (times carried, the event).
pub type OrderEvents = BTreeMap<u64, (u32, BusEvent)>;

/// The table as the checks read it.
#[derive(Default)]
pub struct Stored {
    /// Order items, by order id.
    pub orders: HashMap<String, Order>,
    /// Items keyed as orders that are not readable orders: (PK, why).
    pub unreadable: Vec<(String, String)>,
    /// Idempotency records: PK → the order id they answer with.
    pub idempotency: HashMap<String, String>,
}

pub struct Settled {
    pub waited: Duration,
    pub done: bool,
    /// What was still missing at the deadline (the first few): lost.
    pub waiting_for: Vec<String>,
    /// What was still missing when an on-time change would have arrived, and arrived
    /// before the deadline: late, not lost.
    pub late: Vec<String>,
    /// How long an on-time change may take.
    pub on_time: Duration,
    pub stored: Stored,
    /// The money and the goods (ledger.rs), waited for before the pipeline: how long,
    /// and what was still not as the flows left it.
    pub books_waited: Duration,
    pub books_waiting_for: Vec<String>,
}

/// What the run has seen so far, across phases.
#[derive(Default)]
pub struct Observer {
    /// Every event the bus carried, by order id.
    bus: HashMap<String, OrderEvents>,
    /// Events whose id is not `<order_id>:<sequence>` of the event.
    pub misnamed: Vec<String>,
    /// Bodies on the catch-all queue that are not order events.
    pub strays: Vec<String>,
    /// Orders whose reservation is as it must stay (read once, not again).
    reservations_settled: HashSet<String>,
    /// When the healthy receiver's subscription was created: it gets the events that
    /// occurred from then on.
    webhooks_since: Option<std::time::SystemTime>,
}

impl Observer {
    /// An observer of a run whose healthy receiver was subscribed at `since`.
    pub fn with_webhooks_since(since: Option<std::time::SystemTime>) -> Observer {
        Observer {
            webhooks_since: since,
            ..Observer::default()
        }
    }

    /// Takes what the catch-all queue holds into `bus`.
    async fn drain_bus(&mut self, stack: &Stack) -> Result<(), Error> {
        for body in stack.drain(&stack.catch_all).await? {
            match serde_json::from_value::<orders::events::Envelope>(body.clone()) {
                Ok(envelope) => {
                    let event = envelope.detail;
                    if event.event_id != format!("{}:{}", event.order_id, event.sequence) {
                        self.misnamed.push(event.event_id.clone());
                    }
                    let entry = self
                        .bus
                        .entry(event.order_id)
                        .or_default()
                        .entry(event.sequence)
                        .or_insert((
                            0,
                            BusEvent {
                                occurred_at: system_time(&event.occurred_at),
                                status: event.status,
                                shipping_status: event.shipping_status,
                            },
                        ));
                    entry.0 += 1;
                }
                Err(_) => self.strays.push(body.to_string()),
            }
        }
        Ok(())
    }

    /// Changes the bus carried (once each, any order's) that were made between `from`
    /// and `to`.
    pub fn changes_between(&self, from: std::time::SystemTime, to: std::time::SystemTime) -> usize {
        self.bus
            .values()
            .flat_map(|events| events.values())
            .filter(|(_, e)| e.occurred_at.is_some_and(|at| at >= from && at <= to))
            .count()
    }

    /// Whether `event` occurred (by its `occurred_at`) before the healthy receiver's
    /// subscription was created, so that it is not sent there.
    pub fn before_webhooks(&self, event: &BusEvent) -> bool {
        event
            .occurred_at
            .zip(self.webhooks_since)
            .is_some_and(|(at, since)| at < since)
    }

    /// The events of one order the bus carried, by sequence.
    pub fn events_of(&self, order_id: &str) -> &OrderEvents {
        static NONE: OrderEvents = BTreeMap::new();
        self.bus.get(order_id).unwrap_or(&NONE)
    }

    /// Polls until every order in `placed` is settled — its events all on the bus, the
    /// last one saying what the client expects, fulfillment done, every event at the
    /// healthy receiver, the table agreeing — or `limit` passes. What is still missing
    /// after `on_time` and settles before `limit` is reported late.
    pub async fn settle(
        &mut self,
        stack: &Stack,
        placed: &[Placed],
        healthy: &Healthy,
        on_time: Duration,
        limit: Duration,
    ) -> Result<Settled, Error> {
        let started = Instant::now();
        let mut overdue: Option<Vec<String>> = None;
        let mut next_report = started + PROGRESS_EVERY;
        loop {
            self.drain_bus(stack).await?;
            let mut waiting_for = self.waiting_for_events(placed, &healthy.deliveries());
            let mut stored = Stored::default();
            if waiting_for.is_empty() {
                stored = read_table(stack).await?;
                waiting_for = self.waiting_for_table(stack, placed, &stored).await?;
            }
            let done = waiting_for.is_empty();
            if !done && overdue.is_none() && started.elapsed() > on_time {
                overdue = Some(waiting_for.clone());
            }
            if done || started.elapsed() > limit {
                if !done {
                    stored = read_table(stack).await?;
                }
                let late = overdue
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|item| !waiting_for.contains(item))
                    .collect();
                waiting_for.truncate(5);
                return Ok(Settled {
                    waited: started.elapsed(),
                    done,
                    waiting_for,
                    late,
                    on_time,
                    stored,
                    books_waited: Duration::ZERO,
                    books_waiting_for: Vec::new(),
                });
            }
            if Instant::now() >= next_report {
                next_report += PROGRESS_EVERY;
                eprintln!(
                    "load:   after {:.0} s the pipeline is still missing {} thing(s){}",
                    started.elapsed().as_secs_f64(),
                    waiting_for.len(),
                    first_few(&waiting_for)
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// What the bus and the healthy receiver have yet to show.
    fn waiting_for_events(&self, placed: &[Placed], deliveries: &[Delivery]) -> Vec<String> {
        let delivered: HashSet<&str> = deliveries.iter().map(|d| d.id.as_str()).collect();
        let mut waiting = Vec::new();
        for order in placed {
            let events = self.events_of(&order.order_id);
            let Some((&last, (_, event))) = events.last_key_value() else {
                waiting.push(format!("{}: no event on the bus", order.order_id));
                continue;
            };
            if events.len() as u64 != last {
                waiting.push(format!("{}: events up to {last} with gaps", order.order_id));
            } else if order
                .expected_status
                .is_some_and(|expected| event.status != expected)
            {
                waiting.push(format!(
                    "{}: last event says {}",
                    order.order_id, event.status
                ));
            } else if event.status == "confirmed" && event.shipping_status == "not_started" {
                waiting.push(format!("{}: awaiting fulfillment", order.order_id));
            }
            // One stamped before the subscription never comes: the webhook check names it.
            for (sequence, _) in events.iter().filter(|(_, (_, e))| !self.before_webhooks(e)) {
                let id = format!("{}:{sequence}", order.order_id);
                if !delivered.contains(id.as_str()) {
                    waiting.push(format!("{id}: not at the webhook receiver"));
                }
            }
        }
        waiting
    }

    /// What the table has yet to agree with: versions, and fulfillment's reservations
    /// (a shipped order's reservation leaves no event, so it is read).
    async fn waiting_for_table(
        &mut self,
        stack: &Stack,
        placed: &[Placed],
        stored: &Stored,
    ) -> Result<Vec<String>, Error> {
        let mut waiting = Vec::new();
        for order in placed {
            let Some(current) = stored.orders.get(&order.order_id) else {
                waiting.push(format!("{}: not stored", order.order_id));
                continue;
            };
            let events = self.events_of(&order.order_id);
            let last = events.keys().last().copied().unwrap_or(0);
            if current.version != last {
                waiting.push(format!(
                    "{}: stored version {}, events up to {last}",
                    order.order_id, current.version
                ));
                continue;
            }
            if self.reservations_settled.contains(&order.order_id) {
                continue;
            }
            match reservation_problem(stack, current).await? {
                Some(problem) => waiting.push(format!("{}: {problem}", order.order_id)),
                None => {
                    self.reservations_settled.insert(order.order_id.clone());
                }
            }
        }
        Ok(waiting)
    }
}

/// An RFC 3339 timestamp as a point in time.
pub fn system_time(text: &str) -> Option<std::time::SystemTime> {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(std::time::SystemTime::from)
}

/// Every order ever confirmed holds a reservation until it is cancelled, which
/// releases it; one never confirmed has none.
async fn reservation_problem(stack: &Stack, order: &Order) -> Result<Option<String>, Error> {
    let confirmed = order
        .history
        .iter()
        .any(|h| h.status == OrderStatus::Confirmed);
    let reservation = stack.inventory.reservation(&order.id).await?;
    let state = reservation.map(|r| r.state);
    Ok(match (confirmed, order.status, state) {
        (false, _, None) => None,
        (false, _, Some(state)) => Some(format!(
            "never confirmed, yet a reservation {}",
            state.as_str()
        )),
        (true, OrderStatus::Cancelled, None | Some(ReservationState::Released)) => None,
        (true, OrderStatus::Cancelled, Some(ReservationState::Reserved)) => {
            Some("cancelled, reservation not released".into())
        }
        (true, _, Some(ReservationState::Reserved)) => None,
        (true, status, state) => Some(format!(
            "{status}, reservation {}",
            state.map_or("missing", |s| s.as_str())
        )),
    })
}

/// Order items and idempotency records, read straight from the table.
async fn read_table(stack: &Stack) -> Result<Stored, Error> {
    let mut stored = Stored::default();
    for item in stack.scan(&["ORDER", "IDEMPOTENCY"]).await? {
        let text = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        let pk = text("PK");
        if text("SK") == "IDEMPOTENCY" {
            stored.idempotency.insert(pk, text("order_id"));
            continue;
        }
        match order_from_item(&item) {
            Ok(order) => {
                stored.orders.insert(order.id.to_string(), order);
            }
            Err(why) => stored.unreadable.push((pk, why.to_string())),
        }
    }
    Ok(stored)
}

// ---------------------------------------------------------------------------------------
// The checks. Each takes one phase's orders and requests.

/// Every order a client was answered 201 for is in the table once, as that cart's
/// order, with its idempotency record pointing at it; no create the client never heard
/// the end of left an order behind.
pub fn stored_once(traffic: &Traffic, stored: &Stored) -> Check {
    let mut problems = Vec::new();
    for order in &traffic.placed {
        match stored.orders.get(&order.order_id) {
            None => problems.push(format!("{} (201) is not stored", order.order_id)),
            Some(o) if o.cart_id != order.cart_id || o.user_id != order.user => {
                problems.push(format!(
                    "{} is stored for cart {} of {}",
                    order.order_id, o.cart_id, o.user_id
                ))
            }
            Some(_) => {}
        }
        let key = idempotency_key(&IdempotencyKey {
            caller: order.user.clone(),
            key: order.key.clone(),
        });
        let pk = key
            .get("PK")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        match stored.idempotency.get(&pk) {
            Some(id) if *id == order.order_id => {}
            Some(id) => problems.push(format!("key {} answers {id}", order.key)),
            None => problems.push(format!("key {} has no idempotency record", order.key)),
        }
    }
    for missing in &traffic.not_created {
        let id = OrderId::for_cart(&missing.cart_id).to_string();
        if stored.orders.contains_key(&id) {
            problems.push(format!(
                "cart {} was ordered ({id}) but its client last got {}",
                missing.cart_id, missing.status
            ));
        }
    }
    Check::new(
        "every accepted create is stored exactly once",
        problems.is_empty(),
        format!(
            "{} orders answered 201, {} stored with their idempotency records{}",
            traffic.placed.len(),
            traffic.placed.len().saturating_sub(problems.len()),
            first_few(&problems)
        ),
    )
}

/// Every order is whole: lines and total from the cart, one history entry per
/// version, the status the history ends with and the client expects.
pub fn whole(traffic: &Traffic, stored: &Stored) -> Check {
    let cart_total: i64 = CART_LINES
        .iter()
        .map(|(_, _, quantity, price)| {
            i64::from(*quantity) * price.replace('.', "").parse::<i64>().unwrap_or(0)
        })
        .sum();
    let mut problems = Vec::new();
    let mut unknown = 0;
    for order in &traffic.placed {
        let Some(o) = stored.orders.get(&order.order_id) else {
            continue; // stored_once reports it
        };
        if o.items.len() != CART_LINES.len() || o.total.minor() != cart_total {
            problems.push(format!(
                "{}: {} lines, total {} (the cart: {} lines, {cart_total})",
                o.id,
                o.items.len(),
                o.total.minor(),
                CART_LINES.len()
            ));
        }
        if o.history.len() as u64 != o.version {
            problems.push(format!(
                "{}: version {} with {} history entries",
                o.id,
                o.version,
                o.history.len()
            ));
        }
        if o.history.last().map(|h| h.status) != Some(o.status) {
            problems.push(format!(
                "{}: the history does not end in {}",
                o.id, o.status
            ));
        }
        match order.expected_status {
            Some(expected) if o.status.as_str() != expected => problems.push(format!(
                "{}: {} (the client expects {expected})",
                o.id, o.status
            )),
            Some(_) => {}
            None => unknown += 1,
        }
    }
    Check::new(
        "every order is whole and as its client left it",
        problems.is_empty(),
        format!(
            "{} orders: lines, total, one history entry per version, last status{}{}",
            traffic.placed.len(),
            if unknown > 0 {
                format!(" ({unknown} with an unexpected answer on the way, status not compared)")
            } else {
                String::new()
            },
            first_few(&problems)
        ),
    )
}

/// The bus carried every change of every order: sequences 1..version, the last one
/// as stored; `exactly` also refuses a change carried twice (at-least-once allows it).
pub fn events_per_change(
    traffic: &Traffic,
    stored: &Stored,
    observer: &Observer,
    exactly: bool,
) -> Check {
    let mut problems = Vec::new();
    let (mut changes, mut duplicates) = (0, 0);
    for order in &traffic.placed {
        let Some(o) = stored.orders.get(&order.order_id) else {
            continue;
        };
        changes += o.version;
        let events = observer.events_of(&order.order_id);
        let sequences: Vec<u64> = events.keys().copied().collect();
        if sequences != (1..=o.version).collect::<Vec<_>>() {
            problems.push(format!(
                "{}: version {}, events {sequences:?}",
                o.id, o.version
            ));
        }
        duplicates += events.values().map(|(n, _)| n - 1).sum::<u32>();
        if let Some((_, last)) = events.get(&o.version)
            && (last.status != o.status.as_str()
                || last.shipping_status != o.shipping_status.as_str())
        {
            problems.push(format!(
                "{}: last event {}/{}, stored {}/{}",
                o.id, last.status, last.shipping_status, o.status, o.shipping_status
            ));
        }
    }
    let passed = problems.is_empty() && (!exactly || duplicates == 0);
    Check::new(
        if exactly {
            "every change is on the bus exactly once"
        } else {
            "every change is on the bus (at least once)"
        },
        passed,
        format!(
            "{changes} changes of {} orders, {} events received, {duplicates} duplicate(s){}",
            traffic.placed.len(),
            changes as u32 + duplicates,
            first_few(&problems)
        ),
    )
}

/// The healthy receiver got every event of these orders, correctly signed; `exactly`
/// also refuses one delivered twice. A missing event that occurred (by its
/// `occurred_at`) before the subscription was created is named apart: the product does not
/// send a subscription what happened before it existed, and stamps a payment's change
/// with the time Stripe created its event, in whole seconds.
pub fn webhooks_once(
    traffic: &Traffic,
    observer: &Observer,
    deliveries: &[Delivery],
    exactly: bool,
) -> Check {
    let mut received: HashMap<&str, u32> = HashMap::new();
    let mut unsigned = 0;
    for delivery in deliveries {
        *received.entry(delivery.id.as_str()).or_default() += 1;
        unsigned += usize::from(!delivery.signed);
    }
    let (mut expected, mut missing, mut duplicates) = (0, Vec::new(), 0);
    let mut older = 0;
    for order in &traffic.placed {
        for (sequence, (_, event)) in observer.events_of(&order.order_id) {
            expected += 1;
            let id = format!("{}:{sequence}", order.order_id);
            match received.get(id.as_str()) {
                None => {
                    let before = observer.before_webhooks(event);
                    older += usize::from(before);
                    missing.push(if before {
                        format!(
                            "{id} ({}, occurred_at before the subscription's created_at)",
                            event.status
                        )
                    } else {
                        id
                    });
                }
                Some(n) => duplicates += n - 1,
            }
        }
    }
    let passed = missing.is_empty() && unsigned == 0 && (!exactly || duplicates == 0);
    Check::new(
        if exactly {
            "the healthy webhook receiver got every event exactly once, signed"
        } else {
            "the healthy webhook receiver got every event (at least once), signed"
        },
        passed,
        format!(
            "{expected} events, {} missing ({older} of them stamped before the subscription was created), {duplicates} duplicate(s), {unsigned} badly signed (all phases){}",
            missing.len(),
            first_few(&missing)
        ),
    )
}

/// A request's endpoint, status and problem code, for a check's detail.
fn answer(sample: &Sample) -> String {
    format!(
        "{} {} {}",
        sample.endpoint,
        sample.status,
        sample.code.as_deref().unwrap_or("")
    )
}

/// No answer was a 5xx, and every answer was the one the flow expected.
pub fn no_5xx(traffic: &Traffic) -> Vec<Check> {
    let errors: Vec<String> = traffic
        .samples
        .iter()
        .filter(|s| s.status >= 500 || s.status == 0)
        .map(answer)
        .collect();
    vec![
        Check::new(
            "no 5xx (and no request without an answer)",
            errors.is_empty(),
            format!(
                "{} requests, {} 5xx{}",
                traffic.samples.len(),
                errors.len(),
                first_few(&errors)
            ),
        ),
        expected_answers(traffic, |_| false),
    ]
}

/// Every answer was the one the flow expected, besides those `excused`.
/// A 409 `concurrent_change` (the order changed between the API's read and its write;
/// the client sent the request again) is retryable, so not unexpected: counted apart.
pub fn expected_answers(traffic: &Traffic, excused: impl Fn(&Sample) -> bool) -> Check {
    let raced = |s: &Sample| s.status == 409 && s.code.as_deref() == Some(CONCURRENT_CHANGE);
    let unexpected: Vec<String> = traffic
        .samples
        .iter()
        .filter(|s| !s.expected && !excused(s) && !raced(s))
        .map(answer)
        .collect();
    let retried: Vec<String> = traffic
        .samples
        .iter()
        .filter(|s| raced(s))
        .map(|s| s.endpoint.to_string())
        .collect();
    Check::new(
        "every other answer is the expected one (201 create, 200 otherwise)",
        unexpected.is_empty(),
        format!(
            "{} unexpected{}; {} answered 409 concurrent_change and sent again (retryable){}",
            unexpected.len(),
            first_few(&unexpected),
            retried.len(),
            first_few(&retried)
        ),
    )
}

/// Stock is conserved: what is on hand plus what live reservations took from the
/// count is what was stocked plus what returns put back, per product. (Units a shipped
/// order took beyond the count are oversold: never in the count, they are listed, not
/// added.)
pub async fn stock_conserved(
    stack: &Stack,
    stored: &Stored,
    returned: &BTreeMap<&str, u64>,
) -> Result<Check, Error> {
    let mut held: BTreeMap<String, u64> = BTreeMap::new();
    for order in stored.orders.values() {
        if let Some(reservation) = stack.inventory.reservation(&order.id).await?
            && reservation.state == ReservationState::Reserved
        {
            for line in &reservation.lines {
                *held.entry(line.product_id.clone()).or_default() +=
                    reservation.taken(&line.product_id);
            }
        }
    }
    let mut parts = Vec::new();
    let mut passed = true;
    for (product, _, _, _) in CART_LINES {
        let available = stack.inventory.available(product).await?.unwrap_or(0);
        let reserved = held.get(*product).copied().unwrap_or(0);
        let oversold = stack.inventory.oversold(product).await?;
        let back = returned.get(*product).copied().unwrap_or(0);
        passed &= available + reserved == INITIAL_STOCK + back;
        parts.push(format!(
            "{product}: {available} on hand + {reserved} reserved = {} (stocked {INITIAL_STOCK} + {back} returned; {oversold} oversold)",
            available + reserved
        ));
    }
    Ok(Check::new(
        "stock is conserved (on hand + reserved = stocked + returned)",
        passed,
        parts.join("; "),
    ))
}

/// The table holds no order nobody was answered 201 for, and no unreadable order
/// besides `poison`.
pub fn no_strays(all_placed: &[&Placed], stored: &Stored, poison: Option<&str>) -> Check {
    let placed: HashSet<&str> = all_placed.iter().map(|p| p.order_id.as_str()).collect();
    let mut problems: Vec<String> = stored
        .orders
        .keys()
        .filter(|id| !placed.contains(id.as_str()))
        .map(|id| format!("{id} is stored, no client was answered 201 for it"))
        .collect();
    problems.extend(
        stored
            .unreadable
            .iter()
            .filter(|(pk, _)| Some(pk.as_str()) != poison)
            .map(|(pk, why)| format!("{pk} is unreadable: {why}")),
    );
    Check::new(
        "the table holds no other order",
        problems.is_empty(),
        format!(
            "{} orders stored, {} placed{}",
            stored.orders.len(),
            placed.len(),
            first_few(&problems)
        ),
    )
}

/// What the on-failure queue of the publisher holds: the keys of each record.
pub fn failure_keys(bodies: &[Value]) -> Vec<String> {
    bodies
        .iter()
        .map(|b| {
            b["record"]["dynamodb"]["Keys"]["PK"]["S"]
                .as_str()
                .unwrap_or("?")
                .to_string()
        })
        .collect()
}

pub fn first_few(items: &[String]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let shown: Vec<&str> = items.iter().take(3).map(String::as_str).collect();
    let more = if items.len() > 3 {
        format!(" and {} more", items.len() - 3)
    } else {
        String::new()
    };
    format!(": {}{more}", shown.join("; "))
}
