//! Settings: built-in defaults (`config/default.toml`), `--config FILE`, then
//! `CALLVAULT__SECTION__KEY` environment variables, validated before anything starts. The
//! defaults are also the schema: a key they do not have, or a value of another type than
//! theirs, stops start-up.

mod admin_tokens;
mod bounds;
mod entra;
mod environment;
mod error;
mod events;
mod file;
mod hosts;
mod pull;
mod queue_delivery;
mod recording;
mod render;
mod schema;
mod webhook_secret;

#[cfg(test)]
mod loading_tests;
#[cfg(test)]
mod retention_settings_tests;
#[cfg(test)]
mod validation_tests;
#[cfg(test)]
mod verify_settings_tests;

use std::ffi::OsString;
use std::path::Path;

use config::Source;
use serde::{Deserialize, Serialize};

use crate::acs::{AcsCredentials, UrlGuard};
use crate::secret::Secret;
use crate::storage::{StorageSection, StorageSettings};

pub use admin_tokens::{LEGACY_NAME as LEGACY_ADMIN_TOKEN_NAME, MIN_TOKEN_LENGTH, NamedToken};
pub use entra::{EntraPolicy, EntraSettings};
use error::invalid;
pub use error::{ConfigError, WrongType};
pub use events::{EventsSettings, SinkKind, SinkSettings};
pub use pull::{IngestMode, PullSettings};
pub use queue_delivery::QueueDeliverySettings;
pub use recording::RecordingSettings;
pub use render::effective_toml;
pub use schema::UnknownKey;

const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub acs: AcsSettings,
    pub ingest: IngestSettings,
    pub worker: WorkerSettings,
    pub storage: StorageSection,
    pub admin: AdminSettings,
    pub retention: RetentionSettings,
    pub audit: AuditSettings,
    pub verify: VerifySettings,
    pub events: EventsSettings,
    pub recording: RecordingSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ServerSettings {
    /// HTTP listen address.
    pub bind: String,
    /// Larger webhook bodies get 413.
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` or `postgres://…`.
    pub url: Secret,
    /// Connections in the pool.
    pub max_connections: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AcsSettings {
    /// `endpoint=…;accesskey=…`.
    pub connection_string: Secret,
    /// Endpoint when no connection string is given.
    pub endpoint: String,
    /// Access key when no connection string is given.
    pub access_key: Secret,
    /// Host suffixes a download URL must end with.
    pub allowed_download_hosts: Vec<String>,
    /// Allow http:// download URLs (emulator and tests).
    pub allow_http: bool,
    /// How long ACS keeps a recording.
    pub retention_hours: u64,
    /// Seconds without progress before a download request is abandoned.
    pub request_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct IngestSettings {
    /// `webhook` or `eventgrid_pull` (read with [`IngestSettings::mode`]).
    pub mode: String,
    /// Webhook secret (`?code=` or `x-callvault-secret`).
    pub secret: Secret,
    /// Accept webhook calls without a secret.
    pub allow_anonymous: bool,
    /// Microsoft Entra ID bearer tokens on every delivery.
    pub entra: EntraSettings,
    /// The Event Grid namespace subscription of `eventgrid_pull` mode.
    pub pull: PullSettings,
    /// The Azure Storage queue of `storage_queue` mode.
    pub queue: QueueDeliverySettings,
}

impl IngestSettings {
    pub fn mode(&self) -> Result<IngestMode, ConfigError> {
        IngestMode::parse(&self.mode)
    }

    /// Whether the webhook has a secret, Entra ID or is open on purpose.
    pub fn webhook_is_guarded(&self) -> bool {
        !self.secret.is_empty() || self.allow_anonymous || self.entra.is_on()
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct WorkerSettings {
    /// Chunk transfers in flight per process.
    pub concurrency: usize,
    /// Attempts before a job is `failed`.
    pub max_attempts: u32,
    /// First backoff delay.
    pub backoff_initial_ms: u64,
    /// Backoff cap.
    pub backoff_max_ms: u64,
    /// Lease length of a running job.
    pub lease_secs: u64,
    /// Idle poll interval.
    pub poll_interval_ms: u64,
    /// DELETE the source at ACS after a verified archive.
    pub delete_source_after_archive: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AdminSettings {
    /// Bearer token for `/admin/*`, an operator token named `admin`; empty: none.
    pub token: Secret,
    /// Named tokens with a role (`[[admin.tokens]]`). With neither these nor `token`, the
    /// admin API answers 404.
    pub tokens: Vec<NamedToken>,
    /// Hours before a deadline at which a pending job is reported as at risk.
    pub deadline_warning_hours: u64,
    /// Days a quarantine entry is kept after its replay (or, never replayed, its arrival).
    pub quarantine_retention_days: u64,
    /// Folder the admin API's access-request exports are written to; empty turns them off.
    pub export_dir: String,
    /// Hours an ended export's file is kept before it is deleted.
    pub export_keep_hours: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RetentionSettings {
    /// Days after a recording's start when it is erased; 0 keeps recordings for ever.
    pub delete_after_days: u64,
    /// Recordings erased per run at most.
    pub batch_size: u64,
    /// Minutes between runs.
    pub interval_minutes: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AuditSettings {
    /// Seconds between two copies of new audit records to the store (`serve`, worker role).
    pub flush_interval_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct VerifySettings {
    /// Bytes per hour the scheduled verifier re-reads; 0 turns it off.
    pub bytes_per_hour: u64,
    /// How far the chunks may fall short of the announced duration before a recording is `short`.
    pub duration_tolerance_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LogSettings {
    /// `pretty`, `json`, or empty for automatic.
    pub format: String,
    /// EnvFilter directive.
    pub level: String,
}

impl Settings {
    /// Loads the layers; `overrides` (key, value) pairs are applied last (used by `demo` and tests).
    pub fn load(file: Option<&Path>, overrides: &[(&str, String)]) -> Result<Self, ConfigError> {
        Self::load_from(file, std::env::vars_os(), overrides)
    }

    /// Only the built-in defaults plus overrides, ignoring the environment (tests).
    pub fn defaults_with(overrides: &[(&str, String)]) -> Result<Self, ConfigError> {
        Self::load_from(None, std::iter::empty(), overrides)
    }

    /// The layers with the environment given as `vars`, so tests need not touch the process's.
    pub fn load_from(
        file: Option<&Path>,
        vars: impl IntoIterator<Item = (OsString, OsString)>,
        overrides: &[(&str, String)],
    ) -> Result<Self, ConfigError> {
        let schema = schema::Schema::from_defaults(&defaults_table()?);
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(file) = file {
            builder = builder.add_source(file::FileLayer::read(file)?);
        }
        builder = builder.add_source(environment::EnvironmentLayer::read(&schema, vars)?);
        for (key, raw) in overrides {
            builder = builder.set_override(*key, override_value(&schema, key, raw)?)?;
        }
        let merged = builder.build()?;
        schema.check(&merged.collect()?)?;
        Ok(merged.try_deserialize()?)
    }

    /// The ACS credentials from `acs.connection_string` or `acs.endpoint` + `acs.access_key`.
    pub fn acs_credentials(&self) -> Result<AcsCredentials, ConfigError> {
        if !self.acs.connection_string.is_empty() {
            return AcsCredentials::parse(self.acs.connection_string.expose())
                .map_err(|err| invalid("acs.connection_string", err.to_string()));
        }
        if self.acs.endpoint.trim().is_empty() {
            return Err(invalid(
                "acs.connection_string",
                "is required (or acs.endpoint + acs.access_key): it is found under Keys of the ACS resource",
            ));
        }
        if self.acs.access_key.is_empty() {
            return Err(invalid(
                "acs.access_key",
                "is required when acs.endpoint is set",
            ));
        }
        AcsCredentials::new(&self.acs.endpoint, self.acs.access_key.expose())
            .map_err(|err| invalid("acs.endpoint", err.to_string()))
    }

    /// The storage settings the backends take, validated from the `[storage]` section.
    pub fn storage_settings(&self) -> Result<StorageSettings, ConfigError> {
        Ok(self.storage.validate()?)
    }

    /// The SSRF guard for download URLs.
    pub fn url_guard(&self) -> Result<UrlGuard, ConfigError> {
        let creds = self.acs_credentials()?;
        Ok(UrlGuard::new(
            &self.acs.allowed_download_hosts,
            &creds.endpoint,
            self.acs.allow_http,
        ))
    }

    /// The credentials must parse, and the key's signatures travel over https unless
    /// `acs.allow_http` says this is the emulator or a test.
    fn check_acs_endpoint(&self) -> Result<(), ConfigError> {
        let creds = self.acs_credentials()?;
        if creds.endpoint.scheme() == "http" && !self.acs.allow_http {
            let key = if self.acs.connection_string.is_empty() {
                "acs.endpoint"
            } else {
                "acs.connection_string"
            };
            return Err(invalid(
                key,
                format!(
                    "the ACS endpoint `{}` is plain http, which would send signed requests and recordings unencrypted; use https (acs.allow_http = true is for the emulator and tests only)",
                    creds.endpoint
                ),
            ));
        }
        Ok(())
    }

    /// Checks every value that can be checked without touching the network.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.server.bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "server.bind",
                format!(
                    "`{}` is not an address such as 0.0.0.0:8080",
                    self.server.bind
                ),
            ));
        }
        if self.server.max_body_bytes < 1024 {
            return Err(invalid("server.max_body_bytes", "must be at least 1024"));
        }
        let db = self.database.url.expose();
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database.url",
                "must start with sqlite:// or postgres://",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1"));
        }
        self.check_acs_endpoint()?;
        for suffix in &self.acs.allowed_download_hosts {
            hosts::check_suffix(suffix).map_err(|problem| {
                invalid("acs.allowed_download_hosts", problem.explain(suffix))
            })?;
        }
        self.ingest.entra.validate()?;
        let mode = self.ingest.mode()?;
        match mode {
            IngestMode::EventGridPull => self.ingest.pull.validate(self.acs.allow_http)?,
            IngestMode::StorageQueue => self.ingest.queue.validate(self.acs.allow_http)?,
            IngestMode::Webhook => {}
        }
        if mode == IngestMode::Webhook && !self.ingest.webhook_is_guarded() {
            return Err(invalid(
                "ingest.secret",
                "is empty: set a secret (and ?code=SECRET on the Event Grid subscription), or Microsoft Entra ID (ingest.entra.tenant_id and ingest.entra.audience), or ingest.allow_anonymous = true",
            ));
        }
        if let Some(c) = webhook_secret::first_unsafe_character(self.ingest.secret.expose()) {
            return Err(invalid("ingest.secret", webhook_secret::explain(c)));
        }
        admin_tokens::validate(&self.admin.tokens, &self.admin.token)?;
        bounds::check(self)?;
        self.storage.validate()?;
        self.events.validate()?;
        self.recording.validate(self.acs.allow_http)?;
        match self.log.format.as_str() {
            "" | "pretty" | "json" => {}
            other => {
                return Err(invalid(
                    "log.format",
                    format!("`{other}` is not pretty or json"),
                ));
            }
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(invalid(
                "log.level",
                format!("`{}` is not a valid filter", self.log.level),
            ));
        }
        Ok(())
    }
}

/// The built-in defaults as a table of values.
fn defaults_table() -> Result<config::Map<String, config::Value>, ConfigError> {
    Ok(config::File::from_str(DEFAULTS, config::FileFormat::Toml).collect()?)
}

/// An override typed like its key in the defaults, as an environment variable would be.
fn override_value(
    schema: &schema::Schema,
    key: &str,
    raw: &str,
) -> Result<config::Value, ConfigError> {
    let kind = match schema.kind(key) {
        Some(kind) => environment::typed_for(key, kind, raw).ok_or_else(|| {
            ConfigError::wrong_type(
                key,
                " (override)",
                kind.expectation(),
                environment::shown(kind, raw),
            )
        })?,
        None => config::ValueKind::String(raw.to_owned()),
    };
    Ok(config::Value::new(None, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_overrides() -> Vec<(&'static str, String)> {
        vec![
            (
                "acs.connection_string",
                "endpoint=https://x.communication.azure.com/;accesskey=aGVsbG8=".into(),
            ),
            ("ingest.secret", "s3cret".into()),
        ]
    }

    #[test]
    fn defaults_match_the_contract() {
        let settings = Settings::defaults_with(&[]).unwrap();
        assert_eq!(settings.server.bind, "0.0.0.0:8080");
        assert_eq!(settings.server.max_body_bytes, 4_194_304);
        assert_eq!(settings.worker.concurrency, 4);
        assert_eq!(settings.worker.max_attempts, 12);
        assert_eq!(settings.worker.lease_secs, 60);
        assert_eq!(settings.acs.retention_hours, 24);
        assert_eq!(settings.storage.part_size_bytes, 16_777_216);
        assert_eq!(settings.acs.allowed_download_hosts.len(), 3);
    }

    #[test]
    fn an_empty_secret_is_refused_with_the_key_named() {
        let settings = Settings::defaults_with(&valid_overrides()[..1]).unwrap();
        let message = settings.validate().unwrap_err().to_string();
        assert!(message.contains("ingest.secret"), "{message}");
    }

    #[test]
    fn a_missing_connection_string_names_the_key() {
        let settings = Settings::defaults_with(&[("ingest.secret", "x".into())]).unwrap();
        assert!(
            settings
                .validate()
                .unwrap_err()
                .to_string()
                .contains("acs.connection_string")
        );
    }

    #[test]
    fn valid_settings_pass() {
        Settings::defaults_with(&valid_overrides())
            .unwrap()
            .validate()
            .unwrap();
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let mut overrides = valid_overrides();
        overrides.push(("worker.concurrency", "0".into()));
        assert!(
            Settings::defaults_with(&overrides)
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string()
                .contains("worker.concurrency")
        );
    }

    #[test]
    fn secrets_do_not_reach_debug_output() {
        let settings = Settings::defaults_with(&valid_overrides()).unwrap();
        let shown = format!("{settings:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("aGVsbG8="),
            "{shown}"
        );
    }
}
