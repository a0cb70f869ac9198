//! `callvault erase` and `callvault retention plan`: erasure from the command line, with the
//! same refusals, steps and tombstone as the admin API, and the retention job's next selection.

use std::io::BufRead;

use callvault::admin::erasure::{self, ErasureOutcome, ErasureRequest};
use callvault::admin::retention;
use callvault::queue::Db;
use callvault::queue::recordings::Recording;
use callvault::storage::Archive;

use super::table::{Table, clip};
use super::{CliError, ConfigArgs, load_settings};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["recording", "participant"])))]
pub struct EraseArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The recording: row id (from `recordings list`), ACS recording id, or recording key.
    #[arg(long, value_name = "ID")]
    recording: Option<String>,
    /// Every recording a participant (e.g. `8:acs:…`) took part in.
    #[arg(long, value_name = "ID")]
    participant: Option<String>,
    /// Why (who asked, which request): kept in the tombstone.
    #[arg(long, value_name = "TEXT")]
    reason: String,
    /// Only list what would be erased.
    #[arg(long)]
    dry_run: bool,
    /// Erase without asking for confirmation.
    #[arg(long)]
    yes: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum RetentionCommand {
    /// What the next run of `retention.delete_after_days` erases, and what it skips and why.
    Plan {
        #[command(flatten)]
        config: ConfigArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

async fn open(config: &ConfigArgs) -> Result<(callvault::config::Settings, Db, Archive), CliError> {
    let settings = load_settings(config)?;
    let storage = settings.storage_settings()?;
    let db = Db::connect(settings.database.url.expose(), 2)
        .await
        .map_err(|err| CliError::Runtime(format!("{err}; check database.url")))?;
    db.migrate().await.map_err(CliError::runtime)?;
    // An erasure from here is announced like one through the API.
    let db = db.with_event_routes(callvault::events::routes(&settings.events));
    let archive = Archive::open(&storage).await.map_err(CliError::runtime)?;
    Ok((settings, db, archive))
}

/// The name an erasure from the command line is recorded under.
fn operator_name() -> String {
    let user = std::env::var("USER").unwrap_or_default();
    let user: String = user
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect();
    if user.is_empty() {
        "cli".to_owned()
    } else {
        format!("cli:{user}")
    }
}

pub async fn erase(args: EraseArgs) -> Result<(), CliError> {
    let request = ErasureRequest::by_operator(&operator_name(), &args.reason)?;
    let (_, db, archive) = open(&args.config).await?;
    let recordings = match (&args.recording, &args.participant) {
        (Some(key), _) => vec![erasure::find_recording(&db, key).await?],
        (None, Some(participant)) => erasure::recordings_of_participant(&db, participant).await?,
        (None, None) => {
            return Err(CliError::Usage(
                "give --recording ID or --participant ID".into(),
            ));
        }
    };
    if recordings.is_empty() {
        println!(
            "participant {} is in no archived recording that is not erased already: nothing to erase",
            args.participant.as_deref().unwrap_or_default()
        );
        return Ok(());
    }
    if !args.dry_run && !args.yes {
        confirm(&recordings)?;
    }
    let mut outcomes = Vec::new();
    let mut failures = Vec::new();
    for recording in &recordings {
        match erasure::erase(&db, &archive, recording, &request, args.dry_run).await {
            Ok(outcome) => outcomes.push(outcome),
            Err(err) => failures.push(format!("recording {}: {err}", recording.id)),
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&outcomes).map_err(CliError::runtime)?
        );
    } else {
        for outcome in &outcomes {
            println!("{}", describe(outcome));
        }
    }
    match failures.len() {
        0 => Ok(()),
        _ => Err(match failures.as_slice() {
            [one] => CliError::Runtime(one.clone()),
            many => CliError::Runtime(format!(
                "{} of {} recordings were not erased: {}",
                many.len(),
                recordings.len(),
                many.join("; ")
            )),
        }),
    }
}

/// Asks on the terminal; anything but `yes` erases nothing.
fn confirm(recordings: &[Recording]) -> Result<(), CliError> {
    eprintln!("This deletes every object of these recordings from the archive, for good:");
    for recording in recordings {
        eprintln!(
            "  recording {} (call {}, recording id {})",
            recording.id,
            recording.call_id,
            recording.recording_id.as_deref().unwrap_or("-")
        );
    }
    eprint!("Type yes to erase {} recording(s): ", recordings.len());
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(CliError::runtime)?;
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(CliError::Runtime(
            "not confirmed: nothing was erased (pass --yes to erase without asking)".into(),
        ))
    }
}

fn describe(outcome: &ErasureOutcome) -> String {
    let recording = outcome.recording;
    match outcome.status {
        "dry_run" => {
            let mut lines = vec![format!(
                "would erase recording {recording} (call {}): {} object(s) in the store, and write {}",
                outcome.call_id,
                outcome.deleted.len(),
                outcome.tombstone_key
            )];
            lines.extend(outcome.deleted.iter().map(|key| format!("  {key}")));
            lines.join("\n")
        }
        "already_erased" => format!(
            "recording {recording} was already erased at {}; its tombstone is {}",
            outcome.tombstone.erased_at, outcome.tombstone_key
        ),
        _ => format!(
            "recording {recording} erased: {} object(s) and {} earlier version(s) deleted; tombstone {}",
            outcome.deleted.len(),
            outcome.versions_deleted,
            outcome.tombstone_key
        ),
    }
}

pub async fn retention(command: RetentionCommand) -> Result<(), CliError> {
    let RetentionCommand::Plan { config, json } = command;
    let (settings, db, archive) = open(&config).await?;
    let selection = retention::select(
        &db,
        archive.object_lock(),
        &settings.retention,
        chrono::Utc::now(),
    )
    .await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&selection).map_err(CliError::runtime)?
        );
        return Ok(());
    }
    if settings.retention.delete_after_days == 0 {
        println!("retention.delete_after_days is 0: no recording is ever erased by retention");
        return Ok(());
    }
    println!(
        "the next run erases {} recording(s) started before {} (retention.delete_after_days = {}, batch of at most {}):",
        selection.erase.len(),
        selection.cutoff,
        settings.retention.delete_after_days,
        settings.retention.batch_size
    );
    let mut table = Table::new(&["ID>", "CALL", "RECORDING ID", "STARTED"]);
    for planned in &selection.erase {
        let r = &planned.recording;
        table.row(vec![
            r.id.to_string(),
            clip(&r.call_id, 40),
            clip(r.recording_id.as_deref().unwrap_or("-"), 40),
            planned.started.clone(),
        ]);
    }
    println!("{}", table.render());
    if !selection.skipped.is_empty() {
        println!("skipped, kept by a legal hold or store lock:");
        let mut table = Table::new(&["ID>", "STARTED", "KEPT BY", "POSSIBLE FROM"]);
        for skipped in &selection.skipped {
            table.row(vec![
                skipped.planned.recording.id.to_string(),
                skipped.planned.started.clone(),
                skipped.refusal.cause.to_owned(),
                skipped
                    .refusal
                    .possible_from
                    .clone()
                    .unwrap_or_else(|| "when the hold is released".into()),
            ]);
        }
        println!("{}", table.render());
    }
    Ok(())
}
