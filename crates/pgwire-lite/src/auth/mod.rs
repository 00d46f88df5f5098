//! Password authentication: SCRAM-SHA-256, MD5, cleartext.
