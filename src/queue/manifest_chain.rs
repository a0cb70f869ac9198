//! The manifest hash chain: one link per signed manifest written, in the order written, each
//! naming the sha256 of the one before it.
//!
//! Appending is serialised across every process of a deployment: a writer takes a
//! [`ChainTurn`] (PostgreSQL: `LOCK TABLE manifest_chain IN EXCLUSIVE MODE` in a transaction,
//! which waits for any other holder; SQLite, whose deployments are one process: a process-wide
//! lock), reads the head, writes its manifest to storage, and only then inserts its link and
//! ends the turn. A failed put leaves no link, and the chain head stays where it was. The
//! unique index on `previous_sha256` (migration 0008) refuses a second successor of a link
//! even if two writers ever got past the lock, so the chain cannot fork.

use std::sync::{Arc, LazyLock};

use tokio::sync::{Mutex, OwnedMutexGuard};

use super::{Backend, Db, QueueError, Tx};

/// One link as recorded.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ChainLink {
    pub id: i64,
    pub sha256: String,
    pub manifest_key: String,
    pub recording_id: i64,
    pub previous_sha256: Option<String>,
    pub written_at: i64,
}

/// A link to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLink<'a> {
    pub sha256: &'a str,
    pub manifest_key: &'a str,
    pub recording_id: i64,
    pub previous_sha256: Option<&'a str>,
    pub written_at: i64,
}

/// SQLite's turn: a deployment on SQLite is one process, so a lock in it serialises appends
/// without holding SQLite's single write lock (and so every ingest) during a storage put.
static SQLITE_TURN: LazyLock<Arc<Mutex<()>>> = LazyLock::new(Arc::default);

/// The exclusive right to append the next link, from reading the head until
/// [`ChainTurn::append`]; dropping it gives the turn up with nothing appended.
pub struct ChainTurn<'a> {
    db: &'a Db,
    hold: Hold,
}

enum Hold {
    Postgres(Tx),
    Sqlite(OwnedMutexGuard<()>),
}

/// Waits for the turn to append a link.
pub async fn take_turn(db: &Db) -> Result<ChainTurn<'_>, QueueError> {
    let hold = match db.backend() {
        Backend::Postgres => {
            let mut tx = db.begin_write().await?;
            sqlx::query("LOCK TABLE manifest_chain IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
            Hold::Postgres(tx)
        }
        Backend::Sqlite => Hold::Sqlite(SQLITE_TURN.clone().lock_owned().await),
    };
    Ok(ChainTurn { db, hold })
}

const HEAD: &str = "SELECT sha256 FROM manifest_chain ORDER BY id DESC LIMIT 1";
const AT_KEY: &str = "SELECT * FROM manifest_chain WHERE manifest_key = $1 ORDER BY id";
const INSERT: &str = "INSERT INTO manifest_chain (sha256, manifest_key, recording_id, previous_sha256, written_at) VALUES ($1, $2, $3, $4, $5)";

impl ChainTurn<'_> {
    /// The sha256 of the newest link, None while the chain is empty.
    pub async fn head(&mut self) -> Result<Option<String>, QueueError> {
        let query = sqlx::query_scalar::<_, String>(HEAD);
        Ok(match &mut self.hold {
            Hold::Postgres(tx) => query.fetch_optional(&mut **tx).await?,
            Hold::Sqlite(_) => query.fetch_optional(self.db.pool()).await?,
        })
    }

    /// The links written earlier at `key`, oldest first.
    pub async fn links_at(&mut self, key: &str) -> Result<Vec<ChainLink>, QueueError> {
        let query = sqlx::query_as::<_, ChainLink>(AT_KEY).bind(key.to_owned());
        Ok(match &mut self.hold {
            Hold::Postgres(tx) => query.fetch_all(&mut **tx).await?,
            Hold::Sqlite(_) => query.fetch_all(self.db.pool()).await?,
        })
    }

    /// Ends the turn with nothing appended, rolling PostgreSQL's transaction back (and so
    /// releasing its lock) before returning, rather than leaving it to sqlx's deferred
    /// rollback of a dropped transaction.
    pub async fn give_up(self) {
        if let Hold::Postgres(tx) = self.hold
            && let Err(err) = tx.rollback().await
        {
            tracing::warn!(error = %err, "cannot roll back the manifest chain turn; the connection closing releases its lock");
        }
    }

    /// Appends the link (durably) and ends the turn.
    pub async fn append(self, link: NewLink<'_>) -> Result<(), QueueError> {
        let (mut tx, _turn) = match self.hold {
            Hold::Postgres(tx) => (tx, None),
            Hold::Sqlite(turn) => (self.db.begin_write().await?, Some(turn)),
        };
        let inserted = sqlx::query(INSERT)
            .bind(link.sha256.to_owned())
            .bind(link.manifest_key.to_owned())
            .bind(link.recording_id)
            .bind(link.previous_sha256.map(str::to_owned))
            .bind(link.written_at)
            .execute(&mut *tx)
            .await;
        if let Err(err) = inserted {
            // Roll back now, so the lock (PostgreSQL) or the write lock (SQLite) goes at once.
            let _ = tx.rollback().await;
            return Err(err.into());
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Every link, in the order written.
pub async fn links(db: &Db) -> Result<Vec<ChainLink>, QueueError> {
    Ok(sqlx::query_as("SELECT * FROM manifest_chain ORDER BY id")
        .fetch_all(db.pool())
        .await?)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn link<'a>(sha256: &'a str, previous: Option<&'a str>) -> NewLink<'a> {
        NewLink {
            sha256,
            manifest_key: "call/rec/manifest.json",
            recording_id: 1,
            previous_sha256: previous,
            written_at: 1,
        }
    }

    async fn append_after_head(db: &Db, sha256: &str) -> Option<String> {
        let mut turn = take_turn(db).await.unwrap();
        let head = turn.head().await.unwrap();
        turn.append(link(sha256, head.as_deref())).await.unwrap();
        head
    }

    /// A link whose predecessor already has a successor is refused by the database itself.
    async fn a_second_successor_is_refused(db: &Db) {
        for fork in [link("fork", Some("a")), link("second-start", None)] {
            let turn = take_turn(db).await.unwrap();
            let err = turn.append(fork).await.unwrap_err();
            assert!(err.to_string().to_lowercase().contains("unique"), "{err}");
        }
    }

    #[tokio::test]
    async fn on_sqlite_links_follow_the_head_and_the_chain_cannot_fork() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}/q.db", dir.path().display()), 2)
            .await
            .unwrap();
        db.migrate().await.unwrap();
        assert_eq!(append_after_head(&db, "a").await, None);
        assert_eq!(append_after_head(&db, "b").await.as_deref(), Some("a"));
        a_second_successor_is_refused(&db).await;
        let mut turn = take_turn(&db).await.unwrap();
        assert_eq!(turn.head().await.unwrap().as_deref(), Some("b"));
        assert_eq!(
            turn.links_at("call/rec/manifest.json").await.unwrap().len(),
            2
        );
        assert!(turn.links_at("other").await.unwrap().is_empty());
        drop(turn);
        let all = links(&db).await.unwrap();
        assert_eq!(
            all.iter()
                .map(|link| (link.sha256.as_str(), link.previous_sha256.as_deref()))
                .collect::<Vec<_>>(),
            vec![("a", None), ("b", Some("a"))]
        );
    }

    #[tokio::test]
    async fn on_postgresql_a_turn_waits_for_the_one_before_it_in_another_pool() {
        let Some(server) = crate::test_services::postgres_server() else {
            return;
        };
        let name = format!("callvault_chain_{}", uuid::Uuid::new_v4().simple());
        crate::test_services::admin_sql(&server, &format!("CREATE DATABASE {name}")).await;
        let url = format!("{server}/{name}");
        // Two pools, as two processes would have.
        let first = Db::connect(&url, 2).await.unwrap();
        first.migrate().await.unwrap();
        let second = Db::connect(&url, 2).await.unwrap();

        let mut holder = take_turn(&first).await.unwrap();
        assert_eq!(holder.head().await.unwrap(), None);
        let waiter = tokio::spawn(async move {
            let mut turn = take_turn(&second).await.unwrap();
            let head = turn.head().await.unwrap();
            turn.append(link("b", head.as_deref())).await.unwrap();
            head
        });
        // The second pool's turn is seen waiting for the table lock while the first is held.
        let waiting = "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
            AND wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE manifest_chain%'";
        let started = std::time::Instant::now();
        while sqlx::query_scalar::<_, i64>(waiting)
            .fetch_one(first.pool())
            .await
            .unwrap()
            == 0
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the second turn never waited"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            !waiter.is_finished(),
            "a second turn began while the first was held"
        );
        holder.append(link("a", None)).await.unwrap();
        assert_eq!(waiter.await.unwrap().as_deref(), Some("a"));
        a_second_successor_is_refused(&first).await;

        // A turn given up (its put failed) frees the chain at once for another pool.
        let given_up = take_turn(&first).await.unwrap();
        given_up.give_up().await;
        let third = Db::connect(&url, 1).await.unwrap();
        let mut next = tokio::time::timeout(Duration::from_secs(10), take_turn(&third))
            .await
            .expect("the turn given up still holds the lock")
            .unwrap();
        assert_eq!(next.head().await.unwrap().as_deref(), Some("b"));
        next.give_up().await;
        third.close().await;
        first.close().await;
        crate::test_services::admin_sql(
            &server,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        )
        .await;
    }
}
