//! The webhook secret: `?code=SECRET` (what an Event Grid endpoint URL carries) or the
//! `x-callvault-secret` header, compared in constant time.

use actix_web::HttpRequest;
use subtle::ConstantTimeEq;

use crate::secret::Secret;

pub const SECRET_HEADER: &str = "x-callvault-secret";

/// Who may call the webhook.
#[derive(Debug, Clone)]
pub enum WebhookAuth {
    Secret(Secret),
    Anonymous,
}

impl WebhookAuth {
    pub fn allows(&self, request: &HttpRequest) -> bool {
        let WebhookAuth::Secret(expected) = self else {
            return true;
        };
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
}
