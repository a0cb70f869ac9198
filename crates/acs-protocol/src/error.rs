//! ACS's error answers: `{"error":{"code","message","target","details"}}` on the GA API, the
//! same fields unwrapped on the 2021 preview API.

use serde::{Deserialize, Serialize};

/// The body of an ACS error answer on the GA API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What ACS says went wrong; the preview API sends this alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable across releases: clients match on it.
    pub code: String,
    pub message: String,
    /// The request field at fault, `null` when none.
    pub target: Option<String>,
    #[serde(default)]
    pub details: Vec<ErrorDetail>,
}

impl ErrorDetail {
    /// An error of `status` with its usual code.
    pub fn for_status(status: u16, message: &str, target: Option<&str>) -> Self {
        Self {
            code: code_for(status).to_owned(),
            message: message.to_owned(),
            target: target.map(str::to_owned),
            details: Vec::new(),
        }
    }
}

/// The stable `code` ACS puts on an error of this status.
pub fn code_for(status: u16) -> &'static str {
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
