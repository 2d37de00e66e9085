//! The per-caller limit on order creation: `count` creates per fixed window of
//! `window` seconds, as `ORDER_CREATE_LIMIT` spells it (`10/60`; `0` is no limit).

use time::OffsetDateTime;

/// What `ORDER_CREATE_LIMIT` means when it is not set.
pub const DEFAULT_CREATE_LIMIT: &str = "10/60";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Creates allowed per window, at least 1.
    pub count: u32,
    /// The window's length in seconds, at least 1.
    pub window: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not <count>/<seconds> (for example 10/60) or 0 (no limit)")]
pub struct BadRateLimit(pub String);

/// One fixed window of a limit: `[start, end)` in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

impl RateLimit {
    /// `<count>/<seconds>`, or `0` for no limit (`None`).
    pub fn parse(text: &str) -> Result<Option<RateLimit>, BadRateLimit> {
        let bad = || BadRateLimit(text.to_string());
        let text = text.trim();
        if text == "0" {
            return Ok(None);
        }
        let (count, window) = text.split_once('/').ok_or_else(bad)?;
        // Digits only: `u32::from_str` would also take a leading `+`.
        let number = |part: &str| {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse::<u32>().ok().filter(|n| *n > 0)
        };
        match (number(count), number(window)) {
            (Some(count), Some(window)) => Ok(Some(RateLimit { count, window })),
            _ => Err(bad()),
        }
    }

    /// The window `now` falls in. Windows are aligned to the Unix epoch, so every
    /// function instance agrees on them without talking to the others.
    pub fn window_at(&self, now: OffsetDateTime) -> Window {
        let length = i64::from(self.window);
        let start = now.unix_timestamp().div_euclid(length) * length;
        Window {
            start,
            end: start + length,
        }
    }
}

impl Window {
    /// Whole seconds until the window ends, at least 1: what `Retry-After` says.
    pub fn seconds_left(&self, now: OffsetDateTime) -> u64 {
        u64::try_from(self.end - now.unix_timestamp())
            .unwrap_or(0)
            .max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_per_seconds_is_a_limit() {
        assert_eq!(
            RateLimit::parse("10/60"),
            Ok(Some(RateLimit {
                count: 10,
                window: 60
            }))
        );
        assert_eq!(
            RateLimit::parse(" 3 / 1 "),
            Ok(Some(RateLimit {
                count: 3,
                window: 1
            }))
        );
        assert!(RateLimit::parse(DEFAULT_CREATE_LIMIT).unwrap().is_some());
    }

    #[test]
    fn zero_turns_the_limit_off() {
        assert_eq!(RateLimit::parse("0"), Ok(None));
    }

    #[test]
    fn other_forms_are_refused() {
        for text in [
            "",
            "10",
            "10/",
            "/60",
            "0/60",
            "10/0",
            "-1/60",
            "+10/60",
            "10/60s",
            "10 per 60",
            "1.5/60",
            "10/60/2",
            "99999999999/60",
            "off",
        ] {
            assert!(RateLimit::parse(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn windows_are_aligned_and_retry_after_counts_to_their_end() {
        let limit = RateLimit {
            count: 3,
            window: 60,
        };
        let now = OffsetDateTime::from_unix_timestamp(1_000_000_015).unwrap();
        let window = limit.window_at(now);
        assert_eq!(window.start, 1_000_000_000 - 1_000_000_000 % 60);
        assert_eq!(window.end - window.start, 60);
        assert!(window.start <= now.unix_timestamp() && now.unix_timestamp() < window.end);
        assert_eq!(
            window.seconds_left(now),
            (window.end - now.unix_timestamp()) as u64
        );
        let at_end = OffsetDateTime::from_unix_timestamp(window.end).unwrap();
        assert_eq!(window.seconds_left(at_end), 1);
    }
}
