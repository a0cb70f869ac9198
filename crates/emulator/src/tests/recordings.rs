//! Recordings over the unsigned control surface: what it refuses. Recording a call through
//! callvault's own control client is tested with that client, in callvault's tests.

use serde_json::json;

use super::*;

fn control(emulator: &Emulator, path: &str) -> url::Url {
    emulator.endpoint().join(path).unwrap()
}

#[tokio::test]
async fn bad_calls_are_400_and_unknown_recordings_404() {
    let emulator = start().await;
    for body in [
        json!({ "serverCallId": "", "participants": ["8:acs:x"] }),
        json!({ "serverCallId": "s", "participants": [""] }),
        json!({ "serverCallId": "s" }),
    ] {
        let response = http()
            .post(control(&emulator, "emulator/calls"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
    }
    let missing = http()
        .get(control(&emulator, "emulator/recordings/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    emulator.stop().await;
}
