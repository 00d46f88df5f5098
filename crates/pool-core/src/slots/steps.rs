//! The steps on one connection, between the slot accounting of `slots.rs` and the connection
//! itself: opening it (and `after_connect`), readying an idle one for a borrower (reset,
//! recycling method, `before_acquire`), and the two background tasks that hold a returned
//! connection's slot while it is reset or checked by `after_release`. Each step counts what it
//! closes, so `PoolStats` adds up.

use std::sync::Arc;

use tokio::time::{Instant, timeout};

use super::{CloseReason, Entry, Object, Slots};
use crate::error::{Error, TimeoutKind};
use crate::hooks;
use crate::manager::{Health, Manager};

impl<M: Manager> Slots<M> {
    /// Readies an idle connection for a borrower: reset if dirty, the recycling method, then
    /// `before_acquire`. `None` when it passed, else why it must be closed.
    pub(super) async fn prepare(
        &self,
        entry: &mut Entry<M::Conn>,
        health: Health,
    ) -> Option<CloseReason> {
        // Boxed, and only when there is work: under `Fast` a clean connection passes without
        // a query, and the hot checkout stays allocation-free; a reset or a recycling query is
        // a round trip, next to which the box costs nothing, and keeps the (large) query
        // state machine out of every checkout future.
        let recycled = if health == Health::Dirty || self.manager.recycles() {
            Box::pin(async {
                if health == Health::Dirty {
                    self.manager.reset(&mut entry.conn).await?;
                }
                self.manager.recycle(&mut entry.conn).await
            })
            .await
        } else {
            Ok(())
        };
        if let Err(e) = recycled {
            tracing::warn!(
                target: "pool_core::connection",
                error = %e,
                "readying an idle connection failed"
            );
            return Some(CloseReason::RecycleFailed);
        }
        let hook = self.hooks.before_acquire.as_ref()?;
        let meta = entry.metadata(true);
        match hooks::run(|| hook(&mut entry.conn, meta)).await {
            Ok(true) => None,
            Ok(false) => Some(CloseReason::Hook),
            Err(e) => {
                self.counters.hook_failed("before_acquire", &e);
                Some(CloseReason::Hook)
            }
        }
    }

    /// Opens a connection into `obj` under the create timeout, counting the outcome.
    pub(super) async fn open_timed(&self, obj: &mut Object<M>) -> Result<(), Error> {
        // Boxed: opening (the connect, the after_connect hook) is the largest state machine
        // under a checkout and runs once per connection; inline, every checkout future
        // (`pool.execute`'s too) would carry it and move it through the stack.
        match timeout(self.config.create_timeout, Box::pin(self.open(obj))).await {
            Ok(r) => r,
            Err(_) => {
                self.counters.create_timeout();
                // Timed out in `after_connect`: the connection exists and is closed as
                // aborted when the slot goes back; before that, the open itself failed.
                if obj.conn().is_none() {
                    self.counters.create_failed(None);
                }
                Err(Error::Timeout(TimeoutKind::Create))
            }
        }
    }

    /// Opens a connection and runs `after_connect` on it, inside `obj` from the moment it
    /// exists, so a cancelled or timed-out open is still counted when the slot goes back.
    async fn open(&self, obj: &mut Object<M>) -> Result<(), Error> {
        let started = Instant::now();
        let conn = match self.manager.create().await {
            Ok(conn) => conn,
            Err(e) => {
                self.counters.create_failed(Some(&e));
                return Err(e);
            }
        };
        self.counters.created(started.elapsed());
        let entry = obj.set_entry(Entry::new(conn, &self.config));
        if let Some(hook) = &self.hooks.after_connect {
            if let Err(source) = hooks::run(|| hook(&mut entry.conn)).await {
                self.counters.hook_failed("after_connect", &source);
                obj.retire(CloseReason::Hook);
                return Err(Error::Hook {
                    hook: "after_connect",
                    source,
                });
            }
        }
        entry.vetted();
        Ok(())
    }
}

pub(super) async fn reset_in_background<M: Manager>(mut obj: Object<M>) {
    let slots = Arc::clone(obj.slots());
    let ok = match obj.entry_mut() {
        Some(e) => matches!(
            timeout(
                slots.config.recycle_timeout,
                slots.manager.reset(&mut e.conn)
            )
            .await,
            Ok(Ok(()))
        ),
        None => false,
    };
    if !ok {
        obj.retire(CloseReason::RecycleFailed);
    }
    // Dropping gives the slot back: clean -> idle stack, still dirty or failed -> closed.
}

/// Runs `after_release` on a connection a borrower gave back, holding its slot; a veto, an
/// error, a panic or the recycle timeout closes the connection. Dropping the object then gives
/// the slot back (and the connection, if kept, to the idle stack).
pub(super) async fn release_in_background<M: Manager>(mut obj: Object<M>) {
    let slots = Arc::clone(obj.slots());
    let keep = match (obj.entry_mut(), &slots.hooks.after_release) {
        (Some(e), Some(hook)) => {
            let meta = e.metadata(false);
            let ran = timeout(
                slots.config.recycle_timeout,
                hooks::run(|| hook(&mut e.conn, meta)),
            )
            .await;
            match ran {
                Ok(Ok(keep)) => keep,
                Ok(Err(e)) => {
                    slots.counters.hook_failed("after_release", &e);
                    false
                }
                Err(_) => false,
            }
        }
        (Some(_), None) => true,
        (None, _) => false,
    };
    if !keep {
        obj.retire(CloseReason::Hook);
    }
}
