//! The participant index's rows (migration 0011): written beside an archived outcome, read
//! by participant, and the backfill's batches and progress. What the keys are is
//! [`crate::participant_id`]'s business; the lookup API is [`crate::participants`].

use sqlx::AssertSqlSafe;

use super::recordings::Recording;
use super::{Db, JobState, QueueError, Tx};
use crate::participant_id::ParticipantId;

/// Rows per INSERT: 200 × 1 bound id plus 3 shared values, far inside both backends' limits.
const ROWS_PER_STATEMENT: usize = 200;

/// Indexes `ids` for `recording` as seen in chunk `chunk_index`, archived at `archived_at`.
/// A participant already indexed for the recording keeps its earliest sighting, so the
/// order in which chunks (or backfill batches) arrive does not matter. Answers how many
/// rows were added or moved earlier: 0 when everything was indexed already.
pub async fn index_chunk(
    tx: &mut Tx,
    recording: i64,
    chunk_index: i64,
    ids: &[ParticipantId],
    archived_at: i64,
) -> Result<u64, QueueError> {
    let mut added = 0;
    for batch in ids.chunks(ROWS_PER_STATEMENT) {
        let rows: Vec<String> = (0..batch.len())
            .map(|n| format!("(${}, $1, $2, $3)", n + 4))
            .collect();
        let sql = format!(
            "INSERT INTO participant_recordings (participant, recording_id, first_seen_at, first_chunk_index)
             VALUES {} ON CONFLICT (participant, recording_id) DO UPDATE
             SET first_seen_at = excluded.first_seen_at, first_chunk_index = excluded.first_chunk_index
             WHERE excluded.first_seen_at < participant_recordings.first_seen_at",
            rows.join(", ")
        );
        let mut insert = sqlx::query(AssertSqlSafe(sql))
            .bind(recording)
            .bind(archived_at)
            .bind(chunk_index);
        for id in batch {
            insert = insert.bind(id.as_str());
        }
        added += insert.execute(&mut **tx).await?.rows_affected();
    }
    Ok(added)
}

/// A recording a participant is in, with the job counts its state is derived from.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IndexedRecording {
    #[sqlx(flatten)]
    pub recording: Recording,
    pub first_seen_at: i64,
    pub first_chunk_index: i64,
    pub chunks: i64,
    pub archived_chunks: i64,
    pub active_chunks: i64,
    pub broken_chunks: i64,
}

/// One primary-key range of the index, then a primary-key probe per recording.
pub const RECORDINGS_OF_SQL: &str = "SELECT r.*, p.first_seen_at, p.first_chunk_index,
        COALESCE(c.chunks, 0) AS chunks,
        COALESCE(c.archived_chunks, 0) AS archived_chunks,
        COALESCE(c.active_chunks, 0) AS active_chunks,
        COALESCE(c.broken_chunks, 0) AS broken_chunks
     FROM participant_recordings p
     JOIN recordings r ON r.id = p.recording_id
     LEFT JOIN recording_counts c ON c.recording_id = r.id
     WHERE p.participant = $1 AND p.recording_id < $2
     ORDER BY p.recording_id DESC LIMIT $3";

/// The participant's recordings with row ids below `before`, newest first.
pub async fn recordings_of(
    db: &Db,
    participant: &ParticipantId,
    before: i64,
    limit: i64,
) -> Result<Vec<IndexedRecording>, QueueError> {
    Ok(sqlx::query_as(RECORDINGS_OF_SQL)
        .bind(participant.as_str())
        .bind(before)
        .bind(limit)
        .fetch_all(db.pool())
        .await?)
}

/// A chunk of an indexed recording: where its objects are.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChunkObjects {
    pub recording_id: i64,
    pub chunk_index: i64,
    pub state: JobState,
    pub media_key: Option<String>,
    pub metadata_key: Option<String>,
    pub archived_at: Option<i64>,
}

/// The chunks of `recordings`, by recording then index.
pub async fn chunks_of(db: &Db, recordings: &[i64]) -> Result<Vec<ChunkObjects>, QueueError> {
    if recordings.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (1..=recordings.len()).map(|n| format!("${n}")).collect();
    let sql = format!(
        "SELECT recording_id, chunk_index, state, media_key, metadata_key, archived_at FROM jobs
         WHERE recording_id IN ({}) ORDER BY recording_id, chunk_index, id",
        placeholders.join(", ")
    );
    let mut query = sqlx::query_as(AssertSqlSafe(sql));
    for id in recordings {
        query = query.bind(*id);
    }
    Ok(query.fetch_all(db.pool()).await?)
}

/// Where the backfill stands (the one row of `participant_backfill`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct BackfillProgress {
    /// The lowest job id not read yet.
    pub next_job_id: i64,
    /// The newest job id the pass covers; jobs archived later are indexed as they archive.
    pub through_job_id: i64,
    pub jobs_read: i64,
    pub rows_added: i64,
    pub ids_skipped: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

impl BackfillProgress {
    pub fn is_finished(&self) -> bool {
        self.next_job_id > self.through_job_id
    }
}

const PROGRESS_SQL: &str = "SELECT next_job_id, through_job_id, jobs_read, rows_added, ids_skipped,
     started_at, finished_at FROM participant_backfill WHERE id = 1";

pub async fn backfill_progress(db: &Db) -> Result<BackfillProgress, QueueError> {
    Ok(sqlx::query_as(PROGRESS_SQL).fetch_one(db.pool()).await?)
}

/// The progress as this transaction sees it.
pub async fn backfill_progress_in(tx: &mut Tx) -> Result<BackfillProgress, QueueError> {
    Ok(sqlx::query_as(PROGRESS_SQL).fetch_one(&mut **tx).await?)
}

/// Starts the pass again from the first job, through the newest job now: for a database
/// that old-version replicas kept archiving into after the migration. Rows already indexed
/// are left as they are.
pub async fn restart_backfill(db: &Db) -> Result<BackfillProgress, QueueError> {
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "UPDATE participant_backfill SET next_job_id = 0,
             through_job_id = (SELECT COALESCE(MAX(id), 0) FROM jobs),
             jobs_read = 0, rows_added = 0, ids_skipped = 0, started_at = NULL, finished_at = NULL
         WHERE id = 1",
    )
    .execute(&mut *tx)
    .await?;
    let progress = backfill_progress_in(&mut tx).await?;
    tx.commit().await?;
    Ok(progress)
}

/// An archived job as the backfill reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ArchivedParticipants {
    pub id: i64,
    pub recording_id: i64,
    pub chunk_index: i64,
    /// JSON array of raw ids, as the worker stored it.
    pub participants: Option<String>,
    pub archived_at: Option<i64>,
}

/// Up to `limit` archived jobs with ids from `from` through `through`, by id.
pub async fn archived_jobs(
    tx: &mut Tx,
    from: i64,
    through: i64,
    limit: i64,
) -> Result<Vec<ArchivedParticipants>, QueueError> {
    Ok(sqlx::query_as(
        "SELECT id, recording_id, chunk_index, participants, archived_at FROM jobs
         WHERE id >= $1 AND id <= $2 AND state = 'archived' ORDER BY id LIMIT $3",
    )
    .bind(from)
    .bind(through)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?)
}

/// One batch's effect on the progress row.
#[derive(Debug, Clone, Copy)]
pub struct BatchDone {
    /// Where the batch started: the row must still say so.
    pub from: i64,
    /// The next job id to read.
    pub next: i64,
    pub jobs_read: i64,
    pub rows_added: i64,
    pub ids_skipped: i64,
    pub now: i64,
}

/// Moves the progress past a batch; false when another process moved it first (the caller
/// rolls back: its rows are already there or will be).
pub async fn advance_backfill(tx: &mut Tx, done: &BatchDone) -> Result<bool, QueueError> {
    let updated = sqlx::query(
        "UPDATE participant_backfill SET next_job_id = $2, jobs_read = jobs_read + $3,
             rows_added = rows_added + $4, ids_skipped = ids_skipped + $5,
             started_at = COALESCE(started_at, $6),
             finished_at = CASE WHEN $2 > through_job_id THEN $6 ELSE NULL END
         WHERE id = 1 AND next_job_id = $1",
    )
    .bind(done.from)
    .bind(done.next)
    .bind(done.jobs_read)
    .bind(done.rows_added)
    .bind(done.ids_skipped)
    .bind(done.now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(updated == 1)
}
