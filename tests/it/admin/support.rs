//! The admin suites' side of the shared [`TestApp`]: an ingest-only callvault with an admin
//! token and ACS on a dead endpoint, so each test decides every job's fate itself, plus
//! requests with the token and hand-driven jobs.

use std::time::Duration;

use callvault::app::Role;
use callvault::queue::jobs::{self, ArchivedChunk, Finish};
use callvault::queue::{Db, now_millis};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

pub use crate::support::{SECRET, TestApp, TestDatabase};

pub const TOKEN: &str = "t";
/// An endpoint nothing listens on; download URLs on it pass the guard (it is the ACS host).
pub const DEAD_ACS: &str = "127.0.0.1:9";

/// Where a test's queue lives. PostgreSQL needs `CALLVAULT_TEST_POSTGRES` to name a server
/// (`scripts/test.sh` sets it); each test gets a fresh database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Postgres,
}

/// Runs an `async fn(Store)` test once per store: `on_every_store!(name);` makes
/// `name::sqlite` and `name::postgres` (the latter skipped when no server is configured).
macro_rules! on_every_store {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(super::Store::Sqlite).await;
            }
            #[tokio::test]
            async fn postgres() {
                super::$name(super::Store::Postgres).await;
            }
        }
    };
}
pub(crate) use on_every_store;

/// The settings every admin test adds to its own: the token.
fn admin_settings<'a>(extra: &[(&'a str, String)]) -> Vec<(&'a str, String)> {
    let mut all = vec![("admin.token", TOKEN.to_owned())];
    all.extend(extra.iter().cloned());
    all
}

/// Starts `role` with ACS at `acs_authority` on a fresh database of `store`; `None` when the
/// store's server is not configured (the suite is skipped).
pub async fn start(
    store: Store,
    role: Role,
    acs_authority: &str,
    extra: &[(&str, String)],
) -> Option<TestApp> {
    let db = match store {
        Store::Sqlite => TestDatabase::sqlite().await,
        Store::Postgres => TestDatabase::postgres().await?,
    };
    let connection_string = format!("endpoint=http://{acs_authority}/;accesskey=aGVsbG8=");
    Some(TestApp::launch(&connection_string, db, role, &admin_settings(extra)).await)
}

/// The HTTP side only, so the test decides every job's fate itself.
pub async fn ingest(store: Store) -> Option<TestApp> {
    start(store, Role::Ingest, DEAD_ACS, &[]).await
}

/// Stops `app` and starts it again on the same database and folder, with other settings.
pub async fn restart(app: TestApp, role: Role, extra: &[(&str, String)]) -> TestApp {
    app.restart(role, &admin_settings(extra)).await
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET with the admin token: (status, JSON body).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("request");
        status_and_json(response).await
    }

    /// POST a JSON body with the admin token: (status, JSON body).
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .post(self.url(path))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .expect("request");
        status_and_json(response).await
    }

    /// Delivers Event Grid events through the webhook; asserts 200.
    pub async fn deliver(&self, events: Value) -> Value {
        let response = self
            .client
            .post(self.url(&format!("/api/events?code={SECRET}")))
            .json(&events)
            .send()
            .await
            .expect("webhook request");
        let (status, body) = status_and_json(response).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Polls the admin API until `check` holds for the JSON at `path` (at most 20 s).
    pub async fn await_json(
        &self,
        path: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = self.get(path).await;
            if status == 200 && check(&body) {
                return body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}; last answer {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub async fn status_and_json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// A chunk of a test recording: (index, endReason).
pub type Chunk = (u32, &'static str);

/// One RecordingFileStatusUpdated event (Event Grid schema) for recording `recording`
/// started `started` ago, its chunks served from `acs_authority`.
pub fn recording_event(
    event_id: &str,
    recording: &str,
    started: DateTime<Utc>,
    chunks: &[Chunk],
    acs_authority: &str,
) -> Value {
    let chunks: Vec<Value> = chunks
        .iter()
        .map(|(index, end)| {
            let doc = document_id(recording, *index);
            let base = format!("http://{acs_authority}/v1/objects/{doc}/content");
            json!({
                "documentId": doc, "index": index, "endReason": end,
                "contentLocation": format!("{base}/audio"),
                "metadataLocation": format!("{base}/acsmetadata"),
            })
        })
        .collect();
    json!({
        "id": event_id,
        "topic": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Communication/CommunicationServices/acs",
        "subject": format!("/recording/call/call-{recording}/recordingId/{recording}"),
        "eventType": "Microsoft.Communication.RecordingFileStatusUpdated",
        "eventTime": Utc::now().to_rfc3339(),
        "dataVersion": "1.0",
        "data": {
            "recordingStorageInfo": { "recordingChunks": chunks },
            "recordingStartTime": started.to_rfc3339(),
            "recordingDurationMs": 60000,
            "sessionEndReason": "CallEnded",
            "recordingContentType": "Audio",
            "recordingChannelType": "Mixed",
            "recordingFormatType": "Mp3"
        }
    })
}

pub fn document_id(recording: &str, index: u32) -> String {
    format!("doc-{recording}-{index}")
}

pub fn hours_ago(hours: i64) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::hours(hours)
}

/// Delivers a one-event batch for `recording` with `chunks`, started `hours` ago.
pub async fn announce(app: &TestApp, recording: &str, hours: i64, chunks: &[Chunk]) {
    let event = recording_event(
        &format!("evt-{recording}-{}", uuid::Uuid::new_v4()),
        recording,
        hours_ago(hours),
        chunks,
        DEAD_ACS,
    );
    let summary = app.deliver(json!([event])).await;
    assert_eq!(summary["accepted"], 1, "{summary}");
}

/// The job id of a chunk.
pub async fn job_id(db: &Db, recording: &str, index: u32) -> i64 {
    sqlx::query_scalar("SELECT id FROM jobs WHERE document_id = $1")
        .bind(document_id(recording, index))
        .fetch_one(db.pool())
        .await
        .expect("job exists")
}

/// What archiving a chunk left, for tests that finish jobs by hand.
pub fn archived_chunk(recording: &str, index: u32) -> ArchivedChunk {
    ArchivedChunk {
        media_key: format!("call-{recording}/{recording}/chunk-{index:04}.mp3"),
        media_bytes: 1000,
        media_sha256: "ab".repeat(32),
        metadata_key: format!("call-{recording}/{recording}/chunk-{index:04}.metadata.json"),
        metadata_bytes: 24,
        metadata_sha256: "cd".repeat(32),
        participants: "[]".into(),
        timing: Default::default(),
    }
}

/// Claims the next due job as a test worker, checks it is `expected`, and ends the attempt.
pub async fn drive(db: &Db, expected: i64, outcome: Finish) {
    let now = now_millis();
    let job = jobs::claim(db, "test-worker", now + 60_000, now)
        .await
        .expect("claim")
        .expect("a due job");
    assert_eq!(job.id, expected, "the test expected another job to be due");
    assert!(
        jobs::finish(db, &job, "test-worker", &outcome, now_millis())
            .await
            .expect("finish")
    );
}

pub fn failed(error: &str) -> Finish {
    Finish::Failed {
        error: error.into(),
    }
}
