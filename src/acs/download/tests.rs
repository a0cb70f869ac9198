use std::net::TcpListener as StdListener;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::acs::Fetch;

const DOC: &str = "doc-1";

fn client(endpoint: &str, allow_http: bool) -> (AcsClient, UrlGuard) {
    let credentials = AcsCredentials::new(endpoint, "aGVsbG8=").unwrap();
    let guard = UrlGuard::new(&[], &credentials.endpoint, allow_http);
    let client = AcsClient::new(credentials, guard.clone(), Duration::from_secs(5)).unwrap();
    (client, guard)
}

/// Answers one request with 500 and a 100 MiB body, writing until the client hangs up;
/// returns how many body bytes it managed to write.
async fn huge_error_server(listener: tokio::net::TcpListener) -> u64 {
    let (mut socket, _) = listener.accept().await.unwrap();
    let mut request = vec![0; 4096];
    let _ = socket.read(&mut request).await.unwrap();
    let head = "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\ncontent-length: 104857600\r\n\r\n";
    socket.write_all(head.as_bytes()).await.unwrap();
    let piece = vec![b'x'; 64 * 1024];
    let mut written = 0u64;
    while written < 100 * 1024 * 1024 {
        match socket.write_all(&piece).await {
            Ok(()) => written += piece.len() as u64,
            Err(_) => break,
        }
    }
    written
}

#[tokio::test]
async fn an_error_answer_with_a_100_mib_body_is_read_only_up_to_64_kib() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/", listener.local_addr().unwrap());
    let server = tokio::spawn(huge_error_server(listener));
    let (client, guard) = client(&endpoint, true);
    let url = guard
        .ga_download(
            &format!("{endpoint}v1/objects/{DOC}/content/video"),
            Fetch::Media,
            DOC,
        )
        .unwrap();

    match client.get(&url, 0).await {
        Err(AcsError::Status { status, message }) => {
            assert_eq!(status, 500);
            assert_eq!(message, "x".repeat(200));
        }
        other => panic!("expected a 500, got {other:?}"),
    }
    let written = tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .expect("the client hung up")
        .unwrap();
    // Whatever the socket buffers absorbed, far from the 100 MiB a full read would take.
    assert!(written < 16 * 1024 * 1024, "server wrote {written} bytes");
}

#[tokio::test]
async fn a_host_resolving_to_loopback_is_refused_before_any_connection() {
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    // `localhost` is the ACS endpoint here, so the guard lets its URLs through.
    let endpoint = format!("https://localhost:{port}/");
    let (client, guard) = client(&endpoint, false);
    let url = guard
        .ga_download(
            &format!("{endpoint}v1/objects/{DOC}/content/video"),
            Fetch::Media,
            DOC,
        )
        .unwrap();

    let err = client.get(&url, 0).await.unwrap_err().to_string();
    assert!(err.contains("resolves only to refused addresses"), "{err}");
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "no connection may reach the listener"
    );
}

/// Answers every request with `answer(method, path)`, one request per connection, and
/// records the `METHOD path` lines it saw.
fn scripted_server(
    listener: tokio::net::TcpListener,
    answer: fn(&str, &str) -> String,
) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = vec![0; 8192];
            let read = socket.read(&mut head).await.unwrap();
            let head = String::from_utf8_lossy(&head[..read]).into_owned();
            let mut words = head.split_whitespace();
            let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            log.lock().unwrap().push(format!("{method} {path}"));
            let _ = socket.write_all(answer(method, path).as_bytes()).await;
        }
    });
    seen
}

fn redirect(to: &str) -> String {
    format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )
}

#[tokio::test]
async fn a_get_follows_redirects_only_to_the_same_document() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/", listener.local_addr().unwrap());
    let seen = scripted_server(listener, |_, path| match path {
        "/v1/objects/doc-1/content/video" => redirect("/v1/objects/doc-1/content/video-2"),
        "/v1/objects/doc-1/content/video-2" => {
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok".into()
        }
        _ => redirect("/phoneNumbers?api-version=2022-12-01"),
    });
    let (client, guard) = client(&endpoint, true);
    let fetch = |rest: &str| {
        guard
            .ga_download(
                &format!("{endpoint}v1/objects/{DOC}/{rest}"),
                Fetch::Media,
                DOC,
            )
            .unwrap()
    };

    let response = client.get(&fetch("content/video"), 0).await.unwrap();
    assert_eq!(response.bytes().await.unwrap(), "ok");
    match client.get(&fetch("content/audio"), 0).await {
        Err(AcsError::Status { status: 307, .. }) => {}
        other => panic!("expected the redirect to stop, got {other:?}"),
    }
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "GET /v1/objects/doc-1/content/video",
            "GET /v1/objects/doc-1/content/video-2",
            "GET /v1/objects/doc-1/content/audio",
        ]
    );
}

#[tokio::test]
async fn a_delete_follows_no_redirect() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/", listener.local_addr().unwrap());
    let seen = scripted_server(listener, |_, _| redirect("/v1/objects/doc-1"));
    let (client, guard) = client(&endpoint, true);
    let url = guard
        .ga_delete(
            &format!("{endpoint}v1/objects/{DOC}/content/deletedata"),
            DOC,
        )
        .unwrap();

    assert!(matches!(
        client.delete(&url).await,
        Err(AcsError::Status { status: 307, .. })
    ));
    assert_eq!(
        *seen.lock().unwrap(),
        ["DELETE /v1/objects/doc-1/content/deletedata"]
    );
}

#[tokio::test]
async fn an_error_body_trickled_byte_by_byte_is_cut_at_the_deadline() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = vec![0; 4096];
        let _ = socket.read(&mut request).await.unwrap();
        let head = "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 1048576\r\n\r\n";
        socket.write_all(head.as_bytes()).await.unwrap();
        // One byte every 50 ms: never stalled long enough for a read timeout.
        while socket.write_all(b"x").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let response = reqwest::get(format!("http://{address}/")).await.unwrap();
    let body = tokio::time::timeout(
        Duration::from_secs(5),
        error_body(response, Duration::from_millis(300)),
    )
    .await
    .expect("the read stops at its deadline, not at the end of the body");
    assert!(!body.is_empty() && body.len() < 100, "{} bytes", body.len());
}
