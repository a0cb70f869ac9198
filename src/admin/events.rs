//! `/admin/events`: the outbox of events for the next stage of a pipeline, by state and sink,
//! and the replay of events whose delivery failed.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::operations as ops;
use crate::http_error::ApiError;
use crate::queue::outbox::{self, Replay, RowState};
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/events", web::get().to(list_events))
        .route("/events/replay", web::post().to(replay_events));
}

/// `?state=&sink=&limit=&cursor=`.
#[derive(Debug, Deserialize)]
struct EventsQuery {
    state: Option<String>,
    sink: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn list_events(
    state: web::Data<AppState>,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, ApiError> {
    let filter = match query.state.as_deref().filter(|s| !s.is_empty()) {
        Some(raw) => Some(
            raw.parse::<RowState>()
                .map_err(|m| ApiError::bad_request("invalid_state", m))?,
        ),
        None => None,
    };
    let before = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(raw) => Some(raw.parse::<i64>().map_err(|_| {
            ApiError::bad_request(
                "invalid_cursor",
                format!("`{raw}` is not a cursor from this list"),
            )
        })?),
        None => None,
    };
    let sink = query.sink.as_deref().filter(|s| !s.is_empty());
    let limit = ops::limit(query.limit, 100)?;
    let rows = outbox::list(&state.db, filter, sink, limit, before).await?;
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|row| row.id.to_string()))
        .flatten();
    Ok(HttpResponse::Ok().json(json!({ "events": rows, "next_cursor": next_cursor })))
}

/// Exactly one of `ids` and `state` (which can only be `failed`), optionally with `sink`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    ids: Option<Vec<i64>>,
    state: Option<String>,
    sink: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn replay_events(
    state: web::Data<AppState>,
    body: web::Json<ReplayBody>,
) -> Result<HttpResponse, ApiError> {
    let which = match (&body.ids, body.state.as_deref()) {
        (Some(ids), None) if body.sink.is_none() => {
            if ids.len() > 10_000 {
                return Err(ApiError::bad_request(
                    "too_many_ids",
                    "at most 10000 ids at once",
                ));
            }
            Replay::Ids(ids.clone())
        }
        (None, Some("failed")) => Replay::Failed {
            sink: body.sink.clone(),
        },
        (None, Some(other)) => {
            return Err(ApiError::bad_request(
                "invalid_state",
                format!("only failed events are replayed, not `{other}`"),
            ));
        }
        _ => {
            return Err(ApiError::bad_request(
                "invalid_replay",
                "give either {\"ids\": [...]} or {\"state\": \"failed\"} (with an optional \"sink\")",
            ));
        }
    };
    let replayed = outbox::replay(&state.db, &which).await?;
    tracing::info!(replayed, "events replayed by an operator");
    Ok(HttpResponse::Ok().json(json!({ "replayed": replayed })))
}
