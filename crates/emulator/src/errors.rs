//! ACS's error responses: `{"error":{"code","message","target","details"}}`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use callvault_acs_protocol::error::{ErrorBody, ErrorDetail};

/// An ACS-shaped JSON error with `status`, its usual code, and `message`.
pub(crate) fn acs_error(status: u16, message: &str, target: Option<&str>) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status).json(ErrorBody {
        error: ErrorDetail::for_status(status.as_u16(), message, target),
    })
}

/// The 2021 preview API's error: the same fields, not wrapped in `error` (the seed
/// document's shape).
pub(crate) fn preview_error(status: u16, message: &str, target: Option<&str>) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status).json(ErrorDetail::for_status(status.as_u16(), message, target))
}
