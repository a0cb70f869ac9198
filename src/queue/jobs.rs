//! The job lifecycle: claim with a lease, renew it, and finish as archived, retry, failed or expired.

use serde_json::json;

use super::outbox::{self, EventRoutes, EventType};
use super::{Backend, Db, QueueError, Tx};
use crate::audit::{self, Action, Actor, AuditEntry};
use crate::participant_id::ChunkParticipants;

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

/// A stored job state this build does not know: the row is refused rather than guessed at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job state `{}`", crate::quote::quote(.0))]
pub struct UnknownJobState(pub String);

impl TryFrom<String> for JobState {
    type Error = UnknownJobState;
    fn try_from(stored: String) -> Result<Self, Self::Error> {
        stored.parse().map_err(|_| UnknownJobState(stored))
    }
}

/// Stored as its text.
impl<DB: sqlx::Database> sqlx::Type<DB> for JobState
where
    String: sqlx::Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <String as sqlx::Type<DB>>::type_info()
    }
    fn compatible(ty: &DB::TypeInfo) -> bool {
        <String as sqlx::Type<DB>>::compatible(ty)
    }
}

/// An unknown value fails the read with [`UnknownJobState`] as the column error's source.
impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for JobState
where
    String: sqlx::Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let stored = <String as sqlx::Decode<'r, DB>>::decode(value)?;
        Ok(JobState::try_from(stored)?)
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
    /// An unknown stored state fails the read with [`UnknownJobState`].
    pub state: JobState,
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
    /// From the metadata document (migration 0009): see [`ChunkTiming`].
    pub chunk_start_time: Option<String>,
    pub chunk_duration_ms: Option<i64>,
    pub pause_intervals: Option<String>,
}

impl Job {
    pub fn state(&self) -> JobState {
        self.state
    }
}

/// Due work: pending and due, or running with a lapsed lease; never a chunk while an earlier
/// chunk of the same recording is still pending or running. Earliest deadline first, then
/// recording, then chunk. Each half reads one state's range of `jobs_state`, which is in
/// exactly this order (migration 0004), so a claim never sorts and never reads history.
mod claim_sql {
    use super::Backend;

    /// The earlier-chunk rule, one probe of `jobs_open`.
    const NO_EARLIER_OPEN_CHUNK: &str =
        "NOT EXISTS (SELECT 1 FROM jobs e WHERE e.recording_id = j.recording_id
        AND e.chunk_index < j.chunk_index AND e.state IN ('pending', 'running'))";
    const CLAIM_ORDER: &str = "ORDER BY j.deadline_at, j.recording_id, j.chunk_index";

    /// `limit` is inlined (a small count, never user input) so PostgreSQL plans for it rather
    /// than for a generic limit.
    fn candidates(backend: Backend, index: &str, due: &str, limit: usize) -> String {
        // SQLite serialises writers, so reading and updating in one transaction is atomic;
        // it is told the index so that a plan which sorts cannot be chosen silently (the
        // statement fails to prepare instead). PostgreSQL skips rows another claimer holds.
        let (indexed_by, lock) = match backend {
            Backend::Sqlite => (format!(" INDEXED BY {index}"), ""),
            Backend::Postgres => (String::new(), " FOR UPDATE SKIP LOCKED"),
        };
        format!(
            "SELECT j.id, j.deadline_at, j.recording_id, j.chunk_index FROM jobs j{indexed_by}
             WHERE {due} AND {NO_EARLIER_OPEN_CHUNK} {CLAIM_ORDER} LIMIT {limit}{lock}"
        )
    }

    /// Pending jobs that are due.
    pub fn pending(backend: Backend, limit: usize) -> String {
        candidates(
            backend,
            "jobs_state",
            "j.state = 'pending' AND j.next_attempt_at <= $1",
            limit,
        )
    }

    /// Running jobs whose lease lapsed: the range holds only the busy slots' jobs.
    pub fn lapsed(backend: Backend, limit: usize) -> String {
        candidates(
            backend,
            "jobs_state",
            "j.state = 'running' AND j.lease_until < $1",
            limit,
        )
    }

    /// `$1, $2, …` from `first`: one placeholder per item.
    fn placeholders(
        first: usize,
        count: usize,
        per_item: usize,
    ) -> impl Iterator<Item = Vec<String>> {
        (0..count).map(move |item| {
            (0..per_item)
                .map(|k| format!("${}", first + item * per_item + k))
                .collect()
        })
    }

    /// Marks `count` jobs running; binds lease_until, now, then (id, lease) per job.
    pub fn take(count: usize) -> String {
        let pairs: Vec<Vec<String>> = placeholders(3, count, 2).collect();
        let cases: String = pairs
            .iter()
            .map(|p| format!(" WHEN {} THEN {}", p[0], p[1]))
            .collect();
        let ids: Vec<&str> = pairs.iter().map(|p| p[0].as_str()).collect();
        format!(
            "UPDATE jobs SET state = 'running', lease_owner = CASE id{cases} END, lease_until = $1,
                 attempts = attempts + 1, updated_at = $2
             WHERE id IN ({}) RETURNING *",
            ids.join(", ")
        )
    }

    /// A lease that lapsed leaves its attempt open; this closes it. Binds now, then the ids.
    pub fn close_lost_attempts(count: usize) -> String {
        let ids: Vec<String> = placeholders(2, count, 1).map(|p| p[0].clone()).collect();
        format!(
            "UPDATE attempts SET finished_at = $1, outcome = 'lease-lost' WHERE job_id IN ({}) AND finished_at IS NULL",
            ids.join(", ")
        )
    }

    /// Opens one attempt per job; binds (job, attempt, worker, started) per job.
    pub fn open_attempts(count: usize) -> String {
        let rows: Vec<String> = placeholders(1, count, 4)
            .map(|p| format!("({})", p.join(", ")))
            .collect();
        format!(
            "INSERT INTO attempts (job_id, attempt, worker, started_at) VALUES {}",
            rows.join(", ")
        )
    }
}

/// Where a due job stands in claim order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, sqlx::FromRow)]
struct Candidate {
    deadline_at: i64,
    recording_id: i64,
    chunk_index: i64,
    id: i64,
}

/// Claims the most urgent due job under `lease` (a token unique to this claim) until
/// `lease_until`, and opens its attempt record.
pub async fn claim(
    db: &Db,
    lease: &str,
    lease_until: i64,
    now: i64,
) -> Result<Option<Job>, QueueError> {
    Ok(claim_many(db, &[lease.to_owned()], lease_until, now)
        .await?
        .pop())
}

/// Claims up to `leases.len()` due jobs in one transaction, the most urgent first; the i-th
/// job claimed holds `leases[i]` (each a token unique to its claim) until `lease_until`.
/// Never two chunks of one recording: the later one waits for the earlier.
pub async fn claim_many(
    db: &Db,
    leases: &[String],
    lease_until: i64,
    now: i64,
) -> Result<Vec<Job>, QueueError> {
    let wanted = leases.len();
    if wanted == 0 {
        return Ok(Vec::new());
    }
    let backend = db.backend();
    // A claim lost in a crash leaves the job due again: no fsync needed (see the method).
    let mut tx = db.begin_write_unsynced().await?;
    let mut due: Vec<Candidate> =
        sqlx::query_as(sqlx::AssertSqlSafe(claim_sql::lapsed(backend, wanted)))
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
    due.extend(
        sqlx::query_as::<_, Candidate>(sqlx::AssertSqlSafe(claim_sql::pending(backend, wanted)))
            .bind(now)
            .fetch_all(&mut *tx)
            .await?,
    );
    // Each list is in claim order; the first `wanted` of both together are the most urgent.
    due.sort_unstable();
    due.truncate(wanted);
    if due.is_empty() {
        tx.commit().await?;
        return Ok(Vec::new());
    }

    let mut take = sqlx::query_as::<_, Job>(sqlx::AssertSqlSafe(claim_sql::take(due.len())))
        .bind(lease_until)
        .bind(now);
    for (job, lease) in due.iter().zip(leases) {
        take = take.bind(job.id).bind(lease.as_str());
    }
    let mut claimed = take.fetch_all(&mut *tx).await?;
    claimed
        .sort_unstable_by_key(|job| (job.deadline_at, job.recording_id, job.chunk_index, job.id));

    let mut close = sqlx::query(sqlx::AssertSqlSafe(claim_sql::close_lost_attempts(
        claimed.len(),
    )))
    .bind(now);
    for job in &claimed {
        close = close.bind(job.id);
    }
    close.execute(&mut *tx).await?;
    let mut open = sqlx::query(sqlx::AssertSqlSafe(claim_sql::open_attempts(claimed.len())));
    for job in &claimed {
        open = open
            .bind(job.id)
            .bind(job.attempts)
            .bind(job.lease_owner.clone().unwrap_or_default())
            .bind(now);
    }
    open.execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(claimed)
}

/// The statements a claim runs to find due work, for plan checks: (what, SQL with `$1` = now).
pub fn claim_queries(backend: Backend, limit: usize) -> [(&'static str, String); 2] {
    [
        ("pending", claim_sql::pending(backend, limit)),
        ("lapsed", claim_sql::lapsed(backend, limit)),
    ]
}

/// Extends a lease; false when the job is no longer ours (taken over or finished elsewhere).
/// Unsynced, like a claim: a renewal lost in a crash only lets the lease lapse sooner, and
/// a lapsed lease is taken over safely.
pub async fn renew(db: &Db, job: i64, lease: &str, lease_until: i64) -> Result<bool, QueueError> {
    let mut tx = db.begin_write_unsynced().await?;
    let updated = sqlx::query(
        "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND lease_owner = $3 AND state = 'running'",
    )
    .bind(lease_until)
    .bind(job)
    .bind(lease)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
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
    pub timing: ChunkTiming,
}

/// What the metadata document says about a chunk's time; None where it said nothing usable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChunkTiming {
    /// `chunkStartTime` as written (RFC 3339).
    pub start_time: Option<String>,
    /// `chunkDuration` in milliseconds.
    pub duration_ms: Option<i64>,
    /// JSON array of `{startTime, durationMs}`; None when the document's list was unreadable.
    pub pause_intervals: Option<String>,
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
/// Answers once the outcome is committed with a full fsync. On SQLite, outcomes that arrive
/// while another write holds the database are committed together (see [`group_commit`]).
pub async fn finish(
    db: &Db,
    job: &Job,
    lease: &str,
    outcome: &Finish,
    now: i64,
) -> Result<bool, QueueError> {
    let attempt = Attempt {
        job: job.id,
        recording: job.recording_id,
        chunk_index: job.chunk_index,
        number: job.attempts,
        lease: lease.to_owned(),
        outcome: outcome.clone(),
        now,
    };
    match db.backend() {
        Backend::Sqlite => group_commit::finish(db, attempt).await,
        // Concurrent PostgreSQL transactions already share WAL flushes.
        Backend::Postgres => finish_alone(db, &attempt).await,
    }
}

/// The end of one attempt, as `finish` records it.
#[derive(Debug, Clone)]
struct Attempt {
    job: i64,
    recording: i64,
    chunk_index: i64,
    number: i64,
    lease: String,
    outcome: Finish,
    now: i64,
}

async fn finish_alone(db: &Db, attempt: &Attempt) -> Result<bool, QueueError> {
    let mut tx = db.begin_write().await?;
    let updated = record_outcome(&mut tx, db.events(), attempt).await?;
    tx.commit().await?;
    attempt.wake_sinks(db.events());
    Ok(updated)
}

/// The chunk's participants into the participant index, in the transaction that records it
/// archived, so an archived chunk is never missing from a lookup. Identifiers the index
/// refuses (too long, malformed, too many) are skipped and logged, never fatal.
async fn index_participants(
    tx: &mut Tx,
    job_id: i64,
    recording: i64,
    chunk_index: i64,
    chunk: &ArchivedChunk,
    now: i64,
) -> Result<(), QueueError> {
    let read = ChunkParticipants::from_stored_json(&chunk.participants);
    if read.skipped.total() > 0 {
        tracing::warn!(
            job_id,
            too_long = read.skipped.too_long,
            invalid = read.skipped.invalid,
            over_limit = read.skipped.over_limit,
            "participant ids left out of the participant index"
        );
    }
    super::participants::index_chunk(tx, recording, chunk_index, &read.ids, now).await?;
    Ok(())
}

impl Attempt {
    /// After the commit: a failure wrote a `failed` event for the sinks that take it.
    fn wake_sinks(&self, routes: &EventRoutes) {
        if matches!(self.outcome, Finish::Failed { .. } | Finish::Expired { .. }) {
            routes.wake(EventType::Failed);
        }
    }
}

/// The chunk's time facts, beside the outcome that archived it.
async fn record_timing(tx: &mut Tx, job_id: i64, timing: &ChunkTiming) -> Result<(), QueueError> {
    sqlx::query(
        "UPDATE jobs SET chunk_start_time = $1, chunk_duration_ms = $2, pause_intervals = $3 WHERE id = $4",
    )
    .bind(&timing.start_time)
    .bind(timing.duration_ms)
    .bind(&timing.pause_intervals)
    .bind(job_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn record_outcome(
    tx: &mut Tx,
    routes: &EventRoutes,
    attempt: &Attempt,
) -> Result<bool, QueueError> {
    let Attempt {
        job: job_id,
        recording,
        chunk_index,
        number,
        lease,
        outcome,
        now,
    } = attempt;
    let (job_id, number, lease, now) = (*job_id, *number, lease.as_str(), *now);
    let owned = "WHERE id = $1 AND lease_owner = $2 AND state = 'running'";
    let (label, error, updated) = match outcome {
        Finish::Archived(chunk) => {
            let sql = format!(
                "UPDATE jobs SET state = 'archived', archived_at = $3, updated_at = $3, lease_owner = NULL, lease_until = NULL,
                     last_error = NULL, media_key = $4, media_bytes = $5, media_sha256 = $6, metadata_key = $7,
                     metadata_bytes = $8, metadata_sha256 = $9, participants = $10 {owned}"
            );
            let updated = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(job_id)
                .bind(lease)
                .bind(now)
                .bind(&chunk.media_key)
                .bind(chunk.media_bytes as i64)
                .bind(&chunk.media_sha256)
                .bind(&chunk.metadata_key)
                .bind(chunk.metadata_bytes as i64)
                .bind(&chunk.metadata_sha256)
                .bind(&chunk.participants)
                .execute(&mut **tx)
                .await?
                .rows_affected();
            if updated == 1 {
                record_timing(tx, job_id, &chunk.timing).await?;
                index_participants(tx, job_id, *recording, *chunk_index, chunk, now).await?;
            }
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
                .bind(job_id)
                .bind(lease)
                .bind(next_attempt_at)
                .bind(error)
                .bind(now)
                .execute(&mut **tx)
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
                .bind(job_id)
                .bind(lease)
                .bind(state)
                .bind(error)
                .bind(now)
                .execute(&mut **tx)
                .await?
                .rows_affected();
            if updated == 1 {
                // The event is committed with the outcome, or neither is.
                outbox::record_failure(tx, routes, job_id, state, error, now).await?;
            }
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
        .bind(job_id)
        .bind(number)
        .execute(&mut **tx)
        .await?;
        if let Finish::Archived(chunk) = outcome {
            record_archived(tx, job_id, chunk, now).await?;
        }
    }
    Ok(updated == 1)
}

/// The recording a job belongs to: (row id, `callId/recordingKey`, chunk index).
async fn recording_of(tx: &mut Tx, job_id: i64) -> Result<Option<(i64, String, i64)>, QueueError> {
    let row: Option<(i64, String, String, i64)> = sqlx::query_as(
        "SELECT r.id, r.call_id, r.recording_key, j.chunk_index FROM jobs j JOIN recordings r ON r.id = j.recording_id WHERE j.id = $1",
    )
    .bind(job_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(
        row.map(|(id, call_id, key, index)| {
            (id, AuditEntry::recording_name(&call_id, &key), index)
        }),
    )
}

/// The audit record of an archived chunk: what was written where, with its digests. Into
/// the inbox: appending to the chain here would make every archive commit wait for the last.
async fn record_archived(
    tx: &mut Tx,
    job_id: i64,
    chunk: &ArchivedChunk,
    now: i64,
) -> Result<(), QueueError> {
    let Some((recording, name, index)) = recording_of(tx, job_id).await? else {
        return Ok(());
    };
    let entry = AuditEntry::new(&Actor::worker(), Action::Archived)
        .at(now)
        .recording(recording, name)
        .detail(json!({
            "job": job_id,
            "chunk": index,
            "media": {"key": chunk.media_key, "bytes": chunk.media_bytes, "sha256": chunk.media_sha256},
            "metadata": {"key": chunk.metadata_key, "bytes": chunk.metadata_bytes, "sha256": chunk.metadata_sha256},
        }));
    audit::enqueue_in(tx, entry).await?;
    Ok(())
}

/// The audit record of a replayed job.
async fn record_replayed(
    tx: &mut Tx,
    actor: &Actor,
    job_id: i64,
    from: &str,
    now: i64,
) -> Result<(), QueueError> {
    let mut entry = AuditEntry::new(actor, Action::Replayed).at(now);
    let mut detail = json!({"job": job_id, "from_state": from});
    if let Some((recording, name, index)) = recording_of(tx, job_id).await? {
        entry = entry.recording(recording, name);
        detail["chunk"] = json!(index);
    }
    audit::append_in(tx, entry.detail(detail)).await?;
    Ok(())
}

/// SQLite has one writer: finishes queue here, and whoever gets the writer's turn next records
/// every finish queued by then in one transaction, so one fsync commits them all. Each is
/// answered only after that commit; if the shared transaction fails, each is tried again
/// alone, so one finish's error is never another's.
mod group_commit {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    use tokio::sync::oneshot;

    use super::{Attempt, Db, EventRoutes, QueueError, Tx, finish_alone, record_outcome};

    /// Finishes waiting for the next commit.
    #[derive(Debug, Default)]
    pub struct FinishQueue {
        waiting: Mutex<Vec<Queued>>,
        next_ticket: AtomicU64,
        /// Transactions that committed queued finishes.
        pub(in crate::queue) commits: AtomicU64,
    }

    #[derive(Debug)]
    struct Queued {
        ticket: u64,
        attempt: Attempt,
        /// `Ok(updated)` once committed; `Err(())` when the shared transaction failed.
        answer: oneshot::Sender<Result<bool, ()>>,
    }

    impl FinishQueue {
        fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Queued>> {
            self.waiting
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }

        #[cfg(test)]
        pub(in crate::queue) fn waiting(&self) -> usize {
            self.lock().len()
        }
    }

    pub(super) async fn finish(db: &Db, attempt: Attempt) -> Result<bool, QueueError> {
        let queue = db.finishes();
        let ticket = queue.next_ticket.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = oneshot::channel();
        queue.lock().push(Queued {
            ticket,
            attempt: attempt.clone(),
            answer,
        });
        match db.begin_write().await {
            Ok(tx) => {
                let batch = std::mem::take(&mut *queue.lock());
                if !batch.is_empty() {
                    commit_together(tx, batch, queue, db.events()).await;
                }
            }
            Err(err) => {
                let mut waiting = queue.lock();
                if let Some(at) = waiting.iter().position(|queued| queued.ticket == ticket) {
                    waiting.remove(at);
                    return Err(err);
                }
                // Another turn took it: its answer follows.
            }
        }
        match answered.await {
            Ok(Ok(updated)) => Ok(updated),
            // Nothing of the shared transaction was kept: this finish alone, with its own error.
            Ok(Err(())) | Err(_) => finish_alone(db, &attempt).await,
        }
    }

    async fn commit_together(
        mut tx: Tx,
        batch: Vec<Queued>,
        queue: &FinishQueue,
        routes: &EventRoutes,
    ) {
        let mut updated = Vec::with_capacity(batch.len());
        for queued in &batch {
            match record_outcome(&mut tx, routes, &queued.attempt).await {
                Ok(one) => updated.push(one),
                Err(_) => return fail(batch),
            }
        }
        if tx.commit().await.is_err() {
            return fail(batch);
        }
        queue.commits.fetch_add(1, Ordering::Relaxed);
        for queued in &batch {
            queued.attempt.wake_sinks(routes);
        }
        for (queued, updated) in batch.into_iter().zip(updated) {
            let _ = queued.answer.send(Ok(updated));
        }
    }

    fn fail(batch: Vec<Queued>) {
        for queued in batch {
            let _ = queued.answer.send(Err(()));
        }
    }
}

pub(crate) use group_commit::FinishQueue;

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

/// Puts a `failed` or `expired` job back to `pending` with attempts reset, recording who did
/// it in the audit trail; false for any other state.
pub async fn replay(db: &Db, actor: &Actor, job: i64, now: i64) -> Result<bool, QueueError> {
    let mut tx = db.begin_write().await?;
    let from: Option<String> = sqlx::query_scalar(
        "SELECT state FROM jobs WHERE id = $1 AND state IN ('failed', 'expired')",
    )
    .bind(job)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(from) = from else {
        tx.rollback().await?;
        return Ok(false);
    };
    sqlx::query(
        "UPDATE jobs SET state = 'pending', attempts = 0, next_attempt_at = $1, last_error = NULL, updated_at = $1
         WHERE id = $2 AND state IN ('failed', 'expired')",
    )
    .bind(now)
    .bind(job)
    .execute(&mut *tx)
    .await?;
    record_replayed(&mut tx, actor, job, &from, now).await?;
    tx.commit().await?;
    Ok(true)
}

/// Replays every job in `state` (failed or expired), one audit record each; answers how many.
pub async fn replay_state(
    db: &Db,
    actor: &Actor,
    state: JobState,
    now: i64,
) -> Result<u64, QueueError> {
    if !matches!(state, JobState::Failed | JobState::Expired) {
        return Ok(0);
    }
    let mut tx = db.begin_write().await?;
    let mut ids: Vec<i64> = sqlx::query_scalar(
        "UPDATE jobs SET state = 'pending', attempts = 0, next_attempt_at = $1, last_error = NULL, updated_at = $1 WHERE state = $2 RETURNING id",
    )
    .bind(now)
    .bind(state.as_str())
    .fetch_all(&mut *tx)
    .await?;
    ids.sort_unstable();
    for id in &ids {
        record_replayed(&mut tx, actor, *id, state.as_str(), now).await?;
    }
    tx.commit().await?;
    Ok(ids.len() as u64)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh database: SQLite in a temp folder, or a new PostgreSQL database when
    /// `CALLVAULT_TEST_POSTGRES` names a server.
    async fn database(backend: Backend) -> (Db, Option<tempfile::TempDir>) {
        let (url, dir) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                (format!("sqlite://{}/q.db", dir.path().display()), Some(dir))
            }
            Backend::Postgres => {
                let server = std::env::var("CALLVAULT_TEST_POSTGRES").expect(
                    "CALLVAULT_TEST_POSTGRES is not set: run ./scripts/test.sh, which starts PostgreSQL",
                );
                let name = format!("callvault_claims_{}", uuid::Uuid::new_v4().simple());
                let admin = Db::connect(&format!("{server}/postgres"), 1).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(admin.pool())
                    .await
                    .unwrap();
                admin.close().await;
                (format!("{server}/{name}"), None)
            }
        };
        let db = Db::connect(&url, 4).await.unwrap();
        db.migrate().await.unwrap();
        (db, dir)
    }

    /// `recordings` recordings of `chunks` chunks each, deadline rising with the recording;
    /// the first `archived` recordings are archived, the rest pending and due at 0.
    async fn seed(db: &Db, recordings: i64, chunks: i64, archived: i64) {
        let mut tx = db.begin_write().await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {recordings})
             INSERT INTO recordings (call_id, recording_key, media_extension, deadline_at, created_at, updated_at)
             SELECT 'call-' || i, 'rec', 'wav', 1000000 + i, 0, 0 FROM n"
        )))
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < {chunks} - 1)
             INSERT INTO jobs (recording_id, chunk_index, document_id, content_url, metadata_url, state,
                               next_attempt_at, deadline_at, created_at, updated_at)
             SELECT r.id, c.i, 'doc-' || r.id || '-' || c.i, 'https://x/c', 'https://x/m',
                    CASE WHEN r.id <= {archived} THEN 'archived' ELSE 'pending' END, 0, r.deadline_at, 0, 0
             FROM recordings r, c"
        )))
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        sqlx::query("ANALYZE").execute(db.pool()).await.unwrap();
    }

    fn leases(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("w/{i}")).collect()
    }

    #[tokio::test]
    async fn the_sqlite_claim_reads_its_index_in_claim_order_and_never_sorts() {
        let (db, _dir) = database(Backend::Sqlite).await;
        seed(&db, 400, 3, 300).await;
        for (what, sql) in claim_queries(Backend::Sqlite, 8) {
            // Rows of (id, parent, notused, detail).
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                .bind(now_for_tests())
                .fetch_all(db.pool())
                .await
                .unwrap_or_else(|err| panic!("{what}: {err}"));
            let plan: Vec<String> = rows
                .iter()
                .map(|row| sqlx::Row::get::<String, _>(row, 3))
                .collect();
            let plan = plan.join("\n");
            assert!(!plan.contains("TEMP B-TREE"), "{what} claim sorts:\n{plan}");
            assert!(
                !plan.contains("MULTI-INDEX OR"),
                "{what} claim ORs:\n{plan}"
            );
            assert!(
                plan.contains("USING INDEX jobs_state (state=?)"),
                "{what} claim does not read its state's range in claim order:\n{plan}"
            );
            assert!(
                plan.contains("USING INDEX jobs_open (recording_id=? AND chunk_index<?)"),
                "{what} claim does not probe the open chunks of the recording:\n{plan}"
            );
        }
    }

    fn now_for_tests() -> i64 {
        2_000_000
    }

    #[tokio::test]
    async fn the_postgresql_claim_has_no_sort_over_due_jobs() {
        if crate::test_services::postgres_server().is_none() {
            return;
        }
        let (db, _) = database(Backend::Postgres).await;
        seed(&db, 3000, 3, 2000).await;
        let mut conn = db.pool().acquire().await.unwrap();
        for (what, sql) in claim_queries(Backend::Postgres, 8) {
            // sqlx prepares statements, and PostgreSQL may switch a prepared statement to a
            // generic plan: check that one as well as the plan for a known `now`.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "PREPARE claim_{what} AS {sql}"
            )))
            .execute(&mut *conn)
            .await
            .unwrap();
            for mode in ["force_custom_plan", "force_generic_plan"] {
                sqlx::query(sqlx::AssertSqlSafe(format!("SET plan_cache_mode = {mode}")))
                    .execute(&mut *conn)
                    .await
                    .unwrap();
                let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "EXPLAIN EXECUTE claim_{what}({})",
                    now_for_tests()
                )))
                .fetch_all(&mut *conn)
                .await
                .unwrap();
                let plan = plan.join("\n");
                assert!(
                    !plan.contains("Sort"),
                    "{what} claim sorts ({mode}):\n{plan}"
                );
                assert!(
                    plan.contains("Index Scan using jobs_state on jobs j")
                        && plan.contains("Index Cond: (state = "),
                    "{what} claim does not read its state's range in claim order ({mode}):\n{plan}"
                );
                assert!(
                    plan.contains("using jobs_open on jobs e"),
                    "{what} claim does not probe the open chunks of the recording ({mode}):\n{plan}"
                );
            }
        }
    }

    async fn one_claim_takes_several_jobs_in_claim_order_one_chunk_per_recording(backend: Backend) {
        let (db, _dir) = database(backend).await;
        seed(&db, 4, 2, 1).await;
        let claimed = claim_many(&db, &leases(8), 9_000_000, now_for_tests())
            .await
            .unwrap();
        let got: Vec<_> = claimed
            .iter()
            .map(|job| {
                (
                    job.recording_id,
                    job.chunk_index,
                    job.lease_owner.clone().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (2, 0, "w/0".to_owned()),
                (3, 0, "w/1".to_owned()),
                (4, 0, "w/2".to_owned())
            ],
            "the first chunk of each pending recording, earliest deadline first; chunk 1 waits"
        );
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM attempts WHERE finished_at IS NULL AND attempt = 1",
        )
        .fetch_one(db.pool())
        .await
        .unwrap();
        assert_eq!(open, 3, "each claimed job has its attempt open");
        assert!(
            claim_many(&db, &leases(8), 9_000_000, now_for_tests())
                .await
                .unwrap()
                .is_empty(),
            "second chunks wait while their first chunk runs"
        );
    }

    #[tokio::test]
    async fn one_claim_takes_several_jobs_on_sqlite() {
        one_claim_takes_several_jobs_in_claim_order_one_chunk_per_recording(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn one_claim_takes_several_jobs_on_postgresql() {
        if crate::test_services::postgres_server().is_none() {
            return;
        }
        one_claim_takes_several_jobs_in_claim_order_one_chunk_per_recording(Backend::Postgres)
            .await;
    }

    async fn lapsed_leases_and_pending_jobs_are_taken_by_deadline(backend: Backend) {
        let (db, _dir) = database(backend).await;
        seed(&db, 3, 1, 0).await;
        let now = now_for_tests();
        // Recording 2's job runs under a lease that lapses at `now`; 1 and 3 are pending.
        let lapsing = claim(&db, "gone/1", now, now).await.unwrap().unwrap();
        assert_eq!(lapsing.recording_id, 1);
        let lapsing_too = claim(&db, "gone/2", now, now).await.unwrap().unwrap();
        assert_eq!(lapsing_too.recording_id, 2);
        finish(
            &db,
            &lapsing,
            "gone/1",
            &Finish::Retry {
                next_attempt_at: 0,
                error: "again".into(),
            },
            now,
        )
        .await
        .unwrap();

        let later = now + 1;
        let claimed = claim_many(&db, &leases(2), later + 60_000, later)
            .await
            .unwrap();
        let got: Vec<_> = claimed
            .iter()
            .map(|job| (job.recording_id, job.attempts))
            .collect();
        assert_eq!(
            got,
            vec![(1, 2), (2, 2)],
            "the retried pending job and the lapsed one, earliest deadline first, before recording 3"
        );
        let outcomes: Vec<Option<String>> =
            sqlx::query_scalar("SELECT outcome FROM attempts WHERE job_id = $1 ORDER BY attempt")
                .bind(lapsing_too.id)
                .fetch_all(db.pool())
                .await
                .unwrap();
        assert_eq!(outcomes, vec![Some("lease-lost".to_owned()), None]);
    }

    #[tokio::test]
    async fn lapsed_leases_and_pending_jobs_are_taken_by_deadline_on_sqlite() {
        lapsed_leases_and_pending_jobs_are_taken_by_deadline(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn lapsed_leases_and_pending_jobs_are_taken_by_deadline_on_postgresql() {
        if crate::test_services::postgres_server().is_none() {
            return;
        }
        lapsed_leases_and_pending_jobs_are_taken_by_deadline(Backend::Postgres).await;
    }

    fn archived_chunk() -> Finish {
        Finish::Archived(ArchivedChunk {
            media_key: "k".into(),
            media_bytes: 1,
            media_sha256: "0".repeat(64),
            metadata_key: "m".into(),
            metadata_bytes: 1,
            metadata_sha256: "0".repeat(64),
            participants: "[]".into(),
            timing: Default::default(),
        })
    }

    #[tokio::test]
    async fn finishes_queued_behind_a_write_share_one_commit_and_keep_their_own_answers() {
        let (db, _dir) = database(Backend::Sqlite).await;
        seed(&db, 9, 1, 0).await;
        let now = now_for_tests();
        let claimed = claim_many(&db, &leases(9), 9_000_000, now).await.unwrap();
        assert_eq!(claimed.len(), 9);

        // Another write holds the database while all nine outcomes arrive.
        let held = db.begin_write().await.unwrap();
        let mut finishing = tokio::task::JoinSet::new();
        for (n, job) in claimed.into_iter().enumerate() {
            let db = db.clone();
            // The last one's lease was taken over: its outcome must be refused alone.
            let lease = match n {
                8 => "taken-over".to_owned(),
                _ => job.lease_owner.clone().unwrap(),
            };
            finishing.spawn(async move {
                (
                    n,
                    finish(&db, &job, &lease, &archived_chunk(), now)
                        .await
                        .unwrap(),
                )
            });
        }
        while db.finishes().waiting() < 9 {
            tokio::task::yield_now().await;
        }
        held.commit().await.unwrap();
        let mut answers: Vec<(usize, bool)> = finishing.join_all().await;
        answers.sort();
        let expected: Vec<(usize, bool)> = (0..9).map(|n| (n, n != 8)).collect();
        assert_eq!(answers, expected);
        assert_eq!(
            db.finishes()
                .commits
                .load(std::sync::atomic::Ordering::Relaxed),
            1,
            "the nine outcomes took one commit"
        );
        let archived: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state = 'archived'")
                .fetch_one(db.pool())
                .await
                .unwrap();
        assert_eq!(archived, 8);
    }

    async fn batched_claimers_racing_never_take_a_job_twice(backend: Backend) {
        let (db, _dir) = database(backend).await;
        seed(&db, 60, 2, 0).await;
        let mut claimers = tokio::task::JoinSet::new();
        for worker in 0..8 {
            let db = db.clone();
            claimers.spawn(async move {
                let mut taken = Vec::new();
                loop {
                    let leases: Vec<String> = (0..3).map(|n| format!("w{worker}/{n}")).collect();
                    let claimed = claim_many(&db, &leases, 9_000_000, now_for_tests())
                        .await
                        .unwrap();
                    if claimed.is_empty() {
                        return taken;
                    }
                    taken.extend(claimed.into_iter().map(|job| (job.id, job.chunk_index)));
                }
            });
        }
        let taken: Vec<(i64, i64)> = claimers.join_all().await.concat();
        let ids: std::collections::HashSet<i64> = taken.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids.len(), taken.len(), "a job was claimed twice");
        assert_eq!(
            taken.len(),
            60,
            "every first chunk, and no second one while it runs"
        );
        assert!(taken.iter().all(|(_, index)| *index == 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn batched_claimers_racing_never_take_a_job_twice_on_sqlite() {
        batched_claimers_racing_never_take_a_job_twice(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn batched_claimers_racing_never_take_a_job_twice_on_postgresql() {
        if crate::test_services::postgres_server().is_none() {
            return;
        }
        batched_claimers_racing_never_take_a_job_twice(Backend::Postgres).await;
    }

    /// Inserts a job of recording 1 in `state`, bypassing the service.
    const INSERT_IN_STATE: &str =
        "INSERT INTO jobs (recording_id, chunk_index, document_id, content_url, metadata_url,
         state, next_attempt_at, deadline_at, created_at, updated_at)
         VALUES (1, 9, 'doc-by-hand', 'https://x/c', 'https://x/m', $1, 0, 0, 0, 0) RETURNING id";

    async fn an_unknown_state_is_refused_by_the_database(backend: Backend) {
        let (db, _dir) = database(backend).await;
        seed(&db, 1, 1, 0).await;
        let refused = sqlx::query_scalar::<_, i64>(INSERT_IN_STATE)
            .bind("paused")
            .fetch_one(db.pool())
            .await
            .unwrap_err();
        let message = refused.to_string().to_ascii_lowercase();
        assert!(message.contains("check"), "{message}");
        for state in JobState::ALL {
            sqlx::query("UPDATE jobs SET state = $1 WHERE recording_id = 1")
                .bind(state.as_str())
                .execute(db.pool())
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn an_unknown_state_is_refused_by_the_database_on_sqlite() {
        an_unknown_state_is_refused_by_the_database(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn an_unknown_state_is_refused_by_the_database_on_postgresql() {
        if crate::test_services::postgres_server().is_none() {
            return;
        }
        an_unknown_state_is_refused_by_the_database(Backend::Postgres).await;
    }

    #[tokio::test]
    async fn a_row_in_an_unknown_state_fails_to_read() {
        let (db, _dir) = database(Backend::Sqlite).await;
        seed(&db, 1, 1, 0).await;
        // A row written before the CHECK existed, or by hand: SQLite can be told to let it in.
        let mut tx = db.begin_write().await.unwrap();
        sqlx::query("PRAGMA ignore_check_constraints = ON")
            .execute(&mut *tx)
            .await
            .unwrap();
        let id: i64 = sqlx::query_scalar(INSERT_IN_STATE)
            .bind("paused")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        sqlx::query("PRAGMA ignore_check_constraints = OFF")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let Err(QueueError::Database(sqlx::Error::ColumnDecode { source, .. })) =
            get(&db, id).await
        else {
            panic!("a job in an unknown state was read");
        };
        assert_eq!(
            source.downcast_ref::<UnknownJobState>(),
            Some(&UnknownJobState("paused".into()))
        );
    }

    #[test]
    fn every_known_state_reads_back_and_no_other() {
        for state in JobState::ALL {
            assert_eq!(JobState::try_from(state.as_str().to_owned()), Ok(state));
        }
        assert_eq!(
            JobState::try_from("Pending".to_owned()),
            Err(UnknownJobState("Pending".into()))
        );
    }
}
