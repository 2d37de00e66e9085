//! The DynamoDB side: one table holds orders, idempotency records, stock,
//! reservations and webhooks (`docs/data-design.md`); carts may have their own.

pub mod carts;
pub mod claims;
pub mod credit_notes;
pub mod inventory;
pub mod invoices;
pub mod messages;
pub mod numbering;
pub mod order_item;
pub mod orders;
pub mod payments;
pub mod privacy;
pub mod return_item;
pub mod returns;
pub mod shipment_item;
pub mod shipments;
pub mod stream;
pub mod suppressions;
pub mod webhooks;

pub use carts::CartTable;
pub use credit_notes::DynamoCreditNoteStore;
pub use inventory::DynamoInventory;
pub use invoices::DynamoInvoiceStore;
pub use messages::DynamoMessageLog;
pub use orders::DynamoOrderStore;
pub use webhooks::DynamoWebhookStore;
