//! The order service: reading, listing, moving and cancelling orders, over the order
//! store. It decides what each outcome means; the HTTP layer only translates.
//! Placing an order is `checkout`'s.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;

use crate::domain::Principal;
use crate::domain::fulfillment::shipment::{all_delivered, remaining_parcel, tracked};
use crate::domain::lifecycle::{reachable, sources};
use crate::domain::{
    CartProblem, FieldErrors, Order, OrderId, OrderStatus, RateLimit, Refusal, Role, StatusChange,
};
use crate::ports::{
    CartSourceError, ChangeOutcome, OrderQuery, OrderStore, PagePosition, ShipmentStore, StoreError,
};
use crate::ports::{Metric, MetricSet, Metrics, NoMetrics};

#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("the request is invalid")]
    Invalid(FieldErrors),
    #[error("{0}")]
    Forbidden(String),
    #[error("order not found")]
    NotFound,
    #[error("cart {0} was not found")]
    CartNotFound(String),
    #[error(transparent)]
    Cart(#[from] CartProblem),
    #[error("cart {cart_id} already became order {order_id}")]
    CartAlreadyOrdered { cart_id: String, order_id: OrderId },
    #[error("order {} is {}; it cannot become {to}", current.id, current.status)]
    Conflict {
        current: Box<Order>,
        to: OrderStatus,
    },
    #[error("order {} is at version {}", current.id, current.version)]
    StaleVersion { current: Box<Order> },
    #[error(
        "order {} is backordered: no stock is reserved for it, so it cannot be shipped until fulfillment reserves it",
        current.id
    )]
    Backordered { current: Box<Order> },
    #[error("this Idempotency-Key was used with a different request")]
    KeyReused,
    #[error("at most {} orders per {} seconds may be created; retry in {retry_after} s", limit.count, limit.window)]
    CreateLimitReached { limit: RateLimit, retry_after: u64 },
    #[error("a concurrent request is changing this order")]
    Contention,
    #[error("the cursor is not valid for this query")]
    BadCursor,
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    CartSource(#[from] CartSourceError),
    #[error(transparent)]
    Payment(#[from] crate::ports::PaymentError),
}

impl From<StoreError> for OrderError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Contention => OrderError::Contention,
            StoreError::BadPosition => OrderError::BadCursor,
            other => OrderError::Store(other),
        }
    }
}

/// A status change that was answered; `changed` is false for a no-op.
#[derive(Debug)]
pub struct Moved {
    pub order: Order,
    pub changed: bool,
}

/// What the caller asks of a status change, beyond the target.
#[derive(Debug, Clone, Default)]
pub struct MoveRequest {
    pub reason: Option<String>,
    pub tracking_number: Option<String>,
    pub carrier: Option<String>,
    pub expected_version: Option<u64>,
}

pub struct Listed {
    pub orders: Vec<Order>,
    pub next_cursor: Option<String>,
}

pub struct OrderService {
    store: Arc<dyn OrderStore>,
    /// Signs list cursors; only the function that lists is given one.
    cursor_key: Option<ring::hmac::Key>,
    metrics: Arc<dyn Metrics>,
    /// Where shipping and delivering also record the order's parcels.
    shipments: Option<Arc<dyn ShipmentStore>>,
}

impl OrderService {
    pub fn new(store: Arc<dyn OrderStore>) -> Self {
        OrderService {
            store,
            cursor_key: None,
            metrics: Arc::new(NoMetrics),
            shipments: None,
        }
    }

    /// Lists sign their cursors with `secret` (`CURSOR_SECRET`); without it `list`
    /// refuses to run.
    pub fn with_cursor_secret(mut self, secret: &[u8]) -> Self {
        self.cursor_key = Some(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret));
        self
    }

    /// `PUT /status` to `shipped` ships everything unshipped as one parcel, and to
    /// `delivered` marks every parcel delivered, in the same conditional write.
    pub fn with_shipments(mut self, shipments: Arc<dyn ShipmentStore>) -> Self {
        self.shipments = Some(shipments);
        self
    }

    /// Reports `RefusedMoves` by reason.
    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// An order the caller may see; anyone else's is simply not found.
    pub async fn get(&self, caller: &Principal, id: &str) -> Result<Order, OrderError> {
        let id = OrderId::parse(id).ok_or(OrderError::NotFound)?;
        match self.store.get(&id).await? {
            Some(order) if may_read(caller, &order) => Ok(order),
            _ => Err(OrderError::NotFound),
        }
    }

    /// `PUT /status`: the moves of admins and of the fulfillment service.
    pub async fn change_status(
        &self,
        caller: &Principal,
        id: &str,
        to: OrderStatus,
        request: MoveRequest,
    ) -> Result<Moved, OrderError> {
        let role = if caller.admin {
            Role::Admin
        } else if caller.fulfillment {
            Role::Fulfillment
        } else {
            return Err(OrderError::Forbidden(
                "customers change an order only by cancelling it".into(),
            ));
        };
        self.apply(caller, id, to, role, request).await
    }

    /// `DELETE`: the owner cancels a pending order, an admin a pending or confirmed one.
    pub async fn cancel(
        &self,
        caller: &Principal,
        id: &str,
        reason: Option<String>,
    ) -> Result<Moved, OrderError> {
        let role = if caller.admin {
            Role::Admin
        } else if caller.fulfillment {
            // The fulfillment service ships orders; it never cancels one.
            Role::Fulfillment
        } else {
            Role::Owner
        };
        let request = MoveRequest {
            reason,
            ..MoveRequest::default()
        };
        self.apply(caller, id, OrderStatus::Cancelled, role, request)
            .await
    }

    /// Makes the move and says how it went, in the log and, when refused, as a metric.
    async fn apply(
        &self,
        caller: &Principal,
        id: &str,
        to: OrderStatus,
        role: Role,
        request: MoveRequest,
    ) -> Result<Moved, OrderError> {
        let result = self.make_move(caller, id, to, role, request).await;
        let outcome = match &result {
            Ok(Moved { changed: true, .. }) => "changed",
            Ok(Moved { changed: false, .. }) => "no_op",
            Err(err) => refusal_reason(err).unwrap_or("failed"),
        };
        tracing::info!(order_id = %id, actor = %caller.user_id, role = role.as_str(), to = to.as_str(), outcome, "status change");
        if let Some(reason) = result.as_ref().err().and_then(refusal_reason) {
            self.metrics
                .record(MetricSet::of(Metric::RefusedMoves, 1.0).by("reason", reason));
        }
        result
    }

    async fn make_move(
        &self,
        caller: &Principal,
        id: &str,
        to: OrderStatus,
        role: Role,
        request: MoveRequest,
    ) -> Result<Moved, OrderError> {
        let id = OrderId::parse(id).ok_or(OrderError::NotFound)?;
        if to != OrderStatus::Shipped {
            let mut errors = FieldErrors::default();
            for (field, value) in [
                ("tracking_number", &request.tracking_number),
                ("carrier", &request.carrier),
            ] {
                if value.is_some() {
                    errors.add(field, "only goes with status shipped");
                }
            }
            if !errors.is_empty() {
                return Err(OrderError::Invalid(errors));
            }
        }
        let change = StatusChange {
            to,
            role,
            actor: caller.user_id.clone(),
            reason: request.reason,
            tracking_number: request.tracking_number,
            carrier: request.carrier,
            expected_version: request.expected_version,
            at: OffsetDateTime::now_utc(),
        };
        let from = sources(to, role);
        let outcome = if from.is_empty() {
            // Authorization comes before any no-op: a role with no move to `to` is
            // refused whatever the order's status. Only admins get the read that
            // tells a `pending` no-op from a 409.
            if reachable(to) || role != Role::Admin {
                return Err(OrderError::Forbidden(format!(
                    "your role cannot move orders to {to}"
                )));
            }
            // Nothing leads to `to` (it is `pending`): the only possible answers
            // are 404, a no-op or 409, and all of them need the order as it is.
            ChangeOutcome::Refused(self.store.get(&id).await?.map(Box::new))
        } else if let Some(shipments) = self
            .shipments
            .as_ref()
            .filter(|_| matches!(to, OrderStatus::Shipped | OrderStatus::Delivered))
        {
            self.move_parcels(shipments.as_ref(), &id, &change, &from)
                .await?
        } else {
            self.store.change_status(&id, &change, &from).await?
        };
        match outcome {
            ChangeOutcome::Changed(order) => Ok(Moved {
                order: *order,
                changed: true,
            }),
            ChangeOutcome::Refused(current) => {
                let current = current.map(|o| *o);
                match change.explain_refusal(current) {
                    Refusal::NotFound => Err(OrderError::NotFound),
                    Refusal::AlreadyThere(order) => Ok(Moved {
                        order,
                        changed: false,
                    }),
                    Refusal::StaleVersion(order) => Err(OrderError::StaleVersion {
                        current: Box::new(order),
                    }),
                    Refusal::NotAllowed(order) => Err(OrderError::Conflict {
                        current: Box::new(order),
                        to,
                    }),
                    Refusal::Backordered(order) => Err(OrderError::Backordered {
                        current: Box::new(order),
                    }),
                    Refusal::Raced(_) => Err(OrderError::Contention),
                }
            }
        }
    }

    /// A move to `shipped` or `delivered` that carries the parcels along: planned
    /// from the order as read and written on its version, so it is refused (and
    /// explained from the order as found) exactly when `change_status` would be, or
    /// when the order changed in between.
    async fn move_parcels(
        &self,
        shipments: &dyn ShipmentStore,
        id: &OrderId,
        change: &StatusChange,
        from: &[OrderStatus],
    ) -> Result<ChangeOutcome, OrderError> {
        let Some(order) = self.store.get(id).await? else {
            return Ok(ChangeOutcome::Refused(None));
        };
        let movable = from.contains(&order.status)
            && !change.barred_shipping().contains(&order.shipping_status)
            && change.expected_version.is_none_or(|v| v == order.version);
        if !movable {
            return Ok(ChangeOutcome::Refused(Some(Box::new(order))));
        }
        let mut after = order.clone();
        let mut indexed = Vec::new();
        if change.to == OrderStatus::Shipped {
            let parcel = remaining_parcel(
                &order,
                change.carrier.as_deref(),
                change.tracking_number.as_deref(),
                change.at,
            );
            if let Some(parcel) = parcel {
                indexed.extend(tracked(&parcel));
                after.shipments.push(parcel);
            }
        } else {
            after.shipments = all_delivered(&order, change.at);
        }
        after.status = change.to;
        if let Some(shipping) = change.side_effects().shipping_status {
            after.shipping_status = shipping;
        }
        after.version += 1;
        after.updated_at = change.at;
        after.history.push(change.history_entry());
        if change.tracking_number.is_some() {
            after.tracking_number = change.tracking_number.clone();
        }
        if change.carrier.is_some() {
            after.carrier = change.carrier.clone();
        }
        Ok(shipments.record_shipping(&after, &indexed).await?)
    }

    /// A page of the orders the caller may list, newest first.
    /// `query` holds the caller's filters; `cursor`, where the previous page ended.
    pub async fn list(
        &self,
        caller: &Principal,
        mut query: OrderQuery,
        cursor: Option<&str>,
    ) -> Result<Listed, OrderError> {
        query.user_id = match query.user_id.take() {
            Some(user) if user != caller.user_id && !reads_all(caller) => {
                return Err(OrderError::Forbidden(
                    "you may list only your own orders".into(),
                ));
            }
            Some(user) => Some(user),
            None if reads_all(caller) => None,
            None => Some(caller.user_id.clone()),
        };
        let Some(cursor_key) = &self.cursor_key else {
            return Err(OrderError::Store(StoreError::Other(
                "this function was given no CURSOR_SECRET: it does not list orders".into(),
            )));
        };
        // A cursor is bound to the caller and the filters it was issued for.
        let scope = format!(
            "{}|{:?}|{:?}|{:?}|{:?}",
            caller.user_id, query.user_id, query.status, query.created_after, query.created_before
        );
        query.after = cursor
            .map(|c| open_cursor(cursor_key, c, &scope))
            .transpose()?;
        let page = self.store.list(&query).await?;
        Ok(Listed {
            orders: page.orders,
            next_cursor: page.next.map(|p| seal_cursor(cursor_key, &p, &scope)),
        })
    }
}

/// Why a move was refused, as the problem code the caller gets; `None` when it was
/// not refused but failed (the store).
fn refusal_reason(err: &OrderError) -> Option<&'static str> {
    Some(match err {
        OrderError::Conflict { .. } => "invalid_transition",
        OrderError::StaleVersion { .. } => "version_mismatch",
        OrderError::Backordered { .. } => "backordered",
        OrderError::Contention => "concurrent_change",
        OrderError::Forbidden(_) => "forbidden",
        OrderError::NotFound => "order_not_found",
        OrderError::Invalid(_) => "validation_failed",
        _ => return None,
    })
}

/// A page position as the caller sees it: the position, and an HMAC binding it to
/// `scope` (the caller and the filters), so that it cannot be forged or reused.
pub(crate) fn seal_cursor(key: &ring::hmac::Key, position: &PagePosition, scope: &str) -> String {
    let tag = ring::hmac::sign(key, format!("{scope}\n{}", position.0).as_bytes());
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&position.0),
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    )
}

pub(crate) fn open_cursor(
    key: &ring::hmac::Key,
    cursor: &str,
    scope: &str,
) -> Result<PagePosition, OrderError> {
    let (body, tag) = cursor.split_once('.').ok_or(OrderError::BadCursor)?;
    let position = URL_SAFE_NO_PAD
        .decode(body)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(OrderError::BadCursor)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| OrderError::BadCursor)?;
    ring::hmac::verify(key, format!("{scope}\n{position}").as_bytes(), &tag)
        .map_err(|_| OrderError::BadCursor)?;
    Ok(PagePosition(position))
}

/// Admins and the fulfillment service (which ships orders, to their addresses) read
/// every order; a customer only its own. GET, history, list and the answer of a
/// status change all follow this one rule.
fn reads_all(caller: &Principal) -> bool {
    caller.admin || caller.fulfillment
}

fn may_read(caller: &Principal, order: &Order) -> bool {
    reads_all(caller) || order.user_id == caller.user_id
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> ring::hmac::Key {
        ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"test-cursor-secret")
    }

    /// A cursor changed in one place: a character replaced, inserted or removed.
    fn mutated(cursor: &str, at: usize, with: char, how: u8) -> String {
        let mut chars: Vec<char> = cursor.chars().collect();
        let at = at % (chars.len() + 1);
        match how % 3 {
            0 if at < chars.len() => chars[at] = with,
            1 => chars.insert(at, with),
            _ if at < chars.len() => {
                chars.remove(at);
            }
            _ => chars.push(with),
        }
        chars.into_iter().collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// What is sealed opens to the same position, under the same scope only.
        #[test]
        fn cursors_open_to_what_was_sealed(position in ".{0,80}", scope in ".{0,40}", other in ".{0,40}") {
            let cursor = seal_cursor(&key(), &PagePosition(position.clone()), &scope);
            prop_assert_eq!(open_cursor(&key(), &cursor, &scope).ok(), Some(PagePosition(position)));
            if other != scope {
                prop_assert!(open_cursor(&key(), &cursor, &other).is_err());
            }
        }

        /// Any change to a cursor is refused (as a bad cursor, never a panic).
        #[test]
        fn mutated_cursors_are_refused(
            position in "[ -~]{0,60}",
            at in any::<usize>(),
            with in prop::sample::select(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ é".chars().collect::<Vec<_>>()
            ),
            how in any::<u8>(),
        ) {
            let cursor = seal_cursor(&key(), &PagePosition(position), "user789|None");
            let changed = mutated(&cursor, at, with, how);
            if changed != cursor {
                prop_assert!(matches!(
                    open_cursor(&key(), &changed, "user789|None"),
                    Err(OrderError::BadCursor)
                ));
            }
        }

        /// No text opens without a panic; none opens without its tag.
        #[test]
        fn any_text_is_refused_without_panic(text in ".{0,120}") {
            prop_assert!(open_cursor(&key(), &text, "user789|None").is_err());
        }
    }
}
