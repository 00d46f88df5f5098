//! The borrow guard: holds one slot (and its connection) and gives it back on drop.
//!
//! [`Object`] is the generic guard the slot logic works with; `PooledConnection` (in
//! `connection.rs`) wraps `Object<PgManager>` and is what users see.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use pgwire_lite::{Connection, QueryResult, Row, ToSql};

use crate::error::{Error, Result};
use crate::recycle::PgManager;
use crate::slots::{Entry, Manager, Metrics, Slots};

/// One held slot of the pool. While it lives, it owns one semaphore permit and counts as
/// `in_use`; dropping it (normally, on error, when a future holding it is cancelled, or
/// while a panic unwinds) gives both back through [`Slots::give_back`], so no path can leak a
/// slot.
pub(crate) struct Object<M: Manager> {
    slots: Arc<Slots<M>>,
    /// `None` while the slot has no connection yet (being opened or recycled), or after
    /// [`discard`](Self::discard).
    entry: Option<Entry<M::Conn>>,
}

impl<M: Manager> Object<M> {
    /// Wraps a slot already counted as `in_use` whose permit the caller took.
    pub(crate) fn reserved(slots: Arc<Slots<M>>) -> Self {
        Object { slots, entry: None }
    }

    pub(crate) fn set_entry(&mut self, entry: Entry<M::Conn>) {
        self.entry = Some(entry);
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

    /// Drops the connection now (closing it); the slot is freed when the guard drops.
    pub(crate) fn discard(&mut self) {
        self.entry = None;
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

/// A connection borrowed from a [`PsqlPool`](crate::PsqlPool); it goes back when dropped.
///
/// Derefs to [`Connection`] for reading its state (`transaction_status()`, `backend_pid()`,
/// `parameter()`, ...). Queries go through the methods below, which first finish what a
/// dropped [`Transaction`] left (a `ROLLBACK`). [`connection_mut`](Self::connection_mut)
/// gives the full `&mut Connection` after the same step.
///
/// Dropping it never blocks: see [`PsqlPool`](crate::PsqlPool) for what happens to a
/// connection given back inside a transaction or mid-query.
pub struct PooledConnection {
    obj: Object<PgManager>,
    /// A transaction was begun through [`transaction`](Self::transaction) and its guard
    /// dropped without commit or rollback: the next operation rolls it back first.
    rollback_pending: bool,
}

impl fmt::Debug for PooledConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledConnection")
            .field("connection", &self.obj.conn())
            .field("rollback_pending", &self.rollback_pending)
            .finish()
    }
}

/// The message of the one `expect` below: `Slots::get` only hands out objects that hold a
/// connection, and nothing takes it out before `Drop`.
const HOLDS_CONNECTION: &str = "a pooled connection always holds its connection until dropped";

impl Deref for PooledConnection {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.obj.conn().expect(HOLDS_CONNECTION)
    }
}

impl PooledConnection {
    pub(crate) fn new(obj: Object<PgManager>) -> Self {
        PooledConnection {
            obj,
            rollback_pending: false,
        }
    }

    fn raw(&mut self) -> &mut Connection {
        self.obj.conn_mut().expect(HOLDS_CONNECTION)
    }

    /// Rolls back a transaction whose guard was dropped, so this query does not run in it.
    async fn settle(&mut self) -> Result<&mut Connection> {
        if self.rollback_pending {
            let conn = self.raw();
            // A cancelled BEGIN/COMMIT may still be in flight: read it first.
            conn.drain().await?;
            if conn.in_transaction() {
                conn.batch_execute("ROLLBACK").await?;
            }
            self.rollback_pending = false;
        }
        Ok(self.raw())
    }

    /// The whole [`Connection`] API, after rolling back a transaction whose guard was
    /// dropped. Anything done with it stays within this borrow: the pool cleans up
    /// transactions and cancelled queries, and [`RecyclingMethod::Clean`] session state, when
    /// the connection comes back.
    ///
    /// [`RecyclingMethod::Clean`]: crate::RecyclingMethod::Clean
    pub async fn connection_mut(&mut self) -> Result<&mut Connection> {
        self.settle().await
    }

    /// Runs a statement with parameters `$1..$n` as a cached named prepared statement
    /// (psqlpy's `prepared=True`).
    pub async fn execute(
        &mut self,
        querystring: &str,
        parameters: &[&(dyn ToSql + Sync)],
    ) -> Result<QueryResult> {
        Ok(self
            .settle()
            .await?
            .execute(querystring, parameters)
            .await?)
    }

    /// Runs a statement with parameters through the unnamed statement, nothing cached
    /// (psqlpy's `prepared=False`).
    pub async fn execute_unprepared(
        &mut self,
        querystring: &str,
        parameters: &[&(dyn ToSql + Sync)],
    ) -> Result<QueryResult> {
        let conn = self.settle().await?;
        Ok(conn.execute_unprepared(querystring, parameters).await?)
    }

    /// Runs a query and returns its rows.
    pub async fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        Ok(self.settle().await?.query(sql, params).await?)
    }

    /// Runs a query that must return exactly one row.
    pub async fn query_one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        Ok(self.settle().await?.query_one(sql, params).await?)
    }

    /// Runs one or more statements with the simple query protocol (no parameters), one
    /// result per statement.
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<QueryResult>> {
        Ok(self.settle().await?.simple_query(sql).await?)
    }

    /// Runs statements with the simple query protocol and discards their rows.
    pub async fn batch_execute(&mut self, sql: &str) -> Result<()> {
        Ok(self.settle().await?.batch_execute(sql).await?)
    }

    /// Begins a transaction and returns its guard. The guard rolls the transaction back if
    /// dropped without [`commit`](Transaction::commit): at the next operation on this
    /// connection, or when the connection goes back to the pool.
    pub async fn transaction(&mut self) -> Result<Transaction<'_>> {
        self.settle().await?;
        // Armed before BEGIN is sent, so a cancelled BEGIN is rolled back too; only commit
        // or rollback through the guard disarms it.
        self.rollback_pending = true;
        self.raw().batch_execute("BEGIN").await?;
        Ok(Transaction { conn: self })
    }

    /// `BEGIN`, psqlpy style: the transaction stays open until [`commit`](Self::commit) or
    /// [`rollback`](Self::rollback). If the connection goes back to the pool first, the
    /// pool rolls it back.
    pub async fn begin(&mut self) -> Result<()> {
        self.batch_execute("BEGIN").await
    }

    /// `COMMIT`. If the transaction had failed, PostgreSQL rolls it back instead of
    /// committing; this reports that as an error rather than success.
    pub async fn commit(&mut self) -> Result<()> {
        commit(self.settle().await?).await
    }

    /// `ROLLBACK`.
    pub async fn rollback(&mut self) -> Result<()> {
        self.batch_execute("ROLLBACK").await
    }

    /// The connection's bookkeeping: age, last use, recycle count.
    pub fn metrics(&self) -> &Metrics {
        self.obj.metrics().expect(HOLDS_CONNECTION)
    }
}

/// `COMMIT`, reporting a transaction the server rolled back instead (it answers `COMMIT` in a
/// failed transaction with the command tag `ROLLBACK`, not an error).
async fn commit(conn: &mut Connection) -> Result<()> {
    let results = conn.simple_query("COMMIT").await?;
    match results.last().and_then(QueryResult::command_tag) {
        Some("ROLLBACK") => Err(Error::RolledBack),
        _ => Ok(()),
    }
}

/// An open transaction on a [`PooledConnection`], begun by
/// [`PooledConnection::transaction`]. Dropped without [`commit`](Self::commit) or
/// [`rollback`](Self::rollback), it is rolled back: at the next operation on the connection,
/// or when the connection goes back to the pool (`Drop` cannot send anything itself).
///
/// Derefs to [`Connection`] for reading its state.
pub struct Transaction<'a> {
    conn: &'a mut PooledConnection,
}

impl fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("connection", &self.conn)
            .finish()
    }
}

impl Deref for Transaction<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Transaction<'_> {
    /// Runs a statement with parameters as a cached named prepared statement.
    pub async fn execute(
        &mut self,
        querystring: &str,
        parameters: &[&(dyn ToSql + Sync)],
    ) -> Result<QueryResult> {
        Ok(self.conn.raw().execute(querystring, parameters).await?)
    }

    /// Runs a statement with parameters through the unnamed statement.
    pub async fn execute_unprepared(
        &mut self,
        querystring: &str,
        parameters: &[&(dyn ToSql + Sync)],
    ) -> Result<QueryResult> {
        let conn = self.conn.raw();
        Ok(conn.execute_unprepared(querystring, parameters).await?)
    }

    /// Runs a query and returns its rows.
    pub async fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        Ok(self.conn.raw().query(sql, params).await?)
    }

    /// Runs a query that must return exactly one row.
    pub async fn query_one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        Ok(self.conn.raw().query_one(sql, params).await?)
    }

    /// Runs statements with the simple query protocol, one result per statement.
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<QueryResult>> {
        Ok(self.conn.raw().simple_query(sql).await?)
    }

    /// Runs statements with the simple query protocol and discards their rows.
    pub async fn batch_execute(&mut self, sql: &str) -> Result<()> {
        Ok(self.conn.raw().batch_execute(sql).await?)
    }

    /// Commits. [`Error::RolledBack`] if the transaction had failed (the server rolled it
    /// back instead). Either way the transaction is over.
    pub async fn commit(self) -> Result<()> {
        let r = commit(self.conn.raw()).await;
        self.finish(r)
    }

    /// Rolls back.
    pub async fn rollback(self) -> Result<()> {
        let r = self.conn.raw().batch_execute("ROLLBACK").await;
        self.finish(r.map_err(Error::from))
    }

    /// Disarms the pending rollback once the transaction is over (committed, rolled back, or
    /// ended by the server); on an error that left it open, the rollback stays pending.
    fn finish(self, r: Result<()>) -> Result<()> {
        if !self.conn.raw().in_transaction() && !self.conn.raw().has_pending() {
            self.conn.rollback_pending = false;
        }
        r
    }
}
