//! `callvault emulator`: the ACS emulator alone, for users' own integration tests. The first
//! line on stdout is its connection string, so a script can read it and hand it to callvault
//! or an ACS SDK; the unsigned `/emulator/…` control routes (documented on
//! `callvault_emulator`'s control module) add documents, set faults and deliver events.
//! Recording events go to the `--subscribe` webhooks (with Entra ID bearer tokens when
//! `--entra-tenant` is given) and into the `--deliver-to-queue` storage queues.

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use callvault_emulator::{
    Emulator, EmulatorConfig, EntraOptions, QueueDestination, SelfSignedTls, TokenVersion,
};

use super::CliError;

#[derive(Debug, clap::Args)]
pub struct EmulatorArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8090")]
    bind: String,
    /// Access key, base64 (random when absent).
    #[arg(
        long,
        value_name = "KEY",
        env = "CALLVAULT_EMULATOR_ACCESS_KEY",
        hide_env_values = true
    )]
    access_key: Option<String>,
    /// Webhook that receives RecordingFileStatusUpdated (when a recording stops, and from
    /// `POST /emulator/deliver`); repeat for several
    /// (e.g. http://127.0.0.1:8080/api/events?code=SECRET).
    #[arg(long = "subscribe", value_name = "URL")]
    subscribe: Vec<url::Url>,
    /// Azure Storage Queue that every recording event is also put into, one message each, as
    /// an Event Grid storage queue destination does (e.g.
    /// http://127.0.0.1:10001/devstoreaccount1/recordings on Azurite; a SAS may be its query
    /// string); repeat for several.
    #[arg(long = "deliver-to-queue", value_name = "URL")]
    deliver_to_queue: Vec<String>,
    /// Account key (base64) the --deliver-to-queue queues are signed with (Shared Key);
    /// Azurite's devstoreaccount1 needs none.
    #[arg(
        long,
        value_name = "KEY",
        env = "CALLVAULT_EMULATOR_QUEUE_ACCOUNT_KEY",
        hide_env_values = true
    )]
    queue_account_key: Option<String>,
    /// SAS token (with the `a`dd permission) for the --deliver-to-queue queues, instead of
    /// an account key.
    #[arg(
        long,
        value_name = "SAS",
        env = "CALLVAULT_EMULATOR_QUEUE_SAS",
        hide_env_values = true
    )]
    queue_sas: Option<String>,
    /// Entra ID tenant (GUID or domain) whose bearer tokens every webhook delivery, the
    /// handshake included, carries; the keys that verify them are served at
    /// /TENANT/discovery/v2.0/keys (for ingest.entra.keys_url). Needs --entra-audience.
    #[arg(long, value_name = "TENANT", requires = "entra_audience")]
    entra_tenant: Option<String>,
    /// The tokens' audience: the webhook app's application id URI or client id.
    #[arg(long, value_name = "AUDIENCE", requires = "entra_tenant")]
    entra_audience: Option<String>,
    /// Give the tokens the AzureEventGridSecureWebhookSubscriber role (ingest.entra.require_role).
    #[arg(long, requires = "entra_tenant")]
    entra_role: bool,
    /// Access token version: 2 (issuer login.microsoftonline.com/TENANT/v2.0) or 1
    /// (sts.windows.net/TENANT/).
    #[arg(long, value_name = "VERSION", default_value = "2", value_parser = ["1", "2"], requires = "entra_tenant")]
    entra_token_version: String,
    /// Longest media of one recording chunk, in seconds (ACS: 4 hours).
    #[arg(long, value_name = "SECONDS", default_value_t = 4 * 60 * 60)]
    chunk_max_seconds: u64,
    /// Seconds between stopping a recording and announcing its files (ACS: minutes).
    #[arg(long, value_name = "SECONDS", default_value_t = 3.0)]
    file_ready_delay: f64,
    /// Media seconds recorded per wall-clock second, to record long calls quickly.
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0)]
    time_scale: f64,
    /// Serve HTTPS with a self-signed certificate made at start, for Microsoft's SDKs, which
    /// build https:// URLs from a connection string whatever its scheme. The certificate's
    /// path is printed on stderr; see docs/operations.md for how to trust it.
    #[arg(long)]
    tls: bool,
    /// Where --tls writes its certificate, PEM (default: callvault-emulator-PORT.pem in the
    /// system's temporary folder).
    #[arg(long, value_name = "PATH", requires = "tls")]
    tls_certificate: Option<PathBuf>,
}

pub async fn run(args: EmulatorArgs) -> Result<(), CliError> {
    if !(args.time_scale > 0.0 && args.file_ready_delay >= 0.0 && args.chunk_max_seconds > 0) {
        return Err(CliError::Usage(
            "--time-scale and --chunk-max-seconds must be positive and --file-ready-delay not negative".into(),
        ));
    }
    let mut config = EmulatorConfig::default();
    config.recording.chunk_max_duration = std::time::Duration::from_secs(args.chunk_max_seconds);
    config.recording.file_ready_delay = std::time::Duration::from_secs_f64(args.file_ready_delay);
    config.recording.time_scale = args.time_scale;
    if let Some(key) = &args.access_key {
        config.access_key = STANDARD
            .decode(key.trim())
            .ok()
            .filter(|key| !key.is_empty())
            .ok_or_else(|| {
                CliError::Usage(
                    "--access-key is not a non-empty base64 string; pass e.g. the output of `openssl rand -base64 32`".into(),
                )
            })?;
    }
    config.entra = entra_options(&args)?;
    let queues = queue_destinations(&args)?;
    callvault::telemetry::init(&callvault::config::LogSettings {
        format: String::new(),
        level: "info".into(),
    });
    let listener = TcpListener::bind(&args.bind).map_err(|err| {
        CliError::Runtime(format!(
            "cannot listen on {}: {err}; choose another address with --bind",
            args.bind
        ))
    })?;
    let emulator = if args.tls {
        let port = listener.local_addr().map_err(CliError::runtime)?.port();
        let tls = self_signed(&args.bind)?;
        let path = args.tls_certificate.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("callvault-emulator-{port}.pem"))
        });
        std::fs::write(&path, tls.certificate_pem()).map_err(|err| {
            CliError::Runtime(format!(
                "cannot write the TLS certificate to {}: {err}; choose another path with --tls-certificate",
                path.display()
            ))
        })?;
        eprintln!(
            "TLS certificate (self-signed, made for this run): {}",
            path.display()
        );
        Emulator::start_tls(listener, config, tls).await
    } else {
        Emulator::start(listener, config).await
    }
    .map_err(CliError::runtime)?;
    emulator.set_subscribers(args.subscribe);
    for queue in &queues {
        eprintln!("Recording events are also put into the storage queue {queue}");
    }
    emulator.set_queue_destinations(queues);
    if let Some(keys_url) = emulator.entra_keys_url() {
        eprintln!("Entra ID signing keys (for ingest.entra.keys_url): {keys_url}");
    }
    // The connection string is this command's output, read by scripts: first line, flushed.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", emulator.connection_string())
        .and_then(|()| stdout.flush())
        .map_err(CliError::runtime)?;
    drop(stdout);
    wait_for_signal().await;
    emulator.stop().await;
    Ok(())
}

/// The Entra tokens asked for, checked before anything starts.
fn entra_options(args: &EmulatorArgs) -> Result<Option<EntraOptions>, CliError> {
    let (Some(tenant), Some(audience)) = (&args.entra_tenant, &args.entra_audience) else {
        return Ok(None);
    };
    let options = EntraOptions {
        event_grid_role: args.entra_role,
        token_version: if args.entra_token_version == "1" {
            TokenVersion::V1
        } else {
            TokenVersion::V2
        },
        ..EntraOptions::new(tenant.trim(), audience.trim())
    };
    options
        .validate()
        .map_err(|err| CliError::Usage(format!("--entra-tenant/--entra-audience: {err}")))?;
    Ok(Some(options))
}

/// The queues of --deliver-to-queue with their credential, checked before anything starts.
fn queue_destinations(args: &EmulatorArgs) -> Result<Vec<QueueDestination>, CliError> {
    if args.queue_account_key.is_some() && args.queue_sas.is_some() {
        return Err(CliError::Usage(
            "give --queue-account-key or --queue-sas, not both".into(),
        ));
    }
    args.deliver_to_queue
        .iter()
        .map(|url| {
            QueueDestination::new(
                url,
                args.queue_account_key.as_deref(),
                args.queue_sas.as_deref(),
            )
            .map_err(|err| CliError::Usage(format!("--deliver-to-queue: {err}")))
        })
        .collect()
}

/// A certificate for loopback and for the host part of `bind`, when it names one.
fn self_signed(bind: &str) -> Result<SelfSignedTls, CliError> {
    let host = bind
        .rsplit_once(':')
        .map_or(bind, |(host, _)| host)
        .trim_matches(['[', ']']);
    let extra = match host {
        "" | "0.0.0.0" | "::" => vec![],
        host => vec![host.to_owned()],
    };
    SelfSignedTls::generate(&extra).map_err(CliError::runtime)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
