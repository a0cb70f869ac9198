//! `callvault import-dead-letters`: the blobs Event Grid dead-lettered, read from a local
//! folder, Azurite and moto, are archived through the intake; a second import changes nothing.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use callvault::queue::JobState;
use callvault_emulator::events::{recording_file_status_updated, to_cloud_event};
use callvault_emulator::{Emulator, EmulatorConfig};
use chrono::{Datelike, Timelike, Utc};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde_json::{Value, json};

use crate::pipeline::{add_chunk, start_time};
use crate::remote_storage::{azure_storage, s3_storage};
use crate::support::{AZURITE_KEY, TestApp, start_emulator};

const WAIT: Duration = Duration::from_secs(30);

/// Runs the import against `app`'s database and ACS; returns the output. Off the runtime's
/// thread: the app runs on it, and a frozen app would hold the database's write lock.
async fn import(app: &TestApp, emulator: &Emulator, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_callvault"));
    command
        .arg("import-dead-letters")
        .args(args)
        .env("CALLVAULT__DATABASE__URL", &app.db.url)
        .env(
            "CALLVAULT__ACS__CONNECTION_STRING",
            emulator.connection_string(),
        )
        .env("CALLVAULT__ACS__ALLOW_HTTP", "true")
        .env("CALLVAULT__INGEST__SECRET", crate::support::SECRET)
        .env(
            "CALLVAULT__STORAGE__PATH",
            app.archive.display().to_string(),
        )
        .env("AWS_ACCESS_KEY_ID", "callvault-test")
        .env("AWS_SECRET_ACCESS_KEY", "callvault-test")
        .env("AWS_REGION", "us-east-1");
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The count on the report's line that starts with `what`.
fn count(output: &Output, what: &str) -> u64 {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|line| line.trim_start().starts_with(what))
        .unwrap_or_else(|| panic!("no `{what}` in:\n{}", text(output)));
    line.split_whitespace().last().unwrap().parse().unwrap()
}

/// A recording of one chunk in the emulator, and its event as Event Grid dead-letters it.
fn dead_lettered_recording(emulator: &Emulator, call: &str) -> Value {
    let chunk = add_chunk(
        emulator,
        call,
        &format!("doc-{call}"),
        0,
        "SessionEnded",
        40_000,
    );
    let mut event = recording_file_status_updated(
        &format!("evt-{call}"),
        &format!("/recording/call/{call}/recordingId/rec-{call}"),
        start_time(),
        &[chunk],
        "Mp4",
    );
    let fields = event.as_object_mut().unwrap();
    fields.insert(
        "deadLetterReason".into(),
        json!("MaxDeliveryAttemptsExceeded"),
    );
    fields.insert("deliveryAttempts".into(), json!(30));
    fields.insert("lastDeliveryOutcome".into(), json!("TimedOut"));
    fields.insert("lastHttpStatusCode".into(), json!(408));
    event
}

/// Event Grid's blob folder for this hour: `SUBSCRIPTION/YYYY/M/D/H`, not zero-padded.
fn this_hour(subscription: &str) -> String {
    let now = Utc::now();
    format!(
        "{subscription}/{}/{}/{}/{}",
        now.year(),
        now.month(),
        now.day(),
        now.hour()
    )
}

/// Writes three recordings' dead letters under `root` in `store`: one in the Event Grid
/// schema, one as a namespace topic's CloudEvent record, one from 2020 (before `--since`);
/// plus an unreadable blob and an object that is not a blob of events.
async fn write_dead_letters(store: &dyn ObjectStore, root: &str, emulator: &Emulator) {
    let hour = this_hour("MY-SUB");
    let at = |name: &str| Key::from(format!("{root}{name}"));
    let event_grid = json!([dead_lettered_recording(emulator, "dl-eg")]);
    let namespace = json!([{
        "brokerProperties": {"deadletterreason": "Rejected", "deliveryattempts": 1},
        "event": to_cloud_event(&dead_lettered_recording(emulator, "dl-ns")),
    }]);
    let old = json!([dead_lettered_recording(emulator, "dl-old")]);
    let put = |key: Key, body: Vec<u8>| async move {
        store.put(&key, PutPayload::from(body)).await.unwrap();
    };
    put(
        at(&format!("{hour}/1111.json")),
        serde_json::to_vec(&event_grid).unwrap(),
    )
    .await;
    put(
        at(&format!("{hour}/2222.json")),
        serde_json::to_vec(&namespace).unwrap(),
    )
    .await;
    put(
        at("MY-SUB/2020/1/1/0/3333.json"),
        serde_json::to_vec(&old).unwrap(),
    )
    .await;
    put(at(&format!("{hour}/4444.json")), b"{not json".to_vec()).await;
    put(at("MY-SUB/README.txt"), b"notes".to_vec()).await;
}

/// Imports from `container` (with `extra` arguments), asserts what was archived, and that a
/// second import changes nothing.
async fn import_twice(app: &TestApp, emulator: &Emulator, container: &str, extra: &[&str]) {
    let today = Utc::now().format("%Y-%m-%d").to_string();
    let with = |more: &[&str]| -> Vec<String> {
        ["--container", container]
            .iter()
            .chain(extra)
            .chain(more)
            .map(|arg| arg.to_string())
            .collect()
    };
    let run = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        import(app, emulator, &args).await
    };
    let first = run(with(&["--since", &today])).await;
    // The unreadable blob is reported by name and fails the run; the others are imported.
    assert_eq!(first.status.code(), Some(1), "{}", text(&first));
    assert!(text(&first).contains("4444.json"), "{}", text(&first));
    assert_eq!(count(&first, "blobs imported"), 2, "{}", text(&first));
    assert_eq!(count(&first, "blobs before --since"), 1);
    assert_eq!(count(&first, "other objects skipped"), 1);
    assert_eq!(count(&first, "events accepted"), 2);

    for call in ["dl-eg", "dl-ns"] {
        let folder = format!("{call}/rec-{call}");
        app.wait_for_manifest(Path::new(&folder), WAIT).await;
    }
    app.wait_for_jobs(2, JobState::Archived, WAIT).await;

    let second = run(with(&["--since", &today])).await;
    assert_eq!(count(&second, "events accepted"), 0, "{}", text(&second));
    assert_eq!(count(&second, "events already known"), 2);
    assert_eq!(app.jobs().await.len(), 2, "a re-import adds no job");

    // Without --since, the 2020 blob is imported too.
    let all = run(with(&[])).await;
    assert_eq!(count(&all, "events accepted"), 1, "{}", text(&all));
    assert_eq!(count(&all, "events already known"), 2);
    app.wait_for_manifest(Path::new("dl-old/rec-dl-old"), WAIT)
        .await;
}

fn setting(storage: &[(&str, String)], key: &str) -> String {
    storage
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.clone())
        .unwrap()
}

#[tokio::test]
async fn dead_letters_in_a_local_folder_are_archived_once() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn(&emulator, &[]).await;
    let folder = tempfile::tempdir().unwrap();
    let store = object_store::local::LocalFileSystem::new_with_prefix(folder.path()).unwrap();
    write_dead_letters(&store, "", &emulator).await;
    import_twice(&app, &emulator, folder.path().to_str().unwrap(), &[]).await;
}

#[tokio::test]
async fn dead_letters_in_an_azure_container_are_archived_once() {
    let Some(storage) = azure_storage().await else {
        return;
    };
    let endpoint = setting(&storage, "storage.endpoint");
    let container = setting(&storage, "storage.container");
    let store = object_store::azure::MicrosoftAzureBuilder::new()
        .with_account("devstoreaccount1")
        .with_access_key(AZURITE_KEY)
        .with_endpoint(endpoint.clone())
        .with_allow_http(true)
        .with_container_name(&container)
        .build()
        .unwrap();
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn(&emulator, &[]).await;
    // A prefix after the container narrows the import to one subscription's folder.
    write_dead_letters(&store, "", &emulator).await;
    let url = format!("{endpoint}/{container}/MY-SUB");
    import_twice(&app, &emulator, &url, &[]).await;
}

#[tokio::test]
async fn dead_letters_in_an_s3_bucket_are_archived_once() {
    let Some(storage) = s3_storage().await else {
        return;
    };
    let endpoint = setting(&storage, "storage.endpoint");
    let bucket = setting(&storage, "storage.bucket");
    let store = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(&bucket)
        .with_endpoint(&endpoint)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_access_key_id("callvault-test")
        .with_secret_access_key("callvault-test")
        .build()
        .unwrap();
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn(&emulator, &[]).await;
    write_dead_letters(&store, "deadletters/", &emulator).await;
    let url = format!("s3://{bucket}/deadletters");
    import_twice(&app, &emulator, &url, &["--s3-endpoint", &endpoint]).await;
}
