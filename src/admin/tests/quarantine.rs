use serde_json::{Value, json};

use super::support::*;
use crate::app::Role;

fn entries(body: &Value) -> &Vec<Value> {
    body["quarantine"].as_array().unwrap()
}

async fn a_quarantined_event_is_replayed_once_the_configuration_allows_it(store: Store) {
    // http:// download URLs are refused until acs.allow_http is switched on (which a plain
    // http endpoint needs, so the strict run names the same host over https).
    let strict = [
        ("acs.allow_http", "false".to_owned()),
        (
            "acs.connection_string",
            format!("endpoint=https://{DEAD_ACS}/;accesskey=aGVsbG8="),
        ),
    ];
    let app = TestApp::start(store, Role::Ingest, DEAD_ACS, &strict).await;
    let event = recording_event("evt-q", "q", hours_ago(1), &[(0, "SessionEnded")], DEAD_ACS);
    let hopeless = json!({"id": "evt-empty", "subject": "/recording/call/c", "eventType":
        "Microsoft.Communication.RecordingFileStatusUpdated", "eventTime": "2026-11-27T10:00:00Z",
        "dataVersion": "1.0", "data": {}});
    let summary = app.deliver(json!([event, hopeless])).await;
    assert_eq!(summary["quarantined"], 2, "{summary}");
    let (status, body) = app.get("/admin/quarantine").await;
    assert_eq!(status, 200, "{body}");
    let listed = entries(&body);
    assert_eq!(listed.len(), 2);
    let fixable = listed.iter().find(|e| e["event_id"] == "evt-q").unwrap();
    assert!(
        fixable["reason"].as_str().unwrap().contains("https"),
        "{fixable}"
    );
    assert_eq!(fixable["payload"]["id"], "evt-q");
    let fixable = fixable["id"].as_i64().unwrap();
    let hopeless = listed
        .iter()
        .find(|e| e["event_id"] == "evt-empty")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let app = app.restart(Role::Ingest, DEAD_ACS, &[]).await;
    let (status, body) = app
        .post(&format!("/admin/quarantine/{fixable}/replay"), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["entry"]["replay_outcome"], "accepted");
    let (_, jobs) = app.get("/admin/jobs?state=pending").await;
    assert_eq!(jobs["jobs"][0]["document_id"], document_id("q", 0));

    let (status, body) = app
        .post(&format!("/admin/quarantine/{fixable}/replay"), &json!({}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("already_replayed"))
    );
    let (status, body) = app
        .post(&format!("/admin/quarantine/{hopeless}/replay"), &json!({}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("still_invalid")),
        "{body}"
    );
    let (status, body) = app.post("/admin/quarantine/777/replay", &json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("quarantine_not_found"))
    );

    let (_, open) = app.get("/admin/quarantine").await;
    assert_eq!(
        entries(&open).len(),
        1,
        "replayed entries are hidden by default"
    );
    let (_, all) = app.get("/admin/quarantine?include_replayed=true").await;
    assert_eq!(entries(&all).len(), 2);
    app.stop().await;
}

on_every_store!(a_quarantined_event_is_replayed_once_the_configuration_allows_it);
