//! Claiming outbox rows with a lease and recording how their delivery went.
//!
//! A row is due when it is pending and its time has come, and no earlier row of the same
//! recording and sink is still pending or being delivered: deliveries of one recording go out
//! in the order their changes were committed. A `failed` row does not hold the ones after it
//! back (it waits for an operator; consumers order by `data.chunkCount` or `time`). A lapsed
//! lease (its dispatcher died) puts the row back to pending ([`release_lapsed`]).

use super::super::{Backend, Db, QueueError};

/// A claimed row, to deliver before `lease_until`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Delivery {
    pub id: i64,
    pub event_id: String,
    pub sink: String,
    pub event_type: String,
    pub recording_id: i64,
    pub body: String,
    /// Attempts including this one.
    pub attempts: i64,
    pub lease_owner: String,
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Pending again, due at `next_attempt_at`.
    Retry {
        next_attempt_at: i64,
        error: String,
    },
    /// Parked for an operator's replay.
    Failed {
        error: String,
    },
    /// Not this row's fault (the sink is disabled, shutdown): pending again, its attempt not
    /// counted.
    Release {
        next_attempt_at: i64,
        error: String,
    },
}

fn due_sql(backend: Backend) -> String {
    let lock = match backend {
        Backend::Postgres => "FOR UPDATE OF o SKIP LOCKED",
        Backend::Sqlite => "",
    };
    format!(
        "UPDATE event_outbox SET state = 'delivering', attempts = attempts + 1, lease_owner = $1,
             lease_until = $2, updated_at = $3
         WHERE id IN (
             SELECT o.id FROM event_outbox o
             WHERE o.sink = $4 AND o.state = 'pending' AND o.next_attempt_at <= $3
               AND NOT EXISTS (
                   SELECT 1 FROM event_outbox e
                   WHERE e.sink = o.sink AND e.recording_id = o.recording_id AND e.id < o.id
                     AND e.state IN ('pending', 'delivering'))
             ORDER BY o.next_attempt_at, o.id LIMIT $5 {lock})
         RETURNING id, event_id, sink, event_type, recording_id, body, attempts, lease_owner"
    )
}

/// Puts `sink`'s rows whose lease lapsed (their dispatcher died) back to pending; answers
/// how many. Apart from [`claim`]: a lease lasts `events.request_timeout_secs` + 5 s, so the
/// dispatcher looks for lapsed ones at start and on each poll, not in every claim.
pub async fn release_lapsed(db: &Db, sink: &str, now: i64) -> Result<u64, QueueError> {
    let mut tx = db.begin_write_unsynced().await?;
    let released = sqlx::query(
        "UPDATE event_outbox SET state = 'pending', lease_owner = NULL, lease_until = NULL, updated_at = $2
         WHERE sink = $1 AND state = 'delivering' AND lease_until < $2",
    )
    .bind(sink.to_owned())
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(released)
}

/// Claims up to `limit` due rows of `sink` for `owner` until `lease_until`, oldest first.
/// Unsynced like a job's claim: a claim lost in a crash leaves the row pending.
pub async fn claim(
    db: &Db,
    sink: &str,
    owner: &str,
    limit: usize,
    lease_until: i64,
    now: i64,
) -> Result<Vec<Delivery>, QueueError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut tx = db.begin_write_unsynced().await?;
    let mut claimed: Vec<Delivery> = sqlx::query_as(sqlx::AssertSqlSafe(due_sql(db.backend())))
        .bind(owner.to_owned())
        .bind(lease_until)
        .bind(now)
        .bind(sink.to_owned())
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    claimed.sort_by_key(|delivery| delivery.id);
    Ok(claimed)
}

/// Records how `delivery` ended; false when its lease was lost meanwhile (nothing changed).
/// Unsynced: an outcome lost in a crash makes the row due again once its lease lapses, and
/// delivery is at least once.
pub async fn finish(
    db: &Db,
    delivery: &Delivery,
    outcome: &Outcome,
    now: i64,
) -> Result<bool, QueueError> {
    let done = finish_many(db, &[(delivery.clone(), outcome.clone())], now).await?;
    Ok(done[0])
}

/// Records several outcomes in one transaction (one commit for a burst of deliveries);
/// answers, for each, whether its lease was still held. The deliveries of a burst, the usual
/// outcome, are one statement.
pub async fn finish_many(
    db: &Db,
    outcomes: &[(Delivery, Outcome)],
    now: i64,
) -> Result<Vec<bool>, QueueError> {
    let mut tx = db.begin_write_unsynced().await?;
    let delivered: Vec<&Delivery> = outcomes
        .iter()
        .filter(|(_, outcome)| *outcome == Outcome::Delivered)
        .map(|(delivery, _)| delivery)
        .collect();
    let held = record_delivered(&mut tx, &delivered, now).await?;
    let mut done = Vec::with_capacity(outcomes.len());
    for (delivery, outcome) in outcomes {
        done.push(match outcome {
            Outcome::Delivered => held.contains(&delivery.id),
            _ => record(&mut tx, delivery, outcome, now).await?,
        });
    }
    tx.commit().await?;
    Ok(done)
}

/// Marks `deliveries` delivered in one statement per owner (a burst has one); answers the ids
/// whose lease was still held.
async fn record_delivered(
    tx: &mut super::super::Tx,
    deliveries: &[&Delivery],
    now: i64,
) -> Result<Vec<i64>, QueueError> {
    let mut held = Vec::with_capacity(deliveries.len());
    let mut owners: Vec<&str> = deliveries.iter().map(|d| d.lease_owner.as_str()).collect();
    owners.sort_unstable();
    owners.dedup();
    for owner in owners {
        let ids: Vec<i64> = deliveries
            .iter()
            .filter(|d| d.lease_owner == owner)
            .map(|d| d.id)
            .collect();
        let placeholders: Vec<String> = (0..ids.len()).map(|n| format!("${}", n + 3)).collect();
        let sql = format!(
            "UPDATE event_outbox SET state = 'delivered', delivered_at = $2, updated_at = $2,
                 lease_owner = NULL, lease_until = NULL, last_error = NULL
             WHERE lease_owner = $1 AND state = 'delivering' AND id IN ({})
             RETURNING id",
            placeholders.join(", ")
        );
        let mut query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
            .bind(owner.to_owned())
            .bind(now);
        for id in ids {
            query = query.bind(id);
        }
        held.extend(query.fetch_all(&mut **tx).await?);
    }
    Ok(held)
}

async fn record(
    tx: &mut super::super::Tx,
    delivery: &Delivery,
    outcome: &Outcome,
    now: i64,
) -> Result<bool, QueueError> {
    let owned = "WHERE id = $1 AND lease_owner = $2 AND state = 'delivering'";
    let query = match outcome {
        Outcome::Delivered => sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE event_outbox SET state = 'delivered', delivered_at = $3, updated_at = $3,
                 lease_owner = NULL, lease_until = NULL, last_error = NULL {owned}"
        )))
        .bind(delivery.id)
        .bind(delivery.lease_owner.clone())
        .bind(now),
        Outcome::Retry {
            next_attempt_at,
            error,
        } => sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE event_outbox SET state = 'pending', next_attempt_at = $3, last_error = $4, updated_at = $5,
                 lease_owner = NULL, lease_until = NULL {owned}"
        )))
        .bind(delivery.id)
        .bind(delivery.lease_owner.clone())
        .bind(*next_attempt_at)
        .bind(error.clone())
        .bind(now),
        Outcome::Release {
            next_attempt_at,
            error,
        } => sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE event_outbox SET state = 'pending', attempts = attempts - 1, next_attempt_at = $3,
                 last_error = $4, updated_at = $5, lease_owner = NULL, lease_until = NULL {owned}"
        )))
        .bind(delivery.id)
        .bind(delivery.lease_owner.clone())
        .bind(*next_attempt_at)
        .bind(error.clone())
        .bind(now),
        Outcome::Failed { error } => sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE event_outbox SET state = 'failed', last_error = $3, updated_at = $4,
                 lease_owner = NULL, lease_until = NULL {owned}"
        )))
        .bind(delivery.id)
        .bind(delivery.lease_owner.clone())
        .bind(error.clone())
        .bind(now),
    };
    let updated = query.execute(&mut **tx).await?.rows_affected();
    Ok(updated == 1)
}
