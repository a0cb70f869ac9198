//! S3 Object Lock against moto: locked writes on both write paths, start-up refusal of a
//! bucket without Object Lock, manifests rewritten as new versions, legal holds, and the
//! lock applied after a holding period.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::ObjectStoreExt;
use object_store::path::Path;

use super::servers::{
    PART, S3_CREDENTIALS, fresh_bucket, pattern, s3_endpoint, storage_settings, unique_name,
};
use crate::storage::s3::MAX_COPY_BYTES;
use crate::storage::{Archive, RecordingLayout, StorageError};

/// Creates a bucket with Object Lock (and so versioning) on the shared moto.
async fn locked_bucket(endpoint: &str) -> String {
    let bucket = unique_name();
    let response = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .header("x-amz-bucket-object-lock-enabled", "true")
        .send()
        .await
        .expect("moto answers");
    assert!(response.status().is_success(), "{}", response.status());
    bucket
}

fn lock_settings(
    endpoint: &str,
    bucket: &str,
    lock: &[(&str, &str)],
) -> Vec<(&'static str, String)> {
    let mut all = vec![
        ("storage.kind", "s3".to_owned()),
        ("storage.bucket", bucket.to_owned()),
        ("storage.endpoint", endpoint.to_owned()),
        ("storage.region", "us-east-1".to_owned()),
    ];
    for (key, value) in lock {
        let key: &'static str = match *key {
            "mode" => "storage.object_lock_mode",
            "days" => "storage.object_lock_days",
            "after" => "storage.lock_after_hours",
            other => panic!("unknown lock setting {other}"),
        };
        all.push((key, (*value).to_owned()));
    }
    all
}

/// An archive on a fresh Object Lock bucket of the shared moto (`None`: skipped).
async fn locked_archive(lock: &[(&str, &str)]) -> Option<(Archive, String)> {
    let endpoint = s3_endpoint()?;
    let bucket = locked_bucket(&endpoint).await;
    let settings = storage_settings(&lock_settings(&endpoint, &bucket, lock));
    let archive = Archive::open_with(&settings, S3_CREDENTIALS)
        .await
        .expect("a bucket with Object Lock opens");
    Some((archive, bucket))
}

/// A request to the shared moto signed as object_store signs; `query` is appended verbatim.
async fn signed(method: http::Method, bucket: &str, key: &str, query: &str) -> reqwest::Response {
    let endpoint = s3_endpoint().expect("the S3 tests run");
    let url = url::Url::parse(&format!("{endpoint}/{bucket}/{key}{query}")).unwrap();
    let mut request = crate::storage::client::request(method.clone(), &url, &[]).unwrap();
    let credential = object_store::aws::AwsCredential {
        key_id: S3_CREDENTIALS[0].1.to_owned(),
        secret_key: S3_CREDENTIALS[1].1.to_owned(),
        token: None,
    };
    object_store::aws::AwsAuthorizer::new(&credential, "s3", "us-east-1")
        .try_authorize(&mut request, None)
        .unwrap();
    reqwest::Client::new()
        .request(method, url)
        .headers(request.headers().clone())
        .send()
        .await
        .unwrap()
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// The retain-until date S3 reports for `key`'s current version, with its mode.
async fn retention_of(bucket: &str, key: &Path) -> (Option<String>, Option<DateTime<Utc>>) {
    let head = signed(http::Method::HEAD, bucket, key.as_ref(), "").await;
    assert!(head.status().is_success(), "HEAD {key}: {}", head.status());
    let until = header(&head, "x-amz-object-lock-retain-until-date").map(|until| {
        DateTime::parse_from_rfc3339(&until)
            .expect("an ISO 8601 date")
            .with_timezone(&Utc)
    });
    (header(&head, "x-amz-object-lock-mode"), until)
}

/// Every version id of `key`, newest first, from ListObjectVersions.
async fn versions_of(bucket: &str, key: &Path) -> Vec<String> {
    let listing = signed(
        http::Method::GET,
        bucket,
        "",
        &format!("?versions&prefix={key}"),
    )
    .await;
    assert!(listing.status().is_success(), "{}", listing.status());
    let body = listing.text().await.unwrap();
    body.split("<VersionId>")
        .skip(1)
        .filter_map(|rest| rest.split_once("</VersionId>").map(|(id, _)| id.to_owned()))
        .collect()
}

/// A delete of one version must be refused while it is locked.
async fn assert_version_cannot_be_deleted(bucket: &str, key: &Path, version: &str) {
    let delete = signed(
        http::Method::DELETE,
        bucket,
        key.as_ref(),
        &format!("?versionId={version}"),
    )
    .await;
    assert_eq!(
        delete.status(),
        reqwest::StatusCode::FORBIDDEN,
        "deleting locked version {version} of {key}"
    );
    let get = signed(
        http::Method::GET,
        bucket,
        key.as_ref(),
        &format!("?versionId={version}"),
    )
    .await;
    assert!(
        get.status().is_success(),
        "version {version} of {key} remains"
    );
}

#[tokio::test]
async fn every_write_path_is_accepted_locked_and_its_objects_cannot_be_deleted() {
    for mode in ["governance", "compliance"] {
        let Some((archive, bucket)) = locked_archive(&[("mode", mode), ("days", "30")]).await
        else {
            return;
        };
        let before = Utc::now();
        let layout = archive.layout("call", "rec");
        let media = layout.media(0, "wav");
        let mut writer = archive.writer(&media).await.unwrap();
        writer.write(pattern(2 * PART + 1, 3)).await.unwrap();
        writer
            .finish()
            .await
            .expect("a multipart object is accepted");
        let small = layout.media(1, "wav");
        let mut writer = archive.writer(&small).await.unwrap();
        writer.write(pattern(1000, 4)).await.unwrap();
        writer.finish().await.expect("a single put is accepted");
        let metadata = layout.metadata(0);
        archive
            .put_bytes_once(&metadata, Bytes::from_static(b"{\"chunk\":0}"))
            .await
            .expect("a metadata document is accepted");
        let manifest = layout.manifest();
        archive
            .put_bytes(&manifest, Bytes::from_static(b"{\"chunks\":1}"))
            .await
            .expect("a manifest is accepted");

        for key in [&media, &small, &metadata, &manifest] {
            let (lock_mode, until) = retention_of(&bucket, key).await;
            assert_eq!(
                lock_mode.as_deref(),
                Some(mode.to_ascii_uppercase().as_str()),
                "{key}"
            );
            let until = until.unwrap_or_else(|| panic!("{key} has a retain-until date"));
            let days = (until - before).num_hours();
            assert!(
                (30 * 24 - 1..=30 * 24 + 1).contains(&days),
                "{key}: {until}"
            );
            for version in versions_of(&bucket, key).await.iter().take(1) {
                assert_version_cannot_be_deleted(&bucket, key, version).await;
            }
        }
        assert_eq!(
            archive.read(&media).await.unwrap(),
            pattern(2 * PART + 1, 3),
            "the locked copy holds the uploaded bytes"
        );
    }
}

#[tokio::test]
async fn an_object_too_large_to_copy_in_place_is_still_locked() {
    let Some((archive, bucket)) = locked_archive(&[("mode", "governance"), ("days", "2")]).await
    else {
        return;
    };
    // As a completed multipart upload leaves it: unlocked, without metadata.
    let key = archive.layout("call", "huge").media(0, "mp4");
    archive
        .store()
        .put(&key, Bytes::from_static(b"stands for 6 GiB").into())
        .await
        .unwrap();
    assert_eq!(retention_of(&bucket, &key).await, (None, None));
    let before = Utc::now();
    archive
        .finisher
        .set_sha256(&key, &"ab".repeat(32), None, MAX_COPY_BYTES + 1)
        .await
        .unwrap();
    let (mode, until) = retention_of(&bucket, &key).await;
    assert_eq!(mode.as_deref(), Some("GOVERNANCE"));
    let hours = (until.expect("a retain-until date") - before).num_hours();
    assert!((47..=49).contains(&hours), "{hours} h");
}

#[tokio::test]
async fn a_bucket_without_object_lock_stops_start_up_with_what_to_enable() {
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    let bucket = fresh_bucket(&endpoint).await;
    for lock in [
        &[("mode", "compliance"), ("days", "1")][..],
        &[("mode", "governance"), ("days", "1"), ("after", "24")][..],
    ] {
        let settings = storage_settings(&lock_settings(&endpoint, &bucket, lock));
        let err = Archive::open_with(&settings, S3_CREDENTIALS)
            .await
            .expect_err("a bucket without Object Lock is refused")
            .to_string();
        assert!(
            err.contains(&format!("bucket {bucket} has no Object Lock"))
                && err.contains("--object-lock-enabled-for-bucket"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn a_rewritten_manifest_is_a_new_locked_version_and_the_old_one_remains() {
    let Some((archive, bucket)) = locked_archive(&[("mode", "governance"), ("days", "1")]).await
    else {
        return;
    };
    let manifest = archive.layout("call", "late").manifest();
    archive
        .put_bytes(&manifest, Bytes::from_static(b"{\"chunks\":1}"))
        .await
        .unwrap();
    let first = versions_of(&bucket, &manifest).await;
    assert_eq!(first.len(), 1, "{first:?}");
    archive
        .put_bytes(&manifest, Bytes::from_static(b"{\"chunks\":2}"))
        .await
        .expect("a late chunk's manifest is written over a locked one");
    let versions = versions_of(&bucket, &manifest).await;
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert!(versions.contains(&first[0]), "the first version is kept");
    assert_eq!(
        archive.read(&manifest).await.unwrap(),
        Bytes::from_static(b"{\"chunks\":2}")
    );
    let old = signed(
        http::Method::GET,
        &bucket,
        manifest.as_ref(),
        &format!("?versionId={}", first[0]),
    )
    .await;
    assert_eq!(old.text().await.unwrap(), "{\"chunks\":1}");
    assert_version_cannot_be_deleted(&bucket, &manifest, &first[0]).await;
}

async fn legal_hold_of(bucket: &str, key: &Path) -> String {
    let answer = signed(http::Method::GET, bucket, key.as_ref(), "?legal-hold").await;
    assert!(answer.status().is_success(), "{key}: {}", answer.status());
    answer.text().await.unwrap()
}

/// Writes a small recording (two media, their metadata, a manifest) and returns its keys.
async fn write_recording(archive: &Archive, layout: &RecordingLayout) -> Vec<Path> {
    let mut keys = Vec::new();
    for index in 0..2 {
        let media = layout.media(index, "mp3");
        let mut writer = archive.writer(&media).await.unwrap();
        writer.write(pattern(2000, index as u8)).await.unwrap();
        writer.finish().await.unwrap();
        let metadata = layout.metadata(index);
        archive
            .put_bytes_once(&metadata, Bytes::from(format!("{{\"chunk\":{index}}}")))
            .await
            .unwrap();
        keys.extend([media, metadata]);
    }
    let manifest = layout.manifest();
    archive
        .put_bytes(&manifest, Bytes::from_static(b"{}"))
        .await
        .unwrap();
    keys.push(manifest);
    keys
}

#[tokio::test]
async fn a_legal_hold_covers_every_object_of_the_recording_and_only_them() {
    let Some((archive, bucket)) = locked_archive(&[("mode", "governance"), ("days", "1")]).await
    else {
        return;
    };
    let held = archive.layout("call", "held");
    let keys = write_recording(&archive, &held).await;
    let other = write_recording(&archive, &archive.layout("call", "other")).await;

    assert_eq!(
        archive.set_legal_hold(&held, true).await.unwrap(),
        keys.len()
    );
    for key in &keys {
        assert!(
            legal_hold_of(&bucket, key)
                .await
                .contains("<Status>ON</Status>"),
            "{key}"
        );
    }
    let untouched = signed(http::Method::GET, &bucket, other[0].as_ref(), "?legal-hold").await;
    let untouched = untouched.text().await.unwrap();
    assert!(!untouched.contains("<Status>ON</Status>"), "{untouched}");

    assert_eq!(
        archive.set_legal_hold(&held, false).await.unwrap(),
        keys.len()
    );
    for key in &keys {
        assert!(
            legal_hold_of(&bucket, key)
                .await
                .contains("<Status>OFF</Status>"),
            "{key}"
        );
    }
}

#[tokio::test]
async fn a_local_archive_refuses_a_legal_hold() {
    let dir = tempfile::tempdir().unwrap();
    let settings = storage_settings(&[("storage.path", dir.path().display().to_string())]);
    let archive = Archive::open(&settings).await.unwrap();
    let err = archive
        .set_legal_hold(&archive.layout("call", "rec"), true)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::NoStoreLock), "{err}");
    assert!(err.to_string().contains("local archive has no"), "{err}");
}

#[tokio::test]
async fn with_a_holding_period_objects_are_written_unlocked_and_locked_later() {
    let Some((archive, bucket)) =
        locked_archive(&[("mode", "compliance"), ("days", "7"), ("after", "24")]).await
    else {
        return;
    };
    assert!(archive.locks_later());
    let layout = archive.layout("call", "pci");
    let mut keys = write_recording(&archive, &layout).await;
    let big = layout.media(9, "wav");
    let mut writer = archive.writer(&big).await.unwrap();
    writer.write(pattern(PART + 10, 1)).await.unwrap();
    writer.finish().await.unwrap();
    keys.push(big);
    for key in &keys {
        assert_eq!(
            retention_of(&bucket, key).await,
            (None, None),
            "{key} is unlocked"
        );
    }
    // A recording erased in the holding period can still go: delete one object now.
    let erased = signed(http::Method::DELETE, &bucket, keys[0].as_ref(), "").await;
    assert!(erased.status().is_success(), "{}", erased.status());
    keys.remove(0);

    let locked_at = DateTime::parse_from_rfc3339("2026-12-03T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        .max(Utc::now());
    assert_eq!(
        archive.lock_recording(&layout, locked_at).await.unwrap(),
        keys.len()
    );
    for key in &keys {
        let (mode, until) = retention_of(&bucket, key).await;
        assert_eq!(mode.as_deref(), Some("COMPLIANCE"), "{key}");
        assert_eq!(
            until.map(|until| until.timestamp()),
            Some((locked_at + chrono::Duration::days(7)).timestamp()),
            "{key}"
        );
        let version = versions_of(&bucket, key).await;
        assert_version_cannot_be_deleted(&bucket, key, &version[0]).await;
    }
}
