//! `[ingest.queue]`: receiving from the Azure Storage queue Event Grid delivers into.

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::error::invalid;
use crate::secret::Secret;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct QueueDeliverySettings {
    /// `https://ACCOUNT.queue.core.windows.net/QUEUE`.
    pub url: String,
    /// The storage account's key; empty: `AZURE_STORAGE_ACCOUNT_KEY`.
    pub account_key: Secret,
    /// A SAS token instead of the key; empty: `AZURE_STORAGE_SAS_KEY`.
    pub sas: Secret,
    /// A message received more often than this is quarantined with its text and deleted.
    pub max_dequeue: u32,
    /// Seconds a received message stays hidden from other receivers; extended while its
    /// intake runs.
    pub visibility_timeout_secs: u64,
    /// Messages per receive.
    pub batch: u32,
}

impl QueueDeliverySettings {
    pub fn queue_url(&self) -> Result<url::Url, ConfigError> {
        let url = url::Url::parse(self.url.trim()).map_err(|err| {
            invalid(
                "ingest.queue.url",
                format!(
                    "`{}` is not a URL ({err}): https://ACCOUNT.queue.core.windows.net/QUEUE",
                    self.url
                ),
            )
        })?;
        let has_queue = url
            .path_segments()
            .is_some_and(|segments| segments.filter(|s| !s.is_empty()).count() >= 1);
        if !matches!(url.scheme(), "https" | "http") || !has_queue || url.query().is_some() {
            return Err(invalid(
                "ingest.queue.url",
                "must be the queue's URL, https://ACCOUNT.queue.core.windows.net/QUEUE, without a query (put a SAS in ingest.queue.sas)",
            ));
        }
        Ok(url)
    }

    /// The key and SAS, falling back to the standard environment variables.
    pub fn credentials(&self) -> (Secret, Secret) {
        let or_env = |value: &Secret, variable: &str| {
            if value.is_empty() {
                Secret::new(std::env::var(variable).unwrap_or_default())
            } else {
                value.clone()
            }
        };
        (
            or_env(&self.account_key, "AZURE_STORAGE_ACCOUNT_KEY"),
            or_env(&self.sas, "AZURE_STORAGE_SAS_KEY"),
        )
    }

    pub fn validate(&self, allow_http: bool) -> Result<(), ConfigError> {
        let url = self.queue_url()?;
        if url.scheme() == "http" && !allow_http {
            return Err(invalid(
                "ingest.queue.url",
                "is http://: use https:// (acs.allow_http = true allows http for an emulator)",
            ));
        }
        let (key, sas) = self.credentials();
        let azurite = crate::azure_queue::account_of(&url) == crate::azure_queue::EMULATOR_ACCOUNT;
        if key.is_empty() && sas.is_empty() && !azurite {
            return Err(invalid(
                "ingest.queue.account_key",
                "is empty and so is ingest.queue.sas (and AZURE_STORAGE_ACCOUNT_KEY / AZURE_STORAGE_SAS_KEY): one is needed",
            ));
        }
        if !key.is_empty() {
            use base64::Engine;
            if base64::engine::general_purpose::STANDARD
                .decode(key.expose().trim())
                .is_err()
            {
                return Err(invalid(
                    "ingest.queue.account_key",
                    "is not base64, as an account key is",
                ));
            }
        }
        if !(1..=100).contains(&self.max_dequeue) {
            return Err(invalid("ingest.queue.max_dequeue", "must be 1 to 100"));
        }
        if !(10..=3600).contains(&self.visibility_timeout_secs) {
            return Err(invalid(
                "ingest.queue.visibility_timeout_secs",
                "must be 10 to 3600",
            ));
        }
        if !(1..=32).contains(&self.batch) {
            return Err(invalid(
                "ingest.queue.batch",
                "must be 1 to 32, what Get Messages allows",
            ));
        }
        Ok(())
    }
}
