//! `callvault storage cleanup`: the incomplete uploads the store lists under the archive's
//! prefix, aborted once older than a given age, and then what the queue still records. An
//! upload a live lease holds is never touched, whatever its age.

use std::collections::HashSet;
use std::time::Duration;

use crate::metrics::Metrics;
use crate::queue::uploads::{self, OpenUpload};
use crate::queue::{Db, QueueError, now_millis};
use crate::storage::{Archive, IncompleteUpload, IncompleteUploads, UploadAbort};

/// The recorded uploads one run takes at most.
const RECORDED_LIMIT: i64 = 100_000;

/// What became of one upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Younger than the age given: left alone.
    Young,
    /// A running job's live lease holds it: its writer may still be sending parts.
    Live,
    /// `--dry-run`: would be aborted.
    WouldAbort,
    Aborted,
    /// Completed or aborted before we got to it.
    AlreadyGone,
    /// The abort failed, with the store's error.
    Failed(String),
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Young => f.write_str("kept (younger)"),
            Action::Live => f.write_str("kept (a running job holds it)"),
            Action::WouldAbort => f.write_str("would abort"),
            Action::Aborted => f.write_str("aborted"),
            Action::AlreadyGone => f.write_str("already gone"),
            Action::Failed(err) => write!(f, "abort failed: {err}"),
        }
    }
}

/// What the store listed.
#[derive(Debug)]
pub enum Listing {
    Uploads(Vec<(IncompleteUpload, Action)>),
    /// The store has none to abort, and why.
    NothingToAbort(&'static str),
}

/// A cleanup run's findings.
#[derive(Debug)]
pub struct Cleanup {
    pub listed: Listing,
    /// Uploads the queue records (opened by a job and not closed) older than the age.
    pub recorded: Vec<(OpenUpload, Action)>,
}

impl Cleanup {
    /// How many aborts failed.
    pub fn failures(&self) -> usize {
        let listed: Vec<&Action> = match &self.listed {
            Listing::Uploads(uploads) => uploads.iter().map(|(_, a)| a).collect(),
            Listing::NothingToAbort(_) => Vec::new(),
        };
        listed
            .into_iter()
            .chain(self.recorded.iter().map(|(_, a)| a))
            .filter(|action| matches!(action, Action::Failed(_)))
            .count()
    }
}

/// Lists the store's incomplete uploads and aborts those older than `older_than`, then the
/// recorded ones as old; with `dry_run` nothing is aborted. Counts aborts in `metrics`.
pub async fn cleanup(
    db: &Db,
    archive: &Archive,
    metrics: &Metrics,
    older_than: Duration,
    dry_run: bool,
) -> Result<Cleanup, CleanupError> {
    let now = now_millis();
    let age_ms = i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
    let cutoff = now.saturating_sub(age_ms);
    let live: HashSet<String> = uploads::live(db, now).await?.into_iter().collect();
    let abort = async |key: &str, upload_id: &str| -> Action {
        if dry_run {
            return Action::WouldAbort;
        }
        match archive.abort_upload(key, upload_id).await {
            Ok(UploadAbort::Aborted) => {
                Metrics::add(&metrics.storage_uploads_aborted, 1);
                Action::Aborted
            }
            Ok(UploadAbort::AlreadyGone) => Action::AlreadyGone,
            Err(err) => Action::Failed(err.to_string()),
        }
    };

    let listed = match archive.incomplete_uploads().await? {
        IncompleteUploads::NothingToAbort(why) => Listing::NothingToAbort(why),
        IncompleteUploads::Listed(found) => {
            let mut uploads = Vec::with_capacity(found.len());
            for upload in found {
                let action = match kept(&upload, &live, cutoff) {
                    Some(kept) => kept,
                    None => abort(&upload.key, &upload.upload_id).await,
                };
                uploads.push((upload, action));
            }
            Listing::Uploads(uploads)
        }
    };

    let mut recorded = Vec::new();
    if !matches!(listed, Listing::NothingToAbort(_)) {
        // Opened at or before the cutoff; `abandoned` leaves out what a live lease holds.
        for upload in uploads::abandoned(db, cutoff.saturating_add(1), now, RECORDED_LIMIT).await? {
            let action = abort(&upload.object_key, &upload.upload_id).await;
            if matches!(action, Action::Aborted | Action::AlreadyGone) {
                uploads::closed(db, &upload.upload_id).await?;
            }
            recorded.push((upload, action));
        }
    }
    Ok(Cleanup { listed, recorded })
}

/// Why a listed upload is left alone, or None when it is to be aborted: it was initiated at
/// or before `cutoff` (epoch ms) and no live lease holds it.
fn kept(upload: &IncompleteUpload, live: &HashSet<String>, cutoff: i64) -> Option<Action> {
    if live.contains(&upload.upload_id) {
        Some(Action::Live)
    } else if upload.initiated.timestamp_millis() > cutoff {
        Some(Action::Young)
    } else {
        None
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error("{0}")]
    Queue(#[from] QueueError),
    #[error("{0}")]
    Storage(#[from] crate::storage::StorageError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::tests::boto::{boto3_create_upload, boto3_incomplete_uploads};
    use crate::storage::tests::servers::{s3_archive, s3_endpoint};

    async fn sqlite_queue() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}/q.db", dir.path().display()), 2)
            .await
            .unwrap();
        db.migrate().await.unwrap();
        (dir, db)
    }

    fn actions(found: &Cleanup) -> Vec<(String, Action)> {
        match &found.listed {
            Listing::Uploads(uploads) => uploads
                .iter()
                .map(|(upload, action)| (upload.upload_id.clone(), action.clone()))
                .collect(),
            Listing::NothingToAbort(why) => panic!("S3 lists its uploads: {why}"),
        }
    }

    #[test]
    fn only_uploads_past_the_cutoff_that_no_lease_holds_are_aborted() {
        let at = |ms| IncompleteUpload {
            key: "k".into(),
            upload_id: "id".into(),
            initiated: chrono::DateTime::from_timestamp_millis(ms).unwrap(),
        };
        let none = HashSet::new();
        let live = HashSet::from(["id".to_owned()]);
        assert_eq!(kept(&at(1000), &none, 999), Some(Action::Young));
        assert_eq!(kept(&at(1000), &none, 1000), None, "exactly at the cutoff");
        assert_eq!(kept(&at(10), &none, 1000), None);
        assert_eq!(
            kept(&at(10), &live, 1000),
            Some(Action::Live),
            "whatever its age"
        );
    }

    // moto reports every upload as initiated 2010-11-10T20:48:33Z, so here every upload is
    // old; the age rule is the test above.
    #[tokio::test]
    async fn cleanup_lists_in_a_dry_run_then_aborts_old_uploads_and_stale_records() {
        let Some((archive, bucket)) = s3_archive(&[]).await else {
            return;
        };
        let moto = s3_endpoint().unwrap();
        let (_dir, db) = sqlite_queue().await;
        let metrics = Metrics::default();
        let id = boto3_create_upload(&moto, &bucket, "call/rec/chunk-0000.mp4");
        // A record of an upload S3 has already forgotten: struck off as gone.
        uploads::opened(&db, 9, "call/rec/chunk-0009.mp4", "forgotten", 0)
            .await
            .unwrap();

        let dry = cleanup(&db, &archive, &metrics, Duration::ZERO, true)
            .await
            .unwrap();
        assert_eq!(actions(&dry), vec![(id.clone(), Action::WouldAbort)]);
        assert_eq!(
            boto3_incomplete_uploads(&moto, &bucket),
            vec![("call/rec/chunk-0000.mp4".to_owned(), id.clone())],
            "a dry run aborts nothing"
        );
        assert_eq!(uploads::of_job(&db, 9).await.unwrap().len(), 1);

        let done = cleanup(&db, &archive, &metrics, Duration::ZERO, false)
            .await
            .unwrap();
        assert_eq!(actions(&done), vec![(id, Action::Aborted)]);
        assert_eq!(
            done.recorded
                .iter()
                .map(|(u, a)| (u.upload_id.as_str(), a.clone()))
                .collect::<Vec<_>>(),
            vec![("forgotten", Action::AlreadyGone)]
        );
        assert_eq!(done.failures(), 0);
        assert_eq!(Metrics::get(&metrics.storage_uploads_aborted), 1);
        assert_eq!(boto3_incomplete_uploads(&moto, &bucket), vec![]);
        assert!(uploads::of_job(&db, 9).await.unwrap().is_empty());
    }
}
