//! The generic slot guard: holds one slot (and its connection) and gives it back on drop.
//! `PooledConnection` wraps `Object<PgManager>` and is what users see.

use std::sync::Arc;

use super::{CloseReason, Entry, Metrics, Slots};
use crate::manager::Manager;

/// One held slot of the pool. While it lives, it owns one semaphore permit and counts as
/// `in_use`; dropping it (normally, on error, when a future holding it is cancelled, or
/// while a panic unwinds) gives both back through [`Slots::give_back`], so no path can leak a
/// slot.
pub(crate) struct Object<M: Manager> {
    slots: Arc<Slots<M>>,
    /// `None` while the slot has no connection yet (being opened or recycled), or after
    /// [`retire`](Self::retire).
    entry: Option<Entry<M::Conn>>,
}

impl<M: Manager> Object<M> {
    /// Wraps a slot already counted as `in_use` whose permit the caller took.
    pub(crate) fn reserved(slots: Arc<Slots<M>>) -> Self {
        Object { slots, entry: None }
    }

    pub(crate) fn set_entry(&mut self, entry: Entry<M::Conn>) -> &mut Entry<M::Conn> {
        self.entry.insert(entry)
    }

    pub(crate) fn entry_mut(&mut self) -> Option<&mut Entry<M::Conn>> {
        self.entry.as_mut()
    }

    pub(crate) fn slots(&self) -> &Arc<Slots<M>> {
        &self.slots
    }

    /// The connection. `None` only for a slot without one, which is never handed to a
    /// borrower: `Slots::get` returns an `Object` only after setting its entry.
    pub(crate) fn conn(&self) -> Option<&M::Conn> {
        self.entry.as_ref().map(|e| &e.conn)
    }

    /// See [`conn`](Self::conn).
    pub(crate) fn conn_mut(&mut self) -> Option<&mut M::Conn> {
        self.entry.as_mut().map(|e| &mut e.conn)
    }

    /// The connection's bookkeeping.
    pub(crate) fn metrics(&self) -> Option<&Metrics> {
        self.entry.as_ref().map(|e| &e.metrics)
    }

    /// Drops the connection now (closing it), counted under `why`; the slot is freed when
    /// the guard drops.
    pub(crate) fn retire(&mut self, why: CloseReason) {
        if self.entry.take().is_some() {
            self.slots.counters.closed(why);
        }
    }
}

impl<M: Manager> Drop for Object<M> {
    fn drop(&mut self) {
        self.slots.give_back(self.entry.take());
    }
}

impl<M: Manager> std::fmt::Debug for Object<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Object")
            .field("has_connection", &self.entry.is_some())
            .field("metrics", &self.metrics())
            .finish()
    }
}
