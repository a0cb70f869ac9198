//! `callvault demo [--calls N] [--dir DIR]`: the command line; [`scenario`] is what it runs.

mod scenario;

use std::path::PathBuf;
use std::time::Duration;

use scenario::DemoOptions;

use super::CliError;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Calls to record (each with a pause and a resume; the first spans several chunks).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=50))]
    calls: u16,
    /// Folder for the demo's database and archive (its callvault.db and archive/ are replaced on each run).
    #[arg(long, default_value = "./callvault-demo")]
    dir: PathBuf,
    /// Seconds to wait for the archive before giving up.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Also record one call on policy: the emulator establishes its leg (CallLegStateChanged),
    /// callvault starts the recording itself (recording.auto_start), the call ends, and the
    /// recording is archived like the others.
    #[arg(long)]
    auto_start: bool,
}

pub async fn run(args: DemoArgs) -> Result<(), CliError> {
    callvault::telemetry::init(&callvault::config::LogSettings {
        format: "pretty".into(),
        level: "warn".into(),
    });
    let options = DemoOptions {
        calls: usize::from(args.calls),
        dir: args.dir.clone(),
        timeout: Duration::from_secs(args.timeout),
        auto_start: args.auto_start,
        ..DemoOptions::default()
    };
    let rows = scenario::run(&options).await.map_err(CliError::runtime)?;
    println!();
    print!("{}", scenario::table(&rows));
    let archive = args.dir.join("archive");
    println!(
        "\nEvery recording is archived and verified. The files are under {}:",
        archive.display()
    );
    for row in &rows {
        println!(
            "  {}: {}/",
            row.server_call_id,
            archive.join(&row.folder).display()
        );
    }
    println!("Database: {}", args.dir.join("callvault.db").display());
    Ok(())
}
