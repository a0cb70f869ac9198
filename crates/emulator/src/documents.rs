//! Recording documents: what a test puts in the emulator, where the emulator serves it, and
//! the metadata document ACS writes beside each chunk.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::events::azure_time;
use crate::media::MediaSpec;

/// The ACS resource id the generated documents claim to come from (the samples' one).
pub const RESOURCE_ID: &str = "631fa8d8-1b2c-4d3e-8f90-a1b2c3d4e5f6";

/// One recording chunk to serve.
#[derive(Debug, Clone)]
pub struct DocumentSpec {
    /// ACS's `documentId`, the key of every download URL.
    pub document_id: String,
    /// The media bytes.
    pub media: MediaSpec,
    /// The metadata document; `None` generates one shaped like ACS's (served as
    /// `application/octet-stream`).
    pub metadata: Option<Bytes>,
    /// Used in the generated metadata.
    pub call_id: String,
    /// Used in the generated metadata.
    pub chunk_index: u32,
    /// When ACS wrote the chunk; retention counts from here.
    pub created_at: DateTime<Utc>,
}

/// The GA-style absolute download URLs of a document on the emulator, as an event's
/// `contentLocation`, `metadataLocation` and `deleteLocation` carry them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentUrls {
    /// `…/v1/objects/{documentId}/content/video`.
    pub content: url::Url,
    /// `…/v1/objects/{documentId}/content/acsmetadata`.
    pub metadata: url::Url,
    /// `…/v1/objects/{documentId}/content/deletedata`.
    pub delete: url::Url,
}

impl DocumentUrls {
    /// The URLs of `document_id` on the emulator at `endpoint`; the id is percent-encoded
    /// as one path segment.
    pub fn on(endpoint: &url::Url, document_id: &str) -> Self {
        let url = |last: &str| {
            let mut url = endpoint.clone();
            if let Ok(mut segments) = url.path_segments_mut() {
                segments
                    .pop_if_empty()
                    .extend(["v1", "objects", document_id, "content", last]);
            }
            url
        };
        Self {
            content: url("video"),
            metadata: url("acsmetadata"),
            delete: url("deletedata"),
        }
    }
}

/// A document as the emulator keeps it.
pub(crate) struct Document {
    pub(crate) media: MediaSpec,
    pub(crate) metadata: Bytes,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) deleted: bool,
    /// Filled the first time someone asks, outside the store's lock: hashing a GiB takes time.
    pub(crate) media_sha256: std::sync::Arc<std::sync::OnceLock<String>>,
}

impl Document {
    pub(crate) fn new(spec: DocumentSpec) -> Self {
        let metadata = spec.metadata.clone().unwrap_or_else(|| {
            generated_metadata(
                &spec.document_id,
                &spec.call_id,
                spec.chunk_index,
                spec.created_at,
            )
        });
        Self {
            media: spec.media,
            metadata,
            created_at: spec.created_at,
            deleted: false,
            media_sha256: Default::default(),
        }
    }

    /// Whether the document can still be downloaded at `now`.
    pub(crate) fn available(&self, now: DateTime<Utc>, retention: chrono::Duration) -> bool {
        !self.deleted && now < self.created_at + retention
    }
}

/// A metadata document shaped exactly like ACS's (see samples/recording-metadata.json).
/// `contentType` and `channelType` carry each other's values, as they do in real documents,
/// so clients are exercised against the quirk they will meet.
pub fn generated_metadata(
    document_id: &str,
    call_id: &str,
    chunk_index: u32,
    chunk_start: DateTime<Utc>,
) -> Bytes {
    let document = serde_json::json!({
        "resourceId": RESOURCE_ID,
        "callId": call_id,
        "chunkDocumentId": document_id,
        "chunkIndex": chunk_index,
        "chunkStartTime": azure_time(chunk_start),
        "chunkDuration": 600_000,
        "pauseResumeIntervals": [
            { "startTime": azure_time(chunk_start + chrono::Duration::seconds(60)), "duration": 5220 }
        ],
        "recordingInfo": {
            "contentType": "mixed",
            "channelType": "audioVideo",
            "format": "mp4",
            "audioConfiguration": { "sampleRate": 16000, "bitRate": 128000, "channels": 1 },
            "videoConfiguration": {
                "longerSideLength": 1920,
                "shorterSideLength": 1080,
                "framerate": 8,
                "bitRate": 1000000
            }
        },
        "participants": [
            { "participantId": participant_id(call_id, 0) },
            { "participantId": participant_id(call_id, 1) }
        ]
    });
    Bytes::from(serde_json::to_vec_pretty(&document).unwrap_or_default())
}

/// A stable ACS user id (`8:acs:{resource}_{guid}`) for participant `n` of a call.
pub(crate) fn participant_id(call_id: &str, n: u8) -> String {
    let digest = hex::encode(Sha256::digest(format!("{call_id}/{n}")));
    format!(
        "8:acs:{RESOURCE_ID}_{}-{}-{}-{}-{}",
        &digest[0..8],
        &digest[8..12],
        &digest[12..16],
        &digest[16..20],
        &digest[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_ga_shaped_and_absolute() {
        let endpoint = url::Url::parse("http://127.0.0.1:8090/").unwrap();
        let urls = DocumentUrls::on(&endpoint, "0-eus-d1-abc");
        assert_eq!(
            urls.content.as_str(),
            "http://127.0.0.1:8090/v1/objects/0-eus-d1-abc/content/video"
        );
        assert_eq!(
            urls.metadata.as_str(),
            "http://127.0.0.1:8090/v1/objects/0-eus-d1-abc/content/acsmetadata"
        );
        assert_eq!(
            urls.delete.as_str(),
            "http://127.0.0.1:8090/v1/objects/0-eus-d1-abc/content/deletedata"
        );
    }

    #[test]
    fn generated_metadata_has_every_key_of_the_sample() {
        let sample: serde_json::Value = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/recording-metadata.json"
        )))
        .unwrap();
        let generated: serde_json::Value =
            serde_json::from_slice(&generated_metadata("doc", "call", 3, Utc::now())).unwrap();
        assert_same_shape(&sample, &generated, "$");
        assert_eq!(generated["callId"], "call");
        assert_eq!(generated["chunkDocumentId"], "doc");
        assert_eq!(generated["chunkIndex"], 3);
    }

    fn assert_same_shape(sample: &serde_json::Value, generated: &serde_json::Value, at: &str) {
        use serde_json::Value::*;
        match (sample, generated) {
            (Object(a), Object(b)) => {
                let keys_a: Vec<_> = a.keys().collect();
                let keys_b: Vec<_> = b.keys().collect();
                assert_eq!(keys_a, keys_b, "keys at {at}");
                for (key, value) in a {
                    assert_same_shape(value, &b[key], &format!("{at}.{key}"));
                }
            }
            (Array(a), Array(b)) => {
                assert_eq!(a.is_empty(), b.is_empty(), "array at {at}");
                if let (Some(a), Some(b)) = (a.first(), b.first()) {
                    assert_same_shape(a, b, &format!("{at}[0]"));
                }
            }
            (a, b) => assert_eq!(
                std::mem::discriminant(a),
                std::mem::discriminant(b),
                "type at {at}"
            ),
        }
    }
}
