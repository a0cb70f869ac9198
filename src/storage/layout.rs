//! Where each object goes: `{prefix}{callId}/{recordingKey}/chunk-{index:04}.{ext}` and friends.
//!
//! Every segment that comes from an event is sanitised, so no id can climb out of the
//! archive root or collide with object_store's `NAME#N` staging files.

use object_store::path::Path;

/// One path segment made safe: only `[A-Za-z0-9._=+-]`, never `.`/`..`, never empty,
/// at most 200 bytes. Anything else becomes `_`.
pub fn sanitise_segment(raw: &str) -> String {
    let mut clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '=' | '+' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect();
    if clean.is_empty() {
        clean.push('_');
    }
    if clean.starts_with('.') {
        clean.replace_range(0..1, "_");
    }
    clean
}

/// The object keys of one recording.
#[derive(Debug, Clone)]
pub struct RecordingLayout {
    folder: String,
}

impl RecordingLayout {
    /// `prefix` is used as configured (operators write e.g. `recordings/`), its segments sanitised too.
    pub fn new(prefix: &str, call_id: &str, recording_key: &str) -> Self {
        let prefix: String = prefix
            .split('/')
            .filter(|segment| !segment.is_empty())
            .map(|segment| format!("{}/", sanitise_segment(segment)))
            .collect();
        Self {
            folder: format!(
                "{prefix}{}/{}",
                sanitise_segment(call_id),
                sanitise_segment(recording_key)
            ),
        }
    }

    pub fn media(&self, index: u32, extension: &str) -> Path {
        Path::from(format!("{}/chunk-{index:04}.{extension}", self.folder))
    }

    pub fn metadata(&self, index: u32) -> Path {
        Path::from(format!("{}/chunk-{index:04}.metadata.json", self.folder))
    }

    pub fn manifest(&self) -> Path {
        Path::from(format!("{}/manifest.json", self.folder))
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
        assert_eq!(layout.manifest().as_ref(), "_._.._etc/a_b_1/manifest.json");
        assert_eq!(sanitise_segment(".."), "_.");
        assert_eq!(sanitise_segment(""), "_");
        assert_eq!(sanitise_segment("a\u{0}b\nc"), "a_b_c");
        assert_eq!(sanitise_segment(&"x".repeat(500)).len(), 200);
    }

    #[test]
    fn extension_follows_the_format() {
        assert_eq!(media_extension(Some("Wav")), "wav");
        assert_eq!(media_extension(Some("Mp3")), "mp3");
        assert_eq!(media_extension(None), "mp4");
    }
}
