//! One error type for every HTTP answer: a status and a stable `{"code","message"}` body.

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
