//! `callvault audit flush` and `callvault audit verify`: the audit trail's copy in the store,
//! and both copies of its hash chain checked.

use callvault::audit::store_copy;
use callvault::audit::verify::{self, ChainReport};
use callvault::queue::Db;
use callvault::storage::Archive;

use super::{CliError, ConfigArgs, load_settings};

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Chain the audit inbox and copy the records not yet in the store there now (serve does
    /// both periodically).
    Flush {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Chain the audit inbox, then re-hash the chain in the database and in the store and
    /// compare them; exits 1 on the first broken record, naming its seq.
    Verify {
        #[command(flatten)]
        config: ConfigArgs,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

async fn open(config: &ConfigArgs) -> Result<(Db, Archive), CliError> {
    let settings = load_settings(config)?;
    let db = Db::connect(settings.database.url.expose(), 2)
        .await
        .map_err(|err| CliError::Runtime(format!("{err}; check database.url")))?;
    db.migrate().await.map_err(CliError::runtime)?;
    let storage = settings.storage_settings()?;
    let archive = Archive::open(&storage).await.map_err(CliError::runtime)?;
    Ok((db, archive))
}

pub async fn run(command: AuditCommand) -> Result<(), CliError> {
    match command {
        AuditCommand::Flush { config } => {
            let (db, archive) = open(&config).await?;
            let written = store_copy::flush_all(&db, &archive)
                .await
                .map_err(CliError::runtime)?;
            for object in &written {
                println!(
                    "{} (records {} to {})",
                    object.key, object.first, object.last
                );
            }
            println!(
                "{} object(s) written to {}",
                written.len(),
                archive.description()
            );
            Ok(())
        }
        AuditCommand::Verify { config, json } => {
            let (db, archive) = open(&config).await?;
            // Everything written so far is checked: what waits in the inbox is chained first.
            callvault::audit::chain_pending(&db)
                .await
                .map_err(|err| CliError::Runtime(format!("cannot chain the audit inbox: {err}")))?;
            let report = verify::verify(&db, &archive)
                .await
                .map_err(CliError::runtime)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).map_err(CliError::runtime)?
                );
            } else {
                print_chain("database", &report.database);
                print_chain(&format!("store ({})", archive.description()), &report.store);
                if report.not_yet_copied > 0 {
                    println!(
                        "{} newer record(s) are not in the store yet (copied every audit.flush_interval_secs, or by `callvault audit flush`)",
                        report.not_yet_copied
                    );
                }
                if report.not_yet_chained > 0 {
                    println!(
                        "{} record(s) written meanwhile wait in the audit inbox, not chained yet (serve chains them within seconds)",
                        report.not_yet_chained
                    );
                }
                if report.only_in_store > 0 {
                    println!(
                        "{} record(s) are in the store but no longer in the database",
                        report.only_in_store
                    );
                }
            }
            match report.first_broken() {
                None => Ok(()),
                Some(broken) => Err(CliError::Runtime(format!(
                    "the audit trail is broken at record {}: {}",
                    broken.seq, broken.reason
                ))),
            }
        }
    }
}

fn print_chain(name: &str, report: &ChainReport) {
    let objects = if name == "database" {
        String::new()
    } else {
        format!(" in {} object(s)", report.objects)
    };
    match &report.broken {
        None => println!(
            "{name}: {} record(s){objects}, chain intact through record {}",
            report.records, report.last_seq
        ),
        Some(broken) => println!("{name}: BROKEN at record {}: {}", broken.seq, broken.reason),
    }
}
