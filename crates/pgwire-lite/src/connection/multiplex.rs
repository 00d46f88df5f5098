//! The connection's side of multiplexing: one connection shared by many requests in flight.
//!
//! The pool (pool-core's `multiplex.rs`) owns the sharing: a queue of encoded requests, who
//! writes, who reads, who gets which response. This file only knows bytes and one response:
//!
//! - `mux_encode*` append one request (without Sync) to a caller-owned buffer, which the
//!   caller then keeps ([`Connection::mux_appended`]) or takes back
//!   ([`Connection::mux_unappend`]: statement Closes written in front of it stay queued), and
//!   [`Connection::mux_sync`] ends a batch. With a Sync after every request, each statement is
//!   its own implicit transaction; with one Sync after several, they are one implicit
//!   transaction, and an error rolls back the whole batch and skips the rest of it.
//! - [`Connection::mux_lend_io`] lends the socket and the read buffer out as a [`MuxIo`], so
//!   that one write ([`MuxIo::poll_write`]) or read ([`MuxIo::poll_fill`]) happens without
//!   the pool's lock on the rest of the connection; what was not written stays in the
//!   caller's buffer, so a writer whose future is dropped loses nothing.
//! - [`Connection::mux_poll_buffered`] decodes the response of the oldest request from the
//!   read buffer: up to its CommandComplete, or up to the ReadyForQuery when it is the last of
//!   its batch or failed. Its progress lives in a caller-owned [`MuxDecoder`] and frames leave
//!   the read buffer only whole, so a reader dropped mid-response loses nothing either: the
//!   next reader continues where it stopped.
//!
//! These requests bypass the request-state core (`reader.rs`): their ReadyForQuery messages
//! are counted by the pool, which hands the connection back as a whole one only once every
//! response was read. A ReadyForQuery that reports a transaction (or a failed one) is an error
//! of the connection, not of the statement: a multiplexed connection must never carry session
//! state from one caller to the next.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};

use super::extended::{accepts_all, check_param_count, row_from, unexpected};
use super::prepare::columns_from;
use super::transport::Stream;
use super::{Connection, ParamTypes};
use crate::error::{Error, Result};
use crate::protocol::backend::{BackendMessage, decode, transaction_status};
use crate::protocol::frontend::{self, PORTAL, STATEMENT};
use crate::row::{Column, QueryResult, Rows};
use crate::statement::Statement;
use crate::types::{Format, ToSql, Type};

/// A shared connection's socket and read buffer, lent out by [`Connection::mux_lend_io`] for
/// one read or write done without the lock that guards the rest of the connection: callers keep
/// queueing requests and taking their answers meanwhile. Polled by hand; cancel-safe like the
/// connection's own I/O (written bytes leave the caller's buffer, read bytes land in the lent
/// read buffer). Give it back with [`Connection::mux_return_io`].
pub struct MuxIo {
    stream: Stream,
    read_buf: BytesMut,
}

impl std::fmt::Debug for MuxIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MuxIo")
            .field("buffered", &self.read_buf.len())
            .finish_non_exhaustive()
    }
}

impl MuxIo {
    /// Writes `buf` out, then flushes (TLS may keep records back); written bytes leave `buf`.
    /// Ready once all of it is written. On an error, see [`Connection::mux_write_failed`].
    pub fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<std::io::Result<()>> {
        while !buf.is_empty() {
            match self.stream.poll_write(cx, buf) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => buf.advance(n),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        self.stream.poll_flush(cx)
    }

    /// Reads what the socket holds into the read buffer: the number of bytes, `Ok(0)` at EOF.
    /// On EOF or an error, see [`Connection::mux_read_failed`].
    pub fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        self.stream.poll_read_buf(cx, &mut self.read_buf)
    }
}

/// What the response of one multiplexed request looks like: what [`MuxDecoder`] needs to read
/// it. Kept by the pool with the request's place in line.
#[derive(Debug)]
pub struct MuxRequest {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// Bind/Execute/Sync of a statement in this connection's cache.
    Execute { columns: Option<Arc<[Column]>> },
    /// Parse (typed from the values)/Bind/Describe portal/Execute/Sync of the unnamed statement.
    Unnamed,
    /// Parse/Describe statement/Sync: prepares `sql` as `name` and caches it when it succeeds.
    Prepare {
        sql: Box<str>,
        name: Box<str>,
        declared: Box<[Type]>,
    },
}

impl MuxRequest {
    /// True for a request that only prepares a statement (its outcome carries no rows).
    pub fn is_prepare(&self) -> bool {
        matches!(self.kind, Kind::Prepare { .. })
    }
}

/// The progress of reading one response. Owned by whoever shares the connection, so a reader
/// that is dropped halfway leaves it for the next; [`reset`](Self::reset) between responses.
#[derive(Default)]
pub struct MuxDecoder {
    step: Step,
    columns: Option<Arc<[Column]>>,
    params: Option<Box<[Type]>>,
    rows: Rows,
    tag: Option<Bytes>,
    error: Option<Error>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Nothing of this response read yet (CloseComplete for queued Closes may come).
    #[default]
    Start,
    /// ParseComplete read.
    Parsed,
    /// BindComplete read (Unnamed: the portal's RowDescription or NoData comes next).
    Bound,
    /// DataRows, then CommandComplete.
    Rows,
    /// CommandComplete (or the statement's description) read; ReadyForQuery comes next.
    Done,
}

impl std::fmt::Debug for MuxDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MuxDecoder")
            .field("step", &self.step)
            .field("rows", &self.rows.as_slice().len())
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl MuxDecoder {
    /// Rows read so far of the response in progress (a large one keeps the line behind it
    /// waiting; the pool sends new callers elsewhere).
    pub fn rows_so_far(&self) -> usize {
        self.rows.as_slice().len()
    }

    /// Forgets a finished (or abandoned) response.
    pub fn reset(&mut self) {
        *self = MuxDecoder::default();
    }
}

impl Connection {
    /// Whether this connection can start or stop being shared: idle, nothing pending, nothing
    /// buffered. A connection handed back by multiplexing must pass this again. (Statement
    /// Closes still queued do not count: they ride with the next request, shared or not.)
    pub fn mux_ready(&self) -> bool {
        self.is_idle() && self.read_buf.is_empty()
    }

    /// Appends Bind/Execute/Sync for `sql` to `out` when this connection has it prepared with
    /// parameter types these values fit. `Ok(None)`: it has not (queue
    /// [`mux_encode_prepare`](Self::mux_encode_prepare) first). With named statements off
    /// (cache capacity 0), this is [`mux_encode_unnamed`](Self::mux_encode_unnamed).
    ///
    /// On an error (a value that cannot be encoded) nothing is appended.
    pub fn mux_encode(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        out: &mut BytesMut,
    ) -> Result<Option<MuxRequest>> {
        if self.cache.capacity() == 0 {
            return self.mux_encode_unnamed(sql, params, out);
        }
        check_param_count(params.len())?;
        let Some(stmt) = self.cache.get(sql).filter(|s| accepts_all(s, params)) else {
            return Ok(None);
        };
        self.mux_append(out, |c| {
            c.write_pending_closes()?;
            c.write_bind_execute(&stmt, params)
        })?;
        Ok(Some(MuxRequest {
            kind: Kind::Execute {
                columns: stmt.columns.clone(),
            },
        }))
    }

    /// Appends Parse/Describe/Sync preparing `sql` under a new name; its response puts the
    /// statement in this connection's cache. The parameter types are declared from the values
    /// when the connection takes them from values ([`ParamTypes::FromValues`]) and every value
    /// says its type; otherwise the server infers them.
    pub fn mux_encode_prepare(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        out: &mut BytesMut,
    ) -> Result<MuxRequest> {
        check_param_count(params.len())?;
        let declared = if self.param_types == ParamTypes::FromValues {
            params
                .iter()
                .map(|p| p.type_hint())
                .collect::<Option<Box<[Type]>>>()
                .unwrap_or_default()
        } else {
            Box::default()
        };
        let name = self.cache.next_name();
        self.mux_append(out, |c| {
            c.write_pending_closes()?;
            frontend::parse(&name, sql, declared.iter().map(Type::oid), &mut c.write_buf)?;
            frontend::describe(STATEMENT, &name, &mut c.write_buf)
        })?;
        Ok(MuxRequest {
            kind: Kind::Prepare {
                sql: sql.into(),
                name,
                declared,
            },
        })
    }

    /// Appends Parse (types declared by the values)/Bind/Describe portal/Execute/Sync of the
    /// unnamed statement: one request, nothing cached. `Ok(None)` unless the connection takes
    /// parameter types from values ([`ParamTypes::FromValues`]) and every value says its type:
    /// with inferred types the server must describe the statement first, a round trip of its
    /// own that a shared connection cannot wait for.
    pub fn mux_encode_unnamed(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        out: &mut BytesMut,
    ) -> Result<Option<MuxRequest>> {
        check_param_count(params.len())?;
        if self.param_types != ParamTypes::FromValues {
            return Ok(None);
        }
        let Some(hints) = params
            .iter()
            .map(|p| p.type_hint())
            .collect::<Option<Box<[Type]>>>()
        else {
            return Ok(None);
        };
        let stmt = Statement {
            name: "".into(),
            params: hints,
            columns: None,
        };
        self.mux_append(out, |c| {
            c.write_pending_closes()?;
            frontend::parse("", sql, stmt.params.iter().map(Type::oid), &mut c.write_buf)?;
            c.write_bind(&stmt, params)?;
            frontend::describe(PORTAL, "", &mut c.write_buf)?;
            frontend::execute("", 0, &mut c.write_buf)
        })?;
        Ok(Some(MuxRequest {
            kind: Kind::Unnamed,
        }))
    }

    /// Appends the Sync that ends a batch of requests: the server answers it with one
    /// ReadyForQuery, after the batch's last response (or after its first error).
    pub fn mux_sync(out: &mut BytesMut) {
        frontend::sync(out);
    }

    /// Keeps the request just appended by a `mux_encode*` call: the statement Closes written in
    /// front of it are in the shared buffer, which goes out whole or breaks the connection, so
    /// they count as sent. Call this or [`mux_unappend`](Self::mux_unappend) after every
    /// successful `mux_encode*`, before the next one.
    pub fn mux_appended(&mut self) {
        self.cache.closes_sent();
    }

    /// Takes back the request just appended by a `mux_encode*` call, which started at `at` in
    /// `out` (the caller found it too large to share, say): `out` is cut back and the
    /// statement Closes that rode in front of it go with a later request.
    pub fn mux_unappend(&mut self, out: &mut BytesMut, at: usize) {
        out.truncate(at);
        self.cache.closes_unsent();
    }

    /// Runs `write` against `out` (as the write buffer); on an error, `out` is cut back and
    /// queued statement Closes stay queued. On success the caller keeps or takes back what was
    /// appended ([`mux_appended`](Self::mux_appended) / [`mux_unappend`](Self::mux_unappend)).
    fn mux_append(
        &mut self,
        out: &mut BytesMut,
        write: impl FnOnce(&mut Self) -> Result<()>,
    ) -> Result<()> {
        let at = out.len();
        std::mem::swap(&mut self.write_buf, out);
        let r = write(self);
        std::mem::swap(&mut self.write_buf, out);
        if r.is_err() {
            self.mux_unappend(out, at);
        }
        r
    }

    /// Lends out the socket and the read buffer, for one read or write done without the lock
    /// that guards the rest of the shared connection. Until [`mux_return_io`](Self::mux_return_io),
    /// the connection's own I/O fails; encoding requests still works.
    pub fn mux_lend_io(&mut self) -> MuxIo {
        MuxIo {
            stream: std::mem::replace(&mut self.stream, Stream::Lent),
            read_buf: std::mem::take(&mut self.read_buf),
        }
    }

    /// Takes back what [`mux_lend_io`](Self::mux_lend_io) lent, with what was read into it.
    pub fn mux_return_io(&mut self, io: MuxIo) {
        self.stream = io.stream;
        self.read_buf = io.read_buf;
    }

    /// A lent write failed: the connection is broken; the error to hand out.
    pub fn mux_write_failed(&mut self, e: std::io::Error) -> Error {
        self.state.set_broken("writing to the server failed");
        e.into()
    }

    /// A lent read ended with EOF (`None`) or an I/O error: the connection is broken; the error
    /// to hand out (the server's FATAL goodbye when it sent one).
    pub fn mux_read_failed(&mut self, e: Option<std::io::Error>) -> Error {
        self.state.set_broken(if e.is_some() {
            "an I/O error occurred"
        } else {
            "the server closed the connection"
        });
        self.goodbye(e)
    }

    /// Reads the response to `req` from what the read buffer holds (fill it with
    /// [`MuxIo::poll_fill`]), continuing from `dec`: up to its CommandComplete when more requests
    /// of its batch follow (`last` false), up to the batch's ReadyForQuery when it is the last
    /// one or when it failed (the server then skips the rest of the batch). Pending when the
    /// response is not all there yet; what was there is consumed into `dec`, so the next call
    /// continues.
    ///
    /// The outer error is the connection's (protocol, FATAL, or a ReadyForQuery that is not
    /// idle): it is broken, and no later response can be trusted. Inside: the statement's own
    /// outcome, and whether the batch's ReadyForQuery was read (always after an error). A
    /// statement whose cached plan went stale fails with an error for which
    /// [`Error::is_stale_statement`] is true: nothing ran, and it may be prepared again.
    #[allow(clippy::type_complexity)]
    pub fn mux_poll_buffered(
        &mut self,
        req: &MuxRequest,
        last: bool,
        dec: &mut MuxDecoder,
    ) -> Poll<Result<(Result<QueryResult>, bool)>> {
        let r = self.mux_poll_buffered_inner(req, last, dec);
        if let Poll::Ready(Err(e)) = &r {
            let why = match e {
                Error::Io(_) => "an I/O error occurred",
                Error::Protocol(_) => "the server violated the protocol",
                _ => "a multiplexed connection failed",
            };
            self.state.set_broken(why);
        }
        r
    }

    #[allow(clippy::type_complexity)]
    fn mux_poll_buffered_inner(
        &mut self,
        req: &MuxRequest,
        last: bool,
        dec: &mut MuxDecoder,
    ) -> Poll<Result<(Result<QueryResult>, bool)>> {
        if let Some(why) = self.state.broken() {
            return Poll::Ready(Err(Error::Closed(why)));
        }
        loop {
            let frame = match self.try_recv() {
                Err(e) => return Poll::Ready(Err(e)),
                Ok(Some(frame)) => frame,
                Ok(None) => return Poll::Pending,
            };
            match self.mux_step(req, last, dec, frame) {
                Ok(Some(outcome)) => return Poll::Ready(Ok(outcome)),
                Ok(None) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// One frame of a multiplexed response, in the only order the protocol allows for the
    /// request's kind; `Some` once the response is complete (with whether the batch's
    /// ReadyForQuery was read).
    fn mux_step(
        &mut self,
        req: &MuxRequest,
        last: bool,
        dec: &mut MuxDecoder,
        frame: Bytes,
    ) -> Result<Option<(Result<QueryResult>, bool)>> {
        use BackendMessage as M;
        // A Prepare always ends its batch: its statement is not known before it is answered.
        let last = last || req.is_prepare();
        let msg = decode(&frame)?;
        let step = dec.step;
        match (&req.kind, step, msg) {
            (_, _, M::ErrorResponse(f)) => {
                let e = self.db_error(&f);
                if e.is_closed() {
                    return Err(e);
                }
                dec.error.get_or_insert(e);
            }
            (_, _, M::ReadyForQuery { status })
                if dec.error.is_some() || (step == Step::Done && last) =>
            {
                self.set_tx_status(status);
                if status != transaction_status::IDLE {
                    return Err(Error::protocol(
                        "a multiplexed statement left its session inside a transaction; the \
                         connection is closed so that no other statement runs in it",
                    ));
                }
                return Ok(Some((self.mux_finish(req, dec), true)));
            }
            _ if dec.error.is_some() => {
                return Err(unexpected(
                    &frame,
                    "the end of a failed multiplexed statement",
                ));
            }
            (_, Step::Start, M::CloseComplete) => {}
            (Kind::Execute { .. }, Step::Start, M::BindComplete) => dec.step = Step::Rows,
            (Kind::Unnamed | Kind::Prepare { .. }, Step::Start, M::ParseComplete) => {
                dec.step = Step::Parsed;
            }
            (Kind::Unnamed, Step::Parsed, M::BindComplete) => dec.step = Step::Bound,
            (Kind::Unnamed, Step::Bound, M::RowDescription(rd)) => {
                // The portal's description already reports the binary format Bind asked for.
                dec.columns = Some(columns_from(&rd, Some(Format::Binary)));
                dec.step = Step::Rows;
            }
            (Kind::Unnamed, Step::Bound, M::NoData) => dec.step = Step::Rows,
            (Kind::Prepare { .. }, Step::Parsed, M::ParameterDescription(p)) => {
                dec.params = Some(p.oids().map(Type::from_oid).collect());
            }
            (Kind::Prepare { .. }, Step::Parsed, M::RowDescription(rd)) => {
                dec.columns = Some(columns_from(&rd, Some(Format::Binary)));
                dec.step = Step::Done;
            }
            (Kind::Prepare { .. }, Step::Parsed, M::NoData) => dec.step = Step::Done,
            (Kind::Execute { columns }, Step::Rows, M::DataRow(body)) => {
                let cols = columns
                    .as_ref()
                    .ok_or_else(|| Error::protocol("DataRow for a statement without columns"))?;
                dec.rows.push(row_from(cols, &frame, &body)?);
            }
            (Kind::Unnamed, Step::Rows, M::DataRow(body)) => {
                let cols = dec
                    .columns
                    .as_ref()
                    .ok_or_else(|| Error::protocol("DataRow for a statement without columns"))?;
                dec.rows.push(row_from(cols, &frame, &body)?);
            }
            (Kind::Execute { .. } | Kind::Unnamed, Step::Rows, M::CommandComplete { tag }) => {
                dec.tag = Some(frame.slice_ref(tag.as_bytes()));
                dec.step = Step::Done;
                if !last {
                    // The next response of the batch follows; its ReadyForQuery comes at the end.
                    return Ok(Some((self.mux_finish(req, dec), false)));
                }
            }
            (Kind::Execute { .. } | Kind::Unnamed, Step::Rows, M::EmptyQueryResponse) => {
                dec.step = Step::Done;
                if !last {
                    return Ok(Some((self.mux_finish(req, dec), false)));
                }
            }
            // COPY, PortalSuspended, or anything out of step: only statements that showed they
            // leave nothing behind are multiplexed, so this connection no longer matches.
            _ => return Err(unexpected(&frame, "a multiplexed statement's response")),
        }
        Ok(None)
    }

    /// The outcome of a response whose ReadyForQuery arrived.
    fn mux_finish(&mut self, req: &MuxRequest, dec: &mut MuxDecoder) -> Result<QueryResult> {
        let dec = std::mem::take(dec);
        if let Some(e) = dec.error {
            return Err(e);
        }
        match &req.kind {
            Kind::Execute { columns } => Ok(QueryResult::new(columns.clone(), dec.rows, dec.tag)),
            Kind::Unnamed => Ok(QueryResult::new(dec.columns, dec.rows, dec.tag)),
            Kind::Prepare {
                sql,
                name,
                declared,
            } => {
                let params = dec.params.unwrap_or_else(|| declared.clone());
                let stmt = Statement {
                    name: name.clone(),
                    params,
                    columns: dec.columns,
                };
                self.cache.insert(sql, Arc::new(stmt));
                Ok(QueryResult::default())
            }
        }
    }

    /// Marks the connection unusable: it is given up while responses of shared requests may
    /// still be unread (or half written), which this connection's own accounting does not
    /// know about. Whoever holds it then closes it instead of reusing it.
    pub fn mux_abandon(&mut self) {
        self.state
            .set_broken("a shared connection was given up with responses still unread");
    }

    /// Drops `sql` from the statement cache (its plan went stale); the Close goes out with the
    /// next request.
    pub fn mux_invalidate(&mut self, sql: &str) {
        self.cache.invalidate(sql);
    }
}
