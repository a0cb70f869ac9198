//! The configuration's errors: each names the key at fault.

use crate::storage::InvalidSetting;

use super::UnknownKey;

/// A configuration problem, always naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
    #[error("{}", unknown_keys(.0))]
    UnknownKeys(Vec<UnknownKey>),
    #[error("{0}")]
    WrongType(Box<WrongType>),
    #[error("cannot read configuration file {path}: {message}")]
    File { path: String, message: String },
    #[error("environment variable {variable} is not valid UTF-8")]
    NotUnicode { variable: String },
    /// The `[storage]` section, which storage validates itself.
    #[error(transparent)]
    Storage(#[from] InvalidSetting),
}

/// A value whose type is not its key's (boxed: errors stay small).
#[derive(Debug, thiserror::Error)]
#[error("configuration key `{key}`{origin} must be {expected}, not {found}")]
pub struct WrongType {
    pub key: String,
    pub origin: String,
    pub expected: &'static str,
    pub found: String,
}

impl ConfigError {
    pub(crate) fn wrong_type(
        key: impl Into<String>,
        origin: impl Into<String>,
        expected: &'static str,
        found: impl Into<String>,
    ) -> Self {
        ConfigError::WrongType(Box::new(WrongType {
            key: key.into(),
            origin: origin.into(),
            expected,
            found: found.into(),
        }))
    }
}

fn unknown_keys(keys: &[UnknownKey]) -> String {
    let listed: Vec<String> = keys.iter().map(UnknownKey::to_string).collect();
    format!(
        "{} (config/default.toml documents every key)",
        listed.join("; ")
    )
}

pub(super) fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}
