//! The workers: claim due jobs, transfer chunks with a renewed lease, record the outcome.

mod archived_event;
pub mod chunk_timing;
pub mod cleanup;
pub mod completeness;
pub mod manifest;
pub mod retry;
mod runner;
mod signed_manifest;
mod step;
pub mod transfer;
pub mod uploads;
pub mod verifier;
pub mod verify_pacing;

use std::sync::Arc;

use crate::acs::{AcsClient, UrlGuard};
use crate::metrics::Metrics;
use crate::queue::Db;
use crate::storage::Archive;

pub use runner::{DEFAULT_DURATION_TOLERANCE_MS, Worker, WorkerOptions};
pub use step::StepOutcome;

/// What a transfer needs from the outside world.
#[derive(Clone)]
pub struct WorkerContext {
    pub db: Db,
    pub archive: Archive,
    pub acs: AcsClient,
    pub guard: UrlGuard,
    pub metrics: Arc<Metrics>,
}
