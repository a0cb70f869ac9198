//! A streaming object write that hashes and counts as it goes and never buffers more than
//! `part_size × upload_concurrency` bytes.

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, WriteMultipart};
use sha2::{Digest, Sha256};

use super::backend::WriteOptions;
use super::{ObjectDigest, StorageError};

pub struct ObjectWriter {
    upload: WriteMultipart,
    hasher: Sha256,
    bytes: u64,
    key: Path,
    upload_concurrency: usize,
}

impl ObjectWriter {
    pub(super) async fn start(
        store: &dyn ObjectStore,
        key: &Path,
        part_size: usize,
        upload_concurrency: usize,
        options: &WriteOptions,
    ) -> Result<Self, StorageError> {
        let upload = store
            .put_multipart_opts(key, options.multipart_options())
            .await?;
        Ok(Self {
            upload: WriteMultipart::new_with_chunk_size(upload, part_size),
            hasher: Sha256::new(),
            bytes: 0,
            key: key.clone(),
            upload_concurrency,
        })
    }

    /// Appends bytes, waiting while too many parts are in flight.
    pub async fn write(&mut self, piece: Bytes) -> Result<(), StorageError> {
        self.upload
            .wait_for_capacity(self.upload_concurrency)
            .await?;
        self.hasher.update(&piece);
        self.bytes += piece.len() as u64;
        self.upload.put(piece);
        Ok(())
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }

    /// Completes the object; only now does it appear at its key.
    pub async fn finish(self) -> Result<ObjectDigest, StorageError> {
        let digest = ObjectDigest {
            key: self.key.to_string(),
            bytes: self.bytes,
            sha256: hex::encode(self.hasher.finalize()),
        };
        self.upload.finish().await?;
        Ok(digest)
    }

    /// Abandons the object, removing whatever was staged.
    pub async fn abort(self) {
        if let Err(err) = self.upload.abort().await {
            tracing::warn!(key = %self.key, error = %err, "could not abort a partial upload");
        }
    }
}
