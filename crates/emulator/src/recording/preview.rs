//! The 2021 preview control routes of the seed document, HMAC-verified like every ACS
//! route; `Recordings`, `Pause` and `Resume` match in any case:
//!
//! | request | answer |
//! |---|---|
//! | `POST /conversations/{conversationId}/Recordings` `{operationContext, recordingStateCallbackUri}` | 200 `{recordingId}` |
//!
//! A start may also name `recordingContentType`, `recordingChannelType` and
//! `recordingFormatType` (checked as the GA API checks them; without them the preview records
//! mixed audio + video in MP4), and carry `Repeatability-Request-ID` /
//! `Repeatability-First-Sent`: a repeated request id answers the recording it started.
//! | `GET /conversations/{cid}/recordings/{rid}` | 200 `{recordingState}` |
//! | `DELETE /conversations/{cid}/recordings/{rid}` | 200 `{}` |
//! | `POST /conversations/{cid}/recordings/{rid}/Pause` / `Resume` | 200 `{}` |
//!
//! Errors have the seed's flat shape `{code, message, target, details}`: 401 unsigned; 400
//! when `conversationId` is not Base64Url of an http(s) URL or the body is bad; 404 for an
//! unknown recording (or one of another conversation); 409 when the recording's state does
//! not allow the operation.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::ops::{Action, Failure, Start, Target};
use super::registry::Generation;
use super::request::{self, RecordingTypes};
use crate::errors::preview_error;
use crate::routes::check_signature;
use crate::state::Shared;

/// Mounts the preview routes.
pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/conversations/{cid}/{kind}", web::post().to(start))
        .service(
            web::resource("/conversations/{cid}/{kind}/{rid}")
                .route(web::get().to(state))
                .route(web::delete().to(stop)),
        )
        .route(
            "/conversations/{cid}/{kind}/{rid}/{action}",
            web::post().to(pause_or_resume),
        );
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartBody {
    recording_state_callback_uri: Option<String>,
    recording_content_type: Option<String>,
    recording_channel_type: Option<String>,
    recording_format_type: Option<String>,
}

impl StartBody {
    /// The types asked for; none asked records the preview's own (mixed audio + video MP4).
    fn types(&self) -> Result<RecordingTypes, String> {
        let asked = [
            &self.recording_content_type,
            &self.recording_channel_type,
            &self.recording_format_type,
        ];
        if asked.iter().all(|value| value.is_none()) {
            return Ok(RecordingTypes::PREVIEW);
        }
        RecordingTypes::parse(
            self.recording_content_type.as_deref(),
            self.recording_channel_type.as_deref(),
            self.recording_format_type.as_deref(),
        )
    }
}

fn failed(failure: Failure, target: Option<&str>) -> HttpResponse {
    preview_error(failure.status, &failure.message, target)
}

/// The signature, the `recordings` segment and the conversationId; the refusal, if any.
fn admit(
    request: &HttpRequest,
    body: &[u8],
    shared: &Shared,
    conversation: &str,
    kind: &str,
) -> Option<HttpResponse> {
    if let Err(err) = check_signature(request, body, shared) {
        return Some(preview_error(401, &err.to_string(), None));
    }
    if !kind.eq_ignore_ascii_case("recordings") {
        return Some(preview_error(404, "no such resource", None));
    }
    request::conversation_url(conversation)
        .err()
        .map(|message| preview_error(400, &message, Some("conversationId")))
}

async fn start(
    request: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (conversation, kind) = path.into_inner();
    if let Some(refused) = admit(&request, &body, &shared, &conversation, &kind) {
        return refused;
    }
    let parsed: Result<StartBody, _> = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(StartBody::default())
    } else {
        serde_json::from_slice(&body)
    };
    let checked = parsed
        .map_err(|err| Failure::bad_request(format!("the request body is not valid: {err}")))
        .and_then(|body| {
            let callback = request::callback_uri(body.recording_state_callback_uri.as_deref())
                .map_err(Failure::bad_request)?;
            let types = body.types().map_err(Failure::bad_request)?;
            Ok((callback, types, super::ga::repeatability(&request)?))
        });
    let (callback, types, repeatability_id) = match checked {
        Ok(checked) => checked,
        Err(failure) => return failed(failure, None),
    };
    if let Some(fault) = shared.start_fault() {
        return failed(fault, None);
    }
    let (recording_id, _) = shared.start_recording(Start {
        generation: Generation::Preview,
        call_key: conversation,
        types,
        callback,
        pause_on_start: false,
        repeatability_id,
    });
    HttpResponse::Ok().json(json!({ "recordingId": recording_id }))
}

async fn state(
    request: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
    path: web::Path<(String, String, String)>,
) -> HttpResponse {
    let (conversation, kind, id) = path.into_inner();
    if let Some(refused) = admit(&request, &body, &shared, &conversation, &kind) {
        return refused;
    }
    let target = Target {
        recording_id: &id,
        conversation: Some(&conversation),
    };
    match shared.recording_state(target) {
        Ok(state) => HttpResponse::Ok().json(json!({ "recordingState": state.api_name() })),
        Err(failure) => failed(failure, Some(&id)),
    }
}

async fn stop(
    request: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
    path: web::Path<(String, String, String)>,
) -> HttpResponse {
    let (conversation, kind, id) = path.into_inner();
    if let Some(refused) = admit(&request, &body, &shared, &conversation, &kind) {
        return refused;
    }
    let target = Target {
        recording_id: &id,
        conversation: Some(&conversation),
    };
    match shared.into_inner().stop_recording(target) {
        Ok(()) => HttpResponse::Ok().json(json!({})),
        Err(failure) => failed(failure, Some(&id)),
    }
}

async fn pause_or_resume(
    request: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
    path: web::Path<(String, String, String, String)>,
) -> HttpResponse {
    let (conversation, kind, id, action) = path.into_inner();
    if let Some(refused) = admit(&request, &body, &shared, &conversation, &kind) {
        return refused;
    }
    let action = if action.eq_ignore_ascii_case("pause") {
        Action::Pause
    } else if action.eq_ignore_ascii_case("resume") {
        Action::Resume
    } else {
        return preview_error(404, "no such operation; use Pause or Resume", Some(&action));
    };
    let target = Target {
        recording_id: &id,
        conversation: Some(&conversation),
    };
    match shared.pause_or_resume(target, action) {
        Ok(()) => HttpResponse::Ok().json(json!({})),
        Err(failure) => failed(failure, Some(&id)),
    }
}
