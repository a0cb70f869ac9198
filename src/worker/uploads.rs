//! No orphaned uploads: each S3 multipart upload a job opens is recorded in the queue before
//! its first part is sent. When an attempt ends without completing it and its abort fails (the
//! store was unreachable), the record stays; the job's next attempt, or the hourly sweep once
//! no live lease can own it, aborts the upload and strikes the record off.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::queue::uploads::{self, OpenUpload};
use crate::queue::{Db, QueueError, now_millis};
use crate::storage::{Archive, UploadAbort, UploadLedger};

/// How often the sweep looks for abandoned uploads (as the quarantine purge does).
pub const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// A sweep takes at most this many records; the rest wait for the next.
const SWEEP_BATCH: i64 = 1000;

/// Records the uploads of one job in the queue.
pub struct JobUploads {
    db: Db,
    job: i64,
}

impl JobUploads {
    pub fn new(db: Db, job: i64) -> Arc<Self> {
        Arc::new(Self { db, job })
    }
}

#[async_trait]
impl UploadLedger for JobUploads {
    async fn opened(&self, key: &str, upload_id: &str) -> Result<(), String> {
        uploads::opened(&self.db, self.job, key, upload_id, now_millis())
            .await
            .map_err(|err| err.to_string())
    }

    async fn closed(&self, _key: &str, upload_id: &str) -> Result<(), String> {
        uploads::closed(&self.db, upload_id)
            .await
            .map_err(|err| err.to_string())
    }
}

/// What aborting recorded uploads did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Aborted {
    /// Aborted now: their parts are gone.
    pub aborted: usize,
    /// Already completed or aborted; only the record was left.
    pub already_gone: usize,
    /// Could not be aborted (the store is still unreachable): kept for next time.
    pub failed: usize,
}

/// Aborts each recorded upload and strikes off those that are gone; counts the aborted ones
/// in `callvault_storage_uploads_aborted_total`.
pub async fn abort_recorded(
    db: &Db,
    archive: &Archive,
    metrics: &Metrics,
    recorded: &[OpenUpload],
) -> Aborted {
    let mut done = Aborted::default();
    for upload in recorded {
        match archive
            .abort_upload(&upload.object_key, &upload.upload_id)
            .await
        {
            Ok(outcome) => {
                if outcome == UploadAbort::Aborted {
                    done.aborted += 1;
                    Metrics::add(&metrics.storage_uploads_aborted, 1);
                    tracing::info!(key = %upload.object_key, upload_id = %upload.upload_id, job_id = upload.job_id, "incomplete upload aborted");
                } else {
                    done.already_gone += 1;
                }
                if let Err(err) = uploads::closed(db, &upload.upload_id).await {
                    tracing::warn!(upload_id = %upload.upload_id, error = %err, "upload aborted, but its record stays until the next sweep");
                }
            }
            Err(err) => {
                done.failed += 1;
                tracing::warn!(key = %upload.object_key, upload_id = %upload.upload_id, error = %err, "cannot abort an incomplete upload yet; will try again");
            }
        }
    }
    done
}

/// At the start of an attempt: aborts what the job's earlier attempts left open. A failure
/// is logged and the attempt goes on; archiving the chunk matters more than the clean-up.
pub async fn abort_left_by_earlier_attempts(
    db: &Db,
    archive: &Archive,
    metrics: &Metrics,
    job: i64,
) -> Aborted {
    match uploads::of_job(db, job).await {
        Ok(recorded) => abort_recorded(db, archive, metrics, &recorded).await,
        Err(err) => {
            tracing::warn!(job_id = job, error = %err, "cannot read the job's open uploads; the sweep aborts them");
            Aborted::default()
        }
    }
}

/// One sweep: aborts recorded uploads opened more than `margin` ago whose job no live lease
/// holds.
pub async fn sweep_once(
    db: &Db,
    archive: &Archive,
    metrics: &Metrics,
    margin: Duration,
) -> Result<Aborted, QueueError> {
    let now = now_millis();
    let margin_ms = i64::try_from(margin.as_millis()).unwrap_or(i64::MAX);
    let abandoned = uploads::abandoned(db, now.saturating_sub(margin_ms), now, SWEEP_BATCH).await?;
    let done = abort_recorded(db, archive, metrics, &abandoned).await;
    if done != Aborted::default() {
        tracing::info!(
            aborted = done.aborted,
            already_gone = done.already_gone,
            failed = done.failed,
            "swept abandoned multipart uploads"
        );
    }
    Ok(done)
}

/// Runs until `shutdown`: a sweep at once, then every [`SWEEP_EVERY`].
pub async fn run(
    db: Db,
    archive: Archive,
    metrics: Arc<Metrics>,
    margin: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(SWEEP_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(err) = sweep_once(&db, &archive, &metrics, margin).await {
            tracing::warn!(error = %err, "cannot sweep abandoned uploads; the database may be unavailable");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::IncompleteUploads;
    use crate::storage::tests::boto::boto3_incomplete_uploads;
    use crate::storage::tests::proxy::CutProxy;
    use crate::storage::tests::servers::{PART, pattern, s3_archive_at, s3_endpoint};
    use object_store::path::Path;

    async fn sqlite_queue() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}/q.db", dir.path().display()), 2)
            .await
            .unwrap();
        db.migrate().await.unwrap();
        (dir, db)
    }

    /// An attempt of `job` whose store is cut off mid-upload: its parts, completion and abort
    /// all fail. Returns the upload it leaves, after checking that S3 (seen by boto3) and
    /// the queue both still hold it.
    async fn orphan_an_upload(
        proxy: &CutProxy,
        archive: &Archive,
        db: &Db,
        bucket: &str,
        job: i64,
    ) -> OpenUpload {
        let key = Path::from(format!("call/rec/chunk-{job:04}.mp4"));
        let mut writer = archive
            .with_upload_ledger(JobUploads::new(db.clone(), job))
            .writer(&key)
            .await
            .unwrap();
        writer.write(pattern(2 * PART, 1)).await.unwrap();
        let recorded = uploads::of_job(db, job).await.unwrap();
        assert_eq!(recorded.len(), 1, "recorded before its parts: {recorded:?}");
        proxy.cut();
        // Parts may fail here or at `finish`; either way the attempt fails.
        let written = writer.write(pattern(PART, 2)).await;
        let finished = match written {
            Ok(()) => writer.finish().await.map(|_| ()),
            Err(err) => {
                writer.abort().await;
                Err(err)
            }
        };
        assert!(finished.is_err(), "the store was cut off");
        let moto = s3_endpoint().unwrap();
        assert_eq!(
            boto3_incomplete_uploads(&moto, bucket),
            vec![(key.to_string(), recorded[0].upload_id.clone())],
            "the failed abort left the upload in the bucket"
        );
        assert_eq!(uploads::of_job(db, job).await.unwrap(), recorded);
        recorded.into_iter().next().unwrap()
    }

    /// No incomplete upload, by our ListMultipartUploads and by boto3, in one assertion.
    async fn assert_no_incomplete_upload(archive: &Archive, bucket: &str) {
        let ours = match archive.incomplete_uploads().await.unwrap() {
            IncompleteUploads::Listed(uploads) => uploads,
            other => panic!("S3 lists its uploads: {other:?}"),
        };
        let theirs = boto3_incomplete_uploads(&s3_endpoint().unwrap(), bucket);
        assert_eq!((ours, theirs), (vec![], vec![]), "ours, then boto3's");
    }

    #[tokio::test]
    async fn an_upload_cut_off_mid_way_is_aborted_by_the_next_attempt_once_the_store_is_back() {
        let Some(moto) = s3_endpoint() else {
            return;
        };
        let proxy = CutProxy::start(&moto).await;
        let (archive, bucket) = s3_archive_at(&proxy.endpoint(), &[]).await;
        let (_dir, db) = sqlite_queue().await;
        let orphan = orphan_an_upload(&proxy, &archive, &db, &bucket, 41).await;

        // While the store is still down, the next attempt keeps the record for later.
        let metrics = Metrics::default();
        let down = abort_left_by_earlier_attempts(&db, &archive, &metrics, 41).await;
        assert_eq!((down.aborted, down.failed), (0, 1));
        assert_eq!(uploads::of_job(&db, 41).await.unwrap(), vec![orphan]);

        proxy.restore();
        let done = abort_left_by_earlier_attempts(&db, &archive, &metrics, 41).await;
        assert_eq!(
            done,
            Aborted {
                aborted: 1,
                already_gone: 0,
                failed: 0
            }
        );
        assert_eq!(Metrics::get(&metrics.storage_uploads_aborted), 1);
        assert!(uploads::of_job(&db, 41).await.unwrap().is_empty());
        assert_no_incomplete_upload(&archive, &bucket).await;
    }

    #[tokio::test]
    async fn the_sweep_aborts_an_upload_no_live_lease_holds() {
        let Some(moto) = s3_endpoint() else {
            return;
        };
        let proxy = CutProxy::start(&moto).await;
        let (archive, bucket) = s3_archive_at(&proxy.endpoint(), &[]).await;
        let (_dir, db) = sqlite_queue().await;
        orphan_an_upload(&proxy, &archive, &db, &bucket, 42).await;
        proxy.restore();
        let metrics = Metrics::default();

        let long_margin = sweep_once(&db, &archive, &metrics, Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(long_margin, Aborted::default(), "younger than the margin");
        // Job 42 is in no table: no lease can hold its upload.
        let done = sweep_once(&db, &archive, &metrics, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(done.aborted, 1);
        assert_eq!(Metrics::get(&metrics.storage_uploads_aborted), 1);
        assert!(uploads::of_job(&db, 42).await.unwrap().is_empty());
        assert_no_incomplete_upload(&archive, &bucket).await;
    }
}
