//! One shared connection's line: the requests queued on it, who writes and who reads, and
//! the answers handed to each caller (flat combining; see the parent module).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use pgwire_lite::{MuxDecoder, MuxIo, MuxRequest, QueryResult, ToSql};

use super::QUEUE_PER_CONNECTION;
use crate::error::{Error, Result};
use crate::guard::PooledConnection;

/// A request larger than this takes the normal path: it would sit in the shared buffer (and
/// delay everyone queued behind it) for the whole of its write. Writes cannot deadlock either
/// way: whoever writes also reads while the write waits (see `Call::poll`).
const MAX_MULTIPLEXED_REQUEST: usize = 16 * 1024;

/// Places in one connection's line, answered or not. Callers hold a queue permit only while
/// they wait, so callers cancelled again and again could otherwise grow a line whose server
/// is slow without bound; beyond this, callers take the normal path.
const MAX_LINE: usize = 4 * QUEUE_PER_CONNECTION;

/// A response longer than this many rows marks its connection busy with a large transfer:
/// new callers go to other connections, whose lines are not stuck behind it.
const LARGE_RESPONSE_ROWS: usize = 1024;

/// One shared connection.
pub(super) struct MuxConn {
    state: Mutex<ConnState>,
    /// Requests queued or in flight: read without the lock to pick a connection.
    pub(super) queued: AtomicUsize,
    /// A large response is being read: pick another connection if there is one.
    pub(super) large: AtomicBool,
    /// Takes new requests: neither draining nor failed. Mirrors the state under the lock, so
    /// picking a connection locks none of them.
    pub(super) open: AtomicBool,
}

/// Everything behind a shared connection's mutex: the socket, the queued bytes, the line of
/// places and who holds which role. Held only for short, non-awaiting sections.
pub(super) struct ConnState {
    /// `None` once given back or quarantined.
    pub(super) conn: Option<PooledConnection>,
    /// Why the connection was quarantined.
    failed: Option<&'static str>,
    /// The pool is closing (or a borrower wants the connection whole): no new requests.
    pub(super) closing: bool,
    /// Encoded requests not yet handed to a writer.
    unsent: BytesMut,
    /// What the current (or a dropped) writer still has to write.
    writing: BytesMut,
    /// The caller (by place in line) holding the write side, and the read side. Only the
    /// reader does I/O: a writer takes the read side too, or writes for the reader's sake only
    /// as the reader.
    writer: Option<u64>,
    reader: Option<u64>,
    /// The reader has the socket and the read buffer out ([`MuxIo`]) for one read or write,
    /// done without this lock.
    io_out: bool,
    /// The place in line of `entries[0]`.
    base: u64,
    /// The next place in line to hand out.
    next_seq: u64,
    /// Places below this were handed to a writer: their responses may be read.
    handed: u64,
    /// The place whose response is read next.
    next_read: u64,
    entries: VecDeque<Entry>,
    decoder: MuxDecoder,
    /// A drainer runs (its waker, to hand it a role someone gave up).
    drainer: Option<Waker>,
    /// Requests may share a Sync (`multiplexing_batches` is not `false`, see
    /// [`PsqlPoolBuilder::multiplexing_batches`](crate::PsqlPoolBuilder::multiplexing_batches)):
    /// one batch at a time is on the server.
    batches: bool,
    /// `unsent` ends with requests that no Sync follows yet (an open batch).
    unsynced: bool,
    /// The first place of the batch being read: its results are held until the batch's
    /// ReadyForQuery says it committed.
    batch_start: u64,
    /// The connection's ParameterStatus count when sharing began: a statement that moves it
    /// changed a session setting every other caller would run under.
    settings_seen: u64,
    /// The place whose statement changed a setting (and got the connection closed).
    changed_by: Option<u64>,
}

struct Entry {
    req: MuxRequest,
    /// The last request of its batch: a Sync follows it.
    last: bool,
    outcome: Outcome,
    waker: Option<Waker>,
}

enum Outcome {
    Waiting,
    /// The caller left; its response is read and discarded.
    Cancelled,
    /// Read, but its batch has not ended: handed out only once the batch committed.
    Held(QueryResult),
    Ready(Result<QueryResult>),
    /// Another statement of its batch failed, so this one was rolled back or skipped: it did
    /// not take effect, and its caller runs it again, alone.
    Retry,
    /// Taken by its caller, or discarded: the entry only waits to leave the front.
    Gone,
}

/// What a caller's wait ends with.
pub(super) enum Answer {
    Done(Result<QueryResult>),
    /// Run it again, alone: see [`Outcome::Retry`].
    Retry,
}

pub(super) enum Enqueued {
    Queued { seq: u64, prepare: bool },
    Failed(Error),
    NotHere,
}

impl MuxConn {
    pub(super) fn new(conn: PooledConnection, batches: bool) -> MuxConn {
        let settings_seen = conn.parameter_changes();
        MuxConn {
            state: Mutex::new(ConnState {
                conn: Some(conn),
                failed: None,
                closing: false,
                unsent: BytesMut::with_capacity(8 * 1024),
                writing: BytesMut::with_capacity(8 * 1024),
                writer: None,
                reader: None,
                io_out: false,
                base: 0,
                next_seq: 0,
                handed: 0,
                next_read: 0,
                entries: VecDeque::with_capacity(QUEUE_PER_CONNECTION),
                decoder: MuxDecoder::default(),
                drainer: None,
                batches,
                unsynced: false,
                batch_start: 0,
                settings_seen,
                changed_by: None,
            }),
            queued: AtomicUsize::new(0),
            large: AtomicBool::new(false),
            open: AtomicBool::new(true),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, ConnState> {
        // Nothing panics while the lock is held (encoders and decoders return errors); if
        // something did, the state is still whole: each section updates it together.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes no new requests from now on; goes back to the pool once its line is empty.
    pub(super) fn close(&self) {
        self.open.store(false, Ordering::Release);
        self.lock().closing = true;
    }

    /// Whether the statement at place `seq` changed a session setting.
    pub(super) fn changed_settings(&self, seq: u64) -> bool {
        self.lock().changed_by == Some(seq)
    }

    pub(super) fn invalidate(&self, sql: &str) {
        if let Some(c) = self.lock().conn.as_mut() {
            c.raw().mux_invalidate(sql);
        }
    }

    /// Encodes the request (or the Parse it needs first) and takes a place in line. `batch`:
    /// it shares a Sync with the requests around it that are batched too; otherwise it ends
    /// with its own (a write, or a statement re-run after its batch failed).
    pub(super) fn enqueue(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        unnamed: bool,
        batch: bool,
    ) -> Enqueued {
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.failed.is_some() || st.closing || st.entries.len() >= MAX_LINE {
            return Enqueued::NotHere;
        }
        let Some(conn) = st.conn.as_mut() else {
            return Enqueued::NotHere;
        };
        let conn = conn.raw();
        if !batch {
            end_batch(&mut st.unsent, &mut st.unsynced, &mut st.entries);
        }
        // Where this request's bytes start (after any Sync ending the batch before it).
        let mut at = st.unsent.len();
        let encoded = if unnamed {
            conn.mux_encode_unnamed(sql, params, &mut st.unsent)
        } else {
            match conn.mux_encode(sql, params, &mut st.unsent) {
                Ok(None) => {
                    // A Parse is a batch of its own.
                    end_batch(&mut st.unsent, &mut st.unsynced, &mut st.entries);
                    at = st.unsent.len();
                    conn.mux_encode_prepare(sql, params, &mut st.unsent)
                        .map(Some)
                }
                r => r,
            }
        };
        let req = match encoded {
            Ok(Some(req)) => req,
            Ok(None) => return Enqueued::NotHere,
            Err(e) => return Enqueued::Failed(e.into()),
        };
        if st.unsent.len() - at > MAX_MULTIPLEXED_REQUEST {
            // Taken back whole, with the statement Closes that rode in front of it.
            conn.mux_unappend(&mut st.unsent, at);
            return Enqueued::NotHere;
        }
        conn.mux_appended();
        let prepare = req.is_prepare();
        let seq = st.next_seq;
        st.next_seq += 1;
        st.entries.push_back(Entry {
            req,
            last: false,
            outcome: Outcome::Waiting,
            waker: None,
        });
        st.unsynced = true;
        if !batch || prepare {
            end_batch(&mut st.unsent, &mut st.unsynced, &mut st.entries);
        }
        self.queued.fetch_add(1, Ordering::Relaxed);
        Enqueued::Queued { seq, prepare }
    }
}

impl Drop for ConnState {
    fn drop(&mut self) {
        // The last holder left (the pool was dropped, say) with the line not empty: the
        // connection's own accounting knows nothing of the shared requests, so it must not go
        // back to the pool as an idle one.
        if !self.is_quiescent() {
            if let Some(c) = self.conn.as_mut() {
                c.raw().mux_abandon();
            }
        }
    }
}

/// Ends the open batch in `unsent` with a Sync, marking its last request.
fn end_batch(unsent: &mut BytesMut, unsynced: &mut bool, entries: &mut VecDeque<Entry>) {
    if std::mem::take(unsynced) {
        pgwire_lite::Connection::mux_sync(unsent);
        if let Some(e) = entries.back_mut() {
            e.last = true;
        }
    }
}

impl ConnState {
    pub(super) fn is_dead(&self) -> bool {
        self.failed.is_some() || self.conn.is_none()
    }

    /// Nothing queued, in flight or half-written: the connection can be handed back whole.
    pub(super) fn is_quiescent(&self) -> bool {
        !self.io_out
            && self.entries.is_empty()
            && self.unsent.is_empty()
            && self.writing.is_empty()
            && self.conn.as_ref().is_some_and(|c| c.mux_ready())
    }

    fn entry(&mut self, seq: u64) -> Option<&mut Entry> {
        let i = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        self.entries.get_mut(i)
    }

    /// Drops answered entries from the front of the line.
    fn pop_gone(&mut self) {
        while let Some(Entry {
            outcome: Outcome::Gone,
            ..
        }) = self.entries.front()
        {
            self.entries.pop_front();
            self.base += 1;
        }
    }

    /// Wakes the first caller still waiting, to take over a role someone gave up.
    fn wake_successor(&mut self) {
        if let Some(w) = self
            .entries
            .iter_mut()
            .filter(|e| matches!(e.outcome, Outcome::Waiting | Outcome::Held(_)))
            .find_map(|e| e.waker.take())
        {
            w.wake();
        } else if let Some(w) = &self.drainer {
            w.wake_by_ref();
        }
    }

    /// Quarantines the connection: every caller still waiting gets an error of its own.
    /// `first` goes to the caller whose response was being read.
    fn fail(&mut self, first: pgwire_lite::Error, queued: &AtomicUsize) {
        // Broken (if the failure did not already break it), so that once dropped it is closed,
        // never reused with responses unread.
        if let Some(c) = self.conn.as_mut() {
            c.raw().mux_abandon();
        }
        self.failed
            .get_or_insert("the multiplexed connection failed");
        let mut first = Some(first);
        let (read_from, handed) = (self.next_read, self.handed);
        for (i, e) in self.entries.iter_mut().enumerate() {
            let seq = self.base + i as u64;
            if seq < read_from {
                // Read but held: its batch never said it committed.
                if let Outcome::Held(_) = e.outcome {
                    e.outcome = Outcome::Ready(Err(pgwire_lite::Error::Closed(
                        "the multiplexed connection failed before this statement's batch \
                         ended: it may or may not have taken effect",
                    )
                    .into()));
                    if let Some(w) = e.waker.take() {
                        w.wake();
                    }
                }
                continue;
            }
            queued.fetch_sub(1, Ordering::Relaxed);
            let err = match first.take() {
                Some(f) => f,
                None if seq < handed => pgwire_lite::Error::Closed(
                    "the multiplexed connection failed before this statement's response \
                     arrived: it may or may not have run",
                ),
                None => pgwire_lite::Error::Closed(
                    "the multiplexed connection failed before this statement was sent: it \
                     did not run",
                ),
            };
            match e.outcome {
                Outcome::Waiting => {
                    e.outcome = Outcome::Ready(Err(err.into()));
                    if let Some(w) = e.waker.take() {
                        w.wake();
                    }
                }
                _ => e.outcome = Outcome::Gone,
            }
        }
        self.next_read = self.next_seq;
        self.handed = self.next_seq;
        self.batch_start = self.next_seq;
        self.unsynced = false;
        self.unsent.clear();
        self.writing.clear();
        self.writer = None;
        self.reader = None;
        self.decoder.reset();
        self.pop_gone();
    }

    /// Hands out what the response just read (of place `next_read`) settles: with one Sync
    /// per batch, results wait until the batch's ReadyForQuery says it committed; an error
    /// rolled back the others of its batch, which are run again.
    fn settle(
        &mut self,
        result: pgwire_lite::Result<QueryResult>,
        ended: bool,
        queued: &AtomicUsize,
    ) {
        let seq = self.next_read;
        self.next_read += 1;
        queued.fetch_sub(1, Ordering::Relaxed);
        let failed = result.is_err();
        let last = self.entry(seq).is_some_and(|e| e.last);
        match result {
            Ok(r) if !ended => {
                if let Some(e) = self.entry(seq) {
                    if let Outcome::Waiting = e.outcome {
                        e.outcome = Outcome::Held(r);
                    }
                }
                return;
            }
            r => self.deliver(seq, Some(r.map_err(Error::from))),
        }
        for s in self.batch_start..seq {
            let outcome = if failed {
                None
            } else {
                Some(Ok(QueryResult::default()))
            };
            self.deliver(s, outcome);
        }
        if failed && !last {
            // The server skipped the rest of the batch: nothing of it comes back.
            while self.next_read < self.handed {
                let s = self.next_read;
                self.next_read += 1;
                queued.fetch_sub(1, Ordering::Relaxed);
                let end = self.entry(s).is_none_or(|e| e.last);
                self.deliver(s, None);
                if end {
                    break;
                }
            }
        }
        self.batch_start = self.next_read;
        self.pop_gone();
    }

    /// Lends the socket and the read buffer out, for one read or write without the lock.
    fn lend_io(&mut self) -> Option<MuxIo> {
        let io = self.conn.as_mut()?.raw().mux_lend_io();
        self.io_out = true;
        Some(io)
    }

    /// Takes back what [`lend_io`](Self::lend_io) lent.
    fn return_io(&mut self, io: MuxIo) {
        if let Some(c) = self.conn.as_mut() {
            c.raw().mux_return_io(io);
        }
        self.io_out = false;
    }

    /// Decodes the response of place `next_read` from what is buffered and settles it. Ready:
    /// a response was settled, or the connection failed (look again); Pending: more bytes are
    /// needed.
    fn read_next(&mut self, shared: &MuxConn) -> Poll<()> {
        let at = usize::try_from(self.next_read - self.base).ok();
        if at.is_none_or(|i| i >= self.entries.len()) {
            // Places from `next_read` on stay in line until answered, so this cannot happen;
            // fail the line rather than loop on it.
            shared.open.store(false, Ordering::Release);
            self.fail(
                pgwire_lite::Error::Closed("the multiplexed connection lost its place in line"),
                &shared.queued,
            );
            return Poll::Ready(());
        }
        let (Some(pooled), Some(entry)) =
            (self.conn.as_mut(), at.and_then(|i| self.entries.get(i)))
        else {
            // Given back or quarantined (`is_dead`): the caller's next look answers it.
            return Poll::Ready(());
        };
        let conn = pooled.raw();
        let polled = conn.mux_poll_buffered(&entry.req, entry.last, &mut self.decoder);
        match polled {
            Poll::Ready(Ok((outcome, ended))) => {
                self.decoder.reset();
                shared.large.store(false, Ordering::Relaxed);
                if conn.parameter_changes() != self.settings_seen {
                    // A statement changed a reported setting (TimeZone, DateStyle, ...): what
                    // runs next on this session would run under it.
                    shared.open.store(false, Ordering::Release);
                    self.changed_by = Some(self.next_read);
                    self.fail(
                        pgwire_lite::Error::Closed(
                            "a multiplexed statement changed a session setting (the server \
                             reported it); the shared connection is closed",
                        ),
                        &shared.queued,
                    );
                } else {
                    self.settle(outcome, ended, &shared.queued);
                }
                Poll::Ready(())
            }
            Poll::Ready(Err(e)) => {
                shared.open.store(false, Ordering::Release);
                self.fail(e, &shared.queued);
                Poll::Ready(())
            }
            Poll::Pending => {
                if self.decoder.rows_so_far() > LARGE_RESPONSE_ROWS {
                    shared.large.store(true, Ordering::Relaxed);
                }
                Poll::Pending
            }
        }
    }

    /// Settles every response already buffered, without reading the socket: a reader whose
    /// own response came lets the callers whose responses came with it go on at once (they
    /// then queue their next requests together) instead of one after the other.
    fn settle_buffered(&mut self, shared: &MuxConn) {
        while self.next_read < self.handed && !self.is_dead() {
            if self.read_next(shared).is_pending() {
                break;
            }
        }
    }

    /// Settles place `seq`: `Some` outcome (a held result is handed out as it is), or `None`:
    /// run again. A caller that left just drops it.
    fn deliver(&mut self, seq: u64, outcome: Option<Result<QueryResult>>) {
        let Some(e) = self.entry(seq) else { return };
        let new = match (std::mem::replace(&mut e.outcome, Outcome::Gone), outcome) {
            (Outcome::Cancelled | Outcome::Gone, _) => Outcome::Gone,
            (Outcome::Held(r), Some(Ok(_))) => Outcome::Ready(Ok(r)),
            (Outcome::Waiting | Outcome::Held(_), None) => Outcome::Retry,
            (Outcome::Waiting | Outcome::Held(_), Some(r)) => Outcome::Ready(r),
            (done @ (Outcome::Ready(_) | Outcome::Retry), _) => done,
        };
        e.outcome = new;
        if matches!(e.outcome, Outcome::Ready(_) | Outcome::Retry) {
            if let Some(w) = e.waker.take() {
                w.wake();
            }
        }
    }
}

/// One caller's wait for its response, doing the writing and reading its turn brings.
pub(super) struct Call {
    conn: Arc<MuxConn>,
    /// The caller's place in line, or [`DRAINER`].
    seq: u64,
    done: bool,
    /// Found the connection idle and let the other ready tasks run once before writing (see
    /// `Call::poll`).
    deferred: bool,
}

/// The place of a drainer: a task that reads and writes for callers that all left, so a line
/// whose callers were all cancelled still empties (and its connection can go back to the pool).
const DRAINER: u64 = u64::MAX;

impl Call {
    /// The wait of the caller at place `seq`.
    pub(super) fn new(conn: Arc<MuxConn>, seq: u64) -> Call {
        Call {
            conn,
            seq,
            done: false,
            deferred: false,
        }
    }

    pub(super) async fn wait(mut self) -> Answer {
        poll_fn(|cx| self.poll(cx)).await
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Answer> {
        let shared = &self.conn;
        let mut guard = shared.lock();
        loop {
            let st = &mut *guard;
            if self.seq == DRAINER {
                let empty =
                    st.next_read == st.next_seq && st.writing.is_empty() && st.unsent.is_empty();
                if empty || st.is_dead() {
                    self.done = true;
                    st.drainer = None;
                    self.give_up_roles(st);
                    // A draining connection whose line is now empty goes back to the pool.
                    let back = if st.closing && st.is_quiescent() {
                        st.conn.take()
                    } else {
                        None
                    };
                    drop(guard);
                    drop(back);
                    return Poll::Ready(Answer::Done(Ok(QueryResult::default())));
                }
            }
            // 1. My response, read by me or by whoever read before.
            if self.seq != DRAINER {
                match st.entry(self.seq) {
                    Some(e) if matches!(e.outcome, Outcome::Ready(_) | Outcome::Retry) => {
                        let answer = match std::mem::replace(&mut e.outcome, Outcome::Gone) {
                            Outcome::Ready(r) => Answer::Done(r),
                            _ => Answer::Retry,
                        };
                        if st.reader == Some(self.seq) {
                            st.settle_buffered(&self.conn);
                        }
                        self.done = true;
                        self.give_up_roles(st);
                        st.pop_gone();
                        return Poll::Ready(answer);
                    }
                    Some(_) => {}
                    None => {
                        // An entry leaves the line only once taken, so this is unreachable
                        // while `done` is false; answer rather than wait for ever.
                        self.done = true;
                        return Poll::Ready(Answer::Done(Err(Error::Backend(
                            pgwire_lite::Error::Closed("the multiplexed connection failed"),
                        ))));
                    }
                }
            }
            if st.conn.is_none() {
                self.done = true;
                return Poll::Ready(Answer::Done(Err(Error::Backend(
                    pgwire_lite::Error::Closed("the multiplexed connection was closed"),
                ))));
            }
            // 2. The write side: whoever finds it free writes everything queued. While a
            // reader waits for responses, the server is busy with this connection's earlier
            // requests anyway: new ones wait in the queue and the reader writes them all in one
            // go before it blocks again, so requests that arrive together leave together.
            if st.writer.is_none_or(|w| w == self.seq)
                && st.reader.is_none_or(|r| r == self.seq)
                && !st.io_out
                && (!st.writing.is_empty() || !st.unsent.is_empty())
                // With batches, one batch at a time is on the server (as in pgbench's
                // pipelines): what queues meanwhile leaves together once it is answered, so
                // batches grow with the load instead of alternating in halves (64 callers over 8
                // connections: 4 statements per Sync before, 8 after).
                && (!st.batches || st.next_read == st.handed || st.writer == Some(self.seq))
            {
                if st.writer.is_none() && st.reader.is_none() && !self.deferred {
                    // An idle connection: callers woken by the same read (or arriving with
                    // this one) are about to queue too. Let every ready task run once (a
                    // self-wake puts this task at the back of the run queue) so that they
                    // leave in one write, not one write each. No role is held meanwhile:
                    // whoever comes back first writes for all.
                    self.deferred = true;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                // The writer reads too: only the reader does I/O, so nobody else reaches for
                // the socket while it is out.
                st.writer = Some(self.seq);
                st.reader = Some(self.seq);
                end_batch(&mut st.unsent, &mut st.unsynced, &mut st.entries);
                if st.writing.is_empty() {
                    std::mem::swap(&mut st.writing, &mut st.unsent);
                } else if !st.unsent.is_empty() {
                    st.writing.extend_from_slice(&st.unsent);
                    st.unsent.clear();
                }
                st.handed = st.next_seq;
                let Some(mut io) = st.lend_io() else { continue };
                let mut buf = std::mem::take(&mut st.writing);
                // The write (and the loopback delivery and server wake-up the kernel does in
                // it) happens without the lock: other callers queue and take answers meanwhile.
                drop(guard);
                let written = io.poll_write(cx, &mut buf);
                guard = shared.lock();
                let st = &mut *guard;
                st.writing = buf;
                st.return_io(io);
                match written {
                    Poll::Ready(Ok(())) => {
                        st.writer = None;
                        if !st.unsent.is_empty() {
                            continue;
                        }
                    }
                    Poll::Ready(Err(e)) => {
                        let e = match st.conn.as_mut() {
                            Some(c) => c.raw().mux_write_failed(e),
                            None => e.into(),
                        };
                        self.conn.open.store(false, Ordering::Release);
                        st.fail(e, &self.conn.queued);
                        continue;
                    }
                    Poll::Pending => {}
                }
            }
            // 3. The read side: whoever finds it free reads responses in order.
            let st = &mut *guard;
            if st.reader.is_none_or(|r| r == self.seq) && st.next_read < st.handed && !st.io_out {
                st.reader = Some(self.seq);
                if st.read_next(&self.conn).is_ready() {
                    continue;
                }
                // The buffer holds no whole response: read the socket, without the lock.
                let Some(mut io) = st.lend_io() else { continue };
                drop(guard);
                let read = io.poll_fill(cx);
                guard = shared.lock();
                let st = &mut *guard;
                st.return_io(io);
                match read {
                    Poll::Ready(Ok(n)) if n > 0 => continue,
                    Poll::Ready(r) => {
                        let e = match st.conn.as_mut() {
                            Some(c) => c.raw().mux_read_failed(r.err()),
                            None => continue,
                        };
                        self.conn.open.store(false, Ordering::Release);
                        st.fail(e, &self.conn.queued);
                        continue;
                    }
                    Poll::Pending => {}
                }
            } else if st.reader == Some(self.seq) && !st.io_out {
                st.reader = None;
            }
            // 4. Wait: for my response, for the socket (as a role holder), or for a role.
            let st = &mut *guard;
            if self.seq == DRAINER {
                st.drainer = Some(cx.waker().clone());
            } else if let Some(e) = st.entry(self.seq) {
                match &e.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => e.waker = Some(cx.waker().clone()),
                }
            }
            return Poll::Pending;
        }
    }

    /// Releases the roles this caller holds, waking someone to take them over if work is left.
    fn give_up_roles(&self, st: &mut ConnState) {
        if st.writer == Some(self.seq) {
            st.writer = None;
        }
        if st.reader == Some(self.seq) {
            st.reader = None;
        }
        hand_over(&self.conn, st);
    }
}

/// Makes sure someone does what the line still owes once a caller gave up its roles or left:
/// with nobody holding a role, a waiting caller is woken to take them, or, when every caller
/// has left, a drainer task does the work (reads and discards the answers).
fn hand_over(conn: &Arc<MuxConn>, st: &mut ConnState) {
    let work = st.next_read < st.next_seq || !st.writing.is_empty() || !st.unsent.is_empty();
    if !work || st.is_dead() || st.writer.is_some() || st.reader.is_some() {
        return;
    }
    let waiting = st
        .entries
        .iter()
        .any(|e| matches!(e.outcome, Outcome::Waiting | Outcome::Held(_)));
    if waiting || st.drainer.is_some() {
        st.wake_successor();
        return;
    }
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        st.drainer = Some(Waker::noop().clone());
        let drainer = Call::new(conn.clone(), DRAINER);
        rt.spawn(drainer.wait());
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut guard = self.conn.lock();
        let st = &mut *guard;
        if let Some(e) = st.entry(self.seq) {
            e.waker = None;
            e.outcome = match e.outcome {
                // Answered but not taken: drop the answer.
                Outcome::Ready(_) | Outcome::Retry | Outcome::Gone => Outcome::Gone,
                // Still part of a batch being read: its place stays until the batch ends.
                Outcome::Waiting | Outcome::Held(_) | Outcome::Cancelled => Outcome::Cancelled,
            };
        }
        if self.seq == DRAINER {
            st.drainer = None;
        }
        self.give_up_roles(st);
        st.pop_gone();
    }
}
