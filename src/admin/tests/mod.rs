//! The admin API, `/metrics` and the deadline watch against a real app and SQLite file.

mod access;
mod counts;
mod jobs;
mod metrics;
mod quarantine;
mod recordings;
mod support;
mod worker;
