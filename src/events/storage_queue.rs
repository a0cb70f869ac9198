//! The Azure Storage queue sink: one Put Message per event, the CloudEvent base64-encoded
//! (as Azure Functions' queue trigger expects), signed with Shared Key or carrying a SAS.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::http::{Sent, judge, transport};
use crate::secret::Secret;

/// A queue message holds at most 64 KiB of text; base64 makes 3 bytes 4.
pub const MESSAGE_BODY_BYTES: usize = 48 * 1024;
use crate::azure_queue::{QueueAuth, VERSION};

#[derive(Debug, Clone)]
pub struct StorageQueueSink {
    /// `…/QUEUE` (no query).
    pub queue_url: url::Url,
    pub auth: QueueAuth,
    pub client: reqwest::Client,
}

impl StorageQueueSink {
    pub fn new(
        queue_url: url::Url,
        account_key: &Secret,
        sas: &Secret,
        client: reqwest::Client,
    ) -> Self {
        let auth = QueueAuth::new(&queue_url, account_key, sas);
        Self {
            queue_url,
            auth,
            client,
        }
    }

    /// Puts `body` on the queue; one too large for a message is refused here (the caller
    /// sends a smaller form of the event first).
    pub async fn send(&self, body: &str) -> Sent {
        if body.len() > MESSAGE_BODY_BYTES {
            return Sent::Refused {
                error: format!(
                    "the event is {} bytes, more than a queue message holds ({MESSAGE_BODY_BYTES})",
                    body.len()
                ),
            };
        }
        let message = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessage><MessageText>{}</MessageText></QueueMessage>",
            STANDARD.encode(body)
        );
        let mut url = self.queue_url.clone();
        url.path_segments_mut()
            .expect("an http(s) URL")
            .pop_if_empty()
            .push("messages");
        url.set_query(Some("messagettl=-1"));
        let date = chrono::Utc::now()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let mut request = self
            .client
            .post(url.clone())
            .header("x-ms-date", &date)
            .header("x-ms-version", VERSION)
            .header("content-type", "application/xml");
        match &self.auth {
            QueueAuth::SharedKey { account, key } => {
                let signature = shared_key(account, key, &url, &date, message.len());
                request =
                    request.header("authorization", format!("SharedKey {account}:{signature}"));
            }
            QueueAuth::Sas(sas) => {
                url.set_query(Some(&format!("messagettl=-1&{}", sas.expose())));
                request = self
                    .client
                    .post(url)
                    .header("x-ms-date", &date)
                    .header("x-ms-version", VERSION)
                    .header("content-type", "application/xml");
            }
        }
        match request.body(message).send().await {
            Ok(response) => judge(response).await,
            Err(err) => transport(err),
        }
    }
}

/// The Shared Key signature of a Put Message (`POST`, XML body).
fn shared_key(account: &str, key: &Secret, url: &url::Url, date: &str, length: usize) -> String {
    crate::azure_queue::shared_key_signature(
        "POST",
        account,
        key,
        url,
        length,
        "application/xml",
        date,
    )
}

/// The event as a queue message can hold it: when the full event is too large (a recording of
/// many chunks), the chunk list is left out and `data.chunksOmitted` says so; the manifest
/// named in the event lists them.
pub fn fit(body: &str) -> std::borrow::Cow<'_, str> {
    if body.len() <= MESSAGE_BODY_BYTES {
        return body.into();
    }
    let Ok(mut event) = serde_json::from_str::<serde_json::Value>(body) else {
        return body.into();
    };
    if let Some(data) = event.get_mut("data").and_then(|data| data.as_object_mut()) {
        data.remove("chunks");
        data.insert("chunksOmitted".into(), serde_json::Value::Bool(true));
    }
    serde_json::to_string(&event)
        .map(Into::into)
        .unwrap_or_else(|_| body.into())
}
