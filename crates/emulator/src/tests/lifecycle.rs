//! A document's end: unknown, deleted, or past retention.

use reqwest::Method;

use super::*;

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
        clock_offset: chrono::Duration::hours(23),
        ..config()
    })
    .await;
    let urls = emulator.add_document(spec("doc-old", synthetic(10)));
    assert_eq!(
        signed_get(&emulator, &urls.content, None).await.status(),
        200
    );
    emulator.set_clock_offset(chrono::Duration::hours(25));
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
