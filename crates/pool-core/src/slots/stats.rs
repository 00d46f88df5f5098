//! Cumulative counters (pgxpool's `Stat`): relaxed atomics bumped where slots change hands,
//! read without a lock by `PsqlPool::stats()`. Each figure is exact on its own; figures read
//! together while borrowers run may be a few events apart (unlike `Status`, which is taken
//! under the slot lock).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Why the pool closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// Past `max_lifetime`.
    Lifetime,
    /// Idle longer than `idle_timeout` (with more than `min_idle` idle).
    Idle,
    /// Broken, closed by the server, or its server changed role.
    Broken,
    /// Draining / rolling back / the recycling method failed or timed out.
    RecycleFailed,
    /// A hook vetoed it, failed or panicked.
    Hook,
    /// A checkout was cancelled (or timed out) while the connection was being opened or
    /// checked: its state is unknown, so it is not reused.
    Aborted,
    /// `close()`, or surplus after `resize`.
    Pool,
}

const REASONS: usize = 7;

impl CloseReason {
    /// The `reason` field of the "connection closed" event.
    fn as_str(self) -> &'static str {
        match self {
            CloseReason::Lifetime => "max_lifetime",
            CloseReason::Idle => "idle_timeout",
            CloseReason::Broken => "broken",
            CloseReason::RecycleFailed => "recycle_failed",
            CloseReason::Hook => "hook",
            CloseReason::Aborted => "aborted",
            CloseReason::Pool => "pool",
        }
    }
}

/// The target of the pool's connection events.
const TARGET: &str = "pool_core::connection";

/// The live counters, one per figure of [`PoolStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    acquires: AtomicU64,
    acquires_waited: AtomicU64,
    acquire_wait_nanos: AtomicU64,
    acquires_cancelled: AtomicU64,
    wait_timeouts: AtomicU64,
    create_timeouts: AtomicU64,
    recycle_timeouts: AtomicU64,
    query_timeouts: AtomicU64,
    created: AtomicU64,
    create_nanos: AtomicU64,
    create_failures: AtomicU64,
    hook_failures: AtomicU64,
    closed: [AtomicU64; REASONS],
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

fn nanos(d: Duration) -> u64 {
    // 2^64 ns is 584 years of summed time: saturating is only a formality.
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Counters {
    pub(crate) fn acquired(&self) {
        bump(&self.acquires);
    }

    pub(crate) fn waited(&self, d: Duration) {
        bump(&self.acquires_waited);
        self.acquire_wait_nanos
            .fetch_add(nanos(d), Ordering::Relaxed);
    }

    pub(crate) fn cancelled(&self) {
        bump(&self.acquires_cancelled);
    }

    pub(crate) fn wait_timeout(&self, wait: Duration) {
        bump(&self.wait_timeouts);
        tracing::warn!(
            target: "pool_core::acquire",
            wait_ms = wait.as_millis() as u64,
            "no connection slot came free within the wait timeout"
        );
    }

    pub(crate) fn create_timeout(&self) {
        bump(&self.create_timeouts);
        tracing::warn!(target: TARGET, "opening a connection hit the create timeout");
    }

    pub(crate) fn recycle_timeout(&self) {
        bump(&self.recycle_timeouts);
        tracing::warn!(target: TARGET, "readying an idle connection hit the recycle timeout");
    }

    pub(crate) fn query_timeout(&self) {
        bump(&self.query_timeouts);
    }

    pub(crate) fn created(&self, d: Duration) {
        bump(&self.created);
        self.create_nanos.fetch_add(nanos(d), Ordering::Relaxed);
        tracing::debug!(
            target: TARGET,
            elapsed_ms = d.as_secs_f64() * 1e3,
            "connection opened"
        );
    }

    /// `error` is the open's own error (never a secret: errors carry none), `None` for the
    /// create timeout, which has its own event.
    pub(crate) fn create_failed(&self, error: Option<&dyn std::fmt::Display>) {
        bump(&self.create_failures);
        if let Some(error) = error {
            tracing::warn!(target: TARGET, error = %error, "opening a connection failed");
        }
    }

    pub(crate) fn hook_failed(&self, hook: &'static str, error: &dyn std::fmt::Display) {
        bump(&self.hook_failures);
        tracing::warn!(target: TARGET, hook, error = %error, "a connection hook failed");
    }

    /// Counts a close and says why: routine ends at DEBUG, failures at WARN.
    pub(crate) fn closed(&self, why: CloseReason) {
        bump(&self.closed[why as usize]);
        let reason = why.as_str();
        match why {
            CloseReason::Broken | CloseReason::RecycleFailed => {
                tracing::warn!(target: TARGET, reason, "connection closed")
            }
            CloseReason::Hook => tracing::info!(target: TARGET, reason, "connection closed"),
            CloseReason::Lifetime
            | CloseReason::Idle
            | CloseReason::Aborted
            | CloseReason::Pool => {
                tracing::debug!(target: TARGET, reason, "connection closed")
            }
        }
    }

    pub(crate) fn snapshot(&self) -> PoolStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let closed = |why: CloseReason| get(&self.closed[why as usize]);
        PoolStats {
            acquires: get(&self.acquires),
            acquires_waited: get(&self.acquires_waited),
            acquire_wait_time: Duration::from_nanos(get(&self.acquire_wait_nanos)),
            acquires_cancelled: get(&self.acquires_cancelled),
            wait_timeouts: get(&self.wait_timeouts),
            create_timeouts: get(&self.create_timeouts),
            recycle_timeouts: get(&self.recycle_timeouts),
            query_timeouts: get(&self.query_timeouts),
            connections_created: get(&self.created),
            create_time: Duration::from_nanos(get(&self.create_nanos)),
            create_failures: get(&self.create_failures),
            hook_failures: get(&self.hook_failures),
            closed_max_lifetime: closed(CloseReason::Lifetime),
            closed_idle_timeout: closed(CloseReason::Idle),
            closed_broken: closed(CloseReason::Broken),
            closed_recycle_failed: closed(CloseReason::RecycleFailed),
            closed_by_hook: closed(CloseReason::Hook),
            closed_aborted: closed(CloseReason::Aborted),
            closed_by_pool: closed(CloseReason::Pool),
        }
    }
}

/// Cumulative counters since the pool was built (pgxpool's `Stat`, HikariCP's metrics), from
/// [`PsqlPool::stats`](crate::PsqlPool::stats). Counters only grow; rates come from the
/// difference of two snapshots. For the current sizes see [`Status`](crate::Status).
///
/// Once no borrower is mid-checkout, `connections_created - connections_closed()` equals
/// `status().size`: every connection the pool opened is either still held or was closed for
/// one of the reasons below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PoolStats {
    /// Successful checkouts (`connection()`, and the one inside each `execute`, `startup`).
    pub acquires: u64,
    /// Successful checkouts that had to queue for a slot because all were busy (pgxpool's
    /// "empty acquires").
    pub acquires_waited: u64,
    /// Total time those checkouts spent queued for a slot. A checkout that found a slot free
    /// adds nothing (the fast path reads no clock); opening a connection is `create_time`.
    pub acquire_wait_time: Duration,
    /// Checkouts whose future was dropped before they got a connection (e.g. a
    /// `tokio::time::timeout` or `select!` around `connection()`).
    pub acquires_cancelled: u64,
    /// Checkouts that failed with [`TimeoutKind::Wait`](crate::TimeoutKind::Wait).
    pub wait_timeouts: u64,
    /// Connection opens that hit the create timeout ([`TimeoutKind::Create`](crate::TimeoutKind::Create)),
    /// for a borrower or for `min_idle`.
    pub create_timeouts: u64,
    /// Checkouts that hit the recycle timeout ([`TimeoutKind::Recycle`](crate::TimeoutKind::Recycle)).
    pub recycle_timeouts: u64,
    /// Statements that overran `query_timeout`, as seen through the pool's and
    /// [`PooledConnection`](crate::PooledConnection)'s query methods (not through
    /// `connection_mut()`).
    pub query_timeouts: u64,
    /// Connections opened (including those an `after_connect` hook then refused).
    pub connections_created: u64,
    /// Total time spent opening them (connect, TLS, startup, authentication).
    pub create_time: Duration,
    /// Connection opens that failed before a connection existed: refused, authentication,
    /// or the create timeout.
    pub create_failures: u64,
    /// Hook calls that returned an error or panicked (a veto, `Ok(false)`, is not a failure).
    pub hook_failures: u64,
    /// Connections closed because they reached `max_lifetime`.
    pub closed_max_lifetime: u64,
    /// Idle connections closed after `idle_timeout`.
    pub closed_idle_timeout: u64,
    /// Connections closed because they were broken, closed by the server, or their server
    /// changed role (`target_session_attrs`).
    pub closed_broken: u64,
    /// Connections closed because draining, rolling back or the recycling method failed or
    /// timed out.
    pub closed_recycle_failed: u64,
    /// Connections closed because a hook vetoed them, failed or panicked.
    pub closed_by_hook: u64,
    /// Connections closed because the checkout opening or checking them was cancelled or
    /// timed out midway (their state is unknown).
    pub closed_aborted: u64,
    /// Connections closed by `close()`, or as surplus after `resize`.
    pub closed_by_pool: u64,
}

impl PoolStats {
    /// Every connection closed, whatever the reason.
    pub fn connections_closed(&self) -> u64 {
        self.closed_max_lifetime
            + self.closed_idle_timeout
            + self.closed_broken
            + self.closed_recycle_failed
            + self.closed_by_hook
            + self.closed_aborted
            + self.closed_by_pool
    }
}

/// Counts a checkout as cancelled unless it finished (either way): armed for the whole of
/// `Slots::get_timeout`, so dropping its future at any await is seen.
pub(crate) struct Pending<'a> {
    counters: &'a Counters,
    finished: bool,
}

impl<'a> Pending<'a> {
    pub(crate) fn new(counters: &'a Counters) -> Self {
        Pending {
            counters,
            finished: false,
        }
    }

    /// Counts a checkout that ended, successful or not; only successful ones count as
    /// acquires (and, if they queued, as waited).
    pub(crate) fn finish(mut self, ok: bool, queued_for: Option<Duration>) {
        self.finished = true;
        if ok {
            self.counters.acquired();
            if let Some(d) = queued_for {
                self.counters.waited(d);
            }
        }
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.counters.cancelled();
        }
    }
}
