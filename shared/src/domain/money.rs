//! Exact money: integer minor units with a currency. Never floats.

use std::fmt;

/// An ISO 4217 currency this service accepts, with its number of minor-unit digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: &'static str,
    minor_digits: u32,
}

/// The currencies we price in. A short, explicit list: an unknown code is refused
/// rather than guessed at, because its minor-unit digits decide every total.
const CURRENCIES: &[(&str, u32)] = &[
    ("AED", 2),
    ("AUD", 2),
    ("BHD", 3),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("ISK", 0),
    ("JOD", 3),
    ("JPY", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("MXN", 2),
    ("MYR", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PHP", 2),
    ("PLN", 2),
    ("RON", 2),
    ("SAR", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("THB", 2),
    ("TND", 3),
    ("TRY", 2),
    ("TWD", 2),
    ("UAH", 2),
    ("USD", 2),
    ("VND", 0),
    ("ZAR", 2),
];

impl Currency {
    /// Looks up an ISO 4217 code (upper case, as ISO writes it).
    pub fn from_code(code: &str) -> Option<Self> {
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|&(code, minor_digits)| Currency { code, minor_digits })
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn minor_digits(&self) -> u32 {
        self.minor_digits
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("`{0}` is not a plain decimal amount")]
    NotADecimal(String),
    #[error("`{amount}` has more decimal places than {currency} allows ({digits})")]
    TooPrecise {
        amount: String,
        currency: &'static str,
        digits: u32,
    },
    #[error("amount must not be negative")]
    Negative,
    #[error("amount is too large")]
    Overflow,
}

/// An amount in a currency's minor units (cents for USD, yen for JPY).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    pub fn from_minor(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Money::from_minor(0, currency)
    }

    /// Parses decimal text such as `10.00`, `10.5` or `10` exactly, as it came over
    /// the wire. Exponents, signs other than none, and digits beyond the currency's
    /// minor units are refused rather than rounded.
    pub fn parse(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        let not_decimal = || MoneyError::NotADecimal(text.to_string());
        if text.starts_with('-') {
            return Err(MoneyError::Negative);
        }
        let (whole, fraction) = match text.split_once('.') {
            Some((w, f)) => (w, f),
            None => (text, ""),
        };
        let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits_only(whole) || !digits_only(fraction) {
            return Err(not_decimal());
        }
        if text.contains('.') && fraction.is_empty() {
            return Err(not_decimal());
        }
        // Trailing zeros beyond the minor digits carry no value ("10.000" USD is fine).
        let fraction = fraction.trim_end_matches('0');
        let digits = currency.minor_digits;
        if fraction.len() > digits as usize {
            return Err(MoneyError::TooPrecise {
                amount: text.to_string(),
                currency: currency.code,
                digits,
            });
        }
        let scale = 10i64.pow(digits);
        let whole: i64 = whole.parse().map_err(|_| MoneyError::Overflow)?;
        let fraction: i64 = if fraction.is_empty() {
            0
        } else {
            let padded = format!("{fraction:0<width$}", width = digits as usize);
            padded.parse().map_err(|_| not_decimal())?
        };
        let minor = whole
            .checked_mul(scale)
            .and_then(|m| m.checked_add(fraction))
            .ok_or(MoneyError::Overflow)?;
        Ok(Money { minor, currency })
    }

    pub fn minor(&self) -> i64 {
        self.minor
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn checked_times(self, quantity: u32) -> Option<Money> {
        self.minor
            .checked_mul(i64::from(quantity))
            .map(|minor| Money { minor, ..self })
    }

    /// None on overflow or when the currencies differ.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        self.minor
            .checked_add(other.minor)
            .map(|minor| Money { minor, ..self })
    }

    /// The amount as decimal text with exactly the currency's minor digits: `75.00`.
    pub fn to_decimal_string(&self) -> String {
        let digits = self.currency.minor_digits;
        if digits == 0 {
            return self.minor.to_string();
        }
        let scale = 10i64.pow(digits);
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        let scale = scale as u64;
        format!(
            "{sign}{}.{:0width$}",
            abs / scale,
            abs % scale,
            width = digits as usize
        )
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal_string(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::from_code("USD").unwrap()
    }

    #[test]
    fn parses_decimal_text_exactly() {
        assert_eq!(Money::parse("10.00", usd()).unwrap().minor(), 1000);
        assert_eq!(Money::parse("10.5", usd()).unwrap().minor(), 1050);
        assert_eq!(Money::parse("7", usd()).unwrap().minor(), 700);
        assert_eq!(Money::parse("0.10", usd()).unwrap().minor(), 10);
        assert_eq!(Money::parse("64.990", usd()).unwrap().minor(), 6499);
        let jpy = Currency::from_code("JPY").unwrap();
        assert_eq!(Money::parse("1200", jpy).unwrap().minor(), 1200);
        let kwd = Currency::from_code("KWD").unwrap();
        assert_eq!(Money::parse("1.005", kwd).unwrap().minor(), 1005);
    }

    #[test]
    fn refuses_what_it_would_have_to_round_or_guess() {
        assert!(matches!(
            Money::parse("10.001", usd()),
            Err(MoneyError::TooPrecise { .. })
        ));
        assert!(matches!(
            Money::parse("1.5", Currency::from_code("JPY").unwrap()),
            Err(MoneyError::TooPrecise { .. })
        ));
        assert_eq!(Money::parse("-1.00", usd()), Err(MoneyError::Negative));
        for bad in ["", ".5", "5.", "1e3", "1,00", "abc", "+1", " 1"] {
            assert!(
                matches!(Money::parse(bad, usd()), Err(MoneyError::NotADecimal(_))),
                "{bad:?} should be refused"
            );
        }
        assert_eq!(
            Money::parse("99999999999999999999", usd()),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn sums_exactly_where_floats_do_not() {
        let dime = Money::parse("0.10", usd()).unwrap();
        let total = dime.checked_times(3).unwrap();
        assert_eq!(total.to_decimal_string(), "0.30");
        assert_eq!(total.minor(), 30);
    }

    #[test]
    fn renders_with_the_currency_minor_digits() {
        assert_eq!(Money::from_minor(7500, usd()).to_decimal_string(), "75.00");
        assert_eq!(Money::from_minor(5, usd()).to_decimal_string(), "0.05");
        let jpy = Currency::from_code("JPY").unwrap();
        assert_eq!(Money::from_minor(1200, jpy).to_decimal_string(), "1200");
        let eur = Currency::from_code("EUR").unwrap();
        assert!(Money::zero(usd()).checked_add(Money::zero(eur)).is_none());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn currency() -> impl Strategy<Value = Currency> {
            proptest::sample::select(CURRENCIES)
                .prop_map(|(code, _)| Currency::from_code(code).expect("a listed currency"))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Any amount renders with the currency's digits and parses back to itself.
            #[test]
            fn rendered_amounts_parse_back(minor in 0..=i64::MAX, currency in currency()) {
                let text = Money::from_minor(minor, currency).to_decimal_string();
                let digits = currency.minor_digits() as usize;
                prop_assert_eq!(text.split_once('.').map_or(0, |(_, f)| f.len()), digits);
                let parsed = Money::parse(&text, currency).unwrap();
                prop_assert_eq!(parsed.minor(), minor);
                prop_assert_eq!(parsed.to_decimal_string(), text);
            }

            /// Decimal text with at most the currency's digits parses, and renders back
            /// the same once written with exactly those digits.
            #[test]
            fn decimal_text_round_trips(
                whole in 0u64..1_000_000_000_000,
                fraction in 0u32..1000,
                currency in currency(),
            ) {
                let digits = currency.minor_digits();
                let fraction = fraction % 10u32.pow(digits);
                let text = if digits == 0 {
                    whole.to_string()
                } else {
                    format!("{whole}.{fraction:0width$}", width = digits as usize)
                };
                let parsed = Money::parse(&text, currency).unwrap();
                prop_assert_eq!(parsed.to_decimal_string(), text);
            }

            /// No text panics the parser; what it accepts is non-negative.
            #[test]
            fn no_text_panics(text in ".{0,40}|[0-9.+-eE]{0,30}", currency in currency()) {
                if let Ok(money) = Money::parse(&text, currency) {
                    prop_assert!(money.minor() >= 0);
                }
            }
        }
    }
}
