//! How far an export has come, told to whoever watches it: a progress bar, log lines, or
//! the exports table.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Called from the writing thread, so implementations only record and return.
pub trait Progress: Send + Sync {
    /// The export's size in files and bytes (`index.json` and `SHA256SUMS` included), and how
    /// much of it an earlier run wrote and this one found intact.
    fn begin(&self, files: u64, bytes: u64, kept_files: u64, kept_bytes: u64);
    /// Bytes of the entry being written have passed.
    fn advance(&self, bytes: u64);
    /// An entry is written and synced.
    fn file_done(&self, path: &str);
    /// True once whoever watches wants the export to stop (it can be continued later).
    fn stopped(&self) -> bool {
        false
    }
}

/// Counters anyone can read while the export runs (the exports table's job reads them).
#[derive(Debug, Default)]
pub struct Counters {
    pub files: AtomicU64,
    pub bytes: AtomicU64,
    pub files_done: AtomicU64,
    pub bytes_done: AtomicU64,
    stop: AtomicBool,
}

impl Counters {
    /// Asks the export to stop before its next read.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// (files done, files, bytes done, bytes).
    pub fn snapshot(&self) -> (u64, u64, u64, u64) {
        (
            self.files_done.load(Ordering::Relaxed),
            self.files.load(Ordering::Relaxed),
            self.bytes_done.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

impl Progress for Counters {
    fn begin(&self, files: u64, bytes: u64, kept_files: u64, kept_bytes: u64) {
        self.files.store(files, Ordering::Relaxed);
        self.bytes.store(bytes, Ordering::Relaxed);
        self.files_done.store(kept_files, Ordering::Relaxed);
        self.bytes_done.store(kept_bytes, Ordering::Relaxed);
    }

    fn advance(&self, bytes: u64) {
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
    }

    fn file_done(&self, _path: &str) {
        self.files_done.fetch_add(1, Ordering::Relaxed);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}
