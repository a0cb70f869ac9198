//! The SSRF guard: an event is attacker-controllable input, so a download URL is only
//! trusted once it is https on an allowed host (or the ACS endpoint itself).

use std::fmt;

/// A URL that passed the guard: the only kind the download client will sign a request for.
#[derive(Clone, PartialEq, Eq)]
pub struct DownloadUrl(url::Url);

impl DownloadUrl {
    pub fn as_url(&self) -> &url::Url {
        &self.0
    }
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for DownloadUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DownloadUrl({})", self.0)
    }
}

impl fmt::Display for DownloadUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GuardError {
    #[error("`{0}` is not a valid URL")]
    NotAUrl(String),
    #[error("`{0}` is not https (set acs.allow_http only for the emulator and tests)")]
    NotHttps(String),
    #[error("download host `{host}` is not allowed (acs.allowed_download_hosts: {allowed})")]
    HostNotAllowed { host: String, allowed: String },
    #[error("`{0}` carries credentials in its authority")]
    HasUserInfo(String),
}

/// Decides which URLs may receive a signed request.
#[derive(Debug, Clone)]
pub struct UrlGuard {
    allowed_suffixes: Vec<String>,
    acs_authority: String,
    allow_http: bool,
}

impl UrlGuard {
    /// `allowed_suffixes` are host suffixes such as `.asm.skype.com`; the ACS endpoint's own
    /// `host[:port]` is always allowed.
    pub fn new(allowed_suffixes: &[String], acs_endpoint: &url::Url, allow_http: bool) -> Self {
        Self {
            allowed_suffixes: allowed_suffixes
                .iter()
                .map(|suffix| suffix.to_ascii_lowercase())
                .collect(),
            acs_authority: super::signing::authority(acs_endpoint).to_ascii_lowercase(),
            allow_http,
        }
    }

    pub fn check(&self, raw: &str) -> Result<DownloadUrl, GuardError> {
        let url = url::Url::parse(raw).map_err(|_| GuardError::NotAUrl(raw.to_owned()))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            _ => return Err(GuardError::NotHttps(raw.to_owned())),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(GuardError::HasUserInfo(raw.to_owned()));
        }
        let host = url
            .host_str()
            .ok_or_else(|| GuardError::NotAUrl(raw.to_owned()))?
            .to_ascii_lowercase();
        let is_endpoint =
            super::signing::authority(&url).to_ascii_lowercase() == self.acs_authority;
        // A suffix only matches on a label boundary and never on the bare suffix itself.
        let has_allowed_suffix = url.port().is_none()
            && self.allowed_suffixes.iter().any(|suffix| {
                let suffix = suffix.trim_start_matches('.');
                host.len() > suffix.len()
                    && host.ends_with(suffix)
                    && host[..host.len() - suffix.len()].ends_with('.')
            });
        if is_endpoint || has_allowed_suffix {
            Ok(DownloadUrl(url))
        } else {
            Err(GuardError::HostNotAllowed {
                host: super::signing::authority(&url),
                allowed: self.allowed_suffixes.join(", "),
            })
        }
    }

    /// Builds the preview download URL `{endpoint}/recording/download/{documentId}[/metadata]`.
    pub fn preview_url(endpoint: &url::Url, document_id: &str, metadata: bool) -> DownloadUrl {
        let mut url = endpoint.clone();
        {
            let mut segments = url
                .path_segments_mut()
                .expect("an http(s) endpoint has a path");
            segments
                .pop_if_empty()
                .extend(["recording", "download", document_id]);
            if metadata {
                segments.push("metadata");
            }
        }
        DownloadUrl(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(allow_http: bool) -> UrlGuard {
        let suffixes = vec![
            ".asm.skype.com".to_owned(),
            ".asyncgw.teams.microsoft.com".to_owned(),
        ];
        UrlGuard::new(
            &suffixes,
            &url::Url::parse("https://contoso.communication.azure.com/").unwrap(),
            allow_http,
        )
    }

    #[test]
    fn accepts_storage_hosts_and_the_endpoint() {
        assert!(
            guard(false)
                .check("https://us-storage.asm.skype.com/v1/objects/x/content/video")
                .is_ok()
        );
        assert!(
            guard(false)
                .check("https://contoso.communication.azure.com/recording/download/x")
                .is_ok()
        );
    }

    #[test]
    fn refuses_lookalike_hosts() {
        for raw in [
            "https://evilasm.skype.com/x",
            "https://asm.skype.com/x",
            "https://asm.skype.com.evil.example/x",
            "https://us-storage.asm.skype.com:8443/x",
            "https://contoso.communication.azure.com.evil.example/x",
            "https://user:pw@us-storage.asm.skype.com/x",
        ] {
            assert!(guard(false).check(raw).is_err(), "{raw} should be refused");
        }
    }

    #[test]
    fn refuses_http_unless_allowed() {
        let endpoint = url::Url::parse("http://127.0.0.1:9000/").unwrap();
        let strict = UrlGuard::new(&[], &endpoint, false);
        let lax = UrlGuard::new(&[], &endpoint, true);
        assert!(matches!(
            strict.check("http://127.0.0.1:9000/a"),
            Err(GuardError::NotHttps(_))
        ));
        assert!(lax.check("http://127.0.0.1:9000/a").is_ok());
        assert!(matches!(
            lax.check("http://127.0.0.1:9001/a"),
            Err(GuardError::HostNotAllowed { .. })
        ));
    }

    #[test]
    fn preview_url_escapes_the_document_id() {
        let endpoint = url::Url::parse("https://contoso.communication.azure.com/").unwrap();
        assert_eq!(
            UrlGuard::preview_url(&endpoint, "a/../b", true).as_str(),
            "https://contoso.communication.azure.com/recording/download/a%2F..%2Fb/metadata"
        );
    }
}
