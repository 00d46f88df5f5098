//! Preparing named statements into the connection's cache: Parse, Describe, Sync.

use std::sync::Arc;

use super::Connection;
use super::extended::unexpected;
use super::reader::Owes;
use crate::error::Result;
use crate::protocol::backend::{BackendMessage, RowDescriptionBody, decode};
use crate::protocol::frontend::{self, STATEMENT};
use crate::row::Column;
use crate::statement::Statement;
use crate::types::{Format, Type};

impl Connection {
    /// Prepares `sql` as a named statement in the cache (or returns the cached one).
    pub async fn prepare(&mut self, sql: &str) -> Result<Arc<Statement>> {
        self.traced(sql, async |c| {
            c.ensure_ready().await?;
            match c.cache.get(sql) {
                Some(s) => Ok(s),
                None => c.prepare_cached(sql).await,
            }
        })
        .await
    }

    /// Parse, Describe and Sync for a new named statement; on success it is in the cache.
    pub(super) async fn prepare_cached(&mut self, sql: &str) -> Result<Arc<Statement>> {
        let name = self.cache.next_name();
        self.clear_write_buf();
        self.write_pending_closes()?;
        frontend::parse(&name, sql, std::iter::empty(), &mut self.write_buf)?;
        frontend::describe(STATEMENT, &name, &mut self.write_buf)?;
        frontend::sync(&mut self.write_buf);
        self.send(Owes::SYNC).await?;
        let described = self.read_describe().await;
        // Whatever the outcome, the request ends with our Sync's ReadyForQuery.
        self.read_until_ready().await?;
        let (params, columns) = described?;
        // Types seen for the first time are looked up now, with the Describe's request settled;
        // built-in and cached ones cost nothing.
        let (params, columns) = if self.needs_lookup(described_types(&params, &columns)) {
            self.lookup_described(params, columns).await?
        } else {
            self.resolve_described(params, columns)
        };
        let stmt = Arc::new(Statement {
            name,
            params,
            columns,
        });
        self.cache.insert(sql, stmt.clone());
        Ok(stmt)
    }

    /// Closes for evicted statements ride in front of the next extended request; the server
    /// answers each with CloseComplete (closing a name that does not exist is not an error).
    pub(super) fn write_pending_closes(&mut self) -> Result<()> {
        if self.cache.has_to_close() {
            for name in self.cache.to_close() {
                frontend::close(STATEMENT, name, &mut self.write_buf)?;
            }
            self.cache.closes_written();
        }
        Ok(())
    }

    /// Reads CloseComplete*, ParseComplete, ParameterDescription, RowDescription | NoData.
    /// On an ErrorResponse, returns it without reading further.
    pub(super) async fn read_describe(&mut self) -> Result<(Box<[Type]>, Option<Arc<[Column]>>)> {
        let mut params: Option<Box<[Type]>> = None;
        loop {
            let frame = self.recv().await?;
            match decode(&frame)? {
                BackendMessage::CloseComplete | BackendMessage::ParseComplete => {}
                BackendMessage::ParameterDescription(p) => {
                    params = Some(p.oids().map(Type::from_oid).collect());
                }
                BackendMessage::RowDescription(rd) => {
                    // Bind asks for every result column in binary.
                    let cols = columns_from(&rd, Some(Format::Binary));
                    return Ok((params.unwrap_or_default(), Some(cols)));
                }
                BackendMessage::NoData => return Ok((params.unwrap_or_default(), None)),
                BackendMessage::ErrorResponse(f) => return Err(self.db_error(&f)),
                _ => return Err(unexpected(&frame, "a Parse/Describe response")),
            }
        }
    }
}

/// Every parameter and column type of a described statement.
pub(super) fn described_types<'t>(
    params: &'t [Type],
    columns: &'t Option<Arc<[Column]>>,
) -> impl Iterator<Item = &'t Type> {
    params
        .iter()
        .chain(columns.iter().flat_map(|c| c.iter().map(Column::type_)))
}

/// The columns a RowDescription describes; `format` overrides the format it reports (Bind asks
/// for binary, so a statement's Describe reports text but the rows will be binary).
pub(super) fn columns_from(rd: &RowDescriptionBody<'_>, format: Option<Format>) -> Arc<[Column]> {
    rd.fields()
        .map(|f| {
            let fmt = format.unwrap_or(if f.format == 1 {
                Format::Binary
            } else {
                Format::Text
            });
            Column::new(
                f.name,
                Type::from_oid(f.type_oid),
                fmt,
                f.table_oid,
                f.column_id,
            )
        })
        .collect()
}
