//! HMAC-SHA256 request signing as ACS expects it (docs/protocol.md §2), shared with the
//! emulator through `callvault-acs-protocol`.

pub use callvault_acs_protocol::signing::*;
