//! The Event Grid namespace pull API (api-version 2024-06-01) on one event subscription:
//! receive, and settling lock tokens with acknowledge, release, reject and renewLock.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::secret::Secret;

const API_VERSION: &str = "2024-06-01";
/// A receive of 100 events of 1 MiB each is the most Event Grid sends.
const MAX_RECEIVE_BYTES: usize = 110 * 1024 * 1024;
/// Settle answers list tokens; a few KiB each at most.
const MAX_SETTLE_BYTES: usize = 4 * 1024 * 1024;
/// Error bodies are read this far, for the message.
const MAX_ERROR_BYTES: usize = 4 * 1024;

/// One received event, locked for us until settled or its lock lapses.
#[derive(Debug, Clone)]
pub struct Received {
    pub lock_token: String,
    pub delivery_count: u32,
    /// The CloudEvent as published.
    pub event: Value,
}

/// Why a call to the namespace failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("cannot reach the Event Grid namespace: {0}")]
    Transport(String),
    #[error("the Event Grid namespace answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("the Event Grid namespace's answer is not what its API returns: {0}")]
    Malformed(String),
}

/// A lock token a settle action could not settle, with the namespace's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedToken {
    pub lock_token: String,
    pub code: String,
    pub message: String,
}

impl FailedToken {
    /// The lock is gone (lapsed, or the event was settled): trying again cannot help.
    pub fn is_lost(&self) -> bool {
        self.code.eq_ignore_ascii_case("TokenLost")
    }
}

/// How to settle lock tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Done: the event is removed.
    Acknowledge,
    /// Offer it again after the delay, counting a delivery.
    Release { delay_secs: u64 },
    /// It can never be accepted: to the dead letter.
    Reject,
    /// Keep the lock for another lock duration.
    RenewLock,
}

impl Settle {
    fn action(self) -> &'static str {
        match self {
            Settle::Acknowledge => "acknowledge",
            Settle::Release { .. } => "release",
            Settle::Reject => "reject",
            Settle::RenewLock => "renewLock",
        }
    }
}

#[derive(Debug, Clone)]
pub struct PullClient {
    http: reqwest::Client,
    /// `…/topics/{topic}/eventsubscriptions/{subscription}`.
    subscription_url: url::Url,
    key: Secret,
}

#[derive(Deserialize)]
struct ReceiveAnswer {
    value: Vec<ReceiveDetails>,
}

#[derive(Deserialize)]
struct ReceiveDetails {
    #[serde(rename = "brokerProperties")]
    broker: BrokerProperties,
    event: Value,
}

#[derive(Deserialize)]
struct BrokerProperties {
    #[serde(rename = "lockToken")]
    lock_token: String,
    #[serde(rename = "deliveryCount", default)]
    delivery_count: u32,
}

#[derive(Deserialize)]
struct SettleAnswer {
    #[serde(rename = "failedLockTokens", default)]
    failed: Vec<FailedDetails>,
}

#[derive(Deserialize)]
struct FailedDetails {
    #[serde(rename = "lockToken")]
    lock_token: String,
    #[serde(default)]
    error: Option<ErrorDetails>,
}

#[derive(Deserialize, Default)]
struct ErrorDetails {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

impl PullClient {
    /// `request_timeout` bounds each call beyond the receive's own wait.
    pub fn new(
        endpoint: &url::Url,
        topic: &str,
        subscription: &str,
        key: Secret,
        request_timeout: Duration,
    ) -> Result<Self, PullError> {
        let mut subscription_url = endpoint.clone();
        subscription_url
            .path_segments_mut()
            .map_err(|()| PullError::Malformed("the endpoint cannot hold a path".into()))?
            .pop_if_empty()
            .extend(["topics", topic, "eventsubscriptions", subscription]);
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(request_timeout)
            .user_agent(concat!("callvault/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| PullError::Transport(err.to_string()))?;
        Ok(Self {
            http,
            subscription_url,
            key,
        })
    }

    /// `…/eventsubscriptions/{s}:ACTION?api-version=…`; the colon is part of the last segment.
    fn action_url(&self, action: &str, query: &[(&str, String)]) -> url::Url {
        let mut url = self.subscription_url.clone();
        let last = url
            .path_segments()
            .and_then(|mut segments| segments.next_back().map(str::to_owned))
            .unwrap_or_default();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop().push(&format!("{last}:{action}"));
        }
        {
            let mut pairs = url.query_pairs_mut();
            pairs.append_pair("api-version", API_VERSION);
            for (name, value) in query {
                pairs.append_pair(name, value);
            }
        }
        url
    }

    async fn post(&self, url: url::Url, body: Value, limit: usize) -> Result<Vec<u8>, PullError> {
        let response = self
            .http
            .post(url)
            .header(
                "authorization",
                format!("SharedAccessKey {}", self.key.expose()),
            )
            .json(&body)
            .send()
            .await
            .map_err(|err| PullError::Transport(err.without_url().to_string()))?;
        let status = response.status();
        let body = read_bounded(
            response,
            if status.is_success() {
                limit
            } else {
                MAX_ERROR_BYTES
            },
        )
        .await?;
        if !status.is_success() {
            let message = crate::quote::quote(&String::from_utf8_lossy(&body));
            return Err(PullError::Status {
                status: status.as_u16(),
                message,
            });
        }
        Ok(body)
    }

    /// Up to `max_events`, waiting up to `max_wait` for the first.
    pub async fn receive(
        &self,
        max_events: u32,
        max_wait: Duration,
    ) -> Result<Vec<Received>, PullError> {
        let url = self.action_url(
            "receive",
            &[
                ("maxEvents", max_events.to_string()),
                ("maxWaitTime", max_wait.as_secs().to_string()),
            ],
        );
        let body = self.post(url, json!({}), MAX_RECEIVE_BYTES).await?;
        let answer: ReceiveAnswer =
            serde_json::from_slice(&body).map_err(|err| PullError::Malformed(err.to_string()))?;
        Ok(answer
            .value
            .into_iter()
            .map(|details| Received {
                lock_token: details.broker.lock_token,
                delivery_count: details.broker.delivery_count,
                event: details.event,
            })
            .collect())
    }

    /// Settles `tokens`; answers those the namespace could not settle.
    pub async fn settle(
        &self,
        how: Settle,
        tokens: &[String],
    ) -> Result<Vec<FailedToken>, PullError> {
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let query = match how {
            Settle::Release { delay_secs } => {
                vec![("releaseDelayInSeconds", delay_secs.to_string())]
            }
            _ => Vec::new(),
        };
        let url = self.action_url(how.action(), &query);
        let body = self
            .post(url, json!({"lockTokens": tokens}), MAX_SETTLE_BYTES)
            .await?;
        let answer: SettleAnswer =
            serde_json::from_slice(&body).map_err(|err| PullError::Malformed(err.to_string()))?;
        Ok(answer
            .failed
            .into_iter()
            .map(|failed| {
                let error = failed.error.unwrap_or_default();
                FailedToken {
                    lock_token: failed.lock_token,
                    code: error.code,
                    message: error.message,
                }
            })
            .collect())
    }
}

async fn read_bounded(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, PullError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| PullError::Transport(err.without_url().to_string()))?
    {
        if body.len() + chunk.len() > limit {
            return Err(PullError::Malformed(format!(
                "the answer is larger than {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_urls_put_the_action_after_a_colon_on_the_subscription() {
        let endpoint = url::Url::parse("https://ns.westeurope-1.eventgrid.azure.net/").unwrap();
        let client = PullClient::new(
            &endpoint,
            "recordings",
            "callvault",
            Secret::new("k"),
            Duration::from_secs(5),
        )
        .unwrap();
        let url = client.action_url("receive", &[("maxEvents", "32".into())]);
        assert_eq!(
            url.as_str(),
            "https://ns.westeurope-1.eventgrid.azure.net/topics/recordings/eventsubscriptions/callvault:receive?api-version=2024-06-01&maxEvents=32"
        );
    }
}
