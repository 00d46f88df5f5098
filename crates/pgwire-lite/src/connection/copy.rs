//! COPY: [`Connection::copy_in`] (COPY ... FROM STDIN) returns a [`CopyInSink`] taking the
//! data in chunks; [`Connection::copy_out`] (COPY ... TO STDOUT) returns a [`CopyOutStream`]
//! of chunks. The data is the server's COPY format, whichever the statement asks for (text,
//! CSV or binary): it passes through unchanged.
//!
//! COPY runs with the simple query protocol, so a failed COPY ends with the statement's own
//! ReadyForQuery and the connection is ready again. `execute` and `simple_query` still refuse
//! COPY FROM STDIN (they have no data to give) and discard COPY TO STDOUT data.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_core::Stream;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::Connection;
use super::extended::unexpected;
use super::reader::Owes;
use super::stream::Pump;
use crate::error::{Error, Result};
use crate::protocol::backend::{BackendMessage, decode};
use crate::protocol::frontend;

/// Data is buffered into CopyData messages until this much is waiting, then written: one
/// syscall per 64 KiB however small the caller's chunks (one per row, say).
const COPY_FLUSH_AT: usize = 64 * 1024;

/// A chunk larger than this is split over several CopyData messages, which the server joins.
const MAX_COPY_DATA: usize = 1 << 20;

/// The sending side of a `COPY ... FROM STDIN`, borrowing the connection until it ends.
///
/// Send the data with [`send`](Self::send) (or [`send_from`](Self::send_from) for any
/// [`AsyncRead`]), then call [`finish`](Self::finish) for the row count, or
/// [`abort`](Self::abort) to make the server fail the COPY with a reason. A sink dropped
/// without either aborts the COPY: the next request on the connection sends the CopyFail
/// first, reads the resulting error, and goes on. A `send` future dropped in the middle of a
/// write leaves a partial message behind, and the connection is then broken.
#[derive(Debug)]
pub struct CopyInSink<'a> {
    conn: &'a mut Connection,
}

impl CopyInSink<'_> {
    /// Queues one chunk of COPY data (any split: rows may span chunks). Data is written once
    /// 64 KiB are waiting. An error the server already reported (bad data in an earlier
    /// chunk) is returned here: the COPY is then over and the connection ready again.
    pub async fn send(&mut self, chunk: impl AsRef<[u8]>) -> Result<()> {
        self.check_open()?;
        for part in chunk.as_ref().chunks(MAX_COPY_DATA) {
            frontend::copy_data(part, &mut self.conn.write_buf)?;
            if self.conn.write_buf.len() >= COPY_FLUSH_AT {
                self.flush().await?;
            }
        }
        Ok(())
    }

    /// Reads all of `reader` and sends it as COPY data; returns the number of bytes read. An
    /// error reading it is returned as is (the COPY stays open: [`abort`](Self::abort) it).
    pub async fn send_from<R: AsyncRead + Unpin>(&mut self, mut reader: R) -> Result<u64> {
        let mut buf = vec![0u8; COPY_FLUSH_AT];
        let mut total = 0u64;
        loop {
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
            self.send(&buf[..n]).await?;
        }
    }

    /// The COPY is still open: not ended by an error `send` returned, nor by a timeout.
    fn check_open(&self) -> Result<()> {
        match self.conn.state.copy_fail_owed {
            true => Ok(()),
            false => Err(Error::Unsupported("this COPY already ended with an error")),
        }
    }

    /// Writes the queued data, then checks, without waiting, whether the server has already
    /// failed the COPY.
    async fn flush(&mut self) -> Result<()> {
        let conn = &mut *self.conn;
        conn.request(async |c| {
            c.send(Owes::Nothing).await?;
            c.check_copy_failed().await
        })
        .await
    }

    /// Ends the data (CopyDone) and returns the number of rows the server copied.
    pub async fn finish(self) -> Result<u64> {
        self.check_open()?;
        let conn = self.conn;
        conn.request(async |c| {
            frontend::copy_done(&mut c.write_buf);
            c.send(Owes::Nothing).await?;
            c.state.copy_fail_owed = false;
            c.read_copy_end().await
        })
        .await
    }

    /// Makes the server fail the COPY (CopyFail with `reason`, which its error quotes); data
    /// not yet written is dropped. Nothing is copied, and the connection stays usable.
    pub async fn abort(self, reason: &str) -> Result<()> {
        if !self.conn.state.copy_fail_owed {
            // The COPY already ended (with the error `send` returned).
            return Ok(());
        }
        let conn = self.conn;
        conn.request(async |c| {
            c.clear_write_buf();
            frontend::copy_fail(reason, &mut c.write_buf)?;
            c.send(Owes::Nothing).await?;
            c.state.copy_fail_owed = false;
            // The server answers with an error quoting the reason: expected, not reported.
            c.read_until_ready().await
        })
        .await
    }
}

/// The data of a `COPY ... TO STDOUT`, chunk by chunk as the server sends it (one row per
/// chunk in text and CSV formats). Implements [`Stream<Item = Result<Bytes>>`]
/// (futures_core::Stream). An error the server reports mid-COPY is the last item. Dropped
/// halfway, the rest is drained by the connection's next request.
pub struct CopyOutStream<'a> {
    pump: Pump<'a>,
    error: Option<Error>,
    done: bool,
    rows: Option<u64>,
}

impl std::fmt::Debug for CopyOutStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyOutStream")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl CopyOutStream<'_> {
    /// The number of rows copied, once the stream has ended.
    pub fn rows(&self) -> Option<u64> {
        self.rows
    }

    fn on_frame(&mut self, frame: &Bytes) -> Result<Option<Option<Result<Bytes>>>> {
        use BackendMessage as M;
        match decode(frame)? {
            M::CopyData { data } if self.error.is_none() => {
                return Ok(Some(Some(Ok(frame.slice_ref(data)))));
            }
            M::CopyDone if self.error.is_none() => {}
            M::CommandComplete { tag } if self.error.is_none() => self.rows = copy_count(tag),
            M::ErrorResponse(f) => {
                let e = self.pump.conn()?.db_error(&f);
                self.error.get_or_insert(e);
            }
            M::ReadyForQuery { status } => {
                self.pump.conn()?.ready_for_query(status)?;
                self.done = true;
                return Ok(Some(self.error.take().map(Err)));
            }
            _ => return Err(unexpected(frame, "COPY TO STDOUT")),
        }
        Ok(None)
    }
}

impl Stream for CopyOutStream<'_> {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes>>> {
        let this = &mut *self;
        loop {
            if this.done {
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
                    this.done = true;
                    return Poll::Ready(Some(Err(this.pump.fail(e))));
                }
            }
        }
    }
}

/// The row count of a `COPY n` command tag.
fn copy_count(tag: &str) -> Option<u64> {
    tag.strip_prefix("COPY ")?.parse().ok()
}

/// What a COPY statement turned out to start.
#[derive(PartialEq)]
enum CopyKind {
    In,
    Out,
}

impl Connection {
    /// Starts `COPY ... FROM STDIN` (any format) and returns the sink for its data.
    ///
    /// ```no_run
    /// # async fn f(conn: &mut pgwire_lite::Connection) -> pgwire_lite::Result<()> {
    /// let mut sink = conn.copy_in("COPY t (id, name) FROM STDIN (FORMAT csv)").await?;
    /// sink.send("1,\"a, quoted\"\n2,b\n").await?;
    /// assert_eq!(sink.finish().await?, 2);
    /// # Ok(()) }
    /// ```
    pub async fn copy_in(&mut self, sql: &str) -> Result<CopyInSink<'_>> {
        self.traced(sql, async |c| c.start_copy(sql, CopyKind::In).await)
            .await?;
        Ok(CopyInSink { conn: self })
    }

    /// Starts `COPY ... TO STDOUT` (any format) and returns the stream of its data.
    pub async fn copy_out(&mut self, sql: &str) -> Result<CopyOutStream<'_>> {
        self.traced(sql, async |c| c.start_copy(sql, CopyKind::Out).await)
            .await?;
        Ok(CopyOutStream {
            pump: Pump::new(self),
            error: None,
            done: false,
            rows: None,
        })
    }

    /// Sends the COPY statement and reads up to its CopyInResponse or CopyOutResponse.
    async fn start_copy(&mut self, sql: &str, kind: CopyKind) -> Result<()> {
        self.ensure_ready().await?;
        self.clear_write_buf();
        frontend::query(sql, &mut self.write_buf)?;
        self.send(Owes::QUERY).await?;
        let mut error = None;
        loop {
            let frame = self.recv().await?;
            match decode(&frame)? {
                BackendMessage::CopyInResponse if kind == CopyKind::In && error.is_none() => {
                    self.state.copy_fail_owed = true;
                    return Ok(());
                }
                BackendMessage::CopyOutResponse if kind == CopyKind::Out && error.is_none() => {
                    return Ok(());
                }
                BackendMessage::ErrorResponse(f) => error = Some(self.db_error(&f)),
                BackendMessage::ReadyForQuery { status } => {
                    self.ready_for_query(status)?;
                    return Err(error.unwrap_or(Error::Unsupported(
                        "copy_in and copy_out need one COPY FROM STDIN or COPY TO STDOUT statement",
                    )));
                }
                // Another kind of statement: the reader's loop answers a COPY FROM STDIN with
                // CopyFail and discards the rest.
                BackendMessage::CopyInResponse | BackendMessage::CopyBothResponse => {
                    self.refuse_copy_in(false).await?;
                    error.get_or_insert(Error::Unsupported(
                        "copy_out needs a COPY TO STDOUT statement",
                    ));
                }
                _ => {
                    error.get_or_insert(Error::Unsupported(
                        "copy_in and copy_out need one COPY FROM STDIN or COPY TO STDOUT statement",
                    ));
                }
            }
        }
    }

    /// During COPY FROM STDIN the server sends nothing unless it failed the COPY: an
    /// ErrorResponse, then (simple protocol) ReadyForQuery. Checks for that without waiting.
    async fn check_copy_failed(&mut self) -> Result<()> {
        use super::transport::ReadNow;
        if matches!(self.stream.read_now(&mut self.read_buf), ReadNow::Closed) {
            self.state.set_broken("the server closed the connection");
            return Err(Error::Closed(
                "the server closed the connection during COPY",
            ));
        }
        let Some(frame) = self.try_recv()? else {
            return Ok(());
        };
        match decode(&frame)? {
            BackendMessage::ErrorResponse(f) => {
                let e = self.db_error(&f);
                self.state.copy_fail_owed = false;
                self.read_until_ready().await?;
                Err(e)
            }
            _ => Err(unexpected(&frame, "COPY FROM STDIN")),
        }
    }

    /// Reads the end of a COPY FROM STDIN: CommandComplete (`COPY n`) or an error, then
    /// ReadyForQuery.
    async fn read_copy_end(&mut self) -> Result<u64> {
        let mut rows = None;
        let mut error = None;
        loop {
            let frame = self.recv().await?;
            match decode(&frame)? {
                BackendMessage::CommandComplete { tag } => rows = copy_count(tag),
                BackendMessage::ErrorResponse(f) => error = Some(self.db_error(&f)),
                BackendMessage::ReadyForQuery { status } => {
                    self.ready_for_query(status)?;
                    break;
                }
                _ => return Err(unexpected(&frame, "the end of COPY FROM STDIN")),
            }
        }
        if let Some(e) = error {
            return Err(e);
        }
        rows.ok_or_else(|| Error::protocol("COPY FROM STDIN ended without a row count"))
    }
}
