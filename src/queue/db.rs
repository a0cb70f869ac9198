//! The database: SQLite (embedded, one replica) or PostgreSQL (several replicas), through
//! sqlx's `Any` driver so that one set of queries serves both.

use std::str::FromStr;
use std::time::Duration;

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use sqlx::AnyConnection;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::QueueError;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool and the backend it talks to.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    /// SQLite only: one connection with `synchronous = NORMAL`, for writes whose loss in a
    /// power cut the queue recovers from by itself (see [`Db::begin_write_unsynced`]).
    unsynced: Option<AnyPool>,
    backend: Backend,
    /// SQLite has one writer at a time; queueing writers here, first come first served,
    /// replaces SQLite's sleep-and-retry busy handler, whose waits made the slowest
    /// webhook deliveries take seconds under load.
    writer: Arc<Mutex<()>>,
    /// SQLite: job outcomes waiting to share the next commit.
    finishes: Arc<super::jobs::FinishQueue>,
    /// The sinks events are written for, in the transactions that record their changes.
    events: Arc<super::outbox::EventRoutes>,
}

/// A write transaction; on SQLite it also holds this process's writer turn until it ends.
pub struct Tx {
    transaction: Transaction<'static, sqlx::Any>,
    _turn: Option<OwnedMutexGuard<()>>,
}

impl Tx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.transaction.commit().await
    }

    /// Undoes the transaction now, before the writer turn is let go (dropping it would
    /// leave the rollback for the connection's next use).
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.transaction.rollback().await
    }
}

impl Deref for Tx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.transaction
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.transaction
    }
}

impl Db {
    /// Connects (creating a SQLite file and its folder when missing). Does not migrate.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, QueueError> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = match backend {
            Backend::Sqlite => sqlite_url(url)?,
            Backend::Postgres => url.to_owned(),
        };
        let options = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10));
        let (pool, unsynced) = match backend {
            Backend::Sqlite => {
                // synchronous=FULL: a webhook is answered 200 only after its events survive power loss.
                let pool = sqlite_pool(options, "FULL").connect(&url).await;
                let unsynced = sqlite_pool(
                    AnyPoolOptions::new()
                        .max_connections(1)
                        .acquire_timeout(Duration::from_secs(10)),
                    "NORMAL",
                )
                .connect(&url)
                .await;
                (pool, Some(unsynced.map_err(QueueError::Connect)?))
            }
            Backend::Postgres => (options.connect(&url).await, None),
        };
        Ok(Self {
            pool: pool.map_err(QueueError::Connect)?,
            unsynced,
            backend,
            writer: Arc::new(Mutex::new(())),
            finishes: Arc::default(),
            events: Arc::default(),
        })
    }

    /// This database, writing events for `routes` beside the changes they announce.
    pub fn with_event_routes(mut self, routes: super::outbox::EventRoutes) -> Self {
        self.events = Arc::new(routes);
        self
    }

    /// The sinks events are written for (none unless [`Db::with_event_routes`] set them).
    pub fn events(&self) -> &super::outbox::EventRoutes {
        &self.events
    }

    /// Applies the migrations of this backend.
    pub async fn migrate(&self) -> Result<(), QueueError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`),
    /// so a read-then-write never fails with SQLITE_BUSY_SNAPSHOT.
    pub async fn begin_write(&self) -> Result<Tx, QueueError> {
        Ok(match self.backend {
            Backend::Sqlite => {
                let turn = self.writer.clone().lock_owned().await;
                Tx {
                    transaction: self.pool.begin_with("BEGIN IMMEDIATE").await?,
                    _turn: Some(turn),
                }
            }
            Backend::Postgres => Tx {
                transaction: self.pool.begin().await?,
                _turn: None,
            },
        })
    }

    /// Starts a write transaction whose commit need not reach the disk before it returns, for
    /// writes the queue recovers from losing in a power cut or database crash: a claim or a
    /// lease renewal (the job is due again, or its lease lapses and is taken over, as after
    /// any lapsed lease) and the mark that a manifest was written (the sweep writes the same
    /// manifest again). Saves their fsyncs.
    ///
    /// SQLite (WAL, `synchronous = NORMAL` on its own connection): the commit is written to
    /// the WAL without an fsync, and the next fully synchronous commit (a finish, an ingest)
    /// makes it durable with its own. PostgreSQL: `synchronous_commit = off` for this
    /// transaction only. Never for a write a caller acts on outside the database (a finish
    /// before a source delete, an ingest before its 200).
    pub async fn begin_write_unsynced(&self) -> Result<Tx, QueueError> {
        Ok(match (&self.backend, &self.unsynced) {
            (Backend::Sqlite, Some(unsynced)) => {
                let turn = self.writer.clone().lock_owned().await;
                Tx {
                    transaction: unsynced.begin_with("BEGIN IMMEDIATE").await?,
                    _turn: Some(turn),
                }
            }
            (Backend::Sqlite, None) => self.begin_write().await?,
            (Backend::Postgres, _) => {
                let mut transaction = self.pool.begin().await?;
                transaction
                    .execute("SET LOCAL synchronous_commit = off")
                    .await?;
                Tx {
                    transaction,
                    _turn: None,
                }
            }
        })
    }

    pub(super) fn finishes(&self) -> &super::jobs::FinishQueue {
        &self.finishes
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Answers whether the database can run a query (for `/readyz`).
    pub async fn ping(&self) -> Result<(), QueueError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        if let Some(unsynced) = &self.unsynced {
            unsynced.close().await;
        }
        self.pool.close().await;
    }
}

/// SQLite connections in WAL mode with the given `synchronous` level.
fn sqlite_pool(options: AnyPoolOptions, synchronous: &'static str) -> AnyPoolOptions {
    options.after_connect(move |conn, _meta| {
        Box::pin(async move {
            conn.execute("PRAGMA journal_mode = WAL").await?;
            conn.execute(sqlx::AssertSqlSafe(format!(
                "PRAGMA synchronous = {synchronous}"
            )))
            .await?;
            conn.execute("PRAGMA busy_timeout = 10000").await?;
            conn.execute("PRAGMA foreign_keys = ON").await?;
            Ok(())
        })
    })
}

/// `sqlite://data/x.db` → an absolute-or-relative file URL with create mode, folder created.
fn sqlite_url(url: &str) -> Result<String, QueueError> {
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).map_err(QueueError::Connect)?;
    let path = options.get_filename();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|err| QueueError::Connect(sqlx::Error::Io(err)))?;
    }
    Ok(if url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn level(tx: &mut Tx) -> i64 {
        sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut **tx)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn on_sqlite_only_unsynced_writes_skip_the_commit_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}/q.db", dir.path().display()), 2)
            .await
            .unwrap();
        // 2 is FULL (an fsync per commit), 1 is NORMAL (in WAL mode, none).
        let mut full = db.begin_write().await.unwrap();
        assert_eq!(level(&mut full).await, 2);
        full.commit().await.unwrap();
        let mut unsynced = db.begin_write_unsynced().await.unwrap();
        assert_eq!(level(&mut unsynced).await, 1);
        unsynced.commit().await.unwrap();
        let plain: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(plain, 2, "every other write stays fully synchronous");
    }

    #[tokio::test]
    async fn on_postgresql_only_the_unsynced_transaction_commits_asynchronously() {
        if crate::test_services::postgres_server().is_none() {
            return;
        }
        let server = std::env::var("CALLVAULT_TEST_POSTGRES").expect(
            "CALLVAULT_TEST_POSTGRES is not set: run ./scripts/test.sh, which starts PostgreSQL",
        );
        let db = Db::connect(&format!("{server}/postgres"), 1).await.unwrap();
        let mut unsynced = db.begin_write_unsynced().await.unwrap();
        let inside: String = sqlx::query_scalar("SHOW synchronous_commit")
            .fetch_one(&mut *unsynced)
            .await
            .unwrap();
        unsynced.commit().await.unwrap();
        // The pool's single connection, now out of the transaction.
        let after: String = sqlx::query_scalar("SHOW synchronous_commit")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!((inside.as_str(), after.as_str()), ("off", "on"));
        db.close().await;
    }
}
