//! The GA control routes, `/calling/recordings`, HMAC-verified like every ACS route:
//!
//! | request | answer |
//! |---|---|
//! | `POST /calling/recordings?api-version=V` | 200 `{recordingId, recordingState}` |
//! | `GET /calling/recordings/{id}?api-version=V` | 200 `{recordingId, recordingState}` |
//! | `DELETE /calling/recordings/{id}?api-version=V` | 204 |
//! | `POST /calling/recordings/{id}:pause` / `:resume` `?api-version=V` | 202 |
//!
//! Errors are `{"error":{code,message,target,details}}`: 401 unsigned or wrongly signed;
//! 400 for a missing or unsupported api-version, a bad body, locator or type combination,
//! or a malformed `Repeatability-First-Sent`; 404 for an unknown id; 409 when the
//! recording's state does not allow the operation (see [`super::machine`]).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::ops::{Action, Failure, Start, Target};
use super::registry::Generation;
use super::request::{self, RecordingTypes};
use crate::errors::acs_error;
use crate::routes::refuse_unsigned;
use crate::state::Shared;

/// Mounts the GA routes.
pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/calling/recordings", web::post().to(start))
        .service(
            web::resource("/calling/recordings/{id}")
                .route(web::get().to(state))
                .route(web::delete().to(stop))
                .route(web::post().to(pause_or_resume)),
        );
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartBody {
    call_locator: Option<CallLocator>,
    recording_state_callback_uri: Option<String>,
    recording_content_type: Option<String>,
    recording_channel_type: Option<String>,
    recording_format_type: Option<String>,
    #[serde(default)]
    pause_on_start: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallLocator {
    kind: Option<String>,
    server_call_id: Option<String>,
}

fn failed(failure: Failure, target: Option<&str>) -> HttpResponse {
    acs_error(failure.status, &failure.message, target)
}

/// The signature, then the api-version; the refusal to answer, if any.
fn admit(request: &HttpRequest, body: &[u8], shared: &Shared) -> Option<HttpResponse> {
    refuse_unsigned(request, body, shared).or_else(|| {
        request::check_api_version(request.query_string())
            .err()
            .map(|message| acs_error(400, &message, Some("api-version")))
    })
}

async fn start(request: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    if let Some(refused) = admit(&request, &body, &shared) {
        return refused;
    }
    let start = match parse_start(&request, &body) {
        Ok(start) => start,
        Err(failure) => return failed(failure, None),
    };
    if let Some(fault) = shared.start_fault() {
        return failed(fault, None);
    }
    let (recording_id, state) = shared.start_recording(start);
    HttpResponse::Ok().json(json!({
        "recordingId": recording_id,
        "recordingState": state.api_name(),
    }))
}

fn parse_start(request: &HttpRequest, body: &[u8]) -> Result<Start, Failure> {
    let body: StartBody = serde_json::from_slice(body)
        .map_err(|err| Failure::bad_request(format!("the request body is not valid: {err}")))?;
    let server_call_id = match body.call_locator {
        Some(CallLocator {
            kind,
            server_call_id: Some(id),
        }) if !id.trim().is_empty()
            && kind
                .as_deref()
                .is_none_or(|kind| kind.eq_ignore_ascii_case("serverCallLocator")) =>
        {
            id
        }
        _ => {
            return Err(Failure::bad_request(
                "callLocator must be {\"kind\": \"serverCallLocator\", \"serverCallId\": \"…\"}",
            ));
        }
    };
    let types = RecordingTypes::parse(
        body.recording_content_type.as_deref(),
        body.recording_channel_type.as_deref(),
        body.recording_format_type.as_deref(),
    )
    .map_err(Failure::bad_request)?;
    let callback = request::callback_uri(body.recording_state_callback_uri.as_deref())
        .map_err(Failure::bad_request)?;
    Ok(Start {
        generation: Generation::Ga,
        call_key: server_call_id,
        types,
        callback,
        pause_on_start: body.pause_on_start,
        repeatability_id: repeatability(request)?,
    })
}

/// `Repeatability-Request-ID`, when sent; a `Repeatability-First-Sent` beside it must be
/// an RFC 1123 date.
pub(super) fn repeatability(request: &HttpRequest) -> Result<Option<String>, Failure> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .filter(|value| !value.is_empty())
    };
    if let Some(first_sent) = header("repeatability-first-sent") {
        chrono::DateTime::parse_from_rfc2822(first_sent).map_err(|_| {
            Failure::bad_request(format!(
                "Repeatability-First-Sent `{first_sent}` is not an RFC 1123 date"
            ))
        })?;
    }
    Ok(header("repeatability-request-id").map(str::to_owned))
}

async fn state(
    request: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
    id: web::Path<String>,
) -> HttpResponse {
    if let Some(refused) = admit(&request, &body, &shared) {
        return refused;
    }
    let target = Target {
        recording_id: &id,
        conversation: None,
    };
    match shared.recording_state(target) {
        Ok(state) => HttpResponse::Ok().json(json!({
            "recordingId": id.as_str(),
            "recordingState": state.api_name(),
        })),
        Err(failure) => failed(failure, Some(&id)),
    }
}

async fn stop(
    request: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
    id: web::Path<String>,
) -> HttpResponse {
    if let Some(refused) = admit(&request, &body, &shared) {
        return refused;
    }
    let target = Target {
        recording_id: &id,
        conversation: None,
    };
    match shared.into_inner().stop_recording(target) {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(failure) => failed(failure, Some(&id)),
    }
}

/// `POST /calling/recordings/{id}:pause` or `:resume` (one path segment).
async fn pause_or_resume(
    request: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
    segment: web::Path<String>,
) -> HttpResponse {
    if let Some(refused) = admit(&request, &body, &shared) {
        return refused;
    }
    let (id, action) = match segment.rsplit_once(':') {
        Some((id, action)) if action.eq_ignore_ascii_case("pause") => (id, Action::Pause),
        Some((id, action)) if action.eq_ignore_ascii_case("resume") => (id, Action::Resume),
        _ => {
            return acs_error(
                404,
                "no such operation; use {recordingId}:pause or {recordingId}:resume",
                Some(&segment),
            );
        }
    };
    let target = Target {
        recording_id: id,
        conversation: None,
    };
    match shared.pause_or_resume(target, action) {
        Ok(()) => HttpResponse::Accepted().finish(),
        Err(failure) => failed(failure, Some(id)),
    }
}
