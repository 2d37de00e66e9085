//! The order domain: what an order is, how it may change, and what a valid
//! checkout looks like. Nothing here knows about HTTP, Lambda or DynamoDB.

pub mod checkout;
pub mod countries;
pub mod lifecycle;
pub mod money;
pub mod order;
pub mod principal;

pub use checkout::{
    AddressInput, Cart, CartLine, CartProblem, Checkout, CheckoutInput, FieldError, FieldErrors,
};
pub use lifecycle::{OrderStatus, Refusal, Role, StatusChange, TRANSITIONS, Transition};
pub use money::{Currency, Money};
pub use order::{
    HistoryEntry, LineItem, Order, OrderId, PaymentMethod, PaymentStatus, ShippingAddress,
    ShippingStatus,
};
pub use principal::Principal;
