//! A fake connection factory for the slot tests: no I/O, every step scripted by a gate.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Check, Health, Manager, SlotConfig, Slots};
use crate::error::Error;

/// How a scripted step behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    Ok,
    Err,
    Slow(Duration),
    Never,
    /// Fails with probability `percent` and takes up to `max_ms` milliseconds (driven by the
    /// fake's seeded generator, so runs are reproducible).
    Random {
        percent: u64,
        max_ms: u64,
    },
}

pub(crate) use pg_harness::Rng;

/// A fake connection. `live` counts fakes not yet dropped, to catch leaks.
#[derive(Debug)]
pub(crate) struct FakeConn {
    pub(crate) id: usize,
    pub(crate) dirty: bool,
    pub(crate) broken: bool,
    live: Arc<AtomicUsize>,
}

impl Drop for FakeConn {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug)]
pub(crate) struct Fake {
    pub(crate) create: Mutex<Gate>,
    pub(crate) recycle: Mutex<Gate>,
    pub(crate) reset: Mutex<Gate>,
    /// Ids whose "server side" went away: noticed by the idle socket check.
    pub(crate) killed: Mutex<HashSet<usize>>,
    pub(crate) live: Arc<AtomicUsize>,
    pub(crate) created: AtomicUsize,
    pub(crate) recycled: AtomicUsize,
    pub(crate) resets: AtomicUsize,
    pub(crate) closed_politely: AtomicUsize,
    /// Every call of `create`, failed or not.
    pub(crate) create_attempts: AtomicUsize,
    rng: Mutex<Rng>,
}

impl Fake {
    pub(crate) fn new() -> Self {
        Fake::with_seed(1)
    }

    pub(crate) fn with_seed(seed: u64) -> Self {
        Fake {
            create: Mutex::new(Gate::Ok),
            recycle: Mutex::new(Gate::Ok),
            reset: Mutex::new(Gate::Ok),
            killed: Mutex::new(HashSet::new()),
            live: Arc::new(AtomicUsize::new(0)),
            created: AtomicUsize::new(0),
            recycled: AtomicUsize::new(0),
            resets: AtomicUsize::new(0),
            closed_politely: AtomicUsize::new(0),
            create_attempts: AtomicUsize::new(0),
            rng: Mutex::new(Rng::new(seed)),
        }
    }

    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    pub(crate) fn count(c: &AtomicUsize) -> usize {
        c.load(Ordering::SeqCst)
    }

    async fn pass(&self, gate: &Mutex<Gate>) -> Result<(), Error> {
        let g = *gate.lock().unwrap_or_else(|e| e.into_inner());
        match g {
            Gate::Ok => Ok(()),
            Gate::Err => Err(fake_error()),
            Gate::Slow(d) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
            Gate::Never => std::future::pending().await,
            Gate::Random { percent, max_ms } => {
                let (fail, ms) = {
                    let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
                    (rng.below(100) < percent, rng.below(max_ms + 1))
                };
                tokio::time::sleep(Duration::from_millis(ms)).await;
                if fail { Err(fake_error()) } else { Ok(()) }
            }
        }
    }
}

pub(crate) fn fake_error() -> Error {
    Error::Backend(pgwire_lite::Error::Io(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "fake: connection refused",
    )))
}

impl Manager for Arc<Fake> {
    type Conn = FakeConn;

    async fn create(&self) -> Result<FakeConn, Error> {
        self.create_attempts.fetch_add(1, Ordering::SeqCst);
        self.pass(&self.create).await?;
        let id = self.created.fetch_add(1, Ordering::SeqCst);
        self.live.fetch_add(1, Ordering::SeqCst);
        Ok(FakeConn {
            id,
            dirty: false,
            broken: false,
            live: Arc::clone(&self.live),
        })
    }

    fn health(&self, conn: &mut FakeConn, at: Check) -> Health {
        // Like a flag the connection keeps (deadpool's `is_closed`), not a socket probe: seen
        // at every checkout, fresh or not.
        let killed = matches!(at, Check::Checkout { .. })
            && self.killed.lock().is_ok_and(|k| k.contains(&conn.id));
        if conn.broken || killed {
            Health::Dead
        } else if conn.dirty {
            Health::Dirty
        } else {
            Health::Ok
        }
    }

    async fn reset(&self, conn: &mut FakeConn) -> Result<(), Error> {
        self.resets.fetch_add(1, Ordering::SeqCst);
        self.pass(&self.reset).await?;
        conn.dirty = false;
        Ok(())
    }

    async fn recycle(&self, _conn: &mut FakeConn) -> Result<(), Error> {
        self.pass(&self.recycle).await?;
        self.recycled.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn close(&self, conn: FakeConn) {
        self.closed_politely.fetch_add(1, Ordering::SeqCst);
        drop(conn);
    }
}

pub(crate) fn config(max_size: usize) -> SlotConfig {
    SlotConfig {
        max_size,
        wait_timeout: Duration::from_secs(30),
        create_timeout: Duration::from_secs(5),
        recycle_timeout: Duration::from_secs(5),
        max_lifetime: None,
        idle_timeout: None,
        min_idle: 0,
    }
}

pub(crate) fn pool(max_size: usize) -> (Arc<Slots<Arc<Fake>>>, Arc<Fake>) {
    pool_with(config(max_size), Fake::new())
}

pub(crate) fn pool_with(cfg: SlotConfig, fake: Fake) -> (Arc<Slots<Arc<Fake>>>, Arc<Fake>) {
    let fake = Arc::new(fake);
    (Slots::new(Arc::clone(&fake), cfg), fake)
}

/// The invariants every snapshot must satisfy.
pub(crate) fn assert_adds_up(slots: &Slots<Arc<Fake>>) {
    let s = slots.status();
    assert_eq!(s.size, s.idle + s.in_use, "{s:?}");
    assert_eq!(s.available, s.idle, "{s:?}");
    assert!(s.size <= s.max_size, "{s:?}");
}

/// The invariants once every borrower is gone: nothing in use, nothing waiting, and every
/// live fake connection is an idle one (no connection leaked outside the pool).
pub(crate) fn assert_quiescent(slots: &Slots<Arc<Fake>>, fake: &Fake) {
    assert_adds_up(slots);
    let s = slots.status();
    assert_eq!(s.in_use, 0, "{s:?}");
    assert_eq!(s.waiting, 0, "{s:?}");
    assert_eq!(fake.live(), s.idle, "{s:?}");
    // Every connection opened is idle now or was counted closed, under some reason.
    let st = slots.stats();
    assert_eq!(
        st.connections_created,
        Fake::count(&fake.created) as u64,
        "{st:?}"
    );
    assert_eq!(
        st.connections_created - st.connections_closed(),
        s.size as u64,
        "{st:?} {s:?}"
    );
}
