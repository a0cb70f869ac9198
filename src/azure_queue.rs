//! Azure Storage Queue's REST operations callvault uses (version 2021-08-06): Put Message for
//! the event sink; Get Messages, Update Message (to extend a message's invisibility) and
//! Delete Message for `storage_queue` delivery. Requests are signed with the account's
//! Shared Key or carry a SAS.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use callvault_acs_protocol::storage_shared_key::{self, StorageRequest};
use serde::Deserialize;

use crate::secret::Secret;

pub const VERSION: &str = "2021-08-06";
/// Azurite's account, whose published key is used when no credential is given.
pub const EMULATOR_ACCOUNT: &str = storage_shared_key::AZURITE_ACCOUNT;
const EMULATOR_KEY: &str = storage_shared_key::AZURITE_KEY;
/// Get Messages returns at most 32 messages of 64 KiB text each.
const MAX_RECEIVE_BYTES: usize = 32 * 70 * 1024 + 64 * 1024;
const MAX_ERROR_BYTES: usize = 4 * 1024;

/// How requests prove they may touch the queue.
#[derive(Debug, Clone)]
pub enum QueueAuth {
    SharedKey {
        account: String,
        key: Secret,
    },
    /// A SAS token (its query string, without `?`).
    Sas(Secret),
}

impl QueueAuth {
    /// A SAS when one is given, else the account key of the account `queue_url` names.
    pub fn new(queue_url: &url::Url, account_key: &Secret, sas: &Secret) -> Self {
        if sas.is_empty() {
            let account = account_of(queue_url);
            let key = if account_key.is_empty() && account == EMULATOR_ACCOUNT {
                Secret::new(EMULATOR_KEY)
            } else {
                account_key.clone()
            };
            QueueAuth::SharedKey { account, key }
        } else {
            QueueAuth::Sas(Secret::new(sas.expose().trim().trim_start_matches('?')))
        }
    }
}

/// The account a queue URL names: its first host label, or for a path-style URL (an IP
/// address or localhost, as Azurite serves) its first path segment.
pub use callvault_acs_protocol::storage_shared_key::account_of;

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("cannot reach the storage queue: {0}")]
    Transport(String),
    #[error("the storage queue answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("the storage queue's answer is not what its API returns: {0}")]
    Malformed(String),
}

impl QueueError {
    /// 404 on a message: it was deleted, or its pop receipt is stale (someone else holds it).
    pub fn is_gone(&self) -> bool {
        matches!(self, QueueError::Status { status: 404, .. })
    }
}

/// A message received and hidden from other receivers until its visibility timeout.
#[derive(Debug, Clone)]
pub struct QueueMessage {
    pub id: String,
    /// Needed to delete or update it; changes with each update.
    pub pop_receipt: String,
    pub dequeue_count: u32,
    /// As stored: Event Grid writes base64 now, plain JSON in the past.
    pub text: String,
}

#[derive(Deserialize)]
struct MessagesList {
    #[serde(rename = "QueueMessage", default)]
    messages: Vec<XmlMessage>,
}

#[derive(Deserialize)]
struct XmlMessage {
    #[serde(rename = "MessageId")]
    id: String,
    #[serde(rename = "PopReceipt")]
    pop_receipt: String,
    #[serde(rename = "DequeueCount", default)]
    dequeue_count: u32,
    #[serde(rename = "MessageText", default)]
    text: String,
}

/// One queue, `https://ACCOUNT.queue.core.windows.net/QUEUE` (or Azurite's path style).
#[derive(Debug, Clone)]
pub struct QueueClient {
    http: reqwest::Client,
    queue_url: url::Url,
    auth: QueueAuth,
}

impl QueueClient {
    pub fn new(http: reqwest::Client, mut queue_url: url::Url, auth: QueueAuth) -> Self {
        queue_url.set_query(None);
        Self {
            http,
            queue_url,
            auth,
        }
    }

    /// `…/QUEUE/messages[/ID]` with `query`.
    fn url(&self, message: Option<&str>, query: &[(&str, String)]) -> url::Url {
        let mut url = self.queue_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push("messages");
            if let Some(id) = message {
                segments.push(id);
            }
        }
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in query {
                pairs.append_pair(name, value);
            }
        }
        url
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: url::Url,
        body: Option<String>,
    ) -> Result<reqwest::Response, QueueError> {
        let date = chrono::Utc::now()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let length = body.as_ref().map_or(0, String::len);
        let content_type = if body.is_some() {
            "application/xml"
        } else {
            ""
        };
        let mut url = url;
        let mut authorization = None;
        match &self.auth {
            QueueAuth::SharedKey { account, key } => {
                let signature = shared_key_signature(
                    method.as_str(),
                    account,
                    key,
                    &url,
                    length,
                    content_type,
                    &date,
                );
                authorization = Some(format!("SharedKey {account}:{signature}"));
            }
            QueueAuth::Sas(sas) => {
                let query = match url.query() {
                    Some(query) => format!("{query}&{}", sas.expose()),
                    None => sas.expose().to_owned(),
                };
                url.set_query(Some(&query));
            }
        }
        let mut request = self
            .http
            .request(method, url)
            .header("x-ms-date", &date)
            .header("x-ms-version", VERSION);
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        if let Some(body) = body {
            request = request.header("content-type", content_type).body(body);
        } else {
            request = request.header("content-length", "0");
        }
        let response = request
            .send()
            .await
            .map_err(|err| QueueError::Transport(err.without_url().to_string()))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body = read_bounded(response, MAX_ERROR_BYTES)
            .await
            .unwrap_or_default();
        Err(QueueError::Status {
            status,
            message: crate::quote::quote(&String::from_utf8_lossy(&body)),
        })
    }

    /// Create Queue; an existing queue is fine.
    pub async fn create(&self) -> Result<(), QueueError> {
        self.send(reqwest::Method::PUT, self.queue_url.clone(), None)
            .await?;
        Ok(())
    }

    /// Put Message; `text` is stored as given (callers encode it).
    pub async fn put(&self, text: &str) -> Result<(), QueueError> {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessage><MessageText>{}</MessageText></QueueMessage>",
            quick_xml::escape::escape(text)
        );
        let url = self.url(None, &[("messagettl", "-1".into())]);
        self.send(reqwest::Method::POST, url, Some(body)).await?;
        Ok(())
    }

    /// Get Messages: up to `count` (1–32), each hidden for `visibility_secs`.
    pub async fn receive(
        &self,
        count: u32,
        visibility_secs: u64,
    ) -> Result<Vec<QueueMessage>, QueueError> {
        let url = self.url(
            None,
            &[
                ("numofmessages", count.to_string()),
                ("visibilitytimeout", visibility_secs.to_string()),
            ],
        );
        let response = self.send(reqwest::Method::GET, url, None).await?;
        let body = read_bounded(response, MAX_RECEIVE_BYTES).await?;
        let list: MessagesList = quick_xml::de::from_reader(body.as_slice())
            .map_err(|err| QueueError::Malformed(err.to_string()))?;
        Ok(list
            .messages
            .into_iter()
            .map(|message| QueueMessage {
                id: message.id,
                pop_receipt: message.pop_receipt,
                dequeue_count: message.dequeue_count,
                text: message.text,
            })
            .collect())
    }

    /// Update Message: hides it `visibility_secs` more; answers the new pop receipt.
    pub async fn extend(
        &self,
        message: &QueueMessage,
        visibility_secs: u64,
    ) -> Result<String, QueueError> {
        let url = self.url(
            Some(&message.id),
            &[
                ("popreceipt", message.pop_receipt.clone()),
                ("visibilitytimeout", visibility_secs.to_string()),
            ],
        );
        let response = self.send(reqwest::Method::PUT, url, None).await?;
        response
            .headers()
            .get("x-ms-popreceipt")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| {
                QueueError::Malformed("Update Message answered no x-ms-popreceipt".into())
            })
    }

    /// Delete Message.
    pub async fn delete(&self, message: &QueueMessage) -> Result<(), QueueError> {
        let url = self.url(
            Some(&message.id),
            &[("popreceipt", message.pop_receipt.clone())],
        );
        self.send(reqwest::Method::DELETE, url, None).await?;
        Ok(())
    }
}

async fn read_bounded(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, QueueError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| QueueError::Transport(err.without_url().to_string()))?
    {
        if body.len() + chunk.len() > limit {
            return Err(QueueError::Malformed(format!(
                "the answer is larger than {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The Shared Key signature of a queue request (the canonicalisation the emulator's queue
/// delivery shares, in `callvault_acs_protocol::storage_shared_key`).
pub fn shared_key_signature(
    method: &str,
    account: &str,
    key: &Secret,
    url: &url::Url,
    content_length: usize,
    content_type: &str,
    date: &str,
) -> String {
    let secret = STANDARD.decode(key.expose().trim()).unwrap_or_default();
    storage_shared_key::signature(
        &secret,
        account,
        &StorageRequest {
            method,
            url,
            content_length,
            content_type,
            date,
            version: VERSION,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_messages_list_is_read_from_its_xml() {
        let xml = br#"<?xml version="1.0" encoding="utf-8"?><QueueMessagesList><QueueMessage><MessageId>m1</MessageId><InsertionTime>x</InsertionTime><PopReceipt>p1</PopReceipt><DequeueCount>3</DequeueCount><MessageText>eyJhIjoxfQ==</MessageText></QueueMessage></QueueMessagesList>"#;
        let list: MessagesList = quick_xml::de::from_reader(&xml[..]).unwrap();
        assert_eq!(list.messages.len(), 1);
        assert_eq!(list.messages[0].pop_receipt, "p1");
        assert_eq!(list.messages[0].dequeue_count, 3);
        let empty: MessagesList =
            quick_xml::de::from_reader(&b"<QueueMessagesList />"[..]).unwrap();
        assert!(empty.messages.is_empty());
    }
}
