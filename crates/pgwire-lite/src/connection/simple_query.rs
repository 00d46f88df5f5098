//! The simple query protocol: one Query message, text results, any number of statements.

use std::sync::Arc;

use super::Connection;
use super::prepare::columns_from;
use super::reader::Owes;
use crate::error::{Error, Result};
use crate::protocol::backend::{BackendMessage, decode};
use crate::protocol::frontend;
use crate::row::{Column, QueryResult, Rows};

impl Connection {
    /// Runs one or more statements with the simple query protocol and returns one result per
    /// statement. Values arrive in text format. No parameters: use [`execute`](Self::execute)
    /// for anything with user input.
    ///
    /// Text values are decoded assuming the settings the connection starts with (`DateStyle=ISO`,
    /// `IntervalStyle=postgres`, `extra_float_digits=3`); after a `SET` of one of those, dates,
    /// intervals or floats read through this method may fail to decode (they come back as
    /// [`Value::Unknown`](crate::Value::Unknown) in `result()`). The extended protocol is
    /// unaffected: its values are binary.
    ///
    /// The whole result is buffered in memory before this returns.
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<QueryResult>> {
        self.traced(sql, async |c| c.simple_query_request(sql).await)
            .await
    }

    /// Runs statements with the simple query protocol and discards their rows (BEGIN, SET, DDL).
    pub async fn batch_execute(&mut self, sql: &str) -> Result<()> {
        self.simple_query(sql).await.map(drop)
    }

    async fn simple_query_request(&mut self, sql: &str) -> Result<Vec<QueryResult>> {
        self.ensure_ready().await?;
        self.clear_write_buf();
        frontend::query(sql, &mut self.write_buf)?;
        self.send(Owes::QUERY).await?;
        let mut results = Vec::new();
        let mut columns: Option<Arc<[Column]>> = None;
        let mut rows = Rows::default();
        let mut error = None;
        loop {
            let frame = self.recv().await?;
            match decode(&frame)? {
                BackendMessage::RowDescription(rd) => {
                    columns = Some(columns_from(&rd, None));
                    rows = Rows::default();
                }
                BackendMessage::DataRow(body) => {
                    let cols = columns
                        .as_ref()
                        .ok_or_else(|| Error::protocol("DataRow without a RowDescription"))?;
                    rows.push(super::extended::row_from(cols, &frame, &body)?);
                }
                BackendMessage::CommandComplete { tag } => {
                    let tag = frame.slice_ref(tag.as_bytes());
                    results.push(QueryResult::new(
                        columns.take(),
                        std::mem::take(&mut rows),
                        Some(tag),
                    ));
                }
                BackendMessage::EmptyQueryResponse => {
                    results.push(QueryResult::new(None, Rows::default(), None));
                }
                BackendMessage::ErrorResponse(f) => error = Some(self.db_error(&f)),
                BackendMessage::CopyInResponse | BackendMessage::CopyBothResponse => {
                    // COPY FROM STDIN: refuse it so the server ends the statement with an error.
                    self.refuse_copy_in(false).await?;
                }
                BackendMessage::CopyOutResponse => {
                    // COPY TO STDOUT: its data is read and discarded, and the call fails: rows
                    // silently missing from a "successful" result would be worse.
                    error.get_or_insert_with(super::extended::copy_out_unsupported);
                }
                BackendMessage::CopyData { .. } | BackendMessage::CopyDone => {}
                BackendMessage::ReadyForQuery { status } => {
                    // Every simple query is answered with at least one CommandComplete,
                    // EmptyQueryResponse or ErrorResponse before its ReadyForQuery: one without
                    // is a stray left over from before, and taking it as this query's answer
                    // would put every later answer one request out of step.
                    if results.is_empty() && error.is_none() {
                        return Err(Error::protocol(
                            "ReadyForQuery before any result of the query (a stray ReadyForQuery)",
                        ));
                    }
                    self.ready_for_query(status)?;
                    break;
                }
                _ => {
                    return Err(super::extended::unexpected(
                        &frame,
                        "a simple query response",
                    ));
                }
            }
        }
        if let Some(e) = error {
            return Err(e);
        }
        // Columns of types not built in are looked up now that the request is settled (their
        // text reads the same either way, but enums and composites need their kind).
        if results
            .iter()
            .any(|r| r.columns().iter().any(|c| c.type_().is_unresolved()))
        {
            let mut resolved = Vec::with_capacity(results.len());
            for r in results {
                resolved.push(self.lookup_result(r).await?);
            }
            return Ok(resolved);
        }
        Ok(results)
    }
}
