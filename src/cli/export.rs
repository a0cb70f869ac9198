//! `callvault export`: a tar of every recording of a participant, or of recordings by id, for
//! a data subject's access request. A progress bar on a terminal, one line per file elsewhere.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use callvault::export::{self, Order, Progress, RecordingStatus, Selection};
use callvault::queue::{Db, now_millis};
use callvault::storage::Archive;
use indicatif::{ProgressBar, ProgressStyle};

use super::{CliError, ConfigArgs, load_settings};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["participant", "recording"])))]
pub struct ExportArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Every archived recording whose chunks' metadata name this participant id.
    #[arg(long, value_name = "ID")]
    participant: Option<String>,
    /// This recording (its database id, as `callvault recordings list` shows); repeatable.
    #[arg(long, value_name = "ID")]
    recording: Vec<i64>,
    /// The tar to write. An unfinished one (FILE.partial and FILE.progress) is continued.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Who asks, recorded in index.json (default: the operating-system user).
    #[arg(long, value_name = "NAME")]
    requested_by: Option<String>,
}

pub async fn run(args: ExportArgs) -> Result<(), CliError> {
    let selection = match args.participant {
        Some(participant) => Selection::Participant(participant),
        None => Selection::Recordings(args.recording),
    }
    .checked()
    .map_err(|err| CliError::Usage(err.to_string()))?;
    let settings = load_settings(&args.config)?;
    let storage = settings.storage_settings()?;
    let db = Db::connect(settings.database.url.expose(), 2)
        .await
        .map_err(|err| CliError::Runtime(format!("{err}; check database.url")))?;
    db.migrate().await.map_err(CliError::runtime)?;
    let archive = Archive::open(&storage).await.map_err(CliError::runtime)?;
    let order = Order {
        selection,
        export_id: uuid::Uuid::new_v4().simple().to_string(),
        requested_by: args.requested_by.unwrap_or_else(operating_system_user),
        created_at: now_millis(),
    };
    let progress: Arc<dyn Progress> = if std::io::stderr().is_terminal() {
        Arc::new(Bar::default())
    } else {
        Arc::new(Lines::default())
    };
    let exported = export::run(&db, &archive, &order, &args.out, progress)
        .await
        .map_err(CliError::runtime)?;
    let index = &exported.index;
    for recording in &index.recordings {
        if recording.status != RecordingStatus::Exported {
            println!(
                "recording {} listed, not exported: {}",
                recording.id,
                recording.note.as_deref().unwrap_or("")
            );
        }
    }
    let exported_count = index
        .recordings
        .iter()
        .filter(|recording| recording.status == RecordingStatus::Exported)
        .count();
    let resumed = if exported.kept > 0 {
        format!(" ({} entries kept from the unfinished run)", exported.kept)
    } else {
        String::new()
    };
    println!(
        "exported {exported_count} recording(s), {} files, {} bytes to {}{resumed}",
        index.files,
        index.bytes,
        exported.path.display()
    );
    let actor = callvault::audit::Actor::cli();
    let recordings: Vec<i64> = index
        .recordings
        .iter()
        .filter(|recording| recording.status == RecordingStatus::Exported)
        .map(|recording| recording.id)
        .collect();
    let entry = callvault::audit::AuditEntry::new(&actor, callvault::audit::Action::Exported)
        .detail(serde_json::json!({
            "export_id": order.export_id,
            "requested_by": order.requested_by,
            "recordings": recordings,
            "file": exported.path.display().to_string(),
            "via": "command line",
        }));
    callvault::audit::append(&db, entry).await.map_err(|err| {
        CliError::Runtime(format!(
            "exported, but its audit record was not written: {err}"
        ))
    })?;
    Ok(())
}

fn operating_system_user() -> String {
    let user = ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
        .unwrap_or_else(|| "unknown user".into());
    format!("{user} (command line)")
}

/// A progress bar on stderr, in bytes.
#[derive(Default)]
struct Bar {
    bar: std::sync::OnceLock<ProgressBar>,
}

impl Progress for Bar {
    fn begin(&self, _files: u64, bytes: u64, _kept_files: u64, kept_bytes: u64) {
        let bar = ProgressBar::new(bytes);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {wide_msg}",
            )
            .expect("a valid template"),
        );
        bar.set_position(kept_bytes);
        let _ = self.bar.set(bar);
    }

    fn advance(&self, bytes: u64) {
        if let Some(bar) = self.bar.get() {
            bar.inc(bytes);
        }
    }

    fn file_done(&self, path: &str) {
        if let Some(bar) = self.bar.get() {
            bar.set_message(path.to_owned());
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.get() {
            bar.finish_and_clear();
        }
    }
}

/// One line on stderr per file written, for logs.
#[derive(Default)]
struct Lines {
    counters: export::Counters,
}

impl Progress for Lines {
    fn begin(&self, files: u64, bytes: u64, kept_files: u64, kept_bytes: u64) {
        self.counters.begin(files, bytes, kept_files, kept_bytes);
        eprintln!(
            "export: {files} files, {bytes} bytes{}",
            if kept_files > 0 {
                format!("; {kept_files} files ({kept_bytes} bytes) kept from the unfinished run")
            } else {
                String::new()
            }
        );
    }

    fn advance(&self, bytes: u64) {
        self.counters.advance(bytes);
    }

    fn file_done(&self, path: &str) {
        self.counters.file_done(path);
        let (files_done, files, bytes_done, bytes) = self.counters.snapshot();
        eprintln!("export: {files_done}/{files} files, {bytes_done}/{bytes} bytes: {path}");
    }
}
