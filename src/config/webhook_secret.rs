//! The webhook secret travels in the Event Grid subscription URL (`?code=SECRET`), so it must
//! come back byte for byte from a query string nobody escaped: `+` decodes as a space and `%`,
//! `&`, `#` change or cut the URL, which would turn every delivery into a 401 that Event Grid
//! never retries.

/// RFC 3986's unreserved characters: the ones a query never changes.
pub(crate) const SAFE_CHARACTERS: &str = "A-Z a-z 0-9 - . _ ~";

fn is_unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

/// The first character of `secret` that a query string would not carry verbatim.
pub(crate) fn first_unsafe_character(secret: &str) -> Option<char> {
    secret.chars().find(|c| !is_unreserved(*c))
}

/// The operator-facing reason, naming the character (secrets are never quoted whole).
pub(crate) fn explain(c: char) -> String {
    let shown = match c {
        ' ' => "a space".to_owned(),
        c if c.is_control() => format!("the control character U+{:04X}", c as u32),
        c => format!("`{c}`"),
    };
    format!(
        "contains {shown}, which does not survive the ?code= query of the Event Grid subscription URL unescaped (`+` decodes as a space); use only {SAFE_CHARACTERS}, e.g. openssl rand -hex 32"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreserved_secrets_pass() {
        assert_eq!(first_unsafe_character("007123"), None);
        assert_eq!(first_unsafe_character("TRUE"), None);
        assert_eq!(first_unsafe_character("aZ09-._~"), None);
    }

    #[test]
    fn query_syntax_is_caught() {
        for (secret, bad) in [
            ("a+b", '+'),
            ("a b", ' '),
            ("50%", '%'),
            ("a&b", '&'),
            ("x#y", '#'),
            ("é", 'é'),
        ] {
            assert_eq!(first_unsafe_character(secret), Some(bad), "{secret}");
        }
        assert!(explain('+').contains("A-Z a-z 0-9 - . _ ~"));
    }
}
