//! The `CALLVAULT__SECTION__KEY` layer. Each variable is read as the type its key has in the
//! defaults, never guessed from its value: `007123` for a secret stays `007123`, `TRUE` stays
//! `TRUE`, and only real list keys are split at commas.

use std::ffi::OsString;
use std::fmt;

use config::{Map, Source, Value, ValueKind};

use super::ConfigError;
use super::schema::{Kind, Schema};

const PREFIX: &str = "CALLVAULT__";
const SEPARATOR: &str = "__";

/// The variables that name a setting, already typed.
#[derive(Clone)]
pub(crate) struct EnvironmentLayer {
    values: Map<String, Value>,
}

impl EnvironmentLayer {
    /// Reads the `CALLVAULT__…` variables among `vars`; a value of the wrong type is refused
    /// here, an unknown key later with the rest of the layers.
    pub(crate) fn read(
        schema: &Schema,
        vars: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Result<Self, ConfigError> {
        let mut values = Map::new();
        for (name, value) in vars {
            let Some(name) = name.to_str() else { continue };
            let Some(key) = key_of(name) else { continue };
            let origin = format!("environment variable {name}");
            let Some(raw) = value.to_str() else {
                return Err(ConfigError::NotUnicode {
                    variable: name.to_owned(),
                });
            };
            let kind = match schema.kind(&key) {
                Some(kind) => typed_for(&key, kind, raw).ok_or_else(|| {
                    ConfigError::wrong_type(
                        key.clone(),
                        format!(" (from {origin})"),
                        kind.expectation(),
                        shown(kind, raw),
                    )
                })?,
                None if schema.is_section(&key) => {
                    return Err(ConfigError::wrong_type(
                        key,
                        format!(" (from {origin})"),
                        "a section of keys, set one by one (CALLVAULT__SECTION__KEY)",
                        "a single value",
                    ));
                }
                None => ValueKind::String(raw.to_owned()),
            };
            values.insert(key, Value::new(Some(&origin), kind));
        }
        Ok(Self { values })
    }
}

/// `CALLVAULT__WORKER__LEASE_SECS` → `worker.lease_secs`.
fn key_of(name: &str) -> Option<String> {
    let head = name.get(..PREFIX.len())?;
    if !head.eq_ignore_ascii_case(PREFIX) {
        return None;
    }
    Some(
        name[PREFIX.len()..]
            .split(SEPARATOR)
            .map(str::to_ascii_lowercase)
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// A refused value as a message shows it: never a list of tables, which holds tokens and
/// sink credentials.
pub(crate) fn shown(kind: Kind, raw: &str) -> String {
    match kind {
        Kind::Tables => "a value that is not one (not shown: it may hold secrets)".to_owned(),
        _ => format!("`{}`", raw.trim()),
    }
}

/// [`typed`] for `key`: `admin.tokens` also takes the compact `name:role:token,…`.
pub(crate) fn typed_for(key: &str, kind: Kind, raw: &str) -> Option<ValueKind> {
    if key == super::admin_tokens::KEY && !raw.trim_start().starts_with('[') {
        return Some(ValueKind::Array(super::admin_tokens::parse_compact(raw)?));
    }
    typed(kind, raw)
}

/// The value of `raw` for a key of `kind`, or None when it is not one.
pub(crate) fn typed(kind: Kind, raw: &str) -> Option<ValueKind> {
    Some(match kind {
        Kind::Text => ValueKind::String(raw.to_owned()),
        Kind::Integer => ValueKind::I64(raw.trim().parse().ok()?),
        Kind::Float => ValueKind::Float(raw.trim().parse().ok()?),
        Kind::Boolean => match raw.trim() {
            value if value.eq_ignore_ascii_case("true") => ValueKind::Boolean(true),
            value if value.eq_ignore_ascii_case("false") => ValueKind::Boolean(false),
            _ => return None,
        },
        // A list of tables from the environment is a JSON array of objects.
        Kind::Tables => {
            let parsed: serde_json::Value = serde_json::from_str(raw).ok()?;
            let items = parsed.as_array()?;
            if !items.iter().all(serde_json::Value::is_object) {
                return None;
            }
            from_json(&parsed)?
        }
        Kind::List => ValueKind::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| Value::new(None, item.to_owned()))
                .collect(),
        ),
    })
}

/// A JSON value as a configuration value; None for `null` (no setting has one).
fn from_json(json: &serde_json::Value) -> Option<ValueKind> {
    Some(match json {
        serde_json::Value::Null => return None,
        serde_json::Value::Bool(b) => ValueKind::Boolean(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => ValueKind::I64(i),
            None => ValueKind::Float(n.as_f64()?),
        },
        serde_json::Value::String(text) => ValueKind::String(text.clone()),
        serde_json::Value::Array(items) => ValueKind::Array(
            items
                .iter()
                .map(|item| from_json(item).map(|kind| Value::new(None, kind)))
                .collect::<Option<_>>()?,
        ),
        serde_json::Value::Object(fields) => ValueKind::Table(
            fields
                .iter()
                .map(|(name, item)| {
                    from_json(item).map(|kind| (name.clone(), Value::new(None, kind)))
                })
                .collect::<Option<_>>()?,
        ),
    })
}

impl Source for EnvironmentLayer {
    fn clone_into_box(&self) -> Box<dyn Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<Map<String, Value>, config::ConfigError> {
        Ok(self.values.clone())
    }
}

/// Names only: the values may be secrets.
impl fmt::Debug for EnvironmentLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_names_become_dotted_keys() {
        assert_eq!(
            key_of("CALLVAULT__WORKER__LEASE_SECS").as_deref(),
            Some("worker.lease_secs")
        );
        assert_eq!(key_of("CALLVAULT_TEST_POSTGRES"), None);
        assert_eq!(key_of("PATH"), None);
    }

    #[test]
    fn values_take_the_type_of_their_key_only() {
        assert_eq!(
            typed(Kind::Text, "007123"),
            Some(ValueKind::String("007123".into()))
        );
        assert_eq!(
            typed(Kind::Text, "a,b"),
            Some(ValueKind::String("a,b".into()))
        );
        assert_eq!(typed(Kind::Integer, "16"), Some(ValueKind::I64(16)));
        assert_eq!(typed(Kind::Integer, "true"), None);
        assert_eq!(typed(Kind::Boolean, "TRUE"), Some(ValueKind::Boolean(true)));
        assert_eq!(typed(Kind::Boolean, "yes"), None);
        assert_eq!(typed(Kind::Boolean, "1"), None);
        let Some(ValueKind::Array(items)) = typed(Kind::List, ".a.example.com, .b.example.com")
        else {
            panic!("a list key is split");
        };
        assert_eq!(items.len(), 2);
        assert_eq!(typed(Kind::List, ""), Some(ValueKind::Array(Vec::new())));
    }
}
