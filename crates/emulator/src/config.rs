//! How an emulator behaves: its key, how long it keeps documents, its clock, how patiently
//! it redelivers events, how it cuts recordings into chunks, and whether its webhook
//! deliveries carry Entra ID tokens.

use std::time::Duration;

use rand::RngCore;

use crate::entra::EntraOptions;
use crate::recording::RecordingConfig;

/// Settings of one emulator. `Default` gives a random key and ACS's and Event Grid's real
/// timings; tests shorten the delivery schedule and shift the clock.
#[derive(Clone)]
pub struct EmulatorConfig {
    /// Raw access key bytes; the connection string carries them base64-encoded.
    pub access_key: Vec<u8>,
    /// How long a document is served after its `created_at`; older ones answer 404 (ACS: 24 h).
    pub retention: chrono::Duration,
    /// Added to the wall clock when judging retention, so a test can jump past the deadline
    /// without waiting. Request dates (`x-ms-date`) are still judged against the wall clock,
    /// because the client signing them has not travelled in time.
    pub clock_offset: chrono::Duration,
    /// Waits between delivery attempts of one batch; when they run out the batch is given up.
    pub delivery_retry_delays: Vec<Duration>,
    /// How recordings started through the control API are chunked and timed.
    pub recording: RecordingConfig,
    /// Entra ID bearer tokens on every webhook delivery; `None` sends none.
    pub entra: Option<EntraOptions>,
}

/// Event Grid's published retry schedule: 10 s, 30 s, 1 min, 5 min, 10 min, 30 min, 1 h,
/// 3 h, 6 h, then every 12 h until the event's 24 h time to live is spent.
pub fn event_grid_retry_schedule() -> Vec<Duration> {
    let minutes = |m: u64| Duration::from_secs(m * 60);
    vec![
        Duration::from_secs(10),
        Duration::from_secs(30),
        minutes(1),
        minutes(5),
        minutes(10),
        minutes(30),
        minutes(60),
        minutes(180),
        minutes(360),
        minutes(720),
    ]
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        let mut access_key = vec![0u8; 32];
        rand::rng().fill_bytes(&mut access_key);
        Self {
            access_key,
            retention: chrono::Duration::hours(24),
            clock_offset: chrono::Duration::zero(),
            delivery_retry_delays: event_grid_retry_schedule(),
            recording: RecordingConfig::default(),
            entra: None,
        }
    }
}

impl std::fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorConfig")
            .field("access_key", &"<redacted>")
            .field("retention", &self.retention)
            .field("clock_offset", &self.clock_offset)
            .field("delivery_retry_delays", &self.delivery_retry_delays)
            .field("recording", &self.recording)
            .field("entra", &self.entra)
            .finish()
    }
}
