//! How times are written everywhere: in stored items, answers and events.

use ::time::OffsetDateTime;

/// RFC 3339 UTC with exactly three fraction digits, so that times sort as text.
pub fn timestamp(at: OffsetDateTime) -> String {
    const FORMAT: &[::time::format_description::BorrowedFormatItem<'_>] = ::time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.to_offset(::time::UtcOffset::UTC)
        .format(FORMAT)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::time::UtcOffset;
    use proptest::prelude::*;

    /// Years 1 to 9998 in UTC, at any nanosecond, seen at any offset.
    fn any_time() -> impl Strategy<Value = OffsetDateTime> {
        (
            -62_135_596_800i64..253_370_764_800,
            0u32..1_000_000_000,
            -86_399i32..=86_399,
        )
            .prop_map(|(seconds, nanos, offset)| {
                let utc = OffsetDateTime::from_unix_timestamp(seconds).unwrap()
                    + ::time::Duration::nanoseconds(i64::from(nanos));
                utc.to_offset(UtcOffset::from_whole_seconds(offset).unwrap())
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// `2026-11-25T14:03:07.120Z`: always 24 characters, in UTC.
        #[test]
        fn timestamps_have_a_fixed_width(at in any_time()) {
            let text = timestamp(at);
            prop_assert_eq!(text.len(), 24, "{}", text);
            prop_assert!(text.ends_with('Z'));
        }

        /// As text, timestamps sort as the times they write (to the millisecond).
        #[test]
        fn timestamps_sort_as_the_times_sort(a in any_time(), b in any_time()) {
            let (early, late) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(timestamp(early) <= timestamp(late));
        }
    }
}
