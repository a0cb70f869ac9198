//! `callvault events …`: the outbox of events, the replay of events whose delivery failed,
//! and enabling a sink a 410 Gone disabled, straight from the database (the same as
//! `/admin/events`).

use callvault::queue::Db;
use callvault::queue::outbox::{self, Replay, RowState};

use super::table::{Table, clip};
use super::{CliError, ConfigArgs, load_settings};

#[derive(Debug, clap::Subcommand)]
pub enum EventsCommand {
    /// Events in the outbox, newest first.
    List {
        #[command(flatten)]
        config: ConfigArgs,
        /// Only events in this state: pending, delivering, delivered, failed.
        #[arg(long, value_name = "S")]
        state: Option<String>,
        /// Only events of this sink.
        #[arg(long)]
        sink: Option<String>,
        /// At most this many events (1 to 500).
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Put failed events back to pending with their attempts reset.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["id", "failed"])))]
    Replay {
        #[command(flatten)]
        config: ConfigArgs,
        /// The outbox row to replay (from `events list`); repeatable.
        #[arg(long)]
        id: Vec<i64>,
        /// Replay every failed event (of `--sink` only, if given).
        #[arg(long)]
        failed: bool,
        /// With `--failed`: only this sink's.
        #[arg(long, requires = "failed")]
        sink: Option<String>,
    },
    /// Send to a sink again after its receiver answered 410 Gone; its pending events follow.
    EnableSink {
        #[command(flatten)]
        config: ConfigArgs,
        /// The sink's name, as in `[[events.sinks]]`.
        name: String,
    },
}

async fn open(config: &ConfigArgs) -> Result<Db, CliError> {
    Ok(open_with_settings(config).await?.1)
}

async fn open_with_settings(
    config: &ConfigArgs,
) -> Result<(callvault::config::Settings, Db), CliError> {
    let settings = load_settings(config)?;
    let db = Db::connect(settings.database.url.expose(), 2)
        .await
        .map_err(|err| CliError::Runtime(format!("{err}; check database.url")))?;
    db.migrate().await.map_err(CliError::runtime)?;
    Ok((settings, db))
}

/// Enables `name`: a disabled sink, or one the settings name (then there is nothing to do).
async fn enable_sink(config: &ConfigArgs, name: &str) -> Result<(), CliError> {
    let (settings, db) = open_with_settings(config).await?;
    let disabled = outbox::disabled_sinks(&db)
        .await
        .map_err(CliError::runtime)?;
    let known = settings.events.sinks.iter().any(|sink| sink.name == name);
    if !known && !disabled.iter().any(|sink| sink.sink == name) {
        let shown: String = name.chars().take(64).collect();
        return Err(CliError::Usage(format!(
            "no sink named `{shown}` in events.sinks, and none disabled by that name"
        )));
    }
    if outbox::enable_sink(&db, name)
        .await
        .map_err(CliError::runtime)?
    {
        // The running service's dispatchers see it at their next poll.
        println!("sink `{name}` enabled; its pending events are delivered from now on");
    } else {
        println!("sink `{name}` was not disabled");
    }
    Ok(())
}

pub async fn run(command: EventsCommand) -> Result<(), CliError> {
    match command {
        EventsCommand::List {
            config,
            state,
            sink,
            limit,
            json,
        } => {
            let state = match state.as_deref().filter(|s| !s.is_empty()) {
                Some(raw) => Some(raw.parse::<RowState>().map_err(CliError::Usage)?),
                None => None,
            };
            if !(1..=500).contains(&limit) {
                return Err(CliError::Usage(format!(
                    "--limit {limit} is not between 1 and 500"
                )));
            }
            let db = open(&config).await?;
            let rows = outbox::list(&db, state, sink.as_deref(), limit, None)
                .await
                .map_err(CliError::runtime)?;
            if json {
                let text = serde_json::to_string_pretty(&rows).map_err(CliError::runtime)?;
                println!("{text}");
                return Ok(());
            }
            let mut table = Table::new(&[
                "ID>",
                "SINK",
                "TYPE",
                "RECORDING>",
                "STATE",
                "ATTEMPTS>",
                "LAST ERROR",
            ]);
            for row in &rows {
                table.row(vec![
                    row.id.to_string(),
                    row.sink.clone(),
                    row.event_type.clone(),
                    row.recording_id.to_string(),
                    row.state.clone(),
                    row.attempts.to_string(),
                    clip(row.last_error.as_deref().unwrap_or(""), 70),
                ]);
            }
            println!("{}", table.render());
            Ok(())
        }
        EventsCommand::Replay {
            config,
            id,
            failed,
            sink,
        } => {
            let which = if failed {
                Replay::Failed { sink }
            } else {
                Replay::Ids(id)
            };
            let db = open(&config).await?;
            let replayed = outbox::replay(&db, &which)
                .await
                .map_err(CliError::runtime)?;
            // The running service's dispatchers pick them up at their next poll.
            println!("replayed {replayed} failed event(s)");
            Ok(())
        }
        EventsCommand::EnableSink { config, name } => enable_sink(&config, &name).await,
    }
}
