//! Slot accounting: one FIFO-fair semaphore of `max_size` permits plus a stack of idle
//! connections. This is the only place that counts connections.
//!
//! The model, in three counters kept under one short mutex (never held across an `.await`):
//!
//! - a *permit* of the semaphore is a right to hold one slot; borrowers queue for permits in
//!   arrival order (tokio's `Semaphore` is fair), each wait bounded by the wait timeout;
//! - `in_use` counts slots held by borrowers (a connection checked out, or one being created,
//!   reset or recycled for a borrower); every one of them holds exactly one permit;
//! - `idle` is a stack of ready connections, most recently used on top; they hold no permit.
//!
//! `size = idle + in_use` never exceeds `max_size` (except right after `resize` shrinks the
//! pool: surplus connections are closed as they come back). Every path that takes a permit
//! hands it back through [`Object`]'s `Drop`, so a cancelled future, an error or a panic
//! cannot leak a slot.
//!
//! Slots are generic over [`Manager`] so that the accounting is tested with a fake factory
//! and paused time (no I/O); the real manager wraps `pgwire_lite::Connection`. A slot held by
//! a borrower is an [`Object`] (`object.rs`); a connection's bookkeeping is an [`Entry`]
//! (`entry.rs`); opening, readying and the background reset / release check of one connection
//! are in `steps.rs`; the cumulative counters ([`PoolStats`]) in `stats.rs`, bumped wherever a
//! slot or a connection changes hands.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::{Semaphore, TryAcquireError};
use tokio::time::{Instant, timeout};

use crate::error::{Error, TimeoutKind};
use crate::hooks::Hooks;
use crate::manager::{Check, Health, Manager};

mod entry;
mod object;
mod stats;
mod steps;

use steps::{release_in_background, reset_in_background};

pub(crate) use entry::Entry;
pub use entry::Metrics;
pub(crate) use object::Object;
use stats::Pending;
pub use stats::PoolStats;
pub(crate) use stats::{CloseReason, Counters};

/// The slot-level knobs (validated by the builder).
#[derive(Debug, Clone)]
pub(crate) struct SlotConfig {
    pub(crate) max_size: usize,
    pub(crate) wait_timeout: Duration,
    pub(crate) create_timeout: Duration,
    pub(crate) recycle_timeout: Duration,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) min_idle: usize,
}

/// How long `close()` and maintenance wait for a polite close before dropping the socket.
/// A connection given back less than this long ago is checked out without the socket probe
/// (one non-blocking read, ~1 µs, a third of the syscalls of a cached select): its server
/// answered it a moment ago. The probe is there for connections that died while idle (a
/// restart, `idle_session_timeout`, `pg_terminate_backend`); one that dies within this window
/// after its last response fails its next statement like one that dies during it.
pub(crate) const PROBE_AFTER: Duration = Duration::from_micros(100);

const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The first pause of the `min_idle` filler after a failed create; doubled after each further
/// failure up to [`FILL_BACKOFF_MAX`].
const FILL_BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest pause of the `min_idle` filler between failed creates.
const FILL_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Keeps the background `min_idle` filler from retrying every maintenance tick against a server
/// that refuses connections (down, `max_connections` or a role's connection limit reached):
/// each failure doubles the pause, a success resets it. Borrowers are never delayed by it.
#[derive(Debug, Default)]
struct FillBackoff {
    /// No background create before this.
    not_before: Option<Instant>,
    /// The pause after the last failure (zero after a success).
    delay: Duration,
}

/// A snapshot of the pool's counters, taken under one lock so that it always adds up:
/// `size == idle + in_use`, `available == idle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// The maximum number of connections (`max_db_pool_size`, or the last `resize`).
    pub max_size: usize,
    /// Connections the pool holds now: idle ones plus slots held by borrowers (including
    /// connections being opened or recycled for a borrower).
    pub size: usize,
    /// Idle connections ready to be handed out without opening a new one (psqlpy's and
    /// deadpool's name; the same number as `idle`).
    pub available: usize,
    /// Borrowers queued for a free slot.
    pub waiting: usize,
    /// Idle connections (same as `available`).
    pub idle: usize,
    /// Slots held by borrowers.
    pub in_use: usize,
    /// Statements queued or in flight on multiplexed connections
    /// ([`multiplexing`](crate::PsqlPoolBuilder::multiplexing)); always 0 without it. Those
    /// connections count in `in_use` while they are shared.
    pub queued: usize,
}

struct State<C> {
    /// Least recently used at the front, most recently used at the back (popped first).
    idle: Vec<Entry<C>>,
    in_use: usize,
    max_size: usize,
    /// Permits still to take out of circulation after a shrinking `resize` (they were held by
    /// borrowers at the time): each is forgotten instead of released when it comes back.
    to_forget: usize,
    closed: bool,
}

/// The pool's shared core. Everything else holds an `Arc` of it.
pub(crate) struct Slots<M: Manager> {
    pub(crate) manager: M,
    semaphore: Semaphore,
    state: Mutex<State<M::Conn>>,
    waiting: AtomicUsize,
    /// The `min_idle` filler's backoff after failed creates (see [`FillBackoff`]).
    fill_backoff: Mutex<FillBackoff>,
    pub(crate) config: SlotConfig,
    pub(crate) hooks: Hooks<M::Conn>,
    /// Cumulative counters; never locked.
    pub(crate) counters: Counters,
}

/// Counts a borrower as waiting while it is queued for a permit, whichever way the wait ends.
struct WaitingGuard<'a>(&'a AtomicUsize);

impl<'a> WaitingGuard<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        WaitingGuard(counter)
    }
}

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<M: Manager> Slots<M> {
    #[cfg(any(test, feature = "bench-internals"))]
    pub(crate) fn new(manager: M, config: SlotConfig) -> Arc<Self> {
        Self::with_hooks(manager, config, Hooks::default())
    }

    pub(crate) fn with_hooks(manager: M, config: SlotConfig, hooks: Hooks<M::Conn>) -> Arc<Self> {
        Arc::new(Slots {
            manager,
            semaphore: Semaphore::new(config.max_size),
            state: Mutex::new(State {
                idle: Vec::with_capacity(config.max_size),
                in_use: 0,
                max_size: config.max_size,
                to_forget: 0,
                closed: false,
            }),
            waiting: AtomicUsize::new(0),
            fill_backoff: Mutex::new(FillBackoff::default()),
            config,
            hooks,
            counters: Counters::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State<M::Conn>> {
        // Nothing panics while the lock is held; should it ever, the counters are still
        // consistent (each critical section updates them together), so keep going.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn release_permit(&self, st: &mut State<M::Conn>) {
        if st.to_forget > 0 {
            st.to_forget -= 1;
        } else {
            self.semaphore.add_permits(1);
        }
    }

    /// A snapshot of the counters.
    pub(crate) fn status(&self) -> Status {
        let st = self.lock();
        Status {
            max_size: st.max_size,
            size: st.idle.len() + st.in_use,
            available: st.idle.len(),
            waiting: self.waiting.load(Ordering::Relaxed),
            idle: st.idle.len(),
            in_use: st.in_use,
            queued: 0,
        }
    }

    /// The cumulative counters, read without the lock.
    pub(crate) fn stats(&self) -> PoolStats {
        self.counters.snapshot()
    }

    /// Borrowers queued for a slot now.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Borrows a connection with the configured wait timeout.
    pub(crate) async fn get(self: &Arc<Self>) -> Result<Object<M>, Error> {
        self.get_timeout(self.config.wait_timeout).await
    }

    /// Borrows a connection: waits (FIFO, at most `wait`) for a slot, then takes the most
    /// recently used idle connection that passes its checks, or opens a new one.
    pub(crate) async fn get_timeout(self: &Arc<Self>, wait: Duration) -> Result<Object<M>, Error> {
        // Counts the checkout as cancelled if this future is dropped before it ends.
        let pending = Pending::new(&self.counters);
        let mut queued_for = None;
        let got = self.checkout(wait, &mut queued_for).await;
        pending.finish(got.is_ok(), queued_for);
        got
    }

    /// `queued_for` is set to how long the checkout queued for a slot, if it had to.
    async fn checkout(
        self: &Arc<Self>,
        wait: Duration,
        queued_for: &mut Option<Duration>,
    ) -> Result<Object<M>, Error> {
        // A free permit is taken without a timer. This cannot jump the queue: tokio's semaphore
        // hands released permits to queued waiters first, so one is free only when nobody waits.
        match self.semaphore.try_acquire() {
            // From here the permit is ours to give back, through `Object`'s Drop.
            Ok(permit) => permit.forget(),
            Err(TryAcquireError::Closed) => return Err(Error::Closed),
            Err(TryAcquireError::NoPermits) => {
                let _waiting = WaitingGuard::new(&self.waiting);
                // The clock is read only on this slow path.
                let queued = Instant::now();
                match timeout(wait, self.semaphore.acquire()).await {
                    Err(_) => {
                        self.counters.wait_timeout(wait);
                        return Err(Error::Timeout(TimeoutKind::Wait));
                    }
                    Ok(Err(_closed)) => return Err(Error::Closed),
                    Ok(Ok(permit)) => {
                        permit.forget();
                        *queued_for = Some(queued.elapsed());
                    }
                }
            }
        }
        let mut candidate = {
            let mut st = self.lock();
            if st.closed {
                self.release_permit(&mut st);
                return Err(Error::Closed);
            }
            st.in_use += 1;
            st.idle.pop()
        };
        // Holds the slot: dropping it (error, timeout, cancelled future) frees the slot.
        let mut obj = Object::reserved(Arc::clone(self));
        loop {
            let Some(mut entry) = candidate.take() else {
                self.open_timed(&mut obj).await?;
                if let Some(e) = obj.entry_mut() {
                    e.handed_out();
                }
                return Ok(obj);
            };
            let now = Instant::now();
            let expired = entry.expired_at(now);
            let health = if expired {
                Health::Dead
            } else {
                let probe = entry.idle_for(now) >= PROBE_AFTER;
                self.manager
                    .health(&mut entry.conn, Check::Checkout { probe })
            };
            if health == Health::Ok
                && !self.manager.recycles()
                && self.hooks.before_acquire.is_none()
            {
                entry.checked_out();
                obj.set_entry(entry);
                return Ok(obj);
            }
            entry.checking = true;
            let entry = obj.set_entry(entry);
            if health == Health::Dead {
                obj.retire(if expired {
                    CloseReason::Lifetime
                } else {
                    CloseReason::Broken
                });
            } else {
                match timeout(self.config.recycle_timeout, self.prepare(entry, health)).await {
                    Ok(None) => {
                        entry.checked_out();
                        return Ok(obj);
                    }
                    // A failed check: close this one, try the next idle one or open one.
                    Ok(Some(why)) => obj.retire(why),
                    Err(_) => {
                        self.counters.recycle_timeout();
                        obj.retire(CloseReason::RecycleFailed);
                        return Err(Error::Timeout(TimeoutKind::Recycle));
                    }
                }
            }
            // The slot stays ours; only the connection went away.
            candidate = self.lock().idle.pop();
        }
    }

    /// Gives a slot back (from `Object`'s Drop): the connection, if any and still good, goes
    /// on top of the idle stack before the permit is released, so the next waiter finds it.
    ///
    /// A connection that comes back dirty (cancelled mid-query, inside a transaction) is
    /// reset by a task spawned on the current tokio runtime, still holding its slot, so its
    /// locks and snapshot are released promptly and an idle connection is always clean.
    /// Without a runtime (dropped outside tokio) it goes back dirty and the next checkout
    /// resets it under the recycle timeout. Either way no borrower ever sees it dirty.
    pub(crate) fn give_back(self: &Arc<Self>, entry: Option<Entry<M::Conn>>) {
        let mut keep = None;
        if let Some(mut e) = entry {
            let health = if e.checking {
                // A checkout cancelled or timed out midway: nobody knows its state.
                self.counters.closed(CloseReason::Aborted);
                None
            } else if e.expired() {
                self.counters.closed(CloseReason::Lifetime);
                None
            } else {
                Some(self.manager.health(&mut e.conn, Check::GiveBack))
            };
            match health {
                Some(Health::Ok) if e.borrowed && self.hooks.after_release.is_some() => {
                    match tokio::runtime::Handle::try_current() {
                        Ok(handle) if !self.is_closed() => {
                            e.borrowed = false;
                            let mut obj = Object::reserved(Arc::clone(self));
                            obj.set_entry(e);
                            // As for a reset: the task owns the slot until the hook decided.
                            handle.spawn(release_in_background(obj));
                            return;
                        }
                        // The hook cannot run without a runtime, and it may be what keeps a
                        // connection from going back in a state the application does not want.
                        Ok(_) => keep = Some(e),
                        Err(_) => self.counters.closed(CloseReason::Hook),
                    }
                }
                Some(Health::Ok) => keep = Some(e),
                Some(Health::Dirty) if !e.reset_tried => {
                    match tokio::runtime::Handle::try_current() {
                        Ok(handle) if !self.is_closed() => {
                            e.reset_tried = true;
                            let mut obj = Object::reserved(Arc::clone(self));
                            obj.set_entry(e);
                            // The task owns the slot; if it is dropped unrun, `reset_tried`
                            // makes that drop close the connection instead of spawning again.
                            handle.spawn(reset_in_background(obj));
                            return;
                        }
                        _ => keep = Some(e),
                    }
                }
                Some(Health::Dirty) => self.counters.closed(CloseReason::RecycleFailed),
                Some(Health::Dead) => self.counters.closed(CloseReason::Broken),
                None => {}
            }
        }
        let discard = {
            let mut st = self.lock();
            st.in_use = st.in_use.saturating_sub(1);
            let discard = match keep {
                Some(mut e) if !st.closed && st.idle.len() + st.in_use < st.max_size => {
                    e.metrics.last_used = Instant::now();
                    e.borrowed = false;
                    st.idle.push(e);
                    None
                }
                other => other,
            };
            self.release_permit(&mut st);
            discard
        };
        // Closing a socket is done outside the lock.
        if discard.is_some() {
            self.counters.closed(CloseReason::Pool);
        }
        drop(discard);
    }

    /// Refuses new borrows, wakes every waiter with [`Error::Closed`] and closes the idle
    /// connections. Borrowed connections are closed when they come back.
    pub(crate) async fn close(&self) {
        let idle = {
            let mut st = self.lock();
            st.closed = true;
            std::mem::take(&mut st.idle)
        };
        self.semaphore.close();
        for e in idle {
            self.counters.closed(CloseReason::Pool);
            let _ = timeout(CLOSE_TIMEOUT, self.manager.close(e.conn)).await;
        }
    }

    /// Changes `max_size`. Growing adds permits at once; shrinking takes free permits out at
    /// once and the rest as borrowers give them back, and closes surplus idle connections.
    pub(crate) fn resize(&self, new_max: usize) {
        let surplus = {
            let mut st = self.lock();
            let old = st.max_size;
            st.max_size = new_max;
            if new_max > old {
                let grow = new_max - old;
                let cancelled = grow.min(st.to_forget);
                st.to_forget -= cancelled;
                self.semaphore.add_permits(grow - cancelled);
            } else if new_max < old {
                let shrink = old - new_max;
                let forgotten = self.semaphore.forget_permits(shrink);
                st.to_forget += shrink - forgotten;
            }
            let over = (st.idle.len() + st.in_use).saturating_sub(new_max);
            let n = over.min(st.idle.len());
            // Least recently used first.
            st.idle.drain(..n).collect::<Vec<_>>()
        };
        for _ in &surplus {
            self.counters.closed(CloseReason::Pool);
        }
        drop(surplus);
    }

    /// Opens one connection into the idle stack (startup's check). The error is the
    /// server's, so a wrong password or a down server fails `startup()` with it.
    pub(crate) async fn warm_one(self: &Arc<Self>) -> Result<(), Error> {
        drop(self.get().await?);
        Ok(())
    }

    /// Closes idle connections past their lifetime, and those idle too long while more than
    /// `min_idle` are idle; then opens connections up to `min_idle`.
    pub(crate) async fn maintain(self: &Arc<Self>) {
        let now = Instant::now();
        let expired = {
            let mut st = self.lock();
            let min_idle = self.config.min_idle;
            let mut removed = Vec::new();
            let mut i = 0;
            // Front to back = least recently used first.
            while i < st.idle.len() {
                let e = &st.idle[i];
                let surplus = st.idle.len() > min_idle;
                if e.expired_at(now) {
                    removed.push((st.idle.remove(i), CloseReason::Lifetime));
                } else if surplus && e.idle_too_long(now) {
                    removed.push((st.idle.remove(i), CloseReason::Idle));
                } else {
                    i += 1;
                }
            }
            removed
        };
        for (e, why) in expired {
            self.counters.closed(why);
            let _ = timeout(CLOSE_TIMEOUT, self.manager.close(e.conn)).await;
        }
        self.top_up().await;
    }

    /// Opens connections until `min_idle` are idle, without ever queueing behind or ahead of
    /// borrowers: it only takes a permit that is free right now.
    async fn top_up(self: &Arc<Self>) {
        let backing_off = {
            let b = self
                .fill_backoff
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            b.not_before.is_some_and(|at| Instant::now() < at)
        };
        if backing_off {
            return;
        }
        loop {
            let Ok(permit) = self.semaphore.try_acquire() else {
                return;
            };
            permit.forget();
            {
                let mut st = self.lock();
                let full = st.idle.len() + st.in_use >= st.max_size;
                if st.closed || full || st.idle.len() >= self.config.min_idle {
                    self.release_permit(&mut st);
                    return;
                }
                st.in_use += 1;
            }
            let mut obj = Object::reserved(Arc::clone(self));
            let created = self.open_timed(&mut obj).await;
            {
                let mut b = self
                    .fill_backoff
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if created.is_ok() {
                    *b = FillBackoff::default();
                } else {
                    b.delay = (b.delay * 2).clamp(FILL_BACKOFF_MIN, FILL_BACKOFF_MAX);
                    b.not_before = Some(Instant::now() + b.delay);
                }
            }
            // A later round tries again, after the backoff; a borrower that needs a
            // connection meanwhile creates its own and sees the error itself.
            if created.is_err() {
                return;
            }
            // Dropping the object puts the new connection on the idle stack.
            drop(obj);
        }
    }

    /// How often the background maintenance runs, or `None` when there is nothing to do.
    pub(crate) fn maintenance_interval(&self) -> Option<Duration> {
        let c = &self.config;
        if c.max_lifetime.is_none() && c.idle_timeout.is_none() && c.min_idle == 0 {
            return None;
        }
        let mut every = Duration::from_secs(30);
        for d in [c.max_lifetime, c.idle_timeout].into_iter().flatten() {
            every = every.min(d / 4);
        }
        Some(every.max(Duration::from_millis(100)))
    }

    /// Starts the background maintenance task on the current tokio runtime, if there is
    /// anything to maintain. It holds only a weak reference, and stops when the pool is closed
    /// or dropped. It never runs on the query path.
    pub(crate) fn spawn_maintenance(self: &Arc<Self>) {
        let Some(every) = self.maintenance_interval() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak: Weak<Self> = Arc::downgrade(self);
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(slots) = weak.upgrade() else { return };
                if slots.is_closed() {
                    return;
                }
                slots.maintain().await;
            }
        });
    }
}

#[cfg(test)]
mod fake;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod stress;

#[cfg(test)]
mod hook_tests;
