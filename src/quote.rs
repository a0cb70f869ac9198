//! Quoting untrusted input in operator-facing text: a reason names what was wrong without
//! copying a megabyte of it into the database and the log.

/// The most characters of input a reason quotes.
pub const QUOTE_CHARS: usize = 200;

/// `s` cut to [`QUOTE_CHARS`] characters (on a character boundary), with `…` when cut.
pub fn quote(s: &str) -> String {
    match s.char_indices().nth(QUOTE_CHARS) {
        None => s.to_owned(),
        Some((cut, _)) => format!("{}…", &s[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_input_is_quoted_whole() {
        assert_eq!(quote("abc"), "abc");
        assert_eq!(quote(&"x".repeat(QUOTE_CHARS)), "x".repeat(QUOTE_CHARS));
    }

    #[test]
    fn long_input_is_cut_on_a_character_boundary() {
        let long = "é".repeat(10_000);
        let quoted = quote(&long);
        assert_eq!(quoted.chars().count(), QUOTE_CHARS + 1);
        assert!(quoted.ends_with('…'));
    }
}
