//! Azure Storage's Shared Key authorisation (the Blob, Queue and File services' scheme), as
//! far as the queue requests of callvault and of the emulator's queue delivery need it: the
//! standard headers they send, the `x-ms-` headers, and the canonical resource. One
//! canonicalisation for both sides, so a queue the archiver reads is one the emulator can
//! fill; a difference would show only as a 403 from Azure.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Azurite's account, whose key is published.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's published account key (base64), used when no credential is given for its account.
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// What of one request the signature covers. The only `x-ms-` headers sent are
/// `x-ms-date` and `x-ms-version`.
#[derive(Debug, Clone, Copy)]
pub struct StorageRequest<'a> {
    pub method: &'a str,
    /// The full URL, query included (without a SAS: a signed request carries none).
    pub url: &'a url::Url,
    pub content_length: usize,
    /// Empty when the request has no body.
    pub content_type: &'a str,
    /// `x-ms-date`, RFC 1123.
    pub date: &'a str,
    /// `x-ms-version`.
    pub version: &'a str,
}

/// The account a storage URL names: its first host label, or for a path-style URL (an IP
/// address or localhost, as Azurite serves) its first path segment.
pub fn account_of(url: &url::Url) -> String {
    let path_style = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        _ => true,
    };
    if path_style {
        url.path_segments()
            .and_then(|mut segments| segments.next())
            .unwrap_or_default()
            .to_owned()
    } else {
        url.host_str()
            .and_then(|host| host.split('.').next())
            .unwrap_or_default()
            .to_owned()
    }
}

/// The exact string Shared Key signs for `request` to `account`.
pub fn string_to_sign(account: &str, request: &StorageRequest<'_>) -> String {
    let mut query: Vec<(String, String)> = request
        .url
        .query_pairs()
        .map(|(name, value)| (name.to_lowercase(), value.into_owned()))
        .collect();
    query.sort();
    let mut resource = format!("/{account}{}", request.url.path());
    for (name, value) in query {
        resource.push_str(&format!("\n{name}:{value}"));
    }
    // Since version 2015-02-21 a zero Content-Length is signed as empty.
    let length = match request.content_length {
        0 => String::new(),
        length => length.to_string(),
    };
    format!(
        "{method}\n\n\n{length}\n\n{content_type}\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n{resource}",
        method = request.method,
        content_type = request.content_type,
        date = request.date,
        version = request.version,
    )
}

/// base64(HMAC-SHA256(key, string to sign)); `key` is the raw account key (decoded).
pub fn signature(key: &[u8], account: &str, request: &StorageRequest<'_>) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(string_to_sign(account, request).as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The `Authorization` header value: `SharedKey ACCOUNT:SIGNATURE`.
pub fn authorization(key: &[u8], account: &str, request: &StorageRequest<'_>) -> String {
    format!("SharedKey {account}:{}", signature(key, account, request))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &str = "Fri, 27 Nov 2026 13:00:00 GMT";
    const VERSION: &str = "2021-08-06";

    fn key() -> Vec<u8> {
        STANDARD.decode(AZURITE_KEY).unwrap()
    }

    #[test]
    fn the_account_comes_from_the_host_or_from_a_path_style_url() {
        let azure = url::Url::parse("https://acme.queue.core.windows.net/recordings").unwrap();
        assert_eq!(account_of(&azure), "acme");
        let azurite =
            url::Url::parse("http://127.0.0.1:47203/devstoreaccount1/recordings").unwrap();
        assert_eq!(account_of(&azurite), "devstoreaccount1");
        let localhost = url::Url::parse("http://localhost:10001/dev/recordings").unwrap();
        assert_eq!(account_of(&localhost), "dev");
    }

    // The vectors were computed independently (Python's hmac over the documented string).
    #[test]
    fn a_put_message_on_a_path_style_queue_signs_the_account_twice_in_the_resource() {
        let url = url::Url::parse(
            "http://127.0.0.1:10001/devstoreaccount1/recordings/messages?messagettl=-1",
        )
        .unwrap();
        let request = StorageRequest {
            method: "POST",
            url: &url,
            content_length: 120,
            content_type: "application/xml",
            date: DATE,
            version: VERSION,
        };
        assert!(
            string_to_sign(AZURITE_ACCOUNT, &request).ends_with(
                "\n/devstoreaccount1/devstoreaccount1/recordings/messages\nmessagettl:-1"
            )
        );
        assert_eq!(
            authorization(&key(), AZURITE_ACCOUNT, &request),
            "SharedKey devstoreaccount1:Us/6/3IR1MxKNY+t2iyMLixMuhVAsZBi69rs3SKRe5c="
        );
    }

    #[test]
    fn query_parameters_are_signed_sorted_and_an_empty_body_has_no_length() {
        let url = url::Url::parse(
            "https://acme.queue.core.windows.net/recordings/messages?visibilitytimeout=30&numofmessages=32",
        )
        .unwrap();
        let request = StorageRequest {
            method: "GET",
            url: &url,
            content_length: 0,
            content_type: "",
            date: DATE,
            version: VERSION,
        };
        assert_eq!(
            signature(&key(), "acme", &request),
            "AJ0CSvH5Qk29n7NwUYMcyDluU681HYwdADiLJmX+7KE="
        );
    }
}
