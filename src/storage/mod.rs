//! The archive: object_store backends, the key layout, streaming writes that hash as they go,
//! and the manifest.

mod azure;
mod backend;
mod client;
pub mod layout;
mod local;
pub mod manifest;
mod options;
mod publication;
mod s3;
mod settings;
mod settings_section;
pub mod store_checksum;
mod validate;
pub mod verify;
mod writer;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{Attribute, GetOptions, ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};

use backend::Finisher;
pub use backend::{STAGING_FILE_LEASES, remove_abandoned_staging_files};
pub use layout::RecordingLayout;
pub use manifest::{Manifest, ObjectDigest};
pub use options::SHA256_METADATA;
pub use publication::Publication;
pub use settings::{
    AzureSettings, InvalidSetting, LocalSettings, S3Encryption, S3Settings, StorageBackend,
    StorageSettings,
};
pub use settings_section::StorageSection;
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
        Ok(Self {
            store: opened.store,
            prefix: settings.prefix.clone(),
            part_size: opened.part_size,
            upload_concurrency: settings.upload_concurrency.max(1),
            description: opened.description,
            options: opened.options,
            finisher: Arc::new(opened.finisher),
        })
    }

    /// The object keys of one recording.
    pub fn layout(&self, call_id: &str, recording_key: &str) -> RecordingLayout {
        RecordingLayout::new(&self.prefix, call_id, recording_key)
    }

    fn target(&self, key: &Path) -> writer::Target {
        writer::Target {
            store: self.store.clone(),
            key: key.clone(),
            part_size: self.part_size,
            upload_concurrency: self.upload_concurrency,
            options: self.options.clone(),
            finisher: self.finisher.clone(),
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
        self.store
            .put_opts(key, payload, self.options.put_options(&digest.sha256))
            .await?;
        Ok(())
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

    /// Where objects go, for logs (no credentials).
    pub fn description(&self) -> &str {
        &self.description
    }
}
