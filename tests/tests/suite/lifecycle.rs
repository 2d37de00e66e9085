//! The order lifecycle through `PUT /api/orders/{id}/status` and `DELETE /api/orders/{id}`:
//! who may make which move, what a move changes in the stored order, no-ops, `If-Match`,
//! races, access control, the audit trail and exact money — each checked against what is
//! stored on the emulator.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::future::join_all;
use orders_tests::{ADMIN, Call, FULFILL, SECRET, Stack, checkout, token};
use serde_json::{Value, json};

type Item = HashMap<String, AttributeValue>;

const STATUSES: [&str; 5] = ["pending", "confirmed", "shipped", "delivered", "cancelled"];
/// The customer who owns the orders in these tests.
const OWNER: &str = "alice";
/// The `sub` of the fulfillment service's token.
const WAREHOUSE: &str = "warehouse";

fn admin() -> String {
    token("admin", ADMIN)
}

fn fulfillment() -> String {
    token(WAREHOUSE, FULFILL)
}

fn customer(user: &str) -> String {
    token(user, "")
}

fn put_status(id: &str, body: &Value, bearer: &str) -> Call {
    Call::new("PUT", &format!("/api/orders/{id}/status"))
        .bearer(bearer)
        .json(body)
}

fn delete(id: &str, bearer: &str) -> Call {
    Call::new("DELETE", &format!("/api/orders/{id}")).bearer(bearer)
}

fn get(id: &str, bearer: &str) -> Call {
    Call::new("GET", &format!("/api/orders/{id}")).bearer(bearer)
}

fn history(id: &str, bearer: &str) -> Call {
    Call::new("GET", &format!("/api/orders/{id}/history")).bearer(bearer)
}

fn text<'a>(item: &'a Item, name: &str) -> &'a str {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .unwrap_or_else(|| panic!("stored item has no string {name}: {item:?}"))
}

fn version(item: &Item) -> u64 {
    item["version"].as_n().unwrap().parse().unwrap()
}

/// The statuses the stored audit trail went through, oldest first.
fn trail(item: &Item) -> Vec<String> {
    item["history"]
        .as_l()
        .unwrap()
        .iter()
        .map(|entry| entry.as_m().unwrap()["status"].as_s().unwrap().clone())
        .collect()
}

fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// An order of `user`'s in `status`, reached the way production reaches it: created
/// pending, then moved by an admin (cancelled by an admin's DELETE while pending).
async fn order_in(stack: &Stack, user: &str, cart_id: &str, status: &str) -> String {
    let id = stack.order_for(user, cart_id).await;
    match status {
        "pending" => {}
        "confirmed" => stack.advance(&id, &["confirmed"]).await,
        "shipped" => stack.advance(&id, &["confirmed", "shipped"]).await,
        "delivered" => {
            stack
                .advance(&id, &["confirmed", "shipped", "delivered"])
                .await
        }
        "cancelled" => {
            let reply = stack.send(delete(&id, &admin())).await;
            assert_eq!(reply.status, 200, "cancelling {id}: {reply:?}");
        }
        other => panic!("no such status {other}"),
    }
    assert_eq!(
        text(&stack.stored_order(&id).await.unwrap(), "status"),
        status
    );
    id
}

// ---------------------------------------------------------------------------------------
// 1. The full matrix of (from, to, role).
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// The customer whose order it is.
    Owner,
    /// A caller with `orders:fulfill`.
    Fulfillment,
    /// A caller with `orders:admin`.
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Put,
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Changed,
    NoOp,
    Forbidden,
    Conflict,
}

/// What the documented lifecycle (README) promises, written out here rather than asked of the product.
fn expected(from: &str, to: &str, who: Who, method: Method) -> Outcome {
    use Outcome::*;
    const ADMIN_MOVES: &[(&str, &str)] = &[
        ("pending", "confirmed"),
        ("confirmed", "shipped"),
        ("shipped", "delivered"),
        ("pending", "cancelled"),
        ("confirmed", "cancelled"),
    ];
    const FULFILLMENT_MOVES: &[(&str, &str)] =
        &[("confirmed", "shipped"), ("shipped", "delivered")];
    const OWNER_MOVES: &[(&str, &str)] = &[("pending", "cancelled")];
    let moves = match (who, method) {
        // Customers never PUT a status.
        (Who::Owner, Method::Put) => return Forbidden,
        // The fulfillment service ships orders; it never cancels one.
        (Who::Fulfillment, Method::Delete) => return Forbidden,
        (Who::Owner, Method::Delete) => OWNER_MOVES,
        (Who::Fulfillment, Method::Put) => FULFILLMENT_MOVES,
        (Who::Admin, _) => ADMIN_MOVES,
    };
    // A role with no move at all into `to` is refused as such, whatever the order's status:
    // authorization comes before the no-op. Nobody moves an order into `pending`; for an
    // admin, who may do everything else, that is a no-op or a conflict.
    let admin_to_pending = to == "pending" && who == Who::Admin;
    if !admin_to_pending && !moves.iter().any(|&(_, t)| t == to) {
        return Forbidden;
    }
    if from == to {
        NoOp
    } else if moves.contains(&(from, to)) {
        Changed
    } else {
        Conflict
    }
}

/// Every (to, role, method) attempted from one status.
fn attempts() -> Vec<(&'static str, Who, Method)> {
    let mut all = Vec::new();
    for to in STATUSES {
        let owner_method = if to == "cancelled" {
            Method::Delete
        } else {
            Method::Put
        };
        all.push((to, Who::Owner, owner_method));
        all.push((to, Who::Fulfillment, Method::Put));
        all.push((to, Who::Admin, Method::Put));
        if to == "cancelled" {
            all.push((to, Who::Fulfillment, Method::Delete));
            all.push((to, Who::Admin, Method::Delete));
        }
    }
    all
}

/// One attempt on a fresh order in `from`, checked against `expected` and the stored item.
async fn attempt(
    stack: Arc<Stack>,
    n: usize,
    from: &'static str,
    to: &'static str,
    who: Who,
    method: Method,
) {
    let label = format!("{from} → {to} by {who:?} via {method:?}");
    let id = order_in(&stack, OWNER, &format!("cart-{from}-{n}"), from).await;
    let before = stack.stored_order(&id).await.unwrap();
    let (bearer, actor) = match who {
        Who::Owner => (customer(OWNER), OWNER),
        Who::Fulfillment => (fulfillment(), WAREHOUSE),
        Who::Admin => (admin(), "admin"),
    };
    let call = match method {
        Method::Put => put_status(&id, &json!({ "status": to }), &bearer),
        Method::Delete => delete(&id, &bearer),
    };
    let reply = stack.send(call).await;
    let after = stack.stored_order(&id).await.unwrap();
    let outcome = expected(from, to, who, method);

    match outcome {
        Outcome::Changed => {
            assert_eq!(reply.status, 200, "{label}: {reply:?}");
            assert_eq!(version(&after), version(&before) + 1, "{label}");
            assert_eq!(
                reply.header("etag"),
                Some(etag(version(&after)).as_str()),
                "{label}"
            );
            assert_eq!(reply.body["status"], to, "{label}");
            if method == Method::Delete {
                assert_eq!(
                    reply.body["message"],
                    format!("Order {id} cancelled successfully."),
                    "{label}"
                );
            }
            assert_eq!(text(&after, "status"), to, "{label}");
            // Payment is recorded on confirmation and never undone here.
            let was_paid = matches!(from, "confirmed" | "shipped" | "delivered");
            let paid = if was_paid || to == "confirmed" {
                "paid"
            } else {
                "unpaid"
            };
            assert_eq!(text(&after, "payment_status"), paid, "{label}");
            let shipping = if to == "confirmed" { "not_started" } else { to };
            assert_eq!(text(&after, "shipping_status"), shipping, "{label}");
            // Exactly one more history entry, naming the new status and the caller.
            let mut expected_trail = trail(&before);
            expected_trail.push(to.to_string());
            assert_eq!(trail(&after), expected_trail, "{label}");
            let last = after["history"]
                .as_l()
                .unwrap()
                .last()
                .unwrap()
                .as_m()
                .unwrap();
            assert_eq!(last["actor"].as_s().unwrap(), actor, "{label}");
            // Its by_status partition moved with it, to the same shard.
            let shard = |item: &Item| {
                text(item, "status_shard")
                    .split_once('#')
                    .map(|(_, k)| k.to_string())
            };
            assert_eq!(
                text(&after, "status_shard"),
                format!("{to}#{}", shard(&before).unwrap()),
                "{label}"
            );
            // Nothing else about the order moved.
            let changes = [
                "status",
                "status_shard",
                "payment_status",
                "shipping_status",
                "version",
                "history",
                "updated_at",
                // Shipping and delivering carry the order's parcels along.
                "shipments",
            ];
            for (name, value) in &before {
                if !changes.contains(&name.as_str()) {
                    assert_eq!(after.get(name), Some(value), "{label}: {name} changed");
                }
            }
        }
        Outcome::NoOp => {
            assert_eq!(reply.status, 200, "{label}: {reply:?}");
            assert_eq!(reply.body["status"], from, "{label}");
            assert_eq!(
                reply.header("etag"),
                Some(etag(version(&before)).as_str()),
                "{label}"
            );
            assert_eq!(after, before, "{label}: a no-op changed the stored order");
        }
        refused => {
            let (status, code) = match refused {
                Outcome::Conflict => (409, "invalid_transition"),
                _ => (403, "forbidden"),
            };
            assert_eq!(reply.status, status, "{label}: {reply:?}");
            assert_eq!(reply.code(), code, "{label}");
            assert_eq!(
                reply.header("content-type"),
                Some("application/problem+json"),
                "{label}"
            );
            if refused == Outcome::Conflict {
                assert_eq!(reply.body["current_status"], from, "{label}");
            }
            assert_eq!(
                after, before,
                "{label}: a refused move changed the stored order"
            );
        }
    }
}

/// Every attempt from `from`, concurrently, each on its own order of one stack.
async fn matrix_from(from: &'static str) {
    let stack = Arc::new(Stack::new().await);
    let tasks = attempts()
        .into_iter()
        .enumerate()
        .map(|(n, (to, who, method))| {
            tokio::spawn(attempt(Arc::clone(&stack), n, from, to, who, method))
        });
    for result in join_all(tasks).await {
        if let Err(err) = result {
            std::panic::resume_unwind(err.into_panic());
        }
    }
}

/// Every move of the documented lifecycle works for exactly the roles it names; everything
/// else is a no-op (same status), 403 (the role never makes that move) or 409 — and a
/// refusal leaves the stored order untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn matrix_from_pending() {
    matrix_from("pending").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn matrix_from_confirmed() {
    matrix_from("confirmed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn matrix_from_shipped() {
    matrix_from("shipped").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn matrix_from_delivered() {
    matrix_from("delivered").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn matrix_from_cancelled() {
    matrix_from("cancelled").await;
}

/// The expectation table itself says what the README says (a guard against a typo in it).
#[test]
fn the_expectation_table_is_the_seed_diagram() {
    use Outcome::*;
    assert_eq!(
        expected("pending", "confirmed", Who::Admin, Method::Put),
        Changed
    );
    assert_eq!(
        expected("pending", "confirmed", Who::Fulfillment, Method::Put),
        Forbidden
    );
    assert_eq!(
        expected("confirmed", "shipped", Who::Fulfillment, Method::Put),
        Changed
    );
    assert_eq!(
        expected("shipped", "delivered", Who::Fulfillment, Method::Put),
        Changed
    );
    assert_eq!(
        expected("pending", "cancelled", Who::Owner, Method::Delete),
        Changed
    );
    assert_eq!(
        expected("confirmed", "cancelled", Who::Owner, Method::Delete),
        Conflict
    );
    assert_eq!(
        expected("confirmed", "cancelled", Who::Admin, Method::Delete),
        Changed
    );
    assert_eq!(
        expected("shipped", "cancelled", Who::Admin, Method::Put),
        Conflict
    );
    assert_eq!(
        expected("delivered", "shipped", Who::Admin, Method::Put),
        Conflict
    );
    assert_eq!(
        expected("cancelled", "cancelled", Who::Owner, Method::Delete),
        NoOp
    );
    assert_eq!(
        expected("confirmed", "pending", Who::Admin, Method::Put),
        Conflict
    );
    assert_eq!(
        expected("pending", "pending", Who::Fulfillment, Method::Put),
        Forbidden
    );
    assert_eq!(
        expected("pending", "pending", Who::Admin, Method::Put),
        NoOp
    );
    assert_eq!(
        expected("pending", "cancelled", Who::Fulfillment, Method::Delete),
        Forbidden
    );
    assert_eq!(
        expected("pending", "confirmed", Who::Owner, Method::Put),
        Forbidden
    );
    assert_eq!(attempts().len(), 17);
}

// ---------------------------------------------------------------------------------------
// 2-4. No-ops, If-Match, tracking details.
// ---------------------------------------------------------------------------------------

/// Asking again for the status an order already has (PUT or DELETE) answers 200 with the
/// order as it is: no new history entry, no version bump, nothing stored changes.
#[tokio::test]
async fn asking_for_the_current_status_is_a_no_op() {
    let stack = Stack::new().await;

    let id = order_in(&stack, OWNER, "noop-put", "shipped").await;
    let before = stack.stored_order(&id).await.unwrap();
    for bearer in [admin(), fulfillment()] {
        let reply = stack
            .send(put_status(&id, &json!({ "status": "shipped" }), &bearer))
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.body["version"], 3);
        assert_eq!(reply.header("etag"), Some("\"3\""));
    }
    assert_eq!(stack.stored_order(&id).await.unwrap(), before);
    let trail = stack.send(history(&id, &admin())).await;
    assert_eq!(trail.body["history"].as_array().unwrap().len(), 3);

    let id = order_in(&stack, OWNER, "noop-delete", "pending").await;
    let first = stack.send(delete(&id, &customer(OWNER))).await;
    assert_eq!(first.status, 200, "{first:?}");
    let before = stack.stored_order(&id).await.unwrap();
    assert_eq!(version(&before), 2);
    for bearer in [customer(OWNER), admin()] {
        let again = stack.send(delete(&id, &bearer)).await;
        assert_eq!(again.status, 200, "{again:?}");
        assert_eq!(again.body["status"], "cancelled");
        assert_eq!(
            again.body["message"],
            format!("Order {id} cancelled successfully.")
        );
        assert_eq!(again.header("etag"), Some("\"2\""));
    }
    let again = stack
        .send(put_status(&id, &json!({ "status": "cancelled" }), &admin()))
        .await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(stack.stored_order(&id).await.unwrap(), before);
    let trail = stack.send(history(&id, &customer(OWNER))).await;
    assert_eq!(trail.body["history"].as_array().unwrap().len(), 2);
}

/// `If-Match` with the current version lets a move through; a stale one is 412 with the
/// current version (unless the order is already where it was asked to go); a malformed
/// one is 400.
#[tokio::test]
async fn if_match_guards_against_lost_updates() {
    let stack = Stack::new().await;
    let id = order_in(&stack, OWNER, "if-match", "pending").await;
    let confirm = json!({ "status": "confirmed" });
    let ship = json!({ "status": "shipped" });

    let reply = stack
        .send(put_status(&id, &confirm, &admin()).header("if-match", "\"1\""))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("etag"), Some("\"2\""));

    let before = stack.stored_order(&id).await.unwrap();
    let stale = stack
        .send(put_status(&id, &ship, &admin()).header("if-match", "\"1\""))
        .await;
    assert_eq!(stale.status, 412, "{stale:?}");
    assert_eq!(stale.code(), "version_mismatch");
    assert_eq!(stale.body["current_version"], 2);
    assert_eq!(stack.stored_order(&id).await.unwrap(), before);

    // The same stale tag on a request the order already satisfies: the no-op wins.
    let retry = stack
        .send(put_status(&id, &confirm, &admin()).header("if-match", "\"1\""))
        .await;
    assert_eq!(retry.status, 200, "{retry:?}");
    assert_eq!(retry.header("etag"), Some("\"2\""));

    // Exactly the document's pattern: `"2"`, `W/"2"`, `2`, `W/2`, or `*`.
    for malformed in [
        "abc",
        "\"two\"",
        "\"-1\"",
        "\"\"2\"\"",
        "W/W/2",
        "\"2",
        "\"\"",
    ] {
        let bad = stack
            .send(put_status(&id, &ship, &fulfillment()).header("if-match", malformed))
            .await;
        assert_eq!(bad.status, 400, "If-Match {malformed}: {bad:?}");
        assert_eq!(bad.code(), "validation_failed");
    }
    assert_eq!(stack.stored_order(&id).await.unwrap(), before);
    // A version too large for any order is a mismatch, not a malformed header.
    let huge = stack
        .send(put_status(&id, &ship, &fulfillment()).header("if-match", "\"99999999999999999999\""))
        .await;
    assert_eq!(huge.status, 412, "{huge:?}");

    let current = stack
        .send(put_status(&id, &ship, &fulfillment()).header("if-match", "\"2\""))
        .await;
    assert_eq!(current.status, 200, "{current:?}");
    assert_eq!(current.header("etag"), Some("\"3\""));
    assert_eq!(
        text(&stack.stored_order(&id).await.unwrap(), "status"),
        "shipped"
    );
}

/// A shipment carries its tracking number and carrier into the stored order and the
/// order's view; giving them with any other status is 400 and changes nothing.
#[tokio::test]
async fn tracking_details_go_only_with_shipped() {
    let stack = Stack::new().await;
    let pending = order_in(&stack, OWNER, "track-pending", "pending").await;
    let before = stack.stored_order(&pending).await.unwrap();
    for body in [
        json!({ "status": "confirmed", "tracking_number": "1Z999AA10123456784" }),
        json!({ "status": "confirmed", "carrier": "UPS" }),
        json!({ "status": "cancelled", "tracking_number": "1Z9", "carrier": "UPS" }),
    ] {
        let reply = stack.send(put_status(&pending, &body, &admin())).await;
        assert_eq!(reply.status, 400, "{body}: {reply:?}");
        assert_eq!(reply.code(), "validation_failed");
    }
    assert_eq!(stack.stored_order(&pending).await.unwrap(), before);

    let id = order_in(&stack, OWNER, "track-ship", "confirmed").await;
    let body =
        json!({ "status": "shipped", "tracking_number": "1Z999AA10123456784", "carrier": "UPS" });
    let reply = stack.send(put_status(&id, &body, &fulfillment())).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["tracking_number"], "1Z999AA10123456784");
    assert_eq!(reply.body["carrier"], "UPS");
    let stored = stack.stored_order(&id).await.unwrap();
    assert_eq!(text(&stored, "tracking_number"), "1Z999AA10123456784");
    assert_eq!(text(&stored, "carrier"), "UPS");
    assert_eq!(text(&stored, "shipping_status"), "shipped");
    let seen = stack.send(get(&id, &customer(OWNER))).await;
    assert_eq!(seen.body["tracking_number"], "1Z999AA10123456784");
    assert_eq!(seen.body["carrier"], "UPS");

    let deliver = json!({ "status": "delivered", "tracking_number": "OTHER" });
    let reply = stack.send(put_status(&id, &deliver, &fulfillment())).await;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(stack.stored_order(&id).await.unwrap(), stored);
}

// ---------------------------------------------------------------------------------------
// 5-6. Concurrency.
// ---------------------------------------------------------------------------------------

/// Twenty admins confirming one order at once: one confirmation happens, the others are
/// no-ops or told of the concurrent change; never a 5xx, never a second history entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_confirms_confirm_once() {
    let stack = Arc::new(Stack::new().await);
    let id = order_in(&stack, OWNER, "stampede", "pending").await;
    let tasks = (0..20).map(|_| {
        let stack = Arc::clone(&stack);
        let id = id.clone();
        tokio::spawn(async move { stack.set_status(&id, "confirmed", &admin()).await })
    });
    let replies: Vec<_> = join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    for reply in &replies {
        match reply.status {
            200 => {
                assert_eq!(reply.body["status"], "confirmed");
                assert_eq!(reply.body["version"], 2);
            }
            409 => assert_eq!(reply.code(), "concurrent_change", "{reply:?}"),
            _ => panic!("unexpected answer to a concurrent confirm: {reply:?}"),
        }
    }
    assert!(replies.iter().any(|r| r.status == 200));
    let stored = stack.stored_order(&id).await.unwrap();
    assert_eq!(version(&stored), 2);
    assert_eq!(trail(&stored), ["pending", "confirmed"]);
    assert_eq!(text(&stored, "payment_status"), "paid");
}

/// An admin's cancel racing the warehouse's shipment of a confirmed order: exactly one
/// of them wins, the other is 409, and the order never ends up both cancelled and shipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancel_racing_a_shipment_has_one_winner() {
    let stack = Arc::new(Stack::new().await);
    let mut ids = Vec::new();
    for n in 0..10 {
        ids.push(order_in(&stack, OWNER, &format!("race-{n}"), "confirmed").await);
    }
    let races = ids.iter().map(|id| {
        let cancel = tokio::spawn({
            let (stack, id) = (Arc::clone(&stack), id.clone());
            async move { stack.send(delete(&id, &admin())).await }
        });
        let ship = tokio::spawn({
            let (stack, id) = (Arc::clone(&stack), id.clone());
            async move { stack.set_status(&id, "shipped", &fulfillment()).await }
        });
        async move { (cancel.await.unwrap(), ship.await.unwrap()) }
    });
    let outcomes = join_all(races).await;
    for (id, (cancel, ship)) in ids.iter().zip(outcomes) {
        let stored = stack.stored_order(id).await.unwrap();
        let (winner, loser, won) = match (cancel.status, ship.status) {
            (200, 409) => ("cancelled", &ship, &cancel),
            (409, 200) => ("shipped", &cancel, &ship),
            _ => panic!("{id}: cancel {cancel:?}, ship {ship:?}: not exactly one winner"),
        };
        assert_eq!(won.body["status"], winner, "{id}");
        assert!(
            ["invalid_transition", "concurrent_change"].contains(&loser.code()),
            "{id}: {loser:?}"
        );
        assert_eq!(text(&stored, "status"), winner, "{id}");
        assert_eq!(trail(&stored), ["pending", "confirmed", winner], "{id}");
        assert_eq!(version(&stored), 3, "{id}");
    }
}

// ---------------------------------------------------------------------------------------
// 7. Who may see and touch an order.
// ---------------------------------------------------------------------------------------

/// Customers move an order only by cancelling it: their PUT is 403, on their own order too.
#[tokio::test]
async fn customers_cannot_put_a_status() {
    let stack = Stack::new().await;
    let id = order_in(&stack, OWNER, "cust-put", "pending").await;
    let before = stack.stored_order(&id).await.unwrap();
    for (user, status) in [
        (OWNER, "confirmed"),
        (OWNER, "cancelled"),
        ("bob", "confirmed"),
    ] {
        let reply = stack
            .send(put_status(
                &id,
                &json!({ "status": status }),
                &customer(user),
            ))
            .await;
        assert_eq!(reply.status, 403, "{user} → {status}: {reply:?}");
        assert_eq!(reply.code(), "forbidden");
    }
    assert_eq!(stack.stored_order(&id).await.unwrap(), before);
}

/// The fulfillment service ships orders, so it reads every one (GET, history, lists,
/// addresses included), but it moves them only to `shipped` and `delivered`: asking for
/// anything else is 403 whatever the order's status, before any no-op, and the answer
/// of every route agrees.
#[tokio::test]
async fn the_fulfillment_service_reads_every_order_and_only_ships_them() {
    let stack = Stack::new().await;
    let id = order_in(&stack, OWNER, "to-ship", "pending").await;
    let before = stack.stored_order(&id).await.unwrap();
    let warehouse = fulfillment();

    let got = stack.send(get(&id, &warehouse)).await;
    assert_eq!(got.status, 200, "{got:?}");
    assert_eq!(got.body["user_id"], OWNER);
    assert_eq!(got.body["shipping_address"]["city"], "New York");
    assert_eq!(got.header("etag"), Some("\"1\""));
    let trail = stack.send(history(&id, &warehouse)).await;
    assert_eq!(trail.status, 200, "{trail:?}");
    assert_eq!(trail.body["history"][0]["actor"], OWNER);
    for query in ["", "?user_id=alice", "?status=pending"] {
        let listed = stack
            .send(Call::new("GET", &format!("/api/orders{query}")).bearer(&warehouse))
            .await;
        assert_eq!(listed.status, 200, "{query}: {listed:?}");
        let ids: Vec<_> = listed.body["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["order_id"].clone())
            .collect();
        assert_eq!(ids, [json!(id)], "{query}");
    }

    // The no-op that used to answer 200 with the whole order is refused like every other
    // move the role never makes.
    for status in ["pending", "confirmed", "cancelled"] {
        let reply = stack
            .send(put_status(&id, &json!({ "status": status }), &warehouse))
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (403, "forbidden"),
            "{status}: {reply:?}"
        );
        assert!(!reply.text.contains("New York"), "{}", reply.text);
    }
    let cancel = stack.send(delete(&id, &warehouse)).await;
    assert_eq!(
        (cancel.status, cancel.code()),
        (403, "forbidden"),
        "{cancel:?}"
    );
    assert_eq!(stack.stored_order(&id).await.unwrap(), before);

    stack.advance(&id, &["confirmed"]).await;
    let shipped = stack
        .send(put_status(&id, &json!({ "status": "shipped" }), &warehouse))
        .await;
    assert_eq!(shipped.status, 200, "{shipped:?}");
    assert_eq!(shipped.body["shipping_address"]["city"], "New York");
}

/// Someone else's order does not exist as far as a customer can tell: GET, history and
/// DELETE are 404, exactly as for an order that does not exist. Admins see every order.
#[tokio::test]
async fn other_peoples_orders_are_not_found() {
    let stack = Stack::new().await;
    let id = order_in(&stack, OWNER, "private", "pending").await;
    let before = stack.stored_order(&id).await.unwrap();
    let bob = customer("bob");
    for call in [get(&id, &bob), history(&id, &bob), delete(&id, &bob)] {
        let reply = stack.send(call).await;
        assert_eq!(reply.status, 404, "{reply:?}");
        assert_eq!(reply.code(), "order_not_found");
        assert!(!reply.text.contains("alice"), "{}", reply.text);
    }
    assert_eq!(stack.stored_order(&id).await.unwrap(), before);

    for bearer in [admin(), customer(OWNER)] {
        let reply = stack.send(get(&id, &bearer)).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.body["order_id"], id.as_str());
        assert_eq!(reply.body["user_id"], OWNER);
        assert_eq!(reply.header("etag"), Some("\"1\""));
        let trail = stack.send(history(&id, &bearer)).await;
        assert_eq!(trail.status, 200, "{trail:?}");
    }
}

/// An unknown order id and something that is not an order id at all are both 404, for
/// every endpoint that names an order.
#[tokio::test]
async fn unknown_and_malformed_order_ids_are_not_found() {
    let stack = Stack::new().await;
    let unknown = "ORD0000000000000000";
    for id in [unknown, "not-an-order", "ORD12345", "ord0000000000000000"] {
        let calls = [
            get(id, &admin()),
            get(id, &customer(OWNER)),
            history(id, &admin()),
            delete(id, &admin()),
            delete(id, &customer(OWNER)),
            put_status(id, &json!({ "status": "confirmed" }), &admin()),
            put_status(id, &json!({ "status": "shipped" }), &fulfillment()),
            put_status(id, &json!({ "status": "pending" }), &admin()),
        ];
        for call in calls {
            let reply = stack.send(call).await;
            assert_eq!(reply.status, 404, "{id}: {reply:?}");
            assert_eq!(reply.code(), "order_not_found", "{id}");
        }
    }
    assert!(stack.stored_orders().await.is_empty());
}

/// No token, a token that is not a JWT, one signed with another secret, a tampered one
/// and an expired one are all 401 problems with a `WWW-Authenticate: Bearer` challenge.
#[tokio::test]
async fn requests_without_a_valid_token_are_unauthorized() {
    let stack = Stack::new().await;
    let id = order_in(&stack, OWNER, "auth", "pending").await;
    let before = stack.stored_order(&id).await.unwrap();

    let valid = customer(OWNER);
    let (signed, _) = valid.rsplit_once('.').unwrap();
    let (header, _) = signed.split_once('.').unwrap();
    let admin_claims = base64url(br#"{"sub":"alice","scope":"orders:admin","exp":99999999999}"#);
    let tampered = format!(
        "{header}.{admin_claims}.{}",
        valid.rsplit_once('.').unwrap().1
    );
    let other_secret = orders::auth::issue_hs256_token(
        b"some-other-secret-that-is-32-bytes-long",
        OWNER,
        "",
        std::time::Duration::from_secs(600),
    );
    let expired = hs256_token(&json!({ "sub": OWNER, "iat": 1_700_000_000, "exp": 1_700_000_600 }));

    let bearers = [
        None,
        Some("Bearer ".to_string()),
        Some("Bearer not.a.jwt".to_string()),
        Some("Basic YWxpY2U6c2VjcmV0".to_string()),
        Some(format!("Bearer {other_secret}")),
        Some(format!("Bearer {tampered}")),
        Some(format!("Bearer {expired}")),
    ];
    for authorization in bearers {
        let with = |call: Call| match &authorization {
            Some(value) => call.header("authorization", value),
            None => call,
        };
        let calls = [
            with(Call::new("GET", &format!("/api/orders/{id}"))),
            with(Call::new("GET", &format!("/api/orders/{id}/history"))),
            with(Call::new("GET", "/api/orders")),
            with(Call::new("DELETE", &format!("/api/orders/{id}"))),
            with(
                Call::new("PUT", &format!("/api/orders/{id}/status"))
                    .json(&json!({ "status": "confirmed" })),
            ),
        ];
        for call in calls {
            let reply = stack.send(call).await;
            assert_eq!(reply.status, 401, "{authorization:?}: {reply:?}");
            assert_eq!(reply.code(), "unauthorized");
            assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
            assert_eq!(
                reply.header("content-type"),
                Some("application/problem+json")
            );
        }
    }
    assert_eq!(stack.stored_order(&id).await.unwrap(), before);

    // The hand-made signer agrees with the product's, so "expired" above is only expired.
    let fresh = hs256_token(&json!({ "sub": OWNER, "exp": 99_999_999_999u64 }));
    assert_eq!(stack.send(get(&id, &fresh)).await.status, 200);
}

// ---------------------------------------------------------------------------------------
// 8-9. The audit trail and money.
// ---------------------------------------------------------------------------------------

/// The history is the whole story: one entry per change, each chained from the previous
/// status, with who made it, when (never going backwards) and why.
#[tokio::test]
async fn history_records_every_change_in_order() {
    let stack = Stack::new().await;
    let id = order_in(&stack, OWNER, "story", "pending").await;
    let steps = [
        (json!({ "status": "confirmed", "reason": "paid" }), admin()),
        (json!({ "status": "shipped" }), fulfillment()),
        (json!({ "status": "delivered" }), fulfillment()),
    ];
    for (body, bearer) in steps {
        let reply = stack.send(put_status(&id, &body, &bearer)).await;
        assert_eq!(reply.status, 200, "{body}: {reply:?}");
    }

    // Staff see who did what and why.
    let reply = stack.send(history(&id, &admin())).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["order_id"], id.as_str());
    let entries = reply.body["history"].as_array().unwrap();
    let expected = [
        (1, Value::Null, "pending", OWNER, None),
        (2, json!("pending"), "confirmed", "admin", Some("paid")),
        (3, json!("confirmed"), "shipped", WAREHOUSE, None),
        (4, json!("shipped"), "delivered", WAREHOUSE, None),
    ];
    check_trail(entries, &expected);
    assert_eq!(
        stack.send(history(&id, &fulfillment())).await.body,
        reply.body
    );

    // The customer sees the same story told by roles: no staff ids, no staff notes.
    let mine = stack.send(history(&id, &customer(OWNER))).await;
    assert_eq!(mine.status, 200, "{mine:?}");
    check_trail(
        mine.body["history"].as_array().unwrap(),
        &[
            (1, Value::Null, "pending", "you", None),
            (2, json!("pending"), "confirmed", "support", None),
            (3, json!("confirmed"), "shipped", "fulfillment", None),
            (4, json!("shipped"), "delivered", "fulfillment", None),
        ],
    );
    assert!(
        !mine.text.contains("admin") && !mine.text.contains(WAREHOUSE),
        "{}",
        mine.text
    );
    // The staff's reason is not shown; what the change did to the payment is.
    assert_eq!(
        mine.body["history"][1]["payment_status"], "paid",
        "{}",
        mine.text
    );
    assert!(
        mine.body["history"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e.get("reason").is_none()),
        "{}",
        mine.text
    );

    // A customer's own words stay in its view.
    let own = order_in(&stack, OWNER, "story-own", "pending").await;
    let cancel = stack
        .send(delete(&own, &customer(OWNER)).json(&json!({ "reason": "ordered twice" })))
        .await;
    assert_eq!(cancel.status, 200, "{cancel:?}");
    let mine = stack.send(history(&own, &customer(OWNER))).await;
    assert_eq!(mine.body["history"][1]["actor"], "you");
    assert_eq!(mine.body["history"][1]["reason"], "ordered twice");
    // Fixed-width UTC timestamps: text order is time order.
    let times: Vec<&str> = entries.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let order = stack.send(get(&id, &admin())).await;
    assert_eq!(order.body["created_at"], times[0]);
    assert_eq!(order.body["updated_at"], times[3]);
    assert_eq!(order.body["version"], 4);
}

fn check_trail(entries: &[Value], expected: &[(u64, Value, &str, &str, Option<&str>)]) {
    assert_eq!(entries.len(), expected.len(), "{entries:?}");
    for (entry, (version, from, to, actor, reason)) in entries.iter().zip(expected) {
        assert_eq!(entry["version"], *version, "{entry}");
        assert_eq!(entry["from"], *from, "{entry}");
        assert_eq!(entry["to"], *to, "{entry}");
        assert_eq!(entry["actor"], *actor, "{entry}");
        match reason {
            Some(reason) => assert_eq!(entry["reason"], *reason, "{entry}"),
            None => assert!(entry.get("reason").is_none(), "{entry}"),
        }
    }
}

/// Three items at 0.10 cost exactly 0.30: stored as 30 minor units and rendered `0.30`,
/// never a float's 0.30000000000000004.
#[tokio::test]
async fn money_is_exact_end_to_end() {
    let stack = Stack::new().await;
    stack
        .put_cart("dimes", OWNER, &[("p-dime", "Dime", 3, "0.10")])
        .await;
    let created = stack
        .send(
            Call::new("POST", "/api/orders")
                .bearer(&customer(OWNER))
                .json(&checkout("dimes")),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.body["order_id"].as_str().unwrap();

    let reply = stack.send(get(id, &customer(OWNER))).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.text.contains(r#""total":0.30"#), "{}", reply.text);
    assert!(reply.text.contains(r#""price":0.10"#), "{}", reply.text);
    assert_eq!(reply.body["currency"], "USD");
    let stored = stack.stored_order(id).await.unwrap();
    assert_eq!(stored["total"].as_n().unwrap(), "30");

    // A move re-renders the same exact amount.
    let moved = stack.set_status(id, "confirmed", &admin()).await;
    assert!(moved.text.contains(r#""total":0.30"#), "{}", moved.text);
}

/// Signs any claims with the test secret (the product mints only live tokens).
fn hs256_token(claims: &Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), claims, &key).unwrap()
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
