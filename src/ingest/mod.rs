//! Event Grid webhook: schemas, handshakes, auth, and the one-transaction intake.

pub mod auth;
mod body;
pub mod delivery;
pub mod envelope;
pub mod quote;
pub mod recording_event;
pub mod routes;

pub use auth::WebhookAuth;
pub use delivery::{DeliverySummary, Intake};
pub use routes::WebhookState;
