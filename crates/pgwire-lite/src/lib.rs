//! pgwire-lite (crate docs are written last)
#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
pub mod error;
pub mod protocol;
pub mod types;

pub use config::{Config, Host, SslMode, TargetSessionAttrs};
pub use error::{DbError, Error, Result};
