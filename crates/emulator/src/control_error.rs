//! The control surface's JSON errors: a status and a stable `{"code","message"}` body, the
//! same shape callvault's own API answers with, so one test helper reads both.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

#[derive(Debug, Clone)]
pub(crate) struct ControlError {
    status: StatusCode,
    /// Stable, machine-readable: scripts match on it.
    code: &'static str,
    message: String,
}

impl ControlError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ControlError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status)
            .json(serde_json::json!({ "code": self.code, "message": self.message }))
    }
}

/// Routes malformed JSON bodies into the same error shape.
pub(crate) fn json_config() -> actix_web::web::JsonConfig {
    actix_web::web::JsonConfig::default()
        .error_handler(|err, _| ControlError::bad_request("invalid_json", err.to_string()).into())
}
