//! What the HTTP handlers share. It wires nothing: `app` builds it, handlers read it, so the
//! parts that serve requests need not know how the process is put together.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::config::Settings;
use crate::ingest::Intake;
use crate::metrics::Metrics;
use crate::queue::Db;
use crate::storage::Archive;

/// Everything the HTTP handlers share.
pub struct AppState {
    pub settings: Settings,
    pub db: Db,
    pub archive: Archive,
    pub intake: Intake,
    pub metrics: Arc<Metrics>,
    /// Wakes this replica's export runner when an export is queued.
    pub export_wake: Arc<Notify>,
}
