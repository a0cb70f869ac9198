//! The admin bearer token: `Authorization: Bearer <admin.token>`, compared in constant time.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};
use subtle::ConstantTimeEq;

use crate::http_error::ApiError;
use crate::secret::Secret;
use crate::state::AppState;

/// True when `header` is `Bearer <token>` for the configured, non-empty token.
pub fn bearer_matches(header: Option<&str>, token: &Secret) -> bool {
    if token.is_empty() {
        return false;
    }
    let Some(given) = header.and_then(|value| {
        let (scheme, rest) = value.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    }) else {
        return false;
    };
    // ct_eq answers false at once for different lengths; that reveals only the length.
    bool::from(given.as_bytes().ct_eq(token.expose().as_bytes()))
}

/// Middleware for the `/admin` scope: 401 without the right token.
pub async fn require_token(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let token = request
        .app_data::<web::Data<AppState>>()
        .map(|state| state.settings.admin.token.clone())
        .unwrap_or_default();
    let header = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    if bearer_matches(header, &token) {
        return Ok(next.call(request).await?.map_into_boxed_body());
    }
    let error = ApiError::unauthorized(
        "missing or wrong admin token (Authorization: Bearer <admin.token>)",
    );
    let mut response = error.error_response();
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    Ok(request.into_response(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_passes() {
        let token = Secret::new("s3cret-token");
        assert!(bearer_matches(Some("Bearer s3cret-token"), &token));
        assert!(bearer_matches(Some("bearer s3cret-token "), &token));
        for wrong in [
            None,
            Some(""),
            Some("s3cret-token"),
            Some("Basic s3cret-token"),
            Some("Bearer s3cret-toke"),
            Some("Bearer s3cret-token2"),
            Some("Bearer "),
        ] {
            assert!(!bearer_matches(wrong, &token), "{wrong:?}");
        }
    }

    #[test]
    fn an_empty_token_never_matches() {
        let empty = Secret::new("");
        assert!(!bearer_matches(Some("Bearer "), &empty));
        assert!(!bearer_matches(Some("Bearer  "), &empty));
    }
}
