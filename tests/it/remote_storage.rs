//! The archive pipeline end to end on S3 (moto) and Azure Blob (Azurite): a recording with a
//! multipart-sized chunk and a small one is archived with sha256 metadata and a manifest, and
//! `callvault verify` passes it, then catches a tampered object.

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use callvault::queue::JobState;
use callvault::storage::Archive;
use callvault::storage::manifest::Manifest;
use callvault_emulator::EmulatorConfig;
use callvault_emulator::events::recording_file_status_updated;
use callvault_emulator::{DeliveryOptions, Emulator};
use object_store::ObjectStoreExt;
use object_store::azure::{AzureAccessKey, AzureAuthorizer, AzureCredential};

use crate::pipeline::{add_chunk, start_time};
use crate::support::{
    AZURITE_KEY, Suite, TestApp, eventually, service, start_emulator, unique_name,
};

const WAIT: Duration = Duration::from_secs(60);
/// The smallest part S3 allows, so the 12 MiB chunk takes three parts.
const PART: &str = "5242880";
/// Storage settings for a fresh bucket on moto (which creates buckets without a signature);
/// `None` when no moto is configured.
pub async fn s3_storage() -> Option<Vec<(&'static str, String)>> {
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
        ("storage.part_size_bytes", PART.into()),
    ])
}

/// Storage settings for a fresh container on Azurite, created with a Shared Key signature;
/// `None` when no Azurite is configured.
pub async fn azure_storage() -> Option<Vec<(&'static str, String)>> {
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
        ("storage.part_size_bytes", PART.into()),
    ])
}

/// Runs `callvault verify` against the app's database and storage; returns (exit code, stdout).
fn run_verify(app: &TestApp, storage: &[(&str, String)]) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_callvault"));
    command
        .arg("verify")
        .env("CALLVAULT__DATABASE__URL", &app.db.url);
    for (key, value) in storage {
        let name = format!("CALLVAULT__{}", key.to_ascii_uppercase().replace('.', "__"));
        command.env(name, value);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (
        output.status.code().unwrap_or(-1),
        format!("{stdout}{stderr}"),
    )
}

async fn a_recording_is_archived_and_verified(storage: Vec<(&'static str, String)>) {
    let emulator: Emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn(&emulator, &storage).await;
    let archive: &Archive = &app.running().state.archive;
    let start = start_time();
    let chunks = vec![
        add_chunk(
            &emulator,
            "call-remote",
            "doc-remote-0",
            0,
            "ChunkMaximumSizeExceeded",
            12 * 1024 * 1024 + 3,
        ),
        add_chunk(
            &emulator,
            "call-remote",
            "doc-remote-1",
            1,
            "SessionEnded",
            40_000,
        ),
    ];
    let event = recording_file_status_updated(
        "evt-remote",
        "/recording/call/call-remote/serverCallId/srv-remote",
        start,
        &chunks,
        "Mp4",
    );
    let report = emulator
        .deliver(&app.events_url(), vec![event], DeliveryOptions::default())
        .await;
    assert!(report.validated && report.delivered == 1, "{report:?}");

    let layout = archive.layout("call-remote", &start.format("%Y%m%dT%H%M%SZ").to_string());
    let manifest: Manifest = eventually("the manifest in storage", WAIT, || async {
        let body = archive.read(&layout.manifest()).await.ok()?;
        Some(serde_json::from_slice(&body).unwrap())
    })
    .await;
    app.wait_for_jobs(2, JobState::Archived, WAIT).await;
    assert_eq!(manifest.chunks.len(), 2);
    for (index, document) in [(0, "doc-remote-0"), (1, "doc-remote-1")] {
        let media_key = layout.media(index, "mp4");
        let stored = archive.digest_of(&media_key).await.unwrap().unwrap();
        let served = emulator.media_sha256(document).unwrap();
        assert_eq!(stored.sha256, served, "media of chunk {index}");
        assert_eq!(manifest.chunks[index as usize].media, stored);
        let stamped = archive.existing_digest(&media_key).await.unwrap();
        assert_eq!(stamped, Some(stored), "sha256 metadata of chunk {index}");
        let metadata = archive.read(&layout.metadata(index)).await.unwrap();
        assert_eq!(metadata, emulator.metadata_bytes(document).unwrap());
    }

    let (code, output) = run_verify(&app, &storage);
    assert_eq!(code, 0, "{output}");
    let ok_lines = output
        .lines()
        .filter(|line| line.starts_with("ok "))
        .count();
    assert_eq!(ok_lines, 4, "{output}");

    let small = layout.media(1, "mp4");
    archive
        .store()
        .put(&small, Bytes::from_static(b"not the recording").into())
        .await
        .unwrap();
    let (code, output) = run_verify(&app, &storage);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains(&format!("MISMATCH  {small}")), "{output}");
}

#[tokio::test]
async fn a_recording_is_archived_to_s3_with_sha256_metadata_and_verified() {
    if let Some(storage) = s3_storage().await {
        a_recording_is_archived_and_verified(storage).await;
    }
}

#[tokio::test]
async fn a_recording_is_archived_to_azure_with_sha256_metadata_and_verified() {
    if let Some(storage) = azure_storage().await {
        a_recording_is_archived_and_verified(storage).await;
    }
}

/// Storage settings for a fresh moto bucket with Object Lock, every object locked at write
/// in compliance mode for a day; `None` when no moto is configured.
async fn s3_locked_storage() -> Option<Vec<(&'static str, String)>> {
    let endpoint = service("CALLVAULT_TEST_S3_ENDPOINT", Suite::S3)?;
    service("AWS_ACCESS_KEY_ID", Suite::S3)?;
    let bucket = unique_name();
    let created = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .header("x-amz-bucket-object-lock-enabled", "true")
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{}", created.status());
    Some(vec![
        ("storage.kind", "s3".into()),
        ("storage.bucket", bucket),
        ("storage.endpoint", endpoint),
        ("storage.region", "us-east-1".into()),
        ("storage.part_size_bytes", PART.into()),
        ("storage.object_lock_mode", "compliance".into()),
        ("storage.object_lock_days", "1".into()),
    ])
}

/// moto refuses a locked write without a checksum declaration, so this fails if any write of
/// the pipeline (multipart media, single-put media, metadata, manifest) lacks one; the
/// tampering at the end is a new version over a locked one, which `verify` still catches.
#[tokio::test]
async fn a_recording_is_archived_locked_to_an_object_lock_bucket_and_verified() {
    if let Some(storage) = s3_locked_storage().await {
        a_recording_is_archived_and_verified(storage).await;
    }
}
