//! psqlpool's pool (work in progress: the slot logic first).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// The slot logic lands before the public pool that uses it.
#![allow(dead_code)]

mod error;
mod guard;
mod slots;

pub use error::{Error, PoolError, Result, TimeoutKind};
pub use slots::{Metrics, Status};
