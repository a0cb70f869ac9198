//! `callvault jobs …` and `callvault recordings …`: the admin API's views and replay, straight
//! from the database. Tables for people, `--json` (the API's JSON) for scripts.

use callvault::admin::RecordingState;
use callvault::admin::operations::{self as ops, OpsError, ReplaySelection};
use callvault::admin::views::{JobView, RecordingDetail, rfc3339};
use callvault::audit::Actor;
use callvault::queue::{Db, JobState, now_millis};

use super::table::{Table, bytes, clip, time_left};
use super::{CliError, ConfigArgs, load_settings};

#[derive(Debug, clap::Subcommand)]
pub enum JobsCommand {
    /// Jobs (one per chunk), most urgent deadline first.
    List {
        #[command(flatten)]
        config: ConfigArgs,
        /// Only jobs in these states (comma-separated): pending, running, archived, failed, expired.
        #[arg(long, value_name = "S")]
        state: Option<String>,
        /// At most this many jobs.
        #[arg(long, default_value_t = 200)]
        limit: i64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Put failed or expired jobs back to pending with their attempts reset.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["id", "state"])))]
    Replay {
        #[command(flatten)]
        config: ConfigArgs,
        /// The job to replay.
        #[arg(long)]
        id: Option<i64>,
        /// Replay every job in this state: failed or expired.
        #[arg(long, value_name = "S")]
        state: Option<JobState>,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum RecordingsCommand {
    /// Recordings, newest first, with their derived state and deadline.
    List {
        #[command(flatten)]
        config: ConfigArgs,
        /// Only recordings in this state: failed, archiving, incomplete, complete.
        #[arg(long, value_name = "S")]
        state: Option<RecordingState>,
        /// At most this many recordings.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Continue after a previous page (its next_cursor).
        #[arg(long)]
        cursor: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One recording: chunks, jobs, attempts, object keys, checksums, deadline.
    Show {
        #[command(flatten)]
        config: ConfigArgs,
        /// Row id (from `recordings list`), ACS recording id, or recording key.
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Set the store's legal hold on every object of a recording (S3 Object Lock, Azure
    /// immutability); `--release` lifts it.
    Hold {
        #[command(flatten)]
        config: ConfigArgs,
        /// Row id (from `recordings list`), ACS recording id, or recording key.
        id: String,
        /// Lift the legal hold instead of setting it.
        #[arg(long)]
        release: bool,
    },
}

impl From<OpsError> for CliError {
    fn from(err: OpsError) -> Self {
        match err {
            OpsError::Invalid { message, .. } => CliError::Usage(message),
            other => CliError::Runtime(other.to_string()),
        }
    }
}

pub(super) async fn open(config: &ConfigArgs) -> Result<Db, CliError> {
    let settings = load_settings(config)?;
    let db = Db::connect(settings.database.url.expose(), 2)
        .await
        .map_err(|err| CliError::Runtime(format!("{err}; check database.url")))?;
    db.migrate().await.map_err(CliError::runtime)?;
    Ok(db)
}

/// Prints to stdout; a closed pipe (`| head`) ends the output quietly instead of panicking.
pub(super) fn print(text: &str) -> Result<(), CliError> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::runtime(err)),
        _ => Ok(()),
    }
}

pub(super) fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    print(&serde_json::to_string_pretty(value).map_err(CliError::runtime)?)
}

pub async fn jobs(command: JobsCommand) -> Result<(), CliError> {
    match command {
        JobsCommand::List {
            config,
            state,
            limit,
            json,
        } => {
            let states = parse_states(state.as_deref())?;
            let limit = ops::limit(Some(limit), 200)?;
            let db = open(&config).await?;
            let jobs = ops::list_jobs(&db, &states, limit, now_millis()).await?;
            if json {
                return print_json(&jobs);
            }
            print(&jobs_table(&jobs))
        }
        JobsCommand::Replay { config, id, state } => {
            let db = open(&config).await?;
            let now = now_millis();
            // The running service's workers pick replayed jobs up at their next poll.
            match (id, state) {
                (Some(id), _) => {
                    let job = ops::replay_job(&db, &Actor::cli(), id, now).await?;
                    print(&format!(
                        "job {} is {} again (chunk {} of {})",
                        job.id, job.state, job.chunk_index, job.recording_key
                    ))?;
                }
                (None, Some(state)) => {
                    let summary =
                        ops::replay_jobs(&db, &Actor::cli(), &ReplaySelection::State(state), now)
                            .await?;
                    print(&format!("replayed {} {state} job(s)", summary.replayed))?;
                }
                (None, None) => {
                    return Err(CliError::Usage("give --id ID or --state failed".into()));
                }
            }
            Ok(())
        }
    }
}

fn parse_states(raw: Option<&str>) -> Result<Vec<JobState>, CliError> {
    raw.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(CliError::Usage))
        .collect()
}

fn jobs_table(jobs: &[JobView]) -> String {
    let mut table = Table::new(&[
        "JOB>",
        "RECORDING",
        "CHUNK>",
        "STATE",
        "ATTEMPTS>",
        "TIME LEFT",
        "LAST ERROR",
    ]);
    for job in jobs {
        let settled = job.state == "archived";
        table.row(vec![
            job.id.to_string(),
            clip(&job.recording_key, 40),
            job.chunk_index.to_string(),
            job.state.clone(),
            job.attempts.to_string(),
            if settled {
                "-".into()
            } else {
                time_left(job.time_left_seconds)
            },
            clip(job.last_error.as_deref().unwrap_or(""), 70),
        ]);
    }
    table.render()
}

pub async fn recordings(command: RecordingsCommand) -> Result<(), CliError> {
    match command {
        RecordingsCommand::List {
            config,
            state,
            limit,
            cursor,
            json,
        } => {
            let limit = ops::limit(Some(limit), 50)?;
            let db = open(&config).await?;
            let page =
                ops::list_recordings(&db, state, limit, cursor.as_deref(), now_millis()).await?;
            if json {
                return print_json(&page);
            }
            let mut table = Table::new(&[
                "ID>",
                "CALL",
                "RECORDING",
                "STATE",
                "CHUNKS>",
                "ARCHIVED>",
                "TIME LEFT",
                "MANIFEST",
            ]);
            for r in &page.recordings {
                table.row(vec![
                    r.id.to_string(),
                    clip(&r.call_id, 38),
                    clip(r.recording_id.as_deref().unwrap_or(&r.recording_key), 40),
                    r.state.to_string(),
                    format!("{}/{}", r.chunks_archived, r.chunks_total),
                    bytes(r.archived_bytes),
                    if r.state == RecordingState::Complete {
                        "-".into()
                    } else {
                        time_left(r.time_left_seconds)
                    },
                    r.manifest_key.clone().unwrap_or_default(),
                ]);
            }
            print(&table.render())?;
            match page.next_cursor {
                Some(cursor) => print(&format!("more: --cursor {cursor}")),
                None => Ok(()),
            }
        }
        RecordingsCommand::Show { config, id, json } => {
            let db = open(&config).await?;
            let detail = ops::recording_detail(&db, &id, now_millis()).await?;
            if json {
                return print_json(&detail);
            }
            print(&describe(&detail))
        }
        RecordingsCommand::Hold {
            config,
            id,
            release,
        } => {
            let settings = load_settings(&config)?;
            let db = open(&config).await?;
            let storage = settings.storage_settings().map_err(CliError::runtime)?;
            let archive = callvault::storage::Archive::open(&storage)
                .await
                .map_err(CliError::runtime)?;
            let outcome = callvault::admin::holds::set_legal_hold(
                &db,
                &archive,
                &Actor::cli(),
                &id,
                !release,
                now_millis(),
            )
            .await?;
            print(&format!(
                "legal hold {} on {} objects of recording {}",
                if outcome.legal_hold {
                    "set"
                } else {
                    "released"
                },
                outcome.objects,
                outcome.recording
            ))
        }
    }
}

fn describe(detail: &RecordingDetail) -> String {
    let s = &detail.summary;
    let mut facts = Table::new(&["", ""]);
    let mut fact = |name: &str, value: String| facts.row(vec![name.to_owned(), value]);
    fact("state", s.state.to_string());
    fact("call id", s.call_id.clone());
    fact("recording id", s.recording_id.clone().unwrap_or_default());
    fact("recording key", s.recording_key.clone());
    fact("folder", s.folder.clone());
    fact(
        "server call id",
        s.server_call_id.clone().unwrap_or_default(),
    );
    fact("start time", s.start_time.clone().unwrap_or_default());
    fact(
        "deadline",
        format!("{} ({})", s.deadline, time_left(s.time_left_seconds)),
    );
    fact(
        "archived",
        format!(
            "{} of {} chunks, {}",
            s.chunks_archived,
            s.chunks_total,
            bytes(s.archived_bytes)
        ),
    );
    fact(
        "manifest",
        s.manifest_key
            .clone()
            .unwrap_or_else(|| "not written".into()),
    );
    fact(
        "legal hold",
        match (
            detail.worm.legal_hold,
            detail.worm.legal_hold_changed_at.as_deref(),
        ) {
            (true, Some(at)) => format!("on since {at}"),
            (false, Some(at)) => format!("released {at}"),
            _ => "never set".into(),
        },
    );
    if let Some(at) = &detail.worm.locked_at {
        fact("locked", format!("at {at}, after storage.lock_after_hours"));
    }
    if let Some(c) = &s.completeness {
        let figures = match (c.announced_ms, c.covered_ms, c.shortfall_ms) {
            (Some(announced), Some(covered), Some(short)) if c.verdict == "short" => {
                format!(": {covered} of {announced} ms covered, {short} ms short")
            }
            _ => c
                .note
                .as_ref()
                .map(|note| format!(": {note}"))
                .unwrap_or_default(),
        };
        fact("duration check", format!("{}{figures}", c.verdict));
    }
    if let Some(v) = &s.last_verification {
        let detail = v.detail.as_deref().map(|d| format!(": {}", clip(d, 120)));
        fact(
            "last verified",
            format!("{} {}{}", v.verified, v.result, detail.unwrap_or_default()),
        );
    }
    if let Some(index) = detail.waiting_for_chunk {
        fact(
            "waiting for",
            format!("chunk {index}, not announced by ACS yet"),
        );
    }
    let mut out = format!(
        "Recording {}\n{}\n\nChunks\n",
        s.id,
        facts.render().trim_start_matches('\n')
    );

    let mut chunks = Table::new(&[
        "INDEX>",
        "JOB>",
        "STATE",
        "ATTEMPTS>",
        "BYTES>",
        "SHA256",
        "KEY",
        "LAST ERROR",
    ]);
    let mut attempts = Table::new(&[
        "JOB>", "ATTEMPT>", "WORKER", "STARTED", "FINISHED", "OUTCOME", "ERROR",
    ]);
    for chunk in &detail.chunks {
        let job = &chunk.job;
        let media = job.media.as_ref();
        chunks.row(vec![
            job.chunk_index.to_string(),
            job.id.to_string(),
            job.state.clone(),
            job.attempts.to_string(),
            media
                .and_then(|m| m.bytes)
                .map(|b| b.to_string())
                .unwrap_or_default(),
            media.and_then(|m| m.sha256.clone()).unwrap_or_default(),
            media.map(|m| m.key.clone()).unwrap_or_default(),
            clip(job.last_error.as_deref().unwrap_or(""), 60),
        ]);
        for a in &chunk.attempt_history {
            attempts.row(vec![
                a.job_id.to_string(),
                a.attempt.to_string(),
                a.worker.clone(),
                rfc3339(a.started_at),
                a.finished_at.map(rfc3339).unwrap_or_default(),
                a.outcome.clone().unwrap_or_else(|| "in progress".into()),
                clip(a.error.as_deref().unwrap_or(""), 60),
            ]);
        }
    }
    out.push_str(&chunks.render());
    out.push_str("\n\nAttempts\n");
    out.push_str(&attempts.render());
    if !detail.state_events.is_empty() {
        let mut events = Table::new(&["EVENT TIME", "STATE", "EVENT ID"]);
        for e in &detail.state_events {
            events.row(vec![
                e.event_time.clone().unwrap_or_default(),
                e.state.clone(),
                e.event_id.clone(),
            ]);
        }
        out.push_str("\n\nRecording state events\n");
        out.push_str(&events.render());
    }
    out
}
