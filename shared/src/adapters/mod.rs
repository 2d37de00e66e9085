//! Adapters: the ports implemented on AWS and HTTP.

pub mod aws;
pub mod cart_api;
pub mod cart_table;
pub mod event_bus;
pub mod inventory_table;
pub mod order_item;
pub mod order_table;
pub mod shipping;
pub mod tls;
pub mod webhook_queue;
pub mod webhook_sender;
pub mod webhook_table;

pub use cart_api::CartApi;
pub use cart_table::CartTable;
pub use order_table::DynamoOrderStore;
