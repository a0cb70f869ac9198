//! The archive against a real Azure Blob emulator (Azurite): `./scripts/test.sh` starts it.

use object_store::path::Path;

use super::scenarios as scenario;
use super::servers::{
    PART, PrivateServer, azure_archive, azure_archive_at, azure_blob_headers, create_container,
    pattern,
};

#[tokio::test]
async fn a_chunk_larger_than_two_parts_streams_to_azure_and_reads_back() {
    let Some((archive, _)) = azure_archive(&[]).await else {
        return;
    };
    scenario::a_chunk_larger_than_two_parts_round_trips(&archive).await;
}

#[tokio::test]
async fn a_small_object_goes_to_azure_in_one_put() {
    let Some((archive, _)) = azure_archive(&[]).await else {
        return;
    };
    scenario::a_small_object_goes_in_one_put(&archive).await;
}

#[tokio::test]
async fn an_aborted_azure_upload_leaves_no_object() {
    let Some((archive, _)) = azure_archive(&[]).await else {
        return;
    };
    scenario::an_aborted_upload_leaves_no_object(&archive).await;
}

#[tokio::test]
async fn a_rerun_on_azure_skips_the_upload_of_an_identical_object() {
    let Some((archive, _)) = azure_archive(&[]).await else {
        return;
    };
    scenario::a_rerun_skips_the_upload_of_an_identical_object(&archive).await;
}

#[tokio::test]
async fn verify_detects_a_tampered_azure_object() {
    let Some((archive, _)) = azure_archive(&[]).await else {
        return;
    };
    scenario::verify_detects_tampering(&archive).await;
}

#[tokio::test]
async fn the_sha256_and_access_tier_reach_azure_on_both_write_paths() {
    for tier in ["Cool", "Archive"] {
        let Some((archive, container)) =
            azure_archive(&[("storage.access_tier", tier.to_owned())]).await
        else {
            return;
        };
        for size in [1000, 2 * PART + 1] {
            let key = Path::from(format!("call/rec/chunk-{size}.mp4"));
            let mut writer = archive.writer(&key).await.unwrap();
            writer.write(pattern(size, 9)).await.unwrap();
            let digest = writer.finish().await.unwrap();
            let headers = azure_blob_headers(&container, &key).await;
            let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
            assert_eq!(header("x-ms-meta-sha256"), Some(digest.sha256.as_str()));
            assert_eq!(header("x-ms-access-tier"), Some(tier), "{size} bytes");
        }
    }
}

#[tokio::test]
async fn an_azure_outage_fails_the_attempt_promptly_and_the_next_attempt_completes() {
    let Some(mut azurite) = PrivateServer::azurite().await else {
        return;
    };
    let endpoint = format!("{}/devstoreaccount1", azurite.endpoint());
    let (archive, container) = azure_archive_at(&endpoint, &[]).await;
    scenario::an_outage_fails_the_attempt_promptly_and_the_retry_completes(
        &archive,
        &mut azurite,
        // Killed, Azurite loses what it had not flushed to disk, the container included.
        async || create_container(&endpoint, &container).await,
    )
    .await;
}

#[tokio::test]
async fn a_metadata_document_on_azure_is_never_replaced() {
    let Some((archive, _)) = azure_archive(&[]).await else {
        return;
    };
    scenario::a_metadata_document_is_never_replaced(&archive).await;
}
