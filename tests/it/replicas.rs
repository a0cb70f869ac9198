//! Several `callvault serve` processes on one PostgreSQL and one local archive: a replica
//! starting (or restarting) leaves its peers' uploads alone, and worker processes share a
//! backlog without claiming a job twice.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use callvault::queue::{Db, Job, JobState, jobs};
use callvault_emulator::events::recording_file_status_updated;
use callvault_emulator::{Emulator, EmulatorConfig, Fault};
use serde_json::json;

use crate::pipeline::{add_chunk, assert_chunk_archived, start_time};
use crate::support::{SECRET, TestDatabase, eventually, files_under, free_port, start_emulator};

const WAIT: Duration = Duration::from_secs(60);
/// Short, so the age rule's margin (two leases) is short too; a live writer still touches its
/// staging file far more often than that.
const LEASE_SECS: u64 = 2;

/// One `callvault serve` process; killed when dropped, so a failing test leaves none behind.
struct Replica {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The database, archive and emulator that every replica of a test shares.
struct Cluster {
    dir: tempfile::TempDir,
    db_url: String,
    emulator: Emulator,
    db: Db,
    started: usize,
}

impl Cluster {
    /// `None` when no PostgreSQL is configured (the suite is skipped).
    async fn new() -> Option<Self> {
        let db_url = TestDatabase::postgres().await?.url;
        let emulator = start_emulator(EmulatorConfig::default()).await;
        let db = Db::connect(&db_url, 2).await.unwrap();
        db.migrate().await.unwrap();
        Some(Cluster {
            dir: tempfile::tempdir().unwrap(),
            db_url,
            emulator,
            db,
            started: 0,
        })
    }

    fn archive(&self) -> PathBuf {
        self.dir.path().join("archive")
    }

    /// Starts `callvault serve --role ROLE` named `name` (its workers' ids start with it) and
    /// waits until it answers `/healthz`: by then its start-up, clean-up included, is done.
    async fn start(&mut self, name: &str, role: &str) -> Replica {
        self.started += 1;
        let port = free_port();
        let config = self.write_config(&format!("{name}-{}", self.started), port);
        let log = self.dir.path().join(format!("{name}-{}.log", self.started));
        let child = Command::new(env!("CARGO_BIN_EXE_callvault"))
            .args(["serve", "--role", role, "--config"])
            .arg(&config)
            .env("HOSTNAME", name)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let replica = Replica {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let client = reqwest::Client::new();
        eventually(&format!("{name} to answer /healthz"), WAIT, || async {
            client
                .get(format!("{}/healthz", replica.base))
                .send()
                .await
                .ok()
                .filter(|r| r.status() == 200)
                .map(|_| ())
        })
        .await;
        replica
    }

    fn write_config(&self, name: &str, port: u16) -> PathBuf {
        let config = format!(
            r#"
[server]
bind = "127.0.0.1:{port}"
[database]
url = "{db}"
max_connections = 4
[acs]
connection_string = "{conn}"
allow_http = true
request_timeout_secs = 10
[ingest]
secret = "{SECRET}"
[storage]
path = "{archive}"
[worker]
lease_secs = {LEASE_SECS}
poll_interval_ms = 50
backoff_initial_ms = 50
backoff_max_ms = 200
[log]
format = "json"
level = "callvault=debug"
"#,
            db = self.db_url,
            conn = self.emulator.connection_string(),
            archive = self.archive().display(),
        );
        let path = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, config).unwrap();
        path
    }

    async fn jobs(&self) -> Vec<Job> {
        jobs::list(&self.db, None, 1000).await.unwrap()
    }

    /// Every attempt, in order.
    async fn attempts(&self) -> Vec<Attempt> {
        sqlx::query_as("SELECT job_id, attempt, worker, outcome FROM attempts ORDER BY id")
            .fetch_all(self.db.pool())
            .await
            .unwrap()
    }

    async fn wait_until_archived(&self, count: usize) -> Vec<Job> {
        eventually(&format!("{count} jobs archived"), WAIT, || async {
            let jobs = self.jobs().await;
            (jobs.len() == count && jobs.iter().all(|j| j.state() == JobState::Archived))
                .then_some(jobs)
        })
        .await
    }
}

/// `(job id, attempt, worker, outcome)` of one attempt.
type Attempt = (i64, i64, String, Option<String>);

async fn post_events(replica: &Replica, events: serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/events?code={SECRET}", replica.base))
        .json(&events)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn exited(replica: &mut Replica) -> std::process::ExitStatus {
    eventually("the process to exit", WAIT, || {
        let status = replica.child.try_wait().unwrap();
        async move { status }
    })
    .await
}

fn staging_files(archive: &Path) -> Vec<String> {
    files_under(archive)
        .into_iter()
        .filter(|name| name.rsplit_once('#').is_some())
        .collect()
}

/// A staging file as a process killed mid-write long ago leaves it.
fn plant_abandoned_staging_file(archive: &Path, call: &str) -> PathBuf {
    let folder = archive.join(call).join("20260101T000000Z");
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join("chunk-0000.mp4#1");
    let file = std::fs::File::create(&path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    path
}

const STREAM_BYTES: u64 = 18_000_000;

/// Announces one large chunk, throttled, and waits until a worker is writing its staging file.
async fn start_a_slow_stream(cluster: &Cluster, ingest: &Replica) -> String {
    let chunk = add_chunk(
        &cluster.emulator,
        "call-stream",
        "doc-stream",
        0,
        "SessionEnded",
        STREAM_BYTES,
    );
    cluster.emulator.set_fault(
        "doc-stream",
        Fault::Throttle {
            bytes_per_second: 1_500_000,
        },
    );
    let event = recording_file_status_updated(
        "evt-stream",
        "/recording/call/call-stream",
        start_time(),
        &[chunk],
        "Mp4",
    );
    post_events(ingest, json!([event])).await;
    let archive = cluster.archive();
    eventually("the stream's staging file", WAIT, || async {
        staging_files(&archive)
            .into_iter()
            .find(|name| name.contains("call-stream"))
    })
    .await
}

/// The stream finished on its first attempt, with every byte, and left nothing staged.
async fn assert_streamed_on_first_attempt(cluster: &Cluster, folder: &str) {
    let jobs = cluster.wait_until_archived(1).await;
    let attempts = cluster.attempts().await;
    assert_eq!(
        (jobs[0].attempts, attempts.len()),
        (1, 1),
        "one attempt, no retry: {attempts:?}"
    );
    assert_eq!(attempts[0].3.as_deref(), Some("archived"), "not lease-lost");
    assert_eq!(jobs[0].media_bytes, Some(STREAM_BYTES as i64));
    assert_chunk_archived(
        &cluster.emulator,
        &cluster.archive(),
        folder,
        0,
        "doc-stream",
        "mp4",
    );
    let media_gets = cluster
        .emulator
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/objects/doc-stream/content/video")
        .count();
    assert_eq!(media_gets, 1, "the chunk is downloaded once");
}

fn stream_folder() -> String {
    format!("call-stream/{}", start_time().format("%Y%m%dT%H%M%SZ"))
}

#[tokio::test]
async fn a_worker_restarting_mid_stream_leaves_its_peers_upload_alone() {
    let Some(mut cluster) = Cluster::new().await else {
        return;
    };
    let archive = cluster.archive();
    let abandoned = plant_abandoned_staging_file(&archive, "call-crashed");
    let ingest = cluster.start("ingest", "ingest").await;
    let _streaming = cluster.start("streaming", "worker").await;
    let folder = stream_folder();
    let staged = start_a_slow_stream(&cluster, &ingest).await;

    // A peer dies (kill -9) and comes back, and another stops gracefully and comes back,
    // all while the stream is being written.
    let mut peer = cluster.start("peer", "worker").await;
    peer.child.kill().unwrap();
    peer.child.wait().unwrap();
    let _peer = cluster.start("peer", "worker").await;
    let mut other = cluster.start("other", "worker").await;
    let status = Command::new("kill")
        .args(["-TERM", &other.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = exited(&mut other).await;
    assert!(exit.success(), "a graceful stop exits 0: {exit:?}");
    let _other = cluster.start("other", "worker").await;

    assert!(
        staging_files(&archive).contains(&staged),
        "the live upload's staging file {staged} is still there"
    );
    eventually(
        "a starting worker to remove a staging file no live lease can own",
        WAIT,
        || async { (!abandoned.exists()).then_some(()) },
    )
    .await;
    assert_streamed_on_first_attempt(&cluster, &folder).await;
    assert_eq!(staging_files(&archive), Vec::<String>::new());
}

#[tokio::test]
async fn an_ingest_process_starting_mid_stream_removes_no_staging_file() {
    let Some(mut cluster) = Cluster::new().await else {
        return;
    };
    let archive = cluster.archive();
    let abandoned = plant_abandoned_staging_file(&archive, "call-crashed");
    // The worker that streams starts first and clears the archive of abandoned files; the
    // planted one is made again after it, as a crash of some other writer would leave it.
    let first = cluster.start("all", "all").await;
    eventually("the worker's start-up clean-up to finish", WAIT, || async {
        let log = std::fs::read_to_string(&first.log).unwrap_or_default();
        log.contains("removed staging files left by an interrupted write")
            .then_some(())
    })
    .await;
    assert!(!abandoned.exists());
    let abandoned = plant_abandoned_staging_file(&archive, "call-crashed-later");
    let folder = stream_folder();
    let staged = start_a_slow_stream(&cluster, &first).await;

    let _ingest = cluster.start("ingest", "ingest").await;
    let _again = cluster.start("ingest", "ingest").await;
    assert!(
        staging_files(&archive).contains(&staged),
        "the live upload's staging file {staged} is still there"
    );
    assert!(
        abandoned.exists(),
        "a process that does not write the archive cleans nothing in it"
    );
    assert_streamed_on_first_attempt(&cluster, &folder).await;
}

/// Three worker processes and one ingest process on one PostgreSQL share a backlog: every job
/// is claimed by one attempt and archived once, byte-identical.
#[tokio::test]
async fn three_worker_processes_archive_every_job_exactly_once_on_postgresql() {
    const RECORDINGS: usize = 12;
    const CHUNKS: u32 = 2;
    let Some(mut cluster) = Cluster::new().await else {
        return;
    };
    let ingest = cluster.start("ingest", "ingest").await;
    let _workers = [
        cluster.start("wa", "worker").await,
        cluster.start("wb", "worker").await,
        cluster.start("wc", "worker").await,
    ];
    let start = start_time();
    let mut events = Vec::new();
    for n in 0..RECORDINGS {
        let call = format!("call-many-{n}");
        let chunks: Vec<_> = (0..CHUNKS)
            .map(|index| {
                let doc = format!("doc-many-{n}-{index}");
                let end = if index + 1 == CHUNKS {
                    "SessionEnded"
                } else {
                    "ChunkMaximumSizeExceeded"
                };
                let chunk = add_chunk(&cluster.emulator, &call, &doc, index, end, 300_000);
                // Each transfer takes a while, so the backlog is shared rather than drained
                // by whichever process polls first.
                cluster.emulator.set_fault(
                    &doc,
                    Fault::Throttle {
                        bytes_per_second: 1_000_000,
                    },
                );
                chunk
            })
            .collect();
        events.push(recording_file_status_updated(
            &format!("evt-many-{n}"),
            &format!("/recording/call/{call}"),
            start,
            &chunks,
            "Mp4",
        ));
    }
    post_events(&ingest, json!(events)).await;

    let jobs = cluster
        .wait_until_archived(RECORDINGS * CHUNKS as usize)
        .await;
    let attempts = cluster.attempts().await;
    let mut per_job: HashMap<i64, Vec<&Attempt>> = HashMap::new();
    for attempt in &attempts {
        per_job.entry(attempt.0).or_default().push(attempt);
    }
    for job in &jobs {
        let history = &per_job[&job.id];
        assert_eq!(
            (job.attempts, history.len()),
            (1, 1),
            "job {} was claimed once: {history:?}",
            job.id
        );
        assert_eq!(history[0].3.as_deref(), Some("archived"));
    }
    // A worker's id starts with its process's HOSTNAME.
    let processes: HashSet<&str> = attempts
        .iter()
        .map(|(_, _, worker, _)| worker.split('-').next().unwrap())
        .collect();
    assert!(
        processes.len() >= 2 && processes.is_subset(&HashSet::from(["wa", "wb", "wc"])),
        "the worker processes shared the backlog: {processes:?}"
    );

    let archive = cluster.archive();
    let requests = cluster.emulator.requests();
    for n in 0..RECORDINGS {
        let folder = format!("call-many-{n}/{}", start.format("%Y%m%dT%H%M%SZ"));
        for index in 0..CHUNKS {
            let doc = format!("doc-many-{n}-{index}");
            assert_chunk_archived(&cluster.emulator, &archive, &folder, index, &doc, "mp4");
            let path = format!("/v1/objects/{doc}/content/video");
            assert_eq!(
                requests.iter().filter(|r| r.path == path).count(),
                1,
                "{doc} downloaded once"
            );
        }
    }
    let files = files_under(&archive);
    let media = files.iter().filter(|f| f.ends_with(".mp4")).count();
    assert_eq!(media, RECORDINGS * CHUNKS as usize, "every object once");
    assert_eq!(staging_files(&archive), Vec::<String>::new());
}
