//! Building callvault from settings and running its roles: the HTTP side (webhook, probes,
//! admin), the workers, or both, with a graceful shutdown.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::acs::{AcsClient, UrlGuard};
use crate::config::{ConfigError, Settings};
use crate::ingest::{Intake, WebhookAuth, WebhookState};
use crate::metrics::Metrics;
use crate::queue::Db;
use crate::state::AppState;
use crate::storage::{Archive, remove_abandoned_staging_files};
use crate::worker::verifier::Verifier;
use crate::worker::{Worker, WorkerContext, WorkerOptions};

/// Which parts of callvault this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Webhook, admin API and workers.
    All,
    /// Only the HTTP side.
    Ingest,
    /// Only the workers (plus probes and metrics).
    Worker,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Queue(#[from] crate::queue::QueueError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] crate::acs::download::AcsError),
    #[error("cannot set up the event sinks: {0}")]
    Events(String),
    #[error("cannot set up Event Grid pull delivery: {0}")]
    Pull(#[from] crate::ingest::pull::client::PullError),
    #[error("cannot set up storage queue delivery: {0}")]
    StorageQueue(#[from] crate::azure_queue::QueueError),
}

/// The longest a stop spends chaining the audit inbox's last records.
const FINAL_CHAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A started callvault: where it listens, and how to stop it.
pub struct RunningApp {
    /// The bound HTTP address.
    pub addr: SocketAddr,
    pub state: web::Data<AppState>,
    shutdown: CancellationToken,
    tasks: tokio::task::JoinSet<()>,
    server: Option<actix_web::dev::ServerHandle>,
}

impl RunningApp {
    /// Stops accepting requests, lets in-flight ones finish, stops the workers (releasing their jobs).
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.stop(true).await;
        }
        while self.tasks.join_next().await.is_some() {}
        // Nothing writes any more: the inbox's last records are chained now rather than by
        // the next start. Bounded, so an unreachable database does not hold the stop.
        let db = &self.state.db;
        match tokio::time::timeout(FINAL_CHAIN_TIMEOUT, crate::audit::chain_pending(db)).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "cannot chain the audit inbox at stop; the next start chains it")
            }
            Err(_) => tracing::warn!(
                "chaining the audit inbox at stop took too long; the next start chains it"
            ),
        }
        self.state.db.close().await;
    }

    /// Runs until SIGTERM / Ctrl-C, then stops gracefully.
    pub async fn run_until_signalled(self) {
        wait_for_signal().await;
        tracing::info!("shutdown requested; draining");
        self.stop().await;
        tracing::info!("stopped");
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Validates settings, migrates, opens storage and starts the role's parts.
/// `listener` overrides `server.bind` (tests bind port 0).
pub async fn start(
    settings: Settings,
    role: Role,
    listener: Option<TcpListener>,
) -> Result<RunningApp, StartError> {
    settings.validate()?;
    let db = Db::connect(
        settings.database.url.expose(),
        settings.database.max_connections,
    )
    .await?;
    db.migrate().await?;
    let events =
        crate::events::Events::from_settings(&settings.events).map_err(StartError::Events)?;
    // Every write that announces a change writes its events for these sinks.
    let db = db.with_event_routes(events.routes.clone());
    let storage = settings.storage_settings()?;
    let archive = Archive::open(&storage).await?;
    let credentials = settings.acs_credentials()?;
    let guard: UrlGuard = settings.url_guard()?;
    let metrics = Arc::new(Metrics::default());
    let wake = Arc::new(Notify::new());
    let shutdown = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();

    let intake = Intake::new(&settings, db.clone(), metrics.clone(), wake.clone())?
        .with_group_commit(crate::ingest::group_commit::Limits::default());

    if role != Role::Ingest {
        let acs = AcsClient::new(
            credentials.clone(),
            guard.clone(),
            Duration::from_secs(settings.acs.request_timeout_secs),
        )?;
        let ctx = WorkerContext {
            db: db.clone(),
            archive: archive.clone(),
            acs,
            guard: guard.clone(),
            metrics: metrics.clone(),
        };
        let worker = &settings.worker;
        let lease = Duration::from_secs(worker.lease_secs);
        // Only a process that writes the archive clears what a crashed writer left, and only
        // what no live writer can still own: its peers may be writing into the same folder.
        // A live writer touches its file at least once a lease, or once per stalled-download
        // timeout, whichever is longer. In the background: walking a large archive takes a while.
        let staging_period = lease.max(Duration::from_secs(settings.acs.request_timeout_secs));
        let storage = storage.clone();
        let stop = shutdown.clone();
        tasks.spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                removed = remove_abandoned_staging_files(&storage, staging_period) => if let Err(err) = removed {
                    tracing::warn!(error = %err, "could not remove abandoned staging files; they stay until a later start");
                },
            }
        });
        // Uploads whose abort could not reach the store are aborted hourly, once no live
        // lease can own them and well past the longest a writer goes without a sign of life.
        tasks.spawn(crate::worker::uploads::run(
            db.clone(),
            archive.clone(),
            metrics.clone(),
            staging_period * crate::storage::STAGING_FILE_LEASES,
            shutdown.clone(),
        ));
        if settings.verify.bytes_per_hour > 0 {
            let verifier = Verifier::new(
                db.clone(),
                archive.clone(),
                metrics.clone(),
                settings.verify.bytes_per_hour,
                Duration::from_millis(worker.poll_interval_ms),
            );
            tasks.spawn(verifier.run(shutdown.clone()));
        }
        let options = WorkerOptions {
            duration_tolerance_ms: settings.verify.duration_tolerance_ms,
            ..WorkerOptions::from_settings(worker)
        };
        let worker = Worker::new(ctx, options, wake.clone());
        tasks.spawn(worker.run(shutdown.clone()));
        if !events.sinks.is_empty() {
            tasks.spawn(crate::events::run(events, db.clone(), shutdown.clone()));
        }
        if let Some(lock) = archive.object_lock().filter(|_| archive.locks_later()) {
            tasks.spawn(crate::admin::lock_schedule::run(
                db.clone(),
                archive.clone(),
                lock.after_hours,
                shutdown.clone(),
            ));
        }
        // Chunks archived before the participant index existed: indexed once, resumably.
        tasks.spawn(crate::participants::backfill::run_in_background(
            db.clone(),
            shutdown.clone(),
        ));
        if settings.retention.delete_after_days > 0 {
            tasks.spawn(crate::admin::retention::run(
                db.clone(),
                archive.clone(),
                metrics.clone(),
                settings.retention.clone(),
                shutdown.clone(),
            ));
        }
        // The archives' audit records wait in the inbox until chained; chained where written.
        tasks.spawn(crate::audit::inbox::run(
            db.clone(),
            crate::audit::inbox::CHAIN_INTERVAL,
            shutdown.clone(),
        ));
        // The audit copy goes where the archive goes: a process that writes the archive.
        tasks.spawn(crate::audit::store_copy::run(
            db.clone(),
            archive.clone(),
            Duration::from_secs(settings.audit.flush_interval_secs),
            shutdown.clone(),
        ));
        if settings.recording.auto_start {
            let starter = crate::autostart::Starter::new(
                &settings,
                db.clone(),
                metrics.clone(),
                intake.start_wake.clone(),
            )?;
            tasks.spawn(starter.run(shutdown.clone()));
        }
        tasks.spawn(crate::admin::deadline::watch(
            db.clone(),
            settings.admin.deadline_warning_hours,
            shutdown.clone(),
        ));
    }

    if role != Role::Worker {
        match settings.ingest.mode()? {
            crate::config::IngestMode::EventGridPull => {
                let puller =
                    crate::ingest::pull::Puller::new(&settings.ingest.pull, intake.clone())?;
                tasks.spawn(puller.run(shutdown.clone()));
            }
            crate::config::IngestMode::StorageQueue => {
                let consumer = crate::ingest::queue_delivery::QueueConsumer::new(
                    &settings.ingest.queue,
                    intake.clone(),
                )?;
                tasks.spawn(consumer.run(shutdown.clone()));
            }
            crate::config::IngestMode::Webhook => {}
        }
    }

    // Every role purges: an ingest-only deployment fills quarantine too, and the delete is idempotent.
    tasks.spawn(crate::admin::quarantine_purge::run(
        db.clone(),
        settings.admin.quarantine_retention_days,
        shutdown.clone(),
    ));

    let webhook = web::Data::new(WebhookState {
        intake: intake.clone(),
        auth: webhook_auth(&settings.ingest),
        max_body_bytes: settings.server.max_body_bytes,
        body_deadline: crate::ingest::BODY_DEADLINE,
    });
    let export_wake = Arc::new(Notify::new());
    let admin_enabled = crate::admin::auth::any_token(&settings.admin);
    // One export at a time on each replica that serves the admin API, which queues them.
    if role != Role::Worker && admin_enabled && !settings.admin.export_dir.is_empty() {
        let jobs = crate::admin::exports::ExportJobs {
            db: db.clone(),
            archive: archive.clone(),
            dir: settings.admin.export_dir.clone().into(),
            keep_hours: settings.admin.export_keep_hours,
            wake: export_wake.clone(),
        };
        tasks.spawn(jobs.run(shutdown.clone()));
    }
    let state = web::Data::new(AppState {
        settings: settings.clone(),
        db,
        archive,
        intake,
        metrics,
        export_wake,
    });

    let listener = match listener {
        Some(listener) => listener,
        None => TcpListener::bind(&settings.server.bind).map_err(|source| StartError::Bind {
            addr: settings.server.bind.clone(),
            source,
        })?,
    };
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: settings.server.bind.clone(),
        source,
    })?;
    let serve_webhook = role != Role::Worker;
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        let mut app = App::new()
            .wrap(crate::request_log::RequestLog)
            .app_data(app_state.clone())
            .app_data(crate::http_error::json_config())
            .app_data(crate::http_error::query_config())
            .configure(crate::health::configure)
            .configure(crate::admin::scrape::configure);
        if serve_webhook {
            app = app
                .app_data(webhook.clone())
                .configure(crate::ingest::routes::configure)
                .configure(crate::admin::configure(admin_enabled));
        }
        app
    })
    .workers(2)
    .shutdown_timeout(25)
    .disable_signals()
    .listen(listener)
    .map_err(|source| StartError::Bind {
        addr: addr.to_string(),
        source,
    })?
    .run();
    let server_handle = server.handle();
    tasks.spawn(async move {
        if let Err(err) = server.await {
            tracing::error!(error = %err, "HTTP server stopped with an error");
        }
    });
    tracing::info!(%addr, ?role, storage = state.archive.description(), "callvault started");
    Ok(RunningApp {
        addr,
        state,
        shutdown,
        tasks,
        server: Some(server_handle),
    })
}

/// The checks `[ingest]` asks of every webhook delivery.
fn webhook_auth(ingest: &crate::config::IngestSettings) -> WebhookAuth {
    let secret = (!ingest.secret.is_empty()).then(|| ingest.secret.clone());
    let entra = ingest.entra.policy().map(|(policy, keys_url)| {
        let keys = crate::ingest::entra::KeySet::new(keys_url, ENTRA_KEY_REFRESH);
        std::sync::Arc::new(crate::ingest::entra::EntraVerifier::new(policy, keys))
    });
    WebhookAuth {
        secret,
        entra,
        // Only eventgrid_pull mode lets the webhook go unguarded (validation sees to it).
        closed: !ingest.webhook_is_guarded(),
    }
}

/// The least time between two fetches of Entra's keys that tokens naming an unknown key force.
const ENTRA_KEY_REFRESH: std::time::Duration = std::time::Duration::from_secs(60);
