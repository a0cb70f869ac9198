//! The Event Grid topic sink: each CloudEvent POSTed to a custom topic (`…/api/events`, key in
//! `aeg-sas-key`) or a namespace topic (`…/topics/NAME:publish?api-version=…`, key as
//! `Authorization: SharedAccessKey`), which fans it out to its own subscriptions.

use super::http::{Sent, judge, transport};
use crate::secret::Secret;

/// Event Grid refuses an event over 1 MB.
pub const EVENT_BYTES: usize = 1_000_000;

#[derive(Debug, Clone)]
pub struct EventGridTopicSink {
    pub url: url::Url,
    pub key: Secret,
    pub client: reqwest::Client,
}

impl EventGridTopicSink {
    pub async fn send(&self, body: &str) -> Sent {
        if body.len() > EVENT_BYTES {
            return Sent::Refused {
                error: format!(
                    "the event is {} bytes, more than Event Grid takes ({EVENT_BYTES})",
                    body.len()
                ),
            };
        }
        let request = self.client.post(self.url.clone()).header(
            "content-type",
            "application/cloudevents+json; charset=utf-8",
        );
        let request = if self.url.path().contains(":publish") {
            request.header(
                "authorization",
                format!("SharedAccessKey {}", self.key.expose()),
            )
        } else {
            request.header("aeg-sas-key", self.key.expose())
        };
        match request.body(body.to_owned()).send().await {
            Ok(response) => judge(response).await,
            Err(err) => transport(err),
        }
    }
}
