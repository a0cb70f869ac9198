//! Integration tests: callvault against the ACS emulator, a real SQLite file or PostgreSQL,
//! and real storage, all on loopback.

mod support;

mod acs_client;
mod admin;
mod admin_roles;
mod architecture;
mod audit;
mod audit_inbox;
mod call_legs;
mod config_check;
mod control;
mod crash;
mod dead_letters;
mod demo;
mod emulator_entra;
mod emulator_queue_delivery;
mod entra_webhook;
mod erasure;
mod eventgrid_pull;
mod events;
mod evidence;
mod export;
mod hostile_ingest;
mod hostile_urls;
mod idempotency;
mod identity;
mod orphan_uploads;
mod participants;
mod pipeline;
mod postgres;
mod remote_storage;
mod replicas;
mod signed_manifests;
mod sources;
mod storage_cleanup;
mod storage_queue_delivery;
mod webhook;
