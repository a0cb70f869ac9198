use serde_json::{Value, json};

use super::support::*;
use callvault::queue::jobs::Finish;

fn ids(page: &Value) -> Vec<i64> {
    page["recordings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

async fn recordings_are_listed_newest_first_with_a_cursor(store: Store) {
    let Some(app) = ingest(store).await else {
        return;
    };
    for name in ["r1", "r2", "r3"] {
        announce(&app, name, 1, &[(0, "SessionEnded")]).await;
    }
    let (status, first) = app.get("/admin/recordings?limit=2").await;
    assert_eq!(status, 200, "{first}");
    let keys: Vec<_> = first["recordings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["recording_id"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["r3", "r2"]);
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let (_, second) = app
        .get(&format!("/admin/recordings?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(second["recordings"][0]["recording_id"], "r1");
    assert_eq!(second["recordings"].as_array().unwrap().len(), 1);
    assert!(second["next_cursor"].is_null(), "{second}");

    let (status, body) = app.get("/admin/recordings?cursor=zzz").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_cursor"))
    );
    let (status, body) = app.get("/admin/recordings?state=done").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_state"))
    );
    let (status, body) = app.get("/admin/recordings?limit=0").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_limit"))
    );
    app.close().await;
}

async fn a_recordings_state_is_derived_from_its_jobs_and_manifest(store: Store) {
    let Some(app) = ingest(store).await else {
        return;
    };
    let db = app.queue();
    // Each job is driven right after it is announced, so it is the only one due.
    announce(&app, "done", 1, &[(0, "SessionEnded")]).await;
    drive(
        db,
        job_id(db, "done", 0).await,
        Finish::Archived(archived_chunk("done", 0)),
    )
    .await;
    announce(&app, "partial", 1, &[(0, "ChunkMaximumSizeExceeded")]).await;
    let partial_job = job_id(db, "partial", 0).await;
    drive(
        db,
        partial_job,
        Finish::Archived(archived_chunk("partial", 0)),
    )
    .await;
    announce(&app, "broken", 1, &[(0, "SessionEnded")]).await;
    drive(
        db,
        job_id(db, "broken", 0).await,
        failed("ACS answered 500"),
    )
    .await;
    announce(&app, "busy", 1, &[(0, "SessionEnded")]).await;

    let (_, all) = app.get("/admin/recordings").await;
    let done_id = all["recordings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["recording_id"] == "done")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let written = callvault::worker::manifest::refresh(db, &app.running().state.archive, done_id)
        .await
        .unwrap();
    assert!(
        written.is_some(),
        "the finished recording gets its manifest"
    );

    let expected = [
        ("complete", "done"),
        ("incomplete", "partial"),
        ("failed", "broken"),
        ("archiving", "busy"),
    ];
    for (state, recording) in expected {
        let (status, page) = app.get(&format!("/admin/recordings?state={state}")).await;
        assert_eq!(status, 200, "{page}");
        let names: Vec<_> = page["recordings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["recording_id"].as_str().unwrap(),
                    r["state"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(names, [(recording, state)], "filter {state}");
    }
    let (_, partial) = app.get("/admin/recordings/partial").await;
    assert_eq!(partial["waiting_for_chunk"], 1, "{partial}");
    assert_eq!(ids(&all).len(), 4);
    app.close().await;
}

async fn a_recordings_detail_shows_chunks_attempts_objects_and_state_events(store: Store) {
    let Some(app) = ingest(store).await else {
        return;
    };
    let db = app.queue();
    announce(&app, "rec", 1, &[(0, "SessionEnded")]).await;
    let job = job_id(db, "rec", 0).await;
    drive(
        db,
        job,
        Finish::Retry {
            next_attempt_at: 0,
            error: "ACS answered 503".into(),
        },
    )
    .await;
    drive(db, job, Finish::Archived(archived_chunk("rec", 0))).await;
    let state_event = json!([{
        "id": "state-1", "topic": "t", "subject": "calling/recordings/rec",
        "eventType": "Microsoft.Communication.RecordingStateChanged",
        "eventTime": "2026-11-27T11:30:40Z", "dataVersion": "1.0",
        "data": {"recordingId": "rec", "state": "active", "startDateTime": "2026-11-27T11:30:40Z"}
    }]);
    let response = app
        .client
        .post(app.url(&format!("/api/recording-state?code={SECRET}")))
        .json(&state_event)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let (status, by_acs_id) = app.get("/admin/recordings/rec").await;
    assert_eq!(status, 200, "{by_acs_id}");
    let row_id = by_acs_id["id"].as_i64().unwrap();
    let (_, detail) = app.get(&format!("/admin/recordings/{row_id}")).await;
    assert_eq!(detail["chunks"], by_acs_id["chunks"]);
    assert_eq!(detail["state"], "incomplete", "no manifest was written");
    // Started an hour ago, with the default 24 h retention.
    assert!(detail["time_left_seconds"].as_i64().unwrap() > 22 * 3600);
    assert!(detail["deadline"].as_str().unwrap().ends_with('Z'));
    let chunk = &detail["chunks"][0];
    assert_eq!(chunk["state"], "archived");
    assert_eq!(chunk["media"]["key"], "call-rec/rec/chunk-0000.mp3");
    assert_eq!(chunk["media"]["sha256"], "ab".repeat(32));
    assert_eq!(chunk["metadata"]["bytes"], 24);
    let history = chunk["attempt_history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{chunk}");
    assert_eq!(history[0]["outcome"], "retry");
    assert_eq!(history[0]["error"], "ACS answered 503");
    assert_eq!(history[1]["outcome"], "archived");
    assert_eq!(detail["state_events"][0]["state"], "active");
    assert_eq!(detail["event_ids"].as_array().unwrap().len(), 1);

    let (status, body) = app.get("/admin/recordings/no-such-recording").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("recording_not_found"))
    );
    app.close().await;
}

on_every_store!(recordings_are_listed_newest_first_with_a_cursor);
on_every_store!(a_recordings_state_is_derived_from_its_jobs_and_manifest);
on_every_store!(a_recordings_detail_shows_chunks_attempts_objects_and_state_events);
