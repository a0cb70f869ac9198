//! URLs typed by what they may be used for. Only the guard builds them (their fields are
//! private to it), so holding one proves the check was made for that purpose and document.

use std::fmt;

/// What a GET fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    Media,
    Metadata,
}

/// What a URL is for, named as an event names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Content,
    Metadata,
    Delete,
}

impl From<Fetch> for Purpose {
    fn from(fetch: Fetch) -> Self {
        match fetch {
            Fetch::Media => Purpose::Content,
            Fetch::Metadata => Purpose::Metadata,
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Purpose::Content => "contentLocation",
            Purpose::Metadata => "metadataLocation",
            Purpose::Delete => "deleteLocation",
        })
    }
}

/// A URL that passed the guard for fetching one document's media or metadata: the only
/// kind the download client will sign a GET for.
#[derive(Clone, PartialEq, Eq)]
pub struct DownloadUrl {
    pub(super) url: url::Url,
    pub(super) fetch: Fetch,
    pub(super) document_id: String,
}

impl DownloadUrl {
    pub fn as_url(&self) -> &url::Url {
        &self.url
    }
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }
    pub fn fetch(&self) -> Fetch {
        self.fetch
    }
    pub fn document_id(&self) -> &str {
        &self.document_id
    }
}

/// A GA `deleteLocation` that passed the guard for one document: the only kind the
/// download client will sign a DELETE for.
#[derive(Clone, PartialEq, Eq)]
pub struct DeleteUrl {
    pub(super) url: url::Url,
    pub(super) document_id: String,
}

impl DeleteUrl {
    pub fn as_url(&self) -> &url::Url {
        &self.url
    }
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }
    pub fn document_id(&self) -> &str {
        &self.document_id
    }
}

macro_rules! url_display {
    ($type:ident) => {
        impl fmt::Debug for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($type), self.url)
            }
        }
        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.url.fmt(f)
            }
        }
    };
}
url_display!(DownloadUrl);
url_display!(DeleteUrl);
