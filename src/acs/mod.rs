//! The outside world the worker talks to: Azure Communication Services.

pub mod address;
pub mod connection;
pub mod control;
pub mod download;
pub mod signing;
pub mod url_guard;
mod url_path;

pub use connection::AcsCredentials;
pub use download::AcsClient;
pub use url_guard::{DeleteUrl, DownloadUrl, Fetch, Purpose, UrlGuard};

/// An error with its causes, `outer: inner: innermost`, so "connection refused" is not lost.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    message
}
