//! Importing what Event Grid dead-lettered: blobs `{container}/{SUBSCRIPTION}/{YYYY}/{M}/{D}/{H}/
//! {guid}.json`, each holding one or more events, read through the archive's own storage code
//! (a local folder, an Azure container or an S3 bucket) and fed through the same intake as a
//! webhook delivery. The intake's dedup by event id makes a second import change nothing.

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::Value;

use super::delivery::{DeliverySummary, Intake, StoreError};
use super::envelope::{self, MAX_EVENTS_PER_DELIVERY};
use crate::storage::{
    Archive, AzureSettings, LocalSettings, S3Encryption, S3Settings, StorageBackend, StorageError,
    StorageSettings,
};

/// Event Grid caps an event at 1 MiB and writes a few per blob; a blob this large is not one
/// of its dead letters, and is reported rather than read into memory.
pub const MAX_BLOB_BYTES: u64 = 64 * 1024 * 1024;

/// Where the dead letters are, as `--container` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterSource {
    /// The store to open (its `prefix` is unused: listing is under [`Self::prefix`]).
    pub settings: StorageSettings,
    /// Keys are listed under this (e.g. one subscription's folder); empty for all.
    pub prefix: String,
    /// The Azure account named by the URL, for object_store's configuration.
    account: Option<String>,
}

/// A `--container` value callvault cannot read from.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("--container `{given}`: {reason}")]
pub struct SourceError {
    given: String,
    reason: String,
}

impl DeadLetterSource {
    /// Reads `--container`:
    /// - `https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX]` (any Azure cloud's
    ///   `*.blob.core.*` host): an Azure container, credentials from `AZURE_STORAGE_*`;
    /// - `http[s]://HOST[:PORT]/ACCOUNT/CONTAINER[/PREFIX]`: the same, path-style (Azurite);
    /// - `s3://BUCKET[/PREFIX]`: an S3 bucket, credentials from `AWS_*`, the endpoint from
    ///   `s3_endpoint` (or `AWS_ENDPOINT`) for an S3-compatible store;
    /// - anything else, or `file://…`: a local folder, which must exist.
    pub fn parse(given: &str, s3_endpoint: Option<&str>) -> Result<Self, SourceError> {
        // A SAS in the query is a credential: never repeated in an error.
        let shown = given.split('?').next().unwrap_or_default();
        let refuse = |reason: &str| SourceError {
            given: shown.to_owned(),
            reason: reason.to_owned(),
        };
        let text = given.trim();
        if text.is_empty() {
            return Err(refuse(
                "empty; give a folder, an Azure container URL or s3://BUCKET",
            ));
        }
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = split_first(rest);
            if bucket.is_empty() {
                return Err(refuse("no bucket after s3://"));
            }
            return Ok(Self::with_backend(
                StorageBackend::S3(S3Settings {
                    bucket: bucket.to_owned(),
                    endpoint: s3_endpoint.map(str::to_owned),
                    region: None,
                    storage_class: None,
                    encryption: S3Encryption::BucketDefault,
                }),
                prefix,
                None,
            ));
        }
        if text.starts_with("http://") || text.starts_with("https://") {
            return Self::parse_azure(text).map_err(|reason| refuse(&reason));
        }
        let folder = text.strip_prefix("file://").unwrap_or(text);
        let path = std::path::PathBuf::from(folder);
        if !path.is_dir() {
            return Err(refuse("no such folder (nor an http(s):// or s3:// URL)"));
        }
        Ok(Self::with_backend(
            StorageBackend::Local(LocalSettings { path }),
            "",
            None,
        ))
    }

    fn parse_azure(text: &str) -> Result<Self, String> {
        let url = url::Url::parse(text).map_err(|err| format!("not a URL: {err}"))?;
        let host = url.host_str().ok_or("no host")?;
        let segments: Vec<&str> = url
            .path_segments()
            .map(|segments| segments.filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        let origin = url.origin().ascii_serialization();
        let (account, endpoint, rest) = match host.split_once(".blob.core.") {
            // Virtual-host style: the account is the host's first label.
            Some((account, _)) => (account.to_owned(), origin, &segments[..]),
            // Path style (Azurite): the account is the first segment.
            None => {
                let (account, rest) = segments
                    .split_first()
                    .ok_or("no account in the path (http://HOST/ACCOUNT/CONTAINER)")?;
                ((*account).to_owned(), format!("{origin}/{account}"), rest)
            }
        };
        let (container, prefix) = rest.split_first().ok_or("no container in the URL")?;
        if url.query().is_some() {
            return Err("put a SAS in AZURE_STORAGE_SAS_KEY, not in the URL".into());
        }
        Ok(Self::with_backend(
            StorageBackend::Azure(AzureSettings {
                container: (*container).to_owned(),
                endpoint: Some(endpoint),
                access_tier: None,
                content_md5: false,
            }),
            &prefix.join("/"),
            Some(account),
        ))
    }

    fn with_backend(backend: StorageBackend, prefix: &str, account: Option<String>) -> Self {
        Self {
            settings: StorageSettings {
                prefix: String::new(),
                part_size_bytes: 8 * 1024 * 1024,
                upload_concurrency: 1,
                request_timeout_secs: 60,
                backend,
                manifest_signer: None,
                object_lock: None,
            },
            prefix: prefix.trim_matches('/').to_owned(),
            account,
        }
    }

    /// Opens the store, to read only.
    pub async fn open(&self) -> Result<Archive, StorageError> {
        match &self.account {
            Some(account) => {
                Archive::open_with(&self.settings, &[("azure_storage_account_name", account)]).await
            }
            None => Archive::open(&self.settings).await,
        }
    }
}

fn split_first(path: &str) -> (&str, &str) {
    let path = path.trim_matches('/');
    path.split_once('/').unwrap_or((path, ""))
}

/// The UTC hour a dead-letter blob's name places it in (`…/YYYY/M/D/H/NAME.json`, not
/// zero-padded), or None for a name of another shape.
pub fn blob_hour(key: &str) -> Option<DateTime<Utc>> {
    let segments: Vec<&str> = key.rsplitn(6, '/').collect();
    // rsplitn yields the name first, then H, D, M, YYYY.
    let [_, hour, day, month, year, ..] = segments[..] else {
        return None;
    };
    let number = |text: &str| -> Option<u32> {
        (!text.is_empty() && text.len() <= 4 && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse().ok())
            .flatten()
    };
    let date = NaiveDate::from_ymd_opt(number(year)? as i32, number(month)?, number(day)?)?;
    let at = date.and_hms_opt(number(hour)?, 0, 0)?;
    Some(Utc.from_utc_datetime(&at))
}

/// Whether a blob written in `hour` may hold events dead-lettered at or after `since`.
fn is_since(hour: DateTime<Utc>, since: DateTime<Utc>) -> bool {
    hour + chrono::Duration::hours(1) > since
}

/// Why one blob's events could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlobError {
    #[error("{0} bytes, more than the {MAX_BLOB_BYTES} a dead-letter blob can hold")]
    TooLarge(u64),
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("neither an event nor an array of events")]
    NotEvents,
}

/// The events of one blob, in batches the intake takes. Each element is an event as it was
/// published (Event Grid schema, with `deadLetterReason` and its siblings beside it, or a
/// CloudEvent with them as extension attributes) or, as namespace topics write it, an object
/// holding the event under `event` beside its broker properties.
pub fn blob_events(body: &[u8]) -> Result<Vec<Vec<envelope::Envelope>>, BlobError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|err| BlobError::NotJson(err.to_string()))?;
    let items = match value {
        Value::Array(items) => items,
        item @ Value::Object(_) => vec![item],
        _ => return Err(BlobError::NotEvents),
    };
    let events: Vec<Value> = items.into_iter().map(unwrap_dead_letter).collect();
    let mut batches = Vec::new();
    for batch in events.chunks(MAX_EVENTS_PER_DELIVERY) {
        let bytes = serde_json::to_vec(batch).map_err(|err| BlobError::NotJson(err.to_string()))?;
        let parsed = envelope::parse_body(&bytes).map_err(|_| BlobError::NotEvents)?;
        batches.push(parsed);
    }
    Ok(batches)
}

/// The published event inside a namespace topic's dead-letter record; any other element is
/// taken as the event itself.
fn unwrap_dead_letter(item: Value) -> Value {
    let is_wrapper = item.get("event").is_some_and(Value::is_object)
        && item.get("eventType").is_none()
        && item.get("specversion").is_none();
    match item {
        Value::Object(mut fields) if is_wrapper => fields.remove("event").unwrap_or_default(),
        other => other,
    }
}

/// What an import did, for its report and its progress line.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    /// Blobs read and fed to the intake.
    pub blobs_imported: u64,
    /// Blobs before `--since` by their name's hour.
    pub blobs_skipped_older: u64,
    /// Objects whose name does not end in `.json`.
    pub objects_skipped_other: u64,
    pub events: DeliverySummary,
    /// Blobs that could not be read, with the reason; the rest of the import goes on.
    pub invalid_blobs: Vec<InvalidBlob>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InvalidBlob {
    pub key: String,
    pub reason: String,
}

/// Why an import stopped before the end (what it had done is in the report passed along).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot list or read the dead letters: {0}")]
    Storage(#[from] StorageError),
    #[error("the database did not take the events: {0}")]
    Store(#[from] StoreError),
}

/// Imports every dead-letter blob under `prefix` (written at or after `since`, by its name's
/// hour), calling `progress` after each blob. Stops at the first storage or database failure;
/// re-running then imports the rest and finds what it had imported to be duplicates.
pub async fn import(
    intake: &Intake,
    store: &dyn ObjectStore,
    prefix: &str,
    since: Option<DateTime<Utc>>,
    mut progress: impl FnMut(&ImportReport),
) -> Result<ImportReport, (ImportReport, ImportError)> {
    let mut report = ImportReport::default();
    let prefix = (!prefix.is_empty()).then(|| Path::from(prefix));
    let mut listing = store.list(prefix.as_ref());
    loop {
        let meta = match listing.try_next().await {
            Ok(Some(meta)) => meta,
            Ok(None) => break,
            Err(err) => return Err((report, ImportError::Storage(err.into()))),
        };
        let key = meta.location.to_string();
        if !key.ends_with(".json") {
            report.objects_skipped_other += 1;
            continue;
        }
        let hour = blob_hour(&key).unwrap_or(meta.last_modified);
        if since.is_some_and(|since| !is_since(hour, since)) {
            report.blobs_skipped_older += 1;
            continue;
        }
        let body = match read_bounded(store, &meta).await {
            Ok(Ok(body)) => body,
            Ok(Err(invalid)) => {
                report.invalid_blobs.push(InvalidBlob {
                    key,
                    reason: invalid.to_string(),
                });
                continue;
            }
            Err(err) => return Err((report, ImportError::Storage(err))),
        };
        match blob_events(&body) {
            Ok(batches) => {
                for batch in batches {
                    match intake.store(batch).await {
                        Ok(summary) => add(&mut report.events, summary),
                        Err(err) => return Err((report, ImportError::Store(err))),
                    }
                }
                report.blobs_imported += 1;
            }
            Err(invalid) => report.invalid_blobs.push(InvalidBlob {
                key,
                reason: invalid.to_string(),
            }),
        }
        progress(&report);
    }
    Ok(report)
}

async fn read_bounded(
    store: &dyn ObjectStore,
    meta: &object_store::ObjectMeta,
) -> Result<Result<Bytes, BlobError>, StorageError> {
    if meta.size > MAX_BLOB_BYTES {
        return Ok(Err(BlobError::TooLarge(meta.size)));
    }
    let body = store.get(&meta.location).await?.bytes().await?;
    // The listing's size may be stale; the bound holds on what was read.
    if body.len() as u64 > MAX_BLOB_BYTES {
        return Ok(Err(BlobError::TooLarge(body.len() as u64)));
    }
    Ok(Ok(body))
}

fn add(total: &mut DeliverySummary, more: DeliverySummary) {
    total.accepted += more.accepted;
    total.duplicates += more.duplicates;
    total.quarantined += more.quarantined;
    total.ignored += more.ignored;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_hour_from_event_grids_unpadded_blob_names() {
        let hour = blob_hour("MY-SUB/2019/8/8/5/1111-2222.json").unwrap();
        assert_eq!(hour.to_rfc3339(), "2019-08-08T05:00:00+00:00");
        let padded = blob_hour("prefix/MY-SUB/2026/12/03/23/a.json").unwrap();
        assert_eq!(padded.to_rfc3339(), "2026-12-03T23:00:00+00:00");
        assert_eq!(blob_hour("MY-SUB/2019/8/8/24/a.json"), None, "hour 24");
        assert_eq!(blob_hour("MY-SUB/2019/2/30/1/a.json"), None, "30 February");
        assert_eq!(blob_hour("a.json"), None);
        assert_eq!(
            blob_hour("x/2019/8/8/+5/a.json"),
            None,
            "a sign is not a digit"
        );
    }

    #[test]
    fn an_hour_folder_counts_when_any_of_it_is_at_or_after_since() {
        let hour = blob_hour("S/2026/12/3/10/a.json").unwrap();
        let at = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().to_utc();
        assert!(is_since(hour, at("2026-12-03T10:59:00Z")));
        assert!(is_since(hour, at("2026-12-03T09:00:00Z")));
        assert!(!is_since(hour, at("2026-12-03T11:00:00Z")));
    }

    #[test]
    fn takes_event_grid_and_cloud_events_dead_letters_and_namespace_wrappers() {
        let body = serde_json::json!([
            {"id": "a", "eventType": "T", "subject": "s", "data": {}, "eventTime": "2026-12-03T10:00:00Z",
             "deadLetterReason": "MaxDeliveryAttemptsExceeded", "deliveryAttempts": 30},
            {"specversion": "1.0", "id": "b", "type": "T", "source": "x", "data": {},
             "deadletterreason": "TimeToLiveExceeded"},
            {"brokerProperties": {"deadletterreason": "Rejected"},
             "event": {"specversion": "1.0", "id": "c", "type": "T", "source": "x", "data": {}}}
        ]);
        let batches = blob_events(&serde_json::to_vec(&body).unwrap()).unwrap();
        let ids: Vec<_> = batches[0].iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(batches[0][2].event_type, "T");
        let single = blob_events(br#"{"id":"d","eventType":"T","subject":"s","data":{}}"#).unwrap();
        assert_eq!(single[0][0].id, "d");
    }

    #[test]
    fn refuses_what_is_not_events_and_splits_what_exceeds_a_delivery() {
        assert!(matches!(blob_events(b"{nope"), Err(BlobError::NotJson(_))));
        assert!(matches!(blob_events(b"42"), Err(BlobError::NotEvents)));
        let many: Vec<Value> = (0..MAX_EVENTS_PER_DELIVERY + 3)
            .map(|i| serde_json::json!({"id": i.to_string(), "eventType": "T", "data": {}}))
            .collect();
        let batches = blob_events(&serde_json::to_vec(&many).unwrap()).unwrap();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[1].len(), 3);
    }

    #[test]
    fn reads_every_container_form() {
        let azure = DeadLetterSource::parse(
            "https://acct.blob.core.windows.net/deadletters/MY-SUB/",
            None,
        )
        .unwrap();
        assert_eq!(azure.prefix, "MY-SUB");
        assert_eq!(azure.account.as_deref(), Some("acct"));
        let StorageBackend::Azure(settings) = &azure.settings.backend else {
            panic!("{azure:?}")
        };
        assert_eq!(settings.container, "deadletters");
        assert_eq!(
            settings.endpoint.as_deref(),
            Some("https://acct.blob.core.windows.net")
        );

        let azurite =
            DeadLetterSource::parse("http://127.0.0.1:10000/devstoreaccount1/dl", None).unwrap();
        let StorageBackend::Azure(settings) = &azurite.settings.backend else {
            panic!("{azurite:?}")
        };
        assert_eq!(
            settings.endpoint.as_deref(),
            Some("http://127.0.0.1:10000/devstoreaccount1")
        );
        assert_eq!(settings.container, "dl");
        assert_eq!(azurite.prefix, "");

        let s3 = DeadLetterSource::parse("s3://bucket/a/b", Some("http://127.0.0.1:9000")).unwrap();
        assert_eq!(s3.prefix, "a/b");
        assert!(matches!(&s3.settings.backend, StorageBackend::S3(s) if s.bucket == "bucket"));

        let dir = tempfile::tempdir().unwrap();
        let local = DeadLetterSource::parse(dir.path().to_str().unwrap(), None).unwrap();
        assert!(matches!(local.settings.backend, StorageBackend::Local(_)));

        for bad in [
            "",
            "s3://",
            "http://host/",
            "http://host/account",
            "https://a.blob.core.windows.net/c?sig=secret",
            "/no/such/folder/anywhere",
        ] {
            assert!(DeadLetterSource::parse(bad, None).is_err(), "{bad}");
        }
    }
}
