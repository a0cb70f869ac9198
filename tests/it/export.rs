//! Export for an access request end to end, on SQLite and PostgreSQL, on a local folder, S3
//! (moto) and Azure Blob (Azurite): `callvault export` writes a tar whose files are the
//! archived objects byte for byte and whose SHA256SUMS checks; an export stopped part way
//! (here by a tampered object, which it names) continues to the same tar once the object is
//! restored; the admin API runs the same export as a job and serves the tar.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use callvault::app::Role;
use callvault::queue::recordings;
use callvault::storage::Archive;
use callvault::storage::layout::object_key;
use callvault_emulator::events::{ChunkEvent, recording_file_status_updated};
use callvault_emulator::{DocumentSpec, Emulator, EmulatorConfig, MediaSpec};
use chrono::Utc;
use object_store::ObjectStoreExt;
use serde_json::{Value, json};

use crate::pipeline::start_time;
use crate::remote_storage::{azure_storage, s3_storage};
use crate::support::{TestApp, TestDatabase, command_output, eventually, start_emulator};

const WAIT: Duration = Duration::from_secs(60);
const SUBJECT: &str = "8:acs:subject_0001";
const ADMIN_TOKEN: &str = "export-admin-token";

/// A chunk whose metadata document names `participants`.
fn chunk(
    emulator: &Emulator,
    call: &str,
    index: u32,
    end_reason: &str,
    len: u64,
    participants: &[&str],
) -> ChunkEvent {
    let document_id = format!("doc-{call}-{index}");
    let metadata = json!({
        "callId": call,
        "chunkIndex": index,
        "participants": participants.iter().map(|id| json!({"participantId": id})).collect::<Vec<_>>(),
    });
    let urls = emulator.add_document(DocumentSpec {
        document_id: document_id.clone(),
        media: MediaSpec::Synthetic {
            len,
            seed: u64::from(index) + len,
        },
        metadata: Some(Bytes::from(serde_json::to_vec(&metadata).unwrap())),
        call_id: call.into(),
        chunk_index: index,
        created_at: Utc::now(),
    });
    ChunkEvent {
        document_id,
        index,
        end_reason: end_reason.into(),
        urls: Some(urls),
    }
}

/// Archives three recordings: two with the subject (one of two chunks), one without.
/// Returns the app and the ids of the subject's recordings, oldest first.
async fn archive_three(
    emulator: &Emulator,
    db: TestDatabase,
    extra: &[(&str, String)],
) -> (TestApp, Vec<i64>) {
    let app = TestApp::launch(&emulator.connection_string(), db, Role::All, extra).await;
    let start = start_time();
    let events = vec![
        recording_file_status_updated(
            "evt-export-a",
            "/recording/call/call-export-a",
            start,
            &[
                chunk(
                    emulator,
                    "call-export-a",
                    0,
                    "ChunkMaximumSizeExceeded",
                    300_000,
                    &[SUBJECT, "8:acs:other_a"],
                ),
                chunk(
                    emulator,
                    "call-export-a",
                    1,
                    "SessionEnded",
                    70_001,
                    &[SUBJECT],
                ),
            ],
            "Wav",
        ),
        recording_file_status_updated(
            "evt-export-b",
            "/recording/call/call-export-b",
            start,
            &[chunk(
                emulator,
                "call-export-b",
                0,
                "SessionEnded",
                5_000,
                &["8:acs:other_b"],
            )],
            "Wav",
        ),
        recording_file_status_updated(
            "evt-export-c",
            "/recording/call/call-export-c",
            start,
            &[chunk(
                emulator,
                "call-export-c",
                0,
                "SessionEnded",
                123_457,
                &["8:acs:other_c", SUBJECT],
            )],
            "Mp4",
        ),
    ];
    assert_eq!(app.post_events(&json!(events)).await.status(), 200);
    let subject = eventually("three recordings with manifests", WAIT, || async {
        let all = recordings::list(app.queue(), 10, None).await.unwrap();
        let done = all.iter().filter(|r| r.manifest_key.is_some()).count();
        (all.len() == 3 && done == 3).then(|| {
            let mut ids: Vec<i64> = all
                .iter()
                .filter(|r| r.call_id != "call-export-b")
                .map(|r| r.id)
                .collect();
            ids.sort();
            ids
        })
    })
    .await;
    (app, subject)
}

/// Runs `callvault export ARGS` against the app's database and `storage`: (exit code, output).
async fn run_export(app: &TestApp, storage: &[(&str, String)], args: &[&str]) -> (i32, String) {
    app.run_callvault(storage, &[&["export"], args].concat())
        .await
}

/// Every file of a tar: path → bytes.
fn tar_files(tar: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut body).unwrap();
        assert!(files.insert(path.clone(), body).is_none(), "{path} twice");
    }
    files
}

/// Checks an export: its SHA256SUMS passes `sha256sum -c` on the unpacked tar, and every
/// file its index lists is the archived object byte for byte. Returns the index.
async fn check_export(tar: &Path, archive: &Archive, expected: &[i64]) -> Value {
    let bytes = std::fs::read(tar).unwrap();
    let files = tar_files(&bytes);
    let unpacked = tempfile::tempdir().unwrap();
    tar::Archive::new(bytes.as_slice())
        .unpack(unpacked.path())
        .unwrap();
    let mut sha256sum = Command::new("sha256sum");
    sha256sum
        .args(["--strict", "-c", "SHA256SUMS"])
        .current_dir(unpacked.path());
    let checked = command_output(sha256sum).await;
    let report = String::from_utf8_lossy(&checked.stdout).into_owned();
    assert!(checked.status.success(), "{report}{checked:?}");
    assert_eq!(report.matches(": OK").count(), files.len() - 1, "{report}");

    let index: Value = serde_json::from_slice(&files["index.json"]).unwrap();
    assert_eq!(index["schema"], "callvault.export/v1");
    let exported: Vec<i64> = index["recordings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "exported")
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(exported, expected, "{index:#}");
    let mut listed = 0;
    for recording in index["recordings"].as_array().unwrap() {
        for file in recording["files"].as_array().unwrap() {
            let path = file["path"].as_str().unwrap();
            let key = file["key"].as_str().unwrap();
            let stored = archive
                .store()
                .get(&object_key(key))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(files[path], stored.to_vec(), "{path} differs from {key}");
            assert_eq!(file["bytes"], stored.len(), "{path}");
            listed += 1;
        }
        if recording["status"] != "exported" {
            assert_eq!(recording["files"], json!([]), "{recording}");
            continue;
        }
        // Media and metadata of each chunk, then the recording's manifest.
        let names: Vec<&str> = recording["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap().rsplit('/').next().unwrap())
            .collect();
        assert_eq!(names.last(), Some(&"manifest.json"), "{names:?}");
    }
    assert_eq!(
        files.len(),
        listed + 2,
        "index.json and SHA256SUMS besides the files"
    );
    index
}

fn read_record(tar: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(with_suffix(tar, ".progress")).unwrap()).unwrap()
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The command line's export on one database and store: by participant and by id, checked
/// against the archive; a tampered object stops it naming the object; once restored, the
/// export continues (past junk a kill would leave) to the same bytes as an uninterrupted run
/// of the same plan.
async fn the_command_line_export_matches_the_archive_and_resumes(
    db: TestDatabase,
    storage: Vec<(&'static str, String)>,
) {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let (mut app, subject) = archive_three(&emulator, db, &storage).await;
    let archive = app.running().state.archive.clone();
    let out = app.dir().join("exports");
    std::fs::create_dir_all(&out).unwrap();

    let by_participant = out.join("subject.tar");
    let (code, output) = run_export(
        &app,
        &storage,
        &[
            "--participant",
            SUBJECT,
            "--out",
            by_participant.to_str().unwrap(),
            "--requested-by",
            "dpo@example.com",
        ],
    )
    .await;
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("exported 2 recording(s), 8 files"),
        "{output}"
    );
    let index = check_export(&by_participant, &archive, &subject).await;
    assert_eq!(index["asked_for"], json!({"participant": SUBJECT}));
    assert_eq!(index["requested_by"], "dpo@example.com");
    assert!(
        index["recordings"][0]["reason"]
            .as_str()
            .unwrap()
            .contains(SUBJECT)
    );
    assert!(!with_suffix(&by_participant, ".partial").exists());
    assert!(!with_suffix(&by_participant, ".progress").exists());

    let (code, output) = run_export(
        &app,
        &storage,
        &[
            "--participant",
            SUBJECT,
            "--out",
            by_participant.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 1, "an existing tar is never overwritten: {output}");
    assert!(output.contains("already exists"), "{output}");

    // Tamper with the second recording's media: the first recording is written, then the
    // export stops at that object and names it.
    let by_id = out.join("by-id.tar");
    let ids: Vec<String> = subject.iter().map(i64::to_string).collect();
    let args = [
        "--recording",
        &ids[0],
        "--recording",
        &ids[1],
        "--out",
        by_id.to_str().unwrap(),
    ];
    let second = recordings::get(app.queue(), subject[1])
        .await
        .unwrap()
        .unwrap();
    let manifest: Value = serde_json::from_slice(
        &archive
            .read(&object_key(second.manifest_key.as_deref().unwrap()))
            .await
            .unwrap(),
    )
    .unwrap();
    let media_key = manifest["chunks"][0]["media"]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let original = archive.read(&object_key(&media_key)).await.unwrap();
    let mut forged = original.to_vec();
    forged[1000] ^= 0x55;
    archive
        .store()
        .put(&object_key(&media_key), Bytes::from(forged).into())
        .await
        .unwrap();
    let (code, output) = run_export(&app, &storage, &args).await;
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains(&format!("{media_key} does not match its manifest")),
        "{output}"
    );
    assert!(!by_id.exists());
    let record = read_record(&by_id);
    let written = record["written"].as_array().unwrap().len();
    assert_eq!(
        written,
        1 + 5,
        "index.json and the first recording's five files: {record:#}"
    );

    // An uninterrupted run of the same plan, for comparison: the record with nothing written.
    let fresh = out.join("fresh.tar");
    let mut plan_only = record.clone();
    plan_only["written"] = json!([]);
    std::fs::write(
        with_suffix(&fresh, ".progress"),
        serde_json::to_vec(&plan_only).unwrap(),
    )
    .unwrap();

    // Restore the object, and leave junk after the last complete entry as a kill would.
    archive
        .store()
        .put(&object_key(&media_key), original.clone().into())
        .await
        .unwrap();
    let partial = with_suffix(&by_id, ".partial");
    let mut junk = std::fs::OpenOptions::new()
        .append(true)
        .open(&partial)
        .unwrap();
    std::io::Write::write_all(&mut junk, &[7u8; 3000]).unwrap();
    drop(junk);
    let (code, output) = run_export(&app, &storage, &args).await;
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains(&format!("({written} entries kept from the unfinished run)")),
        "{output}"
    );
    let resumed_index = check_export(&by_id, &archive, &subject).await;
    assert_eq!(
        resumed_index, record["index"],
        "the resumed tar carries the first run's index"
    );

    let (code, output) = run_export(
        &app,
        &storage,
        &args[..4]
            .iter()
            .copied()
            .chain(["--out", fresh.to_str().unwrap()])
            .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(code, 0, "{output}");
    assert_eq!(
        std::fs::read(&by_id).unwrap(),
        std::fs::read(&fresh).unwrap(),
        "a resumed export is the same tar as an uninterrupted one"
    );

    // A partial file damaged inside a complete entry is written again from that entry.
    let damaged = out.join("damaged.tar");
    std::fs::write(
        with_suffix(&damaged, ".progress"),
        serde_json::to_vec(&record).unwrap(),
    )
    .unwrap();
    let mut bytes = std::fs::read(&by_id).unwrap();
    let cut = record["written"][written - 1].as_u64().unwrap() as usize;
    bytes.truncate(cut);
    bytes[cut - 600] ^= 0x01;
    std::fs::write(with_suffix(&damaged, ".partial"), &bytes).unwrap();
    let (code, output) = run_export(
        &app,
        &storage,
        &args[..4]
            .iter()
            .copied()
            .chain(["--out", damaged.to_str().unwrap()])
            .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains(&format!("({} entries kept", written - 1)),
        "{output}"
    );
    assert_eq!(
        std::fs::read(&damaged).unwrap(),
        std::fs::read(&fresh).unwrap()
    );

    // Another request cannot take over an unfinished export.
    let foreign = out.join("foreign.tar");
    std::fs::write(
        with_suffix(&foreign, ".progress"),
        serde_json::to_vec(&record).unwrap(),
    )
    .unwrap();
    let (code, output) = run_export(
        &app,
        &storage,
        &["--participant", SUBJECT, "--out", foreign.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("holds an unfinished export of recordings"),
        "{output}"
    );

    // An erased recording is listed as erased, with when, and nothing of it is exported.
    // The erasure is a command of its own, as an operator runs it; the service is stopped so
    // that a SQLite database has one writer.
    app.stop().await;
    let (code, output) = app
        .run_callvault(
            &storage,
            &[
                "erase",
                "--recording",
                &ids[0],
                "--reason",
                "access request test",
                "--yes",
            ],
        )
        .await;
    assert_eq!(code, 0, "{output}");
    let after_erasure = out.join("after-erasure.tar");
    let (code, output) = run_export(
        &app,
        &storage,
        &args[..4]
            .iter()
            .copied()
            .chain(["--out", after_erasure.to_str().unwrap()])
            .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains(&format!(
            "recording {} listed, not exported: erased",
            ids[0]
        )),
        "{output}"
    );
    let index = check_export(&after_erasure, &archive, &subject[1..]).await;
    let erased = &index["recordings"][0];
    assert_eq!(erased["status"], "erased", "{index:#}");
    assert!(erased["erased_at"].is_string(), "{index:#}");
    assert_eq!(erased["files"], json!([]), "{index:#}");
    app.close().await;
}

#[tokio::test]
async fn a_command_line_export_on_sqlite_and_a_local_archive_matches_and_resumes() {
    the_command_line_export_matches_the_archive_and_resumes(
        TestDatabase::sqlite().await,
        Vec::new(),
    )
    .await;
}

#[tokio::test]
async fn a_command_line_export_on_postgres_and_a_local_archive_matches_and_resumes() {
    if let Some(db) = TestDatabase::postgres().await {
        the_command_line_export_matches_the_archive_and_resumes(db, Vec::new()).await;
    }
}

#[tokio::test]
async fn a_command_line_export_from_s3_matches_and_resumes() {
    if let Some(storage) = s3_storage().await {
        the_command_line_export_matches_the_archive_and_resumes(
            TestDatabase::sqlite().await,
            storage,
        )
        .await;
    }
}

#[tokio::test]
async fn a_command_line_export_from_azure_on_postgres_matches_and_resumes() {
    if let (Some(storage), Some(db)) = (azure_storage().await, TestDatabase::postgres().await) {
        the_command_line_export_matches_the_archive_and_resumes(db, storage).await;
    }
}

async fn admin(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app
        .client
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The trail's `exported` records, oldest first.
async fn exported_records(app: &TestApp) -> Vec<Value> {
    let (status, page) = admin(app, reqwest::Method::GET, "/admin/audit", None).await;
    assert_eq!(status, 200, "{page}");
    page["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|record| record["action"] == "exported")
        .cloned()
        .collect()
}

/// The admin API's export job on one database and store: queued, followed to `done`,
/// downloaded, checked against the archive; bad requests are refused with their codes; a
/// tampered object fails the job naming the object.
async fn the_api_export_job_runs_and_serves_the_tar(
    db: TestDatabase,
    storage: Vec<(&'static str, String)>,
) {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut extra = storage.clone();
    extra.extend([
        ("admin.token", ADMIN_TOKEN.to_owned()),
        (
            "admin.export_dir",
            dir.path().join("exports").display().to_string(),
        ),
    ]);
    let (app, subject) = archive_three(&emulator, db, &extra).await;
    let archive = app.running().state.archive.clone();

    let (status, body) = admin(
        &app,
        reqwest::Method::POST,
        "/admin/exports",
        Some(json!({"recordings": [subject[0], 999_999]})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("recording_not_found")),
        "{body}"
    );
    let (status, body) = admin(
        &app,
        reqwest::Method::POST,
        "/admin/exports",
        Some(json!({"everyone": true})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_json")),
        "{body}"
    );
    let (status, body) = admin(
        &app,
        reqwest::Method::POST,
        "/admin/exports",
        Some(json!({"participant": " "})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_selection")),
        "{body}"
    );
    let (status, body) = admin(
        &app,
        reqwest::Method::GET,
        "/admin/exports/0123456789abcdef0123456789abcdef",
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("export_not_found")),
        "{body}"
    );

    let (status, queued) = admin(
        &app,
        reqwest::Method::POST,
        "/admin/exports",
        Some(json!({"participant": SUBJECT})),
    )
    .await;
    assert_eq!(status, 202, "{queued}");
    let id = queued["id"].as_str().unwrap().to_owned();
    let done = eventually("the export job done", WAIT, || async {
        let (_, view) = admin(
            &app,
            reqwest::Method::GET,
            &format!("/admin/exports/{id}"),
            None,
        )
        .await;
        (view["state"] == "done").then_some(view)
    })
    .await;
    assert_eq!(done["files_done"], done["files_total"], "{done}");
    assert_eq!(
        done["files_total"], 10,
        "eight files, index.json and SHA256SUMS: {done}"
    );
    assert_eq!(done["bytes_done"], done["bytes_total"], "{done}");
    assert_eq!(done["requested_by"], "admin");
    assert!(done["expires_at"].is_string(), "{done}");

    let response = app
        .client
        .get(format!("{}/admin/exports/{id}/download", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-tar");
    let downloaded = response.bytes().await.unwrap();
    let saved = dir.path().join("downloaded.tar");
    std::fs::write(&saved, &downloaded).unwrap();
    let index = check_export(&saved, &archive, &subject).await;
    assert_eq!(index["export_id"], id.as_str());
    // The audit trail names the token that asked, and what it was handed.
    let exported = exported_records(&app).await;
    assert_eq!(exported.len(), 1, "{exported:?}");
    assert_eq!(exported[0]["actor"], "admin", "{:?}", exported[0]);
    assert_eq!(exported[0]["detail"]["export_id"], id.as_str());
    assert_eq!(exported[0]["detail"]["requested_by"], "admin");
    assert_eq!(exported[0]["detail"]["via"], "admin API");
    assert_eq!(exported[0]["detail"]["asked_for"]["participant"], SUBJECT);
    let mut recordings: Vec<i64> = exported[0]["detail"]["recordings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_i64().unwrap())
        .collect();
    recordings.sort();
    let mut expected = subject.clone();
    expected.sort();
    assert_eq!(recordings, expected);

    // A tampered object fails the job, and its error names the object.
    let second = recordings::get(app.queue(), subject[1])
        .await
        .unwrap()
        .unwrap();
    let manifest: Value = serde_json::from_slice(
        &archive
            .read(&object_key(second.manifest_key.as_deref().unwrap()))
            .await
            .unwrap(),
    )
    .unwrap();
    let metadata_key = manifest["chunks"][0]["metadata"]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    archive
        .store()
        .put(&object_key(&metadata_key), Bytes::from_static(b"{}").into())
        .await
        .unwrap();
    let (status, queued) = admin(
        &app,
        reqwest::Method::POST,
        "/admin/exports",
        Some(json!({"recordings": [subject[1]]})),
    )
    .await;
    assert_eq!(status, 202, "{queued}");
    let id = queued["id"].as_str().unwrap().to_owned();
    let failed = eventually("the export job failed", WAIT, || async {
        let (_, view) = admin(
            &app,
            reqwest::Method::GET,
            &format!("/admin/exports/{id}"),
            None,
        )
        .await;
        (view["state"] == "failed").then_some(view)
    })
    .await;
    assert!(
        failed["error"].as_str().unwrap().contains(&metadata_key),
        "{failed}"
    );
    let (status, body) = admin(
        &app,
        reqwest::Method::GET,
        &format!("/admin/exports/{id}/download"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("export_failed")),
        "{body}"
    );
    assert_eq!(
        exported_records(&app).await.len(),
        1,
        "a failed export hands nothing over"
    );

    // Files are deleted once kept long enough.
    let jobs = callvault::admin::exports::ExportJobs {
        db: app.queue().clone(),
        archive: archive.clone(),
        dir: dir.path().join("exports"),
        keep_hours: 24,
        wake: Default::default(),
    };
    let later = callvault::queue::now_millis() + 25 * 3_600_000;
    assert_eq!(jobs.remove_expired(later).await.unwrap(), 2);
    let (_, view) = admin(
        &app,
        reqwest::Method::GET,
        &format!("/admin/exports/{}", index["export_id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(view["state"], "removed", "{view}");
    let (status, body) = admin(
        &app,
        reqwest::Method::GET,
        &format!(
            "/admin/exports/{}/download",
            index["export_id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (410, Some("export_removed")),
        "{body}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("exports"))
            .unwrap()
            .count(),
        0
    );
    app.close().await;
}

#[tokio::test]
async fn an_api_export_job_on_sqlite_and_a_local_archive_is_served() {
    the_api_export_job_runs_and_serves_the_tar(TestDatabase::sqlite().await, Vec::new()).await;
}

#[tokio::test]
async fn an_api_export_job_on_postgres_from_s3_is_served() {
    if let (Some(storage), Some(db)) = (s3_storage().await, TestDatabase::postgres().await) {
        the_api_export_job_runs_and_serves_the_tar(db, storage).await;
    }
}

#[tokio::test]
async fn an_api_export_job_from_azure_is_served() {
    if let Some(storage) = azure_storage().await {
        the_api_export_job_runs_and_serves_the_tar(TestDatabase::sqlite().await, storage).await;
    }
}

/// An export queued just before a restart is found in the exports table afterwards and
/// finished (or, finished already, still served): its state does not live in the process.
#[tokio::test]
async fn an_api_export_queued_before_a_restart_is_done_after_it() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = vec![
        ("admin.token", ADMIN_TOKEN.to_owned()),
        (
            "admin.export_dir",
            dir.path().join("exports").display().to_string(),
        ),
    ];
    let (app, subject) = archive_three(&emulator, TestDatabase::sqlite().await, &extra).await;
    let (status, queued) = admin(
        &app,
        reqwest::Method::POST,
        "/admin/exports",
        Some(json!({"recordings": subject})),
    )
    .await;
    assert_eq!(status, 202, "{queued}");
    let id = queued["id"].as_str().unwrap().to_owned();
    let app = app.restart(Role::All, &extra).await;
    let done = eventually("the export done after the restart", WAIT, || async {
        let (_, view) = admin(
            &app,
            reqwest::Method::GET,
            &format!("/admin/exports/{id}"),
            None,
        )
        .await;
        (view["state"] == "done").then_some(view)
    })
    .await;
    assert_eq!(done["asked_for"], json!({"recordings": subject}), "{done}");
    let response = app
        .client
        .get(format!("{}/admin/exports/{id}/download", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let saved = dir.path().join("after-restart.tar");
    std::fs::write(&saved, response.bytes().await.unwrap()).unwrap();
    check_export(&saved, &app.running().state.archive, &subject).await;
    app.close().await;
}
