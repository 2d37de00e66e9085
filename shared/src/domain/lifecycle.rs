//! The order lifecycle: one table of the moves that exist and who may make them.
//!
//! ```text
//! pending ──▶ confirmed ──▶ shipped ──▶ delivered
//!    │            │
//!    └──────┬─────┘
//!           ▼
//!       cancelled
//! ```

use time::OffsetDateTime;

pub use super::order::Role;
use super::order::{HistoryEntry, Order, OrderStatus, PaymentStatus, ShippingStatus};
use super::payment::UNPAID;

/// One move of the lifecycle and the roles allowed to make it.
#[derive(Debug, Clone, Copy)]
pub struct Transition {
    pub from: OrderStatus,
    pub to: OrderStatus,
    pub allowed: &'static [Role],
}

use OrderStatus::*;
use Role::*;

/// Every move there is. Anything not listed here is a conflict.
pub const TRANSITIONS: &[Transition] = &[
    Transition {
        from: Pending,
        to: Confirmed,
        allowed: &[Admin, Payments],
    },
    Transition {
        from: Confirmed,
        to: Shipped,
        allowed: &[Admin, Fulfillment],
    },
    Transition {
        from: Shipped,
        to: Delivered,
        allowed: &[Admin, Fulfillment],
    },
    Transition {
        from: Pending,
        to: Cancelled,
        allowed: &[Owner, Admin, System],
    },
    Transition {
        from: Confirmed,
        to: Cancelled,
        allowed: &[Admin],
    },
];

/// May `role` move an order from `from` to `to`?
pub fn allows(from: OrderStatus, to: OrderStatus, role: Role) -> bool {
    TRANSITIONS
        .iter()
        .any(|t| t.from == from && t.to == to && t.allowed.contains(&role))
}

/// The statuses from which `role` may move an order to `to`; the store's write
/// is conditioned on the order being in one of them.
pub fn sources(to: OrderStatus, role: Role) -> Vec<OrderStatus> {
    TRANSITIONS
        .iter()
        .filter(|t| t.to == to && t.allowed.contains(&role))
        .map(|t| t.from)
        .collect()
}

/// Can any role ever reach `to`, from anywhere?
pub fn reachable(to: OrderStatus) -> bool {
    TRANSITIONS.iter().any(|t| t.to == to)
}

/// A request to move one order to another status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub to: OrderStatus,
    pub role: Role,
    /// The caller's `sub`; as owner, the order must be theirs.
    pub actor: String,
    pub reason: Option<String>,
    pub tracking_number: Option<String>,
    pub carrier: Option<String>,
    /// From `If-Match`: the version the caller last saw.
    pub expected_version: Option<u64>,
    pub at: OffsetDateTime,
}

impl StatusChange {
    /// The payment statuses the order must be in for this move: the expiry sweep
    /// cancels only what is still unpaid, so a payment that lands first wins.
    pub fn required_payment(&self) -> &'static [PaymentStatus] {
        match self.role {
            System => &UNPAID,
            _ => &[],
        }
    }
}

/// What else changes on an order when it arrives at a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SideEffects {
    pub payment_status: Option<PaymentStatus>,
    pub shipping_status: Option<ShippingStatus>,
}

impl StatusChange {
    /// The side effects on an order without a provider payment: payment is recorded on
    /// confirmation; a cancellation leaves the payment status alone, since refunding is
    /// the payment service's act, not ours.
    pub fn side_effects(&self) -> SideEffects {
        self.side_effects_on(false)
    }

    /// The side effects on an order with a provider payment (`online_payment`) or
    /// without: a card order's payment status comes from the provider only, so a
    /// confirmation by hand (an admin's) confirms the order but claims no money; a
    /// payment that arrives later is recorded, and a cancellation refunds what was
    /// received or withdraws the intent.
    pub fn side_effects_on(&self, online_payment: bool) -> SideEffects {
        match self.to {
            Pending => SideEffects::default(),
            Confirmed if online_payment => SideEffects::default(),
            Confirmed => SideEffects {
                payment_status: Some(PaymentStatus::Paid),
                shipping_status: None,
            },
            Shipped => SideEffects {
                payment_status: None,
                shipping_status: Some(ShippingStatus::Shipped),
            },
            Delivered => SideEffects {
                payment_status: None,
                shipping_status: Some(ShippingStatus::Delivered),
            },
            Cancelled => SideEffects {
                payment_status: None,
                shipping_status: Some(ShippingStatus::Cancelled),
            },
        }
    }

    /// Shipping statuses that bar this move whatever the order status: an order
    /// fulfillment backordered has no stock reserved, so it cannot be shipped until
    /// a restock lets fulfillment move it to processing. (`not_started` may still
    /// ship: a person may fulfill an order by hand before or without the consumer.)
    pub fn barred_shipping(&self) -> &'static [ShippingStatus] {
        match self.to {
            Shipped => &[ShippingStatus::Backordered],
            _ => &[],
        }
    }

    pub fn history_entry(&self) -> HistoryEntry {
        self.history_entry_on(false)
    }

    /// The history entry of this change on an order with a provider payment or
    /// without ([`StatusChange::side_effects_on`]).
    pub fn history_entry_on(&self, online_payment: bool) -> HistoryEntry {
        let effects = self.side_effects_on(online_payment);
        HistoryEntry {
            at: self.at,
            actor: self.actor.clone(),
            role: self.role,
            status: self.to,
            shipping_status: effects.shipping_status,
            payment_status: effects.payment_status,
            reason: self.reason.clone(),
        }
    }

    /// Why a conditional write of this change was refused, given the order as the
    /// store found it (`None`: no such item).
    pub fn explain_refusal(&self, current: Option<Order>) -> Refusal {
        let Some(order) = current else {
            return Refusal::NotFound;
        };
        if self.role == Owner && order.user_id != self.actor {
            // Someone else's order does not exist, as far as this caller can tell.
            return Refusal::NotFound;
        }
        if order.status == self.to {
            // A retry of a move that already happened: answer as if it just did.
            return Refusal::AlreadyThere(order);
        }
        if self.expected_version.is_some_and(|v| v != order.version) {
            return Refusal::StaleVersion(order);
        }
        if allows(order.status, self.to, self.role)
            && self.barred_shipping().contains(&order.shipping_status)
        {
            return Refusal::Backordered(order);
        }
        if allows(order.status, self.to, self.role) {
            // The write raced another change and has not lost anything it knows
            // about; the caller may retry with the current state.
            return Refusal::Raced(order);
        }
        Refusal::NotAllowed(order)
    }
}

/// Fulfillment's progress on a confirmed order. Not a move of the lifecycle, but
/// recorded and published like one: one conditional write, one history entry, one
/// event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippingUpdate {
    pub to: ShippingStatus,
    pub actor: String,
    pub reason: Option<String>,
    pub at: OffsetDateTime,
}

impl ShippingUpdate {
    /// The shipping statuses fulfillment may move from to reach `to`; the order's own
    /// status must be `confirmed`.
    pub fn sources(&self) -> &'static [ShippingStatus] {
        match self.to {
            ShippingStatus::Processing => {
                &[ShippingStatus::NotStarted, ShippingStatus::Backordered]
            }
            ShippingStatus::Backordered => &[ShippingStatus::NotStarted],
            _ => &[],
        }
    }

    pub fn history_entry(&self) -> HistoryEntry {
        HistoryEntry {
            at: self.at,
            actor: self.actor.clone(),
            role: Fulfillment,
            status: Confirmed,
            shipping_status: Some(self.to),
            payment_status: None,
            reason: self.reason.clone(),
        }
    }
}

/// The meaning of a refused conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotFound,
    /// Already in the requested status: an idempotent no-op.
    AlreadyThere(Order),
    /// `If-Match` named another version.
    StaleVersion(Order),
    /// The lifecycle has no such move for this role from the current status.
    NotAllowed(Order),
    /// The move exists, but the order's stock is not reserved (backordered).
    Backordered(Order),
    /// The order changed between the condition being built and evaluated.
    Raced(Order),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_the_seed_diagram() {
        assert!(allows(Pending, Confirmed, Admin));
        assert!(!allows(Pending, Confirmed, Fulfillment));
        assert!(allows(Confirmed, Shipped, Fulfillment));
        assert!(allows(Shipped, Delivered, Fulfillment));
        assert!(allows(Pending, Cancelled, Owner));
        assert!(!allows(Confirmed, Cancelled, Owner));
        assert!(allows(Confirmed, Cancelled, Admin));
        assert!(!allows(Shipped, Cancelled, Admin));
        assert!(!allows(Delivered, Shipped, Admin));
        assert!(!reachable(Pending));
        assert_eq!(sources(Cancelled, Admin), vec![Pending, Confirmed]);
        assert_eq!(sources(Cancelled, Owner), vec![Pending]);
        assert!(sources(Confirmed, Owner).is_empty());
    }

    mod properties {
        use super::*;
        use crate::domain::money::{Currency, Money};
        use crate::domain::order::{LineItem, OrderId, PaymentMethod, ShippingAddress};
        use proptest::prelude::*;

        /// The seed's diagram, written out on its own: (from, to, role).
        const DIAGRAM: &[(OrderStatus, OrderStatus, Role)] = &[
            (Pending, Confirmed, Admin),
            (Pending, Confirmed, Payments),
            (Confirmed, Shipped, Admin),
            (Confirmed, Shipped, Fulfillment),
            (Shipped, Delivered, Admin),
            (Shipped, Delivered, Fulfillment),
            (Pending, Cancelled, Owner),
            (Pending, Cancelled, Admin),
            (Pending, Cancelled, System),
            (Confirmed, Cancelled, Admin),
        ];

        fn status() -> impl Strategy<Value = OrderStatus> {
            proptest::sample::select(OrderStatus::ALL)
        }

        fn role() -> impl Strategy<Value = Role> {
            proptest::sample::select(&[Owner, Fulfillment, Admin, Payments, System][..])
        }

        fn order(status: OrderStatus, user_id: String, version: u64) -> Order {
            let usd = Currency::from_code("USD").unwrap();
            let at = OffsetDateTime::UNIX_EPOCH;
            Order {
                id: OrderId::for_cart("abc123"),
                user_id,
                cart_id: "abc123".into(),
                status,
                payment_status: PaymentStatus::ALL[0],
                shipping_status: ShippingStatus::ALL[0],
                payment_method: PaymentMethod::ALL[0],
                items: vec![LineItem {
                    product_id: "p001".into(),
                    name: "USB Cable".into(),
                    quantity: 1,
                    price: Money::from_minor(1000, usd),
                    discount: Money::zero(usd),
                    tax_lines: vec![],
                }],
                pricing: Default::default(),
                total: Money::from_minor(1000, usd),
                shipping_address: ShippingAddress {
                    name: "Jane Doe".into(),
                    address: "123 Main St".into(),
                    city: "New York".into(),
                    state: None,
                    zip: "10001".into(),
                    country: "US".into(),
                },
                tracking_number: None,
                carrier: None,
                payment: None,
                contact: Default::default(),
                created_at: at,
                updated_at: at,
                version,
                history: vec![],
                shipments: vec![],
                label_failure: None,
                returns: vec![],
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// A move is allowed exactly when TRANSITIONS has it for the role, and
            /// TRANSITIONS is the seed's diagram.
            #[test]
            fn allowed_iff_in_transitions(from in status(), to in status(), role in role()) {
                let listed = TRANSITIONS
                    .iter()
                    .any(|t| t.from == from && t.to == to && t.allowed.contains(&role));
                prop_assert_eq!(allows(from, to, role), listed);
                prop_assert_eq!(listed, DIAGRAM.contains(&(from, to, role)));
                prop_assert_eq!(sources(to, role).contains(&from), listed);
            }

            /// Any refused write has an explanation, and the explanation fits the order.
            #[test]
            fn explain_refusal_never_panics(
                current in status(),
                to in status(),
                role in role(),
                owner in "user789|someone",
                version in 0u64..5,
                expected in proptest::option::of(0u64..5),
                found in any::<bool>(),
            ) {
                let change = StatusChange {
                    to,
                    role,
                    actor: "user789".into(),
                    reason: None,
                    tracking_number: None,
                    carrier: None,
                    expected_version: expected,
                    at: OffsetDateTime::UNIX_EPOCH,
                };
                let stored = found.then(|| order(current, owner.clone(), version));
                let refusal = change.explain_refusal(stored);
                match refusal {
                    Refusal::NotFound => {
                        prop_assert!(!found || (role == Owner && owner != "user789"));
                    }
                    Refusal::AlreadyThere(o) => prop_assert_eq!(o.status, to),
                    Refusal::StaleVersion(o) => prop_assert_ne!(Some(o.version), expected),
                    Refusal::Raced(o) => prop_assert!(allows(o.status, to, role)),
                    Refusal::NotAllowed(o) => prop_assert!(!allows(o.status, to, role)),
                    // Allowed by the table, held back by the parcel's state.
                    Refusal::Backordered(o) => prop_assert!(allows(o.status, to, role)),
                }
            }
        }
    }
}
