//! The recording control API client: start, state, pause, resume, stop, in the GA API
//! (`/calling/recordings`) and the 2021 preview API (`/conversations/{id}/recordings`).

use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{AcsCredentials, signing};

/// The newest GA api-version callvault speaks.
pub const GA_API_VERSION: &str = "2026-03-12";
/// The 2021 preview API of the seed document.
pub const PREVIEW_API_VERSION: &str = "2021-04-15-preview1";

/// Which generation of the API, and what locates the call.
#[derive(Debug, Clone)]
pub enum CallLocator {
    /// GA: `callLocator {kind: serverCallLocator, serverCallId}`.
    ServerCall(String),
    /// Preview: the Base64Url `conversationId` in the path.
    Conversation(String),
}

/// Options of a start request.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording_state_callback_uri: Option<String>,
    /// `audio` or `audioVideo` (GA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording_content_type: Option<String>,
    /// `mixed` or `unmixed` (GA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording_channel_type: Option<String>,
    /// `mp3`, `mp4` or `wav` (GA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording_format_type: Option<String>,
    /// Start paused (GA).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pause_on_start: bool,
    /// Preview only: echoed back in events.
    #[serde(skip)]
    pub operation_context: Option<String>,
    /// Makes a start idempotent: the same id answers the same recording.
    #[serde(skip)]
    pub repeatability_request_id: Option<String>,
    /// When the request with that id was first sent: the same on every retry (now when unset).
    #[serde(skip)]
    pub repeatability_first_sent: Option<chrono::DateTime<chrono::Utc>>,
}

/// A recording as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingStatus {
    pub recording_id: String,
    /// `active` or `inactive` (GA); the preview API's `recordingState`.
    pub recording_state: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("ACS answered {status} {code}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("request to ACS failed: {0}")]
    Transport(String),
    #[error("unexpected answer from ACS: {0}")]
    Unexpected(String),
}

pub use callvault_acs_protocol::conversation_id;

/// A signed client of the control API.
#[derive(Clone)]
pub struct RecordingControl {
    http: reqwest::Client,
    credentials: AcsCredentials,
    api_version: String,
}

impl RecordingControl {
    pub fn new(credentials: AcsCredentials) -> Result<Self, ControlError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("callvault/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| ControlError::Transport(err.to_string()))?;
        Ok(Self {
            http,
            credentials,
            api_version: GA_API_VERSION.to_owned(),
        })
    }

    /// Gives up on a request after `timeout` (30 s unless set).
    pub fn with_timeout(mut self, timeout: Duration) -> Result<Self, ControlError> {
        self.http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("callvault/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| ControlError::Transport(err.to_string()))?;
        Ok(self)
    }

    /// Uses another GA api-version (ACS accepts 2023-03-06 … 2026-03-12).
    pub fn with_api_version(mut self, version: &str) -> Self {
        self.api_version = version.to_owned();
        self
    }

    fn url(&self, path: &str, api_version: &str) -> url::Url {
        let mut url = self.credentials.endpoint.clone();
        url.set_path(path);
        url.set_query(Some(&format!("api-version={api_version}")));
        url
    }

    fn recording_url(
        &self,
        locator: &CallLocator,
        recording_id: &str,
        action: Option<&str>,
    ) -> url::Url {
        let id = encode_segment(recording_id);
        match locator {
            CallLocator::ServerCall(_) => {
                let suffix = action.map(|a| format!(":{a}")).unwrap_or_default();
                self.url(
                    &format!("/calling/recordings/{id}{suffix}"),
                    &self.api_version,
                )
            }
            CallLocator::Conversation(conversation) => {
                let conversation = encode_segment(conversation);
                let suffix = action
                    .map(|a| format!("/{}", capitalised(a)))
                    .unwrap_or_default();
                self.url(
                    &format!("/conversations/{conversation}/recordings/{id}{suffix}"),
                    PREVIEW_API_VERSION,
                )
            }
        }
    }

    async fn send(
        &self,
        method: Method,
        url: url::Url,
        body: Option<Value>,
        extra: &[(&str, String)],
    ) -> Result<(u16, Value), ControlError> {
        let bytes = body
            .map(|b| serde_json::to_vec(&b).expect("JSON serialises"))
            .unwrap_or_default();
        let date = signing::rfc1123(chrono::Utc::now());
        let signed = signing::sign(
            method.as_str(),
            &url,
            &bytes,
            &self.credentials.host(),
            self.credentials.key(),
            &date,
        );
        let mut request = self
            .http
            .request(method, url)
            .header("x-ms-date", signed.date)
            .header("x-ms-content-sha256", signed.content_sha256)
            .header("x-ms-host", self.credentials.host())
            .header("authorization", signed.authorization);
        for (name, value) in extra {
            request = request.header(*name, value);
        }
        if !bytes.is_empty() {
            request = request
                .header("content-type", "application/json")
                .body(bytes);
        }
        let response = request
            .send()
            .await
            .map_err(|err| ControlError::Transport(super::error_chain(&err)))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|err| ControlError::Transport(err.to_string()))?;
        let value: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if (200..300).contains(&status) {
            Ok((status, value))
        } else {
            let error = value.get("error").unwrap_or(&value);
            let field = |name: &str| {
                error
                    .get(name)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            Err(ControlError::Api {
                status,
                code: field("code"),
                message: field("message"),
            })
        }
    }

    /// Starts recording a call.
    pub async fn start(
        &self,
        locator: &CallLocator,
        options: &StartOptions,
    ) -> Result<RecordingStatus, ControlError> {
        let (url, body) = match locator {
            CallLocator::ServerCall(server_call_id) => {
                let mut body = serde_json::to_value(options).expect("options serialise");
                body["callLocator"] =
                    json!({ "kind": "serverCallLocator", "serverCallId": server_call_id });
                (self.url("/calling/recordings", &self.api_version), body)
            }
            CallLocator::Conversation(conversation) => {
                let mut body = json!({
                    "operationContext": options.operation_context,
                    "recordingStateCallbackUri": options.recording_state_callback_uri,
                });
                // The seed's preview takes only the two above; the types go along when chosen,
                // for a service that knows them.
                for (key, value) in [
                    ("recordingContentType", &options.recording_content_type),
                    ("recordingChannelType", &options.recording_channel_type),
                    ("recordingFormatType", &options.recording_format_type),
                ] {
                    if let Some(value) = value {
                        body[key] = json!(value);
                    }
                }
                (
                    self.url(
                        &format!("/conversations/{}/Recordings", encode_segment(conversation)),
                        PREVIEW_API_VERSION,
                    ),
                    body,
                )
            }
        };
        let mut extra = Vec::new();
        if let Some(id) = &options.repeatability_request_id {
            extra.push(("Repeatability-Request-ID", id.clone()));
            let first_sent = options
                .repeatability_first_sent
                .unwrap_or_else(chrono::Utc::now);
            extra.push(("Repeatability-First-Sent", signing::rfc1123(first_sent)));
        }
        let (_, value) = self.send(Method::POST, url, Some(body), &extra).await?;
        status_of(value)
    }

    /// The recording's current state.
    pub async fn state(
        &self,
        locator: &CallLocator,
        recording_id: &str,
    ) -> Result<RecordingStatus, ControlError> {
        let (_, value) = self
            .send(
                Method::GET,
                self.recording_url(locator, recording_id, None),
                None,
                &[],
            )
            .await?;
        let mut status = status_of(value)?;
        if status.recording_id.is_empty() {
            status.recording_id = recording_id.to_owned();
        }
        Ok(status)
    }

    pub async fn pause(
        &self,
        locator: &CallLocator,
        recording_id: &str,
    ) -> Result<(), ControlError> {
        self.act(Method::POST, locator, recording_id, Some("pause"))
            .await
    }

    pub async fn resume(
        &self,
        locator: &CallLocator,
        recording_id: &str,
    ) -> Result<(), ControlError> {
        self.act(Method::POST, locator, recording_id, Some("resume"))
            .await
    }

    /// Stops the recording; its files are announced by RecordingFileStatusUpdated later.
    pub async fn stop(
        &self,
        locator: &CallLocator,
        recording_id: &str,
    ) -> Result<(), ControlError> {
        self.act(Method::DELETE, locator, recording_id, None).await
    }

    async fn act(
        &self,
        method: Method,
        locator: &CallLocator,
        recording_id: &str,
        action: Option<&str>,
    ) -> Result<(), ControlError> {
        self.send(
            method,
            self.recording_url(locator, recording_id, action),
            None,
            &[],
        )
        .await
        .map(drop)
    }
}

fn status_of(value: Value) -> Result<RecordingStatus, ControlError> {
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    Ok(RecordingStatus {
        recording_id: text("recordingId").unwrap_or_default(),
        recording_state: text("recordingState"),
    })
}

fn capitalised(action: &str) -> String {
    let mut chars = action.chars();
    chars
        .next()
        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// Percent-encodes a path segment (recording ids are base64 and may hold `/`, `+`, `=`).
fn encode_segment(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_each_api_generation() {
        let creds =
            AcsCredentials::parse("endpoint=https://x.communication.azure.com/;accesskey=aGVsbG8=")
                .unwrap();
        let client = RecordingControl::new(creds).unwrap();
        let ga = CallLocator::ServerCall("s".into());
        let preview = CallLocator::Conversation("Y29udg".into());
        assert_eq!(
            client.recording_url(&ga, "r/1=", Some("pause")).as_str(),
            "https://x.communication.azure.com/calling/recordings/r%2F1%3D:pause?api-version=2026-03-12"
        );
        assert_eq!(
            client
                .recording_url(&preview, "r1", Some("resume"))
                .as_str(),
            "https://x.communication.azure.com/conversations/Y29udg/recordings/r1/Resume?api-version=2021-04-15-preview1"
        );
        assert_eq!(
            client.recording_url(&ga, "r1", None).as_str(),
            "https://x.communication.azure.com/calling/recordings/r1?api-version=2026-03-12"
        );
    }
}
