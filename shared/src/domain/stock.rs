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
