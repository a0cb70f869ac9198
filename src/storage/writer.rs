//! A streaming object write that hashes and counts as it goes. It keeps the first part in
//! memory so that a small object goes in one put; past one part it becomes a multipart upload
//! holding at most `upload_concurrency` parts in flight plus the part being filled.

mod content_md5;
mod parts;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStore, PutPayload};
use sha2::{Digest, Sha256};

use super::backend::Finisher;
use super::local::LocalUpload;
use super::options::WriteOptions;
use super::uploads::{KnownUpload, UploadLedger};
use super::{ObjectDigest, Publication, StorageError};
pub use content_md5::ContentMd5;
use parts::PartUpload;

/// A local upload writes its staging file at least this often while bytes arrive, however
/// slow the stream: a starting peer judges a staging file abandoned by its age (two leases,
/// at least 2 s), and must never take a live one for it.
const LOCAL_TOUCH_EVERY: Duration = Duration::from_secs(1);

/// Where and how an object is written.
pub(super) struct Target {
    pub store: Arc<dyn ObjectStore>,
    pub key: Path,
    pub part_size: usize,
    pub upload_concurrency: usize,
    pub options: WriteOptions,
    pub finisher: Arc<Finisher>,
    /// Told of each S3 upload's id before its first part is sent.
    pub uploads: Option<Arc<dyn UploadLedger>>,
}

enum Mode {
    /// Collecting the first part: an object that ends within it is sent in one put.
    Buffering { pieces: Vec<Bytes>, len: usize },
    /// Past one part: parts are uploading. A local upload owes the sync of these folders.
    Uploading(PartUpload, Vec<PathBuf>),
    /// This object is already archived: only hash, to confirm it is the same.
    Comparing(ObjectDigest),
}

/// A streaming write to one key; nothing appears there until `finish`.
pub struct ObjectWriter {
    target: Target,
    mode: Mode,
    hasher: Sha256,
    /// The Content-MD5 of a multipart upload to a store that keeps one (Azure); a single put
    /// gets it from the service itself.
    md5: Option<ContentMd5>,
    bytes: u64,
}

impl ObjectWriter {
    pub(super) fn new(target: Target) -> Self {
        Self {
            target,
            mode: Mode::Buffering {
                pieces: Vec::new(),
                len: 0,
            },
            hasher: Sha256::new(),
            md5: None,
            bytes: 0,
        }
    }

    /// A writer that uploads nothing and, at `finish`, checks the stream against `existing`.
    pub(super) fn comparing(target: Target, existing: ObjectDigest) -> Self {
        Self {
            mode: Mode::Comparing(existing),
            ..Self::new(target)
        }
    }

    /// Appends bytes, waiting while too many parts are in flight. A piece larger than a part
    /// is cut, so memory stays bounded whatever the size of the pieces.
    pub async fn write(&mut self, mut piece: Bytes) -> Result<(), StorageError> {
        while !piece.is_empty() {
            let slice = piece.split_to(piece.len().min(self.target.part_size));
            self.write_slice(slice).await?;
        }
        Ok(())
    }

    async fn write_slice(&mut self, slice: Bytes) -> Result<(), StorageError> {
        let len = slice.len();
        let mut first_part_full = false;
        match &mut self.mode {
            Mode::Comparing(_) => self.hasher.update(&slice),
            Mode::Uploading(upload, _) => {
                upload
                    .wait_for_capacity(self.target.upload_concurrency)
                    .await?;
                self.hasher.update(&slice);
                if let Some(md5) = &mut self.md5 {
                    md5.update(slice.clone()).await?;
                }
                upload.put(slice);
                upload.flush_if_due();
            }
            Mode::Buffering { pieces, len: held } => {
                self.hasher.update(&slice);
                pieces.push(slice);
                *held += len;
                first_part_full = *held >= self.target.part_size;
            }
        }
        self.bytes += len as u64;
        if first_part_full {
            self.start_multipart().await?;
        }
        Ok(())
    }

    /// The object has outgrown one part: start the upload with what is buffered.
    async fn start_multipart(&mut self) -> Result<(), StorageError> {
        let (upload, owed): (Box<dyn MultipartUpload>, _) = match self.target.finisher.local() {
            Some(local) => {
                let (local, key) = (local.clone(), self.target.key.clone());
                let staged = blocking(move || local.stage(&key)).await?;
                let (upload, owed) = LocalUpload::new(staged);
                (Box::new(upload), owed)
            }
            None => {
                let options = self.target.options.multipart_options();
                let upload: Box<dyn MultipartUpload> = match self.target.finisher.s3() {
                    // S3 keeps an unfinished upload (and bills its parts) until it is aborted:
                    // open it with an id we know and record, so it can be aborted later.
                    Some(s3) => Box::new(
                        KnownUpload::open(
                            s3.multipart(),
                            &self.target.key,
                            options,
                            self.target.uploads.clone(),
                        )
                        .await?,
                    ),
                    None => {
                        self.target
                            .store
                            .put_multipart_opts(&self.target.key, options)
                            .await?
                    }
                };
                (upload, Vec::new())
            }
        };
        let touch = self
            .target
            .finisher
            .local()
            .is_some()
            .then_some(LOCAL_TOUCH_EVERY);
        let mut upload = PartUpload::new(upload, self.target.part_size, touch);
        let mut md5 = self
            .target
            .finisher
            .keeps_content_md5()
            .then(|| ContentMd5::start(self.target.part_size));
        if let Mode::Buffering { pieces, .. } = &mut self.mode {
            for piece in pieces.drain(..) {
                if let Some(md5) = &mut md5 {
                    md5.update(piece.clone()).await?;
                }
                upload.put(piece);
            }
        }
        self.md5 = md5;
        self.mode = Mode::Uploading(upload, owed);
        Ok(())
    }

    /// Whether a multipart upload has started (tests check when one does).
    #[cfg(test)]
    pub(super) fn is_multipart(&self) -> bool {
        matches!(self.mode, Mode::Uploading(..))
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }

    /// Completes the object: one put when it fits in a part, else the multipart completion
    /// followed by the sha256 metadata. Only now does it appear at its key, complete and
    /// durable. A failed upload reports its own cause (e.g. the staging file's rename), not
    /// that of its clean-up.
    pub async fn finish(self) -> Result<ObjectDigest, StorageError> {
        let mut publication = Publication::default();
        let digest = self.finish_into(&mut publication).await?;
        publication.make_durable().await?;
        Ok(digest)
    }

    /// Like `finish`, but the object is durable only after `publication.make_durable()`:
    /// objects of one folder then share its sync.
    pub async fn finish_into(
        self,
        publication: &mut Publication,
    ) -> Result<ObjectDigest, StorageError> {
        let Target {
            store,
            key,
            options,
            finisher,
            ..
        } = self.target;
        let local = finisher.local().cloned();
        let digest = ObjectDigest {
            key: key.to_string(),
            bytes: self.bytes,
            sha256: hex::encode(self.hasher.finalize()),
        };
        match self.mode {
            Mode::Buffering { pieces, .. } => {
                let payload: PutPayload = pieces.into_iter().collect();
                match local {
                    Some(local) => {
                        let owed = blocking(move || local.put(&key, &payload)).await?;
                        publication.owe(owed);
                    }
                    None => {
                        finisher
                            .put(store.as_ref(), &key, payload, &options, &digest.sha256)
                            .await?;
                    }
                }
            }
            Mode::Uploading(upload, owed) => {
                let result = upload.finish().await?;
                publication.owe(owed);
                let mut e_tag = result.e_tag;
                if let Some(md5) = self.md5 {
                    let md5 = md5.finish().await?;
                    e_tag = finisher
                        .set_content_md5(&key, &md5, e_tag.as_deref())
                        .await?;
                }
                finisher
                    .set_sha256(&key, &digest.sha256, e_tag.as_deref(), digest.bytes)
                    .await?;
            }
            Mode::Comparing(existing) => {
                if existing.bytes != digest.bytes || existing.sha256 != digest.sha256 {
                    return Err(StorageError::ExistingDiffers { key: digest.key });
                }
                // The attempt that wrote it may have failed before syncing its folder.
                if let Some(local) = local {
                    publication.owe([local.folder_of(&key)?]);
                }
                finisher.relock_archived(&key).await?;
                tracing::info!(key = %key, bytes = digest.bytes, "already archived with the same sha256; upload skipped");
            }
        }
        Ok(digest)
    }

    /// Abandons the object, removing whatever parts were uploaded.
    pub async fn abort(self) {
        if let Mode::Uploading(upload, _) = self.mode
            && let Err(err) = upload.abort().await
        {
            tracing::warn!(key = %self.target.key, error = %err, "could not abort a partial upload");
        }
    }
}

/// Runs file work on the blocking pool.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::local::LocalFolder;
    use object_store::local::LocalFileSystem;

    const PART: usize = 16;

    fn local_target(root: &std::path::Path, key: &str) -> Target {
        Target {
            store: Arc::new(
                LocalFileSystem::new_with_prefix(root)
                    .unwrap()
                    .with_fsync(true),
            ),
            key: Path::from(key),
            part_size: PART,
            upload_concurrency: 2,
            options: WriteOptions::default(),
            finisher: Arc::new(Finisher::Local(Arc::new(LocalFolder::new(root).unwrap()))),
            uploads: None,
        }
    }

    #[tokio::test]
    async fn a_staging_file_removed_mid_upload_fails_with_the_rename_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = ObjectWriter::new(local_target(dir.path(), "call/chunk-0000.mp4"));
        writer
            .write(Bytes::from(vec![7u8; PART * 4]))
            .await
            .unwrap();
        assert!(writer.is_multipart());
        let staging = dir.path().join("call/chunk-0000.mp4#1");
        assert!(staging.exists(), "the upload is staged as NAME#1");
        // What a peer's start-up clean-up used to do to a live upload.
        std::fs::remove_file(&staging).unwrap();

        let err = writer.finish().await.unwrap_err().to_string();
        assert!(
            err.contains("Unable to rename file") && err.contains("No such file or directory"),
            "the failed rename is reported: {err}"
        );
        assert!(!err.contains("Upload aborted"), "not its clean-up: {err}");
        assert!(!dir.path().join("call/chunk-0000.mp4").exists());
    }

    #[tokio::test]
    async fn a_slow_local_stream_writes_its_staging_file_every_second() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = ObjectWriter::new(local_target(dir.path(), "call/chunk-0002.mp4"));
        writer.write(Bytes::from(vec![1u8; PART])).await.unwrap();
        let staging = dir.path().join("call/chunk-0002.mp4#1");
        let staged_len = || std::fs::metadata(&staging).map_or(0, |m| m.len());
        // The parts are written by tasks of this runtime: await, so that they run.
        async fn wait_for_len(staged_len: impl Fn() -> u64, len: u64) {
            let started = std::time::Instant::now();
            while staged_len() != len {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "staging file length {} never became {len}",
                    staged_len()
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        wait_for_len(staged_len, PART as u64).await;

        // Less than a part, trickling in: held until a second has passed since the last write.
        writer.write(Bytes::from_static(b"abc")).await.unwrap();
        assert_eq!(
            staged_len(),
            PART as u64,
            "a fresh short piece waits for more"
        );
        tokio::time::sleep(LOCAL_TOUCH_EVERY).await;
        writer.write(Bytes::from_static(b"def")).await.unwrap();
        wait_for_len(staged_len, PART as u64 + 6).await;

        let digest = writer.finish().await.unwrap();
        assert_eq!(digest.bytes, PART as u64 + 6);
        let written = std::fs::read(dir.path().join("call/chunk-0002.mp4")).unwrap();
        assert_eq!(&written[PART..], b"abcdef");
    }

    #[tokio::test]
    async fn a_multipart_upload_completes_at_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = ObjectWriter::new(local_target(dir.path(), "call/chunk-0001.mp4"));
        for piece in 0..10u8 {
            writer.write(Bytes::from(vec![piece; 7])).await.unwrap();
        }
        let digest = writer.finish().await.unwrap();
        let written = std::fs::read(dir.path().join("call/chunk-0001.mp4")).unwrap();
        let expected: Vec<u8> = (0..10u8).flat_map(|piece| vec![piece; 7]).collect();
        assert_eq!(written, expected);
        assert_eq!(digest.bytes, 70);
        assert_eq!(digest.sha256, hex::encode(Sha256::digest(&expected)));
    }
}
