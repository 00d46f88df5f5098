//! Many statements in one write: `execute_many` and explicit pipelines.
//!
//! Both reuse the connection's statement cache, so a statement is prepared once per connection
//! and every later batch costs a single round trip however many rows or statements it carries.
//! Large batches are written while reading (see `Stream::write_all_reading`), so a server whose
//! answers fill the socket cannot deadlock the write.

use std::fmt;
use std::io;
use std::sync::Arc;

use super::Connection;
use super::TransactionStatus;
use super::extended::{is_stale_statement, unexpected};
use super::reader::Owes;
use crate::error::{Error, Result};
use crate::protocol::backend::{self, BackendMessage, decode};
use crate::protocol::frontend;
use crate::row::QueryResult;
use crate::statement::Statement;
use crate::types::ToSql;

impl Connection {
    /// Runs `sql` once per parameter row (psqlpy's `execute_many`), with every Bind/Execute in one
    /// write and a single Sync: one round trip for the whole batch, where a loop of `execute`
    /// costs one per row.
    ///
    /// The batch is one implicit transaction: when a row fails, no row of the batch is applied
    /// (inside an explicit transaction, the failure aborts that transaction as usual). Rows that
    /// return data have it discarded. Returns the number of rows affected in total.
    ///
    /// Rows are anything that holds a parameter list: `Vec<&(dyn ToSql + Sync)>`, arrays, slices.
    pub async fn execute_many<'a, R>(&mut self, sql: &str, rows: &'a [R]) -> Result<u64>
    where
        R: AsRef<[&'a (dyn ToSql + Sync)]>,
    {
        let rows: Vec<&[&(dyn ToSql + Sync)]> = rows.iter().map(|r| r.as_ref()).collect();
        self.traced(sql, async |c| c.execute_many_request(sql, &rows).await)
            .await
    }

    async fn execute_many_request(
        &mut self,
        sql: &str,
        rows: &[&[&(dyn ToSql + Sync)]],
    ) -> Result<u64> {
        self.ensure_ready().await?;
        if rows.is_empty() {
            return Ok(0);
        }
        if self.cache.capacity() == 0 {
            // Named statements are off: the unnamed one, described and run in one exchange.
            let stmt = self.describe_unnamed(sql).await?;
            return self.execute_batch(&stmt, rows, Owes::OwedSync).await;
        }
        let stmt = match self.cache.get(sql) {
            Some(s) => s,
            None => self.prepare_cached(sql).await?,
        };
        match self.execute_batch(&stmt, rows, Owes::SYNC).await {
            // As in execute: a stale statement fails at the first Bind, and the implicit
            // transaction rolled back whatever ran, so one retry outside a transaction is safe.
            Err(e) if is_stale_statement(&e) && self.tx_status == TransactionStatus::Idle => {
                self.cache.invalidate(sql);
                let stmt = self.prepare_cached(sql).await?;
                self.execute_batch(&stmt, rows, Owes::SYNC).await
            }
            r => r,
        }
    }

    async fn execute_batch(
        &mut self,
        stmt: &Statement,
        rows: &[&[&(dyn ToSql + Sync)]],
        owes: Owes,
    ) -> Result<u64> {
        self.clear_write_buf();
        self.write_pending_closes()?;
        for (i, params) in rows.iter().enumerate() {
            if let Err(e) = self.write_bind_execute(stmt, params) {
                if owes == Owes::OwedSync {
                    self.finish_with_sync().await?;
                }
                self.clear_write_buf();
                return Err(match e {
                    Error::Conversion(m) => Error::Conversion(format!("row {i}: {m}")),
                    e => e,
                });
            }
        }
        frontend::sync(&mut self.write_buf);
        self.send(owes).await?;
        let mut affected = 0u64;
        let mut error = None;
        loop {
            let frame = self.recv().await?;
            match decode(&frame)? {
                BackendMessage::CommandComplete { tag } => {
                    affected += backend::rows_affected(tag);
                }
                BackendMessage::DataRow(_)
                | BackendMessage::BindComplete
                | BackendMessage::CloseComplete
                | BackendMessage::EmptyQueryResponse
                | BackendMessage::PortalSuspended => {}
                BackendMessage::ErrorResponse(f) => {
                    let e = self.db_error(&f);
                    error.get_or_insert(e);
                }
                BackendMessage::ReadyForQuery { status } => {
                    self.ready_for_query(status)?;
                    break;
                }
                _ => return Err(unexpected(&frame, "an execute_many response")),
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(affected),
        }
    }

    /// Starts an explicit pipeline: queue statements with [`Pipeline::push`], then
    /// [`Pipeline::run`] sends them all in one write and returns one result per statement.
    pub fn pipeline<'p>(&mut self) -> Pipeline<'_, 'p> {
        Pipeline {
            conn: self,
            items: Vec::new(),
        }
    }
}

/// A batch of statements sent in one write. Each statement ends with its own Sync, so an error
/// stays with its statement: the others still run (outside an explicit transaction each is its
/// own implicit transaction; inside one, a failure aborts the transaction and the statements
/// after it fail with 25P02, as PostgreSQL decides).
pub struct Pipeline<'c, 'p> {
    conn: &'c mut Connection,
    items: Vec<(&'p str, &'p [&'p (dyn ToSql + Sync)])>,
}

impl fmt::Debug for Pipeline<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("statements", &self.items.len())
            .finish()
    }
}

impl<'p> Pipeline<'_, 'p> {
    /// Queues a statement with its parameters.
    pub fn push(&mut self, sql: &'p str, params: &'p [&'p (dyn ToSql + Sync)]) -> &mut Self {
        self.items.push((sql, params));
        self
    }

    /// The number of queued statements.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Sends every queued statement in one write and reads their results, in order.
    ///
    /// Statements the connection has not prepared yet are prepared first (a round trip each, the
    /// first time only). With named statements off (statement cache capacity 0), each statement
    /// runs through the unnamed statement in its own round trip. The outer `Result` fails only when the connection itself fails; each
    /// statement's own outcome is in the inner one.
    pub async fn run(self) -> Result<Vec<Result<QueryResult>>> {
        let Pipeline { conn, items } = self;
        conn.request(async |c| c.run_pipeline(&items).await).await
    }
}

impl Connection {
    async fn run_pipeline(
        &mut self,
        items: &[(&str, &[&(dyn ToSql + Sync)])],
    ) -> Result<Vec<Result<QueryResult>>> {
        self.ensure_ready().await?;
        if self.cache.capacity() == 0 {
            // Named statements are off (a transaction pooler): each statement through the
            // unnamed one, whose Describe must come back before its values can be encoded, so
            // a round trip each.
            let mut results = Vec::with_capacity(items.len());
            for (sql, params) in items {
                match self.execute_unprepared_request(sql, params).await {
                    Err(e) if e.is_closed() => return Err(e),
                    r => results.push(r),
                }
            }
            return Ok(results);
        }
        // Prepare what the cache lacks; a statement that fails to prepare reports its error in
        // its own slot and is not sent.
        let mut stmts: Vec<Result<Arc<Statement>>> = Vec::with_capacity(items.len());
        for (sql, _) in items {
            let s = match self.cache.get(sql) {
                Some(s) => Ok(s),
                None => match self.prepare_cached(sql).await {
                    Err(e) if e.is_closed() => return Err(e),
                    r => r,
                },
            };
            stmts.push(s);
        }
        self.clear_write_buf();
        self.write_pending_closes()?;
        let mut results: Vec<Option<Result<QueryResult>>> = Vec::with_capacity(items.len());
        let mut sent = Vec::with_capacity(items.len());
        for ((_, params), stmt) in items.iter().zip(&stmts) {
            match stmt {
                Ok(stmt) => {
                    let at = self.write_buf.len();
                    match self.write_bind_execute(stmt, params) {
                        Ok(()) => {
                            frontend::sync(&mut self.write_buf);
                            sent.push(stmt.clone());
                            results.push(None);
                        }
                        Err(e) => {
                            // Only this statement's half-written Bind goes; the others stay.
                            self.write_buf.truncate(at);
                            results.push(Some(Err(e)));
                        }
                    }
                }
                Err(e) => results.push(Some(Err(clone_error(e)))),
            }
        }
        if sent.is_empty() {
            // Nothing to run: queued Closes wait for the next request, which has a Sync.
            self.clear_write_buf();
        } else {
            self.send(Owes::Ready {
                n: sent.len(),
                extended: true,
            })
            .await?;
        }
        let mut sent = sent.into_iter();
        for slot in results.iter_mut().filter(|r| r.is_none()) {
            let Some(stmt) = sent.next() else { break };
            let r = self.read_execute_response(stmt.columns.clone()).await;
            if let Err(e) = &r {
                if e.is_closed() {
                    return Err(clone_error(e));
                }
            }
            *slot = Some(r);
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or(Err(Error::Closed("the pipeline was cut short"))))
            .collect())
    }
}

/// Errors are not `Clone` (they may hold an `io::Error`); a statement's error that must be
/// reported in two places keeps its kind and text.
fn clone_error(e: &Error) -> Error {
    match e {
        Error::Db(d) => Error::Db(d.clone()),
        Error::Io(io) => Error::Io(io::Error::new(io.kind(), io.to_string())),
        Error::Protocol(m) => Error::Protocol(m.clone()),
        Error::Auth(m) => Error::Auth(m.clone()),
        Error::Config(c) => Error::Config(c.clone()),
        Error::Closed(w) => Error::Closed(w),
        Error::Timeout(w) => Error::Timeout(w),
        Error::QueryTimeout(o) => Error::QueryTimeout(*o),
        Error::Conversion(m) => Error::Conversion(m.clone()),
        Error::Unsupported(w) => Error::Unsupported(w),
        Error::RowCount {
            call,
            expected,
            got,
        } => Error::RowCount {
            call,
            expected,
            got: *got,
        },
    }
}
