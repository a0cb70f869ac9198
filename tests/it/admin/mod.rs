//! The admin API, `/metrics` and the deadline watch against a real app on SQLite and
//! PostgreSQL.

mod access;
mod counts;
mod jobs;
mod metrics;
mod quarantine;
mod recordings;
pub(crate) mod support;
mod worker;
mod worm;
