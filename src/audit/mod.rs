//! The audit trail: who did what to which recording, and when, in a hash chain kept in the
//! database and copied to the archive's store.
//!
//! Every compliance operation appends one [`AuditRecord`] through [`append`] (or
//! [`append_in`], inside a transaction the caller already holds, so the record commits or
//! rolls back with what it describes). Hot paths that must not wait for the chain's head (an
//! archive, a failed verification) [`enqueue_in`] instead: the record commits with what it
//! describes into the inbox, and [`chain_pending`] appends it to the chain soon after. A record's hash covers its canonical encoding and the
//! hash of the record before it; [`verify`] re-hashes the chain in the database and in the
//! store, and [`store_copy`] writes the daily JSON Lines objects that let the trail outlive
//! the database.
//!
//! The chain core (this file, `actor`, `entry`, `chain`, `inbox`) knows only the queue's database;
//! `store_copy` and `verify` also know the storage.

mod actor;
mod chain;
mod entry;
pub mod inbox;
pub mod store_copy;
pub mod verify;

pub use actor::{Actor, Role, UnknownRole};
pub use chain::{
    AuditPage, AuditQuery, GENESIS_HASH, append, append_in, page, recording_name, records_after,
};
pub use entry::{Action, AuditEntry, AuditRecord, MAX_DETAIL_BYTES};
pub use inbox::{chain_pending, enqueue, enqueue_in, unchained};
