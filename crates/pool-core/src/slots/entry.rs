//! A connection's bookkeeping while the pool owns it: when it was opened and last used, when
//! it expires, and how long it may stay idle.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use tokio::time::Instant;

use super::SlotConfig;

/// Times and counts kept for each connection, readable through
/// `PooledConnection::metrics()`.
#[derive(Debug, Clone, Copy)]
pub struct Metrics {
    created: Instant,
    pub(super) last_used: Instant,
    recycled: Option<Instant>,
    recycle_count: u64,
}

impl Metrics {
    fn new(now: Instant) -> Self {
        Metrics {
            created: now,
            last_used: now,
            recycled: None,
            recycle_count: 0,
        }
    }

    /// When the connection was opened.
    pub fn created(&self) -> std::time::Instant {
        self.created.into_std()
    }

    /// When the connection was last given back to the pool (or opened, if never).
    pub fn last_used(&self) -> std::time::Instant {
        self.last_used.into_std()
    }

    /// When the connection was last recycled for a borrower, if ever.
    pub fn recycled(&self) -> Option<std::time::Instant> {
        self.recycled.map(Instant::into_std)
    }

    /// How many times the connection was recycled (handed to another borrower).
    pub fn recycle_count(&self) -> u64 {
        self.recycle_count
    }

    /// How long the connection has been open.
    pub fn age(&self) -> Duration {
        self.created.elapsed()
    }
}

/// A connection plus its bookkeeping, while it belongs to the pool.
pub(crate) struct Entry<C> {
    pub(crate) conn: C,
    pub(crate) metrics: Metrics,
    /// Creation time plus `max_lifetime` minus jitter; `None` for no lifetime, or one so long
    /// that the clock cannot represent its end.
    pub(super) expires_at: Option<Instant>,
    /// `idle_timeout` minus jitter, fixed per connection.
    idle_limit: Option<Duration>,
    /// A background reset was already tried once; a connection still dirty after it is closed
    /// (and this also stops a reset task dropped unrun at runtime shutdown from re-spawning).
    pub(super) reset_tried: bool,
    /// Being opened (`after_connect` not yet passed) or checked for a borrower: if its slot is
    /// given back in this state (the checkout was cancelled or timed out), it is closed.
    pub(super) checking: bool,
    /// Handed to a borrower and not yet seen by `after_release`: the release hook runs once
    /// per borrow, not again when a background reset gives the slot back a second time.
    pub(super) borrowed: bool,
}

impl<C> Entry<C> {
    pub(super) fn new(conn: C, config: &SlotConfig) -> Self {
        let now = Instant::now();
        Entry {
            conn,
            metrics: Metrics::new(now),
            expires_at: config.max_lifetime.and_then(|l| now.checked_add(jitter(l))),
            idle_limit: config.idle_timeout.map(jitter),
            reset_tried: false,
            checking: true,
            borrowed: false,
        }
    }

    /// Passed its checks: ready for a borrower (or, from `min_idle`'s filler, the idle stack).
    pub(super) fn vetted(&mut self) {
        self.checking = false;
    }

    /// What the hooks are told; `idle` is false for `after_release`.
    pub(super) fn metadata(&self, idle: bool) -> crate::hooks::ConnectionMetadata {
        let idle_for = if idle {
            self.metrics.last_used.elapsed()
        } else {
            Duration::ZERO
        };
        crate::hooks::ConnectionMetadata::new(
            self.metrics.created.elapsed(),
            idle_for,
            self.metrics.recycle_count,
        )
    }

    /// Past `max_lifetime`. The clock is read only when a lifetime is set.
    pub(super) fn expired(&self) -> bool {
        self.expires_at.is_some() && self.expired_at(Instant::now())
    }

    pub(super) fn expired_at(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }

    /// Records the handover of a new connection to its first borrower.
    pub(super) fn handed_out(&mut self) {
        self.checking = false;
        self.borrowed = true;
        self.reset_tried = false;
    }

    /// Records a successful checkout of an idle connection.
    pub(super) fn checked_out(&mut self) {
        self.metrics.recycled = Some(Instant::now());
        self.metrics.recycle_count += 1;
        self.handed_out();
    }

    /// How long it has been idle at `now` (since it was given back or opened).
    pub(super) fn idle_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.metrics.last_used)
    }

    pub(super) fn idle_too_long(&self, now: Instant) -> bool {
        self.idle_limit
            .is_some_and(|limit| now.saturating_duration_since(self.metrics.last_used) >= limit)
    }
}

/// Shortens `d` by a random 0-10 %, so connections opened together do not all expire (and get
/// reopened) together: the thundering herd after a restart or a burst.
fn jitter(d: Duration) -> Duration {
    // std's RandomState is seeded randomly per instance: enough randomness for spreading
    // expiry times, without a dependency.
    let r = RandomState::new().build_hasher().finish();
    let per_mille = (r % 101) as u32; // 0..=100 -> 0 %..10 %
    d.saturating_sub(d / 1000 * per_mille)
}
