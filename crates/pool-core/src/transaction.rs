//! [`Transaction`]: the guard of a transaction begun on a [`PooledConnection`], rolled back
//! unless committed; its savepoints are nested guards of the same type.
//!
//! Nothing is sent from `Drop` (it cannot await). A dropped guard leaves a note on the
//! connection instead: `rollback_pending` for the transaction, and the savepoint stack
//! (`PooledConnection::savepoints`) for savepoints. The next operation through an enclosing
//! guard rolls back what was abandoned first; the pool rolls back a whole transaction when
//! the connection comes back.

use std::fmt;
use std::ops::Deref;

use pgwire_lite::{Connection, Pipeline, QueryResult, Row, ToSql};

use crate::error::{Error, Result};
use crate::guard::{PooledConnection, commit};
use crate::ident;

/// The SQL isolation levels (PostgreSQL runs `READ UNCOMMITTED` as `READ COMMITTED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IsolationLevel {
    /// `READ UNCOMMITTED`.
    ReadUncommitted,
    /// `READ COMMITTED`, PostgreSQL's default.
    ReadCommitted,
    /// `REPEATABLE READ`.
    RepeatableRead,
    /// `SERIALIZABLE`: may fail with a serialization failure (40001), to be retried; see
    /// [`PsqlPool::transaction`](crate::PsqlPool::transaction).
    Serializable,
}

impl IsolationLevel {
    fn sql(self) -> &'static str {
        match self {
            IsolationLevel::ReadUncommitted => "READ UNCOMMITTED",
            IsolationLevel::ReadCommitted => "READ COMMITTED",
            IsolationLevel::RepeatableRead => "REPEATABLE READ",
            IsolationLevel::Serializable => "SERIALIZABLE",
        }
    }
}

/// The modes of a transaction, all sent with its `BEGIN` (no extra round trip). Unset modes
/// take the session's defaults (`default_transaction_isolation`, ...).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TransactionOptions {
    isolation_level: Option<IsolationLevel>,
    read_only: Option<bool>,
    deferrable: Option<bool>,
}

impl TransactionOptions {
    /// The session's defaults: a plain `BEGIN`.
    pub fn new() -> Self {
        Self::default()
    }

    /// `ISOLATION LEVEL ...`.
    pub fn isolation_level(mut self, level: IsolationLevel) -> Self {
        self.isolation_level = Some(level);
        self
    }

    /// `READ ONLY` (true) or `READ WRITE` (false). Writes in a read-only transaction fail
    /// with 25006 ([`Error::is_read_only_transaction`]).
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = Some(read_only);
        self
    }

    /// `DEFERRABLE` (true) or `NOT DEFERRABLE` (false); it matters only for a `SERIALIZABLE
    /// READ ONLY` transaction, which then waits for a snapshot that cannot fail.
    pub fn deferrable(mut self, deferrable: bool) -> Self {
        self.deferrable = Some(deferrable);
        self
    }

    /// The `BEGIN` statement for these modes.
    fn begin_sql(&self) -> String {
        let mut modes = Vec::new();
        if let Some(level) = self.isolation_level {
            modes.push(format!("ISOLATION LEVEL {}", level.sql()));
        }
        if let Some(ro) = self.read_only {
            modes.push(if ro { "READ ONLY" } else { "READ WRITE" }.to_string());
        }
        if let Some(d) = self.deferrable {
            modes.push(if d { "DEFERRABLE" } else { "NOT DEFERRABLE" }.to_string());
        }
        if modes.is_empty() {
            "BEGIN".to_string()
        } else {
            format!("BEGIN {}", modes.join(", "))
        }
    }
}

/// Sets a transaction's modes, then [`start`](Self::start)s it; from
/// [`PooledConnection::build_transaction`].
///
/// ```no_run
/// # async fn f(conn: &mut pool_core::PooledConnection) -> pool_core::Result<()> {
/// use pool_core::IsolationLevel;
/// let mut tx = conn
///     .build_transaction()
///     .isolation_level(IsolationLevel::Serializable)
///     .read_only(true)
///     .deferrable(true)
///     .start() // BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE
///     .await?;
/// let n: i64 = tx.query_one("SELECT count(*) FROM pg_class", &[]).await?.get(0);
/// tx.commit().await?;
/// # let _ = n; Ok(()) }
/// ```
#[derive(Debug)]
pub struct TransactionBuilder<'a> {
    conn: &'a mut PooledConnection,
    options: TransactionOptions,
}

impl<'a> TransactionBuilder<'a> {
    /// See [`TransactionOptions::isolation_level`].
    pub fn isolation_level(mut self, level: IsolationLevel) -> Self {
        self.options = self.options.isolation_level(level);
        self
    }

    /// See [`TransactionOptions::read_only`].
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.options = self.options.read_only(read_only);
        self
    }

    /// See [`TransactionOptions::deferrable`].
    pub fn deferrable(mut self, deferrable: bool) -> Self {
        self.options = self.options.deferrable(deferrable);
        self
    }

    /// Replaces every mode at once.
    pub fn options(mut self, options: TransactionOptions) -> Self {
        self.options = options;
        self
    }

    /// Sends one `BEGIN` with the modes and returns the transaction's guard.
    pub async fn start(self) -> Result<Transaction<'a>> {
        let conn = self.conn;
        conn.settle().await?;
        // Armed before BEGIN is sent, so a cancelled BEGIN is rolled back too; only commit
        // or rollback through the guard disarms it.
        conn.rollback_pending = true;
        conn.savepoints.clear();
        conn.raw().batch_execute(&self.options.begin_sql()).await?;
        Ok(Transaction {
            conn,
            depth: 0,
            name: None,
        })
    }
}

impl PooledConnection {
    /// Begins a transaction and returns its guard. The guard rolls the transaction back if
    /// dropped without [`commit`](Transaction::commit): at the next operation on this
    /// connection, or when the connection goes back to the pool.
    pub async fn transaction(&mut self) -> Result<Transaction<'_>> {
        self.build_transaction().start().await
    }

    /// A transaction with an isolation level, read-only or deferrable mode: see
    /// [`TransactionBuilder`].
    pub fn build_transaction(&mut self) -> TransactionBuilder<'_> {
        TransactionBuilder {
            conn: self,
            options: TransactionOptions::default(),
        }
    }
}

/// An open transaction on a [`PooledConnection`], begun by
/// [`PooledConnection::transaction`], or one of its savepoints, opened by
/// [`savepoint`](Self::savepoint) (the same type, nested to any depth).
///
/// Dropped without [`commit`](Self::commit) or [`rollback`](Self::rollback), it is rolled
/// back: a transaction at the next operation on the connection, or when the connection goes
/// back to the pool; a savepoint (`ROLLBACK TO SAVEPOINT`, then `RELEASE SAVEPOINT`) at the
/// next operation through its enclosing guard, which keeps its own work. `Drop` cannot send
/// anything itself.
///
/// Derefs to [`Connection`] for reading its state.
///
/// # Cancellation
/// A `BEGIN` or `SAVEPOINT` whose future is dropped is undone like a dropped guard (an
/// unfinished `SAVEPOINT` is released by the `COMMIT` or removed by an enclosing rollback).
/// A savepoint's `commit` or `rollback` dropped after it reached the server cannot be told
/// apart from one that did not: the savepoint is then rolled back again at the next
/// operation, and if it no longer exists the server answers 3B001 and the transaction fails
/// (its `COMMIT` reports [`Error::RolledBack`]): never a silent partial commit.
pub struct Transaction<'a> {
    conn: &'a mut PooledConnection,
    /// 0 for the transaction, n for the n-th nested savepoint.
    depth: usize,
    /// The savepoint's quoted name; `None` for the transaction itself.
    name: Option<String>,
}

impl fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("savepoint", &self.name)
            .field("depth", &self.depth)
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
    /// The connection, after rolling back the savepoints nested in this guard whose guards
    /// were dropped uncommitted, innermost first (so a name reused at several depths always
    /// means the right one), in one round trip.
    pub(crate) async fn ready(&mut self) -> Result<&mut Connection> {
        let depth = self.depth;
        let pc = &mut *self.conn;
        if pc.savepoints.len() > depth {
            let mut sql = String::new();
            for name in pc.savepoints[depth..].iter().rev() {
                sql.push_str(&format!(
                    "ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}; "
                ));
            }
            let conn = pc.raw();
            conn.drain().await?;
            // A transaction the server already ended has no savepoints left to undo.
            if conn.in_transaction() {
                conn.batch_execute(&sql).await?;
            }
            pc.savepoints.truncate(depth);
        }
        Ok(pc.raw())
    }

    /// Opens a savepoint (`SAVEPOINT "name"`) and returns its guard: a nested
    /// [`Transaction`] whose [`commit`](Self::commit) releases the savepoint and whose
    /// [`rollback`](Self::rollback), or drop, rolls back to it. The name is quoted as given
    /// (case kept); reusing an open savepoint's name is allowed.
    ///
    /// # Errors
    /// [`Error::InvalidName`] for an empty name, one longer than 63 bytes or with a NUL byte;
    /// the server's error if the transaction has failed (25P02).
    pub async fn savepoint(&mut self, name: &str) -> Result<Transaction<'_>> {
        let quoted = ident::quote("savepoint", name)?;
        self.ready()
            .await?
            .batch_execute(&format!("SAVEPOINT {quoted}"))
            .await?;
        // Recorded only once it exists: a cancelled SAVEPOINT leaves at most an unnamed-to-us
        // savepoint, which COMMIT releases and an enclosing rollback removes.
        self.conn.savepoints.push(quoted.clone());
        Ok(Transaction {
            conn: &mut *self.conn,
            depth: self.depth + 1,
            name: Some(quoted),
        })
    }

    /// Runs a statement with parameters as a cached named prepared statement.
    pub async fn execute(
        &mut self,
        querystring: &str,
        parameters: &[&(dyn ToSql + Sync)],
    ) -> Result<QueryResult> {
        Ok(self.ready().await?.execute(querystring, parameters).await?)
    }

    /// Runs a statement with parameters through the unnamed statement.
    pub async fn execute_unprepared(
        &mut self,
        querystring: &str,
        parameters: &[&(dyn ToSql + Sync)],
    ) -> Result<QueryResult> {
        let conn = self.ready().await?;
        Ok(conn.execute_unprepared(querystring, parameters).await?)
    }

    /// Runs a statement once per parameter row in one round trip; see
    /// [`Connection::execute_many`]. Inside a transaction a failure aborts the transaction.
    pub async fn execute_many<'p, R>(
        &mut self,
        querystring: &str,
        parameters: &'p [R],
    ) -> Result<u64>
    where
        R: AsRef<[&'p (dyn ToSql + Sync)]>,
    {
        let conn = self.ready().await?;
        Ok(conn.execute_many(querystring, parameters).await?)
    }

    /// Starts a pipeline on this transaction's connection; see [`Connection::pipeline`].
    pub async fn pipeline<'p>(&mut self) -> Result<Pipeline<'_, 'p>> {
        Ok(self.ready().await?.pipeline())
    }

    /// Runs a query and returns its rows.
    pub async fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        Ok(self.ready().await?.query(sql, params).await?)
    }

    /// Runs a query that must return exactly one row.
    pub async fn query_one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        Ok(self.ready().await?.query_one(sql, params).await?)
    }

    /// Runs a query that returns at most one row.
    pub async fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        Ok(self.ready().await?.query_opt(sql, params).await?)
    }

    /// Runs statements with the simple query protocol, one result per statement.
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<QueryResult>> {
        Ok(self.ready().await?.simple_query(sql).await?)
    }

    /// Runs statements with the simple query protocol and discards their rows.
    pub async fn batch_execute(&mut self, sql: &str) -> Result<()> {
        Ok(self.ready().await?.batch_execute(sql).await?)
    }

    /// Commits the transaction, or releases the savepoint (its work becomes part of the
    /// enclosing transaction). Savepoints nested in it whose guards were dropped are rolled
    /// back first.
    ///
    /// # Errors
    /// For a transaction, [`Error::RolledBack`] if it had failed (the server rolled it back
    /// instead); either way it is over. For a savepoint in a failed transaction, the server's
    /// error (25P02): the savepoint stays open, to be rolled back.
    pub async fn commit(mut self) -> Result<()> {
        self.ready().await?;
        match self.name.take() {
            None => {
                let r = commit(self.conn.raw()).await;
                self.finish(r)
            }
            Some(name) => {
                let sql = format!("RELEASE SAVEPOINT {name}");
                self.conn.raw().batch_execute(&sql).await?;
                self.conn.savepoints.truncate(self.depth - 1);
                Ok(())
            }
        }
    }

    /// Rolls back the transaction, or rolls back to the savepoint and releases it (the
    /// enclosing transaction keeps its own work, and leaves a failed state if the failure
    /// happened inside the savepoint).
    pub async fn rollback(mut self) -> Result<()> {
        match self.name.take() {
            None => {
                let r = self.conn.raw().batch_execute("ROLLBACK").await;
                self.finish(r.map_err(Error::from))
            }
            Some(_) => {
                // The savepoint is in the stack at depth - 1: settling from the enclosing
                // depth rolls back to it, and to everything nested in it.
                self.depth -= 1;
                self.ready().await?;
                Ok(())
            }
        }
    }

    /// Disarms the pending rollback once the transaction is over (committed, rolled back, or
    /// ended by the server); on an error that left it open, the rollback stays pending.
    fn finish(self, r: Result<()>) -> Result<()> {
        if !self.conn.raw().in_transaction() && !self.conn.raw().has_pending() {
            self.conn.rollback_pending = false;
            self.conn.savepoints.clear();
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_goes_into_the_one_begin() {
        assert_eq!(TransactionOptions::new().begin_sql(), "BEGIN");
        let all = TransactionOptions::new()
            .isolation_level(IsolationLevel::Serializable)
            .read_only(true)
            .deferrable(true);
        assert_eq!(
            all.begin_sql(),
            "BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE"
        );
        let rw = TransactionOptions::new()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(false)
            .deferrable(false);
        assert_eq!(
            rw.begin_sql(),
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ WRITE, NOT DEFERRABLE"
        );
    }
}
