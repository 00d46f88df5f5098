//! The request-state core: what the server still owes this connection, and the read loop that
//! settles it.
//!
//! Every request records what it will be owed with one call, [`Connection::send`], before its
//! first byte is written; only ReadyForQuery settles it. A future dropped at any await point
//! therefore leaves an exact account behind, and the next request first drains the rest of the
//! old response ([`Connection::ensure_ready`]). "Broken" is set in one place,
//! [`RequestState::set_broken`], and the first cause is the one reported.

use std::io;

use bytes::{Bytes, BytesMut};

use super::transport::READ_CHUNK;
use super::{Connection, MAX_QUEUED_NOTIFICATIONS, Notification, TransactionStatus};
use crate::error::{DbError, Error, Result};
use crate::protocol::backend::{self, BackendMessage, ErrorFields, tag, transaction_status};
use crate::protocol::frontend;

/// Requests up to this size are written without reading at the same time: the kernel's socket
/// buffers take them whole, so the server cannot block us. Larger ones (huge parameters, long
/// batches) are written while reading, see `Stream::write_all_reading`.
const WRITE_WITHOUT_READING: usize = 32 * 1024;

/// A buffer grown beyond this by a large message is replaced by a fresh small one once it is
/// empty again, so one huge row or parameter does not pin its memory for the connection's
/// lifetime (with N pooled connections, N times the largest message).
const SHRINK_BUFFER_ABOVE: usize = 1 << 20;

/// SQLSTATE 57014, query_canceled: what a CancelRequest makes the running statement fail with.
const QUERY_CANCELED: &str = "57014";

/// What a request about to be written will be owed by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Owes {
    /// Nothing: startup and authentication messages, Terminate, CopyFail.
    Nothing,
    /// A simple Query, or extended-protocol messages ending in `n` Syncs: one ReadyForQuery for
    /// each. `extended` says whether a COPY FROM STDIN it starts swallows a Sync of ours.
    Ready {
        /// The number of ReadyForQuery messages.
        n: usize,
        /// Sent with the extended protocol.
        extended: bool,
    },
    /// Extended-protocol messages ending in Flush: nothing until the Sync it still needs.
    SyncLater,
    /// The Sync a [`Owes::SyncLater`] request still needed: one ReadyForQuery.
    OwedSync,
}

impl Owes {
    /// A simple Query.
    pub(super) const QUERY: Owes = Owes::Ready {
        n: 1,
        extended: false,
    };
    /// Extended-protocol messages ending in one Sync.
    pub(super) const SYNC: Owes = Owes::Ready {
        n: 1,
        extended: true,
    };
}

/// What the responses of the latest request said, as far as they have been read (by whoever
/// read them: the request itself or a later drain). A query timeout uses it to tell the caller
/// whether the statement ran.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Seen {
    /// Requests started on this connection; tells whether a request was written at all.
    pub(super) requests: u64,
    /// ReadyForQuery messages the latest request was owed when it started.
    pub(super) syncs: usize,
    /// CommandComplete messages read since.
    pub(super) completed: usize,
    /// ErrorResponses read since.
    pub(super) errors: usize,
    /// One of them was query_canceled (57014).
    pub(super) canceled: bool,
}

/// The CopyFail reason sent for a COPY FROM STDIN whose sink was dropped unfinished.
pub(super) const COPY_DROPPED: &str = "the COPY FROM STDIN sink was dropped before finish()";

/// The connection's request state, kept small and explicit.
#[derive(Debug, Default)]
pub(super) struct RequestState {
    /// ReadyForQuery messages the server still owes.
    ready_owed: usize,
    /// A request ended with Flush, not Sync, and was not finished: drain must send the Sync.
    sync_owed: bool,
    /// A write was started and not finished: the stream holds a partial message.
    write_incomplete: bool,
    /// The request in flight is an extended-protocol one. A COPY FROM STDIN it starts swallows
    /// its Sync, so refusing the COPY needs a Sync of our own.
    extended: bool,
    /// A COPY FROM STDIN is open (its CopyInResponse was read) and its sink was dropped before
    /// CopyDone or CopyFail: the next request sends the CopyFail first.
    pub(super) copy_fail_owed: bool,
    /// Why the connection cannot be used any more; the first cause wins.
    broken: Option<&'static str>,
    /// The FATAL error the server ended the session with. The server closes the socket right
    /// after it, and no ReadyForQuery follows: the EOF that the reader then hits reports this
    /// error instead, so the caller learns why (57P01, 25P03, ...) rather than just "EOF".
    fatal: Option<DbError>,
    /// The last operator-intervention notice (SQLSTATE class 57, e.g. WARNING 57P01 "immediate
    /// shutdown"): the server's last words before it closes the socket, kept as context for
    /// the EOF error.
    last_words: Option<String>,
    pub(super) seen: Seen,
}

impl RequestState {
    /// Records what the request about to be written will be owed.
    fn owe(&mut self, owes: Owes) {
        match owes {
            Owes::Nothing => {}
            Owes::Ready { n, extended } => {
                self.start(n);
                self.ready_owed += n;
                self.extended = extended;
            }
            Owes::SyncLater => {
                self.start(1);
                self.sync_owed = true;
                self.extended = true;
            }
            Owes::OwedSync => {
                self.sync_owed = false;
                self.ready_owed += 1;
            }
        }
    }

    fn start(&mut self, syncs: usize) {
        self.seen = Seen {
            requests: self.seen.requests + 1,
            syncs,
            ..Seen::default()
        };
    }

    /// Marks the connection unusable. The first cause is kept: later failures are its echoes.
    pub(super) fn set_broken(&mut self, why: &'static str) {
        if self.broken.is_none() {
            tracing::debug!(target: "pgwire_lite::connection", why, "connection broken");
        }
        self.broken.get_or_insert(why);
    }

    /// Why the connection cannot be used, if it cannot.
    pub(super) fn broken(&self) -> Option<&'static str> {
        if self.write_incomplete {
            return Some(
                self.broken
                    .unwrap_or("a request was only partly written (its future was dropped)"),
            );
        }
        self.broken
    }

    /// Responses of an earlier request are still unread.
    pub(super) fn has_pending(&self) -> bool {
        self.ready_owed > 0 || self.sync_owed || self.write_incomplete
    }

    /// The number of ReadyForQuery messages still owed.
    pub(super) fn ready_owed(&self) -> usize {
        self.ready_owed
    }
}

impl Connection {
    /// Records what the request in the write buffer will be owed, then writes it in one go.
    pub(super) async fn send(&mut self, owes: Owes) -> Result<()> {
        self.state.owe(owes);
        self.state.write_incomplete = true;
        let written = if self.write_buf.len() <= WRITE_WITHOUT_READING {
            self.stream.write_all(&self.write_buf).await
        } else {
            self.stream
                .write_all_reading(&self.write_buf, &mut self.read_buf)
                .await
        };
        if let Err(e) = written {
            self.state.set_broken("writing to the server failed");
            return Err(e.into());
        }
        self.state.write_incomplete = false;
        // The statement Closes written with this request are on the wire now.
        self.cache.closes_sent();
        self.clear_write_buf();
        Ok(())
    }

    /// Empties the write buffer for a new request, dropping an oversized one.
    pub(super) fn clear_write_buf(&mut self) {
        if self.write_buf.capacity() > SHRINK_BUFFER_ABOVE {
            self.write_buf = BytesMut::with_capacity(READ_CHUNK);
        } else {
            self.write_buf.clear();
        }
        self.cache.closes_unsent();
    }

    /// Makes sure the connection can take a new request: not broken, and nothing left over from
    /// a dropped request (which is drained here).
    pub(super) async fn ensure_ready(&mut self) -> Result<()> {
        if let Some(why) = self.state.broken() {
            self.state.set_broken(why);
            return Err(Error::Closed(why));
        }
        if self.state.has_pending() {
            let r = async {
                if self.state.copy_fail_owed {
                    self.clear_write_buf();
                    frontend::copy_fail(COPY_DROPPED, &mut self.write_buf)?;
                    self.send(Owes::Nothing).await?;
                    self.state.copy_fail_owed = false;
                }
                if self.state.sync_owed {
                    self.clear_write_buf();
                    frontend::sync(&mut self.write_buf);
                    self.send(Owes::OwedSync).await?;
                }
                self.read_until_ready().await
            }
            .await;
            if r.is_err() {
                // Draining is best effort: anything that goes wrong leaves an unknown state.
                self.state.set_broken("draining a cancelled request failed");
            }
            r?;
        }
        Ok(())
    }

    /// Reads and discards messages until every owed ReadyForQuery has arrived.
    pub(super) async fn read_until_ready(&mut self) -> Result<()> {
        while self.state.ready_owed > 0 {
            let frame = self.recv().await?;
            match backend::decode(&frame)? {
                BackendMessage::ReadyForQuery { status } => self.ready_for_query(status)?,
                BackendMessage::ErrorResponse(f) => {
                    self.db_error(&f);
                }
                BackendMessage::CopyInResponse | BackendMessage::CopyBothResponse => {
                    let extended = self.state.extended;
                    self.refuse_copy_in(extended).await?;
                }
                // Everything else is discarded, but only after it decoded: garbage means a
                // broken stream.
                _ => {}
            }
        }
        Ok(())
    }

    /// Settles one owed ReadyForQuery.
    pub(super) fn ready_for_query(&mut self, status: u8) -> Result<()> {
        if self.state.ready_owed == 0 {
            return Err(Error::protocol("ReadyForQuery that no request asked for"));
        }
        self.state.ready_owed -= 1;
        self.set_tx_status(status);
        Ok(())
    }

    pub(super) fn set_tx_status(&mut self, status: u8) {
        self.tx_status = match status {
            transaction_status::IN_TRANSACTION => TransactionStatus::InTransaction,
            transaction_status::FAILED => TransactionStatus::Failed,
            _ => TransactionStatus::Idle,
        };
    }

    /// Turns an ErrorResponse into an error. A FATAL or PANIC error ends the session: the
    /// connection is broken from here on.
    pub(super) fn db_error(&mut self, fields: &ErrorFields<'_>) -> Error {
        let e = fields.to_db_error();
        self.state.seen.errors += 1;
        if e.code() == QUERY_CANCELED {
            self.state.seen.canceled = true;
        }
        if e.is_fatal() {
            self.state
                .set_broken("the server ended the session with a FATAL error");
            self.state.fatal = Some(e.clone());
        }
        e.into()
    }

    /// Records the outcome of a request: an I/O or protocol failure breaks the connection.
    pub(super) fn check<T>(&mut self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            if e.is_closed() {
                self.state.set_broken(match e {
                    Error::Io(_) => "an I/O error occurred",
                    Error::Protocol(_) => "the server violated the protocol",
                    _ => "the connection failed",
                });
            }
        }
        r
    }

    /// The next frame that is not an asynchronous message.
    pub(super) async fn recv(&mut self) -> Result<Bytes> {
        loop {
            if let Some(frame) = self.try_recv()? {
                return Ok(frame);
            }
            self.fill_read_buf().await?;
        }
    }

    /// The next whole frame already in the read buffer, without waiting. Nothing is taken
    /// until a whole frame is there, so a future dropped while filling the buffer loses nothing.
    pub(super) fn take_frame(&mut self) -> Result<Option<Bytes>> {
        match backend::check_frame(&self.read_buf, self.max_message_len) {
            Ok(Some(n)) => {
                let frame = self.read_buf.split_to(n).freeze();
                if self.read_buf.is_empty() && self.read_buf.capacity() > SHRINK_BUFFER_ABOVE {
                    self.read_buf = BytesMut::with_capacity(READ_CHUNK);
                }
                Ok(Some(frame))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.state.set_broken("the server violated the protocol");
                Err(e)
            }
        }
    }

    /// The next whole frame, asynchronous messages included (cancel-safe).
    pub(super) async fn read_frame(&mut self) -> Result<Bytes> {
        loop {
            if let Some(frame) = self.take_frame()? {
                return Ok(frame);
            }
            self.fill_read_buf().await?;
        }
    }

    /// The next buffered frame that is not an asynchronous message, without waiting: the
    /// synchronous half of [`recv`](Self::recv), for streams polled by hand.
    pub(super) fn try_recv(&mut self) -> Result<Option<Bytes>> {
        while let Some(frame) = self.take_frame()? {
            match frame[0] {
                t if backend::is_async(t) => self.handle_async(&frame)?,
                tag::COMMAND_COMPLETE => {
                    self.state.seen.completed += 1;
                    return Ok(Some(frame));
                }
                _ => return Ok(Some(frame)),
            }
        }
        Ok(None)
    }

    /// Reads more bytes from the socket into the read buffer (cancel-safe).
    pub(super) async fn fill_read_buf(&mut self) -> Result<()> {
        self.read_buf.reserve(READ_CHUNK);
        match self.stream.read_buf(&mut self.read_buf).await {
            Ok(0) => {
                self.state.set_broken("the server closed the connection");
                Err(self.goodbye(None))
            }
            Ok(_) => Ok(()),
            Err(e) => {
                self.state.set_broken("an I/O error occurred");
                // A reset right after a FATAL error is the same goodbye.
                Err(self.goodbye(Some(e)))
            }
        }
    }

    /// The error for a connection the server closed: its FATAL error if it sent one, else the
    /// I/O error (or EOF) with the server's last words.
    pub(super) fn goodbye(&mut self, io_error: Option<io::Error>) -> Error {
        if let Some(fatal) = self.state.fatal.take() {
            return fatal.into();
        }
        if let Some(e) = io_error {
            return e.into();
        }
        let msg = match self.state.last_words.take() {
            Some(words) => format!("the server closed the connection after: {words}"),
            None => "the server closed the connection".to_string(),
        };
        Error::Io(io::Error::new(io::ErrorKind::UnexpectedEof, msg))
    }

    /// Handles a NoticeResponse, ParameterStatus or NotificationResponse.
    pub(super) fn handle_async(&mut self, frame: &[u8]) -> Result<()> {
        let r = match backend::decode(frame) {
            Ok(BackendMessage::NoticeResponse(f)) => {
                let notice = f.to_db_error();
                if notice.code().starts_with("57") {
                    self.state.last_words = Some(notice.to_string());
                }
                if let Some(h) = self.notice_handler.as_mut() {
                    h(&notice);
                }
                Ok(())
            }
            Ok(BackendMessage::ParameterStatus { name, value }) => {
                // Every text value is decoded as UTF-8; another encoding would corrupt them.
                if name == "client_encoding" && !value.eq_ignore_ascii_case("UTF8") {
                    Err(Error::protocol(format!(
                        "the server switched client_encoding to {value}; only UTF8 is supported"
                    )))
                } else {
                    self.parameters.insert(name.into(), value.into());
                    self.parameter_changes += 1;
                    Ok(())
                }
            }
            Ok(BackendMessage::NotificationResponse {
                process_id,
                channel,
                payload,
            }) => {
                if self.notifications.len() >= MAX_QUEUED_NOTIFICATIONS {
                    self.notifications.pop_front();
                }
                self.notifications.push_back(Notification {
                    process_id,
                    channel: channel.into(),
                    payload: payload.into(),
                });
                Ok(())
            }
            Ok(_) => Err(Error::protocol("not an asynchronous message")),
            Err(e) => Err(e),
        };
        if r.is_err() {
            self.state.set_broken("the server violated the protocol");
        }
        r
    }

    /// Answers a CopyInResponse with CopyFail, so the server ends the COPY with an error. In the
    /// extended protocol the server ignored our Sync while in copy-in mode and now discards
    /// messages until a Sync: send one, whose ReadyForQuery replaces the swallowed one. (In the
    /// simple protocol the Query's own ReadyForQuery follows the error.)
    pub(super) async fn refuse_copy_in(&mut self, extended: bool) -> Result<()> {
        self.clear_write_buf();
        frontend::copy_fail("COPY FROM STDIN is not supported", &mut self.write_buf)?;
        if extended {
            frontend::sync(&mut self.write_buf);
        }
        self.send(Owes::Nothing).await
    }

    /// Processes what an idle connection's socket holds without waiting: asynchronous messages
    /// are handled; EOF, a socket error, any other message or garbage breaks the connection.
    pub(super) fn check_idle(&mut self) -> bool {
        use super::transport::ReadNow;
        match self.stream.read_now(&mut self.read_buf) {
            ReadNow::Open => {}
            ReadNow::Closed => {
                self.state
                    .set_broken("the server closed the connection while it was idle");
                return false;
            }
            ReadNow::Failed => {
                self.state.set_broken("the idle connection's socket failed");
                return false;
            }
        }
        // Anything buffered must be asynchronous messages only.
        loop {
            match backend::check_frame(&self.read_buf, self.max_message_len) {
                Ok(Some(n)) => {
                    if !backend::is_async(self.read_buf[0]) {
                        self.state
                            .set_broken("the server sent a message to an idle connection");
                        return false;
                    }
                    let frame = self.read_buf.split_to(n).freeze();
                    if self.handle_async(&frame).is_err() {
                        return false;
                    }
                }
                Ok(None) => return true,
                Err(_) => {
                    self.state
                        .set_broken("the server sent garbage to an idle connection");
                    return false;
                }
            }
        }
    }
}
