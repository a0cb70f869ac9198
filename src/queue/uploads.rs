//! Open multipart uploads (`open_uploads`): written before an upload's first part is sent and
//! deleted once it is completed or aborted, so that an upload whose abort could not reach the
//! store is still known and can be aborted later.

use super::{Db, QueueError};

/// One recorded upload.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OpenUpload {
    pub upload_id: String,
    pub object_key: String,
    pub job_id: i64,
    /// Epoch milliseconds.
    pub opened_at: i64,
}

/// Records that `job` opened `upload_id` at `key`. Durable before it returns: the caller
/// sends the upload's parts only then.
pub async fn opened(
    db: &Db,
    job: i64,
    key: &str,
    upload_id: &str,
    now: i64,
) -> Result<(), QueueError> {
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "INSERT INTO open_uploads (upload_id, object_key, job_id, opened_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (upload_id) DO NOTHING",
    )
    .bind(upload_id)
    .bind(key)
    .bind(job)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Strikes `upload_id` off: it was completed or aborted.
pub async fn closed(db: &Db, upload_id: &str) -> Result<(), QueueError> {
    let mut tx = db.begin_write().await?;
    sqlx::query("DELETE FROM open_uploads WHERE upload_id = $1")
        .bind(upload_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The uploads `job` opened and did not close, oldest first.
pub async fn of_job(db: &Db, job: i64) -> Result<Vec<OpenUpload>, QueueError> {
    Ok(sqlx::query_as(
        "SELECT upload_id, object_key, job_id, opened_at FROM open_uploads
         WHERE job_id = $1 ORDER BY opened_at, upload_id",
    )
    .bind(job)
    .fetch_all(db.pool())
    .await?)
}

/// Uploads opened before `opened_before` whose job no live lease holds at `now` (it is not
/// running, its lease has lapsed, or it no longer exists): nobody can still be writing them.
/// At most `limit`, oldest first.
pub async fn abandoned(
    db: &Db,
    opened_before: i64,
    now: i64,
    limit: i64,
) -> Result<Vec<OpenUpload>, QueueError> {
    Ok(sqlx::query_as(
        "SELECT u.upload_id, u.object_key, u.job_id, u.opened_at FROM open_uploads u
         LEFT JOIN jobs j ON j.id = u.job_id
         WHERE u.opened_at < $1
           AND NOT (COALESCE(j.state, '') = 'running' AND COALESCE(j.lease_until, 0) > $2)
         ORDER BY u.opened_at, u.upload_id
         LIMIT $3",
    )
    .bind(opened_before)
    .bind(now)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// The ids of recorded uploads whose job a live lease holds at `now`: a writer may still be
/// sending their parts.
pub async fn live(db: &Db, now: i64) -> Result<Vec<String>, QueueError> {
    Ok(sqlx::query_scalar(
        "SELECT u.upload_id FROM open_uploads u JOIN jobs j ON j.id = u.job_id
         WHERE j.state = 'running' AND j.lease_until > $1",
    )
    .bind(now)
    .fetch_all(db.pool())
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_services::{admin_sql, postgres_server};

    /// Runs `check` on a migrated SQLite file, then on a fresh PostgreSQL database when one
    /// is configured.
    async fn on_both<F: AsyncFn(&Db)>(check: F) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}/q.db", dir.path().display()), 2)
            .await
            .unwrap();
        db.migrate().await.unwrap();
        check(&db).await;
        db.close().await;
        let Some(server) = postgres_server() else {
            return;
        };
        let name = format!("callvault_uploads_{}", uuid::Uuid::new_v4().simple());
        admin_sql(&server, &format!("CREATE DATABASE {name}")).await;
        let db = Db::connect(&format!("{server}/{name}"), 2).await.unwrap();
        db.migrate().await.unwrap();
        check(&db).await;
        db.close().await;
        admin_sql(&server, &format!("DROP DATABASE {name}")).await;
    }

    #[tokio::test]
    async fn an_upload_is_recorded_until_it_is_closed() {
        on_both(recorded_until_closed).await;
    }

    async fn recorded_until_closed(db: &Db) {
        opened(db, 7, "calls/a/chunk-0000.mp4", "id-1", 1000)
            .await
            .unwrap();
        // A repeated record (a retried insert) keeps the first.
        opened(db, 7, "calls/a/chunk-0000.mp4", "id-1", 2000)
            .await
            .unwrap();
        opened(db, 8, "calls/b/chunk-0000.mp4", "id-2", 1500)
            .await
            .unwrap();
        assert_eq!(
            of_job(db, 7).await.unwrap(),
            vec![OpenUpload {
                upload_id: "id-1".into(),
                object_key: "calls/a/chunk-0000.mp4".into(),
                job_id: 7,
                opened_at: 1000,
            }]
        );
        closed(db, "id-1").await.unwrap();
        assert!(of_job(db, 7).await.unwrap().is_empty());
        assert_eq!(of_job(db, 8).await.unwrap().len(), 1, "others stay");
    }

    #[tokio::test]
    async fn only_old_uploads_without_a_live_lease_are_abandoned() {
        on_both(abandoned_without_a_live_lease).await;
    }

    async fn abandoned_without_a_live_lease(db: &Db) {
        let now = 1_000_000;
        // A running job under a live lease, one whose lease has lapsed, and one that does not exist.
        let recording: i64 = sqlx::query_scalar(
            "INSERT INTO recordings (call_id, recording_key, media_extension, deadline_at, created_at, updated_at)
             VALUES ('c', 'k', 'mp4', 0, 0, 0) RETURNING id",
        )
        .fetch_one(db.pool())
        .await
        .unwrap();
        let mut jobs = Vec::new();
        for (index, lease_until) in [(0i64, now + 60_000), (1, now - 1)] {
            let job: i64 = sqlx::query_scalar(
                "INSERT INTO jobs (recording_id, chunk_index, document_id, content_url, metadata_url, state, next_attempt_at, lease_owner, lease_until, deadline_at, created_at, updated_at)
                 VALUES ($1, $2, $3, 'u', 'm', 'running', 0, 'w', $4, 0, 0, 0) RETURNING id",
            )
            .bind(recording)
            .bind(index)
            .bind(format!("doc-{index}"))
            .bind(lease_until)
            .fetch_one(db.pool())
            .await
            .unwrap();
            jobs.push(job);
        }
        let missing = jobs[1] + 1000;
        for (job, id, at) in [
            (jobs[0], "live", 10),
            (jobs[1], "lapsed", 10),
            (missing, "orphan", 10),
            (missing, "young", now),
        ] {
            opened(db, job, "k", id, at).await.unwrap();
        }
        let ids: Vec<String> = abandoned(db, now - 1000, now, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.upload_id)
            .collect();
        assert_eq!(ids, vec!["lapsed", "orphan"]);
        assert_eq!(live(db, now).await.unwrap(), vec!["live"]);
        assert_eq!(abandoned(db, now - 1000, now, 1).await.unwrap().len(), 1);
    }
}
