//! Admin bearer tokens: `Authorization: Bearer <token>`, compared in constant time with
//! `admin.token` (an operator named `admin`) and every `admin.tokens` entry. The token found
//! becomes the request's [`Actor`], which handlers take as an extractor; a viewer's request
//! for anything but a read is refused with 403 `operator_role_required` before any handler
//! runs, so a new action route is guarded without a line of its own.

use std::future::{Ready, ready};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, ResponseError, web};
use subtle::{Choice, ConstantTimeEq};

use crate::audit::{Actor, Role};
use crate::config::{AdminSettings, LEGACY_ADMIN_TOKEN_NAME};
use crate::http_error::ApiError;
use crate::secret::Secret;
use crate::state::AppState;

/// The stable code of a viewer's refused action.
pub const OPERATOR_ROLE_REQUIRED: &str = "operator_role_required";

/// The token out of `Bearer <token>`, None for any other header.
fn bearer(header: Option<&str>) -> Option<&str> {
    let (scheme, rest) = header?.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// True when `header` is `Bearer <token>` for the configured, non-empty token.
pub fn bearer_matches(header: Option<&str>, token: &Secret) -> bool {
    if token.is_empty() {
        return false;
    }
    let Some(given) = bearer(header) else {
        return false;
    };
    // ct_eq answers false at once for different lengths; that reveals only the length.
    bool::from(given.as_bytes().ct_eq(token.expose().as_bytes()))
}

/// Whether any admin token is configured (else the admin API answers 404).
pub fn any_token(admin: &AdminSettings) -> bool {
    !admin.token.is_empty() || !admin.tokens.is_empty()
}

/// The actor whose token `header` carries. Every configured token is compared, whichever
/// matches, so the time taken does not say which one did.
pub fn actor_for(header: Option<&str>, admin: &AdminSettings) -> Option<Actor> {
    let given = bearer(header)?.as_bytes();
    let legacy =
        (!admin.token.is_empty()).then_some((LEGACY_ADMIN_TOKEN_NAME, "operator", &admin.token));
    let named = admin
        .tokens
        .iter()
        .map(|token| (token.name.as_str(), token.role.as_str(), &token.token));
    let mut found = None;
    for (name, role, token) in legacy.into_iter().chain(named) {
        let matches: Choice = given.ct_eq(token.expose().as_bytes());
        if bool::from(matches) && !token.is_empty() && found.is_none() {
            // Validated at start-up; an unknown role could only read.
            found = Some(Actor::token(name, role.parse().unwrap_or(Role::Viewer)));
        }
    }
    found
}

/// True for the methods a viewer may use.
fn is_read(method: &actix_web::http::Method) -> bool {
    matches!(
        *method,
        actix_web::http::Method::GET | actix_web::http::Method::HEAD
    )
}

fn operator_required(actor: &Actor) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        OPERATOR_ROLE_REQUIRED,
        format!(
            "the token `{}` has the viewer role, which only reads; this action needs an operator token",
            actor.name
        ),
    )
}

/// Middleware for the `/admin` scope: 401 without a known token, 403 for a viewer's action.
pub async fn require_token(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let header = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let actor = request
        .app_data::<web::Data<AppState>>()
        .and_then(|state| actor_for(header, &state.settings.admin));
    let Some(actor) = actor else {
        let error = ApiError::unauthorized(
            "missing or wrong admin token (Authorization: Bearer <token> of admin.token or admin.tokens)",
        );
        let mut response = error.error_response();
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return Ok(request.into_response(response));
    };
    if !actor.role.may_act() && !is_read(request.method()) {
        let response = operator_required(&actor).error_response();
        return Ok(request.into_response(response));
    }
    request.extensions_mut().insert(actor);
    Ok(next.call(request).await?.map_into_boxed_body())
}

/// The caller of an admin handler, as the token middleware found it.
impl FromRequest for Actor {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            request
                .extensions()
                .get::<Actor>()
                .cloned()
                .ok_or_else(|| ApiError::unauthorized("missing or wrong admin token")),
        )
    }
}

/// The request's actor, refused with 403 `operator_role_required` unless an operator.
pub fn operator_of(request: &HttpRequest) -> Result<Actor, ApiError> {
    let actor = request
        .extensions()
        .get::<Actor>()
        .cloned()
        .ok_or_else(|| ApiError::unauthorized("missing or wrong admin token"))?;
    if actor.role.may_act() {
        Ok(actor)
    } else {
        Err(operator_required(&actor))
    }
}

/// An actor with the operator role: the extractor of every handler that changes something
/// (the middleware already refuses a viewer's non-GET; this says so in the handler too).
#[derive(Debug, Clone)]
pub struct Operator(pub Actor);

impl FromRequest for Operator {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(operator_of(request).map(Operator))
    }
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

    fn admin(legacy: &str, named: &[(&str, &str, &str)]) -> AdminSettings {
        let mut settings = crate::config::Settings::defaults_with(&[]).unwrap().admin;
        settings.token = Secret::new(legacy);
        settings.tokens = named
            .iter()
            .map(|(name, role, token)| crate::config::NamedToken {
                name: (*name).into(),
                role: (*role).into(),
                token: Secret::new(*token),
            })
            .collect();
        settings
    }

    #[test]
    fn each_token_gives_its_own_name_and_role() {
        let admin = admin(
            "legacy-token",
            &[
                ("alice", "operator", "alice-token-0123456"),
                ("audit", "viewer", "audit-token-0123456"),
            ],
        );
        let actor = |header: &str| actor_for(Some(header), &admin);
        assert_eq!(
            actor("Bearer legacy-token"),
            Some(Actor::token("admin", Role::Operator))
        );
        assert_eq!(
            actor("Bearer alice-token-0123456"),
            Some(Actor::token("alice", Role::Operator))
        );
        assert_eq!(
            actor("bearer audit-token-0123456 "),
            Some(Actor::token("audit", Role::Viewer))
        );
        for wrong in [
            "Bearer audit-token-012345",
            "Bearer ",
            "Basic legacy-token",
            "",
        ] {
            assert_eq!(actor(wrong), None, "{wrong:?}");
        }
        assert!(any_token(&admin));
        assert!(!any_token(&self::admin("", &[])));
        assert_eq!(actor_for(Some("Bearer "), &self::admin("", &[])), None);
    }

    #[test]
    fn an_empty_token_never_matches() {
        let empty = Secret::new("");
        assert!(!bearer_matches(Some("Bearer "), &empty));
        assert!(!bearer_matches(Some("Bearer  "), &empty));
    }
}
