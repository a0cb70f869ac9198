//! Access-request exports as jobs of the admin API: `POST /admin/exports` queues one, a
//! runner on each replica that serves the admin API writes one export at a time into
//! `admin.export_dir`, and files are deleted `admin.export_keep_hours` after the export ended.
//! The exports table keeps state and progress, so a restart continues a running export from
//! its partial file (see [`crate::export`]) once its lease lapses.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::views::rfc3339;
use crate::audit::{Action, Actor, AuditEntry, Role};
use crate::export::index::RecordingStatus;
use crate::export::{self, Counters, Order, Selection};
use crate::queue::exports::{self, ExportProgress, ExportRow};
use crate::queue::{Db, QueueError, now_millis};
use crate::storage::Archive;

/// How long a claim holds an export without a sign of life; renewed every [`REPORT_EVERY`].
pub const LEASE: Duration = Duration::from_secs(60);
/// How often a running export's progress is written and its lease renewed.
pub const REPORT_EVERY: Duration = Duration::from_secs(1);
/// How often an idle runner looks for a queued export (a POST on this replica wakes it at once).
pub const POLL_EVERY: Duration = Duration::from_secs(5);
/// How often ended exports past `admin.export_keep_hours` are deleted.
pub const SWEEP_EVERY: Duration = Duration::from_secs(600);
/// Exports queued or running at once, across replicas; a further request gets 429.
pub const MAX_OPEN_EXPORTS: i64 = 100;

/// The runner's settings and handles.
#[derive(Clone)]
pub struct ExportJobs {
    pub db: Db,
    pub archive: Archive,
    /// `admin.export_dir`.
    pub dir: PathBuf,
    /// `admin.export_keep_hours`.
    pub keep_hours: u64,
    /// Notified when an export is queued.
    pub wake: Arc<Notify>,
}

/// The tar of export `id` in `dir`.
pub fn file_of(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.tar"))
}

impl ExportJobs {
    /// Runs until `shutdown`: one export at a time, and the hourly-ish sweep of old files.
    pub async fn run(self, shutdown: CancellationToken) {
        if let Err(err) = std::fs::create_dir_all(&self.dir) {
            tracing::error!(dir = %self.dir.display(), error = %err, "cannot create admin.export_dir; exports will fail until it exists");
        }
        let mut last_sweep: Option<tokio::time::Instant> = None;
        loop {
            if last_sweep.is_none_or(|at| at.elapsed() >= SWEEP_EVERY) {
                last_sweep = Some(tokio::time::Instant::now());
                if let Err(err) = self.remove_expired(now_millis()).await {
                    tracing::warn!(error = %err, "cannot delete old exports; the database may be unavailable");
                }
            }
            let lease = uuid::Uuid::new_v4().simple().to_string();
            let now = now_millis();
            match exports::claim(&self.db, &lease, now + LEASE.as_millis() as i64, now).await {
                Ok(Some(row)) => {
                    self.run_one(row, &lease, &shutdown).await;
                    // An export stopped by the shutdown was let go; claiming it again at
                    // once would spin until the process exits.
                    if shutdown.is_cancelled() {
                        return;
                    }
                    continue;
                }
                Ok(None) => {}
                Err(err) => tracing::warn!(error = %err, "cannot claim an export"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL_EVERY) => {}
            }
        }
    }

    async fn run_one(&self, row: ExportRow, lease: &str, shutdown: &CancellationToken) {
        let id = row.id.clone();
        let out = file_of(&self.dir, &id);
        let counters = Arc::new(Counters::default());
        let outcome = match serde_json::from_str::<Selection>(&row.selection) {
            Err(err) => Some(Err(format!("the stored request is not readable: {err}"))),
            // Finished before a crash kept its end from being recorded: which recordings it
            // holds is in the file, no longer at hand.
            Ok(_) if out.exists() => Some(Ok(None)),
            Ok(selection) => {
                tracing::info!(export_id = %id, asked_for = %selection.describe(), "export started");
                let order = Order {
                    selection,
                    export_id: id.clone(),
                    requested_by: row.requested_by.clone(),
                    created_at: row.created_at,
                };
                self.drive(&order, &out, lease, counters.clone(), shutdown)
                    .await
            }
        };
        let Some(outcome) = outcome else {
            // Stopped or taken over: the partial file stays for whoever claims it next.
            counters.stop();
            return;
        };
        let progress = progress_of(&counters);
        let (record, error) = match outcome {
            Ok(recordings) => (Some(audit_record(&row, &out, recordings)), None),
            Err(error) => (None, Some(error)),
        };
        match exports::finish(
            &self.db,
            &id,
            lease,
            progress,
            error.as_deref(),
            now_millis(),
            record,
        )
        .await
        {
            Ok(true) => match &error {
                None => {
                    tracing::info!(export_id = %id, files = progress.files_total, bytes = progress.bytes_total, requested_by = %row.requested_by, file = %out.display(), "export done");
                }
                Some(error) => tracing::warn!(export_id = %id, %error, "export failed"),
            },
            Ok(false) => {
                tracing::warn!(export_id = %id, "export ended after another replica took it over")
            }
            Err(err) => {
                tracing::warn!(export_id = %id, error = %err, "cannot record the end of an export; it runs again once its lease lapses")
            }
        }
    }

    /// Runs the export, reporting progress and renewing the lease; the ids of the recordings
    /// exported, or None when stopped or when the lease was lost.
    async fn drive(
        &self,
        order: &Order,
        out: &Path,
        lease: &str,
        counters: Arc<Counters>,
        shutdown: &CancellationToken,
    ) -> Option<Result<Option<Vec<i64>>, String>> {
        let export = export::run(&self.db, &self.archive, order, out, counters.clone());
        tokio::pin!(export);
        let mut ticks = tokio::time::interval(REPORT_EVERY);
        loop {
            tokio::select! {
                result = &mut export => return Some(result.map(|done| Some(exported_ids(&done))).map_err(|err| err.to_string())),
                _ = shutdown.cancelled() => {
                    // The writer stops at its next read; once it has, the lease is let go so
                    // the next replica (or this one restarted) continues at once.
                    counters.stop();
                    let _ = (&mut export).await;
                    let released = exports::report(&self.db, &order.export_id, lease, now_millis() - 1, progress_of(&counters)).await;
                    if let Err(err) = released {
                        tracing::warn!(export_id = %order.export_id, error = %err, "cannot let go of an export's lease; it lapses by itself");
                    }
                    return None;
                }
                _ = ticks.tick() => {
                    let until = now_millis() + LEASE.as_millis() as i64;
                    match exports::report(&self.db, &order.export_id, lease, until, progress_of(&counters)).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(export_id = %order.export_id, "export taken over by another replica; stopping here");
                            return None;
                        }
                        Err(err) => tracing::warn!(export_id = %order.export_id, error = %err, "cannot record export progress"),
                    }
                }
            }
        }
    }

    /// Deletes the files of exports that ended more than `keep_hours` before `now`.
    pub async fn remove_expired(&self, now: i64) -> Result<usize, QueueError> {
        let cutoff = now - (self.keep_hours as i64) * 3_600_000;
        let ended = exports::ended_before(&self.db, cutoff).await?;
        for id in &ended {
            let paths = export::ExportPaths::new(&file_of(&self.dir, id));
            for path in [&paths.out, &paths.partial, &paths.record] {
                match std::fs::remove_file(path) {
                    Ok(()) => {}
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(err) => {
                        tracing::warn!(export_id = %id, path = %path.display(), error = %err, "cannot delete an old export file");
                    }
                }
            }
            exports::mark_removed(&self.db, id, now).await?;
            tracing::info!(export_id = %id, keep_hours = self.keep_hours, "export deleted after admin.export_keep_hours");
        }
        Ok(ended.len())
    }
}

fn progress_of(counters: &Counters) -> ExportProgress {
    let (files_done, files_total, bytes_done, bytes_total) = counters.snapshot();
    let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    ExportProgress {
        files_done: signed(files_done),
        files_total: signed(files_total),
        bytes_done: signed(bytes_done),
        bytes_total: signed(bytes_total),
    }
}

/// The recordings an export holds (those listed but erased or missing aside).
fn exported_ids(done: &export::Exported) -> Vec<i64> {
    done.index
        .recordings
        .iter()
        .filter(|recording| recording.status == RecordingStatus::Exported)
        .map(|recording| recording.id)
        .collect()
}

/// The audit record of a finished export, naming the token that asked for it; `recordings`
/// is None when the export had finished before a crash and only its file is left.
fn audit_record(row: &ExportRow, out: &Path, recordings: Option<Vec<i64>>) -> AuditEntry {
    let asked_for: serde_json::Value =
        serde_json::from_str(&row.selection).unwrap_or(serde_json::Value::Null);
    AuditEntry::new(
        &Actor::token(&row.requested_by, Role::Operator),
        Action::Exported,
    )
    .detail(serde_json::json!({
        "export_id": row.id,
        "requested_by": row.requested_by,
        "asked_for": asked_for,
        "recordings": recordings,
        "file": out.display().to_string(),
        "via": "admin API",
    }))
}

/// An export as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ExportView {
    pub id: String,
    pub state: String,
    pub asked_for: serde_json::Value,
    pub requested_by: String,
    pub files_done: i64,
    pub files_total: Option<i64>,
    pub bytes_done: i64,
    pub bytes_total: Option<i64>,
    pub error: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// When the file will be deleted (ended exports).
    pub expires_at: Option<String>,
    pub removed_at: Option<String>,
    /// Where to fetch the tar once `state` is `done`.
    pub download: Option<String>,
}

impl ExportView {
    pub fn new(row: &ExportRow, keep_hours: u64) -> Self {
        let keep_ms = (keep_hours as i64) * 3_600_000;
        Self {
            id: row.id.clone(),
            state: row.state.clone(),
            asked_for: serde_json::from_str(&row.selection).unwrap_or(serde_json::Value::Null),
            requested_by: row.requested_by.clone(),
            files_done: row.files_done,
            files_total: row.files_total,
            bytes_done: row.bytes_done,
            bytes_total: row.bytes_total,
            error: row.error.clone(),
            created_at: rfc3339(row.created_at),
            started_at: row.started_at.map(rfc3339),
            finished_at: row.finished_at.map(rfc3339),
            expires_at: row
                .finished_at
                .filter(|_| row.removed_at.is_none())
                .map(|at| rfc3339(at + keep_ms)),
            removed_at: row.removed_at.map(rfc3339),
            download: (row.state == "done").then(|| format!("/admin/exports/{}/download", row.id)),
        }
    }
}
