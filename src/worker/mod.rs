//! The workers: claim due jobs, transfer chunks with a renewed lease, record the outcome.

pub mod manifest;
pub mod retry;
mod runner;
mod signed_manifest;
mod step;
pub mod transfer;

use std::sync::Arc;

use crate::acs::{AcsClient, UrlGuard};
use crate::metrics::Metrics;
use crate::queue::Db;
use crate::storage::Archive;

pub use runner::{Worker, WorkerOptions};
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
