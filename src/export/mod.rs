//! Export for a data subject's access request: every archived recording of a participant,
//! or the recordings asked for by id, as one tar of their media, metadata and manifests,
//! read from the store and checked against each manifest as the bytes stream, with
//! `index.json` (what is included and why, when, by whom) and `SHA256SUMS`.
//!
//! The tar is written to `FILE.partial` beside a progress record `FILE.progress`, and renamed
//! to `FILE` once complete. A run that stopped (killed, or failed on an object) continues when
//! run again with the same output: it keeps the entries the record lists after reading them
//! back, and writes the rest with the index it planned first, so the finished tar is the same
//! as an uninterrupted run's.

mod entries;
pub mod index;
pub mod progress;
mod record;
pub mod selection;
mod subject;
mod tarball;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use entries::{INDEX_PATH, SUMS_PATH};
pub use index::{Index, IndexedFile, IndexedRecording, Order, RecordingStatus};
pub use progress::{Counters, Progress};
pub use record::ExportPaths;
pub use selection::Selection;
pub use subject::recordings_of_participant;

use crate::queue::{Db, QueueError};
use crate::storage::{Archive, StorageError};
use record::ProgressRecord;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    InvalidSelection(String),
    #[error("recording {0} does not exist")]
    RecordingNotFound(i64),
    #[error("{} already exists; choose another output file or remove it", .0.display())]
    OutputExists(PathBuf),
    #[error(
        "{} holds an unfinished export of {theirs}, not of {ours}; finish it with the same request, or remove it and {} first",
        partial.display(), record.display()
    )]
    ForeignPartial {
        partial: PathBuf,
        record: PathBuf,
        theirs: String,
        ours: String,
    },
    #[error(
        "{key} does not match its manifest: {detail}; the export stopped and nothing after it was written (`callvault verify` checks the whole recording)"
    )]
    Mismatch { key: String, detail: String },
    #[error("{key} is missing from the store although its manifest lists it; the export stopped")]
    Missing { key: String },
    #[error("{key} could not be read from the store: {detail}; run the export again to continue")]
    Read { key: String, detail: String },
    #[error("the export was stopped before it was complete; run it again to continue")]
    Stopped,
    #[error("the manifest {key} of recording {recording} is not readable: {detail}")]
    UnreadableManifest {
        recording: i64,
        key: String,
        detail: String,
    },
    #[error("the progress record {} is not readable ({detail}); remove it and its .partial file to start again", path.display())]
    UnreadableRecord { path: PathBuf, detail: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl ExportError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        ExportError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// A finished export.
#[derive(Debug, Clone)]
pub struct Exported {
    pub path: PathBuf,
    pub index: Index,
    /// Entries an earlier run had written and this one kept after reading them back.
    pub kept: usize,
    /// Entries this run wrote.
    pub written: usize,
}

/// Writes the export `order` asks for to `out`, or continues the one a stopped run left
/// there. The database is read only when the export is new.
pub async fn run(
    db: &Db,
    archive: &Archive,
    order: &Order,
    out: &Path,
    progress: Arc<dyn Progress>,
) -> Result<Exported, ExportError> {
    let paths = ExportPaths::new(out);
    if out.exists() {
        return Err(ExportError::OutputExists(out.to_owned()));
    }
    let asked_for = order.selection.clone().checked()?;
    let record = match load_record(&paths).await? {
        Some(record) if record.index.asked_for != asked_for => {
            return Err(ExportError::ForeignPartial {
                partial: paths.partial.clone(),
                record: paths.record.clone(),
                theirs: record.index.asked_for.describe(),
                ours: asked_for.describe(),
            });
        }
        Some(record) => {
            tracing::info!(out = %out.display(), export_id = %record.index.export_id, "continuing an unfinished export");
            record
        }
        None => {
            let index = index::plan(db, archive, order).await?;
            let record = ProgressRecord {
                index,
                written: Vec::new(),
            };
            let (saved, path) = (record.clone(), paths.record.clone());
            blocking(move || saved.save(&path)).await?;
            record
        }
    };
    let index = record.index.clone();
    let writing = tarball::Writing {
        handle: tokio::runtime::Handle::current(),
        store: archive.store().clone(),
        paths: paths.clone(),
        entries: entries::entries(&index),
        record,
        progress,
        mtime: planned_at_secs(&index),
    };
    let written = blocking(move || tarball::write(writing)).await?;
    Ok(Exported {
        path: out.to_owned(),
        index,
        kept: written.kept,
        written: written.written,
    })
}

async fn load_record(paths: &ExportPaths) -> Result<Option<ProgressRecord>, ExportError> {
    let path = paths.record.clone();
    blocking(move || ProgressRecord::load(&path)).await
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ExportError> + Send + 'static,
) -> Result<T, ExportError> {
    tokio::task::spawn_blocking(work).await.map_err(|err| {
        ExportError::io(
            Path::new("export"),
            std::io::Error::other(format!("the export thread stopped: {err}")),
        )
    })?
}

/// Whole seconds of the index's `created_at`: every entry's modification time.
fn planned_at_secs(index: &Index) -> u64 {
    chrono::DateTime::parse_from_rfc3339(&index.created_at)
        .map(|at| at.timestamp().max(0) as u64)
        .unwrap_or(0)
}
