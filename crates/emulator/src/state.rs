//! What a running emulator shares between its HTTP workers and its handle.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::documents::{Document, DocumentSpec, DocumentUrls};
use crate::faults::{ActiveFault, Fault};
use crate::recording::{RecordingConfig, Registry};

/// One request the emulator answered on its ACS routes (the `/emulator/` control routes are
/// not recorded, so tests see exactly what a client sent to "ACS").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    /// `GET`, `DELETE`, …
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// The status answered.
    pub status: u16,
    /// Whether the request carried a valid ACS signature.
    pub signed_ok: bool,
}

/// Marks, in a request's extensions, whether its signature was checked and held.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SignedOk(pub(crate) bool);

/// Documents and their faults, under one lock so a GET sees both consistently.
#[derive(Default)]
pub(crate) struct Store {
    pub(crate) documents: HashMap<String, Document>,
    /// Kept apart from documents so a fault can be set before its document is added.
    pub(crate) faults: HashMap<String, ActiveFault>,
}

/// State shared by every worker of the emulator's HTTP server and by its handle.
pub(crate) struct Shared {
    /// `http://host:port/`, the ACS endpoint clients are given.
    pub(crate) endpoint: url::Url,
    /// `host:port` of the endpoint: the host every signature must cover.
    pub(crate) host: String,
    /// Raw access key bytes.
    pub(crate) key: Vec<u8>,
    /// How long documents are served after their `created_at`.
    pub(crate) retention: chrono::Duration,
    /// Added to the wall clock when judging retention.
    pub(crate) clock_offset: Mutex<chrono::Duration>,
    /// Waits between delivery attempts of a batch.
    pub(crate) retry_delays: Vec<Duration>,
    pub(crate) store: Mutex<Store>,
    pub(crate) requests: Mutex<Vec<RequestRecord>>,
    /// Where `POST /emulator/deliver` sends events.
    pub(crate) subscribers: Mutex<Vec<url::Url>>,
    /// Validation codes whose `validationUrl` was visited (the manual handshake).
    pub(crate) visited_validation_codes: Mutex<HashSet<String>>,
    /// The client that delivers events.
    pub(crate) http: reqwest::Client,
    /// How recordings are chunked and timed.
    pub(crate) recording: RecordingConfig,
    /// Recordings and calls of the control API.
    pub(crate) recordings: Mutex<Registry>,
    /// The runtime the emulator was started on: background deliveries run there, not on
    /// an HTTP worker's, so they outlive the request that caused them.
    pub(crate) runtime: tokio::runtime::Handle,
    /// Event Grid namespace topics with pull delivery.
    pub(crate) namespace: crate::namespace::Namespace,
    /// Storage queues recording events are also put into.
    pub(crate) queues: Mutex<Vec<crate::queue_destination::QueueDestination>>,
    /// Entra ID tokens on webhook deliveries, and the keys that verify them.
    pub(crate) entra: crate::entra::Entra,
}

impl Shared {
    /// The emulator's idea of now, for retention.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        Utc::now() + *lock(&self.clock_offset)
    }
}

/// Locks `mutex`, going on with the data if a panicking thread poisoned it: every update
/// here is a single insert or push, so the data cannot be left half-changed.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The operations behind both the Rust handle and the HTTP control surface.
impl Shared {
    pub(crate) fn add_document(&self, spec: DocumentSpec) -> DocumentUrls {
        let urls = DocumentUrls::on(&self.endpoint, &spec.document_id);
        let id = spec.document_id.clone();
        lock(&self.store).documents.insert(id, Document::new(spec));
        urls
    }

    pub(crate) fn set_fault(&self, document_id: &str, fault: Fault) {
        lock(&self.store)
            .faults
            .insert(document_id.to_owned(), ActiveFault::new(fault));
    }

    pub(crate) fn is_deleted(&self, document_id: &str) -> bool {
        lock(&self.store)
            .documents
            .get(document_id)
            .is_some_and(|document| document.deleted)
    }

    pub(crate) fn media_len(&self, document_id: &str) -> Option<u64> {
        lock(&self.store)
            .documents
            .get(document_id)
            .map(|document| document.media.len())
    }

    /// Hashes outside the lock, once per document.
    pub(crate) fn media_sha256(&self, document_id: &str) -> Option<String> {
        let (media, cell) = {
            let store = lock(&self.store);
            let document = store.documents.get(document_id)?;
            (document.media.clone(), document.media_sha256.clone())
        };
        Some(cell.get_or_init(|| media.sha256_hex()).clone())
    }

    pub(crate) fn metadata_bytes(&self, document_id: &str) -> Option<Bytes> {
        lock(&self.store)
            .documents
            .get(document_id)
            .map(|document| document.metadata.clone())
    }
}
