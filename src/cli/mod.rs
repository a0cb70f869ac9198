//! Command-line parsing and dispatch. Errors print as one sentence on stderr; exit codes are
//! 0 ok, 1 runtime failure, 2 usage or configuration error.

mod audit;
mod call_legs;
mod completions;
mod config;
mod dead_letters;
mod demo;
mod emulator;
mod erase;
mod events;
mod export;
mod keys;
mod man;
mod ops;
mod participants;
mod recording;
mod serve;
mod storage;
mod table;
mod verify;
mod verify_signatures;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "callvault",
    version,
    about = "Archives Azure Communication Services call recordings before ACS deletes them"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the webhook, admin API and workers (or one role of them).
    Serve(serve::ServeArgs),
    /// Apply database migrations and exit.
    Migrate(ConfigArgs),
    /// Check the configuration: `config check` validates it and prints the effective values.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Operator view of jobs, and replay of failed or expired ones.
    #[command(subcommand)]
    Jobs(ops::JobsCommand),
    /// Operator view of the event outbox, and replay of events whose delivery failed.
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// Operator view of recordings: chunks, states, object keys, deadline.
    #[command(subcommand)]
    Recordings(ops::RecordingsCommand),
    /// Call legs announced by CallLegStateChanged and their recording starts
    /// (`call-legs show ID` for one).
    CallLegs(call_legs::CallLegsArgs),
    /// The recordings a participant is in, and the participant index's backfill.
    #[command(subcommand)]
    Participants(participants::ParticipantsCommand),
    /// Maintenance of the archive's store: `storage cleanup` aborts incomplete uploads.
    #[command(subcommand)]
    Storage(storage::StorageCommand),
    /// Erase a recording (or all of a participant's): delete its objects, leave a tombstone.
    Erase(erase::EraseArgs),
    /// The retention policy: `retention plan` shows what its next run erases.
    #[command(subcommand)]
    Retention(erase::RetentionCommand),
    /// The audit trail: `audit flush` copies it to the store, `audit verify` checks its chain.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Re-read archived objects and check sizes and sha256 against the manifests.
    Verify(verify::VerifyArgs),
    /// Feed the events Event Grid dead-lettered (blobs in a container, bucket or folder)
    /// through the intake; dedup makes a re-import harmless.
    ImportDeadLetters(dead_letters::ImportArgs),
    /// A tar of a participant's recordings (or recordings by id) for an access request, with
    /// index.json and SHA256SUMS; an interrupted export continues when run again.
    Export(export::ExportArgs),
    /// Manifest signing keys: `keys generate` prints a new key pair.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Drive the ACS recording control API (GA by default, --preview for the 2021 API).
    Recording(recording::RecordingArgs),
    /// Base64Url-encode a conversationUrl into a conversationId (2021 preview API).
    ConversationId {
        /// The client's conversationUrl.
        url: String,
    },
    /// The whole system on this machine: emulator, archiver, recorded calls, verified archive.
    Demo(demo::DemoArgs),
    /// Run the ACS emulator alone; prints its connection string first.
    Emulator(emulator::EmulatorArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish) on stdout.
    Completions(completions::CompletionsArgs),
    /// Print the manual page (roff) on stdout.
    Man,
}

/// `--config FILE`, shared by every command that reads settings.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// Configuration file (TOML); environment CALLVAULT__SECTION__KEY overrides it.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// A failure with the exit code it deserves.
#[derive(Debug)]
pub enum CliError {
    /// Bad usage or configuration: exit 2.
    Usage(String),
    /// Something failed at run time: exit 1.
    Runtime(String),
}

impl CliError {
    pub fn runtime(err: impl std::fmt::Display) -> Self {
        CliError::Runtime(err.to_string())
    }
}

impl From<callvault::config::ConfigError> for CliError {
    fn from(err: callvault::config::ConfigError) -> Self {
        CliError::Usage(err.to_string())
    }
}

impl From<callvault::app::StartError> for CliError {
    fn from(err: callvault::app::StartError) -> Self {
        match err {
            callvault::app::StartError::Config(err) => CliError::Usage(err.to_string()),
            other => CliError::Runtime(other.to_string()),
        }
    }
}

/// Loads and validates settings from `--config` and the environment.
pub fn load_settings(args: &ConfigArgs) -> Result<callvault::config::Settings, CliError> {
    if let Some(path) = &args.config
        && !path.exists()
    {
        return Err(CliError::Usage(format!(
            "configuration file {} does not exist",
            path.display()
        )));
    }
    Ok(callvault::config::Settings::load(
        args.config.as_deref(),
        &[],
    )?)
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("callvault: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(message)) => {
            eprintln!("callvault: {message}");
            ExitCode::from(2)
        }
        Err(CliError::Runtime(message)) => {
            eprintln!("callvault: {message}");
            ExitCode::from(1)
        }
    }
}

async fn dispatch(command: Command) -> Result<(), CliError> {
    match command {
        Command::Serve(args) => serve::serve(args).await,
        Command::Migrate(args) => serve::migrate(args).await,
        Command::Config(command) => config::run(command),
        Command::Jobs(command) => ops::jobs(command).await,
        Command::Events(command) => events::run(command).await,
        Command::Recordings(command) => ops::recordings(command).await,
        Command::CallLegs(args) => call_legs::run(args).await,
        Command::Participants(command) => participants::run(command).await,
        Command::Storage(command) => storage::run(command).await,
        Command::Erase(args) => erase::erase(args).await,
        Command::Retention(command) => erase::retention(command).await,
        Command::Audit(command) => audit::run(command).await,
        Command::Verify(args) => verify::verify(args).await,
        Command::ImportDeadLetters(args) => dead_letters::run(args).await,
        Command::Export(args) => export::run(args).await,
        Command::Keys(command) => keys::run(command),
        Command::Recording(args) => recording::run(args).await,
        Command::ConversationId { url } => {
            recording::print_conversation_id(&url);
            Ok(())
        }
        Command::Demo(args) => demo::run(args).await,
        Command::Emulator(args) => emulator::run(args).await,
        Command::Completions(args) => completions::run(args),
        Command::Man => man::run(),
    }
}
