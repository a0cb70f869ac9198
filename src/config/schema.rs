//! The known keys and their types, taken from the built-in `config/default.toml`: the one list
//! of settings, which is also their documentation. Anything else in a file or the environment
//! is a mistake worth stopping for.

use std::collections::BTreeMap;

use config::{Map, Value, ValueKind};

use super::ConfigError;

/// The type a key has in the defaults, which every layer must respect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    Integer,
    Float,
    Boolean,
    List,
    /// A list of tables (`[[events.sinks]]`, `[[admin.tokens]]`), whose own keys their struct checks.
    Tables,
}

/// The keys whose value is a list of tables; their defaults are empty lists.
const TABLE_LISTS: &[&str] = &["events.sinks", "admin.tokens"];

impl Kind {
    fn of(value: &ValueKind) -> Option<Self> {
        match value {
            ValueKind::String(_) => Some(Kind::Text),
            ValueKind::I64(_) | ValueKind::I128(_) | ValueKind::U64(_) | ValueKind::U128(_) => {
                Some(Kind::Integer)
            }
            ValueKind::Float(_) => Some(Kind::Float),
            ValueKind::Boolean(_) => Some(Kind::Boolean),
            ValueKind::Array(_) => Some(Kind::List),
            ValueKind::Table(_) | ValueKind::Nil => None,
        }
    }

    /// What a value of this kind must look like, for messages.
    pub(crate) fn expectation(self) -> &'static str {
        match self {
            Kind::Text => "a string in quotes (text, secrets included, is read exactly as written)",
            Kind::Integer => "a whole number",
            Kind::Float => "a number",
            Kind::Boolean => "true or false",
            Kind::List => "a list of strings",
            Kind::Tables => {
                "a list of tables: [[section]] tables in a file, a JSON array of objects in the environment (admin.tokens also takes name:role:token,name:role:token)"
            }
        }
    }

    fn accepts(self, value: &ValueKind) -> bool {
        match (self, value) {
            (Kind::List, ValueKind::Array(items)) => items
                .iter()
                .all(|item| matches!(item.kind, ValueKind::String(_))),
            (Kind::Tables, ValueKind::Array(items)) => items
                .iter()
                .all(|item| matches!(item.kind, ValueKind::Table(_))),
            (Kind::Tables, _) => false,
            (Kind::Float, other) => matches!(Kind::of(other), Some(Kind::Float | Kind::Integer)),
            (kind, other) => Kind::of(other) == Some(kind),
        }
    }
}

fn describe(value: &ValueKind) -> &'static str {
    match value {
        ValueKind::String(_) => "a string",
        ValueKind::I64(_) | ValueKind::I128(_) | ValueKind::U64(_) | ValueKind::U128(_) => {
            "a whole number"
        }
        ValueKind::Float(_) => "a decimal number",
        ValueKind::Boolean(_) => "a boolean",
        ValueKind::Array(_) => "a list",
        ValueKind::Table(_) => "a section",
        ValueKind::Nil => "nothing",
    }
}

/// Every known key (dotted, e.g. `worker.concurrency`) with its kind.
#[derive(Debug, Clone)]
pub(crate) struct Schema {
    keys: BTreeMap<String, Kind>,
}

impl Schema {
    /// Reads the keys from the parsed defaults.
    pub(crate) fn from_defaults(defaults: &Map<String, Value>) -> Self {
        let mut keys = BTreeMap::new();
        flatten("", defaults, &mut keys);
        for key in TABLE_LISTS {
            keys.insert((*key).to_owned(), Kind::Tables);
        }
        Self { keys }
    }

    #[cfg(test)]
    pub(crate) fn keys(&self) -> impl Iterator<Item = (&str, Kind)> {
        self.keys.iter().map(|(key, kind)| (key.as_str(), *kind))
    }

    pub(crate) fn kind(&self, key: &str) -> Option<Kind> {
        self.keys.get(key).copied()
    }

    /// True for `worker`, the prefix of known keys.
    pub(crate) fn is_section(&self, path: &str) -> bool {
        let prefix = format!("{path}.");
        self.keys.keys().any(|key| key.starts_with(&prefix))
    }

    /// The known key an unknown one was most likely meant to be: a small edit away, or the same
    /// name in another section.
    pub(crate) fn nearest(&self, unknown: &str) -> Option<&str> {
        let leaf = unknown.rsplit('.').next().unwrap_or(unknown);
        let by_distance = self
            .keys
            .keys()
            .map(|key| (strsim::levenshtein(unknown, key), key.as_str()))
            .min();
        match by_distance {
            Some((distance, key)) if distance <= 3 => Some(key),
            _ => self
                .keys
                .keys()
                .map(String::as_str)
                .find(|key| key.rsplit('.').next() == Some(leaf)),
        }
    }

    /// Checks the merged layers: every key known and of its default's type.
    pub(crate) fn check(&self, merged: &Map<String, Value>) -> Result<(), ConfigError> {
        let mut unknown = Vec::new();
        self.check_table("", merged, &mut unknown)?;
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::UnknownKeys(unknown))
        }
    }

    fn check_table(
        &self,
        prefix: &str,
        table: &Map<String, Value>,
        unknown: &mut Vec<UnknownKey>,
    ) -> Result<(), ConfigError> {
        let mut entries: Vec<_> = table.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        for (name, value) in entries {
            let key = join(prefix, name);
            if let Some(kind) = self.kind(&key) {
                if !kind.accepts(&value.kind) {
                    return Err(ConfigError::wrong_type(
                        key,
                        origin_of(value),
                        kind.expectation(),
                        describe(&value.kind),
                    ));
                }
            } else if self.is_section(&key) {
                match &value.kind {
                    ValueKind::Table(inner) => self.check_table(&key, inner, unknown)?,
                    other => {
                        return Err(ConfigError::wrong_type(
                            key,
                            origin_of(value),
                            "a section of keys",
                            describe(other),
                        ));
                    }
                }
            } else if let ValueKind::Table(inner) = &value.kind
                && !inner.is_empty()
            {
                // An unknown section: name its keys, which is where a suggestion can help.
                self.check_table(&key, inner, unknown)?;
            } else {
                unknown.push(UnknownKey {
                    suggestion: self.nearest(&key).map(str::to_owned),
                    origin: origin_of(value),
                    key,
                });
            }
        }
        Ok(())
    }
}

/// A key no layer should have set, with where it came from and what was probably meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey {
    pub key: String,
    pub origin: String,
    pub suggestion: Option<String>,
}

impl std::fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown configuration key `{}`{}", self.key, self.origin)?;
        match &self.suggestion {
            Some(known) => write!(f, ": did you mean {known}?"),
            None => f.write_str(": it is not a callvault setting"),
        }
    }
}

/// ` in FILE` or ` (from environment variable NAME)`, empty for built-in values.
pub(crate) fn origin_of(value: &Value) -> String {
    match value.origin() {
        Some(origin) if origin.starts_with("environment variable") => format!(" (from {origin})"),
        Some(origin) => format!(" in {origin}"),
        None => String::new(),
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

fn flatten(prefix: &str, table: &Map<String, Value>, keys: &mut BTreeMap<String, Kind>) {
    for (name, value) in table {
        let key = join(prefix, name);
        match &value.kind {
            ValueKind::Table(inner) => flatten(&key, inner, keys),
            other => {
                if let Some(kind) = Kind::of(other) {
                    keys.insert(key, kind);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::from_defaults(&super::super::defaults_table().unwrap())
    }

    #[test]
    fn the_defaults_define_every_section_and_type() {
        let schema = schema();
        assert_eq!(schema.kind("worker.concurrency"), Some(Kind::Integer));
        assert_eq!(schema.kind("ingest.secret"), Some(Kind::Text));
        assert_eq!(schema.kind("acs.allow_http"), Some(Kind::Boolean));
        assert_eq!(schema.kind("acs.allowed_download_hosts"), Some(Kind::List));
        assert!(schema.is_section("storage") && !schema.is_section("store"));
    }

    #[test]
    fn a_typo_is_matched_to_the_key_it_meant() {
        let schema = schema();
        assert_eq!(
            schema.nearest("worker.concurency"),
            Some("worker.concurrency")
        );
        assert_eq!(
            schema.nearest("wroker.concurrency"),
            Some("worker.concurrency")
        );
        assert_eq!(
            schema.nearest("worker.retention_hours"),
            Some("acs.retention_hours"),
            "the same name in another section"
        );
        assert_eq!(schema.nearest("telemetry.endpoint_url"), None);
    }
}
