//! The `/admin` HTTP API: recordings, jobs, replay, quarantine and stats, behind the bearer
//! token. Every answer is JSON; every error is `{"code","message"}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::auth::Operator;
use super::operations::{self as ops, OpsError, ReplaySelection};
use super::queries;
use super::state::RecordingState;
use crate::http_error::ApiError;
use crate::ingest::Replay;
use crate::queue::{JobState, now_millis};
use crate::state::AppState;

impl From<OpsError> for ApiError {
    fn from(err: OpsError) -> Self {
        match err {
            OpsError::NotFound { code, message } => {
                ApiError::new(StatusCode::NOT_FOUND, code, message)
            }
            OpsError::NotReplayable { .. } => {
                ApiError::new(StatusCode::CONFLICT, "job_not_replayable", err.to_string())
            }
            OpsError::Invalid { code, message } => ApiError::bad_request(code, message),
            OpsError::NotErasable(refusal) => {
                ApiError::new(StatusCode::CONFLICT, "erasure_refused", refusal.message)
            }
            OpsError::Queue(err) => err.into(),
            OpsError::Storage(crate::storage::StorageError::NoStoreLock) => {
                ApiError::new(StatusCode::CONFLICT, "no_store_lock", err.to_string())
            }
            OpsError::Storage(err) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "storage_error", err.to_string())
            }
        }
    }
}

/// Registers the data endpoints (the caller wraps them in the token check).
pub fn data_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/recordings", web::get().to(list_recordings))
        .route("/recordings/{id}", web::get().to(show_recording))
        .route("/recordings/{id}/hold", web::post().to(hold_recording))
        .route("/recordings/{id}/hold", web::delete().to(release_recording))
        .route("/recordings/{id}/erase", web::post().to(erase_recording))
        .route("/jobs", web::get().to(list_jobs))
        // Before /jobs/{id}, which would otherwise answer 405 to this POST.
        .route("/jobs/replay", web::post().to(replay_jobs))
        .route("/jobs/{id}", web::get().to(show_job))
        .route("/jobs/{id}/replay", web::post().to(replay_job))
        .route("/quarantine", web::get().to(list_quarantine))
        .route("/quarantine/{id}", web::get().to(show_quarantined))
        .route(
            "/quarantine/{id}/replay",
            web::post().to(replay_quarantined),
        )
        .route("/stats", web::get().to(stats))
        .route("/participants/{id}", web::get().to(show_participant))
        .configure(super::events::routes)
        .configure(super::call_legs::routes)
        .configure(super::export_routes::routes)
        .route("/audit", web::get().to(super::audit_trail::list));
}

fn parse_id(raw: &str, code: &'static str, what: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            code,
            format!("no {what} with id `{raw}`"),
        )
    })
}

fn parse_states(raw: Option<&str>) -> Result<Vec<JobState>, ApiError> {
    raw.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|m: String| ApiError::bad_request("invalid_state", m))
        })
        .collect()
}

/// `?state=&limit=&cursor=` of the recordings list.
#[derive(Debug, Deserialize)]
struct RecordingsQuery {
    state: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn list_recordings(
    state: web::Data<AppState>,
    query: web::Query<RecordingsQuery>,
) -> Result<HttpResponse, ApiError> {
    let filter = match query.state.as_deref().filter(|s| !s.is_empty()) {
        Some(raw) => Some(
            raw.parse::<RecordingState>()
                .map_err(|m| ApiError::bad_request("invalid_state", m))?,
        ),
        None => None,
    };
    let limit = ops::limit(query.limit, 50)?;
    let page = ops::list_recordings(
        &state.db,
        filter,
        limit,
        query.cursor.as_deref(),
        now_millis(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[tracing::instrument(skip_all, fields(recording = %path))]
async fn show_recording(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let detail = ops::recording_detail(&state.db, &path, now_millis()).await?;
    Ok(HttpResponse::Ok().json(detail))
}

#[tracing::instrument(skip_all, fields(recording = %path))]
async fn hold_recording(
    state: web::Data<AppState>,
    Operator(actor): Operator,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let outcome =
        super::holds::set_legal_hold(&state.db, &state.archive, &actor, &path, true, now_millis())
            .await?;
    Ok(HttpResponse::Ok().json(outcome))
}

#[tracing::instrument(skip_all, fields(recording = %path))]
async fn release_recording(
    state: web::Data<AppState>,
    Operator(actor): Operator,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let outcome = super::holds::set_legal_hold(
        &state.db,
        &state.archive,
        &actor,
        &path,
        false,
        now_millis(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(outcome))
}

/// Body of an erasure: why (required), and whether only to list what would go.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EraseBody {
    reason: String,
    #[serde(default)]
    dry_run: bool,
}

#[tracing::instrument(skip_all, fields(recording = %path))]
async fn erase_recording(
    state: web::Data<AppState>,
    http: actix_web::HttpRequest,
    path: web::Path<String>,
    body: web::Json<EraseBody>,
) -> Result<HttpResponse, ApiError> {
    let operator = erasing_operator(&http)?;
    let request = super::erasure::ErasureRequest::by_operator(&operator, &body.reason)?;
    let recording = super::erasure::find_recording(&state.db, &path).await?;
    let outcome = super::erasure::erase(
        &state.db,
        &state.archive,
        &recording,
        &request,
        body.dry_run,
    )
    .await?;
    Ok(HttpResponse::Ok().json(outcome))
}

/// Who may erase, and the name the erasure is recorded under: an operator token's holder (a
/// viewer gets 403 `operator_role_required`).
fn erasing_operator(request: &actix_web::HttpRequest) -> Result<String, ApiError> {
    Ok(super::auth::operator_of(request)?.name)
}

/// `?state=failed,expired&limit=` of the jobs list.
#[derive(Debug, Deserialize)]
struct JobsQuery {
    state: Option<String>,
    limit: Option<i64>,
}

#[tracing::instrument(skip_all)]
async fn list_jobs(
    state: web::Data<AppState>,
    query: web::Query<JobsQuery>,
) -> Result<HttpResponse, ApiError> {
    let states = parse_states(query.state.as_deref())?;
    let limit = ops::limit(query.limit, 200)?;
    let jobs = ops::list_jobs(&state.db, &states, limit, now_millis()).await?;
    Ok(HttpResponse::Ok().json(json!({ "jobs": jobs })))
}

#[tracing::instrument(skip_all, fields(job_id = %path))]
async fn show_job(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "job_not_found", "job")?;
    Ok(HttpResponse::Ok().json(ops::job(&state.db, id, now_millis()).await?))
}

#[tracing::instrument(skip_all, fields(job_id = %path))]
async fn replay_job(
    state: web::Data<AppState>,
    Operator(actor): Operator,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "job_not_found", "job")?;
    let job = ops::replay_job(&state.db, &actor, id, now_millis()).await?;
    state.intake.wake.notify_one();
    tracing::info!(job_id = id, actor = %actor.name, "job replayed by an operator");
    Ok(HttpResponse::Ok().json(json!({ "replayed": 1, "job": job })))
}

/// Body of a bulk replay: exactly one of the two.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkReplay {
    state: Option<String>,
    ids: Option<Vec<i64>>,
}

#[tracing::instrument(skip_all)]
async fn replay_jobs(
    state: web::Data<AppState>,
    Operator(actor): Operator,
    body: web::Json<BulkReplay>,
) -> Result<HttpResponse, ApiError> {
    let selection = match (&body.state, &body.ids) {
        (Some(raw), None) => ReplaySelection::State(
            raw.parse()
                .map_err(|m: String| ApiError::bad_request("invalid_state", m))?,
        ),
        (None, Some(ids)) => ReplaySelection::Ids(ids.clone()),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_body",
                r#"give either {"state":"failed"} or {"ids":[…]}"#,
            ));
        }
    };
    let summary = ops::replay_jobs(&state.db, &actor, &selection, now_millis()).await?;
    if summary.replayed > 0 {
        // One notification wakes one idle worker loop, which then claims until the queue is dry.
        state.intake.wake.notify_one();
    }
    tracing::info!(replayed = summary.replayed, "jobs replayed by an operator");
    Ok(HttpResponse::Ok().json(summary))
}

/// `?include_replayed=true&limit=&cursor=` of the quarantine list.
#[derive(Debug, Deserialize)]
struct QuarantineQuery {
    #[serde(default)]
    include_replayed: bool,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// Lists entries without their payloads, so a poll costs the same whatever the events held.
#[tracing::instrument(skip_all)]
async fn list_quarantine(
    state: web::Data<AppState>,
    query: web::Query<QuarantineQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = ops::limit(query.limit, 100)?;
    let page = ops::list_quarantine(
        &state.db,
        query.include_replayed,
        limit,
        query.cursor.as_deref(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[tracing::instrument(skip_all, fields(quarantine_id = %path))]
async fn show_quarantined(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "quarantine_not_found", "quarantine entry")?;
    Ok(HttpResponse::Ok().json(ops::quarantine_entry(&state.db, id).await?))
}

#[tracing::instrument(skip_all, fields(quarantine_id = %path))]
async fn replay_quarantined(
    state: web::Data<AppState>,
    Operator(actor): Operator,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "quarantine_not_found", "quarantine entry")?;
    match state.intake.replay_quarantined(&actor, id).await? {
        Replay::Accepted => {
            let entry = ops::quarantine_entry(&state.db, id).await?;
            tracing::info!(
                quarantine_id = id,
                "quarantined event replayed and accepted"
            );
            Ok(HttpResponse::Ok().json(json!({ "replayed": true, "entry": entry.summary })))
        }
        Replay::StillInvalid(reason) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "still_invalid",
            format!("the event is still invalid: {reason}"),
        )),
        Replay::Erased => Err(ApiError::new(
            StatusCode::CONFLICT,
            "recording_erased",
            format!(
                "quarantine entry {id} announces a recording that was erased; nothing was queued and the entry is closed"
            ),
        )),
        Replay::Truncated => Err(ApiError::new(
            StatusCode::CONFLICT,
            "payload_truncated",
            format!(
                "quarantine entry {id} keeps only the first 64 KiB of its event, so the event cannot be rebuilt; \
                 ask the sender to deliver it again (its size and sha256 are in the entry)"
            ),
        )),
        Replay::NotOpen => Err(match queries::quarantine_entry(&state.db, id).await? {
            Some(_) => ApiError::new(
                StatusCode::CONFLICT,
                "already_replayed",
                format!("quarantine entry {id} was already replayed"),
            ),
            None => ApiError::new(
                StatusCode::NOT_FOUND,
                "quarantine_not_found",
                format!("no quarantine entry with id {id}"),
            ),
        }),
    }
}

#[tracing::instrument(skip_all)]
async fn stats(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let hours = state.settings.admin.deadline_warning_hours;
    Ok(HttpResponse::Ok().json(super::stats::stats(&state.db, hours, now_millis()).await?))
}

/// `?limit=&cursor=` of a participant's recordings.
#[derive(Debug, Deserialize)]
struct ParticipantQuery {
    limit: Option<i64>,
    cursor: Option<String>,
}

impl From<crate::participants::LookupError> for ApiError {
    fn from(err: crate::participants::LookupError) -> Self {
        match err {
            crate::participants::LookupError::Invalid(invalid) => {
                ApiError::bad_request("invalid_participant", invalid.to_string())
            }
            crate::participants::LookupError::Queue(err) => err.into(),
        }
    }
}

/// The recordings a participant is in, newest first (the id normalised as the index keys it).
#[tracing::instrument(skip_all)]
async fn show_participant(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<ParticipantQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = ops::limit(query.limit, 100)?;
    let before = ops::parse_cursor(query.cursor.as_deref())?;
    let page = crate::participants::page_of(&state.db, &path, limit, before).await?;
    Ok(HttpResponse::Ok().json(page))
}
