//! Which sinks take which event types, and how a new row wakes a sink's dispatcher.

use std::sync::Arc;

use tokio::sync::Notify;

use super::EventType;

/// A configured sink, as far as the outbox needs it.
#[derive(Debug, Clone)]
pub struct SinkRoute {
    pub name: String,
    pub types: Vec<EventType>,
    /// Told after a commit that wrote rows for this sink, so its dispatcher need not wait for
    /// its next poll.
    pub wake: Arc<Notify>,
}

/// The `source` every event carries and the sinks events go to. With no sink, no row is
/// ever written.
#[derive(Debug, Clone, Default)]
pub struct EventRoutes {
    source: String,
    sinks: Vec<SinkRoute>,
}

impl EventRoutes {
    pub fn new(source: impl Into<String>, sinks: Vec<SinkRoute>) -> Self {
        Self {
            source: source.into(),
            sinks,
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn sinks(&self) -> &[SinkRoute] {
        &self.sinks
    }

    /// True when some sink takes events of `event_type`.
    pub fn wants(&self, event_type: EventType) -> bool {
        self.sinks_for(event_type).next().is_some()
    }

    pub(super) fn sinks_for(&self, event_type: EventType) -> impl Iterator<Item = &SinkRoute> {
        self.sinks
            .iter()
            .filter(move |sink| sink.types.contains(&event_type))
    }

    /// Wakes the dispatchers of the sinks that take `event_type` (after the commit).
    pub fn wake(&self, event_type: EventType) {
        for sink in self.sinks_for(event_type) {
            sink.wake.notify_one();
        }
    }

    pub fn wake_all(&self) {
        for sink in &self.sinks {
            sink.wake.notify_one();
        }
    }
}
