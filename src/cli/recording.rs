//! `callvault recording start|state|pause|resume|stop` and `callvault conversation-id`.

use callvault::acs::AcsCredentials;
use callvault::acs::control::{CallLocator, RecordingControl, StartOptions, conversation_id};

use super::{CliError, ConfigArgs};

#[derive(Debug, clap::Args)]
pub struct RecordingArgs {
    #[command(subcommand)]
    action: Action,
    #[command(flatten)]
    target: Target,
}

/// Where ACS is and which API generation to speak.
#[derive(Debug, clap::Args)]
struct Target {
    #[command(flatten)]
    config: ConfigArgs,
    /// ACS connection string; defaults to acs.connection_string from the configuration.
    #[arg(
        long,
        global = true,
        env = "CALLVAULT__ACS__CONNECTION_STRING",
        hide_env_values = true
    )]
    connection_string: Option<String>,
    /// Use the 2021 preview API (/conversations/{conversationId}/recordings).
    #[arg(long, global = true, requires = "conversation_id")]
    preview: bool,
    /// Base64Url conversationId (preview API); see `callvault conversation-id`.
    #[arg(long, global = true)]
    conversation_id: Option<String>,
    /// GA api-version to send.
    #[arg(long, global = true, default_value = callvault::acs::control::GA_API_VERSION)]
    api_version: String,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Start recording a call; prints the recording id.
    Start {
        /// serverCallId of the call (GA API).
        #[arg(long, required_unless_present = "preview")]
        server_call_id: Option<String>,
        /// Where ACS posts RecordingStateChanged (callvault's /api/recording-state?code=…).
        #[arg(long)]
        callback: Option<String>,
        /// audio or audioVideo.
        #[arg(long)]
        content: Option<String>,
        /// mixed or unmixed.
        #[arg(long)]
        channel: Option<String>,
        /// mp3, mp4 or wav.
        #[arg(long)]
        format: Option<String>,
        /// Start paused.
        #[arg(long)]
        pause_on_start: bool,
        /// Repeatability-Request-ID: repeating a start with the same id is harmless.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// Print the recording's state.
    State { recording_id: String },
    /// Pause the recording.
    Pause { recording_id: String },
    /// Resume a paused recording.
    Resume { recording_id: String },
    /// Stop the recording (its files are announced later by Event Grid).
    Stop { recording_id: String },
}

pub async fn run(args: RecordingArgs) -> Result<(), CliError> {
    let target = &args.target;
    let credentials = match &target.connection_string {
        Some(connection_string) => AcsCredentials::parse(connection_string)
            .map_err(|err| CliError::Usage(format!("--connection-string: {err}")))?,
        None => {
            let settings = callvault::config::Settings::load(target.config.config.as_deref(), &[])?;
            settings.acs_credentials()?
        }
    };
    let client = RecordingControl::new(credentials)
        .map_err(CliError::runtime)?
        .with_api_version(&target.api_version);
    let locator = |server_call_id: Option<&String>| match (&target.conversation_id, server_call_id)
    {
        (Some(conversation), _) if target.preview => {
            CallLocator::Conversation(conversation.clone())
        }
        (_, Some(server_call_id)) => CallLocator::ServerCall(server_call_id.clone()),
        _ => CallLocator::ServerCall(String::new()),
    };
    match args.action {
        Action::Start {
            server_call_id,
            callback,
            content,
            channel,
            format,
            pause_on_start,
            request_id,
        } => {
            let options = StartOptions {
                recording_state_callback_uri: callback,
                recording_content_type: content,
                recording_channel_type: channel,
                recording_format_type: format,
                pause_on_start,
                operation_context: None,
                repeatability_request_id: request_id,
                repeatability_first_sent: None,
            };
            let status = client
                .start(&locator(server_call_id.as_ref()), &options)
                .await
                .map_err(CliError::runtime)?;
            println!(
                "{}",
                serde_json::to_string(&status).expect("status serialises")
            );
        }
        Action::State { recording_id } => {
            let status = client
                .state(&locator(None), &recording_id)
                .await
                .map_err(CliError::runtime)?;
            println!(
                "{}",
                serde_json::to_string(&status).expect("status serialises")
            );
        }
        Action::Pause { recording_id } => {
            client
                .pause(&locator(None), &recording_id)
                .await
                .map_err(CliError::runtime)?;
            eprintln!("paused {recording_id}");
        }
        Action::Resume { recording_id } => {
            client
                .resume(&locator(None), &recording_id)
                .await
                .map_err(CliError::runtime)?;
            eprintln!("resumed {recording_id}");
        }
        Action::Stop { recording_id } => {
            client
                .stop(&locator(None), &recording_id)
                .await
                .map_err(CliError::runtime)?;
            eprintln!("stopped {recording_id}");
        }
    }
    Ok(())
}

/// `callvault conversation-id URL`.
pub fn print_conversation_id(url: &str) {
    println!("{}", conversation_id(url));
}
