//! One error type for every HTTP answer: a status and a stable `{"code","message"}` body.
//!
//! # Error policy
//!
//! **Typed per module.** Each module that can fail has its own `thiserror` enum naming what
//! went wrong there: `QueueError` (database), `StoreError` (a delivery's commit),
//! `InvalidEvent` and `EnvelopeError`/`BodyError` (ingest), `GuardError` and `AcsError`
//! (ACS), `StorageError` (the archive), `OpsError` (operator actions), `TransferError` (one
//! attempt of a job). A caller that could act on a cause gets it as a variant or as the
//! error's `source`, not as flattened text: `QueueError::is_unavailable` looks at the
//! sqlx error to tell an overloaded database from a broken statement, and a row the
//! service cannot read fails with its own type (`UnknownJobState`). Outcomes that are not
//! failures (a duplicate event, a chunk index already taken, a quarantined event) are
//! named enums, never errors.
//!
//! **What becomes an HTTP status.** Only this type reaches actix: handlers convert with
//! `From` at the edge, and each conversion decides the status once.
//! - The request is at fault: 400 (`invalid_json`, `invalid_query`, `not_an_event_array`,
//!   an operator's bad filter), 401 (no or wrong secret or token), 404, 408 (a body that
//!   stops arriving), 409 (a job that cannot be replayed), 413 (a body or batch too large).
//! - The service cannot take it now: 503 with `Retry-After`, so Event Grid retries
//!   (`QueueError::is_unavailable`, a stopped committer).
//! - Anything else: 500 `internal`, with a fixed message.
//!
//! An invalid *event* is not an HTTP error: the delivery is answered 200 and the event is
//! quarantined with its reason, so Event Grid does not retry what can never succeed.
//!
//! **What is logged.** A 5xx is logged where it is converted: `warn` for unavailable (it
//! heals), `error` for internal, with the full error. A 4xx is the client's own mistake:
//! it is answered, not logged as a server error. A failed job attempt is recorded in the job's
//! `last_error` and its attempt row; a quarantined event in `quarantine`, one log line per
//! delivery.
//!
//! **What a client sees.** `code` is stable and scripts match on it; `message` is for
//! people. A 4xx message says what was wrong with the request and may quote the client's
//! own input, cut by [`crate::quote`]. A 5xx message never carries the cause: the cause is
//! in the server log ("see the server log").
//!
//! **Never in an error body:** a secret (the webhook secret, admin tokens, the ACS key) or a
//! query string (`?code=` carries the webhook secret; signed download URLs carry their
//! signatures). Errors that quote a URL keep it out of answers: they go to the log,
//! quarantine or `last_error`, and preview URLs are built without a query.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable, machine-readable: scripts match on it.
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // Event Grid waits at least 30 s after a 503 anyway; say so.
            response.insert_header(("Retry-After", "30"));
        }
        response.json(serde_json::json!({ "code": self.code, "message": self.message }))
    }
}

impl From<crate::queue::QueueError> for ApiError {
    fn from(err: crate::queue::QueueError) -> Self {
        if err.is_unavailable() {
            tracing::warn!(error = %err, "database unavailable");
            ApiError::unavailable(
                "database_unavailable",
                "the database is unavailable; retry later",
            )
        } else {
            tracing::error!(error = %err, "database error");
            ApiError::internal("database error; see the server log")
        }
    }
}

/// Routes malformed JSON and query strings into the same error shape.
pub fn json_config() -> actix_web::web::JsonConfig {
    actix_web::web::JsonConfig::default()
        .error_handler(|err, _| ApiError::bad_request("invalid_json", err.to_string()).into())
}

pub fn query_config() -> actix_web::web::QueryConfig {
    actix_web::web::QueryConfig::default()
        .error_handler(|err, _| ApiError::bad_request("invalid_query", err.to_string()).into())
}
