//! Azure version-level immutability against Azurite, which does not implement it (its
//! containers report no `x-ms-immutable-storage-with-versioning-enabled`, and it answers
//! 501 to Set Blob Immutability Policy and Set Blob Legal Hold): start-up refuses such a
//! container, and a hold or lock it cannot keep fails with its answer instead of passing.

use bytes::Bytes;
use chrono::Utc;

use super::servers::{
    PART, azure_archive, azure_endpoint, fresh_container, pattern, storage_settings,
};
use crate::storage::lock::Retention;
use crate::storage::{Archive, LockMode, ObjectLock};

#[tokio::test]
async fn a_container_without_version_level_immutability_stops_start_up() {
    let Some(endpoint) = azure_endpoint() else {
        return;
    };
    for after_hours in ["0", "24"] {
        let container = fresh_container(&endpoint).await;
        let settings = storage_settings(&[
            ("storage.kind", "azure".to_owned()),
            ("storage.container", container.clone()),
            ("storage.endpoint", endpoint.clone()),
            ("storage.object_lock_mode", "compliance".to_owned()),
            ("storage.object_lock_days", "1".to_owned()),
            ("storage.lock_after_hours", after_hours.to_owned()),
        ]);
        let err = Archive::open(&settings)
            .await
            .expect_err("a container without version-level immutability is refused")
            .to_string();
        assert!(
            err.contains(&format!(
                "container {container} does not have version-level immutability"
            )) && err.contains("--enable-vlw"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn a_hold_or_lock_the_store_cannot_keep_fails_with_its_answer() {
    let Some((archive, _)) = azure_archive(&[]).await else {
        return;
    };
    let layout = archive.layout("call", "rec");
    let manifest = layout.manifest();
    archive
        .put_bytes(&manifest, Bytes::from_static(b"{}"))
        .await
        .unwrap();
    // Azurite checks the Shared Key signature first: a 501 means the request was accepted as
    // ours and refused only for what it asks.
    let err = archive
        .set_legal_hold(&layout, true)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("setting the legal hold: 501") && err.contains("APINotImplemented"),
        "{err}"
    );
    let lock = ObjectLock {
        mode: LockMode::Governance,
        days: 1,
        after_hours: 0,
    };
    let err = archive
        .finisher
        .set_retention(&manifest, &Retention::from(&lock, Utc::now()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("setting the immutability policy: 501"),
        "{err}"
    );
}

/// An archive on Azurite configured to lock at write, opened without the start-up check
/// (which Azurite fails), to see what each write does when the policy is refused.
async fn azure_archive_locking_at_write() -> Option<Archive> {
    let endpoint = azure_endpoint()?;
    let container = fresh_container(&endpoint).await;
    let settings = storage_settings(&[
        ("storage.kind", "azure".to_owned()),
        ("storage.container", container),
        ("storage.endpoint", endpoint),
        ("storage.object_lock_mode", "governance".to_owned()),
        ("storage.object_lock_days", "1".to_owned()),
    ]);
    let opened = crate::storage::backend::open(&settings, &[]).await.unwrap();
    Some(Archive {
        store: opened.store,
        prefix: settings.prefix.clone(),
        part_size: opened.part_size,
        upload_concurrency: settings.upload_concurrency,
        description: opened.description,
        options: opened.options,
        finisher: std::sync::Arc::new(opened.finisher),
        object_lock: settings.object_lock,
        uploads: None,
        manifest_signer: None,
        location: std::sync::Arc::new(crate::storage::StorageLocation::of(&settings)),
    })
}

#[tokio::test]
async fn a_refused_policy_fails_the_write_and_every_re_run_of_it() {
    let Some(archive) = azure_archive_locking_at_write().await else {
        return;
    };
    let layout = archive.layout("call", "rec");
    let media = layout.media(0, "wav");
    let large = layout.media(1, "wav");
    let metadata = layout.metadata(0);
    let manifest = layout.manifest();
    for attempt in 1..=2 {
        // The first attempt writes each object and is refused its policy; the re-run finds
        // the objects archived with their sha256 and must not pass them unlocked.
        let mut writer = archive.writer_unless_archived(&media).await.unwrap();
        writer
            .write(Bytes::from_static(b"media bytes"))
            .await
            .unwrap();
        let err = writer.finish().await.unwrap_err().to_string();
        assert!(
            err.contains("immutability policy: 501"),
            "attempt {attempt}: {err}"
        );
        // A multipart blob: the policy follows its metadata in the finishing step.
        let mut writer = archive.writer_unless_archived(&large).await.unwrap();
        writer.write(pattern(PART + 7, 2)).await.unwrap();
        let err = writer.finish().await.unwrap_err().to_string();
        assert!(
            err.contains("immutability policy: 501"),
            "attempt {attempt}: {err}"
        );
        let err = archive
            .put_bytes_once(&metadata, Bytes::from_static(b"{}"))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("immutability policy: 501"),
            "attempt {attempt}: {err}"
        );
        let err = archive
            .put_bytes(&manifest, Bytes::from_static(b"{\"chunks\":1}"))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("immutability policy: 501"),
            "attempt {attempt}: {err}"
        );
    }
    assert!(
        archive.existing_digest(&media).await.unwrap().is_some(),
        "the first attempt did write the media"
    );
}
