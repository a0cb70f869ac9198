//! No orphaned uploads, end to end: S3 (moto, behind a proxy that can cut it off) becomes
//! unreachable while a worker streams a chunk in parts, so the attempt's abort fails and the
//! upload stays in the bucket. Once S3 is back, the job's next attempt aborts it and archives
//! the chunk, and no incomplete upload remains. And the sweep `serve` runs at start aborts a
//! recorded upload whose job no lease holds.

use std::time::Duration;

use callvault::queue::JobState;
use callvault::queue::uploads;
use callvault::storage::IncompleteUploads;
use callvault::worker::StepOutcome;
use callvault_emulator::events::recording_file_status_updated;
use callvault_emulator::{EmulatorConfig, Fault};
use serde_json::json;

use crate::pipeline::{add_chunk, start_time};
use crate::support::{
    Suite, TestApp, TestDatabase, eventually, service, start_emulator, unique_name,
};

// The library's own tests' proxy; its record of what was sent is not needed here.
#[allow(dead_code)]
#[path = "../../src/storage/tests/proxy.rs"]
mod proxy;

const WAIT: Duration = Duration::from_secs(60);

/// Runs `script` with boto3's client for the moto at `sys.argv[1]` as `s3`; its stdout.
fn boto3(script: &str, args: &[&str]) -> Vec<u8> {
    let program = format!(
        "import boto3, json, sys\n\
         s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1',\n\
             aws_access_key_id='callvault-test', aws_secret_access_key='callvault-test')\n\
         {script}"
    );
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(program)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "boto3: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// (key, upload id) of the bucket's incomplete uploads, as boto3 lists them straight from moto.
fn boto3_uploads(endpoint: &str, bucket: &str) -> Vec<(String, String)> {
    let out = boto3(
        "r = s3.list_multipart_uploads(Bucket=sys.argv[2])\n\
         print(json.dumps([[u['Key'], u['UploadId']] for u in r.get('Uploads', [])]))",
        &[endpoint, bucket],
    );
    serde_json::from_slice(&out).unwrap()
}

/// A fresh bucket on moto.
async fn fresh_bucket(moto: &str) -> String {
    let bucket = unique_name();
    let created = reqwest::Client::new()
        .put(format!("{moto}/{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{}", created.status());
    bucket
}

fn s3_settings(bucket: &str, endpoint: String) -> Vec<(&'static str, String)> {
    vec![
        ("storage.kind", "s3".into()),
        ("storage.bucket", bucket.to_owned()),
        ("storage.endpoint", endpoint),
        ("storage.region", "us-east-1".into()),
        ("storage.part_size_bytes", "5242880".into()),
    ]
}

#[tokio::test]
async fn an_upload_cut_off_by_an_outage_is_aborted_by_the_next_attempt() {
    let Some(moto) = service("CALLVAULT_TEST_S3_ENDPOINT", Suite::S3) else {
        return;
    };
    let bucket = fresh_bucket(&moto).await;
    let s3 = proxy::CutProxy::start(&moto).await;
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let mut settings = s3_settings(&bucket, s3.endpoint());
    settings.push(("worker.lease_secs", "10".into()));
    let app = TestApp::spawn_ingest(&emulator, &settings).await;
    // 12 MiB at 2 MiB/s: parts go up for a few seconds, long enough to cut S3 off midway.
    let chunk = add_chunk(
        &emulator,
        "call-outage",
        "doc-outage",
        0,
        "SessionEnded",
        12 * 1024 * 1024,
    );
    emulator.set_fault(
        "doc-outage",
        Fault::Throttle {
            bytes_per_second: 2 * 1024 * 1024,
        },
    );
    let event = recording_file_status_updated(
        "evt-outage",
        "/recording/call/call-outage",
        start_time(),
        &[chunk],
        "Mp4",
    );
    assert_eq!(app.post_events(&json!([event])).await.status(), 200);

    let worker = app.worker();
    let attempt = tokio::spawn(async move { worker.step().await.unwrap() });
    let job = eventually("the job to be claimed", WAIT, || async {
        app.jobs()
            .await
            .into_iter()
            .find(|job| job.state() == JobState::Running)
    })
    .await;
    let recorded = eventually("the multipart upload to be recorded", WAIT, || async {
        let open = uploads::of_job(app.queue(), job.id).await.unwrap();
        (!open.is_empty()).then_some(open)
    })
    .await;
    s3.cut();
    assert_eq!(attempt.await.unwrap(), StepOutcome::Retried);
    assert_eq!(
        boto3_uploads(&moto, &bucket),
        vec![(
            recorded[0].object_key.clone(),
            recorded[0].upload_id.clone()
        )],
        "the outage kept the attempt from aborting its upload"
    );
    assert_eq!(
        uploads::of_job(app.queue(), job.id).await.unwrap(),
        recorded
    );

    s3.restore();
    app.drain_expecting(1, JobState::Archived).await;
    let state = &app.running().state;
    let ours = match state.archive.incomplete_uploads().await.unwrap() {
        IncompleteUploads::Listed(uploads) => uploads,
        other => panic!("S3 lists its uploads: {other:?}"),
    };
    assert_eq!(
        (ours, boto3_uploads(&moto, &bucket)),
        (vec![], vec![]),
        "no incomplete upload remains, by our ListMultipartUploads and by boto3"
    );
    assert!(
        uploads::of_job(app.queue(), job.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        callvault::metrics::Metrics::get(&state.metrics.storage_uploads_aborted),
        1
    );
}

#[tokio::test]
async fn serve_sweeps_a_recorded_upload_that_no_lease_holds_at_start() {
    let Some(moto) = service("CALLVAULT_TEST_S3_ENDPOINT", Suite::S3) else {
        return;
    };
    let bucket = fresh_bucket(&moto).await;
    let key = "call-gone/rec/chunk-0000.mp4";
    let out = boto3(
        "print(s3.create_multipart_upload(Bucket=sys.argv[2], Key=sys.argv[3])['UploadId'])",
        &[&moto, &bucket, key],
    );
    let upload_id = String::from_utf8(out).unwrap().trim().to_owned();
    // What a crashed process left: a record of an upload for a job no lease holds.
    let db = TestDatabase::sqlite().await;
    let queue = callvault::queue::Db::connect(&db.url, 1).await.unwrap();
    queue.migrate().await.unwrap();
    uploads::opened(&queue, 12345, key, &upload_id, 0)
        .await
        .unwrap();
    queue.close().await;

    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn_on(&emulator, db, &s3_settings(&bucket, moto.clone())).await;
    eventually("the sweep to abort the upload", WAIT, || async {
        boto3_uploads(&moto, &bucket).is_empty().then_some(())
    })
    .await;
    let state = &app.running().state;
    eventually("the record to be struck off", WAIT, || async {
        uploads::of_job(app.queue(), 12345)
            .await
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
    assert_eq!(
        callvault::metrics::Metrics::get(&state.metrics.storage_uploads_aborted),
        1
    );
}
