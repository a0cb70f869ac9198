//! `[events]` and its `[[events.sinks]]`: where "recording archived" and "failed" events go.

use std::collections::BTreeSet;
use std::net::IpAddr;

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};
use crate::secret::Secret;

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct EventsSettings {
    /// CloudEvents `source` of every event; empty uses the host name.
    pub source: String,
    /// Attempts before an outbox row is `failed`.
    pub max_attempts: u32,
    /// First backoff delay between delivery attempts.
    pub backoff_initial_ms: u64,
    /// Backoff cap (and the longest `Retry-After` honoured).
    pub backoff_max_ms: u64,
    /// Deliveries in flight per sink (a sink's own `concurrency` overrides it).
    pub concurrency: usize,
    /// Seconds one delivery may take, connection included.
    pub request_timeout_secs: u64,
    /// Idle poll interval of each sink's dispatcher.
    pub poll_interval_ms: u64,
    /// Allow http:// sink URLs (local receivers and tests).
    pub allow_http: bool,
    /// Allow sinks on loopback, private and link-local addresses.
    pub allow_private_addresses: bool,
    /// The sinks; none writes no event.
    pub sinks: Vec<SinkSettings>,
}

/// What a sink delivers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkKind {
    /// An HTTP POST per event, signed as Standard Webhooks specify.
    Webhook,
    /// A message per event on an Azure Storage queue.
    StorageQueue,
    /// A POST per event to an Event Grid custom or namespace topic.
    EventgridTopic,
}

/// One `[[events.sinks]]` table.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SinkSettings {
    /// Unique, `[a-z0-9_-]`, at most 64: outbox rows, metrics and the admin API name it.
    pub name: String,
    pub kind: SinkKind,
    /// Event types it takes (`archived`, `failed`, `erased`, `verify_failed`); empty or absent takes every type.
    #[serde(default)]
    pub types: Vec<String>,
    /// webhook: the receiver; storage_queue: the queue
    /// (`https://ACCOUNT.queue.core.windows.net/QUEUE`).
    pub url: String,
    /// webhook: the signing secret, `whsec_` and the base64 of 24 to 64 random bytes;
    /// eventgrid_topic: the topic's access key.
    #[serde(default, skip_serializing_if = "Secret::is_empty")]
    pub secret: Secret,
    /// storage_queue: the account's key (Shared Key); the account is the URL's first host
    /// label, or its first path segment for a path-style URL (Azurite).
    #[serde(default, skip_serializing_if = "Secret::is_empty")]
    pub account_key: Secret,
    /// storage_queue: a SAS token with the add permission, instead of the account key.
    #[serde(default, skip_serializing_if = "Secret::is_empty")]
    pub sas: Secret,
    /// Deliveries in flight for this sink; absent uses `events.concurrency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
}

const NAME_BYTES: usize = 64;

impl SinkSettings {
    /// Deliveries this sink may have in flight.
    pub fn concurrency(&self, events: &EventsSettings) -> usize {
        self.concurrency.unwrap_or(events.concurrency)
    }
}

impl EventsSettings {
    /// The `source` events carry: the setting, else the host name.
    pub fn source(&self) -> String {
        if !self.source.trim().is_empty() {
            return self.source.trim().to_owned();
        }
        std::env::var("HOSTNAME")
            .ok()
            .filter(|host| !host.is_empty())
            .or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|host| host.trim().to_owned())
                    .filter(|host| !host.is_empty())
            })
            .unwrap_or_else(|| "callvault".to_owned())
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.source.len() > 1024 {
            return Err(invalid("events.source", "is longer than 1024 bytes"));
        }
        if !(1..=100).contains(&self.max_attempts) {
            return Err(invalid("events.max_attempts", "must be between 1 and 100"));
        }
        if self.backoff_initial_ms == 0 || self.backoff_initial_ms > self.backoff_max_ms {
            return Err(invalid(
                "events.backoff_initial_ms",
                "must be at least 1 and at most events.backoff_max_ms",
            ));
        }
        if self.backoff_max_ms > 86_400_000 {
            return Err(invalid(
                "events.backoff_max_ms",
                "must be at most 86400000 (a day)",
            ));
        }
        if !(1..=256).contains(&self.concurrency) {
            return Err(invalid("events.concurrency", "must be between 1 and 256"));
        }
        if !(1..=300).contains(&self.request_timeout_secs) {
            return Err(invalid(
                "events.request_timeout_secs",
                "must be between 1 and 300",
            ));
        }
        if !(10..=60_000).contains(&self.poll_interval_ms) {
            return Err(invalid(
                "events.poll_interval_ms",
                "must be between 10 and 60000",
            ));
        }
        if self.sinks.len() > 32 {
            return Err(invalid("events.sinks", "has more than 32 sinks"));
        }
        let mut names = BTreeSet::new();
        for (at, sink) in self.sinks.iter().enumerate() {
            let problem = |message: String| {
                invalid(
                    "events.sinks",
                    format!("sink `{}` (entry {}): {message}", sink.name, at + 1),
                )
            };
            self.check_sink(sink).map_err(problem)?;
            if !names.insert(sink.name.as_str()) {
                return Err(problem("another sink has the same name".to_owned()));
            }
        }
        Ok(())
    }

    fn check_sink(&self, sink: &SinkSettings) -> Result<(), String> {
        let name_ok = !sink.name.is_empty()
            && sink.name.len() <= NAME_BYTES
            && sink
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(format!(
                "name must be 1 to {NAME_BYTES} of a-z, 0-9, - and _"
            ));
        }
        for kind in &sink.types {
            if !matches!(
                kind.as_str(),
                "archived" | "failed" | "erased" | "verify_failed"
            ) {
                return Err(format!(
                    "types: `{kind}` is not an event type (archived, failed, erased, verify_failed)"
                ));
            }
        }
        if let Some(n) = sink.concurrency
            && !(1..=256).contains(&n)
        {
            return Err("concurrency must be between 1 and 256".to_owned());
        }
        let url = url::Url::parse(&sink.url)
            .map_err(|err| format!("url `{}` is not a URL: {err}", sink.url))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => {
                return Err(format!(
                    "url `{}` is plain http; use https (events.allow_http = true is for local receivers and tests)",
                    sink.url
                ));
            }
            other => return Err(format!("url scheme `{other}` is not https")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("url must not carry credentials; use the sink's secret".to_owned());
        }
        if let Some(ip) = literal_ip(&url)
            && let Some(kind) = crate::acs::address::refused_kind(ip)
            && !self.allow_private_addresses
        {
            return Err(format!(
                "url `{}` is a {kind} address; sinks must be public (events.allow_private_addresses = true lifts this)",
                sink.url
            ));
        }
        match sink.kind {
            SinkKind::Webhook => check_webhook_secret(sink.secret.expose()),
            SinkKind::EventgridTopic if sink.secret.is_empty() => {
                Err("an eventgrid_topic sink needs secret, the topic's access key".to_owned())
            }
            SinkKind::EventgridTopic => Ok(()),
            SinkKind::StorageQueue => {
                if sink.account_key.is_empty() == sink.sas.is_empty() {
                    return Err(
                        "a storage_queue sink needs exactly one of account_key and sas".to_owned(),
                    );
                }
                if !sink.account_key.is_empty()
                    && base64::engine::general_purpose::STANDARD
                        .decode(sink.account_key.expose().trim())
                        .is_err()
                {
                    return Err("account_key is not base64".to_owned());
                }
                if url
                    .path_segments()
                    .is_none_or(|mut s| s.next_back().unwrap_or("").is_empty())
                {
                    return Err(format!("url `{}` names no queue", sink.url));
                }
                Ok(())
            }
        }
    }
}

fn literal_ip(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(name) if name.eq_ignore_ascii_case("localhost") => {
            Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
        }
        url::Host::Domain(_) => None,
    }
}

/// A Standard Webhooks secret: `whsec_` and the base64 of 24 to 64 bytes.
fn check_webhook_secret(secret: &str) -> Result<(), String> {
    let Some(encoded) = secret.strip_prefix("whsec_") else {
        return Err(
            "secret must be `whsec_` followed by base64 of 24 to 64 random bytes (e.g. `whsec_$(head -c 32 /dev/urandom | base64)`)"
                .to_owned(),
        );
    };
    match base64::engine::general_purpose::STANDARD.decode(encoded) {
        Ok(key) if (24..=64).contains(&key.len()) => Ok(()),
        Ok(key) => Err(format!(
            "secret decodes to {} bytes; it must be 24 to 64",
            key.len()
        )),
        Err(_) => Err("secret after `whsec_` is not base64".to_owned()),
    }
}
