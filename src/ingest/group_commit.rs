//! Group commit: deliveries that arrive while a commit is in flight share the next
//! transaction, so one fsync acknowledges many of them. A batch is written without
//! savepoints first; when a delivery fails, it is written again with one savepoint per
//! delivery, so one delivery's database error fails only that delivery. Each is answered
//! only after the transaction holding its events has committed.
//!
//! The committer never waits for company: it takes the first delivery as soon as it
//! arrives, adds whatever has queued meanwhile (up to the bounds), and commits. A lone
//! delivery therefore waits only for the commit already in flight, if any.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::delivery::{Intake, StoreError, Stored};
use super::plan::Planned;
use crate::queue::{QueueError, Tx, now_millis};

/// How much one transaction may hold. A single delivery larger than `max_events` still
/// gets a transaction of its own.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_deliveries: usize,
    pub max_events: usize,
    /// Deliveries waiting for the committer before senders wait for room.
    pub queue_capacity: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_deliveries: 256,
            // Event Grid's largest delivery; a few large deliveries do not build one huge transaction.
            max_events: 5_000,
            queue_capacity: 4_096,
        }
    }
}

/// What the committer has done, for tests, benchmarks and operators.
#[derive(Debug, Default)]
pub struct CommitStats {
    commits: AtomicU64,
    committed_deliveries: AtomicU64,
    last_batch: AtomicU64,
    /// Time from taking a batch's first delivery to opening its transaction.
    last_gathering_micros: AtomicU64,
    max_gathering_micros: AtomicU64,
    fallbacks: AtomicU64,
}

impl CommitStats {
    /// Transactions committed.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::SeqCst)
    }

    /// Deliveries whose events were committed.
    pub fn committed_deliveries(&self) -> u64 {
        self.committed_deliveries.load(Ordering::SeqCst)
    }

    /// Deliveries in the last batch taken.
    pub fn last_batch(&self) -> u64 {
        self.last_batch.load(Ordering::SeqCst)
    }

    /// How long the last batch's first delivery was held while the batch was gathered.
    pub fn last_gathering(&self) -> Duration {
        Duration::from_micros(self.last_gathering_micros.load(Ordering::SeqCst))
    }

    /// The longest such hold so far.
    pub fn max_gathering(&self) -> Duration {
        Duration::from_micros(self.max_gathering_micros.load(Ordering::SeqCst))
    }

    /// Batches written a second time, a savepoint per delivery, after a delivery failed.
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::SeqCst)
    }

    fn fell_back(&self) {
        self.fallbacks.fetch_add(1, Ordering::SeqCst);
    }

    fn gathered(&self, batch: usize, held: Duration) {
        let micros = u64::try_from(held.as_micros()).unwrap_or(u64::MAX);
        self.last_batch.store(batch as u64, Ordering::SeqCst);
        self.last_gathering_micros.store(micros, Ordering::SeqCst);
        self.max_gathering_micros
            .fetch_max(micros, Ordering::SeqCst);
    }

    fn committed(&self, deliveries: usize) {
        self.committed_deliveries
            .fetch_add(deliveries as u64, Ordering::SeqCst);
        self.commits.fetch_add(1, Ordering::SeqCst);
    }
}

/// A delivery waiting for its transaction.
struct Pending {
    planned: Vec<Planned>,
    reply: oneshot::Sender<Result<Stored, StoreError>>,
}

/// The handle deliveries are submitted through; cheap to clone.
#[derive(Clone)]
pub struct GroupCommit {
    sender: mpsc::Sender<Pending>,
    stats: Arc<CommitStats>,
}

impl GroupCommit {
    /// Starts the committer for `intake`. It stops once every handle is dropped.
    pub fn start(intake: Intake, limits: Limits) -> Self {
        let (sender, receiver) = mpsc::channel(limits.queue_capacity.max(1));
        let stats = Arc::new(CommitStats::default());
        tokio::spawn(run(Arc::new(intake), receiver, stats.clone(), limits));
        Self { sender, stats }
    }

    /// Queues a judged delivery and waits until its transaction has committed (or failed).
    pub(super) async fn submit(&self, planned: Vec<Planned>) -> Result<Stored, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Pending { planned, reply })
            .await
            .map_err(|_| StoreError::Stopped)?;
        answer.await.map_err(|_| StoreError::Stopped)?
    }

    pub fn stats(&self) -> &Arc<CommitStats> {
        &self.stats
    }

    /// Deliveries queued and not yet taken into a batch.
    pub fn queued(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }
}

async fn run(
    intake: Arc<Intake>,
    mut receiver: mpsc::Receiver<Pending>,
    stats: Arc<CommitStats>,
    limits: Limits,
) {
    let mut carried: Option<Pending> = None;
    loop {
        let first = match carried.take() {
            Some(pending) => pending,
            None => match receiver.recv().await {
                Some(pending) => pending,
                None => return,
            },
        };
        let taken_at = Instant::now();
        let mut events = first.planned.len();
        let mut batch = vec![first];
        while batch.len() < limits.max_deliveries {
            let Ok(next) = receiver.try_recv() else { break };
            if events + next.planned.len() > limits.max_events {
                carried = Some(next);
                break;
            }
            events += next.planned.len();
            batch.push(next);
        }
        stats.gathered(batch.len(), taken_at.elapsed());
        // Its own task: a panic while writing fails this batch's deliveries (their reply
        // channels close), not the committer.
        let (intake, stats) = (intake.clone(), stats.clone());
        let _ = tokio::spawn(async move { commit(&intake, batch, &stats).await }).await;
    }
}

/// Commits one delivery alone, in the caller's task (used where no committer runs).
pub(super) async fn commit_alone(
    intake: &Intake,
    planned: Vec<Planned>,
) -> Result<Stored, StoreError> {
    let (reply, answer) = oneshot::channel();
    commit(
        intake,
        vec![Pending { planned, reply }],
        &CommitStats::default(),
    )
    .await;
    answer.await.map_err(|_| StoreError::Stopped)?
}

/// Writes a batch in one transaction and answers each delivery once it is decided.
async fn commit(intake: &Intake, batch: Vec<Pending>, stats: &CommitStats) {
    let now = now_millis();
    let mut tx = match intake.db.begin_write().await {
        Ok(tx) => tx,
        Err(err) => return answer_all(batch, Arc::new(err)),
    };
    // Most batches write cleanly, so the first pass takes no savepoints (three statements
    // per delivery saved). Should any delivery fail, that pass is undone and the batch is
    // written again with a savepoint per delivery, so only the failing one fails. A lone
    // delivery needs no savepoint: its failure rolls back the whole transaction.
    let isolate = batch.len() > 1;
    let (mut outcomes, mut broken) = write_batch(intake, &mut tx, &batch, now, false).await;
    let failed = broken.is_some()
        || outcomes
            .iter()
            .any(|outcome| matches!(outcome, DeliveryWrite::Undone(_)));
    if isolate && failed {
        stats.fell_back();
        let _ = tx.rollback().await;
        tx = match intake.db.begin_write().await {
            Ok(tx) => tx,
            Err(err) => return answer_all(batch, Arc::new(err)),
        };
        (outcomes, broken) = write_batch(intake, &mut tx, &batch, now, true).await;
    }
    let committed = match broken {
        Some(err) => Err(Arc::new(err)),
        None if !isolate && matches!(outcomes.first(), Some(DeliveryWrite::Undone(_))) => Ok(()),
        None => tx.commit().await.map_err(|err| Arc::new(err.into())),
    };
    let mut stored = 0;
    let (pendings, planned): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .map(|pending| (pending.reply, pending.planned))
        .unzip();
    let mut outcomes = outcomes.into_iter();
    for reply in pendings {
        let answer = match (outcomes.next(), &committed) {
            // Its own error stands whatever became of the transaction.
            (Some(DeliveryWrite::Undone(own)), _) => Err(StoreError::Queue(own)),
            (Some(DeliveryWrite::Written(done)), Ok(())) => {
                stored += 1;
                Ok(done)
            }
            (_, Err(shared)) => Err(StoreError::Batch(shared.clone())),
            // Not written because the transaction broke first: covered by the arm above.
            (None, Ok(())) => Err(StoreError::Stopped),
        };
        let _ = reply.send(answer);
    }
    if committed.is_ok() && stored > 0 {
        stats.committed(stored);
    }
    // Freeing large trees of JSON values is milliseconds of work: off the committer.
    tokio::task::spawn_blocking(move || drop(planned));
}

/// What writing one delivery of a batch did, when the transaction can go on.
enum DeliveryWrite {
    /// Its events are written, to be kept if the transaction commits.
    Written(Stored),
    /// It failed with this error and its writes were undone (a lone delivery's failure
    /// undoes the whole transaction).
    Undone(QueueError),
}

impl From<Result<Stored, QueueError>> for DeliveryWrite {
    fn from(written: Result<Stored, QueueError>) -> Self {
        match written {
            Ok(stored) => DeliveryWrite::Written(stored),
            Err(err) => DeliveryWrite::Undone(err),
        }
    }
}

/// Writes the batch's deliveries in order, each under a savepoint when `isolate`. Without
/// savepoints it stops at the first failure, after which the transaction is of no use;
/// with them it stops only when undoing a failure failed too (the error returned).
async fn write_batch(
    intake: &Intake,
    tx: &mut Tx,
    batch: &[Pending],
    now: i64,
    isolate: bool,
) -> (Vec<DeliveryWrite>, Option<QueueError>) {
    let mut outcomes = Vec::with_capacity(batch.len());
    for pending in batch {
        match write_isolated(intake, tx, &pending.planned, now, isolate).await {
            Ok(outcome) => {
                let undone = matches!(outcome, DeliveryWrite::Undone(_));
                outcomes.push(outcome);
                if undone && !isolate {
                    break;
                }
            }
            Err(err) => return (outcomes, Some(err)),
        }
    }
    (outcomes, None)
}

/// Writes one delivery; `Err(_)` when undoing a failed delivery failed too, so the
/// transaction cannot go on.
async fn write_isolated(
    intake: &Intake,
    tx: &mut Tx,
    planned: &[Planned],
    now: i64,
    isolate: bool,
) -> Result<DeliveryWrite, QueueError> {
    if !isolate {
        return Ok(intake.write_delivery(tx, planned, now).await.into());
    }
    execute(tx, "SAVEPOINT delivery").await?;
    match intake.write_delivery(tx, planned, now).await {
        Ok(stored) => {
            execute(tx, "RELEASE SAVEPOINT delivery").await?;
            Ok(DeliveryWrite::Written(stored))
        }
        Err(err) => {
            tracing::warn!(error = %err, "one delivery of a shared transaction failed; its writes are undone, the others go on");
            execute(tx, "ROLLBACK TO SAVEPOINT delivery").await?;
            execute(tx, "RELEASE SAVEPOINT delivery").await?;
            Ok(DeliveryWrite::Undone(err))
        }
    }
}

async fn execute(tx: &mut Tx, statement: &'static str) -> Result<(), QueueError> {
    sqlx::query(statement).execute(&mut **tx).await?;
    Ok(())
}

fn answer_all(batch: Vec<Pending>, err: Arc<QueueError>) {
    for pending in batch {
        let _ = pending.reply.send(Err(StoreError::Batch(err.clone())));
    }
}
