//! `tombstone.json`: what an erasure leaves in a recording's folder. It says what was erased
//! (each object's key, size and sha256, as the database and the manifest knew them), when,
//! why and by whom, and nothing the recording held: no participant, no media.

use serde::{Deserialize, Serialize};

pub const SCHEMA: &str = "callvault.tombstone/v1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tombstone {
    pub schema: String,
    pub call_id: String,
    pub recording_id: Option<String>,
    pub server_call_id: Option<String>,
    /// The recording's folder below its call.
    pub recording_key: String,
    pub recording_start_time: Option<String>,
    /// When the erasure started (RFC 3339).
    pub erased_at: String,
    /// Who asked: an operator's name, or `retention`.
    pub erased_by: String,
    /// `request` or `retention`.
    pub origin: String,
    pub reason: String,
    /// Every object the recording had, as recorded when it was written.
    pub objects: Vec<ErasedObject>,
    /// The sha256 of every manifest version the chain recorded (signed manifests), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifest_versions: Vec<String>,
}

/// One object that was erased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasedObject {
    pub key: String,
    pub bytes: u64,
    pub sha256: String,
}

impl Tombstone {
    /// The bytes written: pretty JSON, like the manifest.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a tombstone always serialises")
    }
}
