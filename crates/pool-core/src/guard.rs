//! [`PooledConnection`]: the connection a borrower holds. It wraps the generic slot guard
//! (`slots::Object<PgManager>`), which gives the slot back on drop.

use std::fmt;
use std::ops::Deref;

use pgwire_lite::{Connection, Notification, Pipeline, QueryResult, Row, RowStream, ToSql};

use crate::error::{Error, Result};
use crate::recycle::PgManager;
use crate::slots::{Metrics, Object};

/// A connection borrowed from a [`PsqlPool`](crate::PsqlPool); it goes back when dropped.
///
/// Derefs to [`Connection`] for reading its state (`transaction_status()`, `backend_pid()`,
/// `parameter()`, ...). Queries go through the methods below, which first finish what a
/// dropped [`Transaction`](crate::Transaction) left (a `ROLLBACK`).
/// [`connection_mut`](Self::connection_mut) gives the full `&mut Connection` after the same
/// step.
///
/// Dropping it never blocks: see [`PsqlPool`](crate::PsqlPool) for what happens to a
/// connection given back inside a transaction or mid-query.
pub struct PooledConnection {
    obj: Object<PgManager>,
    /// A transaction was begun through [`transaction`](Self::transaction) and its guard
    /// dropped without commit or rollback: the next operation rolls it back first. Armed and
    /// disarmed by `transaction.rs`.
    pub(crate) rollback_pending: bool,
    /// The quoted names of the savepoints opened through transaction guards, outermost
    /// first; one whose guard was dropped stays here until an enclosing guard's next
    /// operation rolls back to it. Maintained by `transaction.rs`.
    pub(crate) savepoints: Vec<String>,
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
            savepoints: Vec::new(),
        }
    }

    /// Counts a query timeout in the pool's stats; passes the result through.
    pub(crate) fn track<T>(&self, r: pgwire_lite::Result<T>) -> Result<T> {
        if let Err(e) = &r {
            if e.timeout_outcome().is_some() {
                self.obj.slots().counters.query_timeout();
            }
        }
        Ok(r?)
    }

    pub(crate) fn raw(&mut self) -> &mut Connection {
        self.obj.conn_mut().expect(HOLDS_CONNECTION)
    }

    /// Rolls back a transaction whose guard was dropped, so this query does not run in it.
    pub(crate) async fn settle(&mut self) -> Result<&mut Connection> {
        if self.rollback_pending {
            let conn = self.raw();
            // A cancelled BEGIN/COMMIT may still be in flight: read it first.
            conn.drain().await?;
            if conn.in_transaction() {
                conn.batch_execute("ROLLBACK").await?;
            }
            self.rollback_pending = false;
            self.savepoints.clear();
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
        let r = self.settle().await?.execute(querystring, parameters).await;
        self.track(r)
    }

    /// Runs a statement with parameters through the unnamed statement, nothing cached
    /// (psqlpy's `prepared=False`).
    pub async fn execute_unprepared(
        &mut self,
        querystring: &str,
        parameters: &[&(dyn ToSql + Sync)],
    ) -> Result<QueryResult> {
        let conn = self.settle().await?;
        let r = conn.execute_unprepared(querystring, parameters).await;
        self.track(r)
    }

    /// Runs a statement once per parameter row in one round trip, all or nothing; see
    /// [`Connection::execute_many`].
    pub async fn execute_many<'a, R>(
        &mut self,
        querystring: &str,
        parameters: &'a [R],
    ) -> Result<u64>
    where
        R: AsRef<[&'a (dyn ToSql + Sync)]>,
    {
        let r = self
            .settle()
            .await?
            .execute_many(querystring, parameters)
            .await;
        self.track(r)
    }

    /// Runs a query and returns its rows.
    pub async fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let r = self.settle().await?.query(sql, params).await;
        self.track(r)
    }

    /// Runs a query and streams its rows as they arrive; see [`Connection::query_stream`].
    pub async fn query_stream(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<RowStream<'_>> {
        Ok(self.settle().await?.query_stream(sql, params).await?)
    }

    /// Runs a query that must return exactly one row.
    pub async fn query_one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        let r = self.settle().await?.query_one(sql, params).await;
        self.track(r)
    }

    /// Runs a query that returns at most one row ([`Error::is_row_count`] for more).
    pub async fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        let r = self.settle().await?.query_opt(sql, params).await;
        self.track(r)
    }

    /// Starts a pipeline (several statements, one write); see [`Connection::pipeline`].
    pub async fn pipeline<'p>(&mut self) -> Result<Pipeline<'_, 'p>> {
        Ok(self.settle().await?.pipeline())
    }

    /// Takes the notifications (`NOTIFY`) this connection has received so far, oldest first,
    /// for a borrower that ran `LISTEN` on it. They arrive with the responses of queries; the
    /// connection keeps at most the latest 10,000, dropping the oldest beyond that. To wait
    /// for notifications, use a [`PgListener`](crate::PgListener) instead.
    pub fn notifications(&mut self) -> Vec<Notification> {
        self.raw().take_notifications()
    }

    /// Runs one or more statements with the simple query protocol (no parameters), one
    /// result per statement.
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<QueryResult>> {
        let r = self.settle().await?.simple_query(sql).await;
        self.track(r)
    }

    /// Runs statements with the simple query protocol and discards their rows.
    pub async fn batch_execute(&mut self, sql: &str) -> Result<()> {
        let r = self.settle().await?.batch_execute(sql).await;
        self.track(r)
    }

    /// `BEGIN`, psqlpy style: the transaction stays open until [`commit`](Self::commit) or
    /// [`rollback`](Self::rollback). If the connection goes back to the pool first, the
    /// pool rolls it back.
    pub async fn begin(&mut self) -> Result<()> {
        self.batch_execute("BEGIN").await
    }

    /// `COMMIT`. If the transaction had failed, PostgreSQL rolls it back instead of
    /// committing; this reports that as an error rather than success. Outside a transaction
    /// (never begun, already ended, or rolled back because its guard was dropped) it is
    /// [`Error::NoTransaction`]: PostgreSQL would only warn, and nothing would be committed.
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
/// failed transaction with the command tag `ROLLBACK`, not an error), and a COMMIT with no
/// transaction to commit (the server answers WARNING 25P01 and the tag `COMMIT`).
pub(crate) async fn commit(conn: &mut Connection) -> Result<()> {
    // The status comes from the last ReadyForQuery, after any pending rollback was settled.
    if !conn.in_transaction() {
        return Err(Error::NoTransaction);
    }
    let results = conn.simple_query("COMMIT").await?;
    match results.last().and_then(QueryResult::command_tag) {
        Some("ROLLBACK") => Err(Error::RolledBack),
        _ => Ok(()),
    }
}
