//! Password authentication: SCRAM-SHA-256 and MD5.
//!
//! Pure functions and small state machines, no I/O: the connection code reads the
//! Authentication* messages, feeds their bodies in here and writes back what comes out.
//! Cleartext needs no help: the password goes into a PasswordMessage as it is.

pub mod md5;
pub mod scram;

/// Best-effort overwrite of a secret before its memory is released.
///
/// `black_box` keeps the optimizer from dropping the stores as dead. Copies made earlier
/// (moves, hasher internals) are not reached; this narrows the window, it does not close it.
pub(crate) fn wipe(buf: &mut [u8]) {
    buf.fill(0);
    std::hint::black_box(&*buf);
}
