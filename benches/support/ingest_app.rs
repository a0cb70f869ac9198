//! The webhook alone (`--role ingest`) on a SQLite queue in `dir`, on a free loopback port,
//! with the secret `bench`. Included by the ingest benches.

use std::net::TcpListener;

use callvault::app::{self, Role, RunningApp};
use callvault::config::Settings;

pub async fn start(dir: &tempfile::TempDir) -> RunningApp {
    let settings = Settings::defaults_with(&[
        (
            "database.url",
            format!("sqlite://{}/bench.db", dir.path().display()),
        ),
        (
            "acs.connection_string",
            "endpoint=https://bench.communication.azure.com/;accesskey=aGVsbG8=".into(),
        ),
        ("ingest.secret", "bench".into()),
        (
            "storage.path",
            dir.path().join("archive").display().to_string(),
        ),
        ("log.level", "error".into()),
    ])
    .unwrap();
    app::start(
        settings,
        Role::Ingest,
        Some(TcpListener::bind("127.0.0.1:0").unwrap()),
    )
    .await
    .unwrap()
}
