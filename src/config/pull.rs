//! `ingest.mode` and `[ingest.pull]`: receiving from an Event Grid namespace topic instead of
//! being pushed to.

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::error::invalid;
use crate::secret::Secret;

/// How events reach callvault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestMode {
    /// Event Grid pushes deliveries to `/api/events`.
    Webhook,
    /// callvault receives from an Event Grid namespace topic's queue subscription.
    EventGridPull,
    /// Event Grid delivers into an Azure Storage queue that callvault receives from.
    StorageQueue,
}

impl IngestMode {
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        match text.trim() {
            "" | "webhook" => Ok(Self::Webhook),
            "eventgrid_pull" => Ok(Self::EventGridPull),
            "storage_queue" => Ok(Self::StorageQueue),
            other => Err(invalid(
                "ingest.mode",
                format!("`{other}` is not webhook, storage_queue or eventgrid_pull"),
            )),
        }
    }
}

/// The release delays Event Grid accepts, in seconds.
const RELEASE_DELAYS: [u64; 5] = [0, 10, 60, 600, 3600];

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct PullSettings {
    /// The namespace's endpoint, `https://NAMESPACE.REGION-1.eventgrid.azure.net`.
    pub endpoint: String,
    pub topic: String,
    /// The topic's event subscription, of delivery mode "queue".
    pub subscription: String,
    /// The namespace's access key, sent as `Authorization: SharedAccessKey KEY`.
    pub access_key: Secret,
    /// Events per receive.
    pub max_events: u32,
    /// Seconds a receive waits for its first event.
    pub max_wait_secs: u64,
    /// Seconds a released event waits before Event Grid offers it again.
    pub release_delay_secs: u64,
    /// Seconds between lock renewals while an intake runs.
    pub renew_lock_secs: u64,
}

impl PullSettings {
    /// The namespace endpoint, checked.
    pub fn endpoint_url(&self) -> Result<url::Url, ConfigError> {
        let url = url::Url::parse(self.endpoint.trim()).map_err(|err| {
            invalid(
                "ingest.pull.endpoint",
                format!(
                    "`{}` is not a URL ({err}): the namespace's https endpoint",
                    self.endpoint
                ),
            )
        })?;
        if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
            return Err(invalid(
                "ingest.pull.endpoint",
                "must be the namespace's https:// endpoint",
            ));
        }
        Ok(url)
    }

    /// Checks the settings when the mode is `eventgrid_pull`; `allow_http` lets a test's
    /// emulator on loopback answer over plain HTTP.
    pub fn validate(&self, allow_http: bool) -> Result<(), ConfigError> {
        let url = self.endpoint_url()?;
        if url.scheme() == "http" && !allow_http {
            return Err(invalid(
                "ingest.pull.endpoint",
                "is http://: the access key would cross the network in clear; use https:// (acs.allow_http = true allows it for an emulator)",
            ));
        }
        for (key, value) in [
            ("ingest.pull.topic", &self.topic),
            ("ingest.pull.subscription", &self.subscription),
        ] {
            let value = value.trim();
            if value.is_empty()
                || value.len() > 128
                || !value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(invalid(
                    key,
                    "must be the name as the namespace shows it (letters, digits, - and _, at most 128)",
                ));
            }
        }
        if self.access_key.is_empty() {
            return Err(invalid(
                "ingest.pull.access_key",
                "is empty: the namespace's access key (Settings → Access keys)",
            ));
        }
        if !(1..=100).contains(&self.max_events) {
            return Err(invalid("ingest.pull.max_events", "must be 1 to 100"));
        }
        if !(10..=120).contains(&self.max_wait_secs) {
            return Err(invalid(
                "ingest.pull.max_wait_secs",
                "must be 10 to 120, what Event Grid accepts",
            ));
        }
        if !RELEASE_DELAYS.contains(&self.release_delay_secs) {
            return Err(invalid(
                "ingest.pull.release_delay_secs",
                "must be 0, 10, 60, 600 or 3600, what Event Grid accepts",
            ));
        }
        if !(1..=3600).contains(&self.renew_lock_secs) {
            return Err(invalid(
                "ingest.pull.renew_lock_secs",
                "must be 1 to 3600 and below the subscription's lock duration",
            ));
        }
        Ok(())
    }
}
