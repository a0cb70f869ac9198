//! The URL guard: an event is attacker-controllable input, so a URL only receives a signed
//! request once it is https, on an allowed host, and on the one path its purpose allows for
//! the chunk's own documentId. What passes comes out typed by purpose: a [`DownloadUrl`]
//! can only be fetched, a [`DeleteUrl`] can only be deleted.

use super::address;
use super::url_path::{self, DownloadPath, is_plain_segment};
use crate::quote::quote;

mod checked;

pub use checked::{DeleteUrl, DownloadUrl, Fetch, Purpose};

/// Why a URL was refused. Every quoted input is cut to [`QUOTE_CHARS`](crate::quote::QUOTE_CHARS) characters.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GuardError {
    #[error("{purpose} `{url}` is not a valid URL")]
    NotAUrl { purpose: Purpose, url: String },
    #[error("{purpose} `{url}` is not https (set acs.allow_http only for the emulator and tests)")]
    NotHttps { purpose: Purpose, url: String },
    #[error("{purpose} `{url}` carries credentials in its authority")]
    HasUserInfo { purpose: Purpose, url: String },
    #[error("{purpose} host `{host}` is not allowed ({allowed})")]
    HostNotAllowed {
        purpose: Purpose,
        host: String,
        allowed: String,
    },
    #[error(
        "{purpose} `{url}` names a {kind} address; download hosts must be public (acs.allow_http lifts this for the emulator and tests)"
    )]
    RefusedAddress {
        purpose: Purpose,
        url: String,
        kind: &'static str,
    },
    #[error("{purpose} `{url}` is not {expected}")]
    WrongPath {
        purpose: Purpose,
        url: String,
        expected: &'static str,
    },
    #[error(
        "documentId `{0}` is empty, a dot segment, or holds `/`, `\\` or a control character: no ACS document id does"
    )]
    BadDocumentId(String),
}

/// Where a URL's host stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostKind {
    /// The ACS endpoint itself (the emulator, one-host set-ups, preview downloads).
    Endpoint,
    /// A host under one of `acs.allowed_download_hosts`.
    Storage,
    Other,
}

/// Decides which URLs may receive a signed request, and for what.
#[derive(Debug, Clone)]
pub struct UrlGuard {
    /// Lowercase, without the leading dot.
    allowed_suffixes: Vec<String>,
    acs_authority: String,
    allow_http: bool,
}

impl UrlGuard {
    /// `allowed_suffixes` are host suffixes such as `.asm.skype.com`; the ACS endpoint's own
    /// `host[:port]` is always allowed. `allow_http` also lets loopback and private
    /// addresses through (the emulator and tests).
    pub fn new(allowed_suffixes: &[String], acs_endpoint: &url::Url, allow_http: bool) -> Self {
        Self {
            allowed_suffixes: allowed_suffixes
                .iter()
                .map(|suffix| suffix.trim_start_matches('.').to_ascii_lowercase())
                .collect(),
            acs_authority: super::signing::authority(acs_endpoint).to_ascii_lowercase(),
            allow_http,
        }
    }

    /// Whether downloads may reach loopback and private addresses (`acs.allow_http`).
    pub fn allows_internal_addresses(&self) -> bool {
        self.allow_http
    }

    /// A GA chunk's `contentLocation` or `metadataLocation`, as an event sends it.
    pub fn ga_download(
        &self,
        raw: &str,
        fetch: Fetch,
        document_id: &str,
    ) -> Result<DownloadUrl, GuardError> {
        let url = self.ga(raw, fetch.into(), document_id)?;
        Ok(DownloadUrl {
            url,
            fetch,
            document_id: document_id.to_owned(),
        })
    }

    /// A GA chunk's `deleteLocation`: the object path of this chunk's document or one under it.
    pub fn ga_delete(&self, raw: &str, document_id: &str) -> Result<DeleteUrl, GuardError> {
        let url = self.ga(raw, Purpose::Delete, document_id)?;
        Ok(DeleteUrl {
            url,
            document_id: document_id.to_owned(),
        })
    }

    /// The preview download URL of `document_id` at `endpoint` (a chunk without locations).
    pub fn preview(
        &self,
        endpoint: &url::Url,
        document_id: &str,
        fetch: Fetch,
    ) -> Result<DownloadUrl, GuardError> {
        check_document_id(document_id)?;
        let mut url = endpoint.clone();
        url.set_query(None);
        url.set_fragment(None);
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .clear()
                .extend(["recording", "download", document_id]);
            if fetch == Fetch::Metadata {
                segments.push("metadata");
            }
        }
        self.stored_download(url.as_str(), fetch, document_id)
    }

    /// A URL read back from the queue for a GET: a GA location of `document_id`, or its
    /// preview download path on the endpoint.
    pub fn stored_download(
        &self,
        raw: &str,
        fetch: Fetch,
        document_id: &str,
    ) -> Result<DownloadUrl, GuardError> {
        let purpose = Purpose::from(fetch);
        check_document_id(document_id)?;
        let (url, host) = self.parse(raw, purpose)?;
        let preview = match fetch {
            Fetch::Media => DownloadPath::PreviewMedia(document_id.to_owned()),
            Fetch::Metadata => DownloadPath::PreviewMetadata(document_id.to_owned()),
        };
        match DownloadPath::of(&url) {
            Some(path) if path == preview => {
                if host != HostKind::Endpoint {
                    return Err(GuardError::HostNotAllowed {
                        purpose,
                        host: quote(&super::signing::authority(&url)),
                        allowed: "a preview download path is served by the ACS endpoint only"
                            .into(),
                    });
                }
            }
            Some(DownloadPath::Ga(id)) if id == document_id => {
                self.require_ga_host(&url, host, purpose)?
            }
            _ => {
                return Err(GuardError::WrongPath {
                    purpose,
                    url: quote(raw),
                    expected: match fetch {
                        Fetch::Media => url_path::GA_OR_PREVIEW_MEDIA,
                        Fetch::Metadata => url_path::GA_OR_PREVIEW_METADATA,
                    },
                });
            }
        }
        Ok(DownloadUrl {
            url,
            fetch,
            document_id: document_id.to_owned(),
        })
    }

    /// A `delete_url` read back from the queue: accepted exactly as [`Self::ga_delete`] does.
    pub fn stored_delete(&self, raw: &str, document_id: &str) -> Result<DeleteUrl, GuardError> {
        self.ga_delete(raw, document_id)
    }

    /// Whether a GET of `original` may follow a redirect to `target`: only to a download
    /// path of the same document on a host the guard allows.
    pub fn allows_redirect(&self, original: &url::Url, target: &url::Url) -> bool {
        let Some(path) = DownloadPath::of(original) else {
            return false;
        };
        let document_id = path.document_id();
        [Fetch::Media, Fetch::Metadata].into_iter().any(|fetch| {
            self.stored_download(target.as_str(), fetch, document_id)
                .is_ok()
        })
    }

    fn ga(&self, raw: &str, purpose: Purpose, document_id: &str) -> Result<url::Url, GuardError> {
        check_document_id(document_id)?;
        let (url, host) = self.parse(raw, purpose)?;
        self.require_ga_host(&url, host, purpose)?;
        match DownloadPath::of(&url) {
            Some(DownloadPath::Ga(id)) if id == document_id => Ok(url),
            _ => Err(GuardError::WrongPath {
                purpose,
                url: quote(raw),
                expected: url_path::GA,
            }),
        }
    }

    fn require_ga_host(
        &self,
        url: &url::Url,
        host: HostKind,
        purpose: Purpose,
    ) -> Result<(), GuardError> {
        match host {
            HostKind::Endpoint | HostKind::Storage => Ok(()),
            HostKind::Other => Err(GuardError::HostNotAllowed {
                purpose,
                host: quote(&super::signing::authority(url)),
                allowed: format!(
                    "acs.allowed_download_hosts: .{}, or the ACS endpoint {}",
                    self.allowed_suffixes.join(", ."),
                    self.acs_authority
                ),
            }),
        }
    }

    /// Scheme, authority and address checks shared by every purpose.
    fn parse(&self, raw: &str, purpose: Purpose) -> Result<(url::Url, HostKind), GuardError> {
        let url = url::Url::parse(raw).map_err(|_| GuardError::NotAUrl {
            purpose,
            url: quote(raw),
        })?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            _ => {
                return Err(GuardError::NotHttps {
                    purpose,
                    url: quote(raw),
                });
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(GuardError::HasUserInfo {
                purpose,
                url: quote(raw),
            });
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
            None => {
                return Err(GuardError::NotAUrl {
                    purpose,
                    url: quote(raw),
                });
            }
        };
        // An IP literal never reaches the client's resolver, so its address is checked here.
        if let Some(kind) = ip
            .filter(|_| !self.allow_http)
            .and_then(address::refused_kind)
        {
            return Err(GuardError::RefusedAddress {
                purpose,
                url: quote(raw),
                kind,
            });
        }
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let kind = if super::signing::authority(&url).to_ascii_lowercase() == self.acs_authority {
            HostKind::Endpoint
        } else if url.port().is_none() && ip.is_none() && self.has_allowed_suffix(&host) {
            HostKind::Storage
        } else {
            HostKind::Other
        };
        Ok((url, kind))
    }

    /// A suffix matches on a label boundary only, and never the bare suffix itself.
    fn has_allowed_suffix(&self, host: &str) -> bool {
        self.allowed_suffixes.iter().any(|suffix| {
            host.len() > suffix.len()
                && host.ends_with(suffix.as_str())
                && host[..host.len() - suffix.len()].ends_with('.')
        })
    }
}

fn check_document_id(document_id: &str) -> Result<(), GuardError> {
    if is_plain_segment(document_id) {
        Ok(())
    } else {
        Err(GuardError::BadDocumentId(quote(document_id)))
    }
}

#[cfg(test)]
mod tests;
