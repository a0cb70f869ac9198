//! Announcing a stopped recording's files: after `file_ready_delay`, RecordingFileStatusUpdated
//! is delivered to every subscriber the way Event Grid delivers (handshake, retries), and put
//! into every storage queue destination.

use std::sync::Arc;

use serde_json::Value;

use crate::delivery::{self, DeliveryOptions};
use crate::queue_delivery;
use crate::state::{Shared, lock};

/// Delivers `event` to the subscribers set at delivery time, once the files are ready, in
/// the background.
pub(crate) fn schedule(shared: Arc<Shared>, event: Value) {
    let delay = shared.recording.file_ready_delay;
    deliver_after(shared, event, delay);
}

/// Delivers `event` to the subscribers set at delivery time, after `delay`, in the background.
pub(crate) fn deliver_after(shared: Arc<Shared>, event: Value, delay: std::time::Duration) {
    let runtime = shared.runtime.clone();
    runtime.spawn(async move {
        tokio::time::sleep(delay).await;
        let subscribers = lock(&shared.subscribers).clone();
        if subscribers.is_empty() && lock(&shared.queues).is_empty() {
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
        let events = [event.clone()];
        let queued = queue_delivery::deliver_to_all(&shared, &events, &shared.retry_delays);
        let (reports, queue_reports) =
            futures_util::future::join(futures_util::future::join_all(deliveries), queued).await;
        for report in reports {
            if report.failed > 0 {
                let event_type = event["eventType"].as_str().unwrap_or_default();
                tracing::warn!(?report, event_type, "emulated event was not delivered");
            }
        }
        for report in queue_reports {
            if report.failed > 0 {
                let event_type = event["eventType"].as_str().unwrap_or_default();
                tracing::warn!(
                    ?report,
                    event_type,
                    "emulated event was not put into the queue"
                );
            }
        }
    });
}
