//! The webhook sink: one POST per event, the CloudEvent as the body, signed with the
//! Standard Webhooks headers.

use super::http::{Sent, judge, transport};
use super::signature::SigningKey;

#[derive(Debug, Clone)]
pub struct WebhookSink {
    pub url: url::Url,
    pub key: SigningKey,
    pub client: reqwest::Client,
}

impl WebhookSink {
    /// Posts `body` as event `id`; `webhook-id` stays the same across attempts, so a receiver
    /// can drop a duplicate, and the timestamp is the attempt's.
    pub async fn send(&self, id: &str, body: &str) -> Sent {
        let timestamp = chrono::Utc::now().timestamp();
        let signature = self.key.sign(id, timestamp, body.as_bytes());
        let sent = self
            .client
            .post(self.url.clone())
            .header(
                "content-type",
                "application/cloudevents+json; charset=utf-8",
            )
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_owned())
            .send()
            .await;
        match sent {
            Ok(response) => judge(response).await,
            Err(err) => transport(err),
        }
    }
}
