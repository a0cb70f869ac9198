//! The storage settings the backends use: one variant per backend, each holding only the keys
//! that apply to it. They are built by validating the `[storage]` section
//! ([`StorageSection::validate`](super::StorageSection::validate)), which the backends rely on.

use std::path::PathBuf;

/// Validated `[storage]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageSettings {
    /// Prefix for every key.
    pub prefix: String,
    /// Multipart part size.
    pub part_size_bytes: usize,
    /// Parts in flight per object.
    pub upload_concurrency: usize,
    /// Seconds one storage request may take before it is abandoned.
    pub request_timeout_secs: u64,
    pub backend: StorageBackend,
    /// Signs each manifest and chains it to the one before (`storage.manifest_signing_key`).
    pub manifest_signer: Option<super::signature::ManifestSigner>,
    /// WORM retention of every archived object; None when `storage.object_lock_mode` is empty.
    pub object_lock: Option<ObjectLock>,
}

/// `storage.object_lock_mode`, `storage.object_lock_days` and `storage.lock_after_hours`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectLock {
    pub mode: LockMode,
    /// Days each object is retained from the moment it is locked.
    pub days: u32,
    /// Hours an archived recording stays unlocked before a scheduled job locks it; 0 locks
    /// each object as it is written.
    pub after_hours: u32,
}

impl ObjectLock {
    /// Whether objects carry their retention from the moment they are written.
    pub fn at_write(&self) -> bool {
        self.after_hours == 0
    }
}

/// How strict the retention is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Users with a bypass permission (S3 `s3:BypassGovernanceRetention`) can still shorten or
    /// remove it; on Azure an unlocked policy, which a user allowed to change policies can.
    Governance,
    /// Nobody, the account's root included, can shorten or remove it; on Azure a locked policy.
    Compliance,
}

/// Where the archive lives, with the keys of that backend only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageBackend {
    /// A folder (`storage.kind = local`).
    Local(LocalSettings),
    /// Amazon S3 or an S3-compatible store (`storage.kind = s3`).
    S3(S3Settings),
    /// Azure Blob Storage or Azurite (`storage.kind = azure`).
    Azure(AzureSettings),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalSettings {
    /// Root folder.
    pub path: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    pub bucket: String,
    /// Custom endpoint; None for AWS.
    pub endpoint: Option<String>,
    /// None for the environment's or object_store's default.
    pub region: Option<String>,
    /// None for the bucket default.
    pub storage_class: Option<String>,
    pub encryption: S3Encryption,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureSettings {
    pub container: String,
    /// Custom endpoint (Azurite); None for the account's default.
    pub endpoint: Option<String>,
    /// The access tier as Azure spells it; None for the account default.
    pub access_tier: Option<&'static str>,
    /// Whether a blob written in blocks gets a Content-MD5 (`storage.content_md5`); a blob
    /// written in one Put Blob gets the one Azure computes either way.
    pub content_md5: bool,
}

/// S3 server-side encryption (`storage.server_side_encryption`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3Encryption {
    /// The bucket's default.
    BucketDefault,
    /// `sse-s3`: keys managed by S3.
    SseS3,
    /// `sse-kms`, with the key id when one is given (else the account's default KMS key).
    SseKms { key_id: Option<String> },
}

/// A storage setting refused at start-up, naming its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration key `{key}`: {reason}")]
pub struct InvalidSetting {
    pub key: &'static str,
    pub reason: String,
}

impl InvalidSetting {
    pub(crate) fn new(key: &'static str, reason: impl Into<String>) -> Self {
        Self {
            key,
            reason: reason.into(),
        }
    }
}
