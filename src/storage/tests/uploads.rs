//! Multipart uploads with a known id: recorded before their first part, struck off once
//! completed or aborted, listed by our ListMultipartUploads as boto3 lists them.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use object_store::path::Path;

use super::boto::{boto3_create_upload, boto3_incomplete_uploads};
use super::servers::{PART, azure_archive, pattern, s3_archive, s3_endpoint, storage_settings};
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
    let Some((archive, bucket)) = s3_archive(&[]).await else {
        return;
    };
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
