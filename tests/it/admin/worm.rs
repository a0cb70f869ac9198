//! Legal holds through the admin API and the scheduled lock of `storage.lock_after_hours`,
//! on a moto bucket with Object Lock and a queue on SQLite and PostgreSQL.

use bytes::Bytes;
use callvault::admin::lock_schedule::lock_due;
use callvault::app::Role;
use callvault::queue::jobs::Finish;
use callvault::storage::{Archive, layout};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::support::*;
use crate::support::{Suite, service, unique_name};

/// Settings for a fresh moto bucket with Object Lock, governance mode for a day, locked after
/// `after_hours`; `None` when no moto is configured.
async fn locked_storage(after_hours: u32) -> Option<Vec<(&'static str, String)>> {
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
        ("storage.object_lock_mode", "governance".into()),
        ("storage.object_lock_days", "1".into()),
        ("storage.lock_after_hours", after_hours.to_string()),
    ])
}

/// What a worker writes for chunk 0 of `recording` (as `archived_chunk` names them), and a
/// manifest; returns the keys.
async fn write_objects(archive: &Archive, recording: &str) -> Vec<String> {
    let chunk = archived_chunk(recording, 0);
    let manifest = format!("call-{recording}/{recording}/manifest.json");
    for (key, body) in [
        (&chunk.media_key, "media"),
        (&chunk.metadata_key, "{}"),
        (&manifest, "{\"chunks\":1}"),
    ] {
        archive
            .put_bytes_once(&layout::object_key(key), Bytes::from(body))
            .await
            .unwrap();
    }
    vec![chunk.media_key, chunk.metadata_key, manifest]
}

/// A signed request to the test's bucket for `key` (with `query`, e.g. `?legal-hold`).
async fn s3_request(
    storage: &[(&str, String)],
    method: http::Method,
    key: &str,
    query: &str,
) -> reqwest::Response {
    let setting = |name: &str| {
        storage
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.clone())
            .unwrap()
    };
    let url = url::Url::parse(&format!(
        "{}/{}/{key}{query}",
        setting("storage.endpoint"),
        setting("storage.bucket")
    ))
    .unwrap();
    let mut request = http::Request::builder()
        .method(method.clone())
        .uri(url.as_str())
        .body(Vec::<u8>::new().into())
        .unwrap();
    let credential = object_store::aws::AwsCredential {
        key_id: std::env::var("AWS_ACCESS_KEY_ID").unwrap(),
        secret_key: std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_default(),
        token: None,
    };
    object_store::aws::AwsAuthorizer::new(&credential, "s3", "us-east-1")
        .try_authorize(&mut request, None)
        .unwrap();
    reqwest::Client::new()
        .request(method, url)
        .headers(request.headers().clone())
        .send()
        .await
        .unwrap()
}

/// The legal hold document of `key`.
async fn legal_hold_of(storage: &[(&str, String)], key: &str) -> String {
    let answer = s3_request(storage, http::Method::GET, key, "?legal-hold").await;
    answer.text().await.unwrap()
}

/// The mode and retain-until date S3 reports for `key`.
async fn retention_of(
    storage: &[(&str, String)],
    key: &str,
) -> (Option<String>, Option<DateTime<Utc>>) {
    let head = s3_request(storage, http::Method::HEAD, key, "").await;
    assert!(head.status().is_success(), "HEAD {key}: {}", head.status());
    let header = |name: &str| {
        head.headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let until = header("x-amz-object-lock-retain-until-date").map(|until| {
        DateTime::parse_from_rfc3339(&until)
            .unwrap()
            .with_timezone(&Utc)
    });
    (header("x-amz-object-lock-mode"), until)
}

/// Runs `callvault recordings hold ARGS` against the app's database and `storage`; returns
/// (exit code, stdout and stderr).
fn run_hold(app: &TestApp, storage: &[(&str, String)], args: &[&str]) -> (i32, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_callvault"));
    command
        .args(["recordings", "hold"])
        .args(args)
        .env("CALLVAULT__DATABASE__URL", &app.db.url);
    for (key, value) in storage {
        let name = format!("CALLVAULT__{}", key.to_ascii_uppercase().replace('.', "__"));
        command.env(name, value);
    }
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

async fn delete(app: &TestApp, path: &str) -> (u16, Value) {
    let response = app
        .client
        .delete(app.url(path))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request");
    status_and_json(response).await
}

async fn a_legal_hold_is_set_on_every_object_and_recorded(store: Store) {
    let Some(storage) = locked_storage(0).await else {
        return;
    };
    let Some(app) = start(store, Role::Ingest, DEAD_ACS, &storage).await else {
        return;
    };
    announce(&app, "held", 1, &[(0, "SessionEnded")]).await;
    let keys = write_objects(&app.running().state.archive, "held").await;

    let (status, body) = app.post("/admin/recordings/held/hold", &json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["legal_hold"].as_bool(), body["objects"].as_u64()),
        (Some(true), Some(3))
    );
    for key in &keys {
        let hold = legal_hold_of(&storage, key).await;
        assert!(hold.contains("<Status>ON</Status>"), "{key}: {hold}");
    }
    let (_, detail) = app.get("/admin/recordings/held").await;
    assert_eq!(detail["worm"]["legal_hold"], true, "{detail}");
    assert!(
        detail["worm"]["legal_hold_changed_at"].is_string(),
        "{detail}"
    );

    let (status, body) = delete(&app, "/admin/recordings/held/hold").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["legal_hold"], false);
    for key in &keys {
        let hold = legal_hold_of(&storage, key).await;
        assert!(hold.contains("<Status>OFF</Status>"), "{key}: {hold}");
    }
    let (_, detail) = app.get("/admin/recordings/held").await;
    assert_eq!(detail["worm"]["legal_hold"], false, "{detail}");

    // The same through the command line.
    let (code, output) = run_hold(&app, &storage, &["held"]);
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("legal hold set on 3 objects of recording 1"),
        "{output}"
    );
    assert!(
        legal_hold_of(&storage, &keys[0])
            .await
            .contains("<Status>ON</Status>")
    );
    let (code, output) = run_hold(&app, &storage, &["held", "--release"]);
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("legal hold released on 3 objects"),
        "{output}"
    );
    assert!(
        legal_hold_of(&storage, &keys[0])
            .await
            .contains("<Status>OFF</Status>")
    );

    announce(&app, "empty", 1, &[(0, "SessionEnded")]).await;
    let (status, body) = app.post("/admin/recordings/empty/hold", &json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("nothing_to_hold")),
        "{body}"
    );
    let (_, detail) = app.get("/admin/recordings/empty").await;
    assert_eq!(detail["worm"]["legal_hold"], false, "{detail}");

    let (status, body) = app.post("/admin/recordings/nobody/hold", &json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("recording_not_found"))
    );
    app.close().await;
}
on_every_store!(a_legal_hold_is_set_on_every_object_and_recorded);

async fn a_legal_hold_on_a_local_archive_is_refused(store: Store) {
    let Some(app) = ingest(store).await else {
        return;
    };
    announce(&app, "local", 1, &[(0, "SessionEnded")]).await;
    let (status, body) = app.post("/admin/recordings/local/hold", &json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("no_store_lock")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("local archive has no"),
        "{body}"
    );
    let local = [("storage.path", app.archive.display().to_string())];
    let (code, output) = run_hold(&app, &local, &["local"]);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("local archive has no"), "{output}");
    let (_, detail) = app.get("/admin/recordings/local").await;
    assert_eq!(
        detail["worm"]["legal_hold"], false,
        "nothing recorded: {detail}"
    );
    app.close().await;
}
on_every_store!(a_legal_hold_on_a_local_archive_is_refused);

async fn a_recording_is_locked_once_its_holding_period_is_over(store: Store) {
    let Some(storage) = locked_storage(24).await else {
        return;
    };
    let Some(app) = start(store, Role::Ingest, DEAD_ACS, &storage).await else {
        return;
    };
    let db = app.queue();
    let archive = &app.running().state.archive;
    announce(&app, "pci", 1, &[(0, "SessionEnded")]).await;
    let keys = write_objects(archive, "pci").await;
    let job = job_id(db, "pci", 0).await;
    drive(db, job, Finish::Archived(archived_chunk("pci", 0))).await;
    let archived = Utc::now();
    for key in &keys {
        assert_eq!(
            retention_of(&storage, key).await,
            (None, None),
            "{key} is written unlocked"
        );
    }

    // Injected time: nothing is due until the 24 hours have passed.
    assert_eq!(lock_due(db, archive, 24, archived).await.unwrap(), 0);
    let almost = archived + Duration::hours(23) + Duration::minutes(59);
    assert_eq!(lock_due(db, archive, 24, almost).await.unwrap(), 0);
    let over = archived + Duration::hours(24) + Duration::minutes(1);
    assert_eq!(lock_due(db, archive, 24, over).await.unwrap(), 1);
    for key in &keys {
        let (mode, until) = retention_of(&storage, key).await;
        assert_eq!(mode.as_deref(), Some("GOVERNANCE"), "{key}");
        assert_eq!(
            until.map(|until| until.timestamp()),
            Some((over + Duration::days(1)).timestamp()),
            "{key}: retained a day from the lock"
        );
        // Locked now: a delete of the version is refused.
        let version = s3_request(&storage, http::Method::HEAD, key, "").await;
        let version = version.headers()["x-amz-version-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let delete = s3_request(
            &storage,
            http::Method::DELETE,
            key,
            &format!("?versionId={version}"),
        )
        .await;
        assert_eq!(delete.status(), reqwest::StatusCode::FORBIDDEN, "{key}");
    }
    // Recorded, so done once.
    assert_eq!(
        lock_due(db, archive, 24, over + Duration::hours(1))
            .await
            .unwrap(),
        0
    );
    let (_, detail) = app.get("/admin/recordings/pci").await;
    assert!(detail["worm"]["locked_at"].is_string(), "{detail}");
    app.close().await;
}
on_every_store!(a_recording_is_locked_once_its_holding_period_is_over);

async fn serve_locks_a_recording_whose_holding_period_is_over(store: Store) {
    let Some(storage) = locked_storage(1).await else {
        return;
    };
    let Some(app) = start(store, Role::Ingest, DEAD_ACS, &storage).await else {
        return;
    };
    announce(&app, "old", 3, &[(0, "SessionEnded")]).await;
    let keys = write_objects(&app.running().state.archive, "old").await;
    let job = job_id(app.queue(), "old", 0).await;
    drive(app.queue(), job, Finish::Archived(archived_chunk("old", 0))).await;
    // Archived two hours ago, as if the service had been down since.
    let two_hours_ago = (Utc::now() - Duration::hours(2)).timestamp_millis();
    sqlx::query("UPDATE recording_counts SET last_archived_at = $1")
        .bind(two_hours_ago)
        .execute(app.queue().pool())
        .await
        .unwrap();
    // Its manifest written then too, or the worker's manifest sweep would write a new one.
    let recording = callvault::admin::queries::recording_id_by_key(app.queue(), "old")
        .await
        .unwrap()
        .unwrap();
    callvault::queue::recordings::set_manifest(app.queue(), recording, &keys[2], two_hours_ago)
        .await
        .unwrap();
    assert_eq!(retention_of(&storage, &keys[0]).await, (None, None));

    // A role that writes the archive runs the lock job, a round at start.
    let app = restart(app, Role::All, &storage).await;
    app.await_json("/admin/recordings/old", "the scheduled lock", |detail| {
        detail["worm"]["locked_at"].is_string()
    })
    .await;
    for key in &keys {
        let (mode, until) = retention_of(&storage, key).await;
        assert_eq!(mode.as_deref(), Some("GOVERNANCE"), "{key}");
        assert!(until.is_some_and(|until| until > Utc::now()), "{key}");
    }
    app.close().await;
}
on_every_store!(serve_locks_a_recording_whose_holding_period_is_over);
