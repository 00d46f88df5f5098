//! The pool's sizes and timeouts: their defaults, and the one check that `build()` and
//! `resize()` share, so both refuse the same values in the same words.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::slots::SlotConfig;

/// The smallest (and default) `max_db_pool_size`, as in psqlpy.
pub const MIN_POOL_SIZE: usize = 2;
/// Default wait timeout: how long a borrower queues for a free slot. Always set: an exhausted
/// pool never makes callers hang forever.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default create timeout: opening one connection (connect, TLS, startup, authentication).
pub const DEFAULT_CREATE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default recycle timeout: draining / rolling back / the recycling method's SQL.
pub const DEFAULT_RECYCLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Checks the sizes and timeouts of a pool about to be built or resized. Each error names the
/// parameter as the builder spells it, with the value given.
///
/// A zero wait timeout is allowed: it means "only if a slot is free right now".
pub(crate) fn validate(slots: &SlotConfig, query_timeout: Option<Duration>) -> Result<()> {
    if slots.max_size < MIN_POOL_SIZE {
        return Err(Error::config(format!(
            "max_db_pool_size must be at least {MIN_POOL_SIZE}, got {}",
            slots.max_size
        )));
    }
    if slots.min_idle > slots.max_size {
        return Err(Error::config(format!(
            "min_idle ({}) cannot exceed max_db_pool_size ({})",
            slots.min_idle, slots.max_size
        )));
    }
    let positive = [
        ("create_timeout", Some(slots.create_timeout)),
        ("recycle_timeout", Some(slots.recycle_timeout)),
        ("max_lifetime", slots.max_lifetime),
        ("idle_timeout", slots.idle_timeout),
        ("query_timeout", query_timeout),
    ];
    for (name, value) in positive {
        if value == Some(Duration::ZERO) {
            return Err(Error::config(format!("{name} must be more than zero")));
        }
    }
    Ok(())
}
