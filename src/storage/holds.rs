//! Retention and legal holds set on a recording's objects after they were written: the
//! scheduled lock of `storage.lock_after_hours`, and legal holds an operator asks for.

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use object_store::ObjectStore;
use object_store::path::Path;

use super::lock::Retention;
use super::{Archive, ObjectLock, RecordingLayout, StorageError};

impl Archive {
    /// `storage.object_lock_mode` with its days and holding period; None without a lock.
    pub fn object_lock(&self) -> Option<ObjectLock> {
        self.object_lock
    }

    /// Whether the configured lock is applied by a later job instead of at write.
    pub fn locks_later(&self) -> bool {
        self.object_lock.is_some_and(|lock| !lock.at_write())
    }

    /// Turns the store's legal hold on (or off) for every object in the recording's folder,
    /// and returns how many objects it covered. A local folder has no legal hold to set.
    pub async fn set_legal_hold(
        &self,
        layout: &RecordingLayout,
        on: bool,
    ) -> Result<usize, StorageError> {
        if self.finisher.local().is_some() {
            return Err(StorageError::NoStoreLock);
        }
        let keys = self.objects_of(layout).await?;
        for key in &keys {
            self.finisher.set_legal_hold(key, on).await?;
        }
        Ok(keys.len())
    }

    /// Locks every object in the recording's folder for `storage.object_lock_days` from `now`
    /// and returns how many; 0 without a configured lock.
    pub async fn lock_recording(
        &self,
        layout: &RecordingLayout,
        now: DateTime<Utc>,
    ) -> Result<usize, StorageError> {
        let Some(lock) = self.object_lock else {
            return Ok(0);
        };
        let retention = Retention::from(&lock, now);
        let keys = self.objects_of(layout).await?;
        for key in &keys {
            self.finisher.set_retention(key, &retention).await?;
        }
        Ok(keys.len())
    }

    /// The keys below the recording's folder (current versions only).
    pub(super) async fn objects_of(
        &self,
        layout: &RecordingLayout,
    ) -> Result<Vec<Path>, StorageError> {
        let folder = layout.folder();
        let mut listing = self.store.list(Some(&folder));
        let mut keys = Vec::new();
        while let Some(meta) = listing.next().await {
            keys.push(meta?.location);
        }
        Ok(keys)
    }
}
