//! `callvault storage …`: maintenance of the archive's store.

use std::time::Duration;

use callvault::metrics::Metrics;
use callvault::queue::Db;
use callvault::storage::Archive;
use callvault::worker::cleanup::{Cleanup, Listing, cleanup};

use super::table::Table;
use super::{CliError, ConfigArgs, load_settings};

/// Nothing in an archive is older than this: a larger age is a mistake, not a policy.
const MAX_AGE: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

#[derive(Debug, clap::Subcommand)]
pub enum StorageCommand {
    /// List incomplete multipart uploads under the prefix (S3) and abort those older than
    /// --older-than, and those the queue records as left open by a job no worker holds.
    Cleanup {
        #[command(flatten)]
        config: ConfigArgs,
        /// Abort uploads started longer ago than this (e.g. 24h, 90m, 7days). Younger ones may
        /// belong to a running transfer of another process.
        #[arg(long, value_name = "AGE", default_value = "24h", value_parser = parse_age)]
        older_than: Duration,
        /// Only list: abort nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// An age as humantime reads it (`24h`, `90m`, `7days`, `1h 30m`), at most ten years.
fn parse_age(text: &str) -> Result<Duration, String> {
    let age = humantime::parse_duration(text.trim())
        .map_err(|err| format!("`{text}` is not an age such as 24h, 90m or 7days ({err})"))?;
    if age > MAX_AGE {
        return Err(format!(
            "`{text}` is more than ten years: no upload is that old"
        ));
    }
    Ok(age)
}

pub async fn run(command: StorageCommand) -> Result<(), CliError> {
    match command {
        StorageCommand::Cleanup {
            config,
            older_than,
            dry_run,
        } => run_cleanup(&config, older_than, dry_run).await,
    }
}

async fn run_cleanup(
    config: &ConfigArgs,
    older_than: Duration,
    dry_run: bool,
) -> Result<(), CliError> {
    let settings = load_settings(config)?;
    let storage = settings.storage_settings()?;
    // Like the jobs and recordings commands: the table of open uploads must exist.
    let db = Db::connect(settings.database.url.expose(), 2)
        .await
        .map_err(|err| CliError::Runtime(format!("{err}; check database.url")))?;
    db.migrate().await.map_err(CliError::runtime)?;
    let archive = Archive::open(&storage).await.map_err(CliError::runtime)?;
    let found = cleanup(&db, &archive, &Metrics::default(), older_than, dry_run)
        .await
        .map_err(CliError::runtime)?;
    print_cleanup(&archive, &found, older_than, dry_run);
    match found.failures() {
        0 => Ok(()),
        failed => Err(CliError::Runtime(format!(
            "{failed} upload(s) could not be aborted; see the lines above"
        ))),
    }
}

fn print_cleanup(archive: &Archive, found: &Cleanup, older_than: Duration, dry_run: bool) {
    let age = humantime::format_duration(older_than);
    let uploads = match &found.listed {
        Listing::NothingToAbort(why) => {
            println!("{}: {why}", archive.description());
            return;
        }
        Listing::Uploads(uploads) => uploads,
    };
    let mut table = Table::new(&["KEY", "UPLOAD ID", "INITIATED", "ACTION"]);
    for (upload, action) in uploads {
        table.row(vec![
            printable(&upload.key),
            printable(&upload.upload_id),
            upload
                .initiated
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            action.to_string(),
        ]);
    }
    for (upload, action) in &found.recorded {
        let opened = chrono::DateTime::from_timestamp_millis(upload.opened_at)
            .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_else(|| upload.opened_at.to_string());
        table.row(vec![
            printable(&upload.object_key),
            printable(&upload.upload_id),
            opened,
            format!("{action} (recorded for job {})", upload.job_id),
        ]);
    }
    if !uploads.is_empty() || !found.recorded.is_empty() {
        println!("{}", table.render());
    }
    let verb = if dry_run {
        "would be aborted (dry run)"
    } else {
        "are aborted"
    };
    println!(
        "{} incomplete upload(s) listed in {} and {} recorded by the queue; those older than {age} {verb}",
        uploads.len(),
        archive.description(),
        found.recorded.len()
    );
}

/// A value from the store, with control characters escaped so it cannot rewrite the terminal.
fn printable(text: &str) -> String {
    if text.chars().any(char::is_control) {
        text.escape_debug().to_string()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_read_with_units_and_nonsense_is_refused() {
        assert_eq!(parse_age("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_age("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_age("1h 30m"), Ok(Duration::from_secs(5_400)));
        for nonsense in ["", "yesterday", "24", "-1h", "1 parsec"] {
            let err = parse_age(nonsense).unwrap_err();
            assert!(
                err.contains("is not an age such as 24h"),
                "{nonsense}: {err}"
            );
        }
        assert!(
            parse_age("11years")
                .unwrap_err()
                .contains("more than ten years")
        );
    }
}
