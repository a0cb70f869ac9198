//! `/admin/events`: the outbox of events for the next stage of a pipeline, by state and sink,
//! the replay of events whose delivery failed, and the sinks with their state (a sink a 410
//! Gone disabled is enabled here again).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth::Operator;
use super::operations as ops;
use super::views::rfc3339;
use crate::http_error::ApiError;
use crate::queue::now_millis;
use crate::queue::outbox::{self, Replay, RowState};
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/events", web::get().to(list_events))
        .route("/events/replay", web::post().to(replay_events))
        .route("/events/sinks", web::get().to(list_sinks))
        .route("/events/sinks/{name}/enable", web::post().to(enable_sink));
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

/// One configured sink: its kind, the types it takes, whether a 410 Gone disabled it, and
/// its outbox depth.
#[derive(Debug, Serialize)]
struct SinkView {
    name: String,
    kind: String,
    types: Vec<String>,
    /// `enabled` or `disabled`.
    state: &'static str,
    disabled_at: Option<String>,
    disabled_status: Option<i64>,
    disabled_reason: Option<String>,
    pending: i64,
    delivering: i64,
    failed: i64,
    oldest_pending_age_seconds: f64,
}

#[tracing::instrument(skip_all)]
async fn list_sinks(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let disabled = outbox::disabled_sinks(&state.db).await?;
    let now = now_millis();
    let mut sinks = Vec::new();
    for sink in &state.settings.events.sinks {
        let off = disabled.iter().find(|d| d.sink == sink.name);
        let gauges = outbox::gauges(&state.db, &sink.name, now).await?;
        sinks.push(SinkView {
            name: sink.name.clone(),
            kind: serde_json::to_value(sink.kind)
                .ok()
                .and_then(|kind| kind.as_str().map(str::to_owned))
                .unwrap_or_default(),
            types: sink.types.clone(),
            state: if off.is_some() { "disabled" } else { "enabled" },
            disabled_at: off.map(|d| rfc3339(d.disabled_at)),
            disabled_status: off.map(|d| d.status),
            disabled_reason: off.map(|d| d.reason.clone()),
            pending: gauges.pending,
            delivering: gauges.delivering,
            failed: gauges.failed,
            oldest_pending_age_seconds: gauges.oldest_pending_age_seconds,
        });
    }
    Ok(HttpResponse::Ok().json(json!({ "sinks": sinks })))
}

#[tracing::instrument(skip_all, fields(sink = %path))]
async fn enable_sink(
    state: web::Data<AppState>,
    Operator(actor): Operator,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    if !state
        .settings
        .events
        .sinks
        .iter()
        .any(|sink| sink.name == name)
    {
        return Err(ApiError::new(
            actix_web::http::StatusCode::NOT_FOUND,
            "sink_not_found",
            format!("no sink named `{}` in events.sinks", clip(&name)),
        ));
    }
    let was_disabled = outbox::enable_sink(&state.db, &name).await?;
    tracing::info!(sink = %name, actor = %actor.name, was_disabled, "event sink enabled by an operator");
    Ok(HttpResponse::Ok()
        .json(json!({ "sink": name, "state": "enabled", "was_disabled": was_disabled })))
}

/// A name from the path, cut short for an error message.
fn clip(name: &str) -> String {
    name.chars().take(64).collect()
}
