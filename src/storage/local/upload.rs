//! A large local object, written part by part into its staging file. It is a
//! `MultipartUpload` so that the writer drives it exactly as it drives S3 and Azure uploads;
//! completing it syncs the data and renames, and leaves the folder sync to the caller.

use std::future::Future;
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::FutureExt;
use object_store::{MultipartUpload, PutPayload, PutResult, UploadPart};

use super::Staged;
use crate::storage::StorageError;

type Boxed<'a, T> = Pin<Box<dyn Future<Output = object_store::Result<T>> + Send + 'a>>;

/// The staging file, shared with the part writes in flight; `None` once completed or aborted.
type Shared = Arc<Mutex<Option<Staged>>>;

#[derive(Debug)]
pub(in crate::storage) struct LocalUpload {
    staged: Shared,
    /// Where the next part goes.
    offset: u64,
}

impl std::fmt::Debug for Staged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staged")
            .field("staging", &self.staging)
            .finish()
    }
}

impl LocalUpload {
    /// Starts an upload into `staged`; its folders are the caller's to sync after `complete`.
    pub fn new(staged: Staged) -> (Self, Vec<PathBuf>) {
        let folders = staged.folders.clone();
        let upload = Self {
            staged: Arc::new(Mutex::new(Some(staged))),
            offset: 0,
        };
        (upload, folders)
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, Option<Staged>> {
    // A part write that panicked leaves the file as it was: still usable, or failed by `complete`.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn aborted() -> object_store::Error {
    object_store::Error::Generic {
        store: "LocalFileSystem",
        source: "the upload was completed or aborted".into(),
    }
}

fn store_error(err: StorageError) -> object_store::Error {
    match err {
        StorageError::Store(err) => err,
        other => object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(other),
        },
    }
}

/// Runs `work` on the blocking pool, as every file operation of an upload must.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> object_store::Result<T> + Send + 'static,
) -> object_store::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|join| {
            Err(object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(join),
            })
        })
}

impl MultipartUpload for LocalUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let offset = self.offset;
        self.offset += data.content_length() as u64;
        let shared = self.staged.clone();
        blocking(move || {
            let mut guard = lock(&shared);
            let staged = guard.as_mut().ok_or_else(aborted)?;
            let written = staged.file.seek(SeekFrom::Start(offset)).and_then(|_| {
                data.iter()
                    .try_for_each(|piece| staged.file.write_all(piece))
            });
            written.map_err(|err| store_error(err.into()))
        })
        .boxed()
    }

    fn complete<'life0, 'async_trait>(&'life0 mut self) -> Boxed<'async_trait, PutResult>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let shared = self.staged.clone();
        blocking(move || {
            let staged = lock(&shared).take().ok_or_else(aborted)?;
            staged.publish().map_err(store_error)?;
            Ok(PutResult {
                e_tag: None,
                version: None,
                extensions: Default::default(),
            })
        })
        .boxed()
    }

    fn abort<'life0, 'async_trait>(&'life0 mut self) -> Boxed<'async_trait, ()>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let shared = self.staged.clone();
        blocking(move || {
            if let Some(staged) = lock(&shared).take() {
                staged.discard();
            }
            Ok(())
        })
        .boxed()
    }
}

impl Drop for LocalUpload {
    /// An upload dropped unfinished (its task cancelled) removes its staging file.
    fn drop(&mut self) {
        if let Some(staged) = lock(&self.staged).take() {
            staged.discard();
        }
    }
}
