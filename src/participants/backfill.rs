//! The one-time backfill: chunks archived before the participant index existed (migration
//! 0011) are indexed from the participant ids the queue already keeps per job
//! (`jobs.participants`, written since the first release), so nothing is read from the
//! store. The pass walks archived jobs by id up to the newest job at migration time, one
//! bounded batch per transaction; each batch's rows and the progress row commit together, so
//! an interrupted pass resumes exactly where it stopped, and rows are inserted only when
//! absent, so running it again changes nothing.
//!
//! `serve` runs it in the background at start-up (worker and all roles), pausing between
//! batches so ingest and workers keep the database; `callvault participants backfill` runs it
//! in the foreground. Several replicas may run it at once: a batch whose progress row another
//! process moved first is rolled back and the pass goes on from the new position.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::participant_id::{ChunkParticipants, Skipped};
use crate::queue::participants::{self as index, BackfillProgress, BatchDone};
use crate::queue::{Db, QueueError, now_millis};

/// Archived jobs read per transaction: a few milliseconds of writer time on SQLite.
pub const BATCH_JOBS: i64 = 500;

/// The pause between batches of the background pass.
pub const BACKGROUND_PAUSE: Duration = Duration::from_millis(50);

/// How long the background pass waits after a database error before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BackfillReport {
    /// Batches committed by this run.
    pub batches: u64,
    /// Archived jobs read by this run.
    pub jobs_read: u64,
    /// Index rows this run added (0 when everything was indexed already).
    pub rows_added: u64,
    /// Participant ids left out, by reason.
    pub skipped: Skipped,
    /// Where the pass stands now.
    pub progress: Option<BackfillProgress>,
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepReport {
    /// Archived jobs read (0 when another process did this batch first).
    pub jobs_read: u64,
    pub rows_added: u64,
    pub skipped: Skipped,
}

/// Runs one batch in one transaction; None when the pass is finished.
pub async fn step(db: &Db) -> Result<Option<StepReport>, QueueError> {
    let mut tx = db.begin_write().await?;
    let progress = index::backfill_progress_in(&mut tx).await?;
    if progress.is_finished() {
        tx.rollback().await?;
        return Ok(None);
    }
    let from = progress.next_job_id;
    let jobs = index::archived_jobs(&mut tx, from, progress.through_job_id, BATCH_JOBS).await?;
    let next = match jobs.last() {
        Some(last) if jobs.len() as i64 == BATCH_JOBS => last.id + 1,
        // Fewer than a batch: nothing archived is left up to the end of the range.
        _ => progress.through_job_id + 1,
    };
    let now = now_millis();
    let (mut rows_added, mut skipped) = (0, Skipped::default());
    for job in &jobs {
        let read = ChunkParticipants::from_stored_json(job.participants.as_deref().unwrap_or("[]"));
        skipped.add(read.skipped);
        rows_added += index::index_chunk(
            &mut tx,
            job.recording_id,
            job.chunk_index,
            &read.ids,
            job.archived_at.unwrap_or(now),
        )
        .await?;
    }
    let done = BatchDone {
        from,
        next,
        jobs_read: jobs.len() as i64,
        rows_added: rows_added as i64,
        ids_skipped: skipped.total() as i64,
        now,
    };
    if !index::advance_backfill(&mut tx, &done).await? {
        // Another process did this batch: its rows are there, ours are not needed.
        tx.rollback().await?;
        return Ok(Some(StepReport::default()));
    }
    tx.commit().await?;
    if skipped.total() > 0 {
        tracing::warn!(
            too_long = skipped.too_long,
            invalid = skipped.invalid,
            over_limit = skipped.over_limit,
            "participant ids left out of the participant index by the backfill"
        );
    }
    Ok(Some(StepReport {
        jobs_read: jobs.len() as u64,
        rows_added,
        skipped,
    }))
}

/// Runs the pass to its end (or until `stop`), pausing `pause` between batches.
pub async fn run(
    db: &Db,
    pause: Duration,
    stop: &CancellationToken,
) -> Result<BackfillReport, QueueError> {
    let mut report = BackfillReport::default();
    while !stop.is_cancelled() {
        let Some(done) = step(db).await? else {
            break;
        };
        report.batches += 1;
        report.jobs_read += done.jobs_read;
        report.rows_added += done.rows_added;
        report.skipped.add(done.skipped);
        if !pause.is_zero() {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
    report.progress = Some(index::backfill_progress(db).await?);
    Ok(report)
}

/// The background pass of `serve`: quiet when there is nothing to do, retried after a
/// database error, stopped by `shutdown` (the next start resumes it).
pub async fn run_in_background(db: Db, shutdown: CancellationToken) {
    loop {
        match index::backfill_progress(&db).await {
            Ok(progress) if progress.is_finished() => return,
            Ok(progress) => tracing::info!(
                next_job_id = progress.next_job_id,
                through_job_id = progress.through_job_id,
                "indexing the participants of chunks archived before the participant index"
            ),
            Err(_) => {}
        }
        match run(&db, BACKGROUND_PAUSE, &shutdown).await {
            Ok(report) => {
                if report
                    .progress
                    .as_ref()
                    .is_some_and(BackfillProgress::is_finished)
                {
                    tracing::info!(
                        jobs_read = report.jobs_read,
                        rows_added = report.rows_added,
                        "participant index backfill finished"
                    );
                }
                return;
            }
            Err(err) => {
                tracing::warn!(error = %err, "participant index backfill interrupted; it resumes in a minute");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(RETRY_AFTER) => {}
                }
            }
        }
    }
}
