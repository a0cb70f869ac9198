//! Download routes: full bodies, ranges, metadata, the request log.

use sha2::{Digest, Sha256};

use super::*;
use crate::RequestRecord;

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
