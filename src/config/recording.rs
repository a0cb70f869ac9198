//! `[recording]`: recording on policy. When a call leg is established, callvault starts its
//! recording through the control API, once, with these options.

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RecordingSettings {
    /// Start a recording for every established call leg.
    pub auto_start: bool,
    /// `audio` or `audioVideo`.
    pub content: String,
    /// `mixed` or `unmixed`.
    pub channel: String,
    /// `mp3`, `mp4` or `wav`.
    pub format: String,
    /// The `recordingStateCallbackUri`: where ACS posts RecordingStateChanged.
    pub callback_uri: String,
    /// Attempts of one start before it is `failed`.
    pub max_attempts: u32,
    /// First backoff delay between attempts.
    pub backoff_initial_ms: u64,
    /// Backoff cap.
    pub backoff_max_ms: u64,
}

/// The combinations ACS records: audio + video is mixed MP4; audio alone is mixed MP3,
/// mixed WAV or unmixed WAV.
const COMBINATIONS: [(&str, &str, &str); 4] = [
    ("audioVideo", "mixed", "mp4"),
    ("audio", "mixed", "mp3"),
    ("audio", "mixed", "wav"),
    ("audio", "unmixed", "wav"),
];

fn one_of(key: &'static str, value: &str, allowed: &[&str]) -> Result<(), ConfigError> {
    if allowed.contains(&value) {
        return Ok(());
    }
    Err(invalid(
        key,
        format!("`{value}` is not one of {}", allowed.join(", ")),
    ))
}

impl RecordingSettings {
    /// Checks the options; `allow_http` (`acs.allow_http`, the emulator and tests) lets the
    /// callback be plain http.
    pub fn validate(&self, allow_http: bool) -> Result<(), ConfigError> {
        one_of("recording.content", &self.content, &["audio", "audioVideo"])?;
        one_of("recording.channel", &self.channel, &["mixed", "unmixed"])?;
        one_of("recording.format", &self.format, &["mp3", "mp4", "wav"])?;
        let chosen = (
            self.content.as_str(),
            self.channel.as_str(),
            self.format.as_str(),
        );
        if !COMBINATIONS.contains(&chosen) {
            return Err(invalid(
                "recording.format",
                format!(
                    "{} {} {} is not a combination ACS records: audioVideo is mixed mp4; audio is mixed mp3, mixed wav or unmixed wav",
                    self.content, self.channel, self.format
                ),
            ));
        }
        if !(1..=100).contains(&self.max_attempts) {
            return Err(invalid(
                "recording.max_attempts",
                format!("is {}; it must be between 1 and 100", self.max_attempts),
            ));
        }
        if self.backoff_initial_ms == 0 || self.backoff_initial_ms > self.backoff_max_ms {
            return Err(invalid(
                "recording.backoff_initial_ms",
                "must be at least 1 and at most recording.backoff_max_ms",
            ));
        }
        if self.backoff_max_ms > 3_600_000 {
            return Err(invalid(
                "recording.backoff_max_ms",
                "must be at most 3600000 (an hour)",
            ));
        }
        self.check_callback(allow_http)
    }

    fn check_callback(&self, allow_http: bool) -> Result<(), ConfigError> {
        let key = "recording.callback_uri";
        let raw = self.callback_uri.trim();
        if raw.is_empty() {
            if self.auto_start {
                return Err(invalid(
                    key,
                    "is required when recording.auto_start is on: the https URL of callvault's webhook (…/api/events?code=SECRET) that ACS posts RecordingStateChanged to",
                ));
            }
            return Ok(());
        }
        if raw.len() > 2048 {
            return Err(invalid(key, "is longer than 2048 characters"));
        }
        let url = url::Url::parse(raw)
            .map_err(|err| invalid(key, format!("`{raw}` is not a URL: {err}")))?;
        match url.scheme() {
            "https" => Ok(()),
            "http" if allow_http => Ok(()),
            "http" => Err(invalid(
                key,
                "is plain http; ACS needs https (acs.allow_http = true is for the emulator and tests only)",
            )),
            other => Err(invalid(key, format!("has scheme `{other}`; use https"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> RecordingSettings {
        RecordingSettings {
            auto_start: true,
            content: "audioVideo".into(),
            channel: "mixed".into(),
            format: "mp4".into(),
            callback_uri: "https://callvault.example.com/api/events?code=s".into(),
            max_attempts: 8,
            backoff_initial_ms: 1000,
            backoff_max_ms: 60_000,
        }
    }

    fn refusal(change: impl FnOnce(&mut RecordingSettings), allow_http: bool) -> String {
        let mut settings = settings();
        change(&mut settings);
        settings.validate(allow_http).unwrap_err().to_string()
    }

    #[test]
    fn the_accepted_combinations_pass() {
        for (content, channel, format) in COMBINATIONS {
            let mut settings = settings();
            settings.content = content.into();
            settings.channel = channel.into();
            settings.format = format.into();
            settings.validate(false).unwrap();
        }
    }

    #[test]
    fn each_bad_value_names_its_key() {
        assert!(refusal(|s| s.content = "video".into(), false).contains("recording.content"));
        assert!(refusal(|s| s.channel = "stereo".into(), false).contains("recording.channel"));
        assert!(refusal(|s| s.format = "ogg".into(), false).contains("recording.format"));
        let combination = refusal(|s| s.channel = "unmixed".into(), false);
        assert!(combination.contains("not a combination"), "{combination}");
        assert!(refusal(|s| s.max_attempts = 0, false).contains("recording.max_attempts"));
    }

    #[test]
    fn the_callback_is_required_with_auto_start_and_must_be_https() {
        assert!(refusal(|s| s.callback_uri.clear(), false).contains("is required"));
        let mut off = settings();
        off.auto_start = false;
        off.callback_uri.clear();
        off.validate(false).unwrap();
        let http =
            |s: &mut RecordingSettings| s.callback_uri = "http://127.0.0.1:8080/api/events".into();
        assert!(refusal(http, false).contains("plain http"));
        let mut allowed = settings();
        http(&mut allowed);
        allowed.validate(true).unwrap();
        assert!(refusal(|s| s.callback_uri = "ftp://x/".into(), true).contains("scheme"));
        assert!(refusal(|s| s.callback_uri = "not a url".into(), true).contains("not a URL"));
    }
}
