//! Microsoft Entra ID bearer tokens on the webhook, checked as a resource server does: an
//! RS256 signature by one of the tenant's signing keys, the tenant's issuer (v1 or v2 token),
//! the configured audience exactly, `tid`, `exp`/`nbf` with a minute of skew, and optionally
//! the role Event Grid's app holds on the webhook's app (`AzureEventGridSecureWebhookSubscriber`).

mod keys;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::time::Duration;

use jsonwebtoken::{Algorithm, Validation, decode, decode_header};
use serde::Deserialize;

pub use keys::{KeySet, KeysError};

/// The app role Event Grid's service principal is given on the webhook's app registration.
pub const EVENT_GRID_ROLE: &str = "AzureEventGridSecureWebhookSubscriber";

/// Skew allowed on `exp` and `nbf`, as Microsoft's own middleware allows.
const SKEW: Duration = Duration::from_secs(60);

/// A bearer token longer than this is refused unread (Entra access tokens are 1–3 KiB).
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// What a token must show: validated settings, defined beside them.
pub use crate::config::EntraPolicy;

/// Why a delivery's token was refused: the stable code of the 401 and a sentence for the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no `Authorization: Bearer <token>` header (ingest.entra is on)")]
    Missing,
    #[error("the bearer token is refused: {0}")]
    Invalid(String),
    #[error("the tenant's signing keys cannot be read: {0}")]
    KeysUnavailable(String),
}

impl Refusal {
    /// The `code` of the 401 answer; scripts and alerts match on it.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Missing => "missing_bearer_token",
            Refusal::Invalid(_) => "invalid_bearer_token",
            Refusal::KeysUnavailable(_) => "signing_keys_unavailable",
        }
    }
}

/// The claims callvault reads; the library checks `exp`, `nbf`, `aud` and `iss`.
#[derive(Debug, Deserialize)]
struct Claims {
    tid: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

/// Checks webhook tokens against the tenant's keys, which it caches.
#[derive(Debug)]
pub struct EntraVerifier {
    policy: EntraPolicy,
    keys: KeySet,
    validation: Validation,
}

impl EntraVerifier {
    pub fn new(policy: EntraPolicy, keys: KeySet) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[&policy.audience]);
        validation.set_issuer(&[
            format!("https://sts.windows.net/{}/", policy.tenant_id),
            format!(
                "https://login.microsoftonline.com/{}/v2.0",
                policy.tenant_id
            ),
        ]);
        validation.leeway = SKEW.as_secs();
        validation.validate_nbf = true;
        validation.required_spec_claims = HashSet::from(["exp", "aud", "iss"].map(String::from));
        Self {
            policy,
            keys,
            validation,
        }
    }

    /// Judges the `Authorization` header of a delivery.
    pub async fn check(&self, authorization: Option<&str>) -> Result<(), Refusal> {
        let token = bearer(authorization).ok_or(Refusal::Missing)?;
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Refusal::Invalid(format!(
                "{} bytes, more than the {MAX_TOKEN_BYTES} a token may have",
                token.len()
            )));
        }
        // The header is read before the signature is checked, only to pick the key; an
        // algorithm other than RS256 (`none`, or HS256 "signed" with the public key) fails
        // in `decode` against the RS256-only validation.
        let header =
            decode_header(token).map_err(|err| Refusal::Invalid(format!("unreadable: {err}")))?;
        if header.alg != Algorithm::RS256 {
            return Err(Refusal::Invalid(format!(
                "signed with {:?}; only RS256 is accepted",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| Refusal::Invalid("its header names no signing key (`kid`)".into()))?;
        let key = match self.keys.get(&kid).await {
            Ok(Some(key)) => key,
            Ok(None) => {
                return Err(Refusal::Invalid(format!(
                    "signed by key `{kid}`, which is not among the tenant's signing keys"
                )));
            }
            Err(err) => return Err(Refusal::KeysUnavailable(err.to_string())),
        };
        let claims = decode::<Claims>(token, &key, &self.validation)
            .map_err(|err| Refusal::Invalid(describe(&err)))?
            .claims;
        if claims.tid.as_deref() != Some(self.policy.tenant_id.as_str()) {
            return Err(Refusal::Invalid(format!(
                "its tenant (`tid`) is {:?}, not {}",
                claims.tid, self.policy.tenant_id
            )));
        }
        if self.policy.require_role && !claims.roles.iter().any(|role| role == EVENT_GRID_ROLE) {
            return Err(Refusal::Invalid(format!(
                "it lacks the {EVENT_GRID_ROLE} role (ingest.entra.require_role)"
            )));
        }
        Ok(())
    }
}

/// The token of `Bearer <token>`, the scheme in any case.
fn bearer(authorization: Option<&str>) -> Option<&str> {
    let (scheme, token) = authorization?.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The library's verdict in the words of the setting it concerns.
fn describe(err: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match err.kind() {
        ErrorKind::ExpiredSignature => "it has expired (`exp`, with a minute of skew)".into(),
        ErrorKind::ImmatureSignature => "it is not valid yet (`nbf`, with a minute of skew)".into(),
        ErrorKind::InvalidAudience => "its audience (`aud`) is not ingest.entra.audience".into(),
        ErrorKind::InvalidIssuer => "its issuer (`iss`) is not the tenant's".into(),
        ErrorKind::InvalidSignature => "its signature does not verify".into(),
        ErrorKind::InvalidAlgorithm => "its algorithm is not RS256".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("it has no `{claim}` claim"),
        _ => format!("unreadable: {err}"),
    }
}
