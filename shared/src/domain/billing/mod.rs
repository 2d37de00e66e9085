//! Billing: the money lines of an order (shipping, discounts, taxes), how amounts are
//! split over lines ([`allocate`], the one way), and the rates taxes are charged at.
//! Money itself (`Money`, `Currency`) is `domain::money`, shared by everyone.

pub mod allocation;
pub mod cart;
pub mod credit_note;
pub mod lines;
pub mod rate;
pub mod refund;

pub use allocation::allocate;
pub use cart::{CartCharges, CartDiscount, CartShipping, CartTaxLine, MemberError};
pub use credit_note::{CreditNote, CreditNoteDraft, CreditNoteNumber};
pub use lines::{Discount, Pricing, ShippingLine, TaxLine, Totals};
pub use rate::TaxRate;
pub use refund::{AllocationError, Parts, check_allocation, split_refund};
