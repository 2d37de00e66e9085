//! A tax rate: a decimal fraction in [0, 1] (`0.19` is 19 %), kept exactly.

use std::fmt;

/// A rate in millionths (`0.19` is 190 000): every rate a tax authority publishes
/// (`0.0725`, `0.08875`) is exact in six places, and floats never enter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaxRate(u32);

/// Decimal places a rate may have.
pub const RATE_DIGITS: usize = 6;
const ONE: u32 = 1_000_000;

impl TaxRate {
    /// Parses decimal text such as `0.19`, `0.075` or `1`; refuses signs, exponents,
    /// more than six decimal places and anything above 1.
    pub fn parse(text: &str) -> Result<TaxRate, String> {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(fraction) || text.ends_with('.') {
            return Err(format!("`{text}` is not a decimal fraction such as 0.19"));
        }
        let fraction = fraction.trim_end_matches('0');
        if fraction.len() > RATE_DIGITS {
            return Err(format!(
                "`{text}` has more than {RATE_DIGITS} decimal places"
            ));
        }
        let whole = whole.trim_start_matches('0');
        if !(whole.is_empty() || (whole == "1" && fraction.is_empty())) {
            return Err(format!(
                "`{text}` is above 1 (rates are fractions: 0.19 is 19 %)"
            ));
        }
        let padded = format!("{fraction:0<RATE_DIGITS$}");
        let millionths: u32 = padded.parse().unwrap_or(0);
        Ok(TaxRate(if whole == "1" { ONE } else { millionths }))
    }

    pub fn from_millionths(millionths: u32) -> Option<TaxRate> {
        (millionths <= ONE).then_some(TaxRate(millionths))
    }

    pub fn millionths(self) -> u32 {
        self.0
    }

    /// The rate as a percentage for people: `19`, `7.25`.
    pub fn percent(self) -> String {
        let (whole, rest) = (self.0 / 10_000, self.0 % 10_000);
        if rest == 0 {
            whole.to_string()
        } else {
            let text = format!("{whole}.{rest:04}");
            text.trim_end_matches('0').to_string()
        }
    }
}

/// The shortest decimal text of the rate: `0.19`, `0.075`, `0`, `1`.
impl fmt::Display for TaxRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == ONE {
            return f.write_str("1");
        }
        if self.0 == 0 {
            return f.write_str("0");
        }
        let text = format!("0.{:06}", self.0);
        f.write_str(text.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_exactly_and_print_back_short() {
        for (text, millionths, shown, percent) in [
            ("0.19", 190_000, "0.19", "19"),
            ("0.190", 190_000, "0.19", "19"),
            ("0.0725", 72_500, "0.0725", "7.25"),
            ("0.08875", 88_750, "0.08875", "8.875"),
            ("0", 0, "0", "0"),
            ("0.0", 0, "0", "0"),
            ("1", ONE, "1", "100"),
            ("1.000", ONE, "1", "100"),
        ] {
            let rate = TaxRate::parse(text).unwrap();
            assert_eq!(rate.millionths(), millionths, "{text}");
            assert_eq!(rate.to_string(), shown, "{text}");
            assert_eq!(rate.percent(), percent, "{text}");
        }
        for bad in [
            "",
            ".19",
            "0.",
            "-0.19",
            "19%",
            "1.01",
            "2",
            "10",
            "0.1234567",
            "1e-1",
            " 0.1",
        ] {
            assert!(TaxRate::parse(bad).is_err(), "{bad:?}");
        }
    }
}
