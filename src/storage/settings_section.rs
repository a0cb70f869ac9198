//! The `[storage]` section as users write it: one flat table whose keys apply to one backend
//! or another. It is what the configuration loads and renders; the backends take the
//! [`StorageSettings`] it validates into.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::settings::{InvalidSetting, StorageSettings};
use crate::secret::Secret;

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct StorageSection {
    /// `local`, `s3` or `azure`.
    pub kind: String,
    /// Root folder for `local`.
    pub path: PathBuf,
    /// S3 bucket.
    pub bucket: String,
    /// Azure container.
    pub container: String,
    /// Custom endpoint (S3-compatible store, Azurite).
    pub endpoint: String,
    /// S3 region.
    pub region: String,
    /// Prefix for every key.
    pub prefix: String,
    /// Multipart part size.
    pub part_size_bytes: usize,
    /// Parts in flight per object.
    pub upload_concurrency: usize,
    /// S3 storage class.
    pub storage_class: String,
    /// S3 server-side encryption: "", "sse-s3", "sse-kms".
    pub server_side_encryption: String,
    /// KMS key for sse-kms.
    pub sse_kms_key_id: String,
    /// Azure access tier: "", Hot, Cool, Cold or Archive.
    pub access_tier: String,
    /// Azure: give each block-list blob a Content-MD5, computed beside the sha256.
    pub content_md5: bool,
    /// Seconds one storage request (e.g. one part upload) may take before it is abandoned.
    pub request_timeout_secs: u64,
    /// WORM lock: "", "governance" or "compliance".
    pub object_lock_mode: String,
    /// Days each object is retained once locked.
    pub object_lock_days: u64,
    /// Hours an archived recording stays unlocked before it is locked; 0 = lock at write.
    pub lock_after_hours: u64,
    /// Ed25519 private key that signs manifests: standard base64 of its 32-byte seed; empty
    /// writes manifests unsigned.
    pub manifest_signing_key: Secret,
}

impl StorageSection {
    /// Checks the section without touching the network and keeps, per backend, only its keys.
    pub fn validate(&self) -> Result<StorageSettings, InvalidSetting> {
        super::validate::validate(self)
    }
}
