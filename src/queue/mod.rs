//! The job store: one job per chunk, claimed with a lease, retried with backoff,
//! never archived twice and never lost.

pub mod call_legs;
mod db;
pub mod erasures;
pub mod exports;
pub mod intake;
pub mod integrity;
pub mod jobs;
pub mod locks;
pub mod manifest_chain;
pub mod outbox;
pub mod participants;
pub mod recordings;
pub mod uploads;

pub use db::{Backend, Db, Tx};
pub use jobs::{Job, JobState, UnknownJobState};

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl QueueError {
    /// True when the database is unreachable or overloaded rather than the request being wrong:
    /// the caller should answer 503 so Event Grid retries.
    pub fn is_unavailable(&self) -> bool {
        match self {
            QueueError::Connect(_) | QueueError::Migrate(_) => true,
            QueueError::Database(err) => {
                matches!(
                    err,
                    sqlx::Error::PoolTimedOut
                        | sqlx::Error::PoolClosed
                        | sqlx::Error::Io(_)
                        | sqlx::Error::WorkerCrashed
                ) || err.as_database_error().is_some_and(|db| {
                    // SQLITE_BUSY / SQLITE_LOCKED / SQLITE_IOERR / SQLITE_FULL, and PostgreSQL's admin shutdown class.
                    let code = db.code().unwrap_or_default();
                    matches!(
                        code.as_ref(),
                        "5" | "6" | "10" | "13" | "517" | "57P01" | "57P02" | "57P03" | "53300"
                    )
                })
            }
        }
    }
}

/// Now, in the stored unit.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
