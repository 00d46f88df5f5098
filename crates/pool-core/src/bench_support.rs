//! Not public API (feature `bench-internals`, used by `psqlpool-benches` only): the pool's slot
//! accounting over a no-op connection factory, so `pool_overhead` can compare acquire + release
//! with deadpool's and bb8's no-op managers. Nothing here opens a socket.

use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::manager::{Health, Manager};
use crate::slots::{Object, SlotConfig, Slots};

/// A factory of `()` connections that are always healthy.
#[derive(Debug)]
pub struct Noop;

impl Manager for Noop {
    type Conn = ();

    async fn create(&self) -> Result<(), Error> {
        Ok(())
    }

    fn health(&self, _conn: &mut (), _at: crate::manager::Check) -> Health {
        Health::Ok
    }

    /// Like `RecyclingMethod::Fast`, the default: nothing to do between borrowers.
    fn recycles(&self) -> bool {
        false
    }

    async fn reset(&self, _conn: &mut ()) -> Result<(), Error> {
        Ok(())
    }

    async fn recycle(&self, _conn: &mut ()) -> Result<(), Error> {
        Ok(())
    }

    async fn close(&self, _conn: ()) {}
}

/// The same `Slots` the real pool uses (FIFO semaphore, idle stack, timeouts), with [`Noop`].
#[derive(Clone)]
pub struct NoopPool(Arc<Slots<Noop>>);

/// A borrowed no-op slot; dropping it gives the slot back, as `PooledConnection` does.
pub struct NoopGuard(#[allow(dead_code)] Object<Noop>);

impl NoopPool {
    /// A pool of at most `max_size` no-op connections with the builder's default timeouts.
    pub fn new(max_size: usize) -> NoopPool {
        NoopPool(Slots::new(
            Noop,
            SlotConfig {
                max_size,
                wait_timeout: crate::limits::DEFAULT_WAIT_TIMEOUT,
                create_timeout: crate::limits::DEFAULT_CREATE_TIMEOUT,
                recycle_timeout: crate::limits::DEFAULT_RECYCLE_TIMEOUT,
                max_lifetime: None,
                idle_timeout: None,
                min_idle: 0,
            },
        ))
    }

    /// Borrows a slot (the code path of `PsqlPool::connection`).
    pub async fn get(&self) -> Result<NoopGuard, Error> {
        self.0.get().await.map(NoopGuard)
    }

    /// Borrows with an explicit wait timeout.
    pub async fn get_timeout(&self, wait: Duration) -> Result<NoopGuard, Error> {
        self.0.get_timeout(wait).await.map(NoopGuard)
    }
}
