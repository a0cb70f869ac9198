//! Who may call the webhook: the secret (`?code=SECRET`, what an Event Grid endpoint URL
//! carries, or the `x-callvault-secret` header, compared in constant time), a Microsoft Entra
//! ID bearer token, both, or (for tests and the demo) anyone.

use std::sync::Arc;

use actix_web::HttpRequest;
use actix_web::http::header::AUTHORIZATION;
use subtle::ConstantTimeEq;

use super::entra::{EntraVerifier, Refusal};
use crate::secret::Secret;

pub const SECRET_HEADER: &str = "x-callvault-secret";

/// What each delivery must show; every part that is set is required.
#[derive(Debug, Clone, Default)]
pub struct WebhookAuth {
    pub secret: Option<Secret>,
    pub entra: Option<Arc<EntraVerifier>>,
    /// Refuse every delivery: events arrive another way and the webhook has no guard.
    pub closed: bool,
}

/// Why a delivery was refused: the stable `code` of its 401 and the sentence it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unauthorized {
    pub code: &'static str,
    pub message: String,
}

impl WebhookAuth {
    /// Anyone may call (`ingest.allow_anonymous`, without a secret or Entra ID).
    pub fn anonymous() -> Self {
        Self::default()
    }

    pub fn secret(secret: Secret) -> Self {
        Self {
            secret: Some(secret),
            ..Self::default()
        }
    }

    /// Checks the secret and the bearer token the settings ask for.
    pub async fn check(&self, request: &HttpRequest) -> Result<(), Unauthorized> {
        if let Some(expected) = &self.secret
            && !secret_matches(request, expected)
        {
            return Err(Unauthorized {
                code: "unauthorized",
                message: "missing or wrong webhook secret (?code=… or x-callvault-secret)".into(),
            });
        }
        self.check_bearer(request).await
    }

    /// Checks only the bearer token, when Entra ID is on (the CloudEvents handshake, which
    /// carries no secret).
    pub async fn check_bearer(&self, request: &HttpRequest) -> Result<(), Unauthorized> {
        if self.closed {
            return Err(Unauthorized {
                code: "webhook_closed",
                message: "this callvault receives its events from Event Grid (ingest.mode = eventgrid_pull) and its webhook has no secret".into(),
            });
        }
        let Some(entra) = &self.entra else {
            return Ok(());
        };
        let header = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        entra
            .check(header)
            .await
            .map_err(|refusal: Refusal| Unauthorized {
                code: refusal.code(),
                message: refusal.to_string(),
            })
    }
}

fn secret_matches(request: &HttpRequest, expected: &Secret) -> bool {
    let from_header = request
        .headers()
        .get(SECRET_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let from_query = url::form_urlencoded::parse(request.query_string().as_bytes())
        .find(|(key, _)| key == "code")
        .map(|(_, value)| value.into_owned());
    [from_header, from_query]
        .into_iter()
        .flatten()
        .any(|given| bool::from(given.as_bytes().ct_eq(expected.expose().as_bytes())))
}
