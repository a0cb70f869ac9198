//! HTTP behaviour shared by the S3 and Azure backends: bounded retries and timeouts, and the
//! few signed requests object_store has no method for (setting metadata after a multipart
//! upload).

use std::time::Duration;

use object_store::client::HttpRequest;
use object_store::{BackoffConfig, ClientConfigKey, RetryConfig};

use super::StorageError;

/// object_store's default (10 retries over up to 3 minutes) would hold a worker on a dead store;
/// a few quick retries absorb a blip, then the job's own backoff takes over.
pub(super) fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: 3,
        retry_timeout: Duration::from_secs(30),
    }
}

/// A refused connection means the store is down: fail fast and let the job back off.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Client settings as object_store config pairs, so that values from the environment
/// (`AWS_*`, `AZURE_*`) other than these stay in force.
pub(super) fn client_config(request_timeout_secs: u64) -> Vec<(ClientConfigKey, String)> {
    vec![
        (ClientConfigKey::Timeout, format!("{request_timeout_secs}s")),
        (
            ClientConfigKey::ConnectTimeout,
            format!("{}s", CONNECT_TIMEOUT.as_secs()),
        ),
    ]
}

/// True for `http://` endpoints (S3-compatible test servers, Azurite), which object_store
/// refuses unless told otherwise.
pub(super) fn is_plain_http(endpoint: &str) -> bool {
    endpoint.starts_with("http://")
}

/// The client for our own signed requests, with the same timeouts as object_store's.
pub(super) fn http_client(request_timeout_secs: u64) -> Result<reqwest::Client, StorageError> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(Duration::from_secs(request_timeout_secs))
        .build()
        .map_err(|err| StorageError::Request(format!("cannot build the HTTP client: {err}")))
}

/// Sends an already signed request (a body, if any, held in memory); a few quick retries on
/// transport errors and 5xx, as object_store does. Returns the response body.
pub(super) async fn send(
    client: &reqwest::Client,
    request: &HttpRequest,
    what: &str,
) -> Result<String, StorageError> {
    match send_for_answer(client, request, what).await? {
        Ok(answer) => Ok(answer.body),
        Err((_, failure)) => Err(StorageError::Request(failure)),
    }
}

/// A successful answer to one of our own requests.
pub(super) struct Answer {
    pub headers: http::HeaderMap,
    pub body: String,
}

/// Like `send`, keeping the answer's headers; a 404 is `Ok(None)` (a HEAD of an absent object).
pub(super) async fn send_for_headers(
    client: &reqwest::Client,
    request: &HttpRequest,
    what: &str,
) -> Result<Option<Answer>, StorageError> {
    match send_for_answer(client, request, what).await? {
        Ok(answer) => Ok(Some(answer)),
        Err((status, _)) if status == http::StatusCode::NOT_FOUND => Ok(None),
        Err((_, failure)) => Err(StorageError::Request(failure)),
    }
}

/// The answer, or a refusal (4xx and the like: not retried) with its status and description.
type Outcome = Result<Answer, (http::StatusCode, String)>;

async fn send_for_answer(
    client: &reqwest::Client,
    request: &HttpRequest,
    what: &str,
) -> Result<Outcome, StorageError> {
    let retry = retry_config();
    let mut delay = retry.backoff.init_backoff;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let outcome = client
            .request(request.method().clone(), request.uri().to_string())
            .headers(request.headers().clone())
            .body(request.body().as_bytes().cloned().unwrap_or_default())
            .send()
            .await;
        let failure = match outcome {
            Ok(response) if response.status().is_success() => {
                let headers = response.headers().clone();
                let body = response.text().await.map_err(|err| {
                    StorageError::Request(format!("{what}: reading the answer: {err}"))
                })?;
                return Ok(Ok(Answer { headers, body }));
            }
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                let failure = format!("{what}: {status}: {}", first_line(&body));
                if !status.is_server_error() {
                    return Ok(Err((status, failure)));
                }
                failure
            }
            // Without the URL: a SAS credential travels in its query string.
            Err(err) => format!("{what}: {}", err.without_url()),
        };
        if attempt > retry.max_retries {
            return Err(StorageError::Request(failure));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(retry.backoff.max_backoff);
    }
}

/// Error bodies are XML documents; one line of them is enough for a log.
fn first_line(body: &str) -> String {
    body.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(300)
        .collect()
}

/// A bare request for an authorizer to sign.
pub(super) fn request(
    method: http::Method,
    url: &url::Url,
    headers: &[(&str, &str)],
) -> Result<HttpRequest, StorageError> {
    let mut builder = http::Request::builder().method(method).uri(url.as_str());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(Vec::<u8>::new().into())
        .map_err(|err| StorageError::Request(format!("cannot build a request: {err}")))
}
