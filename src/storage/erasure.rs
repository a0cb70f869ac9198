//! Erasing a recording's objects: every object in its folder, and on S3 every earlier version
//! and delete marker too, all but its tombstone; then the tombstone itself.

use bytes::Bytes;
use object_store::ObjectStoreExt;
use object_store::path::Path;

use super::backend::Finisher;
use super::{Archive, ObjectDigest, Publication, RecordingLayout, StorageError};

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
        if let Finisher::Local(folder) = &*self.finisher {
            // A file's removal is only an entry gone from its folder: until the folder is
            // synced, a power cut can bring an erased file back. Synced before the erasure is
            // recorded as done; the tombstone written next syncs its folder as every put does.
            let mut removed = Publication::default();
            for key in &keys {
                removed.owe([folder.folder_of(&super::layout::object_key(key))?]);
            }
            removed.make_durable().await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::tests::servers::storage_settings;

    /// On a local folder the removals are synced (see `erase_objects`); the erasure still
    /// removes every object, spares the tombstone, and a re-run is a no-op.
    #[tokio::test]
    async fn a_local_folder_erasure_removes_every_object_but_the_tombstone() {
        let dir = tempfile::tempdir().unwrap();
        let settings = storage_settings(&[("storage.path", dir.path().display().to_string())]);
        let archive = Archive::open(&settings).await.unwrap();
        let layout = archive.layout("call-1", "rec-1");
        let folder = layout.folder();
        for name in ["chunk-0000.mp3", "nested/chunk-0001.mp3", "manifest.json"] {
            let key = Path::parse(format!("{folder}/{name}")).unwrap();
            archive
                .put_bytes(&key, Bytes::from_static(b"x"))
                .await
                .unwrap();
        }
        archive
            .write_tombstone(&layout, Bytes::from_static(b"{}"))
            .await
            .unwrap();

        let erased = archive.erase_objects(&layout).await.unwrap();
        assert_eq!(erased.keys.len(), 3, "{erased:?}");
        assert_eq!(
            archive.objects_to_erase(&layout).await.unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            archive.read(&layout.tombstone()).await.unwrap(),
            Bytes::from_static(b"{}")
        );
        let again = archive.erase_objects(&layout).await.unwrap();
        assert!(again.keys.is_empty(), "{again:?}");
    }
}
