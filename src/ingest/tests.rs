//! The webhook against raw TCP clients: what a misbehaving sender can and cannot hold.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::routes::{self, WebhookState};
use super::{Intake, WebhookAuth};
use crate::acs::UrlGuard;
use crate::metrics::Metrics;
use crate::queue::Db;
use crate::secret::Secret;

/// An intake on a fresh SQLite file in `dir`.
async fn intake(dir: &tempfile::TempDir) -> Intake {
    let db = Db::connect(&format!("sqlite://{}/db.sqlite", dir.path().display()), 2)
        .await
        .unwrap();
    db.migrate().await.unwrap();
    intake_on(db)
}

/// An intake with the production defaults (https only, `.asm.skype.com`, 24 h) on `db`.
pub(super) fn intake_on(db: Db) -> Intake {
    let endpoint = url::Url::parse("https://contoso-acs.communication.azure.com/").unwrap();
    Intake {
        db,
        guard: UrlGuard::new(&[".asm.skype.com".to_owned()], &endpoint, false),
        acs_endpoint: endpoint,
        retention: chrono::Duration::hours(24),
        metrics: Arc::new(Metrics::default()),
        wake: Arc::new(tokio::sync::Notify::new()),
        group_commit: None,
        auto_start: false,
        start_wake: Arc::new(tokio::sync::Notify::new()),
    }
}

/// A webhook alone on port 0 with its body deadline set to `deadline`.
async fn webhook(deadline: Duration) -> (std::net::SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let state = web::Data::new(WebhookState {
        intake: intake(&dir).await,
        auth: WebhookAuth::secret(Secret::new("s")),
        max_body_bytes: 4 * 1024 * 1024,
        body_deadline: deadline,
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .configure(routes::configure)
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    (addr, dir)
}

/// Sends `head` and the start of a body, then stalls; answers everything the server sent
/// until it closed the connection (the test fails instead of hanging after 10 s).
async fn stall_after(addr: std::net::SocketAddr, head: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(b"[{\"id\":").await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes a stalled connection")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_408_and_the_connection_closed() {
    let (addr, _dir) = webhook(Duration::from_millis(300)).await;
    let answer = stall_after(
        addr,
        "POST /api/events?code=s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_too_slow"), "{answer}");
}

#[tokio::test]
async fn a_chunked_body_that_stops_arriving_gets_408_at_its_deadline() {
    let (addr, _dir) = webhook(Duration::from_millis(300)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST /api/events?code=s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n[\r\n")
        .await
        .unwrap();
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("a 408 at the deadline")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
}

#[tokio::test]
async fn a_stalled_request_without_the_secret_is_refused_before_its_body() {
    let (addr, _dir) = webhook(Duration::from_secs(3600)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n[")
        .await
        .unwrap();
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("401 without waiting for the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}

/// Collects what a test's subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_delivery_of_many_bad_events_logs_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let intake = intake(&dir).await;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let body = format!("[{}]", vec!["0"; 2_000].join(","));
    let events = super::envelope::parse_body(body.as_bytes()).unwrap();
    let summary = intake.store(events).await.unwrap();
    assert_eq!(summary.quarantined, 2_000);

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("callvault::ingest"))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("quarantined=2000"), "{}", lines[0]);
    assert!(
        lines[0].contains("the element is not a JSON object"),
        "{}",
        lines[0]
    );
}
