//! `callvault serve` and `callvault migrate`.

use callvault::app::{self, Role};
use callvault::queue::Db;

use super::{CliError, ConfigArgs, load_settings};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// all: webhook + admin + workers; ingest: only HTTP; worker: only workers.
    #[arg(long, value_enum, default_value = "all")]
    role: Role,
}

pub async fn serve(args: ServeArgs) -> Result<(), CliError> {
    let settings = load_settings(&args.config)?;
    callvault::telemetry::init(&settings.log);
    let running = app::start(settings, args.role, None).await?;
    running.run_until_signalled().await;
    Ok(())
}

pub async fn migrate(args: ConfigArgs) -> Result<(), CliError> {
    let settings = load_settings(&args)?;
    callvault::telemetry::init(&settings.log);
    let db = Db::connect(settings.database.url.expose(), 1)
        .await
        .map_err(CliError::runtime)?;
    db.migrate().await.map_err(CliError::runtime)?;
    eprintln!("callvault: migrations applied");
    Ok(())
}
