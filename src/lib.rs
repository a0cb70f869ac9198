//! callvault archives Azure Communication Services call recordings to long-term storage
//! before ACS deletes them (24 hours after the recording started).
//!
//! Data flows one way: [`ingest`] (Event Grid webhook) → [`queue`] (one job per chunk) →
//! [`worker`] (streaming, verified transfer) → [`storage`] (local, S3, Azure Blob), with
//! [`acs`] as the outside world the worker downloads from.

pub mod acs;
pub mod admin;
pub mod app;
pub mod audit;
pub mod autostart;
pub mod azure_queue;
pub mod call_leg;
pub mod config;
pub mod events;
pub mod export;
pub mod health;
pub mod http_error;
pub mod ingest;
pub mod metrics;
pub mod participant_id;
pub mod participants;
pub mod queue;
pub mod quote;
pub mod recording;
pub mod request_log;
pub mod secret;
pub mod state;
pub mod storage;
pub mod telemetry;
#[cfg(test)]
mod test_services;
pub mod worker;
