//! Bytes to messages and back. No I/O, no async.

pub mod backend;
pub mod frontend;
