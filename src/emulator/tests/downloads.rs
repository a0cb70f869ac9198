//! Download routes: signatures, ranges, metadata, deletion, retention.

use reqwest::Method;
use sha2::{Digest, Sha256};

use super::*;
use crate::emulator::RequestRecord;

#[tokio::test]
async fn a_signed_get_without_range_is_200_with_the_whole_media() {
    let emulator = start().await;
    let media = synthetic(300_000);
    let urls = emulator.add_document(spec("doc-full", media.clone()));
    let response = signed_get(&emulator, &urls.content, None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "content-length").as_deref(),
        Some("300000")
    );
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("video/mp4")
    );
    assert_eq!(header(&response, "accept-ranges").as_deref(), Some("bytes"));
    let (body, broken) = read_body(response).await;
    assert!(!broken);
    assert_eq!(body, media_bytes(&media));
    assert_eq!(
        emulator.media_sha256("doc-full").unwrap(),
        hex::encode(Sha256::digest(&body))
    );
    emulator.stop().await;
}

#[tokio::test]
async fn open_and_closed_ranges_are_206_with_content_range() {
    let emulator = start().await;
    let media = synthetic(1000);
    let urls = emulator.add_document(spec("doc-range", media.clone()));

    let open = signed_get(&emulator, &urls.content, Some("bytes=900-")).await;
    assert_eq!(open.status(), 206);
    assert_eq!(
        header(&open, "content-range").as_deref(),
        Some("bytes 900-999/1000")
    );
    assert_eq!(header(&open, "content-length").as_deref(), Some("100"));
    assert_eq!(open.bytes().await.unwrap(), media.read(900, 1000));

    let closed = signed_get(&emulator, &urls.content, Some("bytes=10-19")).await;
    assert_eq!(closed.status(), 206);
    assert_eq!(
        header(&closed, "content-range").as_deref(),
        Some("bytes 10-19/1000")
    );
    assert_eq!(closed.bytes().await.unwrap(), media.read(10, 20));
    emulator.stop().await;
}

#[tokio::test]
async fn a_range_past_the_end_is_416_with_the_total() {
    let emulator = start().await;
    let urls = emulator.add_document(spec("doc-416", synthetic(1000)));
    let response = signed_get(&emulator, &urls.content, Some("bytes=1000-")).await;
    assert_eq!(response.status(), 416);
    assert_eq!(
        header(&response, "content-range").as_deref(),
        Some("bytes */1000")
    );
    emulator.stop().await;
}

#[tokio::test]
async fn a_gibibyte_document_serves_its_last_bytes_without_generating_the_rest() {
    let emulator = start().await;
    let len = 1u64 << 30;
    let media = synthetic(len);
    let urls = emulator.add_document(spec("doc-gib", media.clone()));
    let response = signed_get(
        &emulator,
        &urls.content,
        Some(&format!("bytes={}-", len - 4096)),
    )
    .await;
    assert_eq!(response.status(), 206);
    assert_eq!(
        header(&response, "content-range"),
        Some(format!("bytes {}-{}/{len}", len - 4096, len - 1))
    );
    assert_eq!(response.bytes().await.unwrap(), media.read(len - 4096, len));
    emulator.stop().await;
}

#[tokio::test]
async fn metadata_is_octet_stream_on_ga_and_preview_routes() {
    let emulator = start().await;
    let urls = emulator.add_document(spec("doc-meta", synthetic(10)));
    let expected = emulator.metadata_bytes("doc-meta").unwrap();
    let preview = emulator
        .endpoint()
        .join("recording/download/doc-meta/metadata")
        .unwrap();
    for url in [&urls.metadata, &preview] {
        let response = signed_get(&emulator, url, None).await;
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(
            header(&response, "content-type").as_deref(),
            Some("application/octet-stream")
        );
        assert_eq!(response.bytes().await.unwrap(), expected);
    }
    let metadata: serde_json::Value = serde_json::from_slice(&expected).unwrap();
    assert_eq!(metadata["chunkDocumentId"], "doc-meta");
    assert_eq!(metadata["callId"], "call-1");
    emulator.stop().await;
}

#[tokio::test]
async fn given_metadata_is_served_byte_for_byte() {
    let emulator = start().await;
    let mut document = spec("doc-given", synthetic(10));
    document.metadata = Some(bytes::Bytes::from_static(b"{\"odd\": true }"));
    let urls = emulator.add_document(document);
    let response = signed_get(&emulator, &urls.metadata, None).await;
    assert_eq!(response.bytes().await.unwrap(), &b"{\"odd\": true }"[..]);
    emulator.stop().await;
}

#[tokio::test]
async fn preview_and_ga_audio_routes_serve_the_media() {
    let emulator = start().await;
    let media = MediaSpec::Bytes(bytes::Bytes::from_static(b"preview media"));
    emulator.add_document(spec("doc-preview", media));
    let endpoint = emulator.endpoint();
    let preview = endpoint.join("recording/download/doc-preview").unwrap();
    let response = signed_get(&emulator, &preview, None).await;
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("video/mp4")
    );
    assert_eq!(response.bytes().await.unwrap(), &b"preview media"[..]);
    let audio = endpoint
        .join("v1/objects/doc-preview/content/audio")
        .unwrap();
    let response = signed_get(&emulator, &audio, None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap(), &b"preview media"[..]);
    emulator.stop().await;
}

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
async fn unknown_documents_are_404() {
    let emulator = start().await;
    let url = emulator
        .endpoint()
        .join("v1/objects/nope/content/video")
        .unwrap();
    let response = signed_get(&emulator, &url, None).await;
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "NotFound");
    emulator.stop().await;
}

#[tokio::test]
async fn a_deleted_document_answers_404_afterwards() {
    let emulator = start().await;
    let urls = emulator.add_document(spec("doc-delete", synthetic(10)));
    assert!(!emulator.is_deleted("doc-delete"));
    let unsigned = http().delete(urls.delete.clone()).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);
    assert!(!emulator.is_deleted("doc-delete"));
    let deleted = signed(&emulator, Method::DELETE, &urls.delete, None)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert!(emulator.is_deleted("doc-delete"));
    for url in [&urls.content, &urls.metadata] {
        assert_eq!(signed_get(&emulator, url, None).await.status(), 404);
    }
    let again = signed(&emulator, Method::DELETE, &urls.delete, None)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    emulator.stop().await;
}

#[tokio::test]
async fn documents_past_retention_answer_404() {
    let emulator = start_with(EmulatorConfig {
        clock_offset: chrono::Duration::hours(47),
        ..config()
    })
    .await;
    let urls = emulator.add_document(spec("doc-old", synthetic(10)));
    assert_eq!(
        signed_get(&emulator, &urls.content, None).await.status(),
        200
    );
    emulator.set_clock_offset(chrono::Duration::hours(49));
    assert_eq!(
        signed_get(&emulator, &urls.content, None).await.status(),
        404
    );
    assert_eq!(
        signed_get(&emulator, &urls.metadata, None).await.status(),
        404
    );

    let mut ancient = spec("doc-ancient", synthetic(10));
    ancient.created_at = chrono::Utc::now() - chrono::Duration::hours(100);
    let urls = emulator.add_document(ancient);
    assert_eq!(
        signed_get(&emulator, &urls.content, None).await.status(),
        404
    );
    emulator.stop().await;
}

#[tokio::test]
async fn requests_are_recorded_in_order_with_their_range() {
    let emulator = start().await;
    let urls = emulator.add_document(spec("doc-log", synthetic(100)));
    signed_get(&emulator, &urls.content, Some("bytes=5-")).await;
    signed_get(&emulator, &urls.metadata, None).await;
    http().get(urls.content.clone()).send().await.unwrap();
    assert_eq!(
        emulator.requests(),
        vec![
            RequestRecord {
                method: "GET".into(),
                path: "/v1/objects/doc-log/content/video".into(),
                range: Some("bytes=5-".into()),
                status: 206,
                signed_ok: true,
            },
            RequestRecord {
                method: "GET".into(),
                path: "/v1/objects/doc-log/content/acsmetadata".into(),
                range: None,
                status: 200,
                signed_ok: true,
            },
            RequestRecord {
                method: "GET".into(),
                path: "/v1/objects/doc-log/content/video".into(),
                range: None,
                status: 401,
                signed_ok: false,
            },
        ]
    );
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

#[tokio::test]
async fn callvaults_own_download_client_is_accepted() {
    use crate::acs::{AcsClient, AcsCredentials, UrlGuard};
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
    let content = guard.check(urls.content.as_str()).unwrap();
    let response = client.get(&content, 4000).await.unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(response.bytes().await.unwrap(), media.read(4000, 5000));
    let preview = UrlGuard::preview_url(&credentials.endpoint, "doc-client", true);
    let metadata = client.get(&preview, 0).await.unwrap();
    assert_eq!(
        metadata.bytes().await.unwrap(),
        emulator.metadata_bytes("doc-client").unwrap()
    );
    client
        .delete(&guard.check(urls.delete.as_str()).unwrap())
        .await
        .unwrap();
    assert!(emulator.is_deleted("doc-client"));
    emulator.stop().await;
}
