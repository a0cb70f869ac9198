//! The recording control API (docs/protocol.md §5) in both generations, with a real state machine:
//! a started recording is active (or paused, with `pauseOnStart`), can be paused and
//! resumed, and once stopped becomes chunks served by the download routes and announced
//! by RecordingFileStatusUpdated to every subscriber. Each change of state is POSTed as
//! RecordingStateChanged to the recording's `recordingStateCallbackUri`.
//!
//! Media time runs at [`RecordingConfig::time_scale`] media seconds per wall-clock second
//! from the start; chunk boundaries, metadata times and pause intervals are media times.

mod callbacks;
mod calls;
mod chunks;
mod config;
mod ga;
mod machine;
mod metadata;
mod ops;
mod preview;
mod publish;
mod registry;
mod request;
mod stop;

pub use config::RecordingConfig;
pub use registry::RecordingSnapshot;

pub(crate) use publish::deliver_after;
pub(crate) use registry::Registry;

/// Mounts the GA and preview control routes.
pub(crate) fn configure(config: &mut actix_web::web::ServiceConfig) {
    ga::configure(config);
    preview::configure(config);
}
