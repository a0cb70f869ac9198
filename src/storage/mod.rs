//! The archive: object_store backends, the key layout, streaming writes that hash as they go,
//! and the manifest.

mod backend;
pub mod layout;
pub mod manifest;
mod writer;

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};

use crate::config::{ConfigError, StorageSettings};
pub use backend::validate;
pub use layout::RecordingLayout;
pub use manifest::{Manifest, ObjectDigest};
pub use writer::ObjectWriter;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage error: {0}")]
    Store(#[from] object_store::Error),
    #[error("storage configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("storage I/O: {0}")]
    Io(#[from] std::io::Error),
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
    options: backend::WriteOptions,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

impl Archive {
    /// Opens the configured backend (and, for `local`, removes staging files a crash left).
    pub async fn open(settings: &StorageSettings) -> Result<Self, StorageError> {
        let opened = backend::open(settings).await?;
        Ok(Self {
            store: opened.store,
            prefix: settings.prefix.clone(),
            part_size: opened.part_size,
            upload_concurrency: settings.upload_concurrency.max(1),
            description: opened.description,
            options: opened.options,
        })
    }

    /// The object keys of one recording.
    pub fn layout(&self, call_id: &str, recording_key: &str) -> RecordingLayout {
        RecordingLayout::new(&self.prefix, call_id, recording_key)
    }

    /// Starts a streaming write to `key`; nothing is visible there until `finish`.
    pub async fn writer(&self, key: &Path) -> Result<ObjectWriter, StorageError> {
        ObjectWriter::start(
            &*self.store,
            key,
            self.part_size,
            self.upload_concurrency,
            &self.options,
        )
        .await
    }

    /// Writes a small object in one put.
    pub async fn put_bytes(&self, key: &Path, bytes: Bytes) -> Result<ObjectDigest, StorageError> {
        let digest = ObjectDigest {
            key: key.to_string(),
            bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(&bytes)),
        };
        self.store
            .put_opts(
                key,
                PutPayload::from(bytes),
                self.options.put_options(&digest.sha256),
            )
            .await?;
        Ok(digest)
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
        let probe = Path::from(format!(
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

    pub fn description(&self) -> &str {
        &self.description
    }
}
