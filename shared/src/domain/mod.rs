//! The order domain: what an order is, how it may change, what a valid checkout looks
//! like, stock and webhook subscriptions. Nothing here knows about HTTP, Lambda or
//! DynamoDB.

pub mod checkout;
pub mod contact;
pub mod countries;
pub mod invoice;
pub mod lifecycle;
pub mod money;
pub mod notification;
pub mod order;
pub mod principal;
pub mod rate_limit;
pub mod stock;
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
pub use principal::Principal;
pub use rate_limit::{RateLimit, Window};
pub use validation::{FieldError, FieldErrors};
