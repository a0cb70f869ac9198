//! The `--config FILE` layer, read here rather than by the config crate so that every message
//! names the file as the operator gave it (the crate rewrites it relative to the working
//! directory, e.g. `../../etc/callvault.toml`).

use std::path::Path;

use config::{Map, Source, Value, ValueKind};

use super::ConfigError;

/// The parsed file, every value tagged with the path it came from.
#[derive(Clone)]
pub(crate) struct FileLayer {
    values: Map<String, Value>,
}

impl FileLayer {
    pub(crate) fn read(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let problem = |message: String| ConfigError::File {
            path: shown.clone(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|err| problem(err.to_string()))?;
        let parsed = config::File::from_str(&text, config::FileFormat::Toml)
            .collect()
            .map_err(|err| problem(err.to_string().trim_end().to_owned()))?;
        Ok(Self {
            values: retag(parsed, &shown),
        })
    }
}

fn retag(table: Map<String, Value>, origin: &String) -> Map<String, Value> {
    table
        .into_iter()
        .map(|(key, value)| (key, retag_value(value, origin)))
        .collect()
}

fn retag_value(value: Value, origin: &String) -> Value {
    let kind = match value.kind {
        ValueKind::Table(table) => ValueKind::Table(retag(table, origin)),
        ValueKind::Array(items) => ValueKind::Array(
            items
                .into_iter()
                .map(|item| retag_value(item, origin))
                .collect(),
        ),
        other => other,
    };
    Value::new(Some(origin), kind)
}

impl Source for FileLayer {
    fn clone_into_box(&self) -> Box<dyn Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<Map<String, Value>, config::ConfigError> {
        Ok(self.values.clone())
    }
}

/// Section names only: the values may be secrets.
impl std::fmt::Debug for FileLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}
