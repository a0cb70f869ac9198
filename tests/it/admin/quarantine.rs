use serde_json::{Value, json};

use super::support::*;
use callvault::admin::quarantine_purge;
use callvault::app::Role;

fn entries(body: &Value) -> &Vec<Value> {
    body["quarantine"].as_array().unwrap()
}

/// An event refused at ingest (http:// download URLs with `acs.allow_http = false`).
fn refused_event(id: &str, padding: usize) -> Value {
    let mut event = recording_event(id, id, hours_ago(1), &[(0, "SessionEnded")], DEAD_ACS);
    event["data"]["padding"] = "p".repeat(padding).into();
    event
}

/// http:// download URLs are refused until acs.allow_http is switched on (which a plain
/// http endpoint needs, so the strict run names the same host over https).
fn strict() -> Vec<(&'static str, String)> {
    vec![
        ("acs.allow_http", "false".to_owned()),
        (
            "acs.connection_string",
            format!("endpoint=https://{DEAD_ACS}/;accesskey=aGVsbG8="),
        ),
    ]
}

async fn a_quarantined_event_is_replayed_once_the_configuration_allows_it(store: Store) {
    let Some(app) = start(store, Role::Ingest, DEAD_ACS, &strict()).await else {
        return;
    };
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
    let fixable = fixable["id"].as_i64().unwrap();
    let (status, entry) = app.get(&format!("/admin/quarantine/{fixable}")).await;
    assert_eq!(status, 200, "{entry}");
    assert_eq!(entry["payload"]["id"], "evt-q");
    let hopeless = listed
        .iter()
        .find(|e| e["event_id"] == "evt-empty")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let app = restart(app, Role::Ingest, &[]).await;
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
    let (status, body) = app.get("/admin/quarantine/777").await;
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
    app.close().await;
}

on_every_store!(a_quarantined_event_is_replayed_once_the_configuration_allows_it);

async fn the_list_carries_no_payloads_and_pages_with_a_cursor(store: Store) {
    let Some(app) = start(store, Role::Ingest, DEAD_ACS, &strict()).await else {
        return;
    };
    // 100 events of ~40 KB: a list that carried payloads would answer 4 MB.
    let events: Vec<Value> = (0..100)
        .map(|n| refused_event(&format!("big-{n}"), 40_000))
        .collect();
    let summary = app.deliver(Value::Array(events)).await;
    assert_eq!(summary["quarantined"], 100, "{summary}");

    let response = app
        .client
        .get(app.url("/admin/quarantine?limit=60"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let raw = response.bytes().await.unwrap();
    assert!(
        raw.len() < 100_000,
        "a page of 60 answered {} bytes",
        raw.len()
    );
    assert!(!String::from_utf8_lossy(&raw).contains("ppppp"));
    let page: Value = serde_json::from_slice(&raw).unwrap();
    let first = entries(&page);
    assert_eq!(first.len(), 60);
    assert!(first[0].get("payload").is_none(), "{}", first[0]);
    assert!(first[0]["payload_bytes"].as_i64().unwrap() > 40_000);
    assert_eq!(first[0]["payload_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(first[0]["payload_truncated"], false);

    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = app
        .get(&format!("/admin/quarantine?limit=60&cursor={cursor}"))
        .await;
    assert_eq!(entries(&rest).len(), 40);
    assert!(rest["next_cursor"].is_null(), "{rest}");
    let mut ids: Vec<i64> = first
        .iter()
        .chain(entries(&rest))
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 100, "pages overlap or miss entries");

    let id = first[0]["id"].as_i64().unwrap();
    let (_, entry) = app.get(&format!("/admin/quarantine/{id}")).await;
    assert_eq!(
        entry["payload"]["data"]["padding"].as_str().unwrap().len(),
        40_000
    );
    app.close().await;
}

on_every_store!(the_list_carries_no_payloads_and_pages_with_a_cursor);

async fn a_truncated_entry_keeps_64_kib_and_refuses_replay_with_409(store: Store) {
    let Some(app) = start(store, Role::Ingest, DEAD_ACS, &strict()).await else {
        return;
    };
    let event = refused_event("huge", 1_000_000);
    let full = serde_json::to_string(&event).unwrap();
    let summary = app.deliver(json!([event])).await;
    assert_eq!(summary["quarantined"], 1, "{summary}");
    let (_, list) = app.get("/admin/quarantine").await;
    let listed = &entries(&list)[0];
    let id = listed["id"].as_i64().unwrap();
    assert_eq!(listed["payload_truncated"], true);
    assert_eq!(listed["payload_bytes"].as_i64().unwrap(), full.len() as i64);

    let (_, entry) = app.get(&format!("/admin/quarantine/{id}")).await;
    let stored = entry["payload"].as_str().expect("a cut payload is text");
    assert!(stored.len() <= 64 * 1024, "{} bytes stored", stored.len());
    assert!(full.starts_with(stored));

    let app = restart(app, Role::Ingest, &[]).await;
    let (status, body) = app
        .post(&format!("/admin/quarantine/{id}/replay"), &json!({}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("payload_truncated")),
        "{body}"
    );
    app.close().await;
}

on_every_store!(a_truncated_entry_keeps_64_kib_and_refuses_replay_with_409);

async fn entries_past_their_retention_are_purged_at_start(store: Store) {
    let Some(app) = start(store, Role::Ingest, DEAD_ACS, &strict()).await else {
        return;
    };
    let events: Vec<Value> = ["old", "old-replayed", "recently-replayed", "new"]
        .iter()
        .map(|id| refused_event(id, 0))
        .collect();
    app.deliver(Value::Array(events)).await;
    let day = 24 * 3600 * 1000_i64;
    let now = callvault::queue::now_millis();
    for (event, received, replayed) in [
        ("old", now - 31 * day, None),
        ("old-replayed", now - 60 * day, Some(now - 31 * day)),
        ("recently-replayed", now - 60 * day, Some(now - day)),
    ] {
        sqlx::query("UPDATE quarantine SET received_at = $1, replayed_at = $2 WHERE event_id = $3")
            .bind(received)
            .bind(replayed)
            .bind(event)
            .execute(app.queue().pool())
            .await
            .unwrap();
    }
    let app = restart(app, Role::Ingest, &[]).await;
    let left = app
        .await_json(
            "/admin/quarantine?include_replayed=true",
            "the purge at start",
            |body| entries(body).len() == 2,
        )
        .await;
    let mut kept: Vec<&str> = entries(&left)
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    kept.sort();
    assert_eq!(kept, ["new", "recently-replayed"]);
    assert_eq!(
        quarantine_purge::purge_once(app.queue(), 30).await.unwrap(),
        0
    );
    assert_eq!(
        quarantine_purge::purge_once(app.queue(), 0).await.unwrap(),
        2
    );
    app.close().await;
}

on_every_store!(entries_past_their_retention_are_purged_at_start);
