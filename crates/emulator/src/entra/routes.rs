//! Where Entra publishes a tenant's signing keys and OpenID configuration, on the emulator:
//! `/{tenant}/discovery/v2.0/keys` (and v1's `/{tenant}/discovery/keys`),
//! `/{tenant}/v2.0/.well-known/openid-configuration` (and v1's
//! `/{tenant}/.well-known/openid-configuration`). A tenant other than the configured one,
//! or none while tokens are off, is answered as Entra answers an unknown tenant.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::TokenVersion;
use crate::state::Shared;

pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/{tenant}/discovery/v2.0/keys", web::get().to(keys))
        .route("/{tenant}/discovery/keys", web::get().to(keys))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            web::get().to(|shared, tenant| openid_configuration(shared, tenant, TokenVersion::V2)),
        )
        .route(
            "/{tenant}/.well-known/openid-configuration",
            web::get().to(|shared, tenant| openid_configuration(shared, tenant, TokenVersion::V1)),
        );
}

/// Whether `path` is one of these routes, which are not ACS requests.
pub(crate) fn is_identity_path(path: &str) -> bool {
    path.contains("/discovery/") || path.contains("/.well-known/")
}

/// The v2 key set URL of `tenant` on the emulator at `endpoint`.
pub(crate) fn keys_url(endpoint: &url::Url, tenant: &str) -> url::Url {
    let mut url = endpoint.clone();
    url.set_path(&format!("/{tenant}/discovery/v2.0/keys"));
    url
}

async fn keys(shared: web::Data<Shared>, tenant: web::Path<String>) -> HttpResponse {
    match shared.entra.key_set(&tenant) {
        Some(document) => HttpResponse::Ok().json(document),
        None => unknown_tenant(&shared, &tenant),
    }
}

async fn openid_configuration(
    shared: web::Data<Shared>,
    tenant: web::Path<String>,
    version: TokenVersion,
) -> HttpResponse {
    let Some(options) = shared
        .entra
        .options()
        .filter(|options| options.tenant_id.eq_ignore_ascii_case(&tenant))
    else {
        return unknown_tenant(&shared, &tenant);
    };
    let issuer = super::EntraOptions {
        token_version: version,
        ..options.clone()
    }
    .issuer();
    let mut jwks_uri = keys_url(&shared.endpoint, &options.tenant_id);
    if version == TokenVersion::V1 {
        jwks_uri.set_path(&format!("/{}/discovery/keys", options.tenant_id));
    }
    HttpResponse::Ok().json(json!({
        "issuer": issuer,
        "jwks_uri": jwks_uri.as_str(),
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

/// Entra's answer for a tenant it does not know (AADSTS90002).
fn unknown_tenant(shared: &Shared, tenant: &str) -> HttpResponse {
    let why = if shared.entra.options().is_some() {
        "it is not the tenant the emulator issues tokens for"
    } else {
        "the emulator issues no Entra tokens (start it with --entra-tenant and --entra-audience)"
    };
    let tenant: String = tenant.chars().take(128).collect();
    HttpResponse::BadRequest().json(json!({
        "error": "invalid_tenant",
        "error_description": format!("AADSTS90002: Tenant '{tenant}' not found: {why}."),
    }))
}
