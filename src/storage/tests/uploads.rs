//! Multipart uploads with a known id: recorded before their first part, struck off once
//! completed or aborted, listed by our ListMultipartUploads as boto3 lists them.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine;
use object_store::path::Path;
use sha2::{Digest, Sha256};

use super::boto::{boto3_create_upload, boto3_incomplete_uploads};
use super::proxy::CutProxy;
use super::servers::{
    PART, azure_archive, pattern, s3_archive, s3_archive_at, s3_endpoint, storage_settings,
};
use crate::storage::{Archive, IncompleteUploads, UploadAbort, UploadLedger};

/// The ledger's calls, in order: ("opened" | "closed", key, upload id).
#[derive(Default)]
pub struct CallLog(Mutex<Vec<(&'static str, String, String)>>);

impl CallLog {
    pub fn calls(&self) -> Vec<(&'static str, String, String)> {
        self.0.lock().unwrap().clone()
    }
}

#[async_trait]
impl UploadLedger for CallLog {
    async fn opened(&self, key: &str, upload_id: &str) -> Result<(), String> {
        self.0
            .lock()
            .unwrap()
            .push(("opened", key.into(), upload_id.into()));
        Ok(())
    }
    async fn closed(&self, key: &str, upload_id: &str) -> Result<(), String> {
        self.0
            .lock()
            .unwrap()
            .push(("closed", key.into(), upload_id.into()));
        Ok(())
    }
}

/// A ledger that cannot write (its database is down).
struct Unwritable;

#[async_trait]
impl UploadLedger for Unwritable {
    async fn opened(&self, _: &str, _: &str) -> Result<(), String> {
        Err("database is unavailable".into())
    }
    async fn closed(&self, _: &str, _: &str) -> Result<(), String> {
        Err("database is unavailable".into())
    }
}

async fn listed(archive: &Archive) -> Vec<(String, String)> {
    match archive.incomplete_uploads().await.unwrap() {
        IncompleteUploads::Listed(uploads) => uploads
            .into_iter()
            .map(|upload| (upload.key, upload.upload_id))
            .collect(),
        other => panic!("S3 lists its uploads: {other:?}"),
    }
}

#[tokio::test]
async fn a_completed_s3_upload_is_recorded_then_struck_off_with_its_parts_checked() {
    let Some(moto) = s3_endpoint() else {
        return;
    };
    let proxy = CutProxy::start(&moto).await;
    let (archive, bucket) = s3_archive_at(&proxy.endpoint(), &[]).await;
    let log = Arc::new(CallLog::default());
    let key = Path::from("call/rec/chunk-0000.mp4");
    let data = pattern(2 * PART + 17, 3);
    let mut writer = archive
        .with_upload_ledger(log.clone())
        .writer(&key)
        .await
        .unwrap();
    writer.write(data.clone()).await.unwrap();
    assert!(writer.is_multipart());
    let calls = log.calls();
    assert_eq!(calls.len(), 1, "recorded once opened: {calls:?}");
    let upload_id = calls[0].2.clone();
    assert_eq!(
        boto3_incomplete_uploads(&s3_endpoint().unwrap(), &bucket),
        vec![(key.to_string(), upload_id.clone())],
        "the recorded id is the one S3 holds"
    );
    writer.finish().await.unwrap();
    assert_eq!(
        log.calls(),
        vec![
            ("opened", key.to_string(), upload_id.clone()),
            ("closed", key.to_string(), upload_id.clone())
        ]
    );
    assert_eq!(archive.read(&key).await.unwrap(), data);
    // Each part went with the sha256 S3 verifies it against (this moto accepts any).
    let sent = proxy.sent();
    for part in [&data[..PART], &data[PART..2 * PART], &data[2 * PART..]] {
        let checksum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(part));
        assert!(
            sent.contains(&format!("x-amz-checksum-sha256: {checksum}\r\n")),
            "a part of {} bytes was sent without its checksum {checksum}",
            part.len()
        );
    }
    assert_eq!(
        archive
            .abort_upload(key.as_ref(), &upload_id)
            .await
            .unwrap(),
        UploadAbort::AlreadyGone,
        "aborting a completed upload's id leaves the object"
    );
    assert_eq!(archive.read(&key).await.unwrap(), data);
}

#[tokio::test]
async fn an_upload_that_cannot_be_recorded_is_aborted_before_any_part_is_sent() {
    let Some((archive, bucket)) = s3_archive(&[]).await else {
        return;
    };
    let key = Path::from("call/rec/chunk-0001.mp4");
    let mut writer = archive
        .with_upload_ledger(Arc::new(Unwritable))
        .writer(&key)
        .await
        .unwrap();
    let err = writer
        .write(pattern(PART, 1))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot record the multipart upload")
            && err.contains("database is unavailable"),
        "{err}"
    );
    assert_eq!(
        boto3_incomplete_uploads(&s3_endpoint().unwrap(), &bucket),
        vec![],
        "the unrecorded upload was aborted"
    );
}

#[tokio::test]
async fn our_listing_of_incomplete_uploads_matches_boto3_under_the_prefix() {
    let Some((archive, bucket)) = s3_archive(&[("storage.prefix", "recordings/".to_owned())]).await
    else {
        return;
    };
    let endpoint = s3_endpoint().unwrap();
    let mut expected: Vec<(String, String)> =
        ["recordings/a/x", "recordings/b+c=d/y", "recordings/a/x"]
            .iter()
            .map(|key| {
                (
                    key.to_string(),
                    boto3_create_upload(&endpoint, &bucket, key),
                )
            })
            .collect();
    // Outside the prefix: not ours to list.
    boto3_create_upload(&endpoint, &bucket, "elsewhere/z");
    expected.sort();
    let mut ours = listed(&archive).await;
    ours.sort();
    let mut theirs: Vec<_> = boto3_incomplete_uploads(&endpoint, &bucket)
        .into_iter()
        .filter(|(key, _)| key.starts_with("recordings/"))
        .collect();
    theirs.sort();
    assert_eq!((&ours, &theirs), (&expected, &expected));
    for (key, id) in &expected {
        assert_eq!(
            archive.abort_upload(key, id).await.unwrap(),
            UploadAbort::Aborted
        );
    }
    assert_eq!(listed(&archive).await, vec![]);
}

#[tokio::test]
async fn azure_and_local_archives_have_no_uploads_to_abort_and_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let local = Archive::open(&storage_settings(&[(
        "storage.path",
        dir.path().display().to_string(),
    )]))
    .await
    .unwrap();
    match local.incomplete_uploads().await.unwrap() {
        IncompleteUploads::NothingToAbort(why) => assert!(why.contains("NAME#N"), "{why}"),
        other => panic!("{other:?}"),
    }
    let Some((azure, _)) = azure_archive(&[]).await else {
        return;
    };
    match azure.incomplete_uploads().await.unwrap() {
        IncompleteUploads::NothingToAbort(why) => assert!(why.contains("7 days"), "{why}"),
        other => panic!("{other:?}"),
    }
}

/// A stand-in for S3 that answers each ListMultipartUploads request with `answer(query)`
/// (moto answers in one page whatever the count, so paging needs this). Its endpoint.
async fn fake_s3(answer: fn(&str) -> String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buffer[..n]),
                }
            }
            let line = String::from_utf8_lossy(&request);
            let target = line.split_whitespace().nth(1).unwrap_or_default();
            let query = target.split_once('?').map_or("", |(_, q)| q);
            let body = answer(query);
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    endpoint
}

async fn fake_s3_archive(answer: fn(&str) -> String) -> Archive {
    let endpoint = fake_s3(answer).await;
    let settings = storage_settings(&[
        ("storage.kind", "s3".to_owned()),
        ("storage.bucket", "fake-bucket".to_owned()),
        ("storage.endpoint", endpoint),
        ("storage.region", "us-east-1".to_owned()),
    ]);
    Archive::open_with(&settings, super::servers::S3_CREDENTIALS)
        .await
        .unwrap()
}

fn upload_xml(key: &str, id: &str) -> String {
    format!(
        "<Upload><Key>{key}</Key><UploadId>{id}</UploadId><Initiated>2026-12-01T00:00:00Z</Initiated></Upload>"
    )
}

#[tokio::test]
async fn the_listing_follows_the_next_markers_page_after_page() {
    let archive = fake_s3_archive(|query| {
        let body = if query.contains("key-marker=a%2F2&upload-id-marker=id%2B2") {
            upload_xml("a/3", "id+3") + "<IsTruncated>false</IsTruncated>"
        } else {
            upload_xml("a/1", "id+1")
                + &upload_xml("a/2", "id+2")
                + "<IsTruncated>true</IsTruncated><NextKeyMarker>a/2</NextKeyMarker><NextUploadIdMarker>id+2</NextUploadIdMarker>"
        };
        format!("<ListMultipartUploadsResult>{body}</ListMultipartUploadsResult>")
    })
    .await;
    assert_eq!(
        listed(&archive).await,
        [("a/1", "id+1"), ("a/2", "id+2"), ("a/3", "id+3")]
            .map(|(k, i)| (k.to_owned(), i.to_owned()))
            .to_vec()
    );
}

#[tokio::test]
async fn a_listing_that_repeats_its_marker_or_floods_is_refused() {
    let looping = fake_s3_archive(|_| {
        "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated><NextKeyMarker>a</NextKeyMarker><NextUploadIdMarker>i</NextUploadIdMarker></ListMultipartUploadsResult>".to_owned()
    })
    .await;
    let err = looping.incomplete_uploads().await.unwrap_err().to_string();
    assert!(err.contains("repeated its page marker"), "{err}");

    let flooding = fake_s3_archive(|_| {
        format!(
            "<ListMultipartUploadsResult>{}</ListMultipartUploadsResult>",
            "<Owner>x</Owner>".repeat(300_000)
        )
    })
    .await;
    let err = flooding.incomplete_uploads().await.unwrap_err().to_string();
    assert!(err.contains("larger than 4194304 bytes"), "{err}");
}
