//! The unsigned `/emulator/` control surface.

use serde_json::{Value, json};

use super::subscriber::{Subscriber, Validation};
use super::*;

fn control(emulator: &Emulator, path: &str) -> url::Url {
    emulator.endpoint().join(path).unwrap()
}

#[tokio::test]
async fn documents_and_faults_can_be_set_up_over_http() {
    let emulator = start().await;
    let created: Value = http()
        .post(control(&emulator, "emulator/documents"))
        .json(&json!({ "documentId": "doc-http", "callId": "call-9", "bytes": 2048, "seed": 5 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["bytes"], 2048);
    let content = url::Url::parse(created["contentLocation"].as_str().unwrap()).unwrap();
    assert_eq!(
        content,
        control(&emulator, "v1/objects/doc-http/content/video")
    );

    let body = signed_get(&emulator, &content, None)
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        body,
        MediaSpec::Synthetic { len: 2048, seed: 5 }.read(0, 2048)
    );

    let fault = http()
        .post(control(&emulator, "emulator/documents/doc-http/fault"))
        .json(&json!({ "kind": "status", "status": 500, "times": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(fault.status(), 204);
    assert_eq!(signed_get(&emulator, &content, None).await.status(), 500);

    let described: Value = http()
        .get(control(&emulator, "emulator/documents/doc-http"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        described["mediaSha256"],
        emulator.media_sha256("doc-http").unwrap()
    );
    assert_eq!(described["deleted"], false);

    let requests: Vec<Value> = http()
        .get(control(&emulator, "emulator/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let statuses: Vec<_> = requests.iter().map(|r| r["status"].clone()).collect();
    assert_eq!(
        statuses,
        [json!(200), json!(500)],
        "control calls are not recorded"
    );
    emulator.stop().await;
}

#[tokio::test]
async fn given_content_is_served_and_bad_input_is_a_json_400() {
    let emulator = start().await;
    let created = http()
        .post(control(&emulator, "emulator/documents"))
        .json(&json!({ "documentId": "doc-b64", "content": "aGVsbG8=" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let url = control(&emulator, "recording/download/doc-b64");
    assert_eq!(
        signed_get(&emulator, &url, None)
            .await
            .bytes()
            .await
            .unwrap(),
        &b"hello"[..]
    );

    for body in [
        json!({ "documentId": "x", "content": "%%%" }),
        json!({ "nope": 1 }),
    ] {
        let response = http()
            .post(control(&emulator, "emulator/documents"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.unwrap();
        assert!(error["code"].is_string());
    }
    emulator.stop().await;
}

#[tokio::test]
async fn deliver_over_http_reaches_every_subscriber() {
    let emulator = start().await;
    let first = Subscriber::start(Validation::Echo, &[], None).await;
    let second = Subscriber::start(Validation::Echo, &[503], None).await;
    let nobody: Value = http()
        .post(control(&emulator, "emulator/deliver"))
        .json(&json!({ "events": [] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(nobody["code"], "no_subscribers");

    emulator.set_subscribers(vec![first.url.clone(), second.url.clone()]);
    let event = json!({ "id": "e-1", "eventType": "T", "subject": "/s", "data": {},
                        "dataVersion": "1.0", "metadataVersion": "1", "eventTime": "t" });
    let answer: Value = http()
        .post(control(&emulator, "emulator/deliver"))
        .json(&json!({ "events": [event], "schema": "eventGrid" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reports = answer["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0]["delivered"], 1);
    assert_eq!(reports[1]["attempts"], json!([[0, 503], [0, 200]]));
    assert!(
        !reports[0]["subscriber"]
            .as_str()
            .unwrap()
            .contains("SECRET"),
        "the webhook secret is not echoed"
    );
    assert_eq!(first.notifications()[0].body[0]["id"], "e-1");
    first.stop().await;
    second.stop().await;
    emulator.stop().await;
}

#[tokio::test]
async fn a_delivery_over_http_can_shorten_the_retry_schedule() {
    let emulator = start_with(EmulatorConfig {
        delivery_retry_delays: crate::event_grid_retry_schedule(),
        ..config()
    })
    .await;
    let subscriber = Subscriber::start(Validation::Echo, &[503, 503, 503], None).await;
    emulator.set_subscribers(vec![subscriber.url.clone()]);
    let answer: Value = http()
        .post(control(&emulator, "emulator/deliver"))
        .json(&json!({ "events": [{ "id": "e" }], "retryDelaysMs": [1] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let report = &answer["reports"][0];
    assert_eq!(report["attempts"], json!([[0, 503], [0, 503]]));
    assert_eq!(report["failed"], 1);
    subscriber.stop().await;
    emulator.stop().await;
}
