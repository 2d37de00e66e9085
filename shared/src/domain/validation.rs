//! Checks shared by every request: field errors reported together, ids and free text.

/// A problem with one field of a request, named by its JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Every problem found in a request, so a client can fix them all at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_result<T>(self, value: T) -> Result<T, FieldErrors> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

pub const MAX_ID_LEN: usize = 128;

/// Ids from other systems (carts, users, products): printable, no spaces, bounded.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic())
}

/// Free text a person typed: bounded, non-blank, no control characters and no
/// invisible direction or zero-width characters (they would spoof what emails, the
/// console and webhooks display).
pub fn check_text(errors: &mut FieldErrors, field: &str, value: &str, max: usize) {
    if value.trim().is_empty() {
        errors.add(field, "must not be blank");
    } else if value.chars().count() > max {
        errors.add(field, format!("must be at most {max} characters"));
    } else if value.chars().any(char::is_control) {
        errors.add(field, "must not contain control characters");
    } else if value.chars().any(is_invisible_format) {
        errors.add(
            field,
            "must not contain invisible direction or zero-width characters",
        );
    }
}

/// Bidirectional marks, embeddings, overrides and isolates, zero-width characters and
/// the byte-order mark: they make text read otherwise than it is stored.
pub fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{061c}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{feff}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 23, defect 8: U+202E and friends are refused in free text, as in cart
    /// item names; ordinary text in any script passes.
    #[test]
    fn invisible_direction_and_zero_width_characters_are_refused() {
        for spoof in [
            "Main St \u{202e}txt.exe",
            "zero\u{200b}width",
            "isolate\u{2067}d",
            "mark\u{200f}",
            "\u{feff}bom",
            "arabic\u{061c}mark",
        ] {
            let mut errors = FieldErrors::default();
            check_text(&mut errors, "reason", spoof, 100);
            assert_eq!(errors.0.len(), 1, "{spoof:?}");
        }
        for fine in ["123 Main St", "Straße 5", "東京都千代田区", "شارع ١٢"] {
            let mut errors = FieldErrors::default();
            check_text(&mut errors, "reason", fine, 100);
            assert!(errors.is_empty(), "{fine:?}: {errors:?}");
        }
    }
}
