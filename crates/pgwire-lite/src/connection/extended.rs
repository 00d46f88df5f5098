//! The extended query protocol: `execute` through the statement cache, `execute_unprepared`
//! through the unnamed statement, and reading an Execute's response.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::reader::Owes;
use super::{Connection, ParamTypes, TransactionStatus};
use crate::error::{Error, Result};
use crate::protocol::backend::{self, BackendMessage, DataRowBody, decode};
use crate::protocol::frontend::{self, STATEMENT};
use crate::row::{Column, QueryResult, Row, Rows};
use crate::statement::Statement;
use crate::types::{IsNull, ToSql, Type};

impl Connection {
    /// Runs `sql` with parameters `$1..$n` as a named prepared statement, kept in this
    /// connection's statement cache (psqlpy's `prepared=True`). The first call costs a
    /// Parse/Describe round trip; later ones send only Bind/Execute/Sync.
    ///
    /// The whole result is buffered in memory before this returns.
    pub async fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<QueryResult> {
        self.traced(sql, async |c| c.execute_request(sql, params).await)
            .await
    }

    /// Runs `sql` with parameters through the unnamed statement, nothing cached (psqlpy's
    /// `prepared=False`). Parse, Describe and (after a Flush) Bind/Execute form one request with a
    /// single Sync, so it is safe behind PgBouncer in transaction mode.
    ///
    /// The whole result is buffered in memory before this returns.
    pub async fn execute_unprepared(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<QueryResult> {
        self.traced(sql, async |c| {
            c.execute_unprepared_request(sql, params).await
        })
        .await
    }

    /// Runs a query and returns its rows.
    pub async fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        self.execute(sql, params).await.map(QueryResult::into_rows)
    }

    /// Runs a query that must return exactly one row.
    pub async fn query_one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        let result = self.execute(sql, params).await?;
        let n = result.len();
        result.into_single_row().ok_or(Error::RowCount {
            call: "query_one",
            expected: "exactly one row",
            got: n,
        })
    }

    /// Runs a query that returns at most one row.
    pub async fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        let rows = self.query(sql, params).await?;
        let n = rows.len();
        let mut it = rows.into_iter();
        match (it.next(), n) {
            (row, 0 | 1) => Ok(row),
            _ => Err(Error::RowCount {
                call: "query_opt",
                expected: "at most one row",
                got: n,
            }),
        }
    }

    async fn execute_request(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<QueryResult> {
        // A cache of capacity 0 means named statements are off (behind a transaction pooler,
        // a named statement prepared in one transaction is gone in the next).
        if self.cache.capacity() == 0 {
            return self.execute_unprepared_request(sql, params).await;
        }
        check_param_count(params.len())?;
        self.ensure_ready().await?;
        let stmt = match self.cache.get(sql) {
            // The common case: cached, and the server's parameter types take these values.
            Some(s) if accepts_all(&s, params) => s,
            cached => {
                // A miss (or cached types these values do not fit): one round trip when the
                // values say their types, otherwise Parse/Describe first and let the server infer.
                if let Some(r) = self.try_one_trip(sql, true, params).await? {
                    return Ok(r);
                }
                match cached {
                    Some(s) => s,
                    None => self.prepare_cached(sql).await?,
                }
            }
        };
        match self.execute_statement(&stmt, params).await {
            // "cached plan must not change result type" (the table changed under the cached
            // statement), or "prepared statement does not exist" (someone ran DEALLOCATE ALL or
            // DISCARD ALL behind the cache's back). Nothing was executed; recognised by SQLSTATE
            // and routine, never by the (localized) message.
            Err(e) if is_stale_statement(&e) => {
                self.cache.invalidate(sql);
                if self.tx_status != TransactionStatus::Idle {
                    return Err(e);
                }
                let stmt = self.prepare_cached(sql).await?;
                self.execute_statement(&stmt, params).await
            }
            r => r,
        }
    }

    pub(super) async fn execute_unprepared_request(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<QueryResult> {
        check_param_count(params.len())?;
        self.ensure_ready().await?;
        if let Some(r) = self.try_one_trip(sql, false, params).await? {
            return Ok(r);
        }
        let stmt = self.describe_unnamed(sql).await?;
        self.clear_write_buf();
        if let Err(e) = self.write_bind_execute(&stmt, params) {
            self.finish_with_sync().await?;
            return Err(e);
        }
        frontend::sync(&mut self.write_buf);
        self.send(Owes::OwedSync).await?;
        self.read_execute_response(stmt.columns.clone()).await
    }

    /// Parse and Describe of the unnamed statement, ended with Flush: the caller writes its
    /// Bind/Execute and the one Sync (`Owes::OwedSync`), so the whole exchange stays one
    /// transaction for a pooler, which cannot switch server connections in the middle.
    pub(super) async fn describe_unnamed(&mut self, sql: &str) -> Result<Statement> {
        self.describe_unnamed_once(sql, true).await
    }

    /// [`describe_unnamed`](Self::describe_unnamed); `lookup` says whether a type not seen
    /// before may still be looked up (once: a type the lookup could not find, say dropped
    /// meanwhile, must not make it describe again and again).
    async fn describe_unnamed_once(&mut self, sql: &str, lookup: bool) -> Result<Statement> {
        self.clear_write_buf();
        self.write_pending_closes()?;
        frontend::parse("", sql, std::iter::empty(), &mut self.write_buf)?;
        frontend::describe(STATEMENT, "", &mut self.write_buf)?;
        frontend::flush(&mut self.write_buf);
        self.send(Owes::SyncLater).await?;
        match self.read_describe().await {
            Ok((params, columns))
                if lookup
                    && self.needs_lookup(super::prepare::described_types(&params, &columns)) =>
            {
                // A type seen for the first time: the lookup cannot run inside this unfinished
                // request, so end it (nothing was bound or executed), look the types up, and
                // describe again, which then finds them all cached.
                self.finish_with_sync().await?;
                let _ = self.lookup_described(params, columns).await?;
                Box::pin(self.describe_unnamed_once(sql, false)).await
            }
            Ok((params, columns)) => {
                let (params, columns) = self.resolve_described(params, columns);
                Ok(Statement {
                    name: "".into(),
                    params,
                    columns,
                })
            }
            Err(e) => {
                // The server skips everything up to the Sync we still owe it.
                self.finish_with_sync().await?;
                Err(e)
            }
        }
    }

    /// Sends the Sync an unfinished request still owes, alone, and reads up to its
    /// ReadyForQuery.
    pub(super) async fn finish_with_sync(&mut self) -> Result<()> {
        self.clear_write_buf();
        frontend::sync(&mut self.write_buf);
        self.send(Owes::OwedSync).await?;
        self.read_until_ready().await
    }

    /// Parse (with the parameter types the values declare), Describe, Bind, Execute and Sync in
    /// one write: one round trip for a statement this connection has not seen.
    ///
    /// Returns `Ok(None)` when it does not apply — a value without a type hint, or an open
    /// transaction, where a failed Parse would abort the caller's transaction — and when the
    /// server rejected the Parse (nothing was executed), so the caller falls back to letting the
    /// server infer the types. An error after the Parse succeeded is the statement's own error.
    async fn try_one_trip(
        &mut self,
        sql: &str,
        cache: bool,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<QueryResult>> {
        if self.param_types != ParamTypes::FromValues || self.tx_status != TransactionStatus::Idle {
            return Ok(None);
        }
        let Some(hints) = params
            .iter()
            .map(|p| p.type_hint())
            .collect::<Option<Box<[Type]>>>()
        else {
            return Ok(None);
        };
        let name: Box<str> = if cache {
            self.cache.next_name()
        } else {
            "".into()
        };
        self.clear_write_buf();
        self.write_pending_closes()?;
        frontend::parse(&name, sql, hints.iter().map(Type::oid), &mut self.write_buf)?;
        frontend::describe(STATEMENT, &name, &mut self.write_buf)?;
        let stmt = Statement {
            name,
            params: hints,
            columns: None,
        };
        if let Err(e) = self.write_bind_execute(&stmt, params) {
            self.clear_write_buf();
            return Err(e);
        }
        frontend::sync(&mut self.write_buf);
        self.send(Owes::SYNC).await?;
        match self.read_describe().await {
            Ok((params, columns)) => {
                let result = self.read_execute_response(columns.clone()).await;
                // The statement exists on the server even when its execution failed.
                if cache {
                    let stmt = Statement {
                        name: stmt.name,
                        params,
                        columns,
                    };
                    self.cache.insert(sql, Arc::new(stmt));
                }
                let result = result?;
                // Its rows were read before any type was looked up: look them up now (the
                // request is settled), and re-cache the statement with the resolved types.
                let Some(cols) = result.shared_columns() else {
                    return Ok(Some(result));
                };
                if !cols.iter().any(|c| c.type_().is_unresolved()) {
                    return Ok(Some(result));
                }
                let result = self.lookup_result(result).await?;
                if cache {
                    if let Some(old) = self.cache.get(sql) {
                        let (params, columns) =
                            self.resolve_described(old.params.clone(), old.columns.clone());
                        self.cache.replace(
                            sql,
                            Statement {
                                name: old.name.clone(),
                                params,
                                columns,
                            },
                        );
                    }
                }
                Ok(Some(result))
            }
            Err(e) if !e.is_closed() => {
                self.read_until_ready().await?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn execute_statement(
        &mut self,
        stmt: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<QueryResult> {
        self.clear_write_buf();
        self.write_pending_closes()?;
        if let Err(e) = self.write_bind_execute(stmt, params) {
            // Nothing is sent; the Closes stay queued for the next request.
            self.clear_write_buf();
            return Err(e);
        }
        frontend::sync(&mut self.write_buf);
        self.send(Owes::SYNC).await?;
        self.read_execute_response(stmt.columns.clone()).await
    }

    /// Appends Bind (all parameters and results binary) and Execute for the unnamed portal.
    pub(super) fn write_bind_execute(
        &mut self,
        stmt: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<()> {
        self.write_bind(stmt, params)?;
        frontend::execute("", 0, &mut self.write_buf)
    }

    /// Appends Bind (all parameters and results binary) for the unnamed portal.
    pub(super) fn write_bind(
        &mut self,
        stmt: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<()> {
        if params.len() != stmt.params.len() {
            return Err(Error::Conversion(format!(
                "the statement has {} parameters but {} were given",
                stmt.params.len(),
                params.len()
            )));
        }
        frontend::bind(
            "",
            &stmt.name,
            params.len(),
            |i, buf| encode_param(params[i], &stmt.params[i], i, buf),
            &mut self.write_buf,
        )
    }

    /// Reads the answer to `[Close*] Bind Execute Sync`, in the only order the protocol allows:
    /// CloseComplete*, BindComplete, DataRow*, then CommandComplete, EmptyQueryResponse or
    /// PortalSuspended, then ReadyForQuery. An ErrorResponse may come at any point (also a FATAL
    /// after CommandComplete); after it only ReadyForQuery. Anything else is a protocol error:
    /// a BindComplete after the rows, or rows before it, means the stream is out of step with
    /// our requests.
    pub(super) async fn read_execute_response(
        &mut self,
        columns: Option<Arc<[Column]>>,
    ) -> Result<QueryResult> {
        #[derive(Clone, Copy, PartialEq)]
        enum Step {
            Bind,
            Rows,
            CopyOut,
            Done,
        }
        use BackendMessage as M;
        let mut step = Step::Bind;
        let mut rows = Rows::default();
        let mut tag = None;
        let mut error = None;
        loop {
            let frame = self.recv().await?;
            let msg = decode(&frame)?;
            match (step, msg) {
                (_, M::ErrorResponse(f)) => error = Some(self.db_error(&f)),
                (_, M::ReadyForQuery { status }) if error.is_some() || step == Step::Done => {
                    self.ready_for_query(status)?;
                    break;
                }
                _ if error.is_some() => {
                    return Err(unexpected(&frame, "the end of a failed Execute"));
                }
                (Step::Bind, M::CloseComplete) => {}
                (Step::Bind, M::BindComplete) => step = Step::Rows,
                (Step::Rows, M::DataRow(body)) => {
                    let cols = columns.as_ref().ok_or_else(|| {
                        Error::protocol("DataRow for a statement without columns")
                    })?;
                    rows.push(row_from(cols, &frame, &body)?);
                }
                (Step::Rows, M::CommandComplete { tag: t }) => {
                    tag = Some(frame.slice_ref(t.as_bytes()));
                    step = Step::Done;
                }
                (Step::Rows, M::EmptyQueryResponse | M::PortalSuspended) => step = Step::Done,
                (Step::Rows, M::CopyInResponse | M::CopyBothResponse) => {
                    // COPY FROM STDIN: refused; the server answers with an ErrorResponse
                    // (57014, quoting our reason) and the ReadyForQuery of our Sync.
                    self.refuse_copy_in(true).await?;
                }
                // COPY TO STDOUT: read to its end, then reported as unsupported.
                (Step::Rows, M::CopyOutResponse) => step = Step::CopyOut,
                (Step::CopyOut, M::CopyData { .. } | M::CopyDone) => {}
                (Step::CopyOut, M::CommandComplete { .. }) => {
                    error = Some(copy_out_unsupported());
                    step = Step::Done;
                }
                _ => return Err(unexpected(&frame, "an Execute response")),
            }
        }
        if let Some(e) = error {
            return Err(e);
        }
        Ok(QueryResult::new(columns, rows, tag))
    }
}

/// A row sharing its DataRow frame, checked against the columns it claims to fill.
pub(super) fn row_from(
    columns: &Arc<[Column]>,
    frame: &Bytes,
    body: &DataRowBody<'_>,
) -> Result<Row> {
    if body.len() != columns.len() {
        return Err(Error::protocol(format!(
            "DataRow has {} values but the RowDescription has {} columns",
            body.len(),
            columns.len()
        )));
    }
    Ok(Row::new(
        columns.clone(),
        frame.slice(backend::HEADER_LEN..),
    ))
}

fn encode_param(
    p: &(dyn ToSql + Sync),
    declared: &Type,
    i: usize,
    buf: &mut BytesMut,
) -> Result<IsNull> {
    // Domains are sent as their base type; errors still name the domain.
    let ty = declared.base();
    if !p.accepts(ty) {
        return Err(Error::Conversion(format!(
            "cannot send parameter ${} of Rust type {} as PostgreSQL type {declared}",
            i + 1,
            p.type_name()
        )));
    }
    p.to_sql(ty, buf).map_err(|e| frontend::param_error(i, e))
}

/// Whether each value can be sent as the statement's corresponding parameter type.
pub(super) fn accepts_all(stmt: &Statement, params: &[&(dyn ToSql + Sync)]) -> bool {
    params.len() == stmt.params.len()
        && params
            .iter()
            .zip(&stmt.params[..])
            .all(|(p, t)| p.accepts(t.base()))
}

/// A cached statement the server no longer has in the shape we cached: re-prepare and retry.
pub(crate) fn is_stale_statement(e: &Error) -> bool {
    e.as_db_error().is_some_and(|d| match d.code() {
        "0A000" => d.routine.as_deref() == Some("RevalidateCachedQuery"),
        "26000" => d.routine.as_deref() == Some("FetchPreparedStatement"),
        _ => false,
    })
}

/// More parameters than Bind can carry are refused before anything is sent: otherwise the
/// statement would be parsed (a round trip, possibly a server error of its own) only for the
/// Bind to fail.
pub(super) fn check_param_count(n: usize) -> Result<()> {
    if n > frontend::MAX_PARAMS {
        return Err(Error::Conversion(format!(
            "{n} parameters given; the protocol allows at most {}",
            frontend::MAX_PARAMS
        )));
    }
    Ok(())
}

/// The error of a statement that started COPY TO STDOUT (its data was read and discarded; the
/// connection stays usable).
pub(super) fn copy_out_unsupported() -> Error {
    Error::Unsupported("COPY TO STDOUT (the data the server sent was read and discarded)")
}

/// A message that has no place at this point of the response.
pub(super) fn unexpected(frame: &[u8], during: &str) -> Error {
    let tag = frame.first().copied().unwrap_or(0);
    Error::protocol(format!(
        "unexpected message {} during {during}",
        backend::tag_name(tag)
    ))
}
