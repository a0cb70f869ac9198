//! Microsoft Entra ID bearer tokens on webhook deliveries, as Event Grid sends them to a
//! subscription with Entra authentication: every POST and the handshake carry
//! `Authorization: Bearer <JWT>`, an app-only access token for the webhook's app
//! (`aud`), issued by the tenant, signed RS256 by a key the emulator generates, and
//! refreshed before it expires. The key set and the OpenID configuration are served where
//! Entra serves them (see `entra/routes.rs`), so a webhook checks the tokens against the
//! emulator as it would against Entra.

mod control;
mod key;
pub(crate) mod routes;
#[cfg(test)]
mod tests;

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::state::lock;

pub(crate) use control::configure as configure_control;
use key::SigningKey;

/// The app role a webhook's app registration gives Event Grid's service principal.
pub const EVENT_GRID_ROLE: &str = "AzureEventGridSecureWebhookSubscriber";
/// The application id of Event Grid's service principal (`azp`/`appid` of its tokens).
pub const EVENT_GRID_APP_ID: &str = "4962773b-9cdb-44cf-a8bf-237846a00ab7";

/// How long a token is valid by default: short, so refreshing is exercised.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// The bounds a token lifetime must keep.
const MIN_LIFETIME: Duration = Duration::from_secs(60);
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Longest tenant id and audience accepted (a GUID or domain; an app id URI).
const MAX_TENANT_BYTES: usize = 128;
const MAX_AUDIENCE_BYTES: usize = 1024;

/// The access token format: v2 (issuer `https://login.microsoftonline.com/{tid}/v2.0`) or
/// v1 (issuer `https://sts.windows.net/{tid}/`), as the webhook's app registration asks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenVersion {
    #[serde(rename = "1.0")]
    V1,
    #[default]
    #[serde(rename = "2.0")]
    V2,
}

/// What the tokens say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntraOptions {
    /// The tenant (`tid`, and part of the issuer): a GUID or a domain.
    pub tenant_id: String,
    /// The webhook app's application id URI or client id (`aud`).
    pub audience: String,
    /// Whether `roles` holds [`EVENT_GRID_ROLE`], as when the app registration grants it.
    pub event_grid_role: bool,
    pub token_version: TokenVersion,
    /// How long each token is valid; a new one is minted when a third of it is left.
    pub token_lifetime: Duration,
}

impl EntraOptions {
    /// v2 tokens for `audience` from `tenant_id`, with the role and the default lifetime.
    pub fn new(tenant_id: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            audience: audience.into(),
            event_grid_role: true,
            token_version: TokenVersion::V2,
            token_lifetime: DEFAULT_LIFETIME,
        }
    }

    /// The token issuer (`iss`) of this tenant and version.
    pub fn issuer(&self) -> String {
        match self.token_version {
            TokenVersion::V1 => format!("https://sts.windows.net/{}/", self.tenant_id),
            TokenVersion::V2 => {
                format!("https://login.microsoftonline.com/{}/v2.0", self.tenant_id)
            }
        }
    }

    /// Whether the options can be used: a tenant that fits in a URL path, a bounded
    /// audience, a lifetime between a minute and a day.
    pub fn validate(&self) -> Result<(), EntraError> {
        let tenant_ok = !self.tenant_id.is_empty()
            && self.tenant_id.len() <= MAX_TENANT_BYTES
            && self
                .tenant_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !tenant_ok {
            return Err(EntraError::Tenant);
        }
        let audience = self.audience.trim();
        if audience.is_empty()
            || audience.len() > MAX_AUDIENCE_BYTES
            || audience.chars().any(char::is_control)
        {
            return Err(EntraError::Audience);
        }
        if !(MIN_LIFETIME..=MAX_LIFETIME).contains(&self.token_lifetime) {
            return Err(EntraError::Lifetime);
        }
        Ok(())
    }
}

/// Why Entra tokens cannot be issued as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntraError {
    #[error(
        "the Entra tenant id must be 1–{MAX_TENANT_BYTES} letters, digits, `-`, `.` or `_` (a GUID or a domain)"
    )]
    Tenant,
    #[error(
        "the Entra audience must be 1–{MAX_AUDIENCE_BYTES} bytes without control characters (the webhook app's id URI or client id)"
    )]
    Audience,
    #[error("the token lifetime must be between one minute and a day")]
    Lifetime,
    #[error("cannot generate the token signing key")]
    Key,
}

/// A token minted, and when it expires (Unix seconds).
struct Minted {
    token: String,
    expires_at: i64,
}

/// The emulator's Entra side: off until configured; the signing key is made on first use and
/// kept for the emulator's life, so changing what tokens say keeps the key set a webhook has.
#[derive(Default)]
pub(crate) struct Entra {
    key: OnceLock<SigningKey>,
    options: Mutex<Option<EntraOptions>>,
    minted: Mutex<Option<Minted>>,
    /// The `sub`/`oid` of every token: Event Grid's service principal in the tenant.
    principal: OnceLock<String>,
}

impl Entra {
    /// Turns tokens on with `options`, or off with `None`; the next delivery gets a new token.
    pub(crate) fn configure(&self, options: Option<EntraOptions>) -> Result<(), EntraError> {
        if let Some(options) = &options {
            options.validate()?;
            if self.key.get().is_none() {
                let key = SigningKey::generate().map_err(|_| EntraError::Key)?;
                let _ = self.key.set(key);
            }
        }
        *lock(&self.options) = options;
        *lock(&self.minted) = None;
        Ok(())
    }

    pub(crate) fn options(&self) -> Option<EntraOptions> {
        lock(&self.options).clone()
    }

    /// Adds the bearer token to a request to a webhook, when tokens are on.
    pub(crate) fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.bearer_at(chrono::Utc::now().timestamp()) {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// The token to send at `now` (Unix seconds): the last one while more than a third of
    /// its lifetime is left, else a new one.
    pub(crate) fn bearer_at(&self, now: i64) -> Option<String> {
        let options = self.options()?;
        let key = self.key.get()?;
        let lifetime = i64::try_from(options.token_lifetime.as_secs()).unwrap_or(i64::MAX);
        let mut minted = lock(&self.minted);
        if let Some(current) = minted.as_ref()
            && current.expires_at - now > lifetime / 3
        {
            return Some(current.token.clone());
        }
        let claims = self.claims(&options, now, lifetime);
        let token = match key.sign_jwt(&claims) {
            Ok(token) => token,
            Err(_) => {
                tracing::error!("cannot sign an Entra token; the delivery goes without one");
                return None;
            }
        };
        *minted = Some(Minted {
            token: token.clone(),
            expires_at: now + lifetime,
        });
        Some(token)
    }

    /// The claims of an app-only access token Entra issues to Event Grid for the webhook.
    fn claims(&self, options: &EntraOptions, now: i64, lifetime: i64) -> Value {
        let principal = self
            .principal
            .get_or_init(|| uuid::Uuid::new_v4().to_string());
        let mut claims = json!({
            "aud": options.audience.trim(),
            "iss": options.issuer(),
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "tid": options.tenant_id,
            "sub": principal,
            "oid": principal,
            "idtyp": "app",
            "uti": uuid::Uuid::new_v4().simple().to_string(),
        });
        match options.token_version {
            TokenVersion::V1 => {
                claims["ver"] = json!("1.0");
                claims["appid"] = json!(EVENT_GRID_APP_ID);
                claims["appidacr"] = json!("2");
            }
            TokenVersion::V2 => {
                claims["ver"] = json!("2.0");
                claims["azp"] = json!(EVENT_GRID_APP_ID);
                claims["azpacr"] = json!("2");
            }
        }
        if options.event_grid_role {
            claims["roles"] = json!([EVENT_GRID_ROLE]);
        }
        claims
    }

    /// The JWKS document of `tenant`, when tokens are on for it.
    pub(crate) fn key_set(&self, tenant: &str) -> Option<Value> {
        let options = self.options()?;
        let key = self.key.get()?;
        options
            .tenant_id
            .eq_ignore_ascii_case(tenant)
            .then(|| json!({ "keys": [key.jwk()] }))
    }
}
