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
