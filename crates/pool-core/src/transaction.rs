//! [`Transaction`]: the guard of a transaction begun on a [`PooledConnection`], rolled back
//! unless committed.

use std::fmt;
use std::ops::Deref;

use pgwire_lite::{Connection, QueryResult, Row, ToSql};

use crate::error::{Error, Result};
use crate::guard::{PooledConnection, commit};

impl PooledConnection {
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
