//! The webhook endpoints: Event Grid / CloudEvents deliveries, both handshakes, and the
//! recording-state callback.

use std::time::Duration;

use actix_web::http::header::CONTENT_LENGTH;
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde_json::json;

use super::auth::WebhookAuth;
use super::body::{BodyError, read_limited};
use super::delivery::Intake;
use super::envelope::{self, EnvelopeError, parse_body};
use crate::http_error::ApiError;
use crate::metrics::Metrics;

/// Shared by the webhook handlers.
pub struct WebhookState {
    pub intake: Intake,
    pub auth: WebhookAuth,
    pub max_body_bytes: usize,
    /// How long an authenticated request's whole body may take to arrive.
    pub body_deadline: Duration,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/events")
            .route(web::post().to(receive_events))
            .route(web::method(actix_web::http::Method::OPTIONS).to(cloud_events_handshake)),
    )
    .service(web::resource("/api/recording-state").route(web::post().to(receive_events)));
}

async fn read_events(
    request: &HttpRequest,
    payload: &mut web::Payload,
    state: &WebhookState,
) -> Result<Vec<envelope::Envelope>, ApiError> {
    authenticate(request, state, false).await?;
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = read_limited(payload, declared, state.max_body_bytes, state.body_deadline)
        .await
        .map_err(|err| match err {
            BodyError::TooLarge(_) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                err.to_string(),
            ),
            BodyError::TooSlow(_) => ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_too_slow",
                err.to_string(),
            ),
            BodyError::Read(_) => ApiError::bad_request("unreadable_body", err.to_string()),
        })?;
    super::delivery::on_blocking_pool(move || parse_body(&body))
        .await
        .map_err(|err| match err {
            EnvelopeError::NotJson(_) => ApiError::bad_request("invalid_json", err.to_string()),
            EnvelopeError::NotAnEventArray => {
                ApiError::bad_request("not_an_event_array", err.to_string())
            }
            // Event Grid dead-letters a 413 at once; no real batch is that large.
            EnvelopeError::TooManyEvents => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_many_events",
                err.to_string(),
            ),
        })
}

/// The delivery's secret and bearer token (only the token for the CloudEvents handshake).
/// Event Grid does not retry a 401, so each is logged as a warning and counted: a missed
/// delivery is found in the log and the metric rather than in a missing recording.
async fn authenticate(
    request: &HttpRequest,
    state: &WebhookState,
    handshake: bool,
) -> Result<(), ApiError> {
    let checked = if handshake {
        state.auth.check_bearer(request).await
    } else {
        state.auth.check(request).await
    };
    checked.map_err(|refused| {
        Metrics::add(&state.intake.metrics.webhook_unauthorized, 1);
        tracing::warn!(
            code = refused.code,
            reason = %refused.message,
            path = request.path(),
            peer = request.peer_addr().map(|a| a.ip().to_string()),
            "webhook delivery refused: Event Grid does not retry a 401"
        );
        ApiError::new(StatusCode::UNAUTHORIZED, refused.code, refused.message)
    })
}

/// An error answer; after a body that stopped arriving the connection is closed, so the
/// rest of that body is never read as the next request. (A chunked body is drained by actix
/// instead: discarded as it arrives, never buffered.)
fn refuse(err: ApiError) -> HttpResponse {
    let mut response = err.error_response();
    if err.status == StatusCode::REQUEST_TIMEOUT {
        response
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    response
}

/// `POST /api/events` (and `/api/recording-state`): answers 200 only once every event is committed.
#[tracing::instrument(skip_all, fields(delivery_count = request.headers().get("aeg-delivery-count").and_then(|v| v.to_str().ok())))]
async fn receive_events(
    request: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<WebhookState>,
) -> Result<HttpResponse, ApiError> {
    let events = match read_events(&request, &mut payload, &state).await {
        Ok(events) => events,
        Err(err) => return Ok(refuse(err)),
    };
    if let Some(validation) = events
        .iter()
        .find(|event| event.event_type == envelope::SUBSCRIPTION_VALIDATION)
    {
        let code = validation
            .data
            .get("validationCode")
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_validation_event",
                    "SubscriptionValidationEvent without data.validationCode",
                )
            })?;
        tracing::info!(
            subscription = request
                .headers()
                .get("aeg-subscription-name")
                .and_then(|v| v.to_str().ok()),
            "Event Grid subscription validated"
        );
        return Ok(HttpResponse::Ok().json(json!({ "validationResponse": code })));
    }
    let summary = state.intake.store(events).await?;
    Ok(HttpResponse::Ok().json(summary))
}

/// `OPTIONS /api/events`: the CloudEvents 1.0 abuse-protection handshake. With Entra ID on,
/// it needs the bearer token like every delivery.
async fn cloud_events_handshake(
    request: HttpRequest,
    state: web::Data<WebhookState>,
) -> HttpResponse {
    if let Err(err) = authenticate(&request, &state, true).await {
        return err.error_response();
    }
    let origin = request
        .headers()
        .get("webhook-request-origin")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*")
        .to_owned();
    HttpResponse::Ok()
        .insert_header(("WebHook-Allowed-Origin", origin))
        .insert_header(("WebHook-Allowed-Rate", "*"))
        .insert_header(("Allow", "POST, OPTIONS"))
        .finish()
}
