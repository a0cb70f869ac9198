//! Erasing a recording's objects: every object in its folder, and on S3 every earlier version
//! and delete marker too, all but its tombstone; then the tombstone itself.

use bytes::Bytes;
use object_store::ObjectStoreExt;
use object_store::path::Path;

use super::backend::Finisher;
use super::{Archive, ObjectDigest, RecordingLayout, StorageError};

/// What deleting a recording's objects removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ErasedObjects {
    /// Keys of the current objects deleted.
    pub keys: Vec<String>,
    /// Earlier versions and delete markers deleted (S3 with versioning).
    pub versions: usize,
}

impl Archive {
    /// The keys in the recording's folder now (current versions), the tombstone aside.
    pub async fn objects_to_erase(
        &self,
        layout: &RecordingLayout,
    ) -> Result<Vec<String>, StorageError> {
        let tombstone = layout.tombstone();
        Ok(self
            .objects_of(layout)
            .await?
            .into_iter()
            .filter(|key| *key != tombstone)
            .map(|key| key.to_string())
            .collect())
    }

    /// Deletes every object of the recording but its tombstone, with every version the store
    /// keeps. Deleting what is already gone is not an error, so a re-run finishes a half-done
    /// erasure.
    pub async fn erase_objects(
        &self,
        layout: &RecordingLayout,
    ) -> Result<ErasedObjects, StorageError> {
        let keys = self.objects_to_erase(layout).await?;
        for key in &keys {
            self.delete_quietly(&super::layout::object_key(key)).await?;
        }
        let versions = match &*self.finisher {
            // The folder with its final `/`: `a/b` alone would also match `a/b-2`.
            Finisher::S3(s3) => {
                s3.delete_versions(&format!("{}/", layout.folder()), &layout.tombstone())
                    .await?
            }
            Finisher::Azure(_) | Finisher::Local(_) => 0,
        };
        Ok(ErasedObjects { keys, versions })
    }

    /// Writes the tombstone (the same bytes again on a re-run).
    pub async fn write_tombstone(
        &self,
        layout: &RecordingLayout,
        body: Bytes,
    ) -> Result<ObjectDigest, StorageError> {
        self.put_bytes(&layout.tombstone(), body).await
    }

    /// Deletes one object; an object already gone is fine.
    pub async fn delete_quietly(&self, key: &Path) -> Result<(), StorageError> {
        match self.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}
