//! `/admin/call-legs`: the call legs CallLegStateChanged announced, and what recording on
//! policy did for each. The `call-legs` command prints the same views.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::operations::{self as ops, OpsError};
use super::views::rfc3339;
use crate::http_error::ApiError;
use crate::queue::call_legs::{self, CallLegRow};
use crate::queue::{Db, QueueError};
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/call-legs", web::get().to(list))
        .route("/call-legs/{id}", web::get().to(show));
}

/// One leg as the API and the command show it.
#[derive(Debug, Clone, Serialize)]
pub struct CallLegView {
    pub id: i64,
    pub call_leg_id: String,
    pub conversation_id: String,
    /// The newest state by eventTime.
    pub state: String,
    pub first_seen_at: i64,
    pub first_seen: String,
    /// eventTime of `state`.
    pub state_changed_at: i64,
    pub state_changed: String,
    /// What recording on policy did: its start state and outcome.
    pub recording: RecordingStart,
}

/// The recording start of one leg.
#[derive(Debug, Clone, Serialize)]
pub struct RecordingStart {
    /// none, pending, starting, started or failed.
    pub state: String,
    pub requested_at: Option<i64>,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub recording_id: Option<String>,
    pub started_at: Option<i64>,
    pub last_error: Option<String>,
}

impl From<CallLegRow> for CallLegView {
    fn from(row: CallLegRow) -> Self {
        let waiting = matches!(row.start_state.as_str(), "pending" | "starting");
        Self {
            id: row.id,
            first_seen: rfc3339(row.first_seen_at),
            state_changed: rfc3339(row.state_changed_at),
            call_leg_id: row.call_leg_id,
            conversation_id: row.conversation_id,
            state: row.state,
            first_seen_at: row.first_seen_at,
            state_changed_at: row.state_changed_at,
            recording: RecordingStart {
                state: row.start_state,
                requested_at: row.start_requested_at,
                attempts: row.start_attempts,
                next_attempt_at: row.start_next_attempt_at.filter(|_| waiting),
                recording_id: row.recording_id,
                started_at: row.started_at,
                last_error: row.last_error,
            },
        }
    }
}

/// One page of legs, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct CallLegPage {
    pub call_legs: Vec<CallLegView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Longest conversation id a filter may name (the intake's own bound).
const MAX_FILTER_CHARS: usize = crate::ingest::call_leg_event::MAX_CONVERSATION_ID_CHARS;

/// Legs newest first, optionally of one conversation; `cursor` is a previous `next_cursor`.
pub async fn page(
    db: &Db,
    conversation_id: Option<&str>,
    limit: i64,
    cursor: Option<&str>,
) -> Result<CallLegPage, OpsError> {
    let conversation_id = conversation_id.map(str::trim).filter(|id| !id.is_empty());
    if conversation_id.is_some_and(|id| id.chars().count() > MAX_FILTER_CHARS) {
        return Err(OpsError::invalid(
            "invalid_query",
            format!("conversation_id is longer than {MAX_FILTER_CHARS} characters"),
        ));
    }
    let before = ops::parse_cursor(cursor)?;
    let rows = call_legs::list(db, conversation_id, before, limit as usize).await?;
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|row| row.id.to_string()))
        .flatten();
    Ok(CallLegPage {
        call_legs: rows.into_iter().map(CallLegView::from).collect(),
        next_cursor,
    })
}

/// One leg by row id or call leg id.
pub async fn find(db: &Db, key: &str) -> Result<Option<CallLegView>, QueueError> {
    Ok(call_legs::find(db, key).await?.map(CallLegView::from))
}

/// `?conversation_id=&limit=&cursor=`.
#[derive(Debug, Deserialize)]
struct ListQuery {
    conversation_id: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn list(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = ops::limit(query.limit, 50)?;
    let page = page(
        &state.db,
        query.conversation_id.as_deref(),
        limit,
        query.cursor.as_deref(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[tracing::instrument(skip_all)]
async fn show(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let key = id.into_inner();
    match find(&state.db, &key).await? {
        Some(leg) => Ok(HttpResponse::Ok().json(json!(leg))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "call_leg_not_found",
            format!("no call leg `{}`", crate::quote::quote(&key)),
        )),
    }
}
