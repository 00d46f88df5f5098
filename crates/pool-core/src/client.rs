//! [`GenericClient`]: one trait for "something that runs queries", so a helper can take a
//! pooled connection or a transaction (or savepoint) alike.

use std::future::Future;

use pgwire_lite::{QueryResult, Row, ToSql};

use crate::error::Result;
use crate::guard::PooledConnection;
use crate::transaction::Transaction;

/// The query methods shared by [`PooledConnection`] and [`Transaction`] (tokio-postgres's
/// `GenericClient`). Each forwards to the type's own method of the same name.
///
/// ```no_run
/// use pool_core::{GenericClient, Result};
///
/// async fn add_user(db: &mut impl GenericClient, name: &str) -> Result<i32> {
///     let row = db
///         .query_one("INSERT INTO users (name) VALUES ($1) RETURNING id", &[&name])
///         .await?;
///     Ok(row.get(0))
/// }
/// # async fn f(pool: pool_core::PsqlPool) -> Result<()> {
/// let mut conn = pool.connection().await?;
/// add_user(&mut conn, "outside a transaction").await?;
/// let mut tx = conn.transaction().await?;
/// add_user(&mut tx, "inside one").await?;
/// tx.commit().await
/// # }
/// ```
pub trait GenericClient: Send {
    /// Runs a statement as a cached named prepared statement.
    fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<QueryResult>> + Send;

    /// Runs a statement through the unnamed statement, nothing cached.
    fn execute_unprepared(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<QueryResult>> + Send;

    /// Runs a statement once per parameter row in one round trip, all or nothing.
    fn execute_many<'p, R>(
        &mut self,
        sql: &str,
        params: &'p [R],
    ) -> impl Future<Output = Result<u64>> + Send
    where
        R: AsRef<[&'p (dyn ToSql + Sync)]> + Sync;

    /// Runs a query and returns its rows.
    fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>>> + Send;

    /// Runs a query that must return exactly one row.
    fn query_one(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Row>> + Send;

    /// Runs a query that returns at most one row.
    fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Option<Row>>> + Send;

    /// Runs statements with the simple query protocol, one result per statement.
    fn simple_query(&mut self, sql: &str) -> impl Future<Output = Result<Vec<QueryResult>>> + Send;

    /// Runs statements with the simple query protocol and discards their rows.
    fn batch_execute(&mut self, sql: &str) -> impl Future<Output = Result<()>> + Send;
}

/// Implements the trait by forwarding to the inherent methods (which take precedence in
/// path resolution, so these calls do not recurse).
macro_rules! forward {
    ($ty:ty) => {
        impl GenericClient for $ty {
            fn execute(
                &mut self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> impl Future<Output = Result<QueryResult>> + Send {
                <$ty>::execute(self, sql, params)
            }

            fn execute_unprepared(
                &mut self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> impl Future<Output = Result<QueryResult>> + Send {
                <$ty>::execute_unprepared(self, sql, params)
            }

            fn execute_many<'p, R>(
                &mut self,
                sql: &str,
                params: &'p [R],
            ) -> impl Future<Output = Result<u64>> + Send
            where
                R: AsRef<[&'p (dyn ToSql + Sync)]> + Sync,
            {
                <$ty>::execute_many(self, sql, params)
            }

            fn query(
                &mut self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> impl Future<Output = Result<Vec<Row>>> + Send {
                <$ty>::query(self, sql, params)
            }

            fn query_one(
                &mut self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> impl Future<Output = Result<Row>> + Send {
                <$ty>::query_one(self, sql, params)
            }

            fn query_opt(
                &mut self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> impl Future<Output = Result<Option<Row>>> + Send {
                <$ty>::query_opt(self, sql, params)
            }

            fn simple_query(
                &mut self,
                sql: &str,
            ) -> impl Future<Output = Result<Vec<QueryResult>>> + Send {
                <$ty>::simple_query(self, sql)
            }

            fn batch_execute(&mut self, sql: &str) -> impl Future<Output = Result<()>> + Send {
                <$ty>::batch_execute(self, sql)
            }
        }
    };
}

forward!(PooledConnection);
forward!(Transaction<'_>);
