//! The parts of the Azure Communication Services wire protocol that both sides speak: the
//! archiver (a client of ACS and a receiver of Event Grid) and the emulator (which plays ACS
//! and Event Grid), and the Shared Key signature of Azure Storage, which the archiver uses to
//! read a queue and the emulator to fill one. Keeping them in one place means a change to
//! either side is checked against the same definitions. No HTTP framework here: only types,
//! names and functions.

pub mod conversation;
pub mod error;
pub mod events;
pub mod signing;
pub mod storage_shared_key;

pub use conversation::conversation_id;
