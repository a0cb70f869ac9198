//! `callvault call-legs [--conversation ID]` and `callvault call-legs show ID`: the call legs
//! and their recording starts, straight from the database (the same as `/admin/call-legs`).

use callvault::admin::call_legs::{self, CallLegView};
use callvault::queue::Db;

use super::table::{Table, clip};
use super::{CliError, ConfigArgs, load_settings};

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CallLegsArgs {
    #[command(subcommand)]
    action: Option<Action>,
    #[command(flatten)]
    config: ConfigArgs,
    /// Only legs of this conversation (its Base64Url conversationId).
    #[arg(long, value_name = "ID")]
    conversation: Option<String>,
    /// At most this many legs, newest first (1 to 1000).
    #[arg(long, default_value_t = 50)]
    limit: i64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// One leg by row id or call leg id, with its recording start.
    Show {
        id: String,
        #[command(flatten)]
        config: ConfigArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

async fn open(config: &ConfigArgs) -> Result<Db, CliError> {
    let settings = load_settings(config)?;
    let db = Db::connect(settings.database.url.expose(), 2)
        .await
        .map_err(|err| CliError::Runtime(format!("{err}; check database.url")))?;
    db.migrate().await.map_err(CliError::runtime)?;
    Ok(db)
}

fn json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(CliError::runtime)?;
    println!("{text}");
    Ok(())
}

pub async fn run(args: CallLegsArgs) -> Result<(), CliError> {
    match args.action {
        Some(Action::Show {
            id,
            config,
            json: as_json,
        }) => {
            let db = open(&config).await?;
            let leg = call_legs::find(&db, &id)
                .await
                .map_err(CliError::runtime)?
                .ok_or_else(|| CliError::Runtime(format!("no call leg `{id}`")))?;
            if as_json {
                return json(&leg);
            }
            println!("{}", describe(&leg));
            Ok(())
        }
        None => {
            if !(1..=1000).contains(&args.limit) {
                return Err(CliError::Usage(format!(
                    "--limit {} is not between 1 and 1000",
                    args.limit
                )));
            }
            let db = open(&args.config).await?;
            let page = call_legs::page(&db, args.conversation.as_deref(), args.limit, None)
                .await
                .map_err(CliError::runtime)?;
            if args.json {
                return json(&page);
            }
            let mut table = Table::new(&[
                "ID>",
                "CALL LEG",
                "CONVERSATION",
                "STATE",
                "RECORDING",
                "ATTEMPTS>",
                "RECORDING ID / LAST ERROR",
            ]);
            for leg in &page.call_legs {
                let start = &leg.recording;
                let detail = start
                    .recording_id
                    .as_deref()
                    .or(start.last_error.as_deref())
                    .unwrap_or("");
                table.row(vec![
                    leg.id.to_string(),
                    clip(&leg.call_leg_id, 40),
                    // Whole: it is what the preview control API and --conversation take.
                    leg.conversation_id.clone(),
                    leg.state.clone(),
                    start.state.clone(),
                    start.attempts.to_string(),
                    clip(detail, 60),
                ]);
            }
            println!("{}", table.render());
            Ok(())
        }
    }
}

/// The text of `call-legs show`.
fn describe(leg: &CallLegView) -> String {
    let start = &leg.recording;
    let mut lines = vec![
        format!("call leg        {} (row {})", leg.call_leg_id, leg.id),
        format!("conversation    {}", leg.conversation_id),
        format!("state           {} since {}", leg.state, leg.state_changed),
        format!("first seen      {}", leg.first_seen),
        format!(
            "recording       {} after {} attempt(s)",
            start.state, start.attempts
        ),
    ];
    if let Some(id) = &start.recording_id {
        lines.push(format!("recording id    {id}"));
    }
    if let Some(error) = &start.last_error {
        lines.push(format!("last error      {}", clip(error, 200)));
    }
    lines.join("\n")
}
