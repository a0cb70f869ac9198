//! What a control request may ask for, checked as ACS checks it: the api-version, the
//! content / channel / format combination, the callback URI and the preview's
//! `conversationId`. Every error here is a 400 with the returned message.

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use chrono::NaiveDate;

/// The oldest and newest GA api-versions the SDKs send (docs/protocol.md §5).
const OLDEST_API_VERSION: &str = "2023-03-06";
const NEWEST_API_VERSION: &str = "2026-03-12";

/// `recordingContentType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    /// Audio only.
    Audio,
    /// Video with mixed audio.
    AudioVideo,
}

/// `recordingChannelType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelType {
    /// One channel for everyone.
    Mixed,
    /// One channel per participant (up to five).
    Unmixed,
}

/// `recordingFormatType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatType {
    /// MPEG audio.
    Mp3,
    /// ISO BMFF audio and video.
    Mp4,
    /// RIFF/WAVE PCM.
    Wav,
}

/// The three types of a recording, always a combination ACS accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordingTypes {
    /// Audio or audio + video.
    pub content: ContentType,
    /// Mixed or unmixed.
    pub channel: ChannelType,
    /// The file format.
    pub format: FormatType,
}

impl RecordingTypes {
    /// What the 2021 preview API records: mixed audio + video in MP4.
    pub const PREVIEW: RecordingTypes = RecordingTypes {
        content: ContentType::AudioVideo,
        channel: ChannelType::Mixed,
        format: FormatType::Mp4,
    };

    /// Parses the request's values (case-insensitively). A missing one takes the default
    /// that fits the others (ACS's defaults are audioVideo, mixed, mp4; an unmixed or
    /// mp3/wav request implies audio, and audio implies mp3 mixed or wav unmixed). The
    /// combination must be one ACS records: audioVideo is mixed mp4; audio is mixed mp3,
    /// mixed wav or unmixed wav.
    pub fn parse(
        content: Option<&str>,
        channel: Option<&str>,
        format: Option<&str>,
    ) -> Result<Self, String> {
        let content = content
            .map(|value| match value.to_ascii_lowercase().as_str() {
                "audio" => Ok(ContentType::Audio),
                "audiovideo" => Ok(ContentType::AudioVideo),
                _ => Err(format!(
                    "recordingContentType `{value}` is not audio or audioVideo"
                )),
            })
            .transpose()?;
        let channel = channel
            .map(|value| match value.to_ascii_lowercase().as_str() {
                "mixed" => Ok(ChannelType::Mixed),
                "unmixed" => Ok(ChannelType::Unmixed),
                _ => Err(format!(
                    "recordingChannelType `{value}` is not mixed or unmixed"
                )),
            })
            .transpose()?;
        let format = format
            .map(|value| match value.to_ascii_lowercase().as_str() {
                "mp3" => Ok(FormatType::Mp3),
                "mp4" => Ok(FormatType::Mp4),
                "wav" => Ok(FormatType::Wav),
                _ => Err(format!(
                    "recordingFormatType `{value}` is not mp3, mp4 or wav"
                )),
            })
            .transpose()?;
        let implies_audio = channel == Some(ChannelType::Unmixed)
            || matches!(format, Some(FormatType::Mp3 | FormatType::Wav));
        let content = content.unwrap_or(if implies_audio {
            ContentType::Audio
        } else {
            ContentType::AudioVideo
        });
        let channel = channel.unwrap_or(if format == Some(FormatType::Wav) {
            ChannelType::Unmixed
        } else {
            ChannelType::Mixed
        });
        let format = format.unwrap_or(match (content, channel) {
            (ContentType::AudioVideo, _) => FormatType::Mp4,
            (ContentType::Audio, ChannelType::Mixed) => FormatType::Mp3,
            (ContentType::Audio, ChannelType::Unmixed) => FormatType::Wav,
        });
        let types = RecordingTypes {
            content,
            channel,
            format,
        };
        match (content, channel, format) {
            (ContentType::AudioVideo, ChannelType::Mixed, FormatType::Mp4)
            | (ContentType::Audio, ChannelType::Mixed, FormatType::Mp3 | FormatType::Wav)
            | (ContentType::Audio, ChannelType::Unmixed, FormatType::Wav) => Ok(types),
            (ContentType::AudioVideo, _, _) => Err(format!(
                "recordingContentType audioVideo needs recordingChannelType mixed and recordingFormatType mp4, not {} {}",
                types.channel_name(),
                types.format_name()
            )),
            (ContentType::Audio, ChannelType::Unmixed, _) => Err(format!(
                "recordingChannelType unmixed needs recordingContentType audio and recordingFormatType wav, not {}",
                types.format_name()
            )),
            (ContentType::Audio, ChannelType::Mixed, FormatType::Mp4) => Err(
                "recordingFormatType mp4 needs recordingContentType audioVideo; audio is recorded as mp3 or wav".into(),
            ),
        }
    }

    /// `audio` / `audioVideo`, as requests and metadata spell it.
    pub fn content_name(&self) -> &'static str {
        match self.content {
            ContentType::Audio => "audio",
            ContentType::AudioVideo => "audioVideo",
        }
    }

    /// `mixed` / `unmixed`.
    pub fn channel_name(&self) -> &'static str {
        match self.channel {
            ChannelType::Mixed => "mixed",
            ChannelType::Unmixed => "unmixed",
        }
    }

    /// `mp3` / `mp4` / `wav`.
    pub fn format_name(&self) -> &'static str {
        match self.format {
            FormatType::Mp3 => "mp3",
            FormatType::Mp4 => "mp4",
            FormatType::Wav => "wav",
        }
    }
}

/// Capitalised, as RecordingFileStatusUpdated spells the types: `AudioVideo`, `Unmixed`, `Wav`.
pub fn event_name(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// Checks the `api-version` of a GA request's query string: a date (optionally with a
/// `-preview` suffix) from 2023-03-06 to 2026-03-12.
pub fn check_api_version(query: &str) -> Result<(), String> {
    let version = url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "api-version")
        .map(|(_, value)| value.into_owned())
        .ok_or("the api-version query parameter is missing")?;
    let date = version.strip_suffix("-preview").unwrap_or(&version);
    let day = |text: &str| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok();
    match (day(date), day(OLDEST_API_VERSION), day(NEWEST_API_VERSION)) {
        // Re-formatting refuses dates that are not zero-padded, such as `2024-9-15`.
        (Some(day), Some(oldest), Some(newest))
            if day.format("%Y-%m-%d").to_string() == date && (oldest..=newest).contains(&day) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "api-version `{version}` is not supported; use one from {OLDEST_API_VERSION} to {NEWEST_API_VERSION}"
        )),
    }
}

/// Decodes a preview `conversationId`: Base64Url (padded or not) of an http(s) URL.
pub fn conversation_url(conversation_id: &str) -> Result<url::Url, String> {
    let bad = || {
        format!(
            "conversationId `{conversation_id}` is not the Base64Url encoding of a conversation URL"
        )
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(conversation_id)
        .or_else(|_| URL_SAFE.decode(conversation_id))
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let url = url::Url::parse(&text).map_err(|_| bad())?;
    matches!(url.scheme(), "http" | "https")
        .then_some(url)
        .ok_or_else(bad)
}

/// Checks a `recordingStateCallbackUri`: absent, empty, or an absolute http(s) URL.
pub fn callback_uri(value: Option<&str>) -> Result<Option<url::Url>, String> {
    match value.map(str::trim).filter(|value| !value.is_empty()) {
        None => Ok(None),
        Some(value) => url::Url::parse(value)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https"))
            .map(Some)
            .ok_or_else(|| {
                format!("recordingStateCallbackUri `{value}` is not an absolute http(s) URL")
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(value: &str) -> Option<&str> {
        (!value.is_empty()).then_some(value)
    }

    fn parse(content: &str, channel: &str, format: &str) -> Result<RecordingTypes, String> {
        RecordingTypes::parse(given(content), given(channel), given(format))
    }

    #[test]
    fn the_combinations_acs_records_are_accepted() {
        for (content, channel, format) in [
            ("audioVideo", "mixed", "mp4"),
            ("audio", "mixed", "mp3"),
            ("audio", "mixed", "wav"),
            ("audio", "unmixed", "wav"),
            ("AUDIO", "Unmixed", "WAV"),
        ] {
            let types = parse(content, channel, format).unwrap();
            assert_eq!(types.content_name().to_lowercase(), content.to_lowercase());
            assert_eq!(types.format_name(), format.to_lowercase());
        }
    }

    #[test]
    fn other_combinations_are_refused_with_the_reason() {
        for (content, channel, format, says) in [
            ("audioVideo", "mixed", "mp3", "audioVideo needs"),
            ("audioVideo", "unmixed", "mp4", "audioVideo needs"),
            ("audio", "unmixed", "mp3", "unmixed needs"),
            ("audio", "mixed", "mp4", "mp4 needs"),
            ("video", "mixed", "mp4", "not audio or audioVideo"),
            ("audio", "stereo", "wav", "not mixed or unmixed"),
            ("audio", "mixed", "ogg", "not mp3, mp4 or wav"),
        ] {
            let err = parse(content, channel, format).unwrap_err();
            assert!(err.contains(says), "{content} {channel} {format}: {err}");
        }
    }

    #[test]
    fn missing_types_take_the_default_that_fits_the_others() {
        assert_eq!(parse("", "", "").unwrap(), RecordingTypes::PREVIEW);
        assert_eq!(parse("audio", "", "").unwrap().format, FormatType::Mp3);
        assert_eq!(parse("", "unmixed", "").unwrap().format, FormatType::Wav);
        let wav = parse("", "", "wav").unwrap();
        assert_eq!(
            (wav.content, wav.channel),
            (ContentType::Audio, ChannelType::Unmixed)
        );
        assert_eq!(parse("", "", "mp3").unwrap().content, ContentType::Audio);
    }

    #[test]
    fn api_versions_from_2023_03_06_to_2026_03_12_are_accepted() {
        for version in [
            "2023-03-06",
            "2023-10-15",
            "2024-09-15",
            "2025-06-15",
            "2024-06-15-preview",
            "2026-03-12",
        ] {
            assert_eq!(
                check_api_version(&format!("api-version={version}")),
                Ok(()),
                "{version}"
            );
        }
        for query in [
            "",
            "x=1",
            "api-version=",
            "api-version=2023-03-05",
            "api-version=2026-03-13",
            "api-version=2021-04-15-preview1",
            "api-version=2024-9-15",
            "api-version=latest",
        ] {
            assert!(check_api_version(query).is_err(), "{query}");
        }
    }

    #[test]
    fn a_conversation_id_must_be_base64url_of_an_http_url() {
        let url = "https://conv-ukso-02.conv.skype.com/conv/?x=~>>??";
        let id = callvault_acs_protocol::conversation_id(url);
        assert_eq!(
            conversation_url(&id).unwrap().host_str(),
            Some("conv-ukso-02.conv.skype.com")
        );
        let padded = URL_SAFE.encode("https://a.example/");
        assert!(conversation_url(&padded).is_ok());
        let standard = base64::engine::general_purpose::STANDARD.encode(url);
        assert!(
            conversation_url(&standard).is_err(),
            "plain base64 is refused"
        );
        assert!(conversation_url("not base64!").is_err());
        assert!(conversation_url(&URL_SAFE_NO_PAD.encode("ftp://a/")).is_err());
        assert!(conversation_url(&URL_SAFE_NO_PAD.encode("just text")).is_err());
    }

    #[test]
    fn callback_uris_must_be_absolute_http() {
        assert_eq!(callback_uri(None), Ok(None));
        assert_eq!(callback_uri(Some(" ")), Ok(None));
        assert!(
            callback_uri(Some("http://127.0.0.1:1/cb?code=x"))
                .unwrap()
                .is_some()
        );
        assert!(callback_uri(Some("/relative")).is_err());
        assert!(callback_uri(Some("ftp://a/")).is_err());
    }

    #[test]
    fn event_names_are_capitalised() {
        assert_eq!(event_name("audioVideo"), "AudioVideo");
        assert_eq!(event_name("wav"), "Wav");
    }
}
