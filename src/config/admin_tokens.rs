//! `admin.tokens`: named admin tokens, each with a role. In a file, a list of tables
//! (`[[admin.tokens]]` with `name`, `role`, `token`); in the environment, the compact
//! `CALLVAULT__ADMIN__TOKENS=name:role:token,name:role:token` (a token may hold `:`, not `,`).
//! The single `admin.token` stays, as an operator token named `admin`.

use std::collections::HashSet;

use config::{Map, Value, ValueKind};
use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};
use crate::secret::Secret;

/// One named token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NamedToken {
    /// The name the audit trail records for whoever holds it: `[a-z0-9._-]`, 1 to 64 characters.
    pub name: String,
    /// `viewer` (reads) or `operator` (reads and acts).
    pub role: String,
    /// The bearer token, at least [`MIN_TOKEN_LENGTH`] characters.
    pub token: Secret,
}

/// The key these tables are read from.
pub(crate) const KEY: &str = "admin.tokens";

/// The shortest named token accepted: 16 characters of a random token are out of reach of
/// guessing over HTTP.
pub const MIN_TOKEN_LENGTH: usize = 16;
const MAX_NAME_LENGTH: usize = 64;
/// The name `admin.token` is known by.
pub const LEGACY_NAME: &str = "admin";
/// More tokens than this is a configuration mistake.
const MAX_TOKENS: usize = 100;

/// The items of a compact environment value as tables, or None when an item is not
/// `name:role:token`.
pub(crate) fn parse_compact(raw: &str) -> Option<Vec<Value>> {
    raw.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let mut parts = item.splitn(3, ':');
            let (name, role, token) = (parts.next()?, parts.next()?, parts.next()?);
            let mut table = Map::new();
            table.insert("name".to_owned(), Value::new(None, name.trim()));
            table.insert("role".to_owned(), Value::new(None, role.trim()));
            table.insert("token".to_owned(), Value::new(None, token));
            Some(Value::new(None, ValueKind::Table(table)))
        })
        .collect()
}

/// Names valid and unique (`admin` is taken when `admin.token` is set), roles known, tokens
/// long enough and all different. Messages name the token, never show it.
pub(crate) fn validate(tokens: &[NamedToken], legacy: &Secret) -> Result<(), ConfigError> {
    if tokens.len() > MAX_TOKENS {
        return Err(invalid(
            KEY,
            format!("has {} tokens; at most {MAX_TOKENS}", tokens.len()),
        ));
    }
    let mut names = HashSet::new();
    let mut secrets = HashSet::new();
    if !legacy.is_empty() {
        names.insert(LEGACY_NAME);
        secrets.insert(legacy.expose());
    }
    for (index, token) in tokens.iter().enumerate() {
        let name = token.name.as_str();
        let which = format!("token {} (`{name}`)", index + 1);
        let clean = !name.is_empty()
            && name.len() <= MAX_NAME_LENGTH
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
        if !clean {
            return Err(invalid(
                KEY,
                format!(
                    "{which}: a name is 1 to {MAX_NAME_LENGTH} characters of a-z, 0-9, `.`, `_` and `-`"
                ),
            ));
        }
        if !names.insert(name) {
            return Err(invalid(
                KEY,
                if name == LEGACY_NAME && !legacy.is_empty() {
                    format!("{which}: the name `admin` is taken by admin.token")
                } else {
                    format!("{which}: the name is used twice")
                },
            ));
        }
        if !matches!(token.role.as_str(), "viewer" | "operator") {
            return Err(invalid(
                KEY,
                format!("{which}: role `{}` is not viewer or operator", token.role),
            ));
        }
        let secret = token.token.expose();
        if secret.trim().chars().count() < MIN_TOKEN_LENGTH || secret.trim() != secret {
            return Err(invalid(
                KEY,
                format!(
                    "{which}: the token must be at least {MIN_TOKEN_LENGTH} characters, without surrounding spaces"
                ),
            ));
        }
        if !secret.chars().all(|c| c.is_ascii_graphic()) {
            return Err(invalid(
                KEY,
                format!(
                    "{which}: the token must be printable ASCII without spaces (it travels in an Authorization header)"
                ),
            ));
        }
        if !secrets.insert(secret) {
            return Err(invalid(
                KEY,
                format!(
                    "{which}: the token is the same as another token's; each holder needs their own"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(name: &str, role: &str, secret: &str) -> NamedToken {
        NamedToken {
            name: name.into(),
            role: role.into(),
            token: Secret::new(secret),
        }
    }

    const LONG: &str = "0123456789abcdef";

    #[test]
    fn the_compact_form_gives_one_table_per_item_and_tokens_may_hold_colons() {
        let items = parse_compact("ops:operator:aaaa:bbbb, audit:viewer:cccc,").unwrap();
        assert_eq!(items.len(), 2);
        let ValueKind::Table(first) = &items[0].kind else {
            panic!("a table");
        };
        assert_eq!(first["token"].clone().into_string().unwrap(), "aaaa:bbbb");
        assert_eq!(first["role"].clone().into_string().unwrap(), "operator");
        assert!(parse_compact("ops:operator").is_none());
        assert_eq!(parse_compact("").unwrap().len(), 0);
    }

    #[test]
    fn good_tokens_pass() {
        let tokens = [
            token("alice", "operator", LONG),
            token("audit-team", "viewer", "fedcba9876543210"),
        ];
        validate(&tokens, &Secret::new("legacy")).unwrap();
    }

    #[test]
    fn every_mistake_names_the_token_and_never_shows_it() {
        let cases: [(Vec<NamedToken>, &str); 7] = [
            (vec![token("", "viewer", LONG)], "a name is"),
            (vec![token("Alice", "viewer", LONG)], "a name is"),
            (vec![token("cli:x", "viewer", LONG)], "a name is"),
            (
                vec![
                    token("a", "viewer", LONG),
                    token("a", "operator", "fedcba9876543210"),
                ],
                "used twice",
            ),
            (vec![token("admin", "viewer", LONG)], "taken by admin.token"),
            (vec![token("a", "owner", LONG)], "not viewer or operator"),
            (vec![token("a", "viewer", "short")], "at least 16"),
        ];
        for (tokens, expected) in cases {
            let message = validate(&tokens, &Secret::new("legacy"))
                .unwrap_err()
                .to_string();
            assert!(message.contains(expected), "{message}");
            assert!(message.contains("admin.tokens"), "{message}");
            assert!(!message.contains(LONG), "{message}");
        }
        let twice = [token("a", "viewer", LONG), token("b", "viewer", LONG)];
        let message = validate(&twice, &Secret::default())
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("same as another") && !message.contains(LONG),
            "{message}"
        );
        let same_as_legacy = [token("a", "viewer", LONG)];
        assert!(validate(&same_as_legacy, &Secret::new(LONG)).is_err());
    }
}
