//! The emulator delivering into an Azure Storage Queue as Event Grid does, end to end: a call
//! recorded through the control API, its RecordingFileStatusUpdated put into a queue on
//! Azurite (Shared Key, base64 message), callvault in `storage_queue` mode reading it and
//! archiving every chunk, the queue empty afterwards.

use std::path::Path;
use std::time::Duration;

use callvault::recording::start_time_key;
use callvault_emulator::{EmulatorConfig, QueueDestination, RecordingConfig};

use crate::control::{client, config, ga, options, stopped};
use crate::storage_queue_delivery::new_queue;
use crate::support::{TestApp, eventually, sha256_hex, start_emulator};

const WAIT: Duration = Duration::from_secs(30);

async fn metric(app: &TestApp, line: &str) -> bool {
    let text = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines().any(|l| l == line)
}

#[tokio::test]
async fn a_recording_delivered_into_a_queue_is_archived_and_the_queue_emptied() {
    let Some((url, queue)) = new_queue().await else {
        return;
    };
    let emulator = start_emulator(config(RecordingConfig {
        chunk_max_duration: Duration::from_secs(2),
        time_scale: 20.0,
        ..RecordingConfig::default()
    }))
    .await;
    // Azurite's account: the emulator signs with its published key, as callvault does.
    emulator.set_queue_destinations(vec![QueueDestination::new(&url, None, None).unwrap()]);
    let app = TestApp::spawn(
        &emulator,
        &[
            ("ingest.mode", "storage_queue".to_owned()),
            ("ingest.queue.url", url.clone()),
            ("ingest.queue.visibility_timeout_secs", "10".to_owned()),
        ],
    )
    .await;

    let control = client(&emulator);
    let call = ga("srv-queue-e2e");
    let id = control
        .start(&call, &options("audio", "mixed", "wav"))
        .await
        .unwrap()
        .recording_id;
    // Recording time, not synchronisation: 300 ms at 20× are six media seconds, three chunks.
    tokio::time::sleep(Duration::from_millis(300)).await;
    control.stop(&call, &id).await.unwrap();

    let snapshot = stopped(&emulator, &id).await;
    assert!(snapshot.document_ids.len() >= 2, "{snapshot:?}");
    let folder = format!(
        "{}/{}",
        snapshot.call_id,
        start_time_key(snapshot.started_at)
    );
    let manifest = app.wait_for_manifest(Path::new(&folder), WAIT).await;
    let chunks = manifest["chunks"].as_array().unwrap();
    assert_eq!(chunks.len(), snapshot.document_ids.len());
    for (index, document_id) in snapshot.document_ids.iter().enumerate() {
        let media = std::fs::read(
            app.archive
                .join(&folder)
                .join(format!("chunk-{index:04}.wav")),
        )
        .unwrap();
        assert_eq!(
            sha256_hex(&media),
            emulator.media_sha256(document_id).unwrap(),
            "chunk {index} archived byte for byte"
        );
    }

    // The one message (one event) came through the queue and was deleted.
    eventually("the message deleted", WAIT, || async {
        metric(&app, "callvault_queue_messages_deleted_total 1")
            .await
            .then_some(())
    })
    .await;
    eventually("the queue is empty", WAIT, || async {
        queue.receive(32, 1).await.unwrap().is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_emulator_command_refuses_a_queue_it_cannot_sign_for_before_starting() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn(&emulator, &[]).await;
    let queue = "https://acme.queue.core.windows.net/recordings";
    let args = [
        "emulator",
        "--bind",
        "127.0.0.1:0",
        "--deliver-to-queue",
        queue,
    ];
    let (code, output) = app.run_callvault(&[], &args).await;
    assert_eq!(code, 2, "{output}");
    assert!(output.contains("account `acme`"), "{output}");
    let both = [
        &args[..],
        &["--queue-account-key", "a2V5", "--queue-sas", "sig=x"],
    ]
    .concat();
    let (code, output) = app.run_callvault(&[], &both).await;
    assert_eq!(code, 2, "{output}");
    assert!(output.contains("not both"), "{output}");
}
