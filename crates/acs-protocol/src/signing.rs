//! HMAC-SHA256 request signing as ACS expects it (docs/protocol.md §2), with the test vectors
//! of docs/protocol.md.
//!
//! The host that is signed is always the ACS resource host, even when the request goes to a
//! storage host: signing the storage host is the classic cause of 401s on downloads.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The headers that authenticate one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `x-ms-date`, RFC 1123.
    pub date: String,
    /// `x-ms-content-sha256`, base64 of the body's SHA-256.
    pub content_sha256: String,
    /// `Authorization: HMAC-SHA256 SignedHeaders=…&Signature=…`.
    pub authorization: String,
}

/// Formats a time the way `x-ms-date` wants it: `Fri, 27 Nov 2026 13:00:00 GMT`.
pub fn rfc1123(time: chrono::DateTime<chrono::Utc>) -> String {
    time.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// base64(SHA-256(body)).
pub fn content_hash(body: &[u8]) -> String {
    STANDARD.encode(Sha256::digest(body))
}

/// The exact string ACS signs.
pub fn string_to_sign(
    method: &str,
    path_and_query: &str,
    date: &str,
    host: &str,
    content_hash: &str,
) -> String {
    format!("{method}\n{path_and_query}\n{date};{host};{content_hash}")
}

/// base64(HMAC-SHA256(key, message)).
pub fn hmac_base64(key: &[u8], message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Signs a request to `url` for the ACS resource at `acs_host` (host[:port] of the endpoint).
pub fn sign(
    method: &str,
    url: &url::Url,
    body: &[u8],
    acs_host: &str,
    key: &[u8],
    date: &str,
) -> SignedHeaders {
    let hash = content_hash(body);
    let signature = hmac_base64(
        key,
        &string_to_sign(method, &path_and_query(url), date, acs_host, &hash),
    );
    SignedHeaders {
        date: date.to_owned(),
        content_sha256: hash,
        authorization: format!(
            "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}"
        ),
    }
}

/// The path plus `?query` when there is one, as it goes on the wire.
pub fn path_and_query(url: &url::Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

/// The `host[:port]` that ACS signs for an endpoint URL (the port only when not the default).
pub fn authority(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_B64: &str = "Y2FsbHZhdWx0LWhtYWMtdGVzdC12ZWN0b3Ita2V5LTAwMDE=";
    const DATE: &str = "Fri, 27 Nov 2026 13:00:00 GMT";
    const ACS_HOST: &str = "contoso-acs.communication.azure.com";

    fn key() -> Vec<u8> {
        STANDARD.decode(KEY_B64).unwrap()
    }

    #[test]
    fn download_from_storage_host_signs_the_acs_host() {
        let url = url::Url::parse(
            "https://us-storage.asm.skype.com/v1/objects/0-eus-d12-801b3f3fc462fe8a01e6810cbff729b8/content/video",
        )
        .unwrap();
        let headers = sign("GET", &url, b"", ACS_HOST, &key(), DATE);
        assert_eq!(
            headers.content_sha256,
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(
            headers.authorization,
            "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=slNIJ0dOSiu+un/spmYbPvGu6lbHVYvyvOPe302i72Y="
        );
    }

    #[test]
    fn control_api_post_signs_body_and_query() {
        let url = url::Url::parse(
            "https://contoso-acs.communication.azure.com/calling/recordings?api-version=2025-06-15",
        )
        .unwrap();
        let body = br#"{"callLocator":{"kind":"serverCallLocator","serverCallId":"abc"}}"#;
        let headers = sign("POST", &url, body, ACS_HOST, &key(), DATE);
        assert_eq!(
            headers.content_sha256,
            "dJOEZUg3wuLrWbW4olBzLfpHJPiKVtpWA2A4YnGrHW0="
        );
        assert_eq!(
            headers.authorization,
            "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=aGl9Lb5VAP/ua+IqpZTVbiG0wZgy3gNwtPwmnlGHutg="
        );
    }

    #[test]
    fn rfc1123_matches_x_ms_date_format() {
        let time = chrono::DateTime::parse_from_rfc3339("2026-11-27T13:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(rfc1123(time), DATE);
    }

    #[test]
    fn authority_keeps_a_non_default_port() {
        assert_eq!(
            authority(&url::Url::parse("http://127.0.0.1:8081/").unwrap()),
            "127.0.0.1:8081"
        );
        assert_eq!(
            authority(&url::Url::parse("https://a.communication.azure.com/").unwrap()),
            "a.communication.azure.com"
        );
    }
}
