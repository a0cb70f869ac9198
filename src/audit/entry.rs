//! One audit record: what is appended ([`AuditEntry`]), what is stored ([`AuditRecord`]), and
//! the canonical encoding its hash is computed over.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::actor::Actor;
use crate::queue::now_millis;

/// What was done. Stored as its `snake_case` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// A chunk's media and metadata were archived (the worker, in the finishing transaction).
    Archived,
    /// Re-reading an archived recording found a missing or changed object.
    VerifyFailed,
    /// A failed or expired job was put back to pending.
    Replayed,
    /// A quarantined event was validated again and accepted.
    QuarantineReplayed,
    /// Recordings were exported.
    Exported,
    /// A recording was erased.
    Erased,
    /// A legal hold was set on a recording's objects.
    Held,
    /// A legal hold was released.
    Released,
    /// A retention run deleted what had outlived its retention.
    RetentionRun,
}

impl Action {
    pub const ALL: [Action; 9] = [
        Action::Archived,
        Action::VerifyFailed,
        Action::Replayed,
        Action::QuarantineReplayed,
        Action::Exported,
        Action::Erased,
        Action::Held,
        Action::Released,
        Action::RetentionRun,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Archived => "archived",
            Action::VerifyFailed => "verify_failed",
            Action::Replayed => "replayed",
            Action::QuarantineReplayed => "quarantine_replayed",
            Action::Exported => "exported",
            Action::Erased => "erased",
            Action::Held => "held",
            Action::Released => "released",
            Action::RetentionRun => "retention_run",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|action| action.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not an audit action"))
    }
}

/// A detail larger than this (canonical JSON) is replaced by its size and sha256, so one
/// record never grows without bound with what a caller passed (an error text, a list of ids).
pub const MAX_DETAIL_BYTES: usize = 16 * 1024;
/// Names longer than this are cut (an actor, a recording key).
const MAX_NAME_BYTES: usize = 512;

/// A record to append: `AuditEntry::new(&actor, Action::Held).recording(id, key).detail(json!({…}))`.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub(super) at: i64,
    pub(super) actor: String,
    pub(super) action: Action,
    pub(super) recording_id: Option<i64>,
    pub(super) recording_key: Option<String>,
    pub(super) detail: Value,
}

impl AuditEntry {
    /// `actor` did `action` now, with an empty detail and no recording.
    pub fn new(actor: &Actor, action: Action) -> Self {
        Self {
            at: now_millis(),
            actor: bounded(&actor.name),
            action,
            recording_id: None,
            recording_key: None,
            detail: json!({}),
        }
    }

    /// The recording it concerns: its row id, and a name that outlives the row (the
    /// `callId/recordingKey` it was archived under; see [`AuditEntry::recording_name`]).
    pub fn recording(mut self, id: i64, key: impl AsRef<str>) -> Self {
        self.recording_id = Some(id);
        self.recording_key = Some(bounded(key.as_ref()));
        self
    }

    /// What else a reader needs (object keys, digests, counts, the reason). Any JSON value.
    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }

    /// When it happened (milliseconds since the epoch), instead of now.
    pub fn at(mut self, at: i64) -> Self {
        self.at = at;
        self
    }

    /// The name a record gives a recording: `{callId}/{recordingKey}` as the database holds them.
    pub fn recording_name(call_id: &str, recording_key: &str) -> String {
        format!("{call_id}/{recording_key}")
    }

    /// The detail as canonical JSON, or a stand-in naming its size and sha256 when too large.
    pub(super) fn canonical_detail(&self) -> Value {
        let text = canonical(&self.detail);
        if text.len() <= MAX_DETAIL_BYTES {
            return self.detail.clone();
        }
        json!({
            "detail_truncated": true,
            "bytes": text.len(),
            "sha256": hex::encode(Sha256::digest(text.as_bytes())),
        })
    }
}

/// A record as stored, in the database and, one per line, in the store's objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// Milliseconds since the epoch; never earlier than the record before.
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub recording_id: Option<i64>,
    pub recording_key: Option<String>,
    pub detail: Value,
    /// The hash of record `seq - 1` ([`GENESIS_HASH`](super::GENESIS_HASH) for the first).
    pub prev_hash: String,
    /// sha256 (hex) of [`AuditRecord::hashed_bytes`].
    pub hash: String,
}

impl AuditRecord {
    /// The bytes the hash covers: RFC 8785 canonical JSON of every field but `hash`, so the
    /// chain can be re-checked with any JSON canonicaliser and sha256.
    pub fn hashed_bytes(&self) -> Vec<u8> {
        canonical(&json!({
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "recording_id": self.recording_id,
            "recording_key": self.recording_key,
            "detail": self.detail,
            "prev_hash": self.prev_hash,
        }))
        .into_bytes()
    }

    /// The hash this record's contents call for.
    pub fn expected_hash(&self) -> String {
        hex::encode(Sha256::digest(self.hashed_bytes()))
    }

    /// One line of a store object: the canonical JSON of every field, hash included.
    pub fn json_line(&self) -> String {
        canonical(&serde_json::to_value(self).unwrap_or(Value::Null))
    }
}

/// RFC 8785 canonical JSON; a `Value` always canonicalises (its numbers are finite).
pub(super) fn canonical(value: &Value) -> String {
    serde_json_canonicalizer::to_string(value).unwrap_or_else(|_| value.to_string())
}

/// `text` cut to at most [`MAX_NAME_BYTES`] at a character boundary.
fn bounded(text: &str) -> String {
    let mut end = text.len().min(MAX_NAME_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{GENESIS_HASH, Role};

    fn record() -> AuditRecord {
        let mut record = AuditRecord {
            seq: 1,
            at: 1_764_000_000_000,
            actor: "alice".into(),
            action: "held".into(),
            recording_id: Some(7),
            recording_key: Some("call/rec".into()),
            detail: json!({"objects": 3, "b": [1, "x"]}),
            prev_hash: GENESIS_HASH.into(),
            hash: String::new(),
        };
        record.hash = record.expected_hash();
        record
    }

    #[test]
    fn actions_round_trip_through_their_names() {
        for action in Action::ALL {
            assert_eq!(action.as_str().parse::<Action>(), Ok(action));
        }
        assert!("deleted".parse::<Action>().is_err());
    }

    #[test]
    fn the_hash_covers_every_field_and_the_link() {
        let original = record();
        let changes: [fn(&mut AuditRecord); 8] = [
            |r| r.seq = 2,
            |r| r.at += 1,
            |r| r.actor = "bob".into(),
            |r| r.action = "released".into(),
            |r| r.recording_id = None,
            |r| r.recording_key = Some("call/other".into()),
            |r| r.detail = json!({"objects": 4, "b": [1, "x"]}),
            |r| r.prev_hash = "1".repeat(64),
        ];
        for change in changes {
            let mut changed = original.clone();
            change(&mut changed);
            assert_ne!(changed.expected_hash(), original.hash, "{changed:?}");
        }
    }

    #[test]
    fn a_line_reads_back_to_the_same_record_and_hash() {
        let original = record();
        let line = original.json_line();
        assert!(!line.contains('\n'));
        let read: AuditRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(read, original);
        assert_eq!(read.expected_hash(), original.hash);
    }

    #[test]
    fn an_oversized_detail_is_replaced_by_its_digest() {
        let actor = Actor::token("ops", Role::Operator);
        let entry = AuditEntry::new(&actor, Action::Exported)
            .detail(json!({"ids": "x".repeat(MAX_DETAIL_BYTES)}));
        let detail = entry.canonical_detail();
        assert_eq!(detail["detail_truncated"], json!(true));
        assert_eq!(detail["sha256"].as_str().unwrap().len(), 64);
        let small = AuditEntry::new(&actor, Action::Exported).detail(json!({"n": 1}));
        assert_eq!(small.canonical_detail(), json!({"n": 1}));
    }
}
