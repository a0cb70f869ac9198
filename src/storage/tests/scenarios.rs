//! Archive scenarios that every remote backend must pass; `s3` and `azure` run them against
//! moto and Azurite.

use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use sha2::{Digest, Sha256};

use super::servers::{PART, PrivateServer, pattern, read_back, write_in_pieces};
use crate::storage::manifest::{Manifest, ManifestChunk, SCHEMA};
use crate::storage::verify::{Status, Summary, verify_recording};
use crate::storage::{Archive, ObjectDigest, StorageError};

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// ~12 MiB in pieces of assorted sizes (one larger than a part) becomes one object that
/// reads back byte for byte, with its sha256 in its metadata.
pub async fn a_chunk_larger_than_two_parts_round_trips(archive: &Archive) {
    let key = Path::from("call-1/rec-1/chunk-0000.mp4");
    let data = pattern(12 * 1024 * 1024 + 17, 1);
    let mut writer = archive.writer(&key).await.unwrap();
    write_in_pieces(&mut writer, &data).await;
    assert!(
        writer.is_multipart(),
        "12 MiB must go as a multipart upload"
    );
    assert_eq!(writer.bytes_written(), data.len() as u64);
    let digest = writer.finish().await.unwrap();
    assert_eq!(digest.bytes, data.len() as u64);
    assert_eq!(digest.sha256, sha256_hex(&data));
    assert!(read_back(archive, &key).await == data, "bytes differ");
    assert_eq!(archive.existing_digest(&key).await.unwrap(), Some(digest));
}

/// An object below one part goes in one put, with its sha256 in its metadata; so does
/// `put_bytes`, and an empty object.
pub async fn a_small_object_goes_in_one_put(archive: &Archive) {
    let key = Path::from("call-1/rec-1/chunk-0001.mp4");
    let data = pattern(PART - 1, 2);
    let mut writer = archive.writer(&key).await.unwrap();
    write_in_pieces(&mut writer, &data).await;
    assert!(
        !writer.is_multipart(),
        "less than a part must stay in one put"
    );
    let digest = writer.finish().await.unwrap();
    assert!(read_back(archive, &key).await == data);
    assert_eq!(archive.existing_digest(&key).await.unwrap(), Some(digest));

    let metadata_key = Path::from("call-1/rec-1/chunk-0001.metadata.json");
    let document = Bytes::from_static(br#"{"participants":[]}"#);
    let digest = archive
        .put_bytes(&metadata_key, document.clone())
        .await
        .unwrap();
    assert_eq!(digest.sha256, sha256_hex(&document));
    assert_eq!(
        archive.existing_digest(&metadata_key).await.unwrap(),
        Some(digest)
    );

    let empty = Path::from("call-1/rec-1/chunk-0002.mp4");
    let digest = archive
        .writer(&empty)
        .await
        .unwrap()
        .finish()
        .await
        .unwrap();
    assert_eq!(digest.bytes, 0);
    assert!(read_back(archive, &empty).await.is_empty());
}

/// An aborted write, before or after its first part went out, leaves nothing at the key.
pub async fn an_aborted_upload_leaves_no_object(archive: &Archive) {
    for (size, name) in [(2 * PART + 5, "multipart"), (1000, "buffered")] {
        let key = Path::from(format!("call-1/rec-1/aborted-{name}.mp4"));
        let mut writer = archive.writer(&key).await.unwrap();
        writer.write(pattern(size, 3)).await.unwrap();
        writer.abort().await;
        assert!(
            matches!(
                archive.store().head(&key).await,
                Err(object_store::Error::NotFound { .. })
            ),
            "{name}: an aborted upload left an object"
        );
    }
}

/// A re-run over an object already archived with the same bytes uploads nothing; other bytes
/// are refused without touching the archived object, and `writer` then replaces it.
pub async fn a_rerun_skips_the_upload_of_an_identical_object(archive: &Archive) {
    let key = Path::from("call-1/rec-1/chunk-0003.mp4");
    let data = pattern(PART + PART / 2, 4);
    let mut writer = archive.writer(&key).await.unwrap();
    write_in_pieces(&mut writer, &data).await;
    let first = writer.finish().await.unwrap();
    let before = archive.store().head(&key).await.unwrap();

    let mut rerun = archive.writer_unless_archived(&key).await.unwrap();
    write_in_pieces(&mut rerun, &data).await;
    assert!(!rerun.is_multipart());
    assert_eq!(rerun.finish().await.unwrap(), first);
    let after = archive.store().head(&key).await.unwrap();
    assert_eq!(before.e_tag, after.e_tag, "the object was rewritten");

    let other = pattern(data.len(), 5);
    let mut rerun = archive.writer_unless_archived(&key).await.unwrap();
    write_in_pieces(&mut rerun, &other).await;
    assert!(matches!(
        rerun.finish().await,
        Err(StorageError::ExistingDiffers { .. })
    ));
    assert!(read_back(archive, &key).await == data);

    let mut replace = archive.writer(&key).await.unwrap();
    write_in_pieces(&mut replace, &other).await;
    replace.finish().await.unwrap();
    assert!(read_back(archive, &key).await == other);

    // put_bytes of the same document keeps the stored object.
    let manifest_key = Path::from("call-1/rec-1/manifest.json");
    let body = Bytes::from_static(b"{}");
    archive
        .put_bytes(&manifest_key, body.clone())
        .await
        .unwrap();
    let before = archive.store().head(&manifest_key).await.unwrap();
    archive.put_bytes(&manifest_key, body).await.unwrap();
    let after = archive.store().head(&manifest_key).await.unwrap();
    assert_eq!(before.last_modified, after.last_modified);
    assert_eq!(before.e_tag, after.e_tag);
}

/// A metadata document is written once: the same bytes again are kept, other bytes fail with
/// `ExistingDiffers` and leave the first document in place (the worker's retry policy turns
/// that error into a failed job). The key has a hashed segment: its `~` reaches the store as is.
pub async fn a_metadata_document_is_never_replaced(archive: &Archive) {
    let key = archive.layout("call m", "rec-m").metadata(0);
    assert!(key.as_ref().contains("call_m~"), "{key}");
    let first = Bytes::from_static(br#"{"participants":[{"participantId":"8:acs:a"}]}"#);
    let digest = archive.put_bytes_once(&key, first.clone()).await.unwrap();
    assert_eq!(digest.sha256, sha256_hex(&first));
    assert_eq!(crate::storage::layout::object_key(&digest.key), key);
    assert_eq!(
        archive.put_bytes_once(&key, first.clone()).await.unwrap(),
        digest
    );
    let other = Bytes::from_static(br#"{"participants":[{"participantId":"8:acs:b"}]}"#);
    let err = archive.put_bytes_once(&key, other).await.unwrap_err();
    assert!(
        matches!(&err, StorageError::ExistingDiffers { key: at } if at == key.as_ref()),
        "{err}"
    );
    assert!(
        read_back(archive, &key).await == first,
        "the first document was replaced"
    );
}

/// `verify` passes an intact recording and reports a tampered object as MISMATCH and a
/// deleted one as MISSING.
pub async fn verify_detects_tampering(archive: &Archive) {
    let layout = archive.layout("call-9", "rec-9");
    let media_key = layout.media(0, "mp4");
    let metadata_key = layout.metadata(0);
    let media = pattern(PART + 1234, 6);
    let mut writer = archive.writer(&media_key).await.unwrap();
    write_in_pieces(&mut writer, &media).await;
    let media_digest = writer.finish().await.unwrap();
    let metadata_digest = archive
        .put_bytes(&metadata_key, Bytes::from_static(b"{\"chunk\":0}"))
        .await
        .unwrap();
    let manifest_key = layout.manifest();
    let manifest = manifest_of(vec![(media_digest, metadata_digest)]);
    archive
        .put_bytes(
            &manifest_key,
            Bytes::from(serde_json::to_vec(&manifest).unwrap()),
        )
        .await
        .unwrap();

    let summary = summarise(&verify_recording(archive, &manifest_key).await.unwrap());
    assert_eq!(
        summary,
        Summary {
            ok: 2,
            mismatched: 0,
            missing: 0,
            unchecked: 0
        }
    );

    // Same size, one byte changed, written behind the archive's back.
    let mut tampered = media.to_vec();
    tampered[PART] ^= 0xff;
    archive
        .store()
        .put(&media_key, Bytes::from(tampered).into())
        .await
        .unwrap();
    archive.store().delete(&metadata_key).await.unwrap();
    let checks = verify_recording(archive, &manifest_key).await.unwrap();
    assert!(
        matches!(checks[0].status, Status::Mismatch(_)),
        "{checks:?}"
    );
    assert_eq!(checks[1].status, Status::Missing, "{checks:?}");
    assert!(!summarise(&checks).all_ok());

    let missing = verify_recording(archive, &Path::from("call-0/rec-0/manifest.json"))
        .await
        .unwrap();
    assert_eq!(missing[0].status, Status::Missing);
}

/// The store dies after the first part went out: the attempt fails with a storage error within
/// object_store's bounded retries (not minutes; the worker's retry policy schedules another
/// attempt for it), nothing appears at the key, and once the store is back the next attempt
/// archives the chunk.
pub async fn an_outage_fails_the_attempt_promptly_and_the_retry_completes(
    archive: &Archive,
    server: &mut PrivateServer,
    after_restart: impl AsyncFnOnce(),
) {
    let key = Path::from("call/rec/chunk-0000.mp4");
    let data = pattern(12 * 1024 * 1024, 7);
    let mut writer = archive.writer(&key).await.unwrap();
    writer.write(data.slice(..PART + 1)).await.unwrap();
    assert!(writer.is_multipart());
    server.stop();
    let started = Instant::now();
    let error = match writer.write(data.slice(PART + 1..)).await {
        Err(err) => {
            writer.abort().await;
            err
        }
        Ok(()) => writer.finish().await.unwrap_err(),
    };
    let failed_after = started.elapsed();
    assert!(matches!(error, StorageError::Store(_)), "{error:?}");
    assert!(
        failed_after < Duration::from_secs(45),
        "the attempt hung for {failed_after:?} instead of failing"
    );

    server.restart().await;
    after_restart().await;
    assert!(
        matches!(
            archive.store().head(&key).await,
            Err(object_store::Error::NotFound { .. })
        ),
        "the failed attempt left an object"
    );
    let mut writer = archive.writer(&key).await.unwrap();
    write_in_pieces(&mut writer, &data).await;
    let digest = writer.finish().await.unwrap();
    assert_eq!(digest.bytes, data.len() as u64);
    assert!(read_back(archive, &key).await == data);
    assert_eq!(archive.existing_digest(&key).await.unwrap(), Some(digest));
}

fn summarise(checks: &[crate::storage::verify::ObjectCheck]) -> Summary {
    let mut summary = Summary::default();
    checks.iter().for_each(|check| summary.add(check));
    summary
}

pub fn manifest_of(chunks: Vec<(ObjectDigest, ObjectDigest)>) -> Manifest {
    Manifest {
        schema: SCHEMA.to_owned(),
        call_id: "call-9".into(),
        recording_id: Some("rec-9".into()),
        server_call_id: None,
        recording_start_time: None,
        recording_duration_ms: None,
        content_type: None,
        channel_type: None,
        format: None,
        session_end_reason: None,
        participants: vec![],
        chunks: chunks
            .into_iter()
            .enumerate()
            .map(|(index, (media, metadata))| ManifestChunk {
                index: index as u32,
                document_id: format!("doc-{index}"),
                end_reason: Some("SessionEnded".into()),
                media,
                metadata,
                archived_at: "2026-11-27T09:20:23Z".into(),
                start_time: None,
                duration_ms: None,
            })
            .collect(),
        event_ids: vec![],
        archived_at: "2026-11-27T09:20:23Z".into(),
        pause_resume_intervals: None,
    }
}
