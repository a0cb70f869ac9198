//! The emulator's Entra ID bearer tokens against callvault's `[ingest.entra]`, end to end:
//! callvault reads the tenant's keys from the emulator, accepts its deliveries (handshake and
//! event) and archives the recording; once the emulator's tokens name another audience, the
//! handshake and the event are refused with 401 and nothing of that recording is taken.

use std::path::Path;
use std::time::Duration;

use callvault_emulator::{DeliveryOptions, EmulatorConfig, EntraOptions};

use crate::storage_queue_delivery::recording_event;
use crate::support::{TestApp, start_emulator};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const AUDIENCE: &str = "api://callvault-webhook";
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn callvault_accepts_the_emulators_tokens_and_refuses_another_audiences() {
    let emulator = start_emulator(EmulatorConfig {
        entra: Some(EntraOptions::new(TENANT, AUDIENCE)),
        ..EmulatorConfig::default()
    })
    .await;
    let app = TestApp::spawn(
        &emulator,
        &[
            ("ingest.entra.tenant_id", TENANT.into()),
            ("ingest.entra.audience", AUDIENCE.into()),
            ("ingest.entra.require_role", "true".into()),
            (
                "ingest.entra.keys_url",
                emulator.entra_keys_url().unwrap().to_string(),
            ),
        ],
    )
    .await;

    let accepted = emulator
        .deliver(
            &app.events_url(),
            vec![recording_event(&emulator, "entra-ok")],
            DeliveryOptions::default(),
        )
        .await;
    assert!(accepted.validated, "{accepted:?}");
    assert_eq!(accepted.attempts, vec![(0, 200)]);
    app.wait_for_manifest(Path::new("entra-ok/rec-entra-ok"), WAIT)
        .await;
    let jobs_before = app.jobs().await.len();
    assert_eq!(jobs_before, 1);

    // Same key, same tenant: only the audience differs.
    emulator
        .set_entra(Some(EntraOptions::new(TENANT, "api://another-app")))
        .unwrap();
    let event = recording_event(&emulator, "entra-refused");
    let handshake = emulator
        .deliver(
            &app.events_url(),
            vec![event.clone()],
            DeliveryOptions::default(),
        )
        .await;
    assert!(!handshake.validated, "the handshake is refused");
    assert!(
        handshake.attempts.is_empty(),
        "nothing sent without a handshake"
    );
    let direct = emulator
        .deliver(
            &app.events_url(),
            vec![event],
            DeliveryOptions {
                handshake: false,
                ..DeliveryOptions::default()
            },
        )
        .await;
    assert_eq!(direct.attempts, vec![(0, 401)], "401 is not retried");
    assert_eq!(direct.failed, 1);
    // The 401 was answered before anything was stored: no wait is needed to see nothing.
    assert_eq!(app.jobs().await.len(), jobs_before, "nothing archived");
    assert!(!app.archive.join("entra-refused").exists());
}

#[tokio::test]
async fn the_emulator_command_refuses_a_tenant_that_cannot_be_a_url_path_before_starting() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn(&emulator, &[]).await;
    let args = [
        "emulator",
        "--bind",
        "127.0.0.1:0",
        "--entra-tenant",
        "../keys",
        "--entra-audience",
        AUDIENCE,
    ];
    let (code, output) = app.run_callvault(&[], &args).await;
    assert_eq!(code, 2, "{output}");
    assert!(output.contains("tenant id"), "{output}");
}
