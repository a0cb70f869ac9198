//! `verify_failed` and `erased`: a tampered object found by the scheduled verifier or by
//! `callvault verify` is announced once per verification, with the manifest's and the store's
//! sha256; an erasure (admin API, command line, retention) is announced once, after its
//! tombstone is readable, with the tombstone's objects and hashes; a sink filtered to `erased`
//! gets only those.

use std::sync::Arc;
use std::time::Duration;

use callvault::config::RetentionSettings;
use callvault::queue::now_millis;
use callvault::worker::verifier::{Verifier, VerifyStep};
use callvault_emulator::EmulatorConfig;
use serde_json::{Value, json};

use super::receiver::Receiver;
use super::{TOKEN, WAIT, announce, event_settings, webhook};
use crate::pipeline::start_time;
use crate::support::{TestApp, TestDatabase, eventually, sha256_hex, start_emulator};

async fn recording_row(app: &TestApp, call: &str) -> i64 {
    sqlx::query_scalar("SELECT id FROM recordings WHERE call_id = $1")
        .bind(call)
        .fetch_one(app.queue().pool())
        .await
        .unwrap()
}

/// Rows of `event_type` in the outbox, per sink.
async fn rows_of(app: &TestApp, event_type: &str) -> Vec<(String, String)> {
    sqlx::query_as("SELECT sink, state FROM event_outbox WHERE event_type = $1 ORDER BY id")
        .bind(event_type)
        .fetch_all(app.queue().pool())
        .await
        .unwrap()
}

fn of_type<'a>(received: &'a [super::receiver::Received], kind: &str) -> Vec<&'a Value> {
    received
        .iter()
        .map(|r| &r.event)
        .filter(|event| event["type"] == format!("com.callvault.recording.{kind}").as_str())
        .collect()
}

async fn every_row_delivered(app: &TestApp, rows: usize) {
    eventually(&format!("{rows} outbox rows delivered"), WAIT, || async {
        let all = super::outbox_rows(app.queue()).await;
        (all.len() == rows && all.iter().all(|row| row.2 == "delivered")).then_some(())
    })
    .await;
}

async fn failures_and_erasures_are_announced(db: TestDatabase) {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let everything = Receiver::start(&[], Some(archive.clone()));
    let erasures = Receiver::start(&[], Some(archive.clone()));
    let sinks = json!([
        webhook("everything", &everything, &[]),
        webhook("erasures", &erasures, &["erased"])
    ]);
    let mut settings = event_settings(sinks, &[]);
    settings.push(("storage.path", archive.display().to_string()));
    let app = TestApp::launch(
        &emulator.connection_string(),
        db,
        callvault::app::Role::All,
        &settings,
    )
    .await;
    let start = start_time();
    let tampered_folder = announce(&app, &emulator, "call-tampered", start, 0).await;
    announce(&app, &emulator, "call-by-cli", start, 0).await;
    announce(&app, &emulator, "call-too-old", start, 0).await;
    every_row_delivered(&app, 3).await;
    let archived = everything.accepted();
    let tampered_archived = of_type(&archived, "archived")
        .into_iter()
        .find(|event| event["data"]["callId"] == "call-tampered")
        .unwrap()
        .clone();
    let media = &tampered_archived["data"]["chunks"][0]["media"];
    let media_key = media["key"].as_str().unwrap();
    std::fs::write(archive.join(media_key), b"not the recording").unwrap();
    let tampered = recording_row(&app, "call-tampered").await;

    // The scheduled verifier finds it.
    let state = &app.running().state;
    let mut verifier = Verifier::new(
        app.queue().clone(),
        state.archive.clone(),
        Arc::clone(&state.metrics),
        1 << 30,
        Duration::from_millis(50),
    );
    let mut verified = Vec::new();
    for _ in 0..3 {
        if let VerifyStep::Verified {
            recording, result, ..
        } = verifier.step().await.unwrap()
        {
            verified.push((recording, result.as_str()));
        }
    }
    assert!(verified.contains(&(tampered, "failed")), "{verified:?}");
    assert_eq!(
        verified
            .iter()
            .filter(|(_, result)| *result == "failed")
            .count(),
        1,
        "{verified:?}"
    );
    // And so does `callvault verify`, with the sinks and the archive in its settings.
    let cli: Vec<(&str, String)> = settings
        .iter()
        .filter(|(key, _)| key.starts_with("events.") || *key == "storage.path")
        .map(|(key, value)| (*key, value.clone()))
        .collect();
    let (code, output) = app
        .run_callvault(&cli, &["verify", "--recording", &tampered.to_string()])
        .await;
    assert_ne!(code, 0, "{output}");
    assert!(output.contains("MISMATCH"), "{output}");
    every_row_delivered(&app, 5).await;
    let received = everything.accepted();
    let failures = of_type(&received, "verify_failed");
    assert_eq!(failures.len(), 2, "one per verification: {failures:?}");
    for (failure, by) in failures.iter().zip(["verifier", "cli"]) {
        assert_eq!(failure["subject"], tampered_folder.as_str());
        assert_eq!(failure["source"], "callvault-test");
        let data = &failure["data"];
        assert_eq!(data["verifiedBy"], by);
        assert_eq!(data["callId"], "call-tampered");
        assert_eq!(data["mismatched"], 1);
        assert_eq!(data["missing"], 0);
        assert_eq!(
            data["manifest"]["key"],
            format!("{tampered_folder}/manifest.json")
        );
        let object = &data["objects"][0];
        assert_eq!(object["key"], media_key);
        assert_eq!(object["problem"], "mismatch");
        assert_eq!(object["expected"]["sha256"], media["sha256"]);
        assert_eq!(
            object["found"]["sha256"],
            sha256_hex(b"not the recording").as_str()
        );
        assert_eq!(object["found"]["bytes"], b"not the recording".len());
    }
    assert_ne!(failures[0]["id"], failures[1]["id"]);

    // Erased through the admin API, the command line and the retention job.
    let response = app
        .client
        .post(format!("{}/admin/recordings/{tampered}/erase", app.base))
        .bearer_auth(TOKEN)
        .json(&json!({"reason": "the caller asked"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let by_cli = recording_row(&app, "call-by-cli").await;
    let (code, output) = app
        .run_callvault(
            &cli,
            &[
                "erase",
                "--recording",
                &by_cli.to_string(),
                "--reason",
                "court order",
                "--yes",
            ],
        )
        .await;
    assert_eq!(code, 0, "{output}");
    let too_old = recording_row(&app, "call-too-old").await;
    sqlx::query("UPDATE recordings SET started_at = $1 WHERE id = $2")
        .bind(now_millis() - 40 * 86_400_000)
        .bind(too_old)
        .execute(app.queue().pool())
        .await
        .unwrap();
    let retention = RetentionSettings {
        delete_after_days: 30,
        batch_size: 10,
        interval_minutes: 60,
    };
    let run = callvault::admin::retention::run_once(
        app.queue(),
        &state.archive,
        &state.metrics,
        &retention,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(run.erased, [too_old], "{run:?}");
    // Asked again, an erased recording is announced no second time.
    let again = app
        .client
        .post(format!("{}/admin/recordings/{tampered}/erase", app.base))
        .bearer_auth(TOKEN)
        .json(&json!({"reason": "the caller asked"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);

    every_row_delivered(&app, 5 + 3 * 2).await;
    let rows = rows_of(&app, "erased").await;
    assert_eq!(rows.len(), 6, "one per erasure and sink: {rows:?}");
    let only = erasures.received();
    assert_eq!(
        only.len(),
        3,
        "the filtered sink gets the erasures only: {only:?}"
    );
    assert!(only.iter().all(|r| r.signature_ok && r.answered == 200));
    assert!(
        only.iter().all(|r| r.tombstone_readable == Some(true)),
        "no erased event before its tombstone is readable: {only:?}"
    );
    let erased = of_type(&only, "erased");
    assert_eq!(erased.len(), 3);
    let by_call = |call: &str| {
        *erased
            .iter()
            .find(|event| event["data"]["callId"] == call)
            .unwrap_or_else(|| panic!("no erased event of {call}: {erased:?}"))
    };
    for (call, origin, actor, reason) in [
        (
            "call-tampered",
            "request",
            Some("admin"),
            "the caller asked",
        ),
        ("call-by-cli", "request", None, "court order"),
        ("call-too-old", "retention", Some("retention"), "retention"),
    ] {
        let event = by_call(call);
        let data = &event["data"];
        assert_eq!(data["origin"], origin, "{event}");
        if let Some(actor) = actor {
            assert_eq!(data["actor"], actor, "{event}");
        } else {
            assert!(
                data["actor"].as_str().unwrap().starts_with("cli"),
                "{event}"
            );
        }
        assert!(data["reason"].as_str().unwrap().contains(reason), "{event}");
        let key = data["tombstone"]["key"].as_str().unwrap();
        let written = std::fs::read(archive.join(key)).unwrap();
        assert_eq!(data["tombstone"]["sha256"], sha256_hex(&written).as_str());
        let tombstone: Value = serde_json::from_slice(&written).unwrap();
        assert_eq!(data["objects"], tombstone["objects"], "{event}");
        assert!(
            data["objects"].as_array().unwrap().len() >= 2,
            "media and metadata at least: {event}"
        );
        assert_eq!(data["erasedAt"], tombstone["erasedAt"]);
        assert_eq!(
            event["subject"],
            format!("{call}/{}", start.format("%Y%m%dT%H%M%SZ")).as_str()
        );
    }
    let tampered_erased = by_call("call-tampered");
    let media_in_tombstone = tampered_erased["data"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|object| object["key"] == media_key)
        .unwrap();
    assert_eq!(
        media_in_tombstone["sha256"], media["sha256"],
        "the tombstone keeps what was archived"
    );
    let everything_erased = everything.accepted();
    assert_eq!(of_type(&everything_erased, "erased").len(), 3);
    everything.stop().await;
    erasures.stop().await;
    app.close().await;
}

#[tokio::test]
async fn failures_and_erasures_are_announced_on_sqlite() {
    failures_and_erasures_are_announced(TestDatabase::sqlite().await).await;
}

#[tokio::test]
async fn failures_and_erasures_are_announced_on_postgresql() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    failures_and_erasures_are_announced(db).await;
}
