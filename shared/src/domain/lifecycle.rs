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

use super::order::{HistoryEntry, Order, OrderStatus, PaymentStatus, ShippingStatus};

/// The part a caller plays towards one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The customer whose order it is.
    Owner,
    /// The fulfillment service (`orders:fulfill`).
    Fulfillment,
    /// Support and back office (`orders:admin`).
    Admin,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Fulfillment => "fulfillment",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        [Role::Owner, Role::Fulfillment, Role::Admin]
            .into_iter()
            .find(|r| r.as_str() == text)
    }
}

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
        allowed: &[Admin],
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
        allowed: &[Owner, Admin],
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

/// What else changes on an order when it arrives at a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SideEffects {
    pub payment_status: Option<PaymentStatus>,
    pub shipping_status: Option<ShippingStatus>,
}

impl StatusChange {
    /// Payment is recorded on confirmation; a cancellation leaves the payment status
    /// alone, since refunding is the payment service's act, not ours.
    pub fn side_effects(&self) -> SideEffects {
        match self.to {
            Pending => SideEffects::default(),
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

    pub fn history_entry(&self) -> HistoryEntry {
        HistoryEntry {
            at: self.at,
            actor: self.actor.clone(),
            role: self.role,
            status: self.to,
            shipping_status: self.side_effects().shipping_status,
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
}
