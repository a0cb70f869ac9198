//! Shared helpers: an emulator and a callvault on loopback, a fresh database and archive per
//! test, a worker that drains the queue step by step, and polling for conditions that another
//! process or a timer brings about.

pub mod database;
pub mod services;

use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use callvault::acs::AcsClient;
use callvault::app::{Role, RunningApp};
use callvault::config::Settings;
use callvault::queue::{Job, JobState, jobs, now_millis};
use callvault::worker::{StepOutcome, Worker, WorkerContext, WorkerOptions};
use callvault_emulator::{Emulator, EmulatorConfig};
use serde_json::Value;

pub use database::TestDatabase;
pub use services::{AZURITE_KEY, Suite, free_port, service, unique_name};

pub const SECRET: &str = "test-secret";

/// Runs `command` to its end off the runtime's thread, with no stdin, and answers its
/// output: a blocking wait on the runtime would stall the test's other tasks, the app under
/// test among them, which may hold the very lock the command waits for.
pub async fn command_output(mut command: std::process::Command) -> std::process::Output {
    command.stdin(std::process::Stdio::null());
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// Waits until `check` yields a value, polling every 25 ms; panics naming `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub async fn start_emulator(config: EmulatorConfig) -> Emulator {
    Emulator::start(TcpListener::bind("127.0.0.1:0").unwrap(), config)
        .await
        .unwrap()
}

/// Settings for a test: fast polling and backoff, a short lease, the emulator as ACS.
pub fn test_settings(
    connection_string: &str,
    db: &TestDatabase,
    archive: &Path,
    extra: &[(&str, String)],
) -> Settings {
    let mut overrides: Vec<(&str, String)> = vec![
        ("server.bind", "127.0.0.1:0".into()),
        ("database.url", db.url.clone()),
        ("acs.connection_string", connection_string.into()),
        ("acs.allow_http", "true".into()),
        ("acs.request_timeout_secs", "5".into()),
        ("ingest.secret", SECRET.into()),
        ("storage.path", archive.display().to_string()),
        ("worker.poll_interval_ms", "50".into()),
        ("worker.backoff_initial_ms", "50".into()),
        ("worker.backoff_max_ms", "400".into()),
        ("worker.lease_secs", "3".into()),
        ("log.level", "callvault=debug,warn".into()),
    ];
    overrides.extend(extra.iter().cloned());
    Settings::defaults_with(&overrides).unwrap()
}

/// A running callvault with its own database and archive folder.
pub struct TestApp {
    pub app: Option<RunningApp>,
    pub db: TestDatabase,
    pub archive: PathBuf,
    pub client: reqwest::Client,
    pub base: String,
    /// The ACS connection string and settings it started with, to build a worker like its own.
    connection_string: String,
    settings: Settings,
    dir: tempfile::TempDir,
}

impl TestApp {
    /// Starts callvault (role all) against `emulator` on a fresh SQLite file.
    pub async fn spawn(emulator: &Emulator, extra: &[(&str, String)]) -> TestApp {
        Self::spawn_on(emulator, TestDatabase::sqlite().await, extra).await
    }

    pub async fn spawn_on(
        emulator: &Emulator,
        db: TestDatabase,
        extra: &[(&str, String)],
    ) -> TestApp {
        Self::launch(&emulator.connection_string(), db, Role::All, extra).await
    }

    /// Starts only the HTTP side against `emulator`, so the test runs the jobs itself with
    /// [`TestApp::drain`] or [`TestApp::worker`].
    pub async fn spawn_ingest(emulator: &Emulator, extra: &[(&str, String)]) -> TestApp {
        let db = TestDatabase::sqlite().await;
        Self::launch(&emulator.connection_string(), db, Role::Ingest, extra).await
    }

    /// Starts `role` with ACS at `connection_string` on `db` and a fresh archive folder.
    pub async fn launch(
        connection_string: &str,
        db: TestDatabase,
        role: Role,
        extra: &[(&str, String)],
    ) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, connection_string, db, role, extra).await
    }

    async fn start_in(
        dir: tempfile::TempDir,
        connection_string: &str,
        db: TestDatabase,
        role: Role,
        extra: &[(&str, String)],
    ) -> TestApp {
        init_logs();
        let archive = dir.path().join("archive");
        let settings = test_settings(connection_string, &db, &archive, extra);
        let app = callvault::app::start(
            settings.clone(),
            role,
            Some(TcpListener::bind("127.0.0.1:0").unwrap()),
        )
        .await
        .unwrap();
        let base = app.base_url();
        TestApp {
            app: Some(app),
            db,
            archive,
            client: reqwest::Client::new(),
            base,
            connection_string: connection_string.to_owned(),
            settings,
            dir,
        }
    }

    /// Stops and starts again on the same database and folder, as `role` with other settings.
    pub async fn restart(mut self, role: Role, extra: &[(&str, String)]) -> TestApp {
        self.stop().await;
        let TestApp {
            db,
            connection_string,
            dir,
            ..
        } = self;
        Self::start_in(dir, &connection_string, db, role, extra).await
    }

    /// The test's folder (the archive is under `archive/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The app's queue.
    pub fn queue(&self) -> &callvault::queue::Db {
        &self.running().state.db
    }

    /// A worker on the app's queue, archive and metrics, tuned by the app's settings; the
    /// test runs it with [`Worker::step`].
    pub fn worker(&self) -> Worker {
        let state = &self.running().state;
        let guard = self.settings.url_guard().unwrap();
        let acs = AcsClient::new(
            self.settings.acs_credentials().unwrap(),
            guard.clone(),
            Duration::from_secs(self.settings.acs.request_timeout_secs),
        )
        .unwrap();
        let ctx = WorkerContext {
            db: state.db.clone(),
            archive: state.archive.clone(),
            acs,
            guard,
            metrics: state.metrics.clone(),
        };
        let options = WorkerOptions {
            duration_tolerance_ms: self.settings.verify.duration_tolerance_ms,
            ..WorkerOptions::from_settings(&self.settings.worker)
        };
        Worker::new(ctx, options, Arc::new(tokio::sync::Notify::new()))
    }

    /// Runs every job to its end, one step at a time, until none is left to run: a job
    /// retried later is waited for until it is due. Returns what each step did, `Idle` left out.
    pub async fn drain(&self) -> Vec<StepOutcome> {
        let worker = self.worker();
        let mut outcomes = Vec::new();
        loop {
            match worker.step().await.unwrap() {
                StepOutcome::Idle => match self.next_due().await {
                    // The backoff is a timer: wait until the retry is due, then step again.
                    Some(at) => {
                        let wait = u64::try_from(at - now_millis()).unwrap_or(0);
                        tokio::time::sleep(Duration::from_millis(wait)).await;
                    }
                    None => return outcomes,
                },
                outcome => outcomes.push(outcome),
            }
        }
    }

    /// Drains the queue, then checks that there are `count` jobs, every one in `state`.
    pub async fn drain_expecting(&self, count: usize, state: JobState) -> Vec<Job> {
        let outcomes = self.drain().await;
        let jobs = self.jobs().await;
        assert!(
            jobs.len() == count && jobs.iter().all(|job| job.state() == state),
            "after {outcomes:?}, expected {count} jobs {state}: {jobs:?}"
        );
        jobs
    }

    /// When the earliest job still to run is due (`None` when every job has ended).
    async fn next_due(&self) -> Option<i64> {
        self.jobs()
            .await
            .into_iter()
            .filter_map(|job| match job.state() {
                JobState::Pending => Some(job.next_attempt_at),
                JobState::Running => job.lease_until,
                _ => None,
            })
            .min()
    }

    pub fn running(&self) -> &RunningApp {
        self.app.as_ref().expect("the app is running")
    }

    pub fn events_url(&self) -> url::Url {
        url::Url::parse(&format!("{}/api/events?code={SECRET}", self.base)).unwrap()
    }

    /// POSTs a JSON body to the webhook as Event Grid would.
    pub async fn post_events(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(self.events_url())
            .header("aeg-event-type", "Notification")
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn jobs(&self) -> Vec<Job> {
        jobs::list(&self.running().state.db, None, 1000)
            .await
            .unwrap()
    }

    /// Waits until every job exists in `count` and is in `state`.
    pub async fn wait_for_jobs(
        &self,
        count: usize,
        state: JobState,
        timeout: Duration,
    ) -> Vec<Job> {
        eventually(&format!("{count} jobs {state}"), timeout, || async {
            let jobs = self.jobs().await;
            (jobs.len() == count && jobs.iter().all(|job| job.state() == state)).then_some(jobs)
        })
        .await
    }

    /// Runs `callvault ARGS` against this app's database and archive folder, with `storage`
    /// settings as `CALLVAULT__…` variables and no stdin: (exit code, stdout and stderr). Off
    /// the runtime's thread: this app runs on it, and a frozen app would hold SQLite's write
    /// lock while the command waits for it.
    pub async fn run_callvault(&self, storage: &[(&str, String)], args: &[&str]) -> (i32, String) {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_callvault"));
        command
            .args(args)
            .env("CALLVAULT__DATABASE__URL", &self.db.url)
            .env("CALLVAULT__STORAGE__PATH", &self.archive);
        for (key, value) in storage {
            let name = format!("CALLVAULT__{}", key.to_ascii_uppercase().replace('.', "__"));
            command.env(name, value);
        }
        let output = command_output(command).await;
        (
            output.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    }

    /// Waits until a manifest exists under the archive and returns it.
    pub async fn wait_for_manifest(&self, folder: &Path, timeout: Duration) -> Value {
        let path = self.archive.join(folder).join("manifest.json");
        eventually(&format!("{}", path.display()), timeout, || async {
            std::fs::read(&path)
                .ok()
                .map(|bytes| serde_json::from_slice(&bytes).unwrap())
        })
        .await
    }

    pub async fn stop(&mut self) {
        if let Some(app) = self.app.take() {
            app.stop().await;
        }
    }

    /// Stops the app and drops the PostgreSQL database it ran on, if the test created one.
    pub async fn close(mut self) {
        self.stop().await;
        self.db.remove().await;
    }
}

/// Every file under `root`, relative, sorted.
pub fn files_under(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else {
                found.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("callvault=debug,warn")
        .with_test_writer()
        .try_init();
}
