//! Request signing: what the emulator refuses, and that callvault's own client passes.

use super::*;

#[tokio::test]
async fn unsigned_and_badly_signed_requests_are_401_denied() {
    let emulator = start().await;
    let urls = emulator.add_document(spec("doc-auth", synthetic(10)));
    let host = signing::authority(&emulator.endpoint());
    let now = signing::rfc1123(chrono::Utc::now());
    let stale = signing::rfc1123(chrono::Utc::now() - chrono::Duration::minutes(20));
    let good = signing::sign("GET", &urls.content, b"", &host, KEY, &now);
    let other_host = signing::sign(
        "GET",
        &urls.content,
        b"",
        "us-storage.asm.skype.com",
        KEY,
        &now,
    );
    let old = signing::sign("GET", &urls.content, b"", &host, KEY, &stale);
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("no headers", vec![]),
        (
            "signed for the storage host",
            vec![
                ("x-ms-date", now.clone()),
                ("x-ms-content-sha256", other_host.content_sha256.clone()),
                ("authorization", other_host.authorization.clone()),
            ],
        ),
        (
            "hash of another body",
            vec![
                ("x-ms-date", now.clone()),
                ("x-ms-content-sha256", signing::content_hash(b"x")),
                ("authorization", good.authorization.clone()),
            ],
        ),
        (
            "tampered signature",
            vec![
                ("x-ms-date", now.clone()),
                ("x-ms-content-sha256", good.content_sha256.clone()),
                (
                    "authorization",
                    good.authorization.replace("Signature=", "Signature=AA"),
                ),
            ],
        ),
        (
            "date 20 minutes old",
            vec![
                ("x-ms-date", stale.clone()),
                ("x-ms-content-sha256", old.content_sha256.clone()),
                ("authorization", old.authorization.clone()),
            ],
        ),
    ];
    for (case, headers) in cases {
        let mut request = http().get(urls.content.clone());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{case}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "Denied", "{case}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let requests = emulator.requests();
    assert_eq!(requests.len(), 5);
    assert!(requests.iter().all(|r| !r.signed_ok && r.status == 401));
    emulator.stop().await;
}

#[tokio::test]
async fn callvaults_own_download_client_is_accepted() {
    use crate::acs::{AcsClient, AcsCredentials, Fetch, UrlGuard};
    let emulator = start().await;
    let media = synthetic(5000);
    let urls = emulator.add_document(spec("doc-client", media.clone()));
    let credentials = AcsCredentials::parse(&emulator.connection_string()).unwrap();
    let guard = UrlGuard::new(&[], &credentials.endpoint, true);
    let client = AcsClient::new(
        credentials.clone(),
        guard.clone(),
        std::time::Duration::from_secs(10),
    )
    .unwrap();
    let content = guard
        .ga_download(urls.content.as_str(), Fetch::Media, "doc-client")
        .unwrap();
    let response = client.get(&content, 4000).await.unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(response.bytes().await.unwrap(), media.read(4000, 5000));
    let preview = guard
        .preview(&credentials.endpoint, "doc-client", Fetch::Metadata)
        .unwrap();
    let metadata = client.get(&preview, 0).await.unwrap();
    assert_eq!(
        metadata.bytes().await.unwrap(),
        emulator.metadata_bytes("doc-client").unwrap()
    );
    client
        .delete(&guard.ga_delete(urls.delete.as_str(), "doc-client").unwrap())
        .await
        .unwrap();
    assert!(emulator.is_deleted("doc-client"));
    emulator.stop().await;
}

#[tokio::test]
async fn the_connection_string_names_the_endpoint_and_key() {
    let emulator = start().await;
    let credentials = crate::acs::AcsCredentials::parse(&emulator.connection_string()).unwrap();
    assert_eq!(credentials.endpoint, emulator.endpoint());
    assert_eq!(credentials.key(), KEY);
    assert_eq!(emulator.endpoint().path(), "/");
    assert_eq!(emulator.endpoint().host_str(), Some("127.0.0.1"));
    emulator.stop().await;
}
