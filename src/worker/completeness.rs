//! The duration check made each time a manifest is written: its verdict is kept with the
//! recording, so the admin API shows it without reading the archive, and a recording that turns
//! short is logged and counted while ACS still holds its chunks.

use super::WorkerContext;
use crate::metrics::Metrics;
use crate::queue::integrity::{self, CompletenessRecord};
use crate::queue::{QueueError, now_millis};
use crate::storage::completeness::{Verdict, assess};
use crate::storage::manifest::Manifest;

/// Checks `manifest` of recording `recording` and stores the verdict.
pub async fn check(
    ctx: &WorkerContext,
    recording: i64,
    manifest: &Manifest,
    tolerance_ms: u64,
) -> Result<Verdict, QueueError> {
    let found = assess(manifest, tolerance_ms);
    let record = CompletenessRecord {
        verdict: found.verdict.as_str(),
        covered_ms: found.covered_ms(),
        shortfall_ms: found.shortfall_ms,
        note: found.note.as_deref(),
    };
    let previous =
        integrity::record_completeness(&ctx.db, recording, &record, now_millis()).await?;
    match found.verdict {
        Verdict::Short => {
            if previous.as_deref() != Some(Verdict::Short.as_str()) {
                Metrics::add(&ctx.metrics.recordings_short, 1);
            }
            tracing::error!(
                recording,
                call_id = %manifest.call_id,
                shortfall_ms = found.shortfall_ms,
                "recording is short: {found}; look for a chunk ACS did not announce before ACS deletes the recording"
            );
        }
        Verdict::Unknown => {
            tracing::warn!(recording, call_id = %manifest.call_id, "{found}")
        }
        Verdict::Complete => {
            tracing::debug!(recording, "{found}")
        }
    }
    Ok(found.verdict)
}
