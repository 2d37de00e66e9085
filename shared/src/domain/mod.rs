//! The order domain: what an order is, how it may change, what a valid checkout looks
//! like, stock and webhook subscriptions. Nothing here knows about HTTP, Lambda or
//! DynamoDB.

/// Generates `as_str`/`parse` for a closed set of snake_case names.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod billing;
pub mod checkout;
pub mod contact;
pub mod countries;
pub mod fulfillment;
pub mod invoice;
pub mod lifecycle;
pub mod money;
pub mod notification;
pub mod order;
pub mod payment;
pub mod principal;
pub mod privacy;
pub mod random;
pub mod rate_limit;
pub mod stock;
pub mod suppression;
pub mod time;
pub mod validation;
pub mod webhook;

pub use checkout::{AddressInput, Cart, CartLine, CartProblem, Checkout, CheckoutInput};
pub use contact::{Contact, ContactInput};
pub use lifecycle::{Refusal, Role, StatusChange, TRANSITIONS, Transition};
pub use money::{Currency, Money};
pub use order::{
    HistoryEntry, LineItem, Order, OrderId, OrderStatus, PaymentMethod, PaymentStatus,
    ShippingAddress, ShippingStatus,
};
pub use payment::{Payment, Refund};
pub use principal::Principal;
pub use rate_limit::{RateLimit, Window};
pub use validation::{FieldError, FieldErrors};
