//! A multipart upload holding a bounded number of parts in flight, which reports the error
//! that failed it. object_store's `WriteMultipart::finish` aborts after a failed completion
//! and, when the abort fails too, returns the abort's error instead; for a local folder that
//! is always "Upload aborted", hiding the failed rename (or write) that was the real problem.

use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::{MultipartUpload, PutPayloadMut, PutResult};
use tokio::task::JoinSet;

use crate::storage::StorageError;

pub(super) struct PartUpload {
    upload: Box<dyn MultipartUpload>,
    /// The part being filled.
    buffer: PutPayloadMut,
    part_size: usize,
    in_flight: JoinSet<object_store::Result<()>>,
    /// Send a short part when bytes have waited this long (a local folder only: its parts may
    /// have any size), so that a slow stream still touches its staging file.
    flush_after: Option<Duration>,
    last_sent: Instant,
}

impl PartUpload {
    pub fn new(
        upload: Box<dyn MultipartUpload>,
        part_size: usize,
        flush_after: Option<Duration>,
    ) -> Self {
        Self {
            upload,
            buffer: PutPayloadMut::new(),
            part_size: part_size.max(1),
            in_flight: JoinSet::new(),
            flush_after,
            last_sent: Instant::now(),
        }
    }

    /// Waits until fewer than `max` parts are in flight (none, for `max` 0), returning the
    /// first error a finished part reports.
    pub async fn wait_for_capacity(&mut self, max: usize) -> Result<(), StorageError> {
        while !self.in_flight.is_empty() && self.in_flight.len() >= max {
            match self.in_flight.join_next().await {
                Some(Ok(Ok(()))) | None => {}
                Some(Ok(Err(err))) => return Err(err.into()),
                Some(Err(join)) => {
                    return Err(StorageError::Io(std::io::Error::other(format!(
                        "a part upload task failed: {join}"
                    ))));
                }
            }
        }
        Ok(())
    }

    /// Buffers `bytes`, sending each part as it fills.
    pub fn put(&mut self, mut bytes: Bytes) {
        while !bytes.is_empty() {
            let room = self.part_size - self.buffer.content_length();
            if bytes.len() < room {
                self.buffer.push(bytes);
                return;
            }
            self.buffer.push(bytes.split_to(room));
            self.send_buffer();
        }
    }

    /// Sends what is buffered as a short part when `flush_after` has passed since the last.
    pub fn flush_if_due(&mut self) {
        if self
            .flush_after
            .is_some_and(|after| self.last_sent.elapsed() >= after)
            && self.buffer.content_length() > 0
        {
            self.send_buffer();
        }
    }

    fn send_buffer(&mut self) {
        let part = std::mem::take(&mut self.buffer);
        self.in_flight.spawn(self.upload.put_part(part.into()));
        self.last_sent = Instant::now();
    }

    /// Sends the last part, waits for every part and completes the upload. On failure the
    /// upload is aborted and the error that failed it is returned, whatever the abort says.
    pub async fn finish(mut self) -> Result<PutResult, StorageError> {
        if self.buffer.content_length() > 0 {
            self.send_buffer();
        }
        if let Err(err) = self.wait_for_capacity(0).await {
            self.abort_after(&err).await;
            return Err(err);
        }
        match self.upload.complete().await {
            Ok(result) => Ok(result),
            Err(err) => {
                let err = StorageError::from(err);
                self.abort_after(&err).await;
                Err(err)
            }
        }
    }

    /// Abandons the upload, removing whatever parts were sent.
    pub async fn abort(mut self) -> Result<(), StorageError> {
        self.in_flight.shutdown().await;
        Ok(self.upload.abort().await?)
    }

    /// Cleans up after `cause`; a failing clean-up is logged, never returned in its place.
    async fn abort_after(&mut self, cause: &StorageError) {
        self.in_flight.shutdown().await;
        if let Err(abort) = self.upload.abort().await {
            tracing::debug!(error = %abort, cause = %cause, "clean-up after a failed upload did not complete");
        }
    }
}
