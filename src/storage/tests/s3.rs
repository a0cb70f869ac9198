//! The archive against a real S3-compatible server (moto): `./scripts/test.sh` starts it.

use object_store::path::Path;

use super::scenarios as scenario;
use super::servers::{PART, PrivateServer, pattern, s3_archive, s3_archive_at, s3_object_headers};

#[tokio::test]
async fn a_chunk_larger_than_two_parts_streams_to_s3_and_reads_back() {
    let Some((archive, _)) = s3_archive(&[]).await else {
        return;
    };
    scenario::a_chunk_larger_than_two_parts_round_trips(&archive).await;
}

#[tokio::test]
async fn a_small_object_goes_to_s3_in_one_put() {
    let Some((archive, _)) = s3_archive(&[]).await else {
        return;
    };
    scenario::a_small_object_goes_in_one_put(&archive).await;
}

#[tokio::test]
async fn an_aborted_s3_upload_leaves_no_object() {
    let Some((archive, _)) = s3_archive(&[]).await else {
        return;
    };
    scenario::an_aborted_upload_leaves_no_object(&archive).await;
}

#[tokio::test]
async fn a_rerun_on_s3_skips_the_upload_of_an_identical_object() {
    let Some((archive, _)) = s3_archive(&[]).await else {
        return;
    };
    scenario::a_rerun_skips_the_upload_of_an_identical_object(&archive).await;
}

#[tokio::test]
async fn verify_detects_a_tampered_s3_object() {
    let Some((archive, _)) = s3_archive(&[]).await else {
        return;
    };
    scenario::verify_detects_tampering(&archive).await;
}

#[tokio::test]
async fn the_sha256_storage_class_and_encryption_reach_s3_on_both_write_paths() {
    for class in ["STANDARD_IA", "GLACIER"] {
        let Some((archive, bucket)) = s3_archive(&[
            ("storage.storage_class", class.to_owned()),
            ("storage.server_side_encryption", "sse-s3".to_owned()),
        ])
        .await
        else {
            return;
        };
        for size in [1000, 2 * PART + 1] {
            let key = Path::from(format!("call/rec/chunk-{size}.mp4"));
            let mut writer = archive.writer(&key).await.unwrap();
            writer.write(pattern(size, 9)).await.unwrap();
            let digest = writer.finish().await.unwrap();
            let headers = s3_object_headers(&bucket, &key).await;
            let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
            assert_eq!(header("x-amz-meta-sha256"), Some(digest.sha256.as_str()));
            assert_eq!(header("x-amz-storage-class"), Some(class), "{size} bytes");
            assert_eq!(header("x-amz-server-side-encryption"), Some("AES256"));
        }
    }
}

#[tokio::test]
async fn an_s3_outage_fails_the_attempt_promptly_and_the_next_attempt_completes() {
    let Some(mut moto) = PrivateServer::moto().await else {
        return;
    };
    let (archive, bucket) = s3_archive_at(&moto.endpoint(), &[]).await;
    let bucket_url = format!("{}/{bucket}", moto.endpoint());
    scenario::an_outage_fails_the_attempt_promptly_and_the_retry_completes(
        &archive,
        &mut moto,
        // moto keeps its state in memory: the bucket comes back empty with the server.
        async || {
            let created = reqwest::Client::new()
                .put(&bucket_url)
                .send()
                .await
                .unwrap();
            assert!(created.status().is_success());
        },
    )
    .await;
}

#[tokio::test]
async fn a_metadata_document_on_s3_is_never_replaced() {
    let Some((archive, _)) = s3_archive(&[]).await else {
        return;
    };
    scenario::a_metadata_document_is_never_replaced(&archive).await;
}
