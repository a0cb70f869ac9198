//! One chunk transfer: metadata and media from ACS into the archive, streamed, hashed,
//! size-checked, resumed with a Range request when the stream breaks.

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::path::Path;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE};
use tokio_util::sync::CancellationToken;

use super::WorkerContext;
use super::retry::{EMPTY_ATTEMPTS, TransferError};
use crate::acs::{DownloadUrl, Fetch};
use crate::metrics::Metrics;
use crate::participant_id::ChunkParticipants;
use crate::queue::jobs::ArchivedChunk;
use crate::queue::{Job, erasures, recordings};
use crate::storage::{ObjectDigest, Publication};

/// A metadata document is a few KiB; refuse anything absurd rather than buffer it.
const METADATA_LIMIT: usize = 1024 * 1024;
/// Range resumes allowed within one attempt before it counts as failed.
const MAX_RESUMES: u32 = 8;

/// Archives one chunk; the caller records the outcome.
pub async fn archive_chunk(
    ctx: &WorkerContext,
    job: &Job,
    cancel: &CancellationToken,
) -> Result<ArchivedChunk, TransferError> {
    let recording = recordings::get(&ctx.db, job.recording_id)
        .await?
        .ok_or(TransferError::MissingRecording)?;
    if recording.erased_at.is_some() {
        return Err(erased(job));
    }
    // Checked again here, for its purpose and this job's documentId: the URL was guarded at
    // ingest, but configuration may have changed since and the row may not be what ingest wrote.
    let guard = |raw: &str, fetch| {
        ctx.guard
            .stored_download(raw, fetch, &job.document_id)
            .map_err(|err| TransferError::Refused(err.to_string()))
    };
    let content = guard(&job.content_url, Fetch::Media)?;
    let metadata_url = guard(&job.metadata_url, Fetch::Metadata)?;
    let layout = ctx
        .archive
        .layout(&recording.call_id, &recording.recording_key);
    let index = u32::try_from(job.chunk_index)
        .map_err(|_| TransferError::Integrity("chunk index out of range".into()))?;

    // An upload an earlier attempt could not abort (the store was down) is aborted now.
    super::uploads::abort_left_by_earlier_attempts(&ctx.db, &ctx.archive, &ctx.metrics, job.id)
        .await;
    let metadata = download_small(ctx, &metadata_url, cancel).await?;
    // Both documents are renamed into the recording folder, which is then synced once.
    let mut publication = Publication::default();
    let media = stream_media(
        ctx,
        &content,
        &layout.media(index, &recording.media_extension),
        job.id,
        job.attempts,
        cancel,
        &mut publication,
    )
    .await?;
    let metadata_digest = ctx
        .archive
        .put_bytes_once_into(&layout.metadata(index), metadata.clone(), &mut publication)
        .await?;
    publication.make_durable().await?;
    // An erasure that started while this chunk was in flight listed the folder before these
    // objects were there (or after: then it deleted them). Either way they must go, and the
    // erasure's own re-run would not know of them once it is done.
    if erasures::is_erased(&ctx.db, job.recording_id).await? {
        ctx.archive.erase_objects(&layout).await?;
        return Err(erased(job));
    }
    let ids = participants(&metadata);
    // The queue indexes what the participant index accepts; what it leaves out is counted here,
    // where the metrics are.
    let skipped = ChunkParticipants::read(ids.iter().map(String::as_str)).skipped;
    Metrics::add(&ctx.metrics.participant_ids_skipped, skipped.total());
    Ok(ArchivedChunk {
        media_key: media.key,
        media_bytes: media.bytes,
        media_sha256: media.sha256,
        metadata_key: metadata_digest.key,
        metadata_bytes: metadata_digest.bytes,
        metadata_sha256: metadata_digest.sha256,
        participants: serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into()),
        timing: super::chunk_timing::chunk_timing(&metadata),
    })
}

/// The recording was erased: nothing of it is archived again.
fn erased(job: &Job) -> TransferError {
    TransferError::Refused(format!(
        "recording {} was erased; chunk {} is not archived",
        job.recording_id, job.chunk_index
    ))
}

/// The part of a metadata document the manifest uses; every other field is ignored.
#[derive(serde::Deserialize)]
struct MetadataDocument {
    participants: Option<Vec<ParticipantEntry>>,
}

/// One entry of `participants`; an entry without a string `participantId` is skipped.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum ParticipantEntry {
    Participant {
        #[serde(rename = "participantId")]
        participant_id: String,
    },
    Other(serde::de::IgnoredAny),
}

/// The participant ids of a metadata document, read loosely: the document is archived as
/// is whatever it holds, and one that is not JSON simply names no participant.
pub fn participants(document: &[u8]) -> Vec<String> {
    serde_json::from_slice::<MetadataDocument>(document)
        .ok()
        .and_then(|doc| doc.participants)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|entry| match entry {
            ParticipantEntry::Participant { participant_id } => Some(participant_id),
            ParticipantEntry::Other(_) => None,
        })
        .collect()
}

async fn download_small(
    ctx: &WorkerContext,
    url: &DownloadUrl,
    cancel: &CancellationToken,
) -> Result<Bytes, TransferError> {
    let response = tokio::select! {
        _ = cancel.cancelled() => return Err(TransferError::Cancelled),
        response = ctx.acs.get(url, 0) => response?,
    };
    let too_large = || {
        TransferError::Integrity(format!(
            "metadata document larger than {METADATA_LIMIT} bytes (1 MiB); ACS writes a few KiB"
        ))
    };
    if response
        .content_length()
        .is_some_and(|length| length > METADATA_LIMIT as u64)
    {
        return Err(too_large());
    }
    let mut body = response.bytes_stream();
    let mut document = Vec::new();
    loop {
        let piece = tokio::select! {
            _ = cancel.cancelled() => return Err(TransferError::Cancelled),
            piece = body.next() => piece,
        };
        match piece {
            Some(Ok(piece)) => {
                if document.len() + piece.len() > METADATA_LIMIT {
                    return Err(too_large());
                }
                document.extend_from_slice(&piece);
            }
            Some(Err(err)) => {
                return Err(TransferError::Source(
                    crate::acs::download::AcsError::Transport(err.to_string()),
                ));
            }
            None => return Ok(Bytes::from(document)),
        }
    }
}

/// Where a response's bytes start and how long the whole object is, from its headers.
fn response_span(
    response: &reqwest::Response,
    requested_offset: u64,
) -> Result<(u64, Option<u64>), TransferError> {
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
    };
    if response.status().as_u16() == 206 {
        let range = header(CONTENT_RANGE)
            .ok_or_else(|| TransferError::Integrity("206 without Content-Range".into()))?;
        let (start, total) = parse_content_range(range).ok_or_else(|| {
            TransferError::Integrity(format!("unreadable Content-Range `{range}`"))
        })?;
        if start != requested_offset {
            return Err(TransferError::Integrity(format!(
                "asked for bytes from {requested_offset}, got from {start}"
            )));
        }
        Ok((start, total))
    } else {
        Ok((0, header(CONTENT_LENGTH).and_then(|v| v.parse().ok())))
    }
}

/// `bytes START-END/TOTAL` (TOTAL may be `*`) → (START, TOTAL).
pub fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    let (start, _end) = span.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()))
}

/// Streams the media into `key`. When an object is already there (an earlier attempt that
/// completed its upload but not its bookkeeping), the bytes are only hashed and compared,
/// never uploaded again.
async fn stream_media(
    ctx: &WorkerContext,
    url: &DownloadUrl,
    key: &Path,
    job: i64,
    attempts: i64,
    cancel: &CancellationToken,
    publication: &mut Publication,
) -> Result<ObjectDigest, TransferError> {
    // The queue records the upload's id before its first part, so no outage can orphan it.
    let archive = ctx
        .archive
        .with_upload_ledger(super::uploads::JobUploads::new(ctx.db.clone(), job));
    let mut writer = archive.writer_unless_archived(key).await?;
    let outcome = copy_with_resume(ctx, url, &mut writer, cancel).await;
    let total = match outcome {
        Ok(total) => total,
        Err(err) => {
            writer.abort().await;
            return Err(err);
        }
    };
    let written = writer.bytes_written();
    if let Some(total) = total.filter(|total| *total != written) {
        writer.abort().await;
        return Err(TransferError::Integrity(format!(
            "ACS announced {total} bytes but sent {written}"
        )));
    }
    if written == 0 && attempts < EMPTY_ATTEMPTS {
        writer.abort().await;
        return Err(TransferError::Integrity(
            "ACS served a 0-byte media file; retrying in case it was not ready".into(),
        ));
    }
    Ok(writer.finish_into(publication).await?)
}

/// Copies the body into `writer`, resuming from the last good offset when the stream breaks.
/// Returns the object's total size when ACS announced one.
async fn copy_with_resume(
    ctx: &WorkerContext,
    url: &DownloadUrl,
    writer: &mut crate::storage::ObjectWriter,
    cancel: &CancellationToken,
) -> Result<Option<u64>, TransferError> {
    let mut resumes = 0;
    let mut total = None;
    loop {
        let offset = writer.bytes_written();
        let response = tokio::select! {
            _ = cancel.cancelled() => return Err(TransferError::Cancelled),
            response = ctx.acs.get(url, offset) => response,
        };
        let response = match response {
            Ok(response) => response,
            // A range past the end means the previous stream broke just after its last byte.
            Err(crate::acs::download::AcsError::Status { status: 416, .. })
                if total == Some(offset) =>
            {
                return Ok(total);
            }
            Err(err) => return Err(err.into()),
        };
        let (start, announced) = response_span(&response, offset)?;
        total = announced.or(total);
        // A server that ignores Range replays from zero: skip what we already have.
        let mut skip = offset - start;
        let mut body = response.bytes_stream();
        let broken = loop {
            let piece = tokio::select! {
                _ = cancel.cancelled() => return Err(TransferError::Cancelled),
                piece = body.next() => piece,
            };
            match piece {
                None => break None,
                Some(Err(err)) => break Some(err),
                Some(Ok(mut piece)) => {
                    if skip > 0 {
                        let dropped = skip.min(piece.len() as u64);
                        skip -= dropped;
                        piece = piece.slice(dropped as usize..);
                    }
                    if !piece.is_empty() {
                        ctx.metrics.bytes_downloaded(piece.len() as u64);
                        writer.write(piece).await?;
                    }
                }
            }
        };
        match broken {
            None if total.is_none_or(|total| writer.bytes_written() >= total) => return Ok(total),
            // The body ended early without an error: treat it as a broken stream too.
            None | Some(_) if resumes < MAX_RESUMES => {
                resumes += 1;
                tracing::info!(url = %url, offset = writer.bytes_written(), resumes, "download stream broke; resuming with a Range request");
            }
            None => return Ok(total),
            Some(err) => {
                return Err(TransferError::Source(
                    crate::acs::download::AcsError::Transport(format!(
                        "stream broke {resumes} times, last at byte {}: {err}",
                        writer.bytes_written()
                    )),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_content_range() {
        assert_eq!(
            parse_content_range("bytes 100-199/1000"),
            Some((100, Some(1000)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }

    #[test]
    fn reads_participants_loosely() {
        let doc = br#"{"participants":[{"participantId":"8:acs:a"},{"channel":1},{"participantId":"8:acs:b"}]}"#;
        assert_eq!(participants(doc), vec!["8:acs:a", "8:acs:b"]);
        assert!(participants(b"not json").is_empty());
        assert!(participants(br#"{"participants":null}"#).is_empty());
        assert!(participants(br#"{"participants":"x"}"#).is_empty());
        let odd = br#"{"participants":[{"participantId":5},"x",null,{"participantId":"8:acs:c","extra":[1]}],"other":{}}"#;
        assert_eq!(participants(odd), vec!["8:acs:c"]);
    }

    #[test]
    fn reads_the_participants_of_the_sample_metadata_document() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/recording-metadata.json"
        );
        assert_eq!(
            participants(&std::fs::read(path).unwrap()),
            vec![
                "8:acs:631fa8d8-1b2c-4d3e-8f90-a1b2c3d4e5f6_0000000c-0d1e-2f3a-4b5c-6d7e8f9a0b1c",
                "8:acs:631fa8d8-1b2c-4d3e-8f90-a1b2c3d4e5f6_0000000c-1a2b-3c4d-5e6f-7a8b9c0d1e2f",
            ]
        );
    }
}
