//! Event Grid's endpoint validation, done before the first delivery: the
//! SubscriptionValidationEvent for the Event Grid schema, the `OPTIONS` abuse-protection
//! request for CloudEvents.

use reqwest::Method;

use crate::delivery::{SUBSCRIPTION_NAME, Schema};
use crate::events;
use crate::state::{Shared, lock};

/// The origin Event Grid announces, and one of the two a subscriber may allow.
const ORIGIN: &str = "eventgrid.azure.net";

/// Whether `subscriber` passed the handshake of `schema`.
pub(crate) async fn validate(shared: &Shared, subscriber: &url::Url, schema: Schema) -> bool {
    match schema {
        Schema::EventGrid => validation_event(shared, subscriber).await,
        Schema::CloudEvents => abuse_protection(shared, subscriber).await,
    }
}

/// POSTs the validation event; passes on 200 with `{"validationResponse": code}`, or when
/// the subscriber visited `validationUrl` (the manual alternative) before answering.
async fn validation_event(shared: &Shared, subscriber: &url::Url) -> bool {
    let code = uuid::Uuid::new_v4().to_string();
    let mut validation_url = shared.endpoint.clone();
    validation_url.set_path("/emulator/validate");
    validation_url.query_pairs_mut().append_pair("id", &code);
    let body = serde_json::Value::Array(vec![events::subscription_validation(
        &code,
        validation_url.as_str(),
    )]);
    let response = shared
        .entra
        .authorize(shared.http.post(subscriber.clone()))
        .header("aeg-event-type", "SubscriptionValidation")
        .header("aeg-subscription-name", SUBSCRIPTION_NAME)
        .header("aeg-delivery-count", "0")
        .header("aeg-data-version", "2")
        .header("aeg-metadata-version", "1")
        .json(&body)
        .send()
        .await;
    let answered = match response {
        // 202 is refused by Event Grid: only a 200 carrying the code counts.
        Ok(response) if response.status().as_u16() == 200 => response
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|json| {
                json.get("validationResponse")
                    .and_then(|value| value.as_str())
                    .map(|value| value == code)
            })
            .unwrap_or(false),
        _ => false,
    };
    answered || lock(&shared.visited_validation_codes).contains(&code)
}

/// Sends `OPTIONS` with `WebHook-Request-Origin`; passes on 200 with `WebHook-Allowed-Origin`
/// naming that origin or `*`.
async fn abuse_protection(shared: &Shared, subscriber: &url::Url) -> bool {
    let response = shared
        .entra
        .authorize(shared.http.request(Method::OPTIONS, subscriber.clone()))
        .header("WebHook-Request-Origin", ORIGIN)
        .send()
        .await;
    match response {
        Ok(response) if response.status().as_u16() == 200 => response
            .headers()
            .get("WebHook-Allowed-Origin")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|allowed| {
                allowed
                    .split(',')
                    .any(|origin| matches!(origin.trim(), "*" | ORIGIN))
            }),
        _ => false,
    }
}
