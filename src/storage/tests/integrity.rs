//! The store's own checksums: S3's whole-object SHA-256 read back through boto3, Azure's
//! Content-MD5, and `verify --fast` judging them against the manifest with HEADs alone.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use md5::{Digest, Md5};
use object_store::ObjectStoreExt;
use object_store::path::Path;

use super::scenarios::manifest_of;
use super::servers::{
    PART, S3_CREDENTIALS, azure_archive, azure_blob_headers, pattern, s3_archive, s3_endpoint,
    s3_object_headers, storage_settings, write_in_pieces,
};
use crate::storage::verify::{Depth, Status, verify_recording_to};
use crate::storage::{Archive, ObjectDigest};

/// What boto3 reports for one object, read with checksum validation on.
#[derive(Debug, serde::Deserialize)]
struct Boto3Read {
    key: String,
    checksum_sha256: Option<String>,
    get_checksum_sha256: Option<String>,
    bytes: u64,
}

/// Runs `s3_checksum.py` for `keys` and returns what it read.
fn read_with_boto3(bucket: &str, keys: &[&Path]) -> Vec<Boto3Read> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/storage/tests/s3_checksum.py"
    );
    let output = std::process::Command::new("python3")
        .arg(script)
        .arg(s3_endpoint().unwrap())
        .arg(bucket)
        .args(keys.iter().map(|key| key.to_string()))
        .output()
        .expect("python3 runs (boto3 comes with moto)");
    assert!(
        output.status.success(),
        "boto3 could not read the objects back: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn base64_of_hex(hex_digest: &str) -> String {
    BASE64.encode(hex::decode(hex_digest).unwrap())
}

/// A multipart object of several parts ends with a whole-object ChecksumSHA256 (not the
/// parts' composite `…-N`) equal to the sha256 the manifest records, and boto3 validates the
/// body against it. Without `x-amz-checksum-algorithm` on the copy, moto keeps the composite.
#[tokio::test]
async fn a_multipart_s3_object_carries_a_whole_object_sha256_equal_to_the_manifest() {
    let Some((archive, bucket)) = s3_archive(&[]).await else {
        return;
    };
    let key = Path::from("call/rec/chunk-0001.wav");
    let mut writer = archive.writer(&key).await.unwrap();
    write_in_pieces(&mut writer, &pattern(3 * PART + 7, 4)).await;
    assert!(writer.is_multipart());
    let digest = writer.finish().await.unwrap();

    let reads = read_with_boto3(&bucket, &[&key]);
    assert_eq!(reads[0].key, digest.key);
    assert_eq!(reads[0].bytes, digest.bytes);
    let expected = base64_of_hex(&digest.sha256);
    assert_eq!(
        reads[0].checksum_sha256.as_deref(),
        Some(expected.as_str()),
        "HeadObject's ChecksumSHA256 (a composite `…-N` means the copy did not ask for the whole object's SHA-256)"
    );
    assert_eq!(
        reads[0].get_checksum_sha256.as_deref(),
        Some(expected.as_str())
    );
}

/// A single put (media below one part, a metadata document) sends `x-amz-checksum-sha256`
/// with the manifest's sha256 and `x-amz-sdk-checksum-algorithm: SHA256`, without which some
/// S3-compatible stores (moto 5.2.1) check the checksum but keep none. Checked where the
/// headers leave: at a server that records requests.
#[tokio::test]
async fn a_single_s3_put_sends_the_manifests_sha256_as_its_checksum() {
    let (endpoint, requests) = recording_s3_server().await;
    let settings = storage_settings(&[
        ("storage.kind", "s3".to_owned()),
        ("storage.bucket", "recorded".to_owned()),
        ("storage.endpoint", endpoint),
        ("storage.region", "us-east-1".to_owned()),
    ]);
    let archive = Archive::open_with(&settings, S3_CREDENTIALS).await.unwrap();
    let media = Path::from("call/rec/chunk-0000.wav");
    let mut writer = archive.writer(&media).await.unwrap();
    writer.write(pattern(1000, 3)).await.unwrap();
    let media_digest = writer.finish().await.unwrap();
    let document = Path::from("call/rec/chunk-0000.metadata.json");
    let document_digest = archive
        .put_bytes_once(&document, Bytes::from_static(b"{\"chunk\":0}"))
        .await
        .unwrap();

    let puts: Vec<_> = requests
        .lock()
        .unwrap()
        .iter()
        .filter(|request| request.starts_with("PUT "))
        .cloned()
        .collect();
    assert_eq!(puts.len(), 2, "{puts:?}");
    for (put, digest) in puts.iter().zip([&media_digest, &document_digest]) {
        let checksum = format!("x-amz-checksum-sha256: {}", base64_of_hex(&digest.sha256));
        for expected in [checksum.as_str(), "x-amz-sdk-checksum-algorithm: SHA256"] {
            assert!(
                put.to_ascii_lowercase()
                    .contains(&expected.to_ascii_lowercase()),
                "{expected} missing from {put}"
            );
        }
    }
}

/// A plain HTTP server that records each request's head and answers a PUT with 200 and an
/// ETag, anything else with 404.
async fn recording_s3_server() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorded = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let recorded = recorded.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                loop {
                    let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                        let mut more = [0u8; 4096];
                        match stream.read(&mut more).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&more[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
                    let length: usize = head
                        .lines()
                        .find_map(|line| {
                            let (name, value) = line.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    while buffer.len() < end + 4 + length {
                        let mut more = [0u8; 65536];
                        match stream.read(&mut more).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&more[..n]),
                        }
                    }
                    buffer.drain(..end + 4 + length);
                    let answer = if head.starts_with("PUT ") {
                        "HTTP/1.1 200 OK\r\nETag: \"recorded\"\r\nContent-Length: 0\r\n\r\n"
                    } else {
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
                    };
                    recorded.lock().unwrap().push(head);
                    if stream.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (endpoint, requests)
}

/// A single put gets its Content-MD5 from Azurite; a block-list blob from our Set Blob
/// Properties, which keeps its content type and the sha256 metadata set after it.
#[tokio::test]
async fn every_azure_blob_carries_the_content_md5_of_its_bytes() {
    let Some((archive, container)) = azure_archive(&[]).await else {
        return;
    };
    for (name, size) in [("single", 1000), ("multipart", 3 * PART + 7)] {
        let key = Path::from(format!("call/rec/{name}.wav"));
        let data = pattern(size, 5);
        let default_type = azure_content_type_default(&archive, &container).await;
        let mut writer = archive.writer(&key).await.unwrap();
        write_in_pieces(&mut writer, &data).await;
        assert_eq!(writer.is_multipart(), name == "multipart");
        let digest = writer.finish().await.unwrap();
        let headers = azure_blob_headers(&container, &key).await;
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let expected = BASE64.encode(Md5::digest(&data));
        assert_eq!(header("content-md5"), Some(expected.as_str()), "{name}");
        assert_eq!(
            header("x-ms-meta-sha256"),
            Some(digest.sha256.as_str()),
            "{name}"
        );
        assert_eq!(
            header("content-type"),
            Some(default_type.as_str()),
            "{name}: content type kept"
        );
    }
}

/// `storage.content_md5 = false`: a block-list blob gets no Content-MD5, and fast verify says
/// it cannot be checked by Azure's tools rather than passing it.
#[tokio::test]
async fn without_content_md5_a_block_list_blob_has_none_and_fast_verify_says_so() {
    let Some((archive, container)) =
        azure_archive(&[("storage.content_md5", "false".to_owned())]).await
    else {
        return;
    };
    let (manifest, media, metadata) = archive_recording(&archive).await;
    let headers = azure_blob_headers(&container, &Path::from(media.key.as_str())).await;
    assert!(headers.get("content-md5").is_none(), "{headers:?}");
    assert_eq!(
        headers
            .get("x-ms-meta-sha256")
            .and_then(|v| v.to_str().ok()),
        Some(media.sha256.as_str())
    );
    // The metadata document is one Put Blob: Azure computes its Content-MD5 either way.
    let headers = azure_blob_headers(&container, &Path::from(metadata.key.as_str())).await;
    assert!(headers.get("content-md5").is_some(), "{headers:?}");
    let statuses = fast(&archive, &manifest).await;
    assert!(
        matches!(&statuses[0], Status::Unchecked(detail) if detail.contains("Content-MD5")),
        "{statuses:?}"
    );
    assert_eq!(statuses[1], Status::Ok);
}

/// The content type a blob gets without our Set Blob Properties, from a plain put.
async fn azure_content_type_default(archive: &Archive, container: &str) -> String {
    let key = Path::from("call/rec/plain.bin");
    archive
        .store()
        .put(&key, Bytes::from_static(b"x").into())
        .await
        .unwrap();
    let headers = azure_blob_headers(container, &key).await;
    headers["content-type"].to_str().unwrap().to_owned()
}

/// A recording of one multipart media object and its metadata document, with its manifest.
async fn archive_recording(archive: &Archive) -> (Path, ObjectDigest, ObjectDigest) {
    let layout = archive.layout("call-8", "rec-8");
    let mut writer = archive.writer(&layout.media(0, "wav")).await.unwrap();
    write_in_pieces(&mut writer, &pattern(2 * PART + 11, 7)).await;
    let media = writer.finish().await.unwrap();
    let metadata = archive
        .put_bytes_once(&layout.metadata(0), Bytes::from_static(b"{\"chunk\":0}"))
        .await
        .unwrap();
    let manifest = manifest_of(vec![(media.clone(), metadata.clone())]);
    archive
        .put_bytes(
            &layout.manifest(),
            Bytes::from(serde_json::to_vec(&manifest).unwrap()),
        )
        .await
        .unwrap();
    (layout.manifest(), media, metadata)
}

async fn fast(archive: &Archive, manifest: &Path) -> Vec<Status> {
    verify_recording_to(archive, manifest, Depth::Fast)
        .await
        .unwrap()
        .into_iter()
        .map(|check| check.status)
        .collect()
}

/// Replaces an object behind the archive's back with other bytes of the same size.
async fn replace_same_size(archive: &Archive, digest: &ObjectDigest) {
    let other = pattern(digest.bytes as usize, 99);
    archive
        .store()
        .put(&Path::from(digest.key.as_str()), other.into())
        .await
        .unwrap();
}

#[tokio::test]
async fn fast_verify_on_s3_compares_s3s_own_checksum_with_the_manifest() {
    let Some((archive, _)) = s3_archive(&[]).await else {
        return;
    };
    let (manifest, media, metadata) = archive_recording(&archive).await;
    let statuses = fast(&archive, &manifest).await;
    assert_eq!(statuses[0], Status::Ok);
    assert_single_put_on_moto(&statuses[1]);

    // Other bytes of the same size, written as a multipart object: S3 holds their checksum.
    let mut writer = archive
        .writer(&Path::from(media.key.as_str()))
        .await
        .unwrap();
    write_in_pieces(&mut writer, &pattern(media.bytes as usize, 98)).await;
    writer.finish().await.unwrap();
    archive
        .store()
        .delete(&Path::from(metadata.key.as_str()))
        .await
        .unwrap();
    let statuses = fast(&archive, &manifest).await;
    assert!(
        matches!(&statuses[0], Status::Mismatch(detail) if detail.contains("sha256")),
        "{statuses:?}"
    );
    assert_eq!(statuses[1], Status::Missing);
}

#[tokio::test]
async fn fast_verify_on_s3_reports_an_object_without_a_whole_object_checksum() {
    let Some((archive, bucket)) = s3_archive(&[]).await else {
        return;
    };
    let (manifest, media, _) = archive_recording(&archive).await;
    // The same bytes in one put, for which moto keeps no checksum: like an object written by
    // a client that sends none.
    let key = Path::from(media.key.as_str());
    let bytes = archive.read(&key).await.unwrap();
    archive.store().put(&key, bytes.into()).await.unwrap();
    assert!(
        s3_object_headers(&bucket, &key)
            .await
            .get("x-amz-meta-sha256")
            .is_none(),
        "the plain put replaced the object"
    );
    let statuses = fast(&archive, &manifest).await;
    assert!(
        matches!(&statuses[0], Status::Unchecked(detail) if detail.contains("no whole-object checksum")),
        "{statuses:?}"
    );
    assert_single_put_on_moto(&statuses[1]);
}

/// A single put's checksum: callvault's own PutObject asks the store to keep it (see
/// `a_single_s3_put_sends_the_manifests_sha256_as_its_checksum`), so fast verify compares it.
fn assert_single_put_on_moto(status: &Status) {
    assert_eq!(*status, Status::Ok);
}

#[tokio::test]
async fn fast_verify_on_azure_compares_size_and_sha256_metadata_and_wants_a_content_md5() {
    let Some((archive, _)) = azure_archive(&[]).await else {
        return;
    };
    let (manifest, media, metadata) = archive_recording(&archive).await;
    assert_eq!(fast(&archive, &manifest).await, [Status::Ok, Status::Ok]);

    // A plain put carries no sha256 metadata: nothing to compare without reading it.
    replace_same_size(&archive, &media).await;
    let shorter = pattern(metadata.bytes as usize - 1, 1);
    archive
        .store()
        .put(&Path::from(metadata.key.as_str()), shorter.into())
        .await
        .unwrap();
    let statuses = fast(&archive, &manifest).await;
    assert!(
        matches!(&statuses[0], Status::Unchecked(detail) if detail.contains("sha256 metadata")),
        "{statuses:?}"
    );
    assert!(
        matches!(&statuses[1], Status::Mismatch(detail) if detail.contains("bytes")),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn fast_verify_of_a_local_folder_checks_sizes_only() {
    let dir = tempfile::tempdir().unwrap();
    let settings = storage_settings(&[("storage.path", dir.path().display().to_string())]);
    let archive = Archive::open(&settings).await.unwrap();
    let (manifest, media, metadata) = archive_recording(&archive).await;
    assert_eq!(fast(&archive, &manifest).await, [Status::Ok, Status::Ok]);
    assert!(archive.fast_check_scope().contains("size only"));

    // Other bytes of the same size pass a size check: only full verify catches them.
    std::fs::write(
        dir.path().join(&media.key),
        pattern(media.bytes as usize, 42),
    )
    .unwrap();
    std::fs::remove_file(dir.path().join(&metadata.key)).unwrap();
    assert_eq!(
        fast(&archive, &manifest).await,
        [Status::Ok, Status::Missing]
    );
    let full = verify_recording_to(&archive, &manifest, Depth::Full)
        .await
        .unwrap();
    assert!(matches!(full[0].status, Status::Mismatch(_)), "{full:?}");
}
