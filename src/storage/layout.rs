//! Where each object goes: `{prefix}{callId}/{recordingKey}/chunk-{index:04}.{ext}` and friends.
//!
//! Every segment that comes from an event is sanitised, so no id can climb out of the
//! archive root or collide with object_store's `NAME#N` staging files. The mapping is
//! injective: a clean value keeps its name, and a value that sanitising changed or cut ends in
//! `~` and part of its sha256, which no clean value can contain, so two ids never share a folder.

use object_store::path::Path;
use sha2::{Digest, Sha256};

/// The longest segment written, in bytes (the suffix included).
pub const MAX_SEGMENT: usize = 200;
/// `~` and 8 hex digits of the raw value's sha256.
const HASH_SUFFIX: usize = 9;

/// Characters a segment keeps as they are; `~` is not one of them, so it marks a hashed name.
fn is_kept(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '=' | '+' | '-')
}

/// A value that is already a safe segment: kept characters only, not starting with `.`
/// (so never `.` or `..`), not empty, not too long.
fn is_clean(raw: &str) -> bool {
    !raw.is_empty() && raw.len() <= MAX_SEGMENT && !raw.starts_with('.') && raw.chars().all(is_kept)
}

/// One path segment made safe: only `[A-Za-z0-9._=+-]`, never `.`/`..`, never empty, at most
/// [`MAX_SEGMENT`] bytes. A clean value is returned unchanged; any other gets its unsafe
/// characters replaced by `_`, is cut to fit, and ends in `~` plus 8 hex digits of the raw
/// value's sha256, so that `a b`, `a:b` and `a_b` (or `.x` and `_x`) stay apart.
pub fn sanitise_segment(raw: &str) -> String {
    if is_clean(raw) {
        return raw.to_owned();
    }
    let mut clean: String = raw
        .chars()
        .map(|c| if is_kept(c) { c } else { '_' })
        .take(MAX_SEGMENT - HASH_SUFFIX)
        .collect();
    if clean.is_empty() {
        clean.push('_');
    }
    if clean.starts_with('.') {
        clean.replace_range(0..1, "_");
    }
    let digest = Sha256::digest(raw.as_bytes());
    clean.push('~');
    clean.push_str(&hex::encode(&digest[..4]));
    clean
}

/// A key as written (by [`RecordingLayout`]) or as stored (in the database, in a manifest)
/// back into a `Path`, verbatim: `Path::from` would percent-encode the `~` of a hashed
/// segment and so name another object.
pub fn object_key(key: &str) -> Path {
    Path::parse(key).unwrap_or_else(|_| Path::from(key))
}

/// The folder of one recording below the storage prefix: `{callId}/{recordingKey}`, sanitised.
pub fn recording_folder(call_id: &str, recording_key: &str) -> String {
    format!(
        "{}/{}",
        sanitise_segment(call_id),
        sanitise_segment(recording_key)
    )
}

/// The configured prefix as keys begin with it: its segments sanitised, each followed by `/`
/// (`recordings` → `recordings/`; empty stays empty).
pub fn prefix_of(prefix: &str) -> String {
    prefix
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| format!("{}/", sanitise_segment(segment)))
        .collect()
}

/// The folder of the audit trail's copy, `{prefix}audit/`. No recording's object can be
/// there: a recording folder below a call named `audit` holds only `chunk-…` and
/// `manifest.json` objects, never `<seq>-<seq>.jsonl`.
pub fn audit_folder(prefix: &str) -> String {
    format!("{}audit/", prefix_of(prefix))
}

/// The object keys of one recording.
#[derive(Debug, Clone)]
pub struct RecordingLayout {
    folder: String,
}

impl RecordingLayout {
    /// `prefix` is used as configured (operators write e.g. `recordings/`), its segments sanitised too.
    pub fn new(prefix: &str, call_id: &str, recording_key: &str) -> Self {
        Self {
            folder: format!(
                "{}{}",
                prefix_of(prefix),
                recording_folder(call_id, recording_key)
            ),
        }
    }

    pub fn media(&self, index: u32, extension: &str) -> Path {
        object_key(&format!("{}/chunk-{index:04}.{extension}", self.folder))
    }

    pub fn metadata(&self, index: u32) -> Path {
        object_key(&format!("{}/chunk-{index:04}.metadata.json", self.folder))
    }

    pub fn manifest(&self) -> Path {
        object_key(&format!("{}/manifest.json", self.folder))
    }

    /// What an erasure leaves in the recording's place: what was erased, when, why, by whom.
    pub fn tombstone(&self) -> Path {
        object_key(&format!("{}/tombstone.json", self.folder))
    }

    /// The recording's folder, which holds all its objects.
    pub fn folder(&self) -> Path {
        object_key(&self.folder)
    }
}

/// The media file extension for `recordingFormatType` (mp4 when absent, as the preview API serves).
pub fn media_extension(format_type: Option<&str>) -> &'static str {
    match format_type.map(str::to_ascii_lowercase).as_deref() {
        Some("mp3") => "mp3",
        Some("wav") => "wav",
        _ => "mp4",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_contract() {
        let layout = RecordingLayout::new("recordings/", "4ab31c52", "20261127T092023Z");
        assert_eq!(
            layout.media(3, "mp4").as_ref(),
            "recordings/4ab31c52/20261127T092023Z/chunk-0003.mp4"
        );
        assert_eq!(
            layout.metadata(0).as_ref(),
            "recordings/4ab31c52/20261127T092023Z/chunk-0000.metadata.json"
        );
        assert_eq!(
            layout.manifest().as_ref(),
            "recordings/4ab31c52/20261127T092023Z/manifest.json"
        );
    }

    #[test]
    fn hostile_ids_cannot_escape_or_collide_with_staging_files() {
        let layout = RecordingLayout::new("", "../../etc", "a/b#1");
        assert_eq!(
            layout.manifest().as_ref(),
            "_._.._etc~74ccf3c5/a_b_1~9b18ccba/manifest.json"
        );
        assert_eq!(sanitise_segment(".."), "_.~5ec1f7e7");
        assert_eq!(sanitise_segment(""), "_~e3b0c442");
        assert!(sanitise_segment("a\u{0}b\nc").starts_with("a_b_c~"));
        assert_eq!(sanitise_segment(&"x".repeat(500)).len(), MAX_SEGMENT);
    }

    #[test]
    fn clean_values_keep_their_names() {
        for clean in [
            "4ab31c52-3cc8-4d3d-9a5a-1a2b3c4d5e6f",
            "20261127T092023Z",
            "20261127T092023Z-2",
            "eyJQbGF0Zm9ybUVuZHBvaW50SWQiOiIxMjM0In0",
            "a_b",
            "x.y=z+1",
            &"x".repeat(MAX_SEGMENT),
        ] {
            assert_eq!(sanitise_segment(clean), clean);
        }
    }

    #[test]
    fn values_that_sanitise_alike_get_different_segments() {
        assert_eq!(sanitise_segment("call a b"), "call_a_b~150bba17");
        assert_eq!(sanitise_segment("call_a_b"), "call_a_b");
        assert_eq!(sanitise_segment(".x"), "_x~bb42e4c6");
        assert_eq!(sanitise_segment("_x"), "_x");
        assert_eq!(sanitise_segment("a:b"), "a_b~6783a31e");
        assert_eq!(sanitise_segment("a b"), "a_b~c8687a08");

        let shared = "i".repeat(MAX_SEGMENT);
        let (first, second) = (format!("{shared}1"), format!("{shared}2"));
        let (a, b) = (sanitise_segment(&first), sanitise_segment(&second));
        assert_ne!(a, b);
        assert!(a.len() <= MAX_SEGMENT && b.len() <= MAX_SEGMENT);
        assert_ne!(
            sanitise_segment(&shared),
            a,
            "a clean value never looks hashed"
        );
    }

    #[test]
    fn a_hashed_name_cannot_be_forged_by_a_raw_value() {
        // `~` is never kept, so a raw value spelling a hashed name is itself hashed.
        let hashed = sanitise_segment(".x");
        assert_ne!(sanitise_segment(&hashed), hashed);
    }

    #[test]
    fn extension_follows_the_format() {
        assert_eq!(media_extension(Some("Wav")), "wav");
        assert_eq!(media_extension(Some("Mp3")), "mp3");
        assert_eq!(media_extension(None), "mp4");
    }
}
