//! The ACS emulator: Azure Communication Services call recording, faithful to docs/protocol.md so
//! callvault can be tested end to end without Azure. It has the recording control API of
//! both generations (start, state, pause, resume, stop, RecordingStateChanged callbacks;
//! a stopped recording becomes chunks of WAV, MP3 or MP4 media with metadata), the download
//! side (HMAC-verified GA and preview download routes, ranges, deletion, 24 h retention,
//! faults) and Event Grid's delivery: to webhooks (handshakes, batches, retries, duplicates,
//! optionally with Entra ID bearer tokens whose keys it serves), into Azure Storage Queues,
//! and through a namespace's pull API.
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! use callvault_emulator::{DocumentSpec, Emulator, EmulatorConfig, MediaSpec};
//! let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let emulator = Emulator::start(listener, EmulatorConfig::default()).await?;
//! let urls = emulator.add_document(DocumentSpec {
//!     document_id: "0-eus-d1-abc".into(),
//!     media: MediaSpec::Synthetic { len: 1 << 30, seed: 1 },
//!     metadata: None,
//!     call_id: "call-1".into(),
//!     chunk_index: 0,
//!     created_at: chrono::Utc::now(),
//! });
//! println!("{} serves {}", emulator.connection_string(), urls.content);
//! emulator.stop().await;
//! # Ok(()) }
//! ```

mod auth;
mod config;
mod control;
mod control_error;
mod delivery;
mod documents;
mod entra;
mod errors;
pub mod events;
mod faults;
mod handshake;
mod media;
mod namespace;
mod queue_control;
mod queue_delivery;
mod queue_destination;
mod range;
mod recording;
mod routes;
mod state;
mod tls;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::{ServerHandle, Service};
use actix_web::{App, HttpMessage, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

pub use auth::AuthError;
pub use config::{EmulatorConfig, event_grid_retry_schedule};
pub use delivery::{DeliveryOptions, DeliveryReport, SUBSCRIPTION_NAME, Schema};
pub use documents::{DocumentSpec, DocumentUrls, generated_metadata};
pub use entra::{EVENT_GRID_APP_ID, EVENT_GRID_ROLE, EntraError, EntraOptions, TokenVersion};
pub use events::{
    ChunkEvent, call_leg_state_changed, recording_file_status_updated, to_cloud_event,
};
pub use faults::Fault;
pub use media::{Audio, MediaSpec, Mp3, Mp4, Wav, fill_synthetic, tone_hz};
pub use namespace::{DeadLettered, NamespaceOptions, SubscriptionCounts};
pub use queue_delivery::QueueReport;
pub use queue_destination::{QueueDestination, QueueDestinationError};
pub use recording::{RecordingConfig, RecordingSnapshot};
pub use state::RequestRecord;
pub use tls::{SelfSignedTls, TlsError};

use state::{Shared, SignedOk, lock};

/// A running emulator. Clones are handles to the same emulator.
#[derive(Clone)]
pub struct Emulator {
    shared: Arc<Shared>,
    server: ServerHandle,
    task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Emulator {
    /// Starts serving on `listener`. An unspecified bind address (0.0.0.0, ::) is advertised
    /// as loopback, since clients cannot connect to it.
    pub async fn start(listener: TcpListener, config: EmulatorConfig) -> std::io::Result<Emulator> {
        Self::serve(listener, config, None).await
    }

    /// As [`Emulator::start`], over HTTPS with `tls`'s certificate: the endpoint and the
    /// connection string say `https://`.
    pub async fn start_tls(
        listener: TcpListener,
        config: EmulatorConfig,
        tls: SelfSignedTls,
    ) -> std::io::Result<Emulator> {
        Self::serve(listener, config, Some(tls)).await
    }

    async fn serve(
        listener: TcpListener,
        config: EmulatorConfig,
        tls: Option<SelfSignedTls>,
    ) -> std::io::Result<Emulator> {
        let bound = listener.local_addr()?;
        let advertised = match bound.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::new(Ipv4Addr::LOCALHOST.into(), bound.port())
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::new(Ipv6Addr::LOCALHOST.into(), bound.port())
            }
            _ => bound,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let endpoint =
            url::Url::parse(&format!("{scheme}://{advertised}/")).map_err(std::io::Error::other)?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(10))
            .user_agent("callvault-emulator (Event Grid delivery)")
            .build()
            .map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            host: callvault_acs_protocol::signing::authority(&endpoint),
            endpoint,
            key: config.access_key,
            retention: config.retention,
            clock_offset: Mutex::new(config.clock_offset),
            retry_delays: config.delivery_retry_delays,
            store: Mutex::default(),
            requests: Mutex::default(),
            subscribers: Mutex::default(),
            visited_validation_codes: Mutex::default(),
            http,
            recording: config.recording,
            recordings: Mutex::default(),
            runtime: tokio::runtime::Handle::current(),
            namespace: namespace::Namespace::default(),
            queues: Mutex::default(),
            entra: entra::Entra::default(),
        });
        if let Some(options) = config.entra {
            shared
                .entra
                .configure(Some(options))
                .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidInput, err))?;
        }
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || {
            let recorder = data.clone();
            App::new()
                .app_data(data.clone())
                .wrap_fn(move |request, service| {
                    // Control and identity requests are not ACS's: tests see only the latter.
                    let path = request.path();
                    let recorded = (!path.starts_with("/emulator/")
                        && !entra::routes::is_identity_path(path))
                    .then(|| {
                        let range = request
                            .headers()
                            .get(actix_web::http::header::RANGE)
                            .and_then(|value| value.to_str().ok())
                            .map(str::to_owned);
                        (
                            request.method().to_string(),
                            request.path().to_owned(),
                            range,
                        )
                    });
                    let shared = recorder.clone();
                    let response = service.call(request);
                    async move {
                        let response = response.await?;
                        if let Some((method, path, range)) = recorded {
                            let signed_ok = response
                                .request()
                                .extensions()
                                .get::<SignedOk>()
                                .is_some_and(|signed| signed.0);
                            lock(&shared.requests).push(RequestRecord {
                                method,
                                path,
                                range,
                                status: response.status().as_u16(),
                                signed_ok,
                            });
                        }
                        Ok(response)
                    }
                })
                .configure(routes::configure)
                .configure(recording::configure)
                .configure(control::configure)
                .configure(namespace::configure)
                .configure(entra::routes::configure)
                .default_service(web::to(routes::not_found))
        })
        .workers(2)
        .disable_signals()
        .shutdown_timeout(1);
        let server = match &tls {
            Some(tls) => server.listen_rustls_0_23(listener, tls.server_config())?,
            None => server.listen(listener)?,
        }
        .run();
        let server_handle = server.handle();
        let task = tokio::spawn(async move {
            if let Err(err) = server.await {
                tracing::error!(error = %err, "emulator HTTP server stopped with an error");
            }
        });
        tracing::info!(endpoint = %shared.endpoint, "ACS emulator started");
        Ok(Emulator {
            shared,
            server: server_handle,
            task: Arc::new(Mutex::new(Some(task))),
        })
    }

    /// The ACS endpoint, `http://127.0.0.1:PORT/` (`https://` when started with TLS).
    pub fn endpoint(&self) -> url::Url {
        self.shared.endpoint.clone()
    }

    /// `endpoint=http://127.0.0.1:PORT/;accesskey=BASE64`, as ACS's SDKs and callvault read it.
    pub fn connection_string(&self) -> String {
        format!(
            "endpoint={};accesskey={}",
            self.shared.endpoint,
            STANDARD.encode(&self.shared.key)
        )
    }

    /// Adds (or replaces) a document and returns its GA download URLs.
    pub fn add_document(&self, spec: DocumentSpec) -> DocumentUrls {
        self.shared.add_document(spec)
    }

    /// Sets the fault of a document, replacing any previous one (its counts start afresh).
    /// The document need not exist yet.
    pub fn set_fault(&self, document_id: &str, fault: Fault) {
        self.shared.set_fault(document_id, fault)
    }

    /// Every request seen on the ACS routes, in the order they were answered.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.requests).clone()
    }

    /// Whether the document was deleted through its `deleteLocation`.
    pub fn is_deleted(&self, document_id: &str) -> bool {
        self.shared.is_deleted(document_id)
    }

    /// Lowercase hex SHA-256 of the document's full media, computed by streaming the
    /// generator (once, then remembered). Blocks for seconds on GiB synthetic media.
    pub fn media_sha256(&self, document_id: &str) -> Option<String> {
        self.shared.media_sha256(document_id)
    }

    /// The metadata document exactly as served.
    pub fn metadata_bytes(&self, document_id: &str) -> Option<bytes::Bytes> {
        self.shared.metadata_bytes(document_id)
    }

    /// Creates an Event Grid namespace topic's pull subscription (the options apply to every
    /// subscription). Its endpoint is [`Emulator::endpoint`]; its key, as
    /// `Authorization: SharedAccessKey KEY`, is [`Emulator::namespace_key`].
    pub fn namespace_subscription(
        &self,
        topic: &str,
        subscription: &str,
        options: NamespaceOptions,
    ) {
        self.shared.namespace.create(topic, subscription, options);
    }

    /// The namespace's access key (the emulator's ACS key, base64).
    pub fn namespace_key(&self) -> String {
        STANDARD.encode(&self.shared.key)
    }

    /// Publishes CloudEvents to `topic`, as `POST /topics/{topic}:publish` does; false when
    /// the topic has no subscription.
    pub fn publish_to_namespace(&self, topic: &str, events: Vec<serde_json::Value>) -> bool {
        self.shared.namespace.publish(topic, events)
    }

    /// What happened on a namespace subscription so far.
    pub fn namespace_counts(&self, topic: &str, subscription: &str) -> SubscriptionCounts {
        self.shared.namespace.counts(topic, subscription)
    }

    /// The events a namespace subscription dead-lettered, with the reason.
    pub fn namespace_dead_letters(&self, topic: &str, subscription: &str) -> Vec<DeadLettered> {
        self.shared.namespace.dead_letters(topic, subscription)
    }

    /// Answers the next `tokens` acknowledged lock tokens as failed, leaving their events
    /// locked (a fault: the events come again once their lock lapses).
    pub fn fail_namespace_acknowledgements(&self, topic: &str, subscription: &str, tokens: u32) {
        self.shared
            .namespace
            .fail_acknowledgements(topic, subscription, tokens);
    }

    /// Delivers `events` to `subscriber` as Event Grid would; see [`DeliveryOptions`].
    pub async fn deliver(
        &self,
        subscriber: &url::Url,
        events: Vec<serde_json::Value>,
        options: DeliveryOptions,
    ) -> DeliveryReport {
        delivery::deliver(
            &self.shared,
            subscriber,
            events,
            options,
            &self.shared.retry_delays,
        )
        .await
    }

    /// The webhooks `POST /emulator/deliver` delivers to.
    pub fn set_subscribers(&self, subscribers: Vec<url::Url>) {
        *lock(&self.shared.subscribers) = subscribers;
    }

    /// The storage queues every recording event is also put into, as an Event Grid
    /// subscription with a storage queue destination does (replacing earlier ones).
    pub fn set_queue_destinations(&self, queues: Vec<QueueDestination>) {
        *lock(&self.shared.queues) = queues;
    }

    /// Puts `events` into `queue` as Event Grid does (one message each, base64 JSON),
    /// retrying on the emulator's schedule.
    pub async fn deliver_to_queue(
        &self,
        queue: &QueueDestination,
        events: &[serde_json::Value],
    ) -> QueueReport {
        queue_delivery::deliver(&self.shared, queue, events, &self.shared.retry_delays).await
    }

    /// Turns Entra ID bearer tokens on webhook deliveries on (or changes what they say; the
    /// signing key stays, so a webhook's cached key set still verifies them), or off.
    pub fn set_entra(&self, options: Option<EntraOptions>) -> Result<(), EntraError> {
        self.shared.entra.configure(options)
    }

    /// Where the tenant's signing keys are served (for `ingest.entra.keys_url`), while
    /// Entra tokens are on: `http://127.0.0.1:PORT/{tenant}/discovery/v2.0/keys`.
    pub fn entra_keys_url(&self) -> Option<url::Url> {
        let options = self.shared.entra.options()?;
        Some(entra::routes::keys_url(
            &self.shared.endpoint,
            &options.tenant_id,
        ))
    }

    /// Registers the participants (ACS user ids such as `8:acs:…`, in the order they
    /// joined) of the call with `server_call_id` (for the preview API: the
    /// `conversationId`), replacing earlier ones; answers the call's `callId`. A call that
    /// was never registered has two generated participants. The participants of a
    /// recording's metadata and unmixed channels are those registered when it stops.
    pub fn register_call(
        &self,
        server_call_id: impl Into<String>,
        participants: impl IntoIterator<Item = impl Into<String>>,
    ) -> String {
        self.shared.register_call(
            &server_call_id.into(),
            participants.into_iter().map(Into::into).collect(),
        )
    }

    /// Establishes a new leg of the call `conversation_id` names: CallLegStateChanged
    /// `Established` is delivered to every subscriber (see [`Emulator::set_subscribers`]) in
    /// the background. Answers the leg's id.
    pub fn establish_call_leg(&self, conversation_id: &str) -> String {
        self.shared.establish_leg(conversation_id)
    }

    /// Makes the next `times` recording start requests (GA or preview) answer `status`
    /// without starting anything.
    pub fn fail_recording_starts(&self, status: u16, times: u32) {
        self.shared.fail_starts(status, times)
    }

    /// The ids of the recordings started for a serverCallId or conversationId, oldest first.
    pub fn recordings_of_call(&self, call_key: &str) -> Vec<String> {
        self.shared.recordings_of(call_key)
    }

    /// The emulator's view of a recording started through the control API.
    pub fn recording(&self, recording_id: &str) -> Option<RecordingSnapshot> {
        self.shared.recording_snapshot(recording_id)
    }

    /// Moves the emulator's retention clock (a test jumping past the 24 h deadline).
    pub fn set_clock_offset(&self, offset: chrono::Duration) {
        *lock(&self.shared.clock_offset) = offset;
    }

    /// Stops serving; in-flight downloads get a second to finish.
    pub async fn stop(self) {
        self.server.stop(true).await;
        let task = lock(&self.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}
