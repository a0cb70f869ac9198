//! Announcing a stopped recording's files: after `file_ready_delay`, RecordingFileStatusUpdated
//! is delivered to every subscriber the way Event Grid delivers (handshake, retries).

use std::sync::Arc;

use serde_json::Value;

use crate::delivery::{self, DeliveryOptions};
use crate::state::{Shared, lock};

/// Delivers `event` to the subscribers set at delivery time, in the background.
pub(crate) fn schedule(shared: Arc<Shared>, event: Value) {
    let runtime = shared.runtime.clone();
    runtime.spawn(async move {
        tokio::time::sleep(shared.recording.file_ready_delay).await;
        let subscribers = lock(&shared.subscribers).clone();
        if subscribers.is_empty() {
            tracing::info!("recording files are ready but the emulator has no subscribers");
        }
        let deliveries = subscribers.iter().map(|subscriber| {
            delivery::deliver(
                &shared,
                subscriber,
                vec![event.clone()],
                DeliveryOptions::default(),
                &shared.retry_delays,
            )
        });
        for report in futures_util::future::join_all(deliveries).await {
            if report.failed > 0 {
                tracing::warn!(?report, "RecordingFileStatusUpdated was not delivered");
            }
        }
    });
}
