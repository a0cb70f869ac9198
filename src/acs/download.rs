//! Signed requests to ACS download locations.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, RANGE};

use super::address::PublicOnlyResolver;
use super::{AcsCredentials, DeleteUrl, DownloadUrl, UrlGuard, signing};

/// The most of an error answer read for its message; the rest is never downloaded.
pub const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// How long an error answer's body may take to arrive; what came by then is the message.
const ERROR_BODY_DEADLINE: Duration = Duration::from_secs(10);

/// A failed request to ACS.
#[derive(Debug, thiserror::Error)]
pub enum AcsError {
    #[error("ACS answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("request to ACS failed: {0}")]
    Transport(String),
}

/// Signs and sends requests for download URLs that passed the guard.
#[derive(Clone)]
pub struct AcsClient {
    /// For GETs: follows redirects to the same document only.
    http: reqwest::Client,
    /// For DELETEs: follows no redirect, so the delete lands where the guard checked.
    no_redirects: reqwest::Client,
    credentials: AcsCredentials,
}

impl AcsClient {
    /// `stall_timeout` bounds the wait for each read, so a stalled stream fails instead of hanging.
    pub fn new(
        credentials: AcsCredentials,
        guard: UrlGuard,
        stall_timeout: Duration,
    ) -> Result<Self, AcsError> {
        let public_only = !guard.allows_internal_addresses();
        let builder = || {
            let builder = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .read_timeout(stall_timeout)
                .user_agent(concat!("callvault/", env!("CARGO_PKG_VERSION")));
            if public_only {
                builder.dns_resolver(PublicOnlyResolver)
            } else {
                builder
            }
        };
        // A redirect is followed only to a download path of the same document on a host the
        // guard allows: reqwest drops the Authorization header across hosts, but even an
        // unsigned GET must not go anywhere.
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            let original = attempt.previous().first().cloned();
            if attempt.previous().len() >= 5 {
                attempt.error("too many redirects")
            } else if original
                .is_some_and(|original| guard.allows_redirect(&original, attempt.url()))
            {
                attempt.follow()
            } else {
                attempt.stop()
            }
        });
        let build = |builder: reqwest::ClientBuilder| {
            builder
                .build()
                .map_err(|err| AcsError::Transport(err.to_string()))
        };
        Ok(Self {
            http: build(builder().redirect(redirects))?,
            no_redirects: build(builder().redirect(reqwest::redirect::Policy::none()))?,
            credentials,
        })
    }

    fn signed_headers(&self, method: &str, url: &url::Url) -> HeaderMap {
        let date = signing::rfc1123(chrono::Utc::now());
        let signed = signing::sign(
            method,
            url,
            b"",
            &self.credentials.host(),
            self.credentials.key(),
            &date,
        );
        let mut headers = HeaderMap::new();
        let mut put = |name: &'static str, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(name, value);
            }
        };
        put("x-ms-date", &signed.date);
        put("x-ms-content-sha256", &signed.content_sha256);
        put("x-ms-host", &self.credentials.host());
        put("authorization", &signed.authorization);
        headers
    }

    /// GET `url` from byte `offset` (a `Range` request when offset > 0). Any 2xx is returned;
    /// other statuses become `AcsError::Status` with ACS's error message.
    pub async fn get(&self, url: &DownloadUrl, offset: u64) -> Result<reqwest::Response, AcsError> {
        let mut request = self
            .http
            .get(url.as_url().clone())
            .headers(self.signed_headers("GET", url.as_url()));
        if offset > 0 {
            request = request.header(RANGE, format!("bytes={offset}-"));
        }
        let response = request.send().await.map_err(transport)?;
        check(response).await
    }

    /// Signed DELETE of a chunk at ACS; only 200 counts as done.
    pub async fn delete(&self, url: &DeleteUrl) -> Result<(), AcsError> {
        let response = self
            .no_redirects
            .delete(url.as_url().clone())
            .headers(self.signed_headers("DELETE", url.as_url()))
            .send()
            .await
            .map_err(transport)?;
        match response.status().as_u16() {
            200 => Ok(()),
            _ => Err(check(response).await.err().unwrap_or(AcsError::Status {
                status: 204,
                message: "expected 200".into(),
            })),
        }
    }
}

fn transport(err: reqwest::Error) -> AcsError {
    AcsError::Transport(super::error_chain(&err))
}

/// Passes 2xx through; turns anything else into a status error carrying ACS's `message`.
async fn check(response: reqwest::Response) -> Result<reqwest::Response, AcsError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body =
        String::from_utf8_lossy(&error_body(response, ERROR_BODY_DEADLINE).await).into_owned();
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|json| {
            let error = json.get("error").unwrap_or(&json);
            error
                .get("message")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| body.chars().take(200).collect());
    Err(AcsError::Status {
        status: status.as_u16(),
        message,
    })
}

/// At most [`ERROR_BODY_LIMIT`] bytes of an error answer, read for at most `deadline`;
/// dropping the response then closes the connection instead of reading a body of any size
/// or speed.
async fn error_body(mut response: reqwest::Response, deadline: Duration) -> Vec<u8> {
    let mut body = Vec::new();
    let read = async {
        while body.len() < ERROR_BODY_LIMIT {
            match response.chunk().await {
                Ok(Some(piece)) => {
                    let room = ERROR_BODY_LIMIT - body.len();
                    body.extend_from_slice(&piece[..piece.len().min(room)]);
                }
                Ok(None) | Err(_) => break,
            }
        }
    };
    let _ = tokio::time::timeout(deadline, read).await;
    body
}

#[cfg(test)]
mod tests;
