//! The emulator over HTTPS: a client that trusts the generated certificate downloads a
//! signed document; one that does not is refused in the handshake.

use std::net::TcpListener;

use super::{KEY, config, spec, synthetic};
use crate::{Emulator, SelfSignedTls};
use callvault_acs_protocol::signing;

async fn start_tls() -> (Emulator, SelfSignedTls) {
    let tls = SelfSignedTls::generate(&[]).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let emulator = Emulator::start_tls(listener, config(), tls.clone())
        .await
        .unwrap();
    (emulator, tls)
}

fn trusting(tls: &SelfSignedTls) -> reqwest::Client {
    let root = reqwest::Certificate::from_pem(tls.certificate_pem().as_bytes()).unwrap();
    reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([root])
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_client_trusting_the_certificate_downloads_over_https() {
    let (emulator, tls) = start_tls().await;
    assert_eq!(emulator.endpoint().scheme(), "https");
    assert!(
        emulator
            .connection_string()
            .starts_with("endpoint=https://127.0.0.1:")
    );
    let urls = emulator.add_document(spec("doc-tls", synthetic(4096)));
    assert_eq!(urls.content.scheme(), "https");

    let host = signing::authority(&emulator.endpoint());
    let date = signing::rfc1123(chrono::Utc::now());
    let headers = signing::sign("GET", &urls.content, b"", &host, KEY, &date);
    let response = trusting(&tls)
        .get(urls.content.clone())
        .header("x-ms-date", headers.date)
        .header("x-ms-content-sha256", headers.content_sha256)
        .header("x-ms-host", host)
        .header("authorization", headers.authorization)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().len(), 4096);
    emulator.stop().await;
}

#[tokio::test]
async fn a_client_without_the_certificate_is_refused() {
    let (emulator, _tls) = start_tls().await;
    let error = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(emulator.endpoint())
        .send()
        .await
        .expect_err("an untrusted self-signed certificate must fail the handshake");
    assert!(error.is_connect(), "{error:?}");
    emulator.stop().await;
}

#[test]
fn the_certificate_names_loopback_and_the_extra_names() {
    let tls = SelfSignedTls::generate(&["archiver.test".into(), "localhost".into()]).unwrap();
    assert!(
        tls.certificate_pem()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    let der = tls.certificate_der();
    let contains = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
    assert!(contains(b"localhost"));
    assert!(contains(b"archiver.test"));
    assert!(contains(&[127, 0, 0, 1]), "127.0.0.1 is an IP SAN");
}
