//! The outside world the worker talks to: Azure Communication Services.

pub mod connection;
pub mod download;
pub mod signing;
pub mod url_guard;

pub use connection::AcsCredentials;
pub use download::AcsClient;
pub use url_guard::{DownloadUrl, UrlGuard};
