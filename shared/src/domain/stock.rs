//! Stock and its reservations: what fulfillment takes out of stock for an order.

/// A product and how many of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockLine {
    pub product_id: String,
    pub quantity: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveOutcome {
    Reserved,
    /// This order already has a reservation (reserved or released): nothing taken.
    AlreadyReserved,
    /// Not enough of these products: nothing taken.
    Short(Vec<Shortfall>),
    /// More distinct products than one atomic reservation can hold: nothing taken.
    TooLarge {
        products: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    pub product_id: String,
    pub wanted: u64,
    pub available: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseOutcome {
    Released,
    AlreadyReleased,
    NeverReserved,
}

/// What taking a shipped order's goods out of stock did. Goods that have left the
/// warehouse leave whatever the count says: nothing is refused for shortage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShippedOutcome {
    /// Taken now. `oversold`: the products the count was short of, taken down to zero;
    /// the units beyond it (`wanted - available`) are recorded as oversold.
    Taken { oversold: Vec<Shortfall> },
    /// This order already has a reservation (reserved or released): nothing taken.
    AlreadyReserved,
    /// More distinct products than one atomic reservation can hold: nothing taken.
    TooLarge { products: usize },
}

impl Shortfall {
    /// Units the count did not have.
    pub fn missing(&self) -> u64 {
        self.wanted.saturating_sub(self.available)
    }
}
