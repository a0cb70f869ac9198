//! Durable events about recordings (archived, failed, erased, verify_failed) for the next
//! stage of a pipeline: the sinks configured in `[[events.sinks]]` and the dispatcher that
//! delivers the outbox (`crate::queue::outbox`) to them, at least once and in order per
//! recording.

mod dispatcher;
mod eventgrid_topic;
mod http;
pub mod signature;
mod storage_queue;
mod webhook;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::sync::Notify;

use crate::config::{EventsSettings, SinkKind, SinkSettings};
use crate::queue::outbox::{EventRoutes, EventType, SinkRoute};

pub use dispatcher::{Backoff, run};
pub use eventgrid_topic::EventGridTopicSink;
pub use http::Sent;
pub use storage_queue::StorageQueueSink;
pub use webhook::WebhookSink;

/// Where one sink's deliveries go.
#[derive(Debug, Clone)]
pub enum Target {
    Webhook(WebhookSink),
    StorageQueue(StorageQueueSink),
    EventGridTopic(EventGridTopicSink),
}

/// A configured sink, ready to deliver.
#[derive(Debug)]
pub struct Sink {
    pub name: String,
    pub target: Target,
    pub concurrency: usize,
    /// Told when a commit wrote rows for this sink.
    pub wake: Arc<Notify>,
    /// Set when the receiver answered 410 Gone (and kept in the database, migration 0017):
    /// nothing more is sent until an operator enables the sink.
    pub disabled: AtomicBool,
}

/// Every sink of `[events]`, and the routes the outbox writes rows for.
#[derive(Debug, Clone, Default)]
pub struct Events {
    pub sinks: Vec<Arc<Sink>>,
    pub routes: EventRoutes,
    pub backoff: Backoff,
    pub max_attempts: i64,
    pub lease: Duration,
    pub poll_interval: Duration,
}

impl Events {
    /// Builds the sinks of validated settings.
    pub fn from_settings(settings: &EventsSettings) -> Result<Self, String> {
        let timeout = Duration::from_secs(settings.request_timeout_secs);
        let client = http::client(timeout, settings.allow_private_addresses)?;
        let mut sinks = Vec::new();
        let mut routes = Vec::new();
        for sink in &settings.sinks {
            let built = Arc::new(Sink {
                name: sink.name.clone(),
                target: target(sink, client.clone())?,
                concurrency: sink.concurrency(settings),
                wake: Arc::new(Notify::new()),
                disabled: AtomicBool::new(false),
            });
            routes.push(route(sink, built.wake.clone()));
            sinks.push(built);
        }
        Ok(Self {
            sinks,
            routes: EventRoutes::new(settings.source(), routes),
            backoff: Backoff {
                initial: Duration::from_millis(settings.backoff_initial_ms),
                max: Duration::from_millis(settings.backoff_max_ms),
            },
            max_attempts: i64::from(settings.max_attempts),
            // A delivery cannot outlive its timeout; the margin covers recording its outcome.
            lease: timeout + Duration::from_secs(5),
            poll_interval: Duration::from_millis(settings.poll_interval_ms),
        })
    }
}

/// The routes alone, for a command that writes events and leaves their delivery to `serve`
/// (its dispatchers find the rows at their next poll).
pub fn routes(settings: &EventsSettings) -> EventRoutes {
    let sinks = settings
        .sinks
        .iter()
        .map(|sink| route(sink, Arc::new(Notify::new())))
        .collect();
    EventRoutes::new(settings.source(), sinks)
}

fn route(sink: &SinkSettings, wake: Arc<Notify>) -> SinkRoute {
    SinkRoute {
        name: sink.name.clone(),
        types: types_of(sink),
        wake,
    }
}

fn types_of(sink: &SinkSettings) -> Vec<EventType> {
    if sink.types.is_empty() {
        return EventType::ALL.to_vec();
    }
    sink.types
        .iter()
        .filter_map(|name| name.parse().ok())
        .collect()
}

fn target(sink: &SinkSettings, client: reqwest::Client) -> Result<Target, String> {
    let url = url::Url::parse(&sink.url).map_err(|err| format!("sink `{}`: {err}", sink.name))?;
    Ok(match sink.kind {
        SinkKind::Webhook => Target::Webhook(WebhookSink {
            url,
            key: signature::SigningKey::from_secret(sink.secret.expose())
                .ok_or_else(|| format!("sink `{}`: the secret is not whsec_…", sink.name))?,
            client,
        }),
        SinkKind::StorageQueue => Target::StorageQueue(StorageQueueSink::new(
            url,
            &sink.account_key,
            &sink.sas,
            client,
        )),
        SinkKind::EventgridTopic => Target::EventGridTopic(EventGridTopicSink {
            url,
            key: sink.secret.clone(),
            client,
        }),
    })
}
