//! Emulator tests against a running emulator.
