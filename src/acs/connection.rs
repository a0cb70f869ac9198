//! The ACS connection string: `endpoint=https://NAME.communication.azure.com/;accesskey=BASE64`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Where ACS is and the key that signs requests to it.
#[derive(Clone)]
pub struct AcsCredentials {
    /// The resource endpoint, e.g. `https://contoso.communication.azure.com/`.
    pub endpoint: url::Url,
    /// The decoded access key.
    key: Vec<u8>,
}

impl std::fmt::Debug for AcsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcsCredentials")
            .field("endpoint", &self.endpoint.as_str())
            .field("key", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConnectionStringError {
    #[error("the connection string has no `endpoint=` part")]
    MissingEndpoint,
    #[error("the connection string has no `accesskey=` part")]
    MissingAccessKey,
    #[error("the endpoint `{0}` is not an http(s) URL")]
    BadEndpoint(String),
    #[error("the access key is not valid base64")]
    BadAccessKey,
}

impl AcsCredentials {
    /// Builds credentials from an endpoint URL and a base64 access key.
    pub fn new(endpoint: &str, access_key: &str) -> Result<Self, ConnectionStringError> {
        let endpoint = url::Url::parse(endpoint.trim())
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some())
            .ok_or_else(|| ConnectionStringError::BadEndpoint(endpoint.to_owned()))?;
        let key = STANDARD
            .decode(access_key.trim())
            .map_err(|_| ConnectionStringError::BadAccessKey)?;
        Ok(Self { endpoint, key })
    }

    /// Parses `endpoint=…;accesskey=…` (keys case-insensitive, order free).
    pub fn parse(connection_string: &str) -> Result<Self, ConnectionStringError> {
        let mut endpoint = None;
        let mut access_key = None;
        for part in connection_string
            .split(';')
            .map(str::trim)
            .filter(|part| !part.is_empty())
        {
            let Some((name, value)) = part.split_once('=') else {
                continue;
            };
            match name.trim().to_ascii_lowercase().as_str() {
                "endpoint" => endpoint = Some(value.to_owned()),
                "accesskey" => access_key = Some(value.to_owned()),
                _ => {}
            }
        }
        Self::new(
            &endpoint.ok_or(ConnectionStringError::MissingEndpoint)?,
            &access_key.ok_or(ConnectionStringError::MissingAccessKey)?,
        )
    }

    /// The access key bytes, for signing.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// `host[:port]` of the endpoint: what every signature covers.
    pub fn host(&self) -> String {
        super::signing::authority(&self.endpoint)
    }

    /// The connection string for these credentials.
    pub fn to_connection_string(&self) -> String {
        format!(
            "endpoint={};accesskey={}",
            self.endpoint,
            STANDARD.encode(&self.key)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_endpoint_and_key_in_any_order_and_case() {
        let creds =
            AcsCredentials::parse("AccessKey=aGVsbG8=;Endpoint=https://x.communication.azure.com/")
                .unwrap();
        assert_eq!(creds.host(), "x.communication.azure.com");
        assert_eq!(creds.key(), b"hello");
    }

    #[test]
    fn names_the_missing_part() {
        assert_eq!(
            AcsCredentials::parse("accesskey=aGVsbG8=").unwrap_err(),
            ConnectionStringError::MissingEndpoint
        );
        assert_eq!(
            AcsCredentials::parse("endpoint=https://x.communication.azure.com/").unwrap_err(),
            ConnectionStringError::MissingAccessKey
        );
        assert_eq!(
            AcsCredentials::parse("endpoint=https://x/;accesskey=!!").unwrap_err(),
            ConnectionStringError::BadAccessKey
        );
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let creds = AcsCredentials::parse("endpoint=https://x/;accesskey=c2VjcmV0").unwrap();
        assert!(!format!("{creds:?}").contains("c2VjcmV0"));
    }
}
