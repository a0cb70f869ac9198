//! The download paths ACS serves, matched on percent-decoded segments so that an encoded
//! `/` or a dot segment cannot reach another path of the same host.

/// `/v1/objects/{documentId}[/…]`: a GA chunk's content, metadata and delete locations.
pub const GA: &str = "/v1/objects/{documentId}[/…]";
/// Where a stored media URL may point: a GA location or the preview media path.
pub const GA_OR_PREVIEW_MEDIA: &str =
    "/v1/objects/{documentId}[/…] or /recording/download/{documentId}";
/// Where a stored metadata URL may point: a GA location or the preview metadata path.
pub const GA_OR_PREVIEW_METADATA: &str =
    "/v1/objects/{documentId}[/…] or /recording/download/{documentId}/metadata";

/// Which download path a URL has, and for which document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadPath {
    /// `/v1/objects/{documentId}` or a path under it.
    Ga(String),
    /// `/recording/download/{documentId}`.
    PreviewMedia(String),
    /// `/recording/download/{documentId}/metadata`.
    PreviewMetadata(String),
}

impl DownloadPath {
    /// Reads the path of `url`; `None` when it is no download path or has an unsafe segment.
    pub fn of(url: &url::Url) -> Option<Self> {
        let segments = url
            .path_segments()?
            .map(percent_decode)
            .collect::<Option<Vec<_>>>()?;
        if !segments.iter().all(|segment| is_plain_segment(segment)) {
            return None;
        }
        match segments.as_slice() {
            [v1, objects, id, ..] if v1 == "v1" && objects == "objects" => {
                Some(Self::Ga(id.clone()))
            }
            [recording, download, id] if recording == "recording" && download == "download" => {
                Some(Self::PreviewMedia(id.clone()))
            }
            [recording, download, id, metadata]
                if recording == "recording" && download == "download" && metadata == "metadata" =>
            {
                Some(Self::PreviewMetadata(id.clone()))
            }
            _ => None,
        }
    }

    /// The documentId the path names.
    pub fn document_id(&self) -> &str {
        match self {
            Self::Ga(id) | Self::PreviewMedia(id) | Self::PreviewMetadata(id) => id,
        }
    }
}

/// A segment a server cannot read as more than one segment: not empty, not `.` or `..`,
/// no `/`, `\` or control character (after decoding).
pub fn is_plain_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment != "."
        && segment != ".."
        && !segment
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
}

/// Decodes `%XX` escapes; `None` for a malformed escape or bytes that are not UTF-8.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = bytes.get(at + 1..at + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let hex = std::str::from_utf8(hex).ok()?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            at += 3;
        } else {
            decoded.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(raw: &str) -> Option<DownloadPath> {
        DownloadPath::of(&url::Url::parse(raw).unwrap())
    }

    #[test]
    fn reads_the_three_shapes() {
        assert_eq!(
            path("https://h/v1/objects/doc-1/content/video"),
            Some(DownloadPath::Ga("doc-1".into()))
        );
        assert_eq!(
            path("https://h/v1/objects/doc-1"),
            Some(DownloadPath::Ga("doc-1".into()))
        );
        assert_eq!(
            path("https://h/recording/download/doc%201"),
            Some(DownloadPath::PreviewMedia("doc 1".into()))
        );
        assert_eq!(
            path("https://h/recording/download/doc-1/metadata?x=1"),
            Some(DownloadPath::PreviewMetadata("doc-1".into()))
        );
    }

    #[test]
    fn encoded_slashes_and_dot_segments_are_no_download_path() {
        for raw in [
            "https://h/phoneNumbers?api-version=2022-12-01",
            "https://h/calling/recordings/ID?api-version=2025-06-15",
            "https://h/v1/objects/doc%2F..%2F..%2FphoneNumbers",
            "https://h/v1/objects/doc/content%2F..%2F..%2F..%2FphoneNumbers",
            "https://h/v1/objects/doc/%2e%2e%2f",
            "https://h/v1/objects/doc/a%5Cb",
            "https://h/v1/objects/doc/a%00b",
            "https://h/v1/objects/doc/",
            "https://h/v1/objects//content",
            "https://h/v1/objects/%zz",
            "https://h/v1/objects/%ff",
            "https://h/v1/objects",
            "https://h/recording/download/doc/other",
            "https://h/recording/download/doc/metadata/x",
        ] {
            assert_eq!(path(raw), None, "{raw}");
        }
    }

    #[test]
    fn dot_segments_are_resolved_before_matching() {
        // The URL parser resolves `..` (also `%2e%2e`) before anyone sees the path.
        assert_eq!(path("https://h/v1/objects/doc/../../../phoneNumbers"), None);
        assert_eq!(
            path("https://h/v1/objects/doc/%2e%2e/%2e%2e/%2e%2e/phoneNumbers"),
            None
        );
    }
}
