//! Emulator tests against the real thing: an emulator on 127.0.0.1:0, a real reqwest
//! client signing with `callvault_acs_protocol::signing`, and a real actix webhook for deliveries.

mod control;
mod delivery;
mod downloads;
mod entra;
mod faults;
mod lifecycle;
mod queue;
mod recordings;
mod signatures;
mod subscriber;
mod tls;

use std::net::TcpListener;

use bytes::Bytes;

use super::{DocumentSpec, Emulator, EmulatorConfig, MediaSpec};
use callvault_acs_protocol::signing;

/// The key every test emulator signs with.
const KEY: &[u8] = b"emulator-test-key-0123456789abcd";

fn config() -> EmulatorConfig {
    EmulatorConfig {
        access_key: KEY.to_vec(),
        delivery_retry_delays: vec![std::time::Duration::from_millis(10); 3],
        ..EmulatorConfig::default()
    }
}

async fn start_with(config: EmulatorConfig) -> Emulator {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    Emulator::start(listener, config).await.unwrap()
}

async fn start() -> Emulator {
    start_with(config()).await
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn spec(document_id: &str, media: MediaSpec) -> DocumentSpec {
    DocumentSpec {
        document_id: document_id.into(),
        media,
        metadata: None,
        call_id: "call-1".into(),
        chunk_index: 0,
        created_at: chrono::Utc::now(),
    }
}

fn synthetic(len: u64) -> MediaSpec {
    MediaSpec::Synthetic { len, seed: 11 }
}

/// A request signed for the emulator's host, as callvault's download client signs it.
fn signed(
    emulator: &Emulator,
    method: reqwest::Method,
    url: &url::Url,
    range: Option<&str>,
) -> reqwest::RequestBuilder {
    let host = signing::authority(&emulator.endpoint());
    let date = signing::rfc1123(chrono::Utc::now());
    let headers = signing::sign(method.as_str(), url, b"", &host, KEY, &date);
    let mut request = http()
        .request(method, url.clone())
        .header("x-ms-date", headers.date)
        .header("x-ms-content-sha256", headers.content_sha256)
        .header("x-ms-host", host)
        .header("authorization", headers.authorization);
    if let Some(range) = range {
        request = request.header("range", range);
    }
    request
}

async fn signed_get(emulator: &Emulator, url: &url::Url, range: Option<&str>) -> reqwest::Response {
    signed(emulator, reqwest::Method::GET, url, range)
        .send()
        .await
        .unwrap()
}

/// Reads a body, returning what arrived and whether the stream ended in an error.
async fn read_body(response: reqwest::Response) -> (Vec<u8>, bool) {
    use futures_util::StreamExt;
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => body.extend_from_slice(&chunk),
            Err(_) => return (body, true),
        }
    }
    (body, false)
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().unwrap().to_owned())
}

fn media_bytes(media: &MediaSpec) -> Bytes {
    media.read(0, media.len())
}
