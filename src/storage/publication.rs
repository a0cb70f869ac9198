//! Objects published together: in a local folder each object is renamed into place as it is
//! written, and the folders those renames changed are synced once, for all of them, by
//! [`Publication::make_durable`]. A chunk's media and metadata documents share one sync of their
//! recording folder. S3 and Azure objects are durable when their write returns: nothing to do.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::StorageError;

/// Folders whose sync is still owed to objects already at their final keys. Until
/// `make_durable` returns, those objects are complete but may not survive a power cut: nothing
/// may record them as archived before it.
#[must_use = "objects are durable only after make_durable"]
#[derive(Debug, Default)]
pub struct Publication {
    /// Sorted, so that a folder comes after its parent.
    folders: BTreeSet<PathBuf>,
}

impl Publication {
    pub(super) fn owe(&mut self, folders: impl IntoIterator<Item = PathBuf>) {
        self.folders.extend(folders);
    }

    /// Syncs every folder owed, each once, deepest first.
    pub async fn make_durable(self) -> Result<(), StorageError> {
        if self.folders.is_empty() {
            return Ok(());
        }
        let folders: Vec<PathBuf> = self.folders.into_iter().collect();
        tokio::task::spawn_blocking(move || super::local::sync_folders(&folders))
            .await
            .map_err(std::io::Error::other)??;
        Ok(())
    }
}
