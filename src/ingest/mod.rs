//! Event Grid webhook: schemas, handshakes, auth, bounded reading, and the one-transaction
//! intake (every event judged first, then written at once).

pub mod auth;
mod body;
pub mod call_leg_event;
pub mod dead_letters;
pub mod delivery;
pub mod entra;
pub mod envelope;
pub mod group_commit;
mod plan;
pub mod pull;
pub mod queue_delivery;
pub mod recording_event;
mod replay;
pub mod routes;

#[cfg(test)]
mod group_commit_tests;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

pub use auth::WebhookAuth;
pub use body::BODY_DEADLINE;
pub use delivery::{DeliverySummary, Intake, StoreError};
pub use replay::Replay;
pub use routes::WebhookState;
