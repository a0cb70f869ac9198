//! The control routes of Entra tokens (under `/emulator`):
//!
//! - `PUT /emulator/entra` with `{"tenantId", "audience", "eventGridRole"?: true,
//!   "tokenVersion"?: "2.0"|"1.0", "tokenLifetimeSecs"?: 900}` turns tokens on (or changes
//!   what they say; the signing key stays) and answers `{"issuer", "keysUrl"}`.
//! - `GET /emulator/entra` answers the same fields as set, or 404 while tokens are off.
//! - `DELETE /emulator/entra` turns tokens off; answers 204.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::{DEFAULT_LIFETIME, EntraOptions, TokenVersion, routes};
use crate::control_error::ControlError;
use crate::state::Shared;

pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config.service(
        web::resource("/entra")
            .route(web::put().to(set))
            .route(web::get().to(get))
            .route(web::delete().to(clear)),
    );
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EntraBody {
    tenant_id: String,
    audience: String,
    #[serde(default = "yes")]
    event_grid_role: bool,
    #[serde(default)]
    token_version: TokenVersion,
    token_lifetime_secs: Option<u64>,
}

fn yes() -> bool {
    true
}

async fn set(
    shared: web::Data<Shared>,
    body: web::Json<EntraBody>,
) -> Result<HttpResponse, ControlError> {
    let body = body.into_inner();
    let options = EntraOptions {
        tenant_id: body.tenant_id,
        audience: body.audience,
        event_grid_role: body.event_grid_role,
        token_version: body.token_version,
        token_lifetime: body
            .token_lifetime_secs
            .map_or(DEFAULT_LIFETIME, Duration::from_secs),
    };
    shared
        .entra
        .configure(Some(options.clone()))
        .map_err(|err| ControlError::bad_request("invalid_entra", err.to_string()))?;
    Ok(HttpResponse::Ok().json(describe(&shared, &options)))
}

async fn get(shared: web::Data<Shared>) -> Result<HttpResponse, ControlError> {
    let options = shared
        .entra
        .options()
        .ok_or_else(|| ControlError::not_found("Entra tokens are off"))?;
    Ok(HttpResponse::Ok().json(describe(&shared, &options)))
}

async fn clear(shared: web::Data<Shared>) -> HttpResponse {
    // Turning tokens off cannot fail.
    let _ = shared.entra.configure(None);
    HttpResponse::NoContent().finish()
}

fn describe(shared: &Shared, options: &EntraOptions) -> serde_json::Value {
    json!({
        "tenantId": options.tenant_id,
        "audience": options.audience,
        "eventGridRole": options.event_grid_role,
        "tokenVersion": options.token_version,
        "tokenLifetimeSecs": options.token_lifetime.as_secs(),
        "issuer": options.issuer(),
        "keysUrl": routes::keys_url(&shared.endpoint, &options.tenant_id).as_str(),
    })
}
