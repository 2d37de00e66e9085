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

/// The most items a hot product's stock may be split over: every item of a split
/// product may appear in one reservation's transaction (at most 100 actions).
pub const MAX_STOCK_SHARDS: u32 = 32;

/// The item of a split product's stock that an order reserves from first: a stable
/// hash of the order id (FNV-1a), so that a redelivered order asks the same item
/// and concurrent orders spread over all of them.
pub fn first_shard(order_id: &str, shards: u32) -> u32 {
    let hash = order_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (hash % u64::from(shards.max(1))) as u32
}

/// How many of `wanted` units to take from each of a product's stock items, whose
/// counts are `counts`: as much as each has, starting with item `first` and going on
/// around, so that a dry item falls back on the others. `None` when all of them
/// together have fewer than `wanted`. Items taking nothing are left out.
pub fn plan_takes(counts: &[u64], first: usize, wanted: u64) -> Option<Vec<(usize, u64)>> {
    if counts.iter().sum::<u64>() < wanted {
        return None;
    }
    let mut left = wanted;
    let mut takes = Vec::new();
    for step in 0..counts.len() {
        if left == 0 {
            break;
        }
        let index = (first + step) % counts.len();
        let take = counts[index].min(left);
        if take > 0 {
            takes.push((index, take));
            left -= take;
        }
    }
    Some(takes)
}

/// `available` units spread over `shards` items as evenly as units allow (the first
/// items get the remainder).
pub fn split_evenly(available: u64, shards: u32) -> Vec<u64> {
    let shards = u64::from(shards.max(1));
    (0..shards)
        .map(|i| available / shards + u64::from(i < available % shards))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_order_takes_from_its_own_item_first() {
        assert_eq!(plan_takes(&[5, 5, 5], 1, 3), Some(vec![(1, 3)]));
    }

    #[test]
    fn a_dry_item_falls_back_on_the_next_ones() {
        assert_eq!(plan_takes(&[4, 0, 1], 1, 3), Some(vec![(2, 1), (0, 2)]));
        assert_eq!(plan_takes(&[1, 0, 1], 0, 3), None);
    }

    #[test]
    fn the_first_item_is_stable_and_in_range() {
        let first = first_shard("01JQXYZ", 8);
        assert_eq!(first, first_shard("01JQXYZ", 8));
        assert!(first < 8);
        assert_eq!(split_evenly(10, 4), [3, 3, 2, 2]);
    }

    proptest! {
        #[test]
        fn a_plan_takes_exactly_what_is_wanted_and_never_more_than_an_item_has(
            counts in proptest::collection::vec(0u64..20, 1..10),
            first in 0usize..10,
            wanted in 0u64..100,
        ) {
            let first = first % counts.len();
            match plan_takes(&counts, first, wanted) {
                None => prop_assert!(counts.iter().sum::<u64>() < wanted),
                Some(takes) => {
                    prop_assert_eq!(takes.iter().map(|(_, q)| q).sum::<u64>(), wanted);
                    for (index, take) in takes {
                        prop_assert!(take > 0 && take <= counts[index]);
                    }
                }
            }
        }

        #[test]
        fn splitting_keeps_every_unit(available in 0u64..10_000, shards in 1u32..=MAX_STOCK_SHARDS) {
            let parts = split_evenly(available, shards);
            prop_assert_eq!(parts.len(), shards as usize);
            prop_assert_eq!(parts.iter().sum::<u64>(), available);
            prop_assert!(parts.iter().max().unwrap() - parts.iter().min().unwrap() <= 1);
        }
    }
}
