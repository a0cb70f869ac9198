//! `callvault demo`: the whole system on one machine with nothing to install. The built-in ACS
//! emulator records calls driven through the recording control API (with a pause and a resume
//! in each); Event Grid-style deliveries reach the archiver, which stores every chunk under a
//! local folder; the demo then re-reads every archived object against its manifest. With
//! `auto_start`, one more call is recorded on policy: the emulator announces its established
//! leg and callvault starts the recording itself.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use callvault::acs::AcsCredentials;
use callvault::acs::control::{CallLocator, RecordingControl, StartOptions};
use callvault::app::{self, Role, RunningApp};
use callvault::config::Settings;
use callvault::queue::{Db, JobState, recordings};
use callvault::storage::{Archive, Manifest};
use callvault_emulator::{Emulator, EmulatorConfig, RecordingConfig};

/// What the demo records and where it keeps it.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Calls to record.
    pub calls: usize,
    /// Folder for the database and the archive.
    pub dir: PathBuf,
    /// Give up when the archive is not complete by then.
    pub timeout: Duration,
    /// Wall-clock seconds each call records (the first records three times as long).
    pub call_seconds: f64,
    /// Also record one call on policy (recording.auto_start).
    pub auto_start: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            calls: 3,
            dir: PathBuf::from("callvault-demo"),
            timeout: Duration::from_secs(120),
            call_seconds: 1.5,
            auto_start: false,
        }
    }
}

/// One line of the summary.
#[derive(Debug, Clone)]
pub struct DemoRow {
    pub server_call_id: String,
    pub format: String,
    pub folder: String,
    pub chunks: usize,
    pub bytes: u64,
    /// Every archived object re-read and matched its manifest's size and sha256.
    pub verified: bool,
    /// From the first announcing event to the last chunk archived.
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot prepare {dir}: {source}")]
    Dir { dir: String, source: std::io::Error },
    #[error("cannot start the ACS emulator: {0}")]
    Emulator(std::io::Error),
    #[error("cannot start the archiver: {0}")]
    Start(#[from] app::StartError),
    #[error("the recording control API failed for {call}: {source}")]
    Control {
        call: String,
        source: callvault::acs::control::ControlError,
    },
    #[error("the archive was not complete after {seconds} s: {detail}")]
    Timeout { seconds: u64, detail: String },
    #[error("database: {0}")]
    Queue(#[from] callvault::queue::QueueError),
    #[error("storage: {0}")]
    Storage(#[from] callvault::storage::StorageError),
    #[error("{0} recording(s) failed verification")]
    Unverified(usize),
    #[error("callvault did not start the policy call's recording within {seconds} s: {detail}")]
    NotStarted { seconds: u64, detail: String },
}

/// The row name of the call recorded on policy.
const POLICY_CALL: &str = "policy-call";

/// One media minute per wall-clock second, so a few seconds of demo are minutes of call.
const TIME_SCALE: f64 = 60.0;
/// A chunk holds at most this much media, so the longest call spans several chunks.
const CHUNK_MEDIA: Duration = Duration::from_secs(60);

/// The formats the calls cycle through: (content, channel, format).
const FORMATS: [(&str, &str, &str); 3] = [
    ("audio", "mixed", "wav"),
    ("audioVideo", "mixed", "mp4"),
    ("audio", "unmixed", "wav"),
];

/// Runs the demo and returns the summary; prints progress to stderr as it goes.
pub async fn run(options: &DemoOptions) -> Result<Vec<DemoRow>, DemoError> {
    let dir = prepare_dir(&options.dir)?;
    let emulator_config = EmulatorConfig {
        recording: RecordingConfig {
            chunk_max_duration: CHUNK_MEDIA,
            chunk_max_bytes: None,
            file_ready_delay: Duration::from_millis(300),
            time_scale: TIME_SCALE,
        },
        ..EmulatorConfig::default()
    };
    let loopback = || TcpListener::bind("127.0.0.1:0").map_err(DemoError::Emulator);
    let emulator = Emulator::start(loopback()?, emulator_config)
        .await
        .map_err(DemoError::Emulator)?;
    let secret = uuid::Uuid::new_v4().simple().to_string();
    // Bound first: the recording callback of the policy call names the archiver's address.
    let listener = loopback()?;
    let address = listener.local_addr().map_err(DemoError::Emulator)?;
    let callback = format!("http://{address}/api/recording-state?code={secret}");
    let settings = demo_settings(
        &dir,
        &emulator.connection_string(),
        &secret,
        options.auto_start.then_some(callback.as_str()),
    );
    let archiver = app::start(settings, Role::All, Some(listener)).await?;
    let events = url::Url::parse(&format!("{}/api/events?code={secret}", archiver.base_url()))
        .expect("a valid URL");
    emulator.set_subscribers(vec![events]);
    progress(&format!(
        "ACS emulator at {}, archiver at {}",
        emulator.endpoint(),
        archiver.base_url()
    ));

    let outcome = record_and_archive(options, &emulator, &archiver, &secret).await;
    archiver.stop().await;
    emulator.stop().await;
    let rows = outcome?;
    let unverified = rows.iter().filter(|row| !row.verified).count();
    if unverified > 0 {
        return Err(DemoError::Unverified(unverified));
    }
    Ok(rows)
}

fn prepare_dir(dir: &Path) -> Result<PathBuf, DemoError> {
    let io = |source| DemoError::Dir {
        dir: dir.display().to_string(),
        source,
    };
    // A fresh run each time: the demo's own database and archive only.
    for stale in ["callvault.db", "callvault.db-wal", "callvault.db-shm"] {
        let _ = std::fs::remove_file(dir.join(stale));
    }
    let _ = std::fs::remove_dir_all(dir.join("archive"));
    std::fs::create_dir_all(dir).map_err(io)?;
    dir.canonicalize().map_err(io)
}

fn demo_settings(
    dir: &Path,
    connection_string: &str,
    secret: &str,
    auto_start_callback: Option<&str>,
) -> Settings {
    let mut overrides = vec![
        ("server.bind", "127.0.0.1:0".to_owned()),
        (
            "database.url",
            format!("sqlite://{}/callvault.db", dir.display()),
        ),
        ("acs.connection_string", connection_string.to_owned()),
        ("acs.allow_http", "true".to_owned()),
        ("ingest.secret", secret.to_owned()),
        ("storage.path", dir.join("archive").display().to_string()),
        ("worker.poll_interval_ms", "100".to_owned()),
        ("worker.backoff_initial_ms", "200".to_owned()),
        ("worker.backoff_max_ms", "2000".to_owned()),
        ("log.level", "warn".to_owned()),
    ];
    if let Some(callback) = auto_start_callback {
        overrides.push(("recording.auto_start", "true".to_owned()));
        overrides.push(("recording.callback_uri", callback.to_owned()));
    }
    Settings::defaults_with(&overrides).expect("the demo's settings are valid")
}

async fn record_and_archive(
    options: &DemoOptions,
    emulator: &Emulator,
    archiver: &RunningApp,
    secret: &str,
) -> Result<Vec<DemoRow>, DemoError> {
    let credentials = AcsCredentials::parse(&emulator.connection_string())
        .expect("the emulator's connection string parses");
    let control = RecordingControl::new(credentials).map_err(|source| DemoError::Control {
        call: "-".into(),
        source,
    })?;
    let callback = format!("{}/api/recording-state?code={secret}", archiver.base_url());
    let calls = (0..options.calls).map(|n| {
        let server_call_id = format!("demo-call-{}", n + 1);
        let participants: Vec<String> = (1..=2)
            .map(|p| format!("8:acs:demo-{}_participant-{p}", n + 1))
            .collect();
        emulator.register_call(&server_call_id, participants);
        let seconds = if n == 0 {
            options.call_seconds * 3.0
        } else {
            options.call_seconds
        };
        record_call(
            &control,
            server_call_id,
            FORMATS[n % FORMATS.len()],
            seconds,
            callback.clone(),
        )
    });
    let started = Instant::now();
    let db = &archiver.state.db;
    let policy = async {
        match options.auto_start {
            true => record_on_policy(emulator, db, &control, options)
                .await
                .map(Some),
            false => Ok(None),
        }
    };
    let (recorded, policy) = tokio::join!(futures_util::future::join_all(calls), policy);
    for result in recorded {
        result?;
    }
    let policy_call = policy?;
    let expected = options.calls + usize::from(policy_call.is_some());
    progress(&format!(
        "{expected} calls recorded in {:.1} s; waiting for the archive",
        started.elapsed().as_secs_f64()
    ));
    wait_until_archived(db, expected, options.timeout).await?;
    let labels: Vec<(String, &str)> = policy_call
        .into_iter()
        .map(|call_id| (call_id, POLICY_CALL))
        .collect();
    summarise(db, &archiver.state.archive, &labels).await
}

/// A server-initiated call recorded on policy: the emulator establishes its leg and announces
/// it (CallLegStateChanged), callvault starts the recording through the preview API, and the
/// call ends. Answers the call's `callId`.
async fn record_on_policy(
    emulator: &Emulator,
    db: &Db,
    control: &RecordingControl,
    options: &DemoOptions,
) -> Result<String, DemoError> {
    let conversation = callvault::acs::control::conversation_id(
        "https://conv-demo-01.conv.skype.com/conv/policy-call?i=1",
    );
    let participants = [
        "8:acs:demo-policy_participant-1",
        "8:acs:demo-policy_participant-2",
    ];
    let call_id = emulator.register_call(&conversation, participants);
    let leg_id = emulator.establish_call_leg(&conversation);
    progress(&format!(
        "{POLICY_CALL}: leg {leg_id} established; ACS announces it (CallLegStateChanged)"
    ));
    let started = Instant::now();
    let recording_id = loop {
        let leg = callvault::admin::call_legs::find(db, &leg_id).await?;
        let detail = match &leg {
            Some(leg) => match &leg.recording.recording_id {
                Some(id) => break id.clone(),
                None => format!(
                    "recording start {} after {} attempt(s) {}",
                    leg.recording.state,
                    leg.recording.attempts,
                    leg.recording.last_error.as_deref().unwrap_or("")
                ),
            },
            None => "the leg has not arrived".to_owned(),
        };
        if started.elapsed() > options.timeout {
            return Err(DemoError::NotStarted {
                seconds: options.timeout.as_secs(),
                detail,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    progress(&format!(
        "{POLICY_CALL}: callvault started recording it on policy (recording.auto_start)"
    ));
    tokio::time::sleep(Duration::from_secs_f64(options.call_seconds)).await;
    let locator = CallLocator::Conversation(conversation);
    control
        .stop(&locator, &recording_id)
        .await
        .map_err(|source| DemoError::Control {
            call: POLICY_CALL.into(),
            source,
        })?;
    progress(&format!("{POLICY_CALL}: stopped; ACS prepares the files"));
    Ok(call_id)
}

/// Start, pause, resume, stop: one call's recording through the control API.
async fn record_call(
    control: &RecordingControl,
    server_call_id: String,
    (content, channel, format): (&str, &str, &str),
    seconds: f64,
    callback: String,
) -> Result<(), DemoError> {
    let locator = CallLocator::ServerCall(server_call_id.clone());
    let fail = |source| DemoError::Control {
        call: server_call_id.clone(),
        source,
    };
    let options = StartOptions {
        recording_state_callback_uri: Some(callback),
        recording_content_type: Some(content.into()),
        recording_channel_type: Some(channel.into()),
        recording_format_type: Some(format.into()),
        ..StartOptions::default()
    };
    let status = control.start(&locator, &options).await.map_err(fail)?;
    let id = status.recording_id;
    progress(&format!(
        "{server_call_id}: recording {format} ({content}, {channel})"
    ));
    let quarter = Duration::from_secs_f64(seconds / 4.0);
    tokio::time::sleep(quarter * 2).await;
    control.pause(&locator, &id).await.map_err(fail)?;
    progress(&format!("{server_call_id}: paused"));
    tokio::time::sleep(quarter).await;
    control.resume(&locator, &id).await.map_err(fail)?;
    progress(&format!("{server_call_id}: resumed"));
    tokio::time::sleep(quarter).await;
    control.stop(&locator, &id).await.map_err(fail)?;
    progress(&format!(
        "{server_call_id}: stopped; ACS prepares the files"
    ));
    Ok(())
}

async fn wait_until_archived(db: &Db, calls: usize, timeout: Duration) -> Result<(), DemoError> {
    let started = Instant::now();
    let mut last_report = String::new();
    loop {
        let all = recordings::list(db, 1000, None).await?;
        let complete = all.iter().filter(|r| r.manifest_key.is_some()).count();
        let counts = callvault::queue::jobs::count_by_state(db).await?;
        let count = |state: JobState| {
            counts
                .iter()
                .find(|(s, _)| s == state.as_str())
                .map_or(0, |(_, n)| *n)
        };
        let report = format!(
            "{complete}/{calls} recordings complete; chunks: {} archived, {} pending, {} running, {} failed",
            count(JobState::Archived),
            count(JobState::Pending),
            count(JobState::Running),
            count(JobState::Failed) + count(JobState::Expired)
        );
        if report != last_report {
            progress(&report);
            last_report = report.clone();
        }
        if complete >= calls && count(JobState::Pending) + count(JobState::Running) == 0 {
            return Ok(());
        }
        if started.elapsed() > timeout {
            return Err(DemoError::Timeout {
                seconds: timeout.as_secs(),
                detail: report,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `labels` names rows by callId where a recording has no serverCallId (the preview API's).
async fn summarise(
    db: &Db,
    archive: &Archive,
    labels: &[(String, &str)],
) -> Result<Vec<DemoRow>, DemoError> {
    let mut rows = Vec::new();
    for recording in recordings::list(db, 1000, None).await?.into_iter().rev() {
        let Some(key) = &recording.manifest_key else {
            continue;
        };
        let manifest: Manifest =
            match serde_json::from_slice(&archive.read(&key.as_str().into()).await?) {
                Ok(manifest) => manifest,
                Err(_) => {
                    rows.push(row(&recording, &[], false, 0.0, labels));
                    continue;
                }
            };
        let verified = verify(archive, &manifest).await?;
        let seconds = event_to_archive_seconds(db, recording.id).await?;
        rows.push(row(&recording, &manifest.chunks, verified, seconds, labels));
    }
    rows.sort_by(|a, b| a.server_call_id.cmp(&b.server_call_id));
    Ok(rows)
}

fn row(
    recording: &recordings::Recording,
    chunks: &[callvault::storage::manifest::ManifestChunk],
    verified: bool,
    seconds: f64,
    labels: &[(String, &str)],
) -> DemoRow {
    let label = labels
        .iter()
        .find(|(call_id, _)| *call_id == recording.call_id)
        .map(|(_, label)| (*label).to_owned());
    DemoRow {
        server_call_id: recording
            .server_call_id
            .clone()
            .or(label)
            .unwrap_or_else(|| recording.call_id.clone()),
        format: recording.format_type.clone().unwrap_or_default(),
        folder: callvault::storage::layout::recording_folder(
            &recording.call_id,
            &recording.recording_key,
        ),
        chunks: chunks.len(),
        bytes: chunks
            .iter()
            .map(|c| c.media.bytes + c.metadata.bytes)
            .sum(),
        verified,
        seconds,
    }
}

/// Re-reads every object a manifest names and compares size and sha256.
async fn verify(archive: &Archive, manifest: &Manifest) -> Result<bool, DemoError> {
    for chunk in &manifest.chunks {
        for expected in [&chunk.media, &chunk.metadata] {
            match archive.digest_of(&expected.key.as_str().into()).await? {
                Some(found) if found.bytes == expected.bytes && found.sha256 == expected.sha256 => {
                }
                _ => return Ok(false),
            }
        }
    }
    Ok(true)
}

async fn event_to_archive_seconds(db: &Db, recording: i64) -> Result<f64, DemoError> {
    let (first_event, last_archive): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT (SELECT MIN(received_at) FROM events WHERE recording_id = $1),
                (SELECT MAX(archived_at) FROM jobs WHERE recording_id = $1)",
    )
    .bind(recording)
    .fetch_one(db.pool())
    .await
    .map_err(callvault::queue::QueueError::from)?;
    Ok(match (first_event, last_archive) {
        (Some(from), Some(to)) => (to - from).max(0) as f64 / 1000.0,
        _ => 0.0,
    })
}

/// The summary as an aligned text table.
pub fn table(rows: &[DemoRow]) -> String {
    let mut out = format!(
        "{:<14} {:<6} {:>6} {:>12} {:<16} {:>9}\n",
        "recording", "format", "chunks", "bytes", "sha256 verified", "seconds"
    );
    for row in rows {
        out.push_str(&format!(
            "{:<14} {:<6} {:>6} {:>12} {:<16} {:>9.2}\n",
            row.server_call_id,
            row.format,
            row.chunks,
            row.bytes,
            if row.verified { "yes" } else { "NO" },
            row.seconds
        ));
    }
    out
}

fn progress(message: &str) {
    eprintln!("demo: {message}");
}
