//! The order and the facts it is made of.

use std::fmt;

use time::OffsetDateTime;

use super::billing::{Pricing, TaxLine, Totals};
use super::contact::Contact;
use super::fulfillment::{LabelFailure, Return, Shipment};
use super::money::Money;
use super::payment::Payment;
pub use super::payment::PaymentStatus;

/// `ORD` followed by 16 characters of Crockford base32.
///
/// Derived from the cart id, so that one cart can only ever become one order: two
/// checkouts of the same cart name the same order and the store's conditional put
/// lets exactly one of them in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrderId(String);

const ORDER_ID_PREFIX: &str = "ORD";
const ORDER_ID_CHARS: usize = 16;
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl OrderId {
    pub fn for_cart(cart_id: &str) -> Self {
        let digest =
            ring::digest::digest(&ring::digest::SHA256, format!("cart:{cart_id}").as_bytes());
        // 16 base32 characters = 80 bits of the hash.
        let mut bits: u128 = 0;
        for byte in &digest.as_ref()[..10] {
            bits = (bits << 8) | u128::from(*byte);
        }
        let mut id = String::from(ORDER_ID_PREFIX);
        for i in (0..ORDER_ID_CHARS).rev() {
            id.push(CROCKFORD[((bits >> (i * 5)) & 31) as usize] as char);
        }
        OrderId(id)
    }

    /// Accepts only what `for_cart` can produce, so a path segment that is not an
    /// order id never reaches the store.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix(ORDER_ID_PREFIX)?;
        (rest.len() == ORDER_ID_CHARS && rest.bytes().all(|b| CROCKFORD.contains(&b)))
            .then(|| OrderId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The part a caller plays towards one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The customer whose order it is.
    Owner,
    /// The fulfillment service (`orders:fulfill`).
    Fulfillment,
    /// Support and back office (`orders:admin`).
    Admin,
    /// The payment provider's notices (actor `payments`).
    Payments,
    /// The service itself: the expiry of unpaid orders (actor `system`).
    System,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Fulfillment => "fulfillment",
            Role::Admin => "admin",
            Role::Payments => "payments",
            Role::System => "system",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        [
            Role::Owner,
            Role::Fulfillment,
            Role::Admin,
            Role::Payments,
            Role::System,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }
}

named_enum! {
    /// Where an order is in its lifecycle (`lifecycle` has the moves between them).
    OrderStatus {
        Pending => "pending",
        Confirmed => "confirmed",
        Shipped => "shipped",
        Delivered => "delivered",
        Cancelled => "cancelled",
    }
}

named_enum! {
    /// Where the parcel is. `processing`/`backordered` are set by fulfillment.
    ShippingStatus {
        NotStarted => "not_started",
        Processing => "processing",
        Backordered => "backordered",
        Shipped => "shipped",
        Delivered => "delivered",
        Cancelled => "cancelled",
        PartiallyShipped => "partially_shipped",
        PartiallyDelivered => "partially_delivered",
        Exception => "exception",
        LabelFailed => "label_failed",
    }
}

named_enum! {
    /// How the customer intends to pay. Card details never reach this service.
    PaymentMethod {
        CreditCard => "credit_card",
        DebitCard => "debit_card",
        Paypal => "paypal",
        ApplePay => "apple_pay",
        GooglePay => "google_pay",
        BankTransfer => "bank_transfer",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineItem {
    pub product_id: String,
    pub name: String,
    pub quantity: u32,
    /// Unit price, taken from the cart.
    pub price: Money,
    /// The line's share of the order's discounts (zero without any).
    pub discount: Money,
    /// The line's taxes, as the cart computed them.
    pub tax_lines: Vec<TaxLine>,
}

impl LineItem {
    /// `price × quantity`; checkout bounded both, so it fits.
    pub fn value(&self) -> Money {
        Money::from_minor(
            self.price.minor() * i64::from(self.quantity),
            self.price.currency(),
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippingAddress {
    pub name: String,
    pub address: String,
    pub city: String,
    pub state: Option<String>,
    pub zip: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

/// One entry of the audit trail. The status it left is the previous entry's
/// `status`, so it is derived on reading rather than stored twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub at: OffsetDateTime,
    /// The `sub` of whoever made the change.
    pub actor: String,
    /// The part the actor played: a customer sees this, never a staff member's `sub`.
    pub role: Role,
    /// The order's status after the change.
    pub status: OrderStatus,
    /// The shipping status the change set, if it set one.
    pub shipping_status: Option<ShippingStatus>,
    /// The payment status the change set, if it set one.
    pub payment_status: Option<PaymentStatus>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: OrderId,
    pub user_id: String,
    pub cart_id: String,
    pub status: OrderStatus,
    pub payment_status: PaymentStatus,
    pub shipping_status: ShippingStatus,
    pub payment_method: PaymentMethod,
    pub items: Vec<LineItem>,
    /// Shipping, discounts and whether prices include taxes.
    pub pricing: Pricing,
    /// What the customer pays: see [`Totals`].
    pub total: Money,
    pub shipping_address: ShippingAddress,
    pub tracking_number: Option<String>,
    pub carrier: Option<String>,
    /// The online payment, when the order is paid through the provider.
    pub payment: Option<Payment>,
    /// Where messages about the order go (owner and admins only; not in events).
    pub contact: Contact,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Bumped by every change; equal to the number of history entries.
    pub version: u64,
    pub history: Vec<HistoryEntry>,
    /// Its parcels, oldest first (`domain::fulfillment`).
    pub shipments: Vec<Shipment>,
    /// Why its automatic label was refused, while it waits for a person to ship it.
    pub label_failure: Option<LabelFailure>,
    /// Its returns, oldest first (`domain::fulfillment::returns`).
    pub returns: Vec<Return>,
}

impl Order {
    /// The order's subtotal, discount, shipping and tax totals, and its total.
    pub fn totals(&self) -> Totals {
        Totals::of(
            self.items
                .iter()
                .map(|i| (i.value(), i.tax_lines.as_slice())),
            &self.pricing,
            self.total.currency(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_are_stable_per_cart_and_parse_back() {
        let a = OrderId::for_cart("abc123");
        assert_eq!(a, OrderId::for_cart("abc123"));
        assert_ne!(a, OrderId::for_cart("abc124"));
        assert_eq!(a.as_str().len(), 3 + 16);
        assert_eq!(OrderId::parse(a.as_str()), Some(a));
        assert_eq!(OrderId::parse("ORD12345"), None);
        assert_eq!(OrderId::parse("ORDabcdefghjkmnpqrst"), None);
    }
}
