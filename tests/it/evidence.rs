//! Completeness evidence and scheduled verification end to end: recordings archived from the
//! emulator, the duration check in the manifest, the admin API and `/metrics`, a tampered
//! local-archive object found by the verifier, and the verifier running inside `serve`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use callvault::app::Role;
use callvault::queue::JobState;
use callvault::queue::integrity::VerifyResult;
use callvault::worker::verifier::{Verifier, VerifyStep};
use callvault_emulator::events::{ChunkEvent, recording_file_status_updated};
use callvault_emulator::{DocumentSpec, Emulator, EmulatorConfig, MediaSpec};
use serde_json::{Value, json};

use crate::pipeline::{add_chunk, start_time};
use crate::support::{
    AZURITE_KEY, Suite, TestApp, TestDatabase, eventually, service, start_emulator, unique_name,
};

const TOKEN: &str = "evidence-token";
const WAIT: Duration = Duration::from_secs(20);
/// What the emulator's generated metadata documents give each chunk.
const CHUNK_MS: i64 = 600_000;

fn admin(extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut all = vec![("admin.token", TOKEN.to_owned())];
    all.extend(extra.iter().cloned());
    all
}

async fn get(app: &TestApp, path: &str) -> Value {
    let response = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

async fn scrape(app: &TestApp, series: &str) -> f64 {
    let text = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{series} missing from\n{text}"))
        .parse()
        .unwrap()
}

/// Announces a recording of `chunks` (the last ends the session) lasting `announced_ms`,
/// archives it and returns its row id and folder.
async fn archive(
    app: &TestApp,
    call: &str,
    chunks: Vec<ChunkEvent>,
    announced_ms: i64,
) -> (i64, String) {
    let start = start_time();
    let mut event = recording_file_status_updated(
        &format!("evt-{call}"),
        &format!("/recording/call/{call}/recordingId/rec-{call}"),
        start,
        &chunks,
        "Mp3",
    );
    event["data"]["recordingDurationMs"] = json!(announced_ms);
    assert_eq!(app.post_events(&json!([event])).await.status(), 200);
    app.drain().await;
    let page = get(app, "/admin/recordings?limit=100").await;
    let id = page["recordings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["recording_id"] == format!("rec-{call}"))
        .unwrap_or_else(|| panic!("rec-{call} listed in {page}"))["id"]
        .as_i64()
        .unwrap();
    (id, format!("{call}/rec-{call}"))
}

fn chunks_of(emulator: &Emulator, call: &str, count: u32) -> Vec<ChunkEvent> {
    (0..count)
        .map(|index| {
            let end = if index + 1 == count {
                "SessionEnded"
            } else {
                "ChunkMaximumSizeExceeded"
            };
            add_chunk(
                emulator,
                call,
                &format!("doc-{call}-{index}"),
                index,
                end,
                4096,
            )
        })
        .collect()
}

async fn short_recordings_are_flagged_and_counted(db: TestDatabase) {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::launch(
        &emulator.connection_string(),
        db,
        Role::Ingest,
        &admin(&[("verify.duration_tolerance_ms", "1000".into())]),
    )
    .await;

    let whole = chunks_of(&emulator, "call-whole", 2);
    let (whole_id, whole_folder) = archive(&app, "call-whole", whole, 2 * CHUNK_MS).await;
    // Announced as three chunks' worth, but only two were ever announced.
    let cut = chunks_of(&emulator, "call-cut", 2);
    let (cut_id, _) = archive(&app, "call-cut", cut, 3 * CHUNK_MS).await;
    // Within the tolerance: 800 ms more than the chunks cover is still complete.
    let near = chunks_of(&emulator, "call-near", 1);
    let (near_id, _) = archive(&app, "call-near", near, CHUNK_MS + 800).await;
    // A metadata document without a usable chunkDuration.
    let urls = emulator.add_document(DocumentSpec {
        document_id: "doc-odd-0".into(),
        media: MediaSpec::Synthetic { len: 100, seed: 3 },
        metadata: Some(Bytes::from_static(br#"{"chunkDuration":"ten minutes"}"#)),
        call_id: "call-odd".into(),
        chunk_index: 0,
        created_at: chrono::Utc::now(),
    });
    let odd = vec![ChunkEvent {
        document_id: "doc-odd-0".into(),
        index: 0,
        end_reason: "SessionEnded".into(),
        urls: Some(urls),
    }];
    let (odd_id, _) = archive(&app, "call-odd", odd, CHUNK_MS).await;
    assert!(
        app.jobs()
            .await
            .iter()
            .all(|job| job.state() == JobState::Archived),
        "every chunk archived"
    );

    // The manifest carries each chunk's duration and start, and the recording's pauses.
    let manifest = app.wait_for_manifest(Path::new(&whole_folder), WAIT).await;
    assert_eq!(manifest["recordingDurationMs"], 2 * CHUNK_MS);
    for chunk in manifest["chunks"].as_array().unwrap() {
        assert_eq!(chunk["durationMs"], CHUNK_MS, "{chunk}");
        assert!(chunk["startTime"].is_string(), "{chunk}");
    }
    let pauses = manifest["pauseResumeIntervals"].as_array().unwrap();
    assert!(!pauses.is_empty(), "{manifest:#}");
    assert!(
        pauses.iter().all(|pause| pause["durationMs"] == 5220),
        "{manifest:#}"
    );

    let cut = get(&app, &format!("/admin/recordings/{cut_id}")).await;
    let completeness = &cut["completeness"];
    assert_eq!(completeness["verdict"], "short", "{cut:#}");
    assert_eq!(completeness["announced_ms"], 3 * CHUNK_MS);
    assert_eq!(completeness["covered_ms"], 2 * CHUNK_MS);
    assert_eq!(completeness["shortfall_ms"], CHUNK_MS);
    assert_eq!(
        cut["state"], "complete",
        "the chunks it was told of are all archived"
    );

    let verdict = |id: i64, page: &Value| {
        page["recordings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()["completeness"]["verdict"]
            .clone()
    };
    let page = get(&app, "/admin/recordings").await;
    assert_eq!(verdict(cut_id, &page), "short");
    assert_eq!(verdict(whole_id, &page), "complete");
    assert_eq!(verdict(near_id, &page), "complete");
    assert_eq!(verdict(odd_id, &page), "unknown");
    let odd = get(&app, &format!("/admin/recordings/{odd_id}")).await;
    assert!(
        odd["completeness"]["note"]
            .as_str()
            .unwrap()
            .contains("chunk 0 has no usable chunkDuration"),
        "{odd:#}"
    );

    let stats = get(&app, "/admin/stats").await;
    assert_eq!(stats["recordings_short"], 1, "{stats:#}");
    assert_eq!(stats["recordings_verify_failed"], 0, "{stats:#}");
    assert_eq!(scrape(&app, "callvault_recordings_short_total").await, 1.0);

    // `callvault verify` reads the manifests themselves and flags the same recording.
    let output = Command::new(env!("CARGO_BIN_EXE_callvault"))
        .arg("verify")
        .env_clear()
        .env("CALLVAULT__DATABASE__URL", &app.db.url)
        .env(
            "CALLVAULT__STORAGE__PATH",
            app.archive.display().to_string(),
        )
        .env("CALLVAULT__VERIFY__DURATION_TOLERANCE_MS", "1000")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let short_lines: Vec<_> = stdout.lines().filter(|l| l.starts_with("SHORT")).collect();
    assert_eq!(short_lines.len(), 1, "{stdout}");
    assert!(
        short_lines[0].contains("call-cut/rec-call-cut/manifest.json")
            && short_lines[0].contains("600000 ms short"),
        "{stdout}"
    );
    assert!(stdout.contains("unchecked call-odd/"), "{stdout}");
    app.close().await;
}

#[tokio::test]
async fn short_recordings_are_flagged_and_counted_on_sqlite() {
    short_recordings_are_flagged_and_counted(TestDatabase::sqlite().await).await;
}

#[tokio::test]
async fn short_recordings_are_flagged_and_counted_on_postgres() {
    if let Some(db) = TestDatabase::postgres().await {
        short_recordings_are_flagged_and_counted(db).await;
    }
}

async fn a_tampered_object_is_found_by_the_verifier(db: TestDatabase) {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::launch(&emulator.connection_string(), db, Role::Ingest, &admin(&[])).await;
    let first = chunks_of(&emulator, "call-a", 2);
    let (a, a_folder) = archive(&app, "call-a", first, 2 * CHUNK_MS).await;
    let second = chunks_of(&emulator, "call-b", 1);
    let (b, _) = archive(&app, "call-b", second, CHUNK_MS).await;

    // One byte of a's second chunk changes, its size does not.
    let media = app.archive.join(&a_folder).join("chunk-0001.mp3");
    let mut bytes = std::fs::read(&media).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&media, bytes).unwrap();

    let state = &app.running().state;
    let mut verifier = Verifier::new(
        state.db.clone(),
        state.archive.clone(),
        state.metrics.clone(),
        1 << 30,
        Duration::from_millis(50),
    );
    // Never verified first, in id order; then the one verified longest ago again.
    let mut order = Vec::new();
    for _ in 0..3 {
        match verifier.step().await.unwrap() {
            VerifyStep::Verified {
                recording,
                result,
                bytes,
            } => {
                assert!(bytes > 0);
                order.push((recording, result));
            }
            VerifyStep::Idle => panic!("recordings are there to verify"),
        }
    }
    assert_eq!(
        order,
        [
            (a, VerifyResult::Failed),
            (b, VerifyResult::Ok),
            (a, VerifyResult::Failed)
        ]
    );

    let detail = get(&app, &format!("/admin/recordings/{a}")).await;
    let last = &detail["last_verification"];
    assert_eq!(last["result"], "failed", "{detail:#}");
    let found = last["detail"].as_str().unwrap();
    assert!(
        found.contains("1 mismatched, 0 missing")
            && found.contains("call-a/rec-call-a/chunk-0001.mp3")
            && found.contains("sha256"),
        "{found}"
    );
    assert!(last["verified_at"].as_i64().unwrap() > 0);
    let other = get(&app, &format!("/admin/recordings/{b}")).await;
    assert_eq!(other["last_verification"]["result"], "ok", "{other:#}");
    assert!(other["last_verification"]["detail"].is_null());

    let stats = get(&app, "/admin/stats").await;
    assert_eq!(stats["recordings_verify_failed"], 1, "{stats:#}");
    assert_eq!(scrape(&app, "callvault_verify_failures_total").await, 2.0);
    assert!(scrape(&app, "callvault_verified_bytes_total").await > 0.0);

    // A deleted object is found as missing.
    std::fs::remove_file(&media).unwrap();
    std::fs::remove_file(app.archive.join(&a_folder).join("chunk-0000.mp3")).unwrap();
    // Both are due again; which comes first depends on the millisecond each was verified in.
    let mut again = Vec::new();
    for _ in 0..2 {
        if let VerifyStep::Verified {
            recording, result, ..
        } = verifier.step().await.unwrap()
        {
            again.push((recording, result));
        }
    }
    again.sort();
    assert_eq!(again, [(a, VerifyResult::Failed), (b, VerifyResult::Ok)]);
    let detail = get(&app, &format!("/admin/recordings/{a}")).await;
    assert!(
        detail["last_verification"]["detail"]
            .as_str()
            .unwrap()
            .contains("0 mismatched, 2 missing"),
        "{detail:#}"
    );

    // A deleted manifest is found too.
    std::fs::remove_file(app.archive.join("call-b/rec-call-b/manifest.json")).unwrap();
    let mut results = Vec::new();
    for _ in 0..2 {
        if let VerifyStep::Verified {
            recording, result, ..
        } = verifier.step().await.unwrap()
        {
            results.push((recording, result));
        }
    }
    results.sort();
    assert_eq!(
        results,
        [(a, VerifyResult::Failed), (b, VerifyResult::Failed)]
    );
    let detail = get(&app, &format!("/admin/recordings/{b}")).await;
    let found = detail["last_verification"]["detail"].as_str().unwrap();
    assert!(
        found.contains("MISSING   call-b/rec-call-b/manifest.json"),
        "{found}"
    );
    assert_eq!(
        get(&app, "/admin/stats").await["recordings_verify_failed"],
        2
    );
    app.close().await;
}

#[tokio::test]
async fn a_tampered_object_is_found_by_the_verifier_on_sqlite() {
    a_tampered_object_is_found_by_the_verifier(TestDatabase::sqlite().await).await;
}

#[tokio::test]
async fn a_tampered_object_is_found_by_the_verifier_on_postgres() {
    if let Some(db) = TestDatabase::postgres().await {
        a_tampered_object_is_found_by_the_verifier(db).await;
    }
}

#[tokio::test]
async fn serve_verifies_on_its_own_when_a_budget_is_set() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn(
        &emulator,
        &admin(&[("verify.bytes_per_hour", (1u64 << 30).to_string())]),
    )
    .await;
    let chunks = chunks_of(&emulator, "call-s", 1);
    let event = recording_file_status_updated(
        "evt-s",
        "/recording/call/call-s/recordingId/rec-s",
        start_time(),
        &chunks,
        "Mp3",
    );
    assert_eq!(app.post_events(&json!([event])).await.status(), 200);
    let verified = eventually("the recording verified by serve", WAIT, || async {
        let page = get(&app, "/admin/recordings").await;
        let recording = page["recordings"].get(0)?.clone();
        (recording["last_verification"]["result"] == "ok").then_some(recording)
    })
    .await;
    assert_eq!(verified["recording_id"], "rec-s");
    assert_eq!(verified["completeness"]["verdict"], "complete");
}

/// Storage settings for a fresh bucket on moto; `None` when no moto is configured.
async fn s3_storage() -> Option<Vec<(&'static str, String)>> {
    let endpoint = service("CALLVAULT_TEST_S3_ENDPOINT", Suite::S3)?;
    service("AWS_ACCESS_KEY_ID", Suite::S3)?;
    let bucket = unique_name();
    let created = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{}", created.status());
    Some(vec![
        ("storage.kind", "s3".into()),
        ("storage.bucket", bucket),
        ("storage.endpoint", endpoint),
        ("storage.region", "us-east-1".into()),
    ])
}

/// Storage settings for a fresh container on Azurite; `None` when no Azurite is configured.
async fn azure_storage() -> Option<Vec<(&'static str, String)>> {
    use object_store::azure::{AzureAccessKey, AzureAuthorizer, AzureCredential};
    let endpoint = service("CALLVAULT_TEST_AZURE_ENDPOINT", Suite::Azure)?;
    let container = unique_name();
    let url = format!("{endpoint}/{container}?restype=container");
    let mut request = http::Request::builder()
        .method(http::Method::PUT)
        .uri(&url)
        .body(Vec::<u8>::new().into())
        .unwrap();
    let credential = AzureCredential::AccessKey(AzureAccessKey::try_new(AZURITE_KEY).unwrap());
    AzureAuthorizer::new(&credential, "devstoreaccount1")
        .try_authorize(&mut request)
        .unwrap();
    let created = reqwest::Client::new()
        .put(&url)
        .headers(request.headers().clone())
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{}", created.status());
    Some(vec![
        ("storage.kind", "azure".into()),
        ("storage.container", container),
        ("storage.endpoint", endpoint),
    ])
}

/// The verifier on a remote store: an object replaced behind callvault's back is found.
async fn a_replaced_remote_object_is_found_by_the_verifier(storage: Vec<(&'static str, String)>) {
    use object_store::ObjectStoreExt;
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::launch(
        &emulator.connection_string(),
        TestDatabase::sqlite().await,
        Role::Ingest,
        &admin(&storage),
    )
    .await;
    let chunks = chunks_of(&emulator, "call-r", 2);
    let (id, _) = archive(&app, "call-r", chunks, 2 * CHUNK_MS).await;
    let state = &app.running().state;
    let mut verifier = Verifier::new(
        state.db.clone(),
        state.archive.clone(),
        state.metrics.clone(),
        1 << 30,
        Duration::from_millis(50),
    );
    let step = verifier.step().await.unwrap();
    assert!(
        matches!(step, VerifyStep::Verified { recording, result: VerifyResult::Ok, .. } if recording == id),
        "{step:?}"
    );
    let layout = state.archive.layout("call-r", "rec-call-r");
    state
        .archive
        .store()
        .put(
            &layout.media(0, "mp3"),
            Bytes::from_static(b"not the recording").into(),
        )
        .await
        .unwrap();
    let step = verifier.step().await.unwrap();
    assert!(
        matches!(
            step,
            VerifyStep::Verified {
                result: VerifyResult::Failed,
                ..
            }
        ),
        "{step:?}"
    );
    let detail = get(&app, &format!("/admin/recordings/{id}")).await;
    let found = detail["last_verification"]["detail"].as_str().unwrap();
    assert!(
        found.contains("chunk-0000.mp3") && found.contains("bytes"),
        "{found}"
    );
    assert_eq!(
        get(&app, "/admin/stats").await["recordings_verify_failed"],
        1
    );
    app.close().await;
}

#[tokio::test]
async fn a_replaced_object_is_found_by_the_verifier_on_s3() {
    if let Some(storage) = s3_storage().await {
        a_replaced_remote_object_is_found_by_the_verifier(storage).await;
    }
}

#[tokio::test]
async fn a_replaced_object_is_found_by_the_verifier_on_azure() {
    if let Some(storage) = azure_storage().await {
        a_replaced_remote_object_is_found_by_the_verifier(storage).await;
    }
}
