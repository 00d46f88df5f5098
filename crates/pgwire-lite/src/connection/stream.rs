//! Streamed rows: [`Connection::query_stream`] and
//! [`Connection::query_stream_with_fetch_size`] return a [`RowStream`] that decodes each row
//! as its DataRow arrives, so memory stays bounded by one socket read, never by the result.
//!
//! # Dropping a stream halfway
//! The request state already records what the server still owes (its ReadyForQuery), so a
//! stream dropped at any point leaves [`Connection::has_pending`] set and the next operation
//! drains the rest. Draining was chosen over cancelling: a CancelRequest costs a new TCP
//! connection and a race with the next statement, while draining costs only reading what the
//! server already produced. For a large result abandoned early, use a fetch size: then only the
//! current batch is left to read, and the Sync sent before the next request closes the portal.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_core::Stream;

use super::Connection;
use super::extended::{
    accepts_all, check_param_count, copy_out_unsupported, is_stale_statement, row_from, unexpected,
};
use super::reader::Owes;
use crate::error::{Error, Result};
use crate::protocol::backend::{BackendMessage, decode};
use crate::protocol::frontend;
use crate::row::{Column, Row};
use crate::types::ToSql;

/// The socket work a hand-polled stream is waiting on, owning the connection meanwhile.
type Io<'a> = Pin<Box<dyn Future<Output = (&'a mut Connection, Result<()>)> + Send + 'a>>;

/// Drives a connection from `poll` functions. Frames already in the read buffer are taken
/// synchronously; only a socket read or a write runs as a boxed future, which holds the
/// connection until it finishes: one allocation per socket read (many rows), not per row.
pub(super) struct Pump<'a> {
    conn: Option<&'a mut Connection>,
    io: Option<Io<'a>>,
}

impl<'a> Pump<'a> {
    pub(super) fn new(conn: &'a mut Connection) -> Self {
        Pump {
            conn: Some(conn),
            io: None,
        }
    }

    /// Finishes the socket work in flight, if any.
    fn poll_io(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if let Some(io) = self.io.as_mut() {
            let (conn, r) = ready!(io.as_mut().poll(cx));
            self.io = None;
            self.conn = Some(conn);
            return Poll::Ready(conn_check(self.conn.as_deref_mut(), r));
        }
        Poll::Ready(Ok(()))
    }

    /// The connection, once no socket work is in flight.
    pub(super) fn conn(&mut self) -> Result<&mut Connection> {
        self.conn
            .as_deref_mut()
            .ok_or(Error::Closed("a stream's socket work was lost"))
    }

    /// The next frame that is not an asynchronous message.
    pub(super) fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Result<Bytes>> {
        loop {
            ready!(self.poll_io(cx))?;
            let conn = self.conn()?;
            if let Some(frame) = conn.try_recv()? {
                return Poll::Ready(Ok(frame));
            }
            if let Some(conn) = self.conn.take() {
                self.io = Some(Box::pin(async move {
                    let r = conn.fill_read_buf().await;
                    (conn, r)
                }));
            }
        }
    }

    /// Starts writing what the write buffer holds; the next poll finishes it.
    pub(super) fn start_send(&mut self, owes: Owes) {
        if let Some(conn) = self.conn.take() {
            self.io = Some(Box::pin(async move {
                let r = conn.send(owes).await;
                (conn, r)
            }));
        }
    }

    /// Records a failure: an I/O or protocol error breaks the connection.
    pub(super) fn fail(&mut self, e: Error) -> Error {
        match conn_check(self.conn.as_deref_mut(), Err::<(), _>(e)) {
            Err(e) => e,
            Ok(()) => Error::protocol("a failure was lost"),
        }
    }
}

fn conn_check(conn: Option<&mut Connection>, r: Result<()>) -> Result<()> {
    match conn {
        Some(c) => c.check(r),
        None => r,
    }
}

/// Where a [`RowStream`] is in the response.
enum Step {
    Rows,
    /// COPY TO STDOUT started by the statement: its data is read and discarded.
    CopyOut,
    /// The command is complete (or failed): only ReadyForQuery is left.
    Ready,
    Done,
}

/// The rows of a query, decoded as they arrive. Implements
/// [`Stream<Item = Result<Row>>`](futures_core::Stream); it borrows the connection until
/// dropped.
///
/// Dropping it halfway is safe: the connection records what the server still owes, so
/// [`Connection::has_pending`] is set and the next operation drains the rest (reading is
/// cheaper than a CancelRequest's new TCP connection). For a large result abandoned early,
/// use a fetch size: then only the current batch is left to read.
///
/// An error the server reports mid-stream is yielded as the last item, after the stream has
/// read the response to its end: the connection is then ready for the next request.
pub struct RowStream<'a> {
    pump: Pump<'a>,
    columns: Option<Arc<[Column]>>,
    fetch_size: Option<i32>,
    step: Step,
    error: Option<Error>,
    tag: Option<Bytes>,
}

impl std::fmt::Debug for RowStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowStream")
            .field("fetch_size", &self.fetch_size)
            .finish_non_exhaustive()
    }
}

impl RowStream<'_> {
    /// The result's columns (`None` for a statement that returns no rows).
    pub fn columns(&self) -> Option<&[Column]> {
        self.columns.as_deref()
    }

    /// The number of rows the command reported (`SELECT n`, `UPDATE n`, ...), once the stream
    /// has ended.
    pub fn rows_affected(&self) -> Option<u64> {
        let tag = std::str::from_utf8(self.tag.as_deref()?).ok()?;
        tag.rsplit(' ').next()?.parse().ok()
    }

    /// The response is over: with a fetch size, the Sync the portal was left open for goes out,
    /// and only ReadyForQuery is left to read.
    fn end_command(&mut self) -> Result<()> {
        self.step = Step::Ready;
        if self.fetch_size.is_some() {
            let conn = self.pump.conn()?;
            conn.clear_write_buf();
            frontend::sync(&mut conn.write_buf);
            self.pump.start_send(Owes::OwedSync);
        }
        Ok(())
    }

    fn next_batch(&mut self, n: i32) -> Result<()> {
        let conn = self.pump.conn()?;
        conn.clear_write_buf();
        frontend::execute("", n, &mut conn.write_buf)?;
        frontend::flush(&mut conn.write_buf);
        self.pump.start_send(Owes::Nothing);
        Ok(())
    }

    /// Handles one frame; `Some` is an item for the caller.
    fn on_frame(&mut self, frame: &Bytes) -> Result<Option<Option<Result<Row>>>> {
        use BackendMessage as M;
        let msg = decode(frame)?;
        match (&self.step, msg) {
            (_, M::ErrorResponse(f)) => {
                let e = self.pump.conn()?.db_error(&f);
                self.error.get_or_insert(e);
                if !matches!(self.step, Step::Ready) {
                    self.end_command()?;
                }
            }
            (Step::Ready, M::ReadyForQuery { status }) => {
                self.pump.conn()?.ready_for_query(status)?;
                self.step = Step::Done;
                return Ok(Some(self.error.take().map(Err)));
            }
            _ if self.error.is_some() => {
                return Err(unexpected(frame, "the end of a failed Execute"));
            }
            (Step::Rows, M::DataRow(body)) => {
                let cols = self
                    .columns
                    .as_ref()
                    .ok_or_else(|| Error::protocol("DataRow for a statement without columns"))?;
                return Ok(Some(Some(Ok(row_from(cols, frame, &body)?))));
            }
            (Step::Rows, M::CommandComplete { tag }) => {
                self.tag = Some(frame.slice_ref(tag.as_bytes()));
                self.end_command()?;
            }
            (Step::Rows, M::EmptyQueryResponse) => self.end_command()?,
            (Step::Rows, M::PortalSuspended) => match self.fetch_size {
                Some(n) => self.next_batch(n)?,
                None => return Err(unexpected(frame, "an unlimited Execute")),
            },
            (Step::Rows, M::CopyInResponse | M::CopyBothResponse) => {
                // The server now waits for COPY data: refuse it, and in place of the Sync it
                // swallowed send one (or, with a fetch size, the one still owed).
                let conn = self.pump.conn()?;
                conn.clear_write_buf();
                frontend::copy_fail(COPY_IN_HERE, &mut conn.write_buf)?;
                frontend::sync(&mut conn.write_buf);
                let owes = match self.fetch_size {
                    Some(_) => Owes::OwedSync,
                    None => Owes::Nothing,
                };
                self.step = Step::Ready;
                self.pump.start_send(owes);
            }
            (Step::Rows, M::CopyOutResponse) => self.step = Step::CopyOut,
            (Step::CopyOut, M::CopyData { .. } | M::CopyDone) => {}
            (Step::CopyOut, M::CommandComplete { .. }) => {
                self.error = Some(copy_out_unsupported());
                self.end_command()?;
            }
            _ => return Err(unexpected(frame, "a streamed Execute response")),
        }
        Ok(None)
    }
}

/// The CopyFail reason for a COPY FROM STDIN started through a row stream.
const COPY_IN_HERE: &str = "COPY FROM STDIN runs through copy_in, not query_stream";

impl Stream for RowStream<'_> {
    type Item = Result<Row>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Row>>> {
        let this = &mut *self;
        loop {
            if matches!(this.step, Step::Done) {
                return Poll::Ready(None);
            }
            let r = match ready!(this.pump.poll_frame(cx)) {
                Ok(frame) => this.on_frame(&frame),
                Err(e) => Err(e),
            };
            match r {
                Ok(Some(item)) => return Poll::Ready(item),
                Ok(None) => {}
                Err(e) => {
                    this.step = Step::Done;
                    return Poll::Ready(Some(Err(this.pump.fail(e))));
                }
            }
        }
    }
}

impl Connection {
    /// Runs a query and streams its rows, each decoded as it arrives: memory stays bounded
    /// however large the result (tokio-postgres's `query_raw`). The statement goes through the
    /// statement cache, like [`execute`](Self::execute).
    ///
    /// Errors in preparing or binding come from this call; errors while the rows run come as
    /// the stream's last item. The query timeout covers this call, not the reading of the
    /// stream. Dropping the stream halfway is safe: see the [`RowStream`] docs.
    pub async fn query_stream(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<RowStream<'_>> {
        self.row_stream(sql, params, None).await
    }

    /// Like [`query_stream`](Self::query_stream), but the rows come through a portal in
    /// batches of `fetch_size` (Execute with a row limit, resumed after each PortalSuspended):
    /// the server produces only what is read, so a stream dropped early leaves at most one
    /// batch to drain. Typical inside a transaction, as a cursor. Outside one, the statement's
    /// implicit transaction stays open until the stream ends. A `fetch_size` of 0 means no
    /// limit; more than `i32::MAX` is capped.
    pub async fn query_stream_with_fetch_size(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        fetch_size: u32,
    ) -> Result<RowStream<'_>> {
        let n = i32::try_from(fetch_size).unwrap_or(i32::MAX);
        self.row_stream(sql, params, Some(n).filter(|n| *n > 0))
            .await
    }

    async fn row_stream(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        fetch_size: Option<i32>,
    ) -> Result<RowStream<'_>> {
        let columns = self
            .traced(sql, async |c| c.start_stream(sql, params, fetch_size).await)
            .await?;
        Ok(RowStream {
            pump: Pump::new(self),
            columns,
            fetch_size,
            step: Step::Rows,
            error: None,
            tag: None,
        })
    }

    /// Prepares (through the cache), binds and starts executing, up to BindComplete.
    async fn start_stream(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        fetch_size: Option<i32>,
    ) -> Result<Option<Arc<[Column]>>> {
        check_param_count(params.len())?;
        self.ensure_ready().await?;
        let mut retried = false;
        loop {
            let stmt = match self.cache.get(sql) {
                Some(s) if accepts_all(&s, params) => s,
                _ => self.prepare_cached(sql).await?,
            };
            self.clear_write_buf();
            self.write_pending_closes()?;
            if let Err(e) = self.write_bind(&stmt, params) {
                self.clear_write_buf();
                return Err(e);
            }
            match fetch_size {
                Some(n) => {
                    frontend::execute("", n, &mut self.write_buf)?;
                    frontend::flush(&mut self.write_buf);
                    self.send(Owes::SyncLater).await?;
                }
                None => {
                    frontend::execute("", 0, &mut self.write_buf)?;
                    frontend::sync(&mut self.write_buf);
                    self.send(Owes::SYNC).await?;
                }
            }
            let e = match self.read_bind_complete().await {
                Ok(()) => return Ok(stmt.columns.clone()),
                Err(e) if e.is_closed() => return Err(e),
                Err(e) => e,
            };
            // The server skips everything up to the Sync: send it if still owed, then read
            // its ReadyForQuery.
            match fetch_size {
                Some(_) => self.finish_with_sync().await?,
                None => self.read_until_ready().await?,
            }
            // A cached statement the server no longer has in this shape: nothing ran, so
            // re-prepare once (outside a transaction, which the error aborted).
            if is_stale_statement(&e) && !retried && !self.in_transaction() {
                self.cache.invalidate(sql);
                retried = true;
                continue;
            }
            if is_stale_statement(&e) {
                self.cache.invalidate(sql);
            }
            return Err(e);
        }
    }

    /// Reads CloseComplete* and BindComplete.
    async fn read_bind_complete(&mut self) -> Result<()> {
        loop {
            let frame = self.recv().await?;
            match decode(&frame)? {
                BackendMessage::CloseComplete => {}
                BackendMessage::BindComplete => return Ok(()),
                BackendMessage::ErrorResponse(f) => return Err(self.db_error(&f)),
                _ => return Err(unexpected(&frame, "Bind")),
            }
        }
    }
}
