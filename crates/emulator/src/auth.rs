//! Checking a request's HMAC-SHA256 signature the way ACS does (docs/protocol.md §2), with the same
//! string-to-sign the client side builds, so a mismatch between the two cannot hide.

use chrono::{DateTime, Utc};
use subtle::ConstantTimeEq;

use callvault_acs_protocol::signing;

/// The only signed-header list ACS's SDKs send.
const SIGNED_HEADERS: &str = "x-ms-date;host;x-ms-content-sha256";

/// How far `x-ms-date` may be from the server's clock.
const MAX_SKEW_MINUTES: i64 = 15;

/// Why a request was refused with 401. Messages never echo the key or a signature.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("the request has no Authorization header")]
    MissingAuthorization,
    #[error(
        "the Authorization header is not `HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=…`"
    )]
    MalformedAuthorization,
    #[error("the request has no x-ms-date header")]
    MissingDate,
    #[error("x-ms-date is not an RFC 1123 date")]
    MalformedDate,
    #[error("x-ms-date is more than 15 minutes away from the server's clock")]
    DateSkew,
    #[error("x-ms-content-sha256 does not match the request body")]
    ContentHashMismatch,
    #[error(
        "the signature does not match; sign `VERB\\npath_and_query\\nx-ms-date;HOST;content_hash` with HOST = the ACS endpoint's host"
    )]
    BadSignature,
}

/// The parts of a request that its signature covers.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    /// The HTTP verb, upper case.
    pub method: &'a str,
    /// Path plus `?query`, exactly as on the wire.
    pub path_and_query: &'a str,
    /// `Authorization`.
    pub authorization: Option<&'a str>,
    /// `x-ms-date`.
    pub date: Option<&'a str>,
    /// `x-ms-content-sha256`.
    pub content_sha256: Option<&'a str>,
    /// The request body the hash must match.
    pub body: &'a [u8],
}

impl<'a> Presented<'a> {
    /// Reads the signed parts of an actix request.
    pub fn from_request(request: &'a actix_web::HttpRequest, body: &'a [u8]) -> Self {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
        };
        Presented {
            method: request.method().as_str(),
            path_and_query: request
                .uri()
                .path_and_query()
                .map_or("/", |path| path.as_str()),
            authorization: header("authorization"),
            date: header("x-ms-date"),
            content_sha256: header("x-ms-content-sha256"),
            body,
        }
    }
}

/// Verifies `request` for the ACS resource at `host` (`host[:port]` of the endpoint) with
/// `key`, judging the date against `now`.
pub fn verify(
    request: &Presented<'_>,
    host: &str,
    key: &[u8],
    now: DateTime<Utc>,
) -> Result<(), AuthError> {
    let authorization = request
        .authorization
        .ok_or(AuthError::MissingAuthorization)?;
    let presented_signature = parse_authorization(authorization)?;
    let date = request.date.ok_or(AuthError::MissingDate)?;
    let sent_at = DateTime::parse_from_rfc2822(date)
        .map_err(|_| AuthError::MalformedDate)?
        .to_utc();
    if (now - sent_at).abs() > chrono::Duration::minutes(MAX_SKEW_MINUTES) {
        return Err(AuthError::DateSkew);
    }
    let body_hash = signing::content_hash(request.body);
    if request.content_sha256 != Some(body_hash.as_str()) {
        return Err(AuthError::ContentHashMismatch);
    }
    let expected = signing::hmac_base64(
        key,
        &signing::string_to_sign(
            request.method,
            request.path_and_query,
            date,
            host,
            &body_hash,
        ),
    );
    if bool::from(expected.as_bytes().ct_eq(presented_signature.as_bytes())) {
        Ok(())
    } else {
        Err(AuthError::BadSignature)
    }
}

/// Returns the signature of `HMAC-SHA256 SignedHeaders=…&Signature=…`.
fn parse_authorization(value: &str) -> Result<&str, AuthError> {
    let params = value
        .strip_prefix("HMAC-SHA256 ")
        .ok_or(AuthError::MalformedAuthorization)?;
    let mut signed_headers = None;
    let mut signature = None;
    for param in params.trim().split('&') {
        match param.split_once('=') {
            Some((name, value)) if name.eq_ignore_ascii_case("SignedHeaders") => {
                signed_headers = Some(value)
            }
            Some((name, value)) if name.eq_ignore_ascii_case("Signature") => {
                signature = Some(value)
            }
            _ => return Err(AuthError::MalformedAuthorization),
        }
    }
    match (signed_headers, signature) {
        (Some(headers), Some(signature))
            if headers.eq_ignore_ascii_case(SIGNED_HEADERS) && !signature.is_empty() =>
        {
            Ok(signature)
        }
        _ => Err(AuthError::MalformedAuthorization),
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    const KEY_B64: &str = "Y2FsbHZhdWx0LWhtYWMtdGVzdC12ZWN0b3Ita2V5LTAwMDE=";
    const DATE: &str = "Fri, 27 Nov 2026 13:00:00 GMT";
    const ACS_HOST: &str = "contoso-acs.communication.azure.com";
    const VIDEO_PATH: &str = "/v1/objects/0-eus-d12-801b3f3fc462fe8a01e6810cbff729b8/content/video";

    fn key() -> Vec<u8> {
        STANDARD.decode(KEY_B64).unwrap()
    }

    fn at_vector_date() -> DateTime<Utc> {
        DateTime::parse_from_rfc2822(DATE).unwrap().to_utc()
    }

    fn vector_get<'a>(authorization: &'a str) -> Presented<'a> {
        Presented {
            method: "GET",
            path_and_query: VIDEO_PATH,
            authorization: Some(authorization),
            date: Some(DATE),
            content_sha256: Some("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="),
            body: b"",
        }
    }

    /// docs/protocol.md §2, vector 1: a download from the storage host, signed for the ACS host.
    const VECTOR_1_AUTH: &str = "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=slNIJ0dOSiu+un/spmYbPvGu6lbHVYvyvOPe302i72Y=";

    #[test]
    fn accepts_protocol_vector_1() {
        assert_eq!(
            verify(
                &vector_get(VECTOR_1_AUTH),
                ACS_HOST,
                &key(),
                at_vector_date()
            ),
            Ok(())
        );
    }

    #[test]
    fn accepts_protocol_vector_2_with_body_and_query() {
        let body = br#"{"callLocator":{"kind":"serverCallLocator","serverCallId":"abc"}}"#;
        let request = Presented {
            method: "POST",
            path_and_query: "/calling/recordings?api-version=2025-06-15",
            authorization: Some(
                "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=aGl9Lb5VAP/ua+IqpZTVbiG0wZgy3gNwtPwmnlGHutg=",
            ),
            date: Some(DATE),
            content_sha256: Some("dJOEZUg3wuLrWbW4olBzLfpHJPiKVtpWA2A4YnGrHW0="),
            body,
        };
        assert_eq!(verify(&request, ACS_HOST, &key(), at_vector_date()), Ok(()));
    }

    #[test]
    fn accepts_what_the_client_signer_produces_and_rejects_it_tampered() {
        let url = url::Url::parse("http://127.0.0.1:8090/recording/download/doc-1?x=1").unwrap();
        let signed = signing::sign("GET", &url, b"", "127.0.0.1:8090", &key(), DATE);
        let good = Presented {
            method: "GET",
            path_and_query: "/recording/download/doc-1?x=1",
            authorization: Some(&signed.authorization),
            date: Some(&signed.date),
            content_sha256: Some(&signed.content_sha256),
            body: b"",
        };
        let now = at_vector_date();
        assert_eq!(verify(&good, "127.0.0.1:8090", &key(), now), Ok(()));
        let other_path = Presented {
            path_and_query: "/recording/download/doc-2?x=1",
            ..good
        };
        assert_eq!(
            verify(&other_path, "127.0.0.1:8090", &key(), now),
            Err(AuthError::BadSignature)
        );
        let other_method = Presented {
            method: "DELETE",
            ..good
        };
        assert_eq!(
            verify(&other_method, "127.0.0.1:8090", &key(), now),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify(&good, "127.0.0.1:8091", &key(), now),
            Err(AuthError::BadSignature),
            "a signature for another host must not pass"
        );
        assert_eq!(
            verify(&good, "127.0.0.1:8090", b"another key", now),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn signing_the_storage_host_instead_of_the_acs_host_is_refused() {
        let url =
            url::Url::parse(&format!("https://us-storage.asm.skype.com{VIDEO_PATH}")).unwrap();
        let signed = signing::sign("GET", &url, b"", "us-storage.asm.skype.com", &key(), DATE);
        assert_eq!(
            verify(
                &vector_get(&signed.authorization),
                ACS_HOST,
                &key(),
                at_vector_date()
            ),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn a_body_that_does_not_match_its_hash_is_refused() {
        let request = Presented {
            body: b"smuggled",
            ..vector_get(VECTOR_1_AUTH)
        };
        assert_eq!(
            verify(&request, ACS_HOST, &key(), at_vector_date()),
            Err(AuthError::ContentHashMismatch)
        );
    }

    #[test]
    fn a_date_more_than_15_minutes_off_is_refused_either_way() {
        let request = vector_get(VECTOR_1_AUTH);
        let date = at_vector_date();
        for now in [
            date + chrono::Duration::minutes(16),
            date - chrono::Duration::minutes(16),
        ] {
            assert_eq!(
                verify(&request, ACS_HOST, &key(), now),
                Err(AuthError::DateSkew)
            );
        }
        let within = date + chrono::Duration::minutes(14);
        assert_eq!(verify(&request, ACS_HOST, &key(), within), Ok(()));
    }

    #[test]
    fn missing_or_malformed_headers_are_named() {
        let now = at_vector_date();
        let missing = Presented {
            authorization: None,
            ..vector_get(VECTOR_1_AUTH)
        };
        assert_eq!(
            verify(&missing, ACS_HOST, &key(), now),
            Err(AuthError::MissingAuthorization)
        );
        for bad in [
            "Bearer abc",
            "HMAC-SHA256 Signature=abc",
            "HMAC-SHA256 SignedHeaders=host&Signature=abc",
            "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=",
        ] {
            assert_eq!(
                verify(&vector_get(bad), ACS_HOST, &key(), now),
                Err(AuthError::MalformedAuthorization),
                "{bad}"
            );
        }
        let no_date = Presented {
            date: None,
            ..vector_get(VECTOR_1_AUTH)
        };
        assert_eq!(
            verify(&no_date, ACS_HOST, &key(), now),
            Err(AuthError::MissingDate)
        );
        let bad_date = Presented {
            date: Some("yesterday"),
            ..vector_get(VECTOR_1_AUTH)
        };
        assert_eq!(
            verify(&bad_date, ACS_HOST, &key(), now),
            Err(AuthError::MalformedDate)
        );
    }
}
