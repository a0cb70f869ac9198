//! `callvault participants …`: the recordings a person is in, and the one-time backfill of
//! the participant index. Tables for people, `--json` (the admin API's JSON) for scripts.

use callvault::participants::backfill::{self, BackfillReport};
use callvault::participants::{self, LookupError};
use tokio_util::sync::CancellationToken;

use super::ops::{open, print, print_json};
use super::table::{Table, clip};
use super::{CliError, ConfigArgs};

#[derive(Debug, clap::Subcommand)]
pub enum ParticipantsCommand {
    /// The recordings a participant is in, newest first, with their chunks' object keys.
    Show {
        #[command(flatten)]
        config: ConfigArgs,
        /// A participant id as ACS writes it (`8:acs:…`, `8:orgid:…`, `4:+14255550123`) or a
        /// phone number in any usual form (`+1 425 555 0123`).
        id: String,
        /// At most this many recordings.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Continue after a previous page (its next_cursor).
        #[arg(long)]
        cursor: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Index the participants of chunks archived before the participant index existed.
    /// Resumable and idempotent; `serve` also runs it in the background at start-up.
    Backfill {
        #[command(flatten)]
        config: ConfigArgs,
        /// Walk every archived job again, up to the newest one now (after a rolling upgrade
        /// during which older replicas kept archiving). Rows already indexed are kept.
        #[arg(long)]
        restart: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

impl From<LookupError> for CliError {
    fn from(err: LookupError) -> Self {
        match err {
            LookupError::Invalid(invalid) => CliError::Usage(invalid.to_string()),
            LookupError::Queue(err) => CliError::runtime(err),
        }
    }
}

pub async fn run(command: ParticipantsCommand) -> Result<(), CliError> {
    match command {
        ParticipantsCommand::Show {
            config,
            id,
            limit,
            cursor,
            json,
        } => {
            let limit = callvault::admin::operations::limit(Some(limit), 100)?;
            let before = callvault::admin::operations::parse_cursor(cursor.as_deref())?;
            // Refused before the database is opened: a typo answers at once.
            callvault::participants::ParticipantId::parse(&id)
                .map_err(|invalid| CliError::Usage(invalid.to_string()))?;
            let db = open(&config).await?;
            let page = participants::page_of(&db, &id, limit, before).await?;
            if json {
                return print_json(&page);
            }
            let mut table = Table::new(&[
                "ID>",
                "CALL",
                "RECORDING",
                "STATE",
                "STARTED",
                "CHUNKS>",
                "FIRST SEEN",
                "FOLDER",
            ]);
            for r in &page.recordings {
                let archived = r.chunks.iter().filter(|c| c.media_key.is_some()).count();
                table.row(vec![
                    r.id.to_string(),
                    clip(&r.call_id, 38),
                    clip(r.recording_id.as_deref().unwrap_or(&r.recording_key), 40),
                    r.state.to_string(),
                    r.start_time.clone().unwrap_or_default(),
                    format!("{archived}/{}", r.chunks.len()),
                    r.first_seen.clone(),
                    r.folder.clone(),
                ]);
            }
            print(&format!(
                "{} recording(s) of {}",
                page.recordings.len(),
                page.participant
            ))?;
            if !page.recordings.is_empty() {
                print(&table.render())?;
            }
            match page.next_cursor {
                Some(cursor) => print(&format!("more: --cursor {cursor}")),
                None => Ok(()),
            }
        }
        ParticipantsCommand::Backfill {
            config,
            restart,
            json,
        } => {
            let db = open(&config).await?;
            if restart {
                callvault::queue::participants::restart_backfill(&db)
                    .await
                    .map_err(CliError::runtime)?;
            }
            let report = backfill::run(&db, std::time::Duration::ZERO, &CancellationToken::new())
                .await
                .map_err(CliError::runtime)?;
            if json {
                return print_json(&report);
            }
            print(&describe(&report))
        }
    }
}

fn describe(report: &BackfillReport) -> String {
    let mut out = format!(
        "read {} archived job(s) in {} batch(es), added {} index row(s)",
        report.jobs_read, report.batches, report.rows_added
    );
    let skipped = report.skipped;
    if skipped.total() > 0 {
        out.push_str(&format!(
            "; left out {} participant id(s): {} too long, {} invalid, {} over the per-chunk limit",
            skipped.total(),
            skipped.too_long,
            skipped.invalid,
            skipped.over_limit
        ));
    }
    if let Some(progress) = &report.progress {
        out.push_str(&if progress.is_finished() {
            format!(
                "\nthe backfill is complete: every job through id {} is indexed",
                progress.through_job_id
            )
        } else {
            format!(
                "\nthe backfill stopped at job id {} of {}; run it again to resume",
                progress.next_job_id, progress.through_job_id
            )
        });
    }
    out
}
