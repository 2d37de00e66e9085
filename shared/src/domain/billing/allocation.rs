//! One way to split an amount over parts in proportion to their weights, exact to the
//! minor unit: discounts over an order's lines, refunds over what remains refundable of
//! lines, shipping and tax rates. Every split of money in the service goes through
//! [`allocate`], so an invoice, a credit note and an order can never disagree by a cent.

/// Splits `amount` (minor units) over parts in proportion to `weights` by the largest
/// remainder method: every part first gets the floor of its exact share, then the units
/// left over go one each to the parts with the largest fractional remainders (the
/// earlier part first on a tie). The shares add up to `amount` exactly, and no share
/// exceeds its weight while `amount` does not exceed the weights' sum.
///
/// `None` when a weight or the amount is negative, or when there is something to split
/// and nothing to split it over (all weights zero).
pub fn allocate(amount: i64, weights: &[i64]) -> Option<Vec<i64>> {
    if amount < 0 || weights.iter().any(|w| *w < 0) {
        return None;
    }
    let whole: i128 = weights.iter().map(|w| i128::from(*w)).sum();
    if whole == 0 {
        return (amount == 0).then(|| vec![0; weights.len()]);
    }
    let amount = i128::from(amount);
    let mut shares = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    for (index, weight) in weights.iter().enumerate() {
        let exact = amount * i128::from(*weight);
        shares.push(exact / whole);
        remainders.push((exact % whole, index));
    }
    let left = amount - shares.iter().sum::<i128>();
    // Largest remainder first; on a tie the earlier part, so the split is deterministic.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, index) in remainders.into_iter().take(left as usize) {
        shares[index] += 1;
    }
    shares.into_iter().map(|s| i64::try_from(s).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_pro_rata_and_hands_out_the_leftover_units_by_largest_remainder() {
        // 10.00 over three equal lines: 3.34, 3.33, 3.33.
        assert_eq!(allocate(1000, &[1, 1, 1]), Some(vec![334, 333, 333]));
        // 4.00 over 20.00 and 55.00: 1.0666… and 2.9333… → 1.07 and 2.93.
        assert_eq!(allocate(400, &[2000, 5500]), Some(vec![107, 293]));
        assert_eq!(allocate(0, &[5, 7]), Some(vec![0, 0]));
        assert_eq!(allocate(7, &[0, 3, 0]), Some(vec![0, 7, 0]));
        assert_eq!(allocate(0, &[0, 0]), Some(vec![0, 0]));
        assert_eq!(allocate(1, &[0, 0]), None);
        assert_eq!(allocate(-1, &[1]), None);
        assert_eq!(allocate(1, &[1, -1]), None);
        assert_eq!(allocate(5, &[]), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The shares add up exactly, none exceeds its weight, and each is within one
        /// unit of its exact share.
        #[test]
        fn shares_are_exact_and_bounded(
            weights in proptest::collection::vec(0i64..10_000_000_000, 1..40),
            fraction in 0.0f64..=1.0,
        ) {
            let whole: i64 = weights.iter().sum();
            let amount = (whole as f64 * fraction) as i64;
            let amount = amount.min(whole);
            let shares = allocate(amount, &weights).unwrap();
            prop_assert_eq!(shares.iter().sum::<i64>(), amount);
            for (share, weight) in shares.iter().zip(&weights) {
                prop_assert!(share <= weight);
                if whole > 0 {
                    let exact = i128::from(amount) * i128::from(*weight);
                    let floor = exact / i128::from(whole);
                    prop_assert!(i128::from(*share) == floor || i128::from(*share) == floor + 1);
                }
            }
        }
    }
}
