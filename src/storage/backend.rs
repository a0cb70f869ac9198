//! Building the configured object_store backend.

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};

use super::StorageError;
use super::azure::AzureFinisher;
use super::local::LocalFolder;
use super::options::WriteOptions;
use super::s3::S3Finisher;
use super::settings::{StorageBackend, StorageSettings};

/// Local parts are small: the local store needs no minimum part size, and memory stays flat.
const LOCAL_PART_SIZE: usize = 1024 * 1024;

/// A backend ready for use.
pub(super) struct OpenedStore {
    pub store: Arc<dyn ObjectStore>,
    /// Bytes per multipart part.
    pub part_size: usize,
    /// Human description for logs; never holds a credential.
    pub description: String,
    pub options: WriteOptions,
    pub finisher: Finisher,
}

/// The step after a multipart upload completes: object_store fixes attributes when the upload
/// starts, before the hash is known, so the sha256 metadata is set with the service's own call.
pub(super) enum Finisher {
    /// A local folder keeps no metadata; its objects are written and published by our own
    /// staging and rename, whose folder syncs several objects can share.
    Local(Arc<LocalFolder>),
    S3(S3Finisher),
    Azure(AzureFinisher),
}

impl Finisher {
    /// The local folder that writes objects itself, instead of object_store.
    pub fn local(&self) -> Option<&Arc<LocalFolder>> {
        match self {
            Finisher::Local(folder) => Some(folder),
            _ => None,
        }
    }

    /// The S3 client, whose multipart uploads we open with a known id.
    pub fn s3(&self) -> Option<&S3Finisher> {
        match self {
            Finisher::S3(s3) => Some(s3),
            _ => None,
        }
    }

    /// Whether a multipart object gets a Content-MD5 property (Azure), which the writer then
    /// computes beside the sha256.
    pub fn keeps_content_md5(&self) -> bool {
        matches!(self, Finisher::Azure(azure) if azure.content_md5)
    }

    /// Sets the complete object's Content-MD5 (base64), where the store keeps one; returns
    /// the object's ETag after the change, for the next step's guard.
    pub async fn set_content_md5(
        &self,
        key: &Path,
        md5_base64: &str,
        e_tag: Option<&str>,
    ) -> Result<Option<String>, StorageError> {
        match self {
            Finisher::Azure(azure) => azure.set_content_md5(key, md5_base64, e_tag).await,
            Finisher::Local(_) | Finisher::S3(_) => Ok(e_tag.map(str::to_owned)),
        }
    }

    /// Records `sha256_hex` in the complete object's metadata.
    pub async fn set_sha256(
        &self,
        key: &Path,
        sha256_hex: &str,
        e_tag: Option<&str>,
        size: u64,
    ) -> Result<(), StorageError> {
        match self {
            Finisher::Local(_) => Ok(()),
            Finisher::S3(s3) => s3.set_sha256(key, sha256_hex, e_tag, size).await,
            Finisher::Azure(azure) => azure.set_sha256(key, sha256_hex, e_tag).await,
        }
    }
}

impl Finisher {
    /// One put of a small object. On S3 it is our own PutObject: it asks the store to keep the
    /// sha256 as the object's own `ChecksumSHA256` (so `verify --fast` and checksum-validating
    /// clients can check it) and, locked at write, carries the retention, which object_store's
    /// put cannot: the object never exists unlocked.
    pub async fn put(
        &self,
        store: &dyn ObjectStore,
        key: &Path,
        payload: PutPayload,
        options: &WriteOptions,
        sha256_hex: &str,
    ) -> Result<(), StorageError> {
        if let Finisher::S3(s3) = self {
            let retention = s3.retention_at_write();
            return s3
                .put_checksummed(key, payload.into(), sha256_hex, retention.as_ref())
                .await;
        }
        store
            .put_opts(key, payload, options.put_options(sha256_hex))
            .await?;
        // Azure: Put Blob could carry the policy, object_store's put cannot; it follows.
        if let Finisher::Azure(azure) = self
            && let Some(retention) = azure.retention_at_write()
        {
            azure.set_immutability(key, &retention).await?;
        }
        Ok(())
    }

    /// For an object found already archived: Azure sets the policy after the write, so an
    /// attempt that died (or was refused) in between left it unlocked; set it again. On S3
    /// an object with its sha256 was written locked.
    pub async fn relock_archived(&self, key: &Path) -> Result<(), StorageError> {
        if let Finisher::Azure(azure) = self
            && let Some(retention) = azure.retention_at_write()
        {
            azure.set_immutability(key, &retention).await?;
        }
        Ok(())
    }

    /// Stops start-up when the store cannot keep the configured lock.
    pub async fn check_lock_support(&self) -> Result<(), StorageError> {
        match self {
            Finisher::S3(s3) => s3.check_object_lock().await,
            Finisher::Azure(azure) => azure.check_immutability().await,
            // Validation refuses a lock on a local folder.
            Finisher::Local(_) => Ok(()),
        }
    }

    /// Sets or releases the store's legal hold on the object at `key`.
    pub async fn set_legal_hold(&self, key: &Path, on: bool) -> Result<(), StorageError> {
        match self {
            Finisher::S3(s3) => s3.set_legal_hold(key, on).await,
            Finisher::Azure(azure) => azure.set_legal_hold(key, on).await,
            Finisher::Local(_) => Err(StorageError::NoStoreLock),
        }
    }

    /// Sets `retention` on the object at `key`, written unlocked.
    pub async fn set_retention(
        &self,
        key: &Path,
        retention: &super::lock::Retention,
    ) -> Result<(), StorageError> {
        match self {
            Finisher::S3(s3) => s3.set_retention(key, retention).await,
            Finisher::Azure(azure) => azure.set_immutability(key, retention).await,
            Finisher::Local(_) => Err(StorageError::NoStoreLock),
        }
    }
}

/// Opens the configured backend; `extra` are object_store config pairs (`aws_access_key_id`,
/// `azure_storage_account_key`, …) applied after the environment, for tests.
pub(super) async fn open(
    settings: &StorageSettings,
    extra: &[(&str, &str)],
) -> Result<OpenedStore, StorageError> {
    match &settings.backend {
        StorageBackend::S3(s3) => super::s3::open(settings, s3, extra),
        StorageBackend::Azure(azure) => super::azure::open(settings, azure, extra),
        StorageBackend::Local(local) => open_local(&local.path).await,
    }
}

async fn open_local(root: &std::path::Path) -> Result<OpenedStore, StorageError> {
    tokio::fs::create_dir_all(root).await?;
    // Reads go through object_store; writes through `LocalFolder` (see `Finisher::Local`).
    let store = LocalFileSystem::new_with_prefix(root)?.with_fsync(true);
    Ok(OpenedStore {
        store: Arc::new(store),
        part_size: LOCAL_PART_SIZE,
        description: format!("local:{}", root.display()),
        options: WriteOptions::default(),
        finisher: Finisher::Local(Arc::new(LocalFolder::new(root)?)),
    })
}

/// A staging file untouched for this many leases has no live writer: a writer holds its job
/// under a lease it renews, and writes its staging file with each part and at least once a
/// second while bytes arrive (a download without a byte for `acs.request_timeout_secs` fails).
pub const STAGING_FILE_LEASES: u32 = 2;

/// Removes the staging files (`NAME#N`) that object_store's local backend leaves when a
/// process dies mid-write, but only those older than [`STAGING_FILE_LEASES`] × `lease`: other
/// processes sharing the folder may be writing the younger ones right now. `lease` is the
/// longest a live writer goes without touching its file (its lease, or the stalled-download
/// timeout when that is longer). Only a process that
/// writes the archive should call this. Other backends stage nothing: returns 0.
pub async fn remove_abandoned_staging_files(
    settings: &StorageSettings,
    lease: Duration,
) -> Result<usize, StorageError> {
    let StorageBackend::Local(local) = &settings.backend else {
        return Ok(0);
    };
    let margin = lease.saturating_mul(STAGING_FILE_LEASES);
    let removed = remove_staging_files_older_than(&local.path, margin, SystemTime::now()).await?;
    if removed > 0 {
        tracing::warn!(
            count = removed,
            root = %local.path.display(),
            "removed staging files left by an interrupted write"
        );
    }
    Ok(removed)
}

/// Walks `root` and removes staging files last modified more than `margin` before `now`. A
/// file or folder that vanishes meanwhile (a peer finishing its write) is skipped.
async fn remove_staging_files_older_than(
    root: &std::path::Path,
    margin: Duration,
    now: SystemTime,
) -> std::io::Result<usize> {
    let mut removed = 0;
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let mut entries = match tokio::fs::read_dir(&folder).await {
            Ok(entries) => entries,
            Err(err) if err.kind() == ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        while let Some(entry) = entries.next_entry().await? {
            let path = entry.path();
            let Some(metadata) = ignore_vanished(entry.metadata().await)? else {
                continue;
            };
            if metadata.is_dir() {
                folders.push(path);
            } else if is_staging_name(&entry.file_name().to_string_lossy())
                && is_abandoned(metadata.modified()?, now, margin)
                && ignore_vanished(tokio::fs::remove_file(&path).await)?.is_some()
            {
                removed += 1;
            }
        }
    }
    Ok(removed)
}

fn ignore_vanished<T>(result: std::io::Result<T>) -> std::io::Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// The age rule: a staging file is abandoned when its last write is more than `margin` old. A
/// modification time in the future (clock skew between hosts sharing the folder) is not.
fn is_abandoned(modified: SystemTime, now: SystemTime, margin: Duration) -> bool {
    now.duration_since(modified).is_ok_and(|age| age > margin)
}

fn is_staging_name(name: &str) -> bool {
    name.rsplit_once('#')
        .is_some_and(|(_, suffix)| !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_staging_names() {
        assert!(is_staging_name("chunk-0000.mp4#1"));
        assert!(is_staging_name("chunk-0000.mp4#12"));
        assert!(!is_staging_name("chunk-0000.mp4"));
        assert!(!is_staging_name("a#b"));
        assert!(!is_staging_name("a#"));
    }

    const LEASE: Duration = Duration::from_secs(60);

    #[test]
    fn a_staging_file_is_abandoned_only_past_two_leases() {
        let now = SystemTime::now();
        let margin = LEASE * STAGING_FILE_LEASES;
        assert!(!is_abandoned(now, now, margin), "just written");
        assert!(
            !is_abandoned(now - LEASE, now, margin),
            "one lease old: a live writer may own it"
        );
        assert!(
            !is_abandoned(now - margin, now, margin),
            "exactly at the margin"
        );
        assert!(is_abandoned(
            now - margin - Duration::from_secs(1),
            now,
            margin
        ));
        assert!(
            !is_abandoned(now + LEASE, now, margin),
            "a future mtime (clock skew) is kept"
        );
    }

    fn staged(path: &std::path::Path, age: Duration) {
        let file = std::fs::File::create(path).unwrap();
        file.set_modified(SystemTime::now() - age).unwrap();
    }

    #[tokio::test]
    async fn only_staging_files_older_than_two_leases_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("call/rec");
        std::fs::create_dir_all(&nested).unwrap();
        let abandoned = nested.join("chunk-0000.mp4#3");
        let live = nested.join("chunk-0001.mp4#1");
        let old_object = nested.join("chunk-0000.metadata.json");
        staged(&abandoned, LEASE * 3);
        staged(&live, LEASE);
        staged(&old_object, LEASE * 10);
        let settings = crate::config::Settings::defaults_with(&[(
            "storage.path",
            dir.path().display().to_string(),
        )])
        .unwrap()
        .storage
        .validate()
        .unwrap();

        assert_eq!(
            remove_abandoned_staging_files(&settings, LEASE)
                .await
                .unwrap(),
            1
        );
        assert!(!abandoned.exists());
        assert!(live.exists(), "a file a live lease may own is kept");
        assert!(old_object.exists(), "objects are never touched");
    }

    #[tokio::test]
    async fn opening_a_local_archive_removes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let abandoned = dir.path().join("chunk-0000.mp4#1");
        staged(&abandoned, LEASE * 100);
        let settings = crate::config::Settings::defaults_with(&[(
            "storage.path",
            dir.path().display().to_string(),
        )])
        .unwrap()
        .storage
        .validate()
        .unwrap();
        open(&settings, &[]).await.unwrap();
        assert!(
            abandoned.exists(),
            "a process that only opens the archive cleans nothing"
        );
    }
}
