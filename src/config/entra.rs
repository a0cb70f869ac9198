//! `[ingest.entra]`: Microsoft Entra ID bearer tokens on the webhook.

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::error::invalid;

/// Where Entra publishes a tenant's signing keys in the public cloud.
const PUBLIC_CLOUD_KEYS: &str = "https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys";

/// What a token must show (`ingest.entra.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntraPolicy {
    /// The tenant's id (a GUID), as `tid` and the issuers carry it.
    pub tenant_id: String,
    /// `aud` exactly: the webhook app's client id or its App ID URI.
    pub audience: String,
    /// Whether `roles` must hold the `AzureEventGridSecureWebhookSubscriber` app role.
    pub require_role: bool,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct EntraSettings {
    /// The tenant (directory) id, a GUID; empty leaves Entra ID off.
    pub tenant_id: String,
    /// `aud` every token must carry exactly: the webhook app's client id or App ID URI.
    pub audience: String,
    /// Require the `AzureEventGridSecureWebhookSubscriber` app role in `roles`.
    pub require_role: bool,
    /// The tenant's JWKS URL; `{tenant}` is replaced by tenant_id. Sovereign clouds and
    /// tests set their own.
    pub keys_url: String,
}

impl EntraSettings {
    pub fn is_on(&self) -> bool {
        !self.tenant_id.trim().is_empty()
    }

    /// The policy and the key set's URL, when Entra ID is on.
    pub fn policy(&self) -> Option<(EntraPolicy, String)> {
        self.is_on().then(|| {
            let tenant = self.tenant_id.trim().to_ascii_lowercase();
            let template = if self.keys_url.trim().is_empty() {
                PUBLIC_CLOUD_KEYS
            } else {
                self.keys_url.trim()
            };
            let url = template.replace("{tenant}", &tenant);
            let policy = EntraPolicy {
                tenant_id: tenant,
                audience: self.audience.trim().to_owned(),
                require_role: self.require_role,
            };
            (policy, url)
        })
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.is_on() {
            for (key, value) in [
                ("ingest.entra.audience", &self.audience),
                ("ingest.entra.keys_url", &self.keys_url),
            ] {
                if !value.trim().is_empty() {
                    return Err(invalid(
                        key,
                        "is set but ingest.entra.tenant_id is empty: set the tenant, or remove it",
                    ));
                }
            }
            return Ok(());
        }
        if uuid::Uuid::try_parse(self.tenant_id.trim()).is_err() {
            return Err(invalid(
                "ingest.entra.tenant_id",
                format!(
                    "`{}` is not a tenant id (a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47: Entra admin center → Overview → Tenant ID)",
                    self.tenant_id
                ),
            ));
        }
        let audience = self.audience.trim();
        if audience.is_empty() || audience.len() > 512 {
            return Err(invalid(
                "ingest.entra.audience",
                "must be the webhook app's client id or App ID URI (1–512 characters), exactly as tokens carry it in `aud`",
            ));
        }
        let (_, url) = self.policy().expect("Entra is on");
        let parsed = url::Url::parse(&url).map_err(|err| {
            invalid(
                "ingest.entra.keys_url",
                format!("`{url}` is not a URL: {err}"),
            )
        })?;
        let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if parsed.scheme() != "https" && !(parsed.scheme() == "http" && loopback) {
            return Err(invalid(
                "ingest.entra.keys_url",
                format!("`{url}` must be https (plain http only on loopback, for tests)"),
            ));
        }
        Ok(())
    }
}
