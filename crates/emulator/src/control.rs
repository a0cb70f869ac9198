//! The unsigned control surface, so an integration test in any language can drive the
//! emulator started by `callvault emulator`. Every body is JSON; errors are
//! `{"code","message"}`.
//!
//! - `POST /emulator/documents` with `{"documentId", "callId"?, "chunkIndex"?, "bytes"?: N,
//!   "seed"?: N, "content"?: BASE64, "metadata"?: BASE64, "createdAt"?: RFC 3339}` adds a
//!   chunk: `content` gives the media bytes, otherwise `bytes` synthetic ones (default 1 MiB)
//!   from `seed`; metadata is generated unless given. Answers 201 with
//!   `{"documentId", "bytes", "contentLocation", "metadataLocation", "deleteLocation"}`.
//! - `GET /emulator/documents/{id}` answers `{"documentId", "bytes", "deleted", "mediaSha256"}`.
//! - `POST /emulator/documents/{id}/fault` with a fault, e.g. `{"kind":"status","status":503,"times":2}`
//!   (kinds: `status`, `resetAfter` {afterBytes,times}, `throttle` {bytesPerSecond},
//!   `emptyBody` {times}); answers 204.
//! - `POST /emulator/deliver` with `{"events": [...], "schema"?: "eventGrid"|"cloudEvents",
//!   "duplicate"?, "batchSize"?, "handshake"?, "retryDelaysMs"?: [N, ...]}` delivers to every
//!   subscriber and answers `{"reports": [{"subscriber", "attempts", "delivered", "failed",
//!   "validated"}]}` once done; every queue destination (`/emulator/queues`, in
//!   `queue_control`) gets the events too, one message each, reported as `{"queue",
//!   "attempts", "delivered", "failed"}`. Without `retryDelaysMs` Event Grid's real schedule applies,
//!   and a failing subscriber keeps the call waiting for hours: tests pass short delays.
//! - `POST /emulator/calls` with `{"serverCallId", "participants": ["8:acs:…", …],
//!   "established"?: true}` sets the participants of a call (for the preview API,
//!   `serverCallId` is the `conversationId`); answers 201 with `{"serverCallId", "callId",
//!   "participants"}`. With `established`, a server-initiated call's leg is established: a
//!   CallLegStateChanged `Established` with a new leg id and the `conversationId` is
//!   delivered to every subscriber in the background, and the answer adds `"callLegId"`.
//! - `GET /emulator/recordings/{recordingId}` answers what the emulator knows of a recording
//!   started through the control API: state, types, times, participants, document ids and
//!   its RecordingFileStatusUpdated event once stopped.
//! - `GET /emulator/requests` answers every request seen on the ACS routes, in order.
//! - `GET /emulator/validate?id=CODE` is the `validationUrl` of validation events (the
//!   manual handshake).
//! - `/emulator/queues` (storage queue destinations) and `/emulator/entra` (bearer tokens on
//!   webhook deliveries) are described in `queue_control` and `entra/control.rs`.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::control_error::{ControlError, json_config};
use crate::delivery::{self, DeliveryOptions};
use crate::documents::DocumentSpec;
use crate::faults::Fault;
use crate::media::MediaSpec;
use crate::state::{Shared, lock};

/// Synthetic media length when a new document names neither `bytes` nor `content`.
const DEFAULT_MEDIA_BYTES: u64 = 1 << 20;

/// Mounts the control routes under `/emulator`.
pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config.service(
        web::scope("/emulator")
            .app_data(json_config().limit(256 << 20))
            .route("/documents", web::post().to(add_document))
            .route("/documents/{id}", web::get().to(document))
            .route("/documents/{id}/fault", web::post().to(set_fault))
            .route("/deliver", web::post().to(deliver))
            .route("/calls", web::post().to(register_call))
            .route("/recordings/{id}", web::get().to(recording))
            .route("/requests", web::get().to(requests))
            .route("/validate", web::get().to(validate))
            .configure(crate::queue_control::configure)
            .configure(crate::entra::configure_control),
    );
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewDocument {
    document_id: String,
    #[serde(default)]
    call_id: Option<String>,
    #[serde(default)]
    chunk_index: u32,
    bytes: Option<u64>,
    #[serde(default)]
    seed: u64,
    content: Option<String>,
    metadata: Option<String>,
    created_at: Option<DateTime<Utc>>,
}

fn decode(field: &'static str, value: &str) -> Result<Bytes, ControlError> {
    STANDARD.decode(value).map(Bytes::from).map_err(|_| {
        ControlError::bad_request("invalid_base64", format!("`{field}` is not base64"))
    })
}

async fn add_document(
    shared: web::Data<Shared>,
    body: web::Json<NewDocument>,
) -> Result<HttpResponse, ControlError> {
    let new = body.into_inner();
    if new.document_id.is_empty() {
        return Err(ControlError::bad_request(
            "invalid_document",
            "`documentId` is empty",
        ));
    }
    let media = match &new.content {
        Some(content) => MediaSpec::Bytes(decode("content", content)?),
        None => MediaSpec::Synthetic {
            len: new.bytes.unwrap_or(DEFAULT_MEDIA_BYTES),
            seed: new.seed,
        },
    };
    let metadata = new
        .metadata
        .as_deref()
        .map(|metadata| decode("metadata", metadata))
        .transpose()?;
    let bytes = media.len();
    let urls = shared.add_document(DocumentSpec {
        call_id: new
            .call_id
            .unwrap_or_else(|| format!("call-{}", new.document_id)),
        document_id: new.document_id.clone(),
        media,
        metadata,
        chunk_index: new.chunk_index,
        created_at: new.created_at.unwrap_or_else(|| shared.now()),
    });
    Ok(HttpResponse::Created().json(json!({
        "documentId": new.document_id,
        "bytes": bytes,
        "contentLocation": urls.content.as_str(),
        "metadataLocation": urls.metadata.as_str(),
        "deleteLocation": urls.delete.as_str(),
    })))
}

async fn document(
    shared: web::Data<Shared>,
    id: web::Path<String>,
) -> Result<HttpResponse, ControlError> {
    let id = id.into_inner();
    let bytes = shared
        .media_len(&id)
        .ok_or_else(|| ControlError::not_found(format!("no document `{id}`")))?;
    let hashing = shared.clone();
    let hash_id = id.clone();
    // A synthetic GiB takes seconds to hash: keep it off the server's event loop.
    let sha256 = web::block(move || hashing.media_sha256(&hash_id))
        .await
        .map_err(|err| ControlError::internal(err.to_string()))?;
    Ok(HttpResponse::Ok().json(json!({
        "documentId": id,
        "bytes": bytes,
        "deleted": shared.is_deleted(&id),
        "mediaSha256": sha256,
    })))
}

async fn set_fault(
    shared: web::Data<Shared>,
    id: web::Path<String>,
    fault: web::Json<Fault>,
) -> HttpResponse {
    shared.set_fault(&id, fault.into_inner());
    HttpResponse::NoContent().finish()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliverRequest {
    events: Vec<Value>,
    /// Overrides the retry schedule for this delivery, in milliseconds.
    retry_delays_ms: Option<Vec<u64>>,
    #[serde(flatten)]
    options: DeliveryOptions,
}

async fn deliver(
    shared: web::Data<Shared>,
    body: web::Json<DeliverRequest>,
) -> Result<HttpResponse, ControlError> {
    let DeliverRequest {
        events,
        retry_delays_ms,
        options,
    } = body.into_inner();
    let retry_delays = retry_delays_ms.map_or_else(
        || shared.retry_delays.clone(),
        |delays| delays.into_iter().map(Duration::from_millis).collect(),
    );
    let subscribers = lock(&shared.subscribers).clone();
    if subscribers.is_empty() && lock(&shared.queues).is_empty() {
        return Err(ControlError::new(
            actix_web::http::StatusCode::CONFLICT,
            "no_subscribers",
            "the emulator has no subscribers; start it with --subscribe URL or --deliver-to-queue URL",
        ));
    }
    let mut reports = Vec::with_capacity(subscribers.len());
    for subscriber in subscribers {
        let report = delivery::deliver(
            &shared,
            &subscriber,
            events.clone(),
            options.clone(),
            &retry_delays,
        )
        .await;
        let mut entry = serde_json::to_value(&report).unwrap_or_default();
        let mut shown = subscriber.clone();
        shown.set_query(None);
        entry["subscriber"] = json!(shown.as_str());
        reports.push(entry);
    }
    for report in crate::queue_delivery::deliver_to_all(&shared, &events, &retry_delays).await {
        reports.push(serde_json::to_value(&report).unwrap_or_default());
    }
    Ok(HttpResponse::Ok().json(json!({ "reports": reports })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewCall {
    server_call_id: String,
    participants: Vec<String>,
    /// Establish a leg of the call and announce it (CallLegStateChanged).
    #[serde(default)]
    established: bool,
}

async fn register_call(
    shared: web::Data<Shared>,
    body: web::Json<NewCall>,
) -> Result<HttpResponse, ControlError> {
    let NewCall {
        server_call_id,
        participants,
        established,
    } = body.into_inner();
    if server_call_id.trim().is_empty() || participants.iter().any(|id| id.trim().is_empty()) {
        return Err(ControlError::bad_request(
            "invalid_call",
            "`serverCallId` and every participant id must be non-empty",
        ));
    }
    let call_id = shared.register_call(&server_call_id, participants.clone());
    let mut answer = json!({
        "serverCallId": server_call_id,
        "callId": call_id,
        "participants": participants,
    });
    if established {
        answer["callLegId"] = json!(shared.clone().into_inner().establish_leg(&server_call_id));
    }
    Ok(HttpResponse::Created().json(answer))
}

impl Shared {
    /// Establishes a new leg of the call `conversation_id` names: CallLegStateChanged
    /// `Established` goes to every subscriber in the background, as Event Grid sends it for a
    /// server-initiated call. Answers the leg's id.
    pub(crate) fn establish_leg(self: &std::sync::Arc<Self>, conversation_id: &str) -> String {
        let call_leg_id = uuid::Uuid::new_v4().to_string();
        let event = crate::events::call_leg_state_changed(
            &call_leg_id,
            conversation_id,
            "Established",
            Utc::now(),
        );
        crate::recording::deliver_after(self.clone(), event, Duration::ZERO);
        call_leg_id
    }
}

async fn recording(
    shared: web::Data<Shared>,
    id: web::Path<String>,
) -> Result<HttpResponse, ControlError> {
    shared
        .recording_snapshot(&id)
        .map(|snapshot| HttpResponse::Ok().json(snapshot))
        .ok_or_else(|| ControlError::not_found(format!("no recording `{id}`")))
}

async fn requests(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(lock(&shared.requests).clone())
}

#[derive(Debug, Deserialize)]
struct Validation {
    id: String,
}

async fn validate(shared: web::Data<Shared>, query: web::Query<Validation>) -> HttpResponse {
    lock(&shared.visited_validation_codes).insert(query.into_inner().id);
    HttpResponse::Ok().json(json!({ "validated": true }))
}
