//! The [`Manager`] trait: what the pool needs from a connection type. Nothing else in the crate
//! is below it, so the slot accounting, the real manager and the test fakes all build on it.

use std::future::Future;

use crate::error::Error;

/// What the pool needs from a connection type. Three async steps and two local checks.
pub(crate) trait Manager: Send + Sync + 'static {
    /// The connection type.
    type Conn: Send + 'static;

    /// Opens a new connection (bounded by the create timeout).
    fn create(&self) -> impl Future<Output = Result<Self::Conn, Error>> + Send;

    /// Local checks only, no I/O on the query path, except at a checkout that asks for a
    /// probe: a non-blocking look at the socket (a server that closed it is noticed without a
    /// round trip).
    fn health(&self, conn: &mut Self::Conn, at: Check) -> Health;

    /// Brings a [`Health::Dirty`] connection back to idle (drain a cancelled query, roll back
    /// a transaction). Bounded by the recycle timeout; an error closes the connection.
    fn reset(&self, conn: &mut Self::Conn) -> impl Future<Output = Result<(), Error>> + Send;

    /// The recycling method, run at checkout of an idle connection after `health` and
    /// `reset`. Bounded by the recycle timeout (shared with `reset`); an error closes the
    /// connection and the checkout goes on with the next idle one or a new one.
    fn recycle(&self, conn: &mut Self::Conn) -> impl Future<Output = Result<(), Error>> + Send;

    /// Whether [`recycle`](Self::recycle) does any work for a healthy connection. When it does
    /// not (`Fast`), a checkout of a healthy idle connection skips the recycle step and its
    /// timer entirely: the uncontended checkout stays a lock and a pop.
    fn recycles(&self) -> bool {
        true
    }

    /// Closes a connection politely (e.g. sends Terminate). Used where awaiting is possible:
    /// `close()` and background maintenance. Elsewhere connections are simply dropped.
    fn close(&self, conn: Self::Conn) -> impl Future<Output = ()> + Send;
}

/// When [`Manager::health`] is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Checkout of an idle connection. `probe`: look at its socket too; false for one given
    /// back moments ago (see `slots::PROBE_AFTER`).
    Checkout { probe: bool },
    /// A borrower gives the connection back.
    GiveBack,
}

/// The verdict of [`Manager::health`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    /// Ready for the next borrower (after the recycling method).
    Ok,
    /// Usable once [`Manager::reset`] ran: a query left mid-flight, or a transaction open.
    Dirty,
    /// Never reuse: broken, closed by the server, or a protocol failure.
    Dead,
}
