//! The storage-queue sink against Azurite's queue service: each event is one message whose
//! text is the CloudEvent in base64.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{WAIT, announce, event_settings};
use crate::support::{
    AZURITE_KEY, Suite, TestApp, eventually, service, start_emulator, unique_name,
};
use callvault_emulator::EmulatorConfig;

const ACCOUNT: &str = "devstoreaccount1";

/// A Shared Key request to Azurite's queue service (the test's own signer, independent of
/// callvault's).
async fn queue_request(method: reqwest::Method, url: &str) -> reqwest::Response {
    let url = url::Url::parse(url).unwrap();
    let date = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let version = "2021-08-06";
    let mut resource = format!("/{ACCOUNT}{}", url.path());
    let mut query: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.to_lowercase(), v.into_owned()))
        .collect();
    query.sort();
    for (k, v) in query {
        resource.push_str(&format!("\n{k}:{v}"));
    }
    let to_sign = format!(
        "{method}\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n{resource}"
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(&STANDARD.decode(AZURITE_KEY).unwrap()).unwrap();
    mac.update(to_sign.as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    reqwest::Client::new()
        .request(method, url)
        .header("x-ms-date", date)
        .header("x-ms-version", version)
        .header("authorization", format!("SharedKey {ACCOUNT}:{signature}"))
        .send()
        .await
        .unwrap()
}

/// The texts of the messages on the queue (peeked, so they stay).
async fn peek(queue: &str) -> Vec<String> {
    let response = queue_request(
        reqwest::Method::GET,
        &format!("{queue}/messages?peekonly=true&numofmessages=32"),
    )
    .await;
    assert_eq!(response.status(), 200);
    let xml = response.text().await.unwrap();
    xml.split("<MessageText>")
        .skip(1)
        .filter_map(|part| part.split("</MessageText>").next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_storage_queue_sink_puts_each_event_on_azurite_in_base64() {
    let Some(endpoint) = service("CALLVAULT_TEST_AZURE_QUEUE_ENDPOINT", Suite::Azure) else {
        return;
    };
    let queue = format!("{endpoint}/{}", unique_name().replace('_', "-"));
    let created = queue_request(reqwest::Method::PUT, &queue).await;
    assert!(created.status().is_success(), "{}", created.status());

    let emulator = start_emulator(EmulatorConfig::default()).await;
    let settings = event_settings(
        json!([{"name": "queue", "kind": "storage_queue", "url": queue, "account_key": AZURITE_KEY}]),
        &[],
    );
    let app = TestApp::spawn(&emulator, &settings).await;
    announce(&app, &emulator, "call-queue", super::start_time(), 0).await;
    let texts = eventually("a message on the queue", WAIT, || async {
        let texts = peek(&queue).await;
        (!texts.is_empty()).then_some(texts)
    })
    .await;
    assert_eq!(texts.len(), 1, "{texts:?}");
    let event: Value = serde_json::from_slice(&STANDARD.decode(&texts[0]).unwrap()).unwrap();
    assert_eq!(event["type"], "com.callvault.recording.archived");
    assert_eq!(event["data"]["callId"], "call-queue");
    assert_eq!(event["data"]["chunkCount"], 1);
    eventually("the row delivered", WAIT, || async {
        let state: String = sqlx::query_scalar("SELECT state FROM event_outbox")
            .fetch_one(app.queue().pool())
            .await
            .unwrap();
        (state == "delivered").then_some(())
    })
    .await;
    app.close().await;
}
