//! ACS's error responses: `{"error":{"code","message","target","details"}}`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;

/// The stable `code` ACS puts on an error of this status.
pub(crate) fn code_for(status: u16) -> &'static str {
    match status {
        400 => "BadRequest",
        401 => "Denied",
        403 => "Forbidden",
        404 => "NotFound",
        408 => "RequestTimeout",
        409 => "Conflict",
        416 => "InvalidRange",
        429 => "TooManyRequests",
        500 => "InternalServerError",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        _ => "Error",
    }
}

/// An ACS-shaped JSON error with `status`, its usual code, and `message`.
pub(crate) fn acs_error(status: u16, message: &str, target: Option<&str>) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status).json(serde_json::json!({
        "error": {
            "code": code_for(status.as_u16()),
            "message": message,
            "target": target,
            "details": [],
        }
    }))
}

/// The 2021 preview API's error: the same fields, not wrapped in `error` (the seed
/// document's shape).
pub(crate) fn preview_error(status: u16, message: &str, target: Option<&str>) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status).json(serde_json::json!({
        "code": code_for(status.as_u16()),
        "message": message,
        "target": target,
        "details": [],
    }))
}
