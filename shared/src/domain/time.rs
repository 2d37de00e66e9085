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
