//! The archive: object_store backends, the key layout, streaming writes that hash as they go,
//! and the manifest.

mod azure;
mod backend;
pub mod chain;
mod client;
pub mod completeness;
mod erasure;
mod holds;
pub mod layout;
mod local;
mod location;
mod lock;
pub mod manifest;
mod options;
mod publication;
mod s3;
mod s3_uploads;
mod settings;
mod settings_section;
pub mod signature;
pub mod store_checksum;
pub mod tombstone;
mod uploads;
mod validate;
pub mod verify;
mod writer;

#[cfg(test)]
pub(crate) mod tests;

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{Attribute, GetOptions, ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};

use backend::Finisher;
pub use backend::{STAGING_FILE_LEASES, remove_abandoned_staging_files};
pub use erasure::ErasedObjects;
pub use layout::RecordingLayout;
pub use location::StorageLocation;
pub use manifest::{Manifest, ObjectDigest};
pub use options::SHA256_METADATA;
pub use publication::Publication;
pub use settings::{
    AzureSettings, InvalidSetting, LocalSettings, LockMode, ObjectLock, S3Encryption, S3Settings,
    StorageBackend, StorageSettings,
};
pub use settings_section::StorageSection;
pub use uploads::{IncompleteUpload, IncompleteUploads, UploadAbort, UploadLedger};
pub use writer::ContentMd5;
pub use writer::ObjectWriter;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage error: {0}")]
    Store(#[from] object_store::Error),
    #[error("storage I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A request object_store has no method for (setting metadata) failed.
    #[error("storage request: {0}")]
    Request(String),
    /// A comparing writer found other bytes than the object already at the key.
    #[error("{key} already exists with other content")]
    ExistingDiffers { key: String },
    /// A legal hold or lock asked of a store that has none (a local folder).
    #[error(
        "a local archive has no store-enforced lock or legal hold; use storage.kind = s3 (Object Lock) or azure (version-level immutability)"
    )]
    NoStoreLock,
    /// An open multipart upload could not be recorded, so the write did not go on.
    #[error("{0}")]
    Ledger(String),
}

/// The customer's archive (local folder, S3 bucket or Azure container).
#[derive(Clone)]
pub struct Archive {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    /// Bytes per multipart part.
    part_size: usize,
    /// Parts in flight per object.
    upload_concurrency: usize,
    /// Human description for logs, e.g. `local:/srv/archive`.
    description: String,
    options: options::WriteOptions,
    /// Sets the sha256 metadata after a multipart upload.
    finisher: Arc<Finisher>,
    /// `storage.object_lock_mode` and its days and holding period.
    object_lock: Option<ObjectLock>,
    /// Hears of every S3 multipart upload opened and closed through this handle.
    uploads: Option<Arc<dyn UploadLedger>>,
    /// Signs each manifest (`storage.manifest_signing_key`); None writes them unsigned.
    manifest_signer: Option<signature::ManifestSigner>,
    /// Where the archive is, as events name it.
    location: Arc<StorageLocation>,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

impl Archive {
    /// Opens the configured backend; it removes nothing (see `remove_abandoned_staging_files`).
    /// Credentials come from the standard `AWS_*` / `AZURE_STORAGE_*` environment.
    pub async fn open(settings: &StorageSettings) -> Result<Self, StorageError> {
        Self::open_with(settings, &[]).await
    }

    /// Like `open`, with object_store configuration pairs applied after the environment,
    /// e.g. `("aws_access_key_id", "…")` or `("azure_storage_account_key", "…")`.
    pub async fn open_with(
        settings: &StorageSettings,
        extra: &[(&str, &str)],
    ) -> Result<Self, StorageError> {
        let opened = backend::open(settings, extra).await?;
        if settings.object_lock.is_some() {
            opened.finisher.check_lock_support().await?;
        }
        Ok(Self {
            store: opened.store,
            prefix: settings.prefix.clone(),
            part_size: opened.part_size,
            upload_concurrency: settings.upload_concurrency.max(1),
            description: opened.description,
            options: opened.options,
            finisher: Arc::new(opened.finisher),
            object_lock: settings.object_lock,
            uploads: None,
            manifest_signer: settings.manifest_signer.clone(),
            location: Arc::new(StorageLocation::of(settings)),
        })
    }

    /// This archive, with every multipart upload its writers open recorded in `ledger`
    /// before the first part is sent, and struck off once completed or aborted.
    pub fn with_upload_ledger(&self, ledger: Arc<dyn UploadLedger>) -> Self {
        Self {
            uploads: Some(ledger),
            ..self.clone()
        }
    }

    /// The incomplete multipart uploads under the archive's prefix (S3), or why the store
    /// has none to abort (Azure, a local folder).
    pub async fn incomplete_uploads(&self) -> Result<IncompleteUploads, StorageError> {
        match &*self.finisher {
            Finisher::S3(s3) => Ok(IncompleteUploads::Listed(
                s3.uploads().list(&layout::prefix_of(&self.prefix)).await?,
            )),
            Finisher::Azure(_) => Ok(IncompleteUploads::NothingToAbort(
                "Azure Blob Storage discards uncommitted blocks by itself 7 days after they were written; there is nothing to list or abort",
            )),
            Finisher::Local(_) => Ok(IncompleteUploads::NothingToAbort(
                "a local folder stages uploads in NAME#N files, which `serve` removes once no live writer can own them (untouched for two leases); there is nothing to list or abort",
            )),
        }
    }

    /// Aborts the multipart upload `upload_id` at `key`, removing its parts (S3). An id the
    /// store no longer knows (completed or already aborted) is `AlreadyGone`.
    pub async fn abort_upload(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<UploadAbort, StorageError> {
        let Some(s3) = self.finisher.s3() else {
            return Err(StorageError::Request(format!(
                "{} keeps no multipart uploads, so upload {upload_id} cannot be aborted here",
                self.description
            )));
        };
        let key = Path::parse(key).map_err(|err| {
            StorageError::Request(format!("upload {upload_id} has an unusable key: {err}"))
        })?;
        Ok(uploads::abort(s3.multipart().as_ref(), &key, upload_id).await?)
    }

    /// The key that signs manifests, when `storage.manifest_signing_key` is set.
    pub fn manifest_signer(&self) -> Option<&signature::ManifestSigner> {
        self.manifest_signer.as_ref()
    }

    /// The object keys of one recording.
    pub fn layout(&self, call_id: &str, recording_key: &str) -> RecordingLayout {
        RecordingLayout::new(&self.prefix, call_id, recording_key)
    }

    /// The folder of the audit trail's copy (see [`layout::audit_folder`]), ending in `/`.
    pub fn audit_folder(&self) -> String {
        layout::audit_folder(&self.prefix)
    }

    fn target(&self, key: &Path) -> writer::Target {
        writer::Target {
            store: self.store.clone(),
            key: key.clone(),
            part_size: self.part_size,
            upload_concurrency: self.upload_concurrency,
            options: self.options.clone(),
            finisher: self.finisher.clone(),
            uploads: self.uploads.clone(),
        }
    }

    /// Starts a streaming write to `key`; nothing is visible there until `finish`.
    pub async fn writer(&self, key: &Path) -> Result<ObjectWriter, StorageError> {
        Ok(ObjectWriter::new(self.target(key)))
    }

    /// Starts a streaming write that skips the upload when `key` already holds a complete
    /// object with a sha256 (see `existing_digest`): the stream is then only hashed, and
    /// `finish` confirms it matches, or fails with `StorageError::ExistingDiffers`, after
    /// which the caller writes again with `writer` to replace the object.
    pub async fn writer_unless_archived(&self, key: &Path) -> Result<ObjectWriter, StorageError> {
        Ok(match self.existing_digest(key).await? {
            Some(existing) => ObjectWriter::comparing(self.target(key), existing),
            None => ObjectWriter::new(self.target(key)),
        })
    }

    /// The size and sha256 of a complete object at `key`, from its metadata (S3, Azure) or by
    /// reading it (local folder); None when absent or written without a sha256.
    pub async fn existing_digest(&self, key: &Path) -> Result<Option<ObjectDigest>, StorageError> {
        if !self.options.metadata {
            return self.digest_of(key).await;
        }
        let head = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        let result = match self.store.get_opts(key, head).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(err) => return Err(err.into()),
        };
        let sha256 = result
            .attributes
            .get(&Attribute::Metadata(SHA256_METADATA.into()))
            .map(|value| value.as_ref().to_ascii_lowercase());
        Ok(sha256.map(|sha256| ObjectDigest {
            key: key.to_string(),
            bytes: result.meta.size,
            sha256,
        }))
    }

    /// Writes a small object in one put, unless the same bytes are already there. Only the
    /// manifest is written this way: it is the one object that is ever replaced.
    pub async fn put_bytes(&self, key: &Path, bytes: Bytes) -> Result<ObjectDigest, StorageError> {
        let digest = ObjectDigest::of_bytes(key, &bytes);
        if self.existing_digest(key).await?.as_ref() == Some(&digest) {
            self.finisher.relock_archived(key).await?;
            return Ok(digest);
        }
        let mut publication = Publication::default();
        self.put_with_digest(key, bytes, &digest, &mut publication)
            .await?;
        publication.make_durable().await?;
        Ok(digest)
    }

    /// Writes a small object that never changes once written (a metadata document): when
    /// `key` already holds the same bytes nothing is written; when it holds other bytes the
    /// write fails with `StorageError::ExistingDiffers` and the object is kept as it is.
    pub async fn put_bytes_once(
        &self,
        key: &Path,
        bytes: Bytes,
    ) -> Result<ObjectDigest, StorageError> {
        let mut publication = Publication::default();
        let digest = self
            .put_bytes_once_into(key, bytes, &mut publication)
            .await?;
        publication.make_durable().await?;
        Ok(digest)
    }

    /// Like `put_bytes_once`, durable only after `publication.make_durable()`.
    pub async fn put_bytes_once_into(
        &self,
        key: &Path,
        bytes: Bytes,
        publication: &mut Publication,
    ) -> Result<ObjectDigest, StorageError> {
        let digest = ObjectDigest::of_bytes(key, &bytes);
        let existing = match self.existing_digest(key).await? {
            Some(existing) => Some(existing),
            // Written without the sha256 metadata (or by someone else): read it to compare.
            None if self.options.metadata => self.digest_of(key).await?,
            None => None,
        };
        match existing {
            Some(existing) if existing == digest => {
                // The attempt that wrote it may have failed before syncing its folder.
                if let Some(local) = self.finisher.local() {
                    publication.owe([local.folder_of(key)?]);
                }
                self.finisher.relock_archived(key).await?;
                Ok(digest)
            }
            Some(_) => Err(StorageError::ExistingDiffers { key: digest.key }),
            None => {
                self.put_with_digest(key, bytes, &digest, publication)
                    .await?;
                Ok(digest)
            }
        }
    }

    /// One put of `bytes`, carrying their sha256 as metadata where the backend keeps it.
    async fn put_with_digest(
        &self,
        key: &Path,
        bytes: Bytes,
        digest: &ObjectDigest,
        publication: &mut Publication,
    ) -> Result<(), StorageError> {
        let payload = PutPayload::from(bytes);
        if let Some(local) = self.finisher.local().cloned() {
            let key = key.clone();
            publication.owe(writer::blocking(move || local.put(&key, &payload)).await?);
            return Ok(());
        }
        self.finisher
            .put(
                self.store.as_ref(),
                key,
                payload,
                &self.options,
                &digest.sha256,
            )
            .await
    }

    /// Streams an object back and returns its size and sha256, or None when it is absent.
    pub async fn digest_of(&self, key: &Path) -> Result<Option<ObjectDigest>, StorageError> {
        let result = match self.store.get(key).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(err) => return Err(err.into()),
        };
        let mut stream = result.into_stream();
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        while let Some(piece) = stream.next().await {
            let piece = piece?;
            bytes += piece.len() as u64;
            hasher.update(&piece);
        }
        Ok(Some(ObjectDigest {
            key: key.to_string(),
            bytes,
            sha256: hex::encode(hasher.finalize()),
        }))
    }

    /// Reads a whole (small) object.
    pub async fn read(&self, key: &Path) -> Result<Bytes, StorageError> {
        Ok(self.store.get(key).await?.bytes().await?)
    }

    /// Answers whether the storage is reachable (for `/readyz`).
    pub async fn check(&self) -> Result<(), StorageError> {
        let probe = layout::object_key(&format!(
            "{}.callvault-readyz",
            layout::sanitise_segment(&self.prefix)
        ));
        match self.store.head(&probe).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// The underlying store, for tools that list or read archived objects.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Whether objects carry `sha256` user metadata (S3, Azure; not a local folder).
    pub fn keeps_metadata(&self) -> bool {
        self.options.metadata
    }

    /// Where the archive is, for consumers of events (no credentials).
    pub fn location(&self) -> &StorageLocation {
        &self.location
    }

    /// Where objects go, for logs (no credentials).
    pub fn description(&self) -> &str {
        &self.description
    }
}
