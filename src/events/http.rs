//! The HTTP client every sink uses: bounded in time, no redirects, and (unless
//! `events.allow_private_addresses`) connecting to public addresses only, as downloads do.
//! A literal-address URL is checked at start-up; a name is checked at each resolution here.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::acs::address::refused_kind;

/// How much of a receiver's answer is read: enough for an error message.
pub const ANSWER_BYTES: usize = 4096;

#[derive(Debug, thiserror::Error)]
#[error(
    "sink host `{host}` resolves only to refused addresses ({found}); sinks must be public (events.allow_private_addresses = true lifts this)"
)]
struct RefusedSink {
    host: String,
    found: String,
}

#[derive(Debug, Clone, Copy)]
struct PublicSinksOnly;

impl Resolve for PublicSinksOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (public, refused): (Vec<_>, Vec<_>) = resolved
                .into_iter()
                .partition(|addr| refused_kind(addr.ip()).is_none());
            if public.is_empty() {
                let found = refused
                    .iter()
                    .take(4)
                    .map(|addr| {
                        format!(
                            "{}: {}",
                            addr.ip(),
                            refused_kind(addr.ip()).unwrap_or("none")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(Box::new(RefusedSink { host, found }) as _);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// The client for deliveries.
pub fn client(timeout: Duration, allow_private: bool) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("callvault/", env!("CARGO_PKG_VERSION")));
    if !allow_private {
        builder = builder.dns_resolver(PublicSinksOnly);
    }
    builder.build().map_err(|err| err.to_string())
}

/// At most [`ANSWER_BYTES`] of the answer, lossily as text, for a log line or `last_error`.
pub async fn bounded_answer(response: reqwest::Response) -> String {
    let mut stream = response.bytes_stream();
    let mut kept = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = ANSWER_BYTES - kept.len();
        kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if kept.len() >= ANSWER_BYTES {
            break;
        }
    }
    String::from_utf8_lossy(&kept).trim().to_owned()
}

/// A `Retry-After` header: seconds, or an HTTP date.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// How one delivery attempt went, as a sink reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    Delivered,
    /// Try again later; `after` is the receiver's `Retry-After`.
    Retry {
        error: String,
        after: Option<Duration>,
    },
    /// The receiver is gone for good (410): the sink stops until an operator restarts it.
    Gone {
        error: String,
    },
    /// This event can never be delivered to this sink.
    Refused {
        error: String,
    },
}

/// A 2xx is delivered, 410 is gone, anything else is tried again (429 and 5xx honouring
/// `Retry-After`).
pub async fn judge(response: reqwest::Response) -> Sent {
    let status = response.status();
    if status.is_success() {
        return Sent::Delivered;
    }
    let after = retry_after(response.headers());
    let answer = bounded_answer(response).await;
    let error = if answer.is_empty() {
        format!("answered {status}")
    } else {
        format!("answered {status}: {answer}")
    };
    if status == reqwest::StatusCode::GONE {
        Sent::Gone { error }
    } else {
        Sent::Retry { error, after }
    }
}

/// A transport error, as text without the URL's query (a SAS token).
pub fn transport(err: reqwest::Error) -> Sent {
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    Sent::Retry {
        error: text,
        after: None,
    }
}
