//! Recording on policy: CallLegStateChanged stored on every delivery, and an established leg's
//! recording started exactly once (redeliveries, a second replica, a 503, a restart), then
//! archived once it stops; out-of-order states, invalid events, and the operator's views.

use std::path::Path;
use std::time::Duration;

use callvault::acs::AcsCredentials;
use callvault::acs::control::{CallLocator, RecordingControl, conversation_id};
use callvault::app::Role;
use callvault::queue::call_legs::{self, CallLegRow};
use callvault::recording::start_time_key;
use callvault_emulator::{
    DeliveryOptions, Emulator, EmulatorConfig, RecordingConfig, Schema, call_leg_state_changed,
};
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::support::{TestApp, TestDatabase, eventually, start_emulator};

const WAIT: Duration = Duration::from_secs(30);
const ADMIN: &str = "call-legs-admin-token";
const VIEWER: &str = "call-legs-viewer-token-01";

/// An emulator whose files are ready at once and whose deliveries retry quickly.
async fn emulator() -> Emulator {
    start_emulator(EmulatorConfig {
        delivery_retry_delays: vec![Duration::from_millis(50); 3],
        recording: RecordingConfig {
            file_ready_delay: Duration::ZERO,
            ..RecordingConfig::default()
        },
        ..EmulatorConfig::default()
    })
    .await
}

/// Recording on policy on, fast retries, the admin API open to `ADMIN`.
fn auto_start() -> Vec<(&'static str, String)> {
    vec![
        ("recording.auto_start", "true".into()),
        (
            "recording.callback_uri",
            "http://127.0.0.1:9/api/recording-state?code=unused".into(),
        ),
        ("recording.backoff_initial_ms", "50".into()),
        ("recording.backoff_max_ms", "200".into()),
        ("admin.token", ADMIN.into()),
    ]
}

fn conversation(name: &str) -> String {
    conversation_id(&format!(
        "https://conv-euno-01.conv.skype.com/conv/{name}?i=10&e=638000000000000000"
    ))
}

fn at(time: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(time).unwrap().to_utc()
}

fn leg_event(leg: &str, conversation: &str, state: &str, time: &str) -> Value {
    call_leg_state_changed(leg, conversation, state, at(time))
}

async fn leg(app: &TestApp, id: &str) -> Option<CallLegRow> {
    call_legs::find(app.queue(), id).await.unwrap()
}

/// Waits until the leg's start is `state`.
async fn wait_for_start(app: &TestApp, id: &str, state: &str) -> CallLegRow {
    eventually(&format!("leg {id} start {state}"), WAIT, || async {
        leg(app, id).await.filter(|row| row.start_state == state)
    })
    .await
}

/// The start requests the emulator answered for `conversation`, with their statuses.
fn start_requests(emulator: &Emulator, conversation: &str) -> Vec<u16> {
    let path = format!("/conversations/{conversation}/Recordings");
    emulator
        .requests()
        .into_iter()
        .filter(|request| request.method == "POST" && request.path == path)
        .map(|request| request.status)
        .collect()
}

fn control(emulator: &Emulator) -> RecordingControl {
    RecordingControl::new(AcsCredentials::parse(&emulator.connection_string()).unwrap()).unwrap()
}

/// Stops `recording_id` and waits for its manifest under `archive`.
async fn stop_and_wait_for_archive(
    emulator: &Emulator,
    archive: &Path,
    conversation: &str,
    recording_id: &str,
) -> Value {
    control(emulator)
        .stop(
            &CallLocator::Conversation(conversation.to_owned()),
            recording_id,
        )
        .await
        .unwrap();
    let snapshot = emulator.recording(recording_id).unwrap();
    let folder = archive
        .join(&snapshot.call_id)
        .join(start_time_key(snapshot.started_at));
    let manifest = eventually("the recording's manifest", WAIT, || async {
        std::fs::read(folder.join("manifest.json"))
            .ok()
            .map(|bytes| serde_json::from_slice::<Value>(&bytes).unwrap())
    })
    .await;
    assert_eq!(
        manifest["chunks"].as_array().unwrap().len(),
        snapshot.document_ids.len()
    );
    manifest
}

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    let response = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// SQLite: one replica, the event delivered twice and once more as a CloudEvent.
/// PostgreSQL: a second replica receives it too, at the same time.
async fn an_established_leg_is_recorded_once_and_archived(db: TestDatabase) {
    let emulator = emulator().await;
    let shared_archive = tempfile::tempdir().unwrap();
    let mut extra = auto_start();
    extra.push(("storage.path", shared_archive.path().display().to_string()));
    let replicated = db.url.starts_with("postgres");
    let url = db.url.clone();
    let first = TestApp::spawn_on(&emulator, db, &extra).await;
    let second = match replicated {
        true => Some(TestApp::spawn_on(&emulator, TestDatabase::existing(&url), &extra).await),
        false => None,
    };
    emulator.set_subscribers(vec![first.events_url()]);
    let conversation = conversation("once");
    let event = leg_event(
        "leg-once",
        &conversation,
        "Established",
        "2026-12-07T10:00:00Z",
    );

    let twice = DeliveryOptions {
        duplicate: true,
        ..DeliveryOptions::default()
    };
    let as_cloud_event = DeliveryOptions {
        schema: Schema::CloudEvents,
        ..DeliveryOptions::default()
    };
    let to_first = first.events_url();
    let to_second = second
        .as_ref()
        .map_or(first.events_url(), TestApp::events_url);
    let (a, b) = tokio::join!(
        emulator.deliver(&to_first, vec![event.clone()], twice),
        emulator.deliver(&to_second, vec![event], as_cloud_event),
    );
    assert_eq!(a.delivered, 2, "{a:?}");
    assert_eq!(b.delivered, 1, "{b:?}");

    let started = wait_for_start(&first, "leg-once", "started").await;
    assert_eq!(started.conversation_id, conversation);
    assert_eq!(started.start_attempts, 1);
    let recording_id = started.recording_id.clone().unwrap();
    assert_eq!(
        emulator.recordings_of_call(&conversation),
        [recording_id.as_str()]
    );
    assert_eq!(start_requests(&emulator, &conversation), [200]);

    stop_and_wait_for_archive(
        &emulator,
        shared_archive.path(),
        &conversation,
        &recording_id,
    )
    .await;
    // Nothing that ran meanwhile started another.
    assert_eq!(emulator.recordings_of_call(&conversation).len(), 1);
    assert_eq!(start_requests(&emulator, &conversation).len(), 1);
    if let Some(second) = second {
        second.close().await;
    }
    first.close().await;
}

#[tokio::test]
async fn an_established_leg_is_recorded_once_and_archived_on_sqlite() {
    an_established_leg_is_recorded_once_and_archived(TestDatabase::sqlite().await).await;
}

#[tokio::test]
async fn an_established_leg_is_recorded_once_by_two_replicas_on_postgres() {
    if let Some(db) = TestDatabase::postgres().await {
        an_established_leg_is_recorded_once_and_archived(db).await;
    }
}

async fn an_older_state_arriving_late_changes_nothing(db: TestDatabase) {
    let emulator = emulator().await;
    let app = TestApp::spawn_on(&emulator, db, &auto_start()).await;
    let conversation = conversation("late");
    let disconnected = leg_event(
        "leg-late",
        &conversation,
        "Disconnected",
        "2026-12-07T10:05:00Z",
    );
    let established = leg_event(
        "leg-late",
        &conversation,
        "Established",
        "2026-12-07T10:00:00Z",
    );
    for event in [disconnected, established] {
        let response = app.post_events(&Value::Array(vec![event])).await;
        assert_eq!(response.status(), 200);
        let summary: Value = response.json().await.unwrap();
        assert_eq!(summary["accepted"], 1, "{summary}");
    }
    let row = leg(&app, "leg-late").await.unwrap();
    assert_eq!(row.state, "Disconnected");
    assert_eq!(
        row.state_changed_at,
        at("2026-12-07T10:05:00Z").timestamp_millis()
    );
    assert_eq!(
        row.start_state, "none",
        "a leg already gone is not recorded"
    );

    // In order, the leg is established first: its start is owed, and made.
    let ordered = [
        ("Established", "2026-12-07T11:00:00Z"),
        ("Connected", "2026-12-07T11:00:01Z"),
    ];
    for (state, time) in ordered {
        let event = leg_event("leg-ordered", &conversation, state, time);
        assert_eq!(
            app.post_events(&Value::Array(vec![event])).await.status(),
            200
        );
    }
    let row = wait_for_start(&app, "leg-ordered", "started").await;
    assert_eq!(row.state, "Connected");
    assert_eq!(emulator.recordings_of_call(&conversation).len(), 1);
    app.close().await;
}

#[tokio::test]
async fn an_older_state_arriving_late_changes_nothing_on_sqlite() {
    an_older_state_arriving_late_changes_nothing(TestDatabase::sqlite().await).await;
}

#[tokio::test]
async fn an_older_state_arriving_late_changes_nothing_on_postgres() {
    if let Some(db) = TestDatabase::postgres().await {
        an_older_state_arriving_late_changes_nothing(db).await;
    }
}

#[tokio::test]
async fn an_invalid_call_leg_event_is_quarantined_with_its_reason() {
    let emulator = emulator().await;
    let app = TestApp::spawn(&emulator, &auto_start()).await;
    let mut bad_leg = leg_event(
        "leg-x",
        &conversation("bad"),
        "Established",
        "2026-12-07T10:00:00Z",
    );
    bad_leg["data"]["CallLegId"] = "../etc/passwd".into();
    bad_leg["subject"] = "".into();
    let mut bad_conversation = leg_event(
        "leg-y",
        "not a conversation",
        "Established",
        "2026-12-07T10:00:00Z",
    );
    bad_conversation["id"] = "given-id-1".into();
    let other_type = serde_json::json!({
        "id": "other-1", "eventType": "Microsoft.Communication.CallStarted",
        "subject": "x", "data": {}, "eventTime": "2026-12-07T10:00:00Z"
    });
    let response = app
        .post_events(&serde_json::json!([bad_leg, bad_conversation, other_type]))
        .await;
    assert_eq!(response.status(), 200);
    let summary: Value = response.json().await.unwrap();
    assert_eq!(summary["quarantined"], 2, "{summary}");
    assert_eq!(
        summary["ignored"], 1,
        "other types are still only counted: {summary}"
    );

    let (_, page) = get(&app, "/admin/quarantine").await;
    let reasons: Vec<&str> = page["quarantine"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("data.CallLegId")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("data.ConversationId")),
        "{reasons:?}"
    );
    let (_, legs) = get(&app, "/admin/call-legs").await;
    assert_eq!(legs["call_legs"].as_array().unwrap().len(), 0, "{legs}");
    app.close().await;
}

#[tokio::test]
async fn a_start_answered_503_is_retried_and_counted() {
    let emulator = emulator().await;
    emulator.fail_recording_starts(503, 1);
    let app = TestApp::spawn(&emulator, &auto_start()).await;
    let conversation = conversation("retry");
    let event = leg_event(
        "leg-retry",
        &conversation,
        "Established",
        "2026-12-07T10:00:00Z",
    );
    assert_eq!(
        app.post_events(&Value::Array(vec![event])).await.status(),
        200
    );

    let row = wait_for_start(&app, "leg-retry", "started").await;
    assert_eq!(row.start_attempts, 2);
    assert_eq!(
        row.last_error, None,
        "a start that succeeded keeps no error"
    );
    assert_eq!(start_requests(&emulator, &conversation), [503, 200]);
    assert_eq!(emulator.recordings_of_call(&conversation).len(), 1);
    let metrics = reqwest::get(format!("{}/metrics", app.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        "callvault_recording_starts_total{outcome=\"retried\"} 1",
        "callvault_recording_starts_total{outcome=\"started\"} 1",
        "callvault_recording_starts_total{outcome=\"failed\"} 0",
    ] {
        assert!(metrics.contains(series), "{series} in {metrics}");
    }
    app.close().await;
}

#[tokio::test]
async fn a_start_that_keeps_failing_is_given_up_with_its_error() {
    let emulator = emulator().await;
    emulator.fail_recording_starts(500, 10);
    let mut extra = auto_start();
    extra.push(("recording.max_attempts", "2".into()));
    let app = TestApp::spawn(&emulator, &extra).await;
    let conversation = conversation("gives-up");
    let event = leg_event(
        "leg-fails",
        &conversation,
        "Established",
        "2026-12-07T10:00:00Z",
    );
    assert_eq!(
        app.post_events(&Value::Array(vec![event])).await.status(),
        200
    );

    let row = wait_for_start(&app, "leg-fails", "failed").await;
    assert_eq!(row.start_attempts, 2);
    let error = row.last_error.unwrap();
    assert!(
        error.starts_with("gave up after 2 attempts: ACS answered 500"),
        "{error}"
    );
    let (_, shown) = get(&app, "/admin/call-legs/leg-fails").await;
    assert_eq!(shown["recording"]["state"], "failed");
    assert_eq!(shown["recording"]["last_error"], error.as_str());
    assert!(emulator.recordings_of_call(&conversation).is_empty());
    app.close().await;
}

#[tokio::test]
async fn with_auto_start_off_the_leg_is_stored_and_nothing_started() {
    let emulator = emulator().await;
    let app = TestApp::spawn(&emulator, &[("admin.token", ADMIN.into())]).await;
    let conversation = conversation("off");
    let event = leg_event(
        "leg-off",
        &conversation,
        "Established",
        "2026-12-07T10:00:00Z",
    );
    assert_eq!(
        app.post_events(&Value::Array(vec![event])).await.status(),
        200
    );
    let row = leg(&app, "leg-off").await.unwrap();
    assert_eq!(row.state, "Established");
    // No start is owed, so no starter (none runs with auto_start off) could claim one.
    assert_eq!(row.start_state, "none");
    assert_eq!(row.start_requested_at, None);
    assert!(start_requests(&emulator, &conversation).is_empty());
    app.close().await;
}

#[tokio::test]
async fn a_start_owed_before_a_restart_is_made_after_it() {
    let emulator = emulator().await;
    // The ingest role runs no starter: the start stays owed, as after a crash.
    let app = TestApp::spawn_ingest(&emulator, &auto_start()).await;
    let conversation = conversation("restart");
    let event = leg_event(
        "leg-restart",
        &conversation,
        "Established",
        "2026-12-07T10:00:00Z",
    );
    assert_eq!(
        app.post_events(&Value::Array(vec![event])).await.status(),
        200
    );
    assert_eq!(
        leg(&app, "leg-restart").await.unwrap().start_state,
        "pending"
    );
    assert!(start_requests(&emulator, &conversation).is_empty());

    let app = app.restart(Role::All, &auto_start()).await;
    let row = wait_for_start(&app, "leg-restart", "started").await;
    assert_eq!(
        emulator.recordings_of_call(&conversation),
        [row.recording_id.unwrap()]
    );
    app.close().await;
}

#[tokio::test]
async fn the_emulator_establishes_a_call_and_callvault_records_and_archives_it() {
    let emulator = emulator().await;
    let app = TestApp::spawn(&emulator, &auto_start()).await;
    emulator.set_subscribers(vec![app.events_url()]);
    let conversation = conversation("loop");
    // Through the control surface, as a test in any language would.
    let answer: Value = reqwest::Client::new()
        .post(format!("{}emulator/calls", emulator.endpoint()))
        .json(&serde_json::json!({
            "serverCallId": conversation,
            "participants": ["8:acs:loop-a", "8:acs:loop-b"],
            "established": true,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let leg_id = answer["callLegId"].as_str().unwrap().to_owned();
    let row = wait_for_start(&app, &leg_id, "started").await;
    assert_eq!(row.conversation_id, conversation);
    let manifest = stop_and_wait_for_archive(
        &emulator,
        &app.archive,
        &conversation,
        &row.recording_id.unwrap(),
    )
    .await;
    assert_eq!(
        manifest["participants"],
        serde_json::json!(["8:acs:loop-a", "8:acs:loop-b"])
    );
    app.close().await;
}

#[tokio::test]
async fn the_views_show_a_leg_with_its_conversation() {
    let emulator = emulator().await;
    let mut extra = auto_start();
    extra.push(("admin.tokens", format!("vera:viewer:{VIEWER}")));
    let app = TestApp::spawn(&emulator, &extra).await;
    let mine = conversation("views");
    let other = conversation("views-other");
    for (leg, conversation) in [
        ("leg-view-1", &mine),
        ("leg-view-2", &other),
        ("leg-view-3", &mine),
    ] {
        let event = leg_event(leg, conversation, "Established", "2026-12-07T10:00:00Z");
        assert_eq!(
            app.post_events(&Value::Array(vec![event])).await.status(),
            200
        );
    }
    wait_for_start(&app, "leg-view-3", "started").await;

    let (status, page) = get(
        &app,
        &format!("/admin/call-legs?conversation_id={mine}&limit=1"),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let legs = page["call_legs"].as_array().unwrap();
    assert_eq!(legs.len(), 1);
    assert_eq!(legs[0]["call_leg_id"], "leg-view-3", "newest first");
    assert_eq!(legs[0]["conversation_id"], mine.as_str());
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, next) = get(
        &app,
        &format!("/admin/call-legs?conversation_id={mine}&cursor={cursor}"),
    )
    .await;
    let ids: Vec<&str> = next["call_legs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|leg| leg["call_leg_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["leg-view-1"]);
    let (status, shown) = get(&app, "/admin/call-legs/leg-view-3").await;
    assert_eq!(status, 200);
    assert_eq!(shown["recording"]["state"], "started");
    assert!(shown["recording"]["recording_id"].is_string());
    let as_viewer = app
        .client
        .get(format!("{}/admin/call-legs/leg-view-3", app.base))
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap();
    assert_eq!(as_viewer.status(), 200, "a viewer reads the views");
    let (status, missing) = get(&app, "/admin/call-legs/nope").await;
    assert_eq!(status, 404);
    assert_eq!(missing["code"], "call_leg_not_found");

    let (code, table) = app
        .run_callvault(&[], &["call-legs", "--conversation", &mine])
        .await;
    assert_eq!(code, 0, "{table}");
    assert!(
        table.contains("leg-view-1") && table.contains("leg-view-3"),
        "{table}"
    );
    assert!(!table.contains("leg-view-2"), "{table}");
    assert!(table.contains(&mine), "{table}");
    let (code, text) = app
        .run_callvault(&[], &["call-legs", "show", "leg-view-3"])
        .await;
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(&format!("conversation    {mine}")), "{text}");
    assert!(text.contains("recording       started"), "{text}");
    let (code, json) = app
        .run_callvault(&[], &["call-legs", "show", "leg-view-2", "--json"])
        .await;
    assert_eq!(code, 0, "{json}");
    let shown: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(shown["conversation_id"], other.as_str());
    let (code, text) = app.run_callvault(&[], &["call-legs", "show", "nope"]).await;
    assert_eq!(code, 1, "{text}");
    app.close().await;
}
