//! `callvault import-dead-letters`: feeds what Event Grid dead-lettered back through the intake.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use callvault::ingest::Intake;
use callvault::ingest::dead_letters::{self, DeadLetterSource, ImportReport};
use callvault::metrics::Metrics;
use callvault::queue::Db;
use chrono::{DateTime, NaiveDate, Utc};

use super::table::Table;
use super::{CliError, ConfigArgs, load_settings};

/// How often a progress line is printed on a terminal.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Where the dead letters are: a folder, an Azure container URL
    /// (https://ACCOUNT.blob.core.windows.net/CONTAINER[/SUBSCRIPTION]), or s3://BUCKET[/PREFIX].
    #[arg(long, value_name = "URL")]
    container: String,
    /// Only blobs of this UTC hour or later, by their name (`…/YYYY/M/D/H/…`): a date
    /// (2026-12-01) or a time (2026-12-01T05:00:00Z).
    #[arg(long, value_name = "DATE", value_parser = parse_since)]
    since: Option<DateTime<Utc>>,
    /// The endpoint of an S3-compatible store, for s3:// (default: AWS, or AWS_ENDPOINT).
    #[arg(long, value_name = "URL")]
    s3_endpoint: Option<String>,
}

fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.to_utc());
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|date| date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        .map_err(|_| format!("`{text}` is neither a date (2026-12-01) nor an RFC 3339 time"))
}

pub async fn run(args: ImportArgs) -> Result<(), CliError> {
    let settings = load_settings(&args.config)?;
    let s3_endpoint = args
        .s3_endpoint
        .clone()
        .or_else(|| std::env::var("AWS_ENDPOINT").ok());
    let source = DeadLetterSource::parse(&args.container, s3_endpoint.as_deref())
        .map_err(|err| CliError::Usage(err.to_string()))?;
    let db = Db::connect(settings.database.url.expose(), 2)
        .await
        .map_err(|err| CliError::Runtime(format!("{err}; check database.url")))?;
    db.migrate().await.map_err(CliError::runtime)?;
    let intake = Intake::new(
        &settings,
        db,
        Arc::new(Metrics::default()),
        Arc::new(tokio::sync::Notify::new()),
    )?;
    let archive = source.open().await.map_err(CliError::runtime)?;
    eprintln!("importing dead letters from {}", archive.description());

    let on_terminal = std::io::stderr().is_terminal();
    let mut last_line = Instant::now();
    let progress = |report: &ImportReport| {
        if on_terminal && last_line.elapsed() >= PROGRESS_EVERY {
            last_line = Instant::now();
            eprintln!(
                "… {} blob(s), {} event(s) accepted, {} duplicate(s)",
                report.blobs_imported, report.events.accepted, report.events.duplicates
            );
        }
    };
    let outcome = dead_letters::import(
        &intake,
        archive.store().as_ref(),
        &source.prefix,
        args.since,
        progress,
    )
    .await;
    let (report, stopped) = match outcome {
        Ok(report) => (report, None),
        Err((report, err)) => (report, Some(err)),
    };
    print_report(&report);
    if let Some(err) = stopped {
        return Err(CliError::Runtime(format!(
            "{err}; the import stopped there: run it again (what was imported is recognised as duplicates)"
        )));
    }
    match report.invalid_blobs.len() {
        0 => Ok(()),
        invalid => Err(CliError::Runtime(format!(
            "{invalid} blob(s) could not be read; see the lines above"
        ))),
    }
}

fn print_report(report: &ImportReport) {
    let events = &report.events;
    let mut table = Table::new(&["", "COUNT"]);
    for (what, count) in [
        ("blobs imported", report.blobs_imported),
        ("blobs before --since", report.blobs_skipped_older),
        ("other objects skipped", report.objects_skipped_other),
        ("blobs unreadable", report.invalid_blobs.len() as u64),
        ("events accepted", events.accepted as u64),
        ("events already known", events.duplicates as u64),
        ("events quarantined", events.quarantined as u64),
        ("events of other types", events.ignored as u64),
    ] {
        table.row(vec![what.to_owned(), count.to_string()]);
    }
    println!("{}", table.render());
    for invalid in &report.invalid_blobs {
        println!(
            "unreadable: {}: {}",
            invalid.key.escape_debug(),
            invalid.reason.escape_debug()
        );
    }
}
