//! Azure version-level immutability against Azurite, which does not implement it (its
//! containers report no `x-ms-immutable-storage-with-versioning-enabled`, and it answers
//! 501 to Set Blob Immutability Policy and Set Blob Legal Hold): start-up refuses such a
//! container, and a hold or lock it cannot keep fails with its answer instead of passing.

use bytes::Bytes;
use chrono::Utc;

use super::servers::{azure_archive, azure_endpoint, fresh_container, storage_settings};
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
