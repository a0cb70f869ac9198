//! Multipart uploads whose id we know. object_store's `put_multipart` keeps the S3 upload id
//! to itself, so an upload whose abort cannot reach the store (an outage mid-write) would stay
//! in the bucket, billed, with nothing left that could name it. Here the upload is opened with
//! `MultipartStore`, its id is handed to an [`UploadLedger`] before any part is sent, and the
//! ledger hears again once the upload is completed or aborted.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{MultipartId, MultipartUpload, PutMultipartOptions, PutPayload, PutResult};

use super::StorageError;

/// Where open multipart uploads are written down, so that a later attempt or a sweep can
/// abort one that its writer could not. Implemented outside storage (over the queue).
#[async_trait]
pub trait UploadLedger: Send + Sync {
    /// `upload_id` was opened at `key`; called before its first part is sent. An error stops
    /// the write (the upload is aborted at once): an upload nobody recorded could be orphaned.
    async fn opened(&self, key: &str, upload_id: &str) -> Result<(), String>;
    /// `upload_id` at `key` is completed or aborted: nothing is left to clean.
    async fn closed(&self, key: &str, upload_id: &str) -> Result<(), String>;
}

/// An incomplete multipart upload, as the store lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncompleteUpload {
    pub key: String,
    pub upload_id: String,
    pub initiated: chrono::DateTime<chrono::Utc>,
}

/// What listing incomplete uploads found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncompleteUploads {
    /// The store keeps incomplete uploads (S3): these, under the archive's prefix.
    Listed(Vec<IncompleteUpload>),
    /// The store has nothing to abort; why, in a sentence for the operator.
    NothingToAbort(&'static str),
}

/// What aborting a known upload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadAbort {
    /// The upload and its parts are gone now.
    Aborted,
    /// The store no longer knows the id: already completed or aborted.
    AlreadyGone,
}

/// Aborts `upload_id` at `key`; an id the store no longer knows counts as done.
pub(super) async fn abort(
    store: &dyn MultipartStore,
    key: &Path,
    upload_id: &str,
) -> object_store::Result<UploadAbort> {
    match store.abort_multipart(key, &upload_id.to_owned()).await {
        Ok(()) => Ok(UploadAbort::Aborted),
        Err(object_store::Error::NotFound { .. }) => Ok(UploadAbort::AlreadyGone),
        Err(err) => Err(err),
    }
}

/// A multipart upload over `MultipartStore`, with the id known to us and to the ledger.
pub(super) struct KnownUpload {
    store: Arc<dyn MultipartStore>,
    key: Path,
    id: MultipartId,
    next_part: usize,
    /// Filled by the part futures, which may finish in any order.
    parts: Arc<Mutex<Vec<(usize, PartId)>>>,
    ledger: Option<Arc<dyn UploadLedger>>,
}

impl std::fmt::Debug for KnownUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnownUpload")
            .field("key", &self.key)
            .field("id", &self.id)
            .field("next_part", &self.next_part)
            .finish()
    }
}

impl KnownUpload {
    /// Opens an upload at `key` and records it in `ledger` before anything else is sent.
    pub async fn open(
        store: Arc<dyn MultipartStore>,
        key: &Path,
        options: PutMultipartOptions,
        ledger: Option<Arc<dyn UploadLedger>>,
    ) -> Result<Self, StorageError> {
        let id = store.create_multipart_opts(key, options).await?;
        if let Some(ledger) = &ledger
            && let Err(err) = ledger.opened(key.as_ref(), &id).await
        {
            if let Err(abort) = abort(store.as_ref(), key, &id).await {
                tracing::warn!(key = %key, upload_id = %id, error = %abort, "an upload that could not be recorded could not be aborted either; `callvault storage cleanup` lists it");
            }
            return Err(StorageError::Ledger(format!(
                "cannot record the multipart upload of {key}: {err}"
            )));
        }
        Ok(Self {
            store,
            key: key.clone(),
            id,
            next_part: 0,
            parts: Arc::default(),
            ledger,
        })
    }

    /// Tells the ledger the upload is gone; a failure only leaves a record that a later
    /// abort finds already gone.
    async fn forget(&self) {
        if let Some(ledger) = &self.ledger
            && let Err(err) = ledger.closed(self.key.as_ref(), &self.id).await
        {
            tracing::warn!(key = %self.key, upload_id = %self.id, error = %err, "could not strike a closed upload from the record; a later sweep does");
        }
    }
}

#[async_trait]
impl MultipartUpload for KnownUpload {
    fn put_part(&mut self, data: PutPayload) -> object_store::UploadPart {
        let index = self.next_part;
        self.next_part += 1;
        let (store, key, id, parts) = (
            self.store.clone(),
            self.key.clone(),
            self.id.clone(),
            self.parts.clone(),
        );
        Box::pin(async move {
            // The store's own request retries apply; S3 checks the part's sha256 checksum.
            let part = store.put_part(&key, &id, index, data).await?;
            parts
                .lock()
                .expect("no part future panics holding the lock")
                .push((index, part));
            Ok(())
        })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let mut parts = std::mem::take(
            &mut *self
                .parts
                .lock()
                .expect("no part future panics holding the lock"),
        );
        if parts.len() != self.next_part {
            return Err(object_store::Error::Generic {
                store: "KnownUpload",
                source: format!(
                    "{} of {} parts were uploaded before completion",
                    parts.len(),
                    self.next_part
                )
                .into(),
            });
        }
        parts.sort_unstable_by_key(|(index, _)| *index);
        let parts = parts.into_iter().map(|(_, part)| part).collect();
        let result = self
            .store
            .complete_multipart(&self.key, &self.id, parts)
            .await?;
        self.forget().await;
        Ok(result)
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        abort(self.store.as_ref(), &self.key, &self.id).await?;
        self.forget().await;
        Ok(())
    }
}
