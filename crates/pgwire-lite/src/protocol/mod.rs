//! Bytes to messages and back. No I/O, no async.

// Every length read or written is converted with a checked conversion: a cast that truncates or
// wraps is how forged messages get in.
#[deny(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss
)]
pub mod backend;
#[deny(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss
)]
pub mod frontend;
