//! The job lifecycle: claim with a lease, renew it, and finish as archived, retry, failed or expired.

use super::{Backend, Db, QueueError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Pending,
    Running,
    Archived,
    Failed,
    Expired,
}

impl JobState {
    pub const ALL: [JobState; 5] = [
        JobState::Pending,
        JobState::Running,
        JobState::Archived,
        JobState::Failed,
        JobState::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Archived => "archived",
            JobState::Failed => "failed",
            JobState::Expired => "expired",
        }
    }
}

impl std::str::FromStr for JobState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| {
                format!("`{s}` is not a job state (pending, running, archived, failed, expired)")
            })
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One chunk to archive.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Job {
    pub id: i64,
    pub recording_id: i64,
    pub chunk_index: i64,
    pub document_id: String,
    pub end_reason: Option<String>,
    pub content_url: String,
    pub metadata_url: String,
    pub delete_url: Option<String>,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub last_error: Option<String>,
    pub deadline_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub archived_at: Option<i64>,
    pub media_key: Option<String>,
    pub media_bytes: Option<i64>,
    pub media_sha256: Option<String>,
    pub metadata_key: Option<String>,
    pub metadata_bytes: Option<i64>,
    pub metadata_sha256: Option<String>,
    pub participants: Option<String>,
    pub source_deleted_at: Option<i64>,
}

impl Job {
    pub fn state(&self) -> JobState {
        self.state.parse().unwrap_or(JobState::Pending)
    }
}

/// Due work: pending and due, or running with a lapsed lease; never a chunk while an earlier
/// chunk of the same recording is still pending or running. Earliest deadline first.
const CLAIM_SQLITE: &str = claim_sql::SQLITE;
const CLAIM_POSTGRES: &str = claim_sql::POSTGRES;

mod claim_sql {
    // SQLite serialises writers, so the subquery and update are atomic; PostgreSQL skips rows
    // another worker is claiming.
    macro_rules! claim {
        ($lock:literal) => {
            concat!(
                "UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3
                 WHERE id = (SELECT j.id FROM jobs j
                    WHERE ((j.state = 'pending' AND j.next_attempt_at <= $3) OR (j.state = 'running' AND j.lease_until < $3))
                      AND NOT EXISTS (SELECT 1 FROM jobs e WHERE e.recording_id = j.recording_id AND e.chunk_index < j.chunk_index
                                      AND e.state IN ('pending', 'running'))
                    ORDER BY j.deadline_at, j.recording_id, j.chunk_index LIMIT 1 ",
                $lock,
                ") RETURNING *"
            )
        };
    }
    pub const SQLITE: &str = claim!("");
    pub const POSTGRES: &str = claim!("FOR UPDATE SKIP LOCKED");
}

/// Claims the most urgent due job under `lease` (a token unique to this claim) until
/// `lease_until`, and opens its attempt record.
pub async fn claim(
    db: &Db,
    lease: &str,
    lease_until: i64,
    now: i64,
) -> Result<Option<Job>, QueueError> {
    let sql = match db.backend() {
        Backend::Sqlite => CLAIM_SQLITE,
        Backend::Postgres => CLAIM_POSTGRES,
    };
    let mut tx = db.begin_write().await?;
    let job: Option<Job> = sqlx::query_as(sql)
        .bind(lease)
        .bind(lease_until)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(job) = &job {
        // A lease that lapsed leaves its attempt open; close it so the history stays true.
        sqlx::query("UPDATE attempts SET finished_at = $1, outcome = 'lease-lost' WHERE job_id = $2 AND finished_at IS NULL")
            .bind(now)
            .bind(job.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO attempts (job_id, attempt, worker, started_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(job.id)
        .bind(job.attempts)
        .bind(lease)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(job)
}

/// Extends a lease; false when the job is no longer ours (taken over or finished elsewhere).
pub async fn renew(db: &Db, job: i64, lease: &str, lease_until: i64) -> Result<bool, QueueError> {
    let updated = sqlx::query(
        "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND lease_owner = $3 AND state = 'running'",
    )
    .bind(lease_until)
    .bind(job)
    .bind(lease)
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// What an archived chunk left in storage.
#[derive(Debug, Clone)]
pub struct ArchivedChunk {
    pub media_key: String,
    pub media_bytes: u64,
    pub media_sha256: String,
    pub metadata_key: String,
    pub metadata_bytes: u64,
    pub metadata_sha256: String,
    /// JSON array of participant ids from the metadata document.
    pub participants: String,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum Finish {
    Archived(ArchivedChunk),
    /// Back to pending, due again at `next_attempt_at`.
    Retry {
        next_attempt_at: i64,
        error: String,
    },
    Failed {
        error: String,
    },
    Expired {
        error: String,
    },
}

/// Records the end of an attempt; false when the lease was lost meanwhile (nothing changed).
pub async fn finish(
    db: &Db,
    job: &Job,
    lease: &str,
    outcome: &Finish,
    now: i64,
) -> Result<bool, QueueError> {
    let mut tx = db.begin_write().await?;
    let owned = "WHERE id = $1 AND lease_owner = $2 AND state = 'running'";
    let (label, error, updated) = match outcome {
        Finish::Archived(chunk) => {
            let sql = format!(
                "UPDATE jobs SET state = 'archived', archived_at = $3, updated_at = $3, lease_owner = NULL, lease_until = NULL,
                     last_error = NULL, media_key = $4, media_bytes = $5, media_sha256 = $6, metadata_key = $7,
                     metadata_bytes = $8, metadata_sha256 = $9, participants = $10 {owned}"
            );
            let updated = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(job.id)
                .bind(lease)
                .bind(now)
                .bind(&chunk.media_key)
                .bind(chunk.media_bytes as i64)
                .bind(&chunk.media_sha256)
                .bind(&chunk.metadata_key)
                .bind(chunk.metadata_bytes as i64)
                .bind(&chunk.metadata_sha256)
                .bind(&chunk.participants)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            ("archived", None, updated)
        }
        Finish::Retry {
            next_attempt_at,
            error,
        } => {
            let sql = format!(
                "UPDATE jobs SET state = 'pending', next_attempt_at = $3, last_error = $4, updated_at = $5,
                     lease_owner = NULL, lease_until = NULL {owned}"
            );
            let updated = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(job.id)
                .bind(lease)
                .bind(next_attempt_at)
                .bind(error)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            ("retry", Some(error), updated)
        }
        Finish::Failed { error } | Finish::Expired { error } => {
            let state = if matches!(outcome, Finish::Failed { .. }) {
                "failed"
            } else {
                "expired"
            };
            let sql = format!(
                "UPDATE jobs SET state = $3, last_error = $4, updated_at = $5, lease_owner = NULL, lease_until = NULL {owned}"
            );
            let updated = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(job.id)
                .bind(lease)
                .bind(state)
                .bind(error)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            (state, Some(error), updated)
        }
    };
    if updated == 1 {
        sqlx::query(
            "UPDATE attempts SET finished_at = $1, outcome = $2, error = $3 WHERE job_id = $4 AND attempt = $5 AND finished_at IS NULL",
        )
        .bind(now)
        .bind(label)
        .bind(error)
        .bind(job.id)
        .bind(job.attempts)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(updated == 1)
}

/// Releases a lease without counting the attempt (graceful shutdown): the job is due again at once.
pub async fn release(db: &Db, job: &Job, lease: &str, now: i64) -> Result<(), QueueError> {
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "UPDATE jobs SET state = 'pending', attempts = attempts - 1, next_attempt_at = $3, lease_owner = NULL, lease_until = NULL,
             updated_at = $3 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
    )
    .bind(job.id)
    .bind(lease)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE attempts SET finished_at = $1, outcome = 'released' WHERE job_id = $2 AND attempt = $3 AND finished_at IS NULL")
        .bind(now)
        .bind(job.id)
        .bind(job.attempts)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Records that the source was deleted at ACS.
pub async fn mark_source_deleted(db: &Db, job: i64, now: i64) -> Result<(), QueueError> {
    sqlx::query("UPDATE jobs SET source_deleted_at = $1 WHERE id = $2")
        .bind(now)
        .bind(job)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Puts a `failed` or `expired` job back to `pending` with attempts reset; false for any other state.
pub async fn replay(db: &Db, job: i64, now: i64) -> Result<bool, QueueError> {
    let updated = sqlx::query(
        "UPDATE jobs SET state = 'pending', attempts = 0, next_attempt_at = $1, last_error = NULL, updated_at = $1
         WHERE id = $2 AND state IN ('failed', 'expired')",
    )
    .bind(now)
    .bind(job)
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Replays every job in `state` (failed or expired); answers how many.
pub async fn replay_state(db: &Db, state: JobState, now: i64) -> Result<u64, QueueError> {
    if !matches!(state, JobState::Failed | JobState::Expired) {
        return Ok(0);
    }
    Ok(sqlx::query(
        "UPDATE jobs SET state = 'pending', attempts = 0, next_attempt_at = $1, last_error = NULL, updated_at = $1 WHERE state = $2",
    )
    .bind(now)
    .bind(state.as_str())
    .execute(db.pool())
    .await?
    .rows_affected())
}

pub async fn get(db: &Db, job: i64) -> Result<Option<Job>, QueueError> {
    Ok(sqlx::query_as("SELECT * FROM jobs WHERE id = $1")
        .bind(job)
        .fetch_optional(db.pool())
        .await?)
}

/// Jobs, optionally in one state, most urgent first.
pub async fn list(db: &Db, state: Option<JobState>, limit: i64) -> Result<Vec<Job>, QueueError> {
    Ok(sqlx::query_as(
        "SELECT * FROM jobs WHERE ($1 IS NULL OR state = $1) ORDER BY deadline_at, recording_id, chunk_index LIMIT $2",
    )
    .bind(state.map(JobState::as_str))
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// Jobs by state: (state, count).
pub async fn count_by_state(db: &Db) -> Result<Vec<(String, i64)>, QueueError> {
    Ok(
        sqlx::query_as("SELECT state, COUNT(*) FROM jobs GROUP BY state")
            .fetch_all(db.pool())
            .await?,
    )
}
