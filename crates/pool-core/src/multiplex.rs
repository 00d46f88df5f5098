//! Multiplexed `pool.execute` (opt-in, [`PsqlPoolBuilder::multiplexing`]): concurrent callers
//! share connections, flat combining per connection.
//!
//! # The model
//!
//! The multiplexer borrows up to `max_db_pool_size` connections from the pool, one at a time
//! as load asks for them, and shares each among callers:
//!
//! 1. A caller picks a connection (a batched statement the shortest line; one with a Sync of
//!    its own the fullest line shorter than 4 requests, else the shortest: see
//!    [`Multiplexer::choose`]) and, under that connection's short mutex,
//!    appends its encoded request (Bind/Execute, or the first time
//!    a connection sees the statement, a Parse/Describe first) to the connection's unsent
//!    buffer, and takes the next place in its line of responses.
//! 2. **Writing**: whoever finds the write side free writes *everything* queued, its own
//!    request and everyone else's, in one write (flat combining). On an idle connection it
//!    first lets the runtime's other ready tasks run once, so that callers woken together
//!    queue together. While a reader waits for
//!    responses, requests only queue: the reader writes them all before it blocks again, so
//!    requests that arrive together leave together. There is no aggregator task: the writer
//!    is a caller, and the work moves to whichever caller comes next.
//! 3. **Reading**: whoever finds the read side free reads responses in order and hands each
//!    to its caller (waking it), until its own arrives; it also hands out every response that
//!    came with its own (already read, no more waiting), then passes the role on by waking
//!    the next waiting caller.
//!
//! Reads (tag SELECT, no row locks in the text) written together share one Sync (a batch, as
//! pgbench's `\startpipeline` does: one server flush per batch); writes end with a Sync each,
//! so each is its own implicit transaction and a failing write affects nobody else.
//! [`multiplexing_batches`](crate::PsqlPoolBuilder::multiplexing_batches) batches every
//! statement (`true`) or none (`false`). A connection takes its next batch only once the
//! previous one is answered: what queues meanwhile leaves together, so batches grow with the
//! load.
//! A batch is one implicit transaction: results are held until its ReadyForQuery says it
//! committed, and when a statement fails, the others of its batch (rolled back, or skipped by
//! the server) are answered "retry" and their callers run them again, alone. A Parse is always
//! a batch of its own.
//!
//! # Cancellation
//!
//! Roles and progress live in the connection's shared state, not in any caller's future: a
//! writer dropped mid-write leaves the unwritten bytes in the buffer, a reader dropped
//! mid-response leaves its decoder and buffered frames. A dropped caller's place in line stays;
//! its response is read and discarded by whoever reads. A dropped role holder wakes the next
//! waiting caller to take its role over.
//!
//! # Safety
//!
//! Only statements proven safe are multiplexed: a statement text runs on the normal path (a
//! whole connection) until one run there completed with a command tag that leaves no session
//! state (SELECT, INSERT, UPDATE, DELETE, MERGE) and ReadyForQuery said idle. Anything else
//! (BEGIN, SET, LISTEN, COPY, DDL, ...) keeps taking the normal path. A ReadyForQuery that
//! reports a transaction, or any protocol or I/O failure, quarantines the connection: it is
//! closed and replaced, and every caller still waiting on it gets an error of its own — never
//! another caller's result.
//!
//! A statement whose text says SELECT but whose functions change session state is not detected
//! by its tag. A change the server reports (ParameterStatus: TimeZone, DateStyle, ...) is: a
//! statement that caused one in a solo run is never shared, and one that causes one on a shared
//! connection closes it (its caller is told) and is never shared again. Unreported changes
//! (session advisory locks, `SELECT .. INTO TEMP`, `search_path` on PostgreSQL 15) are not:
//! such statements belong on [`PsqlPool::connection`].

use std::collections::HashMap;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::task::Poll;

use pgwire_lite::{QueryResult, ToSql, TransactionStatus};
use tokio::sync::Semaphore;

use crate::error::{Error, Result, TimeoutKind};
use crate::guard::PooledConnection;
use crate::pool::PsqlPool;

mod line;

use line::{Answer, Call, Enqueued, MuxConn};

/// Callers queued or in flight per multiplexed connection (times `max_db_pool_size` for the
/// pool): pgbench's `\startpipeline` gets its best numbers at 8–16 statements in flight per
/// connection; 64 leaves room for bursts while bounding what one connection's line holds.
pub(crate) const QUEUE_PER_CONNECTION: usize = 64;

/// Another connection is borrowed for sharing only when every shared one has this many
/// requests in line: on few cores, deeper lines on fewer connections is what makes pipelining
/// pay, while a line this short keeps the wait behind a slow statement short. Statements that
/// take long belong on [`PsqlPool::connection`] or a pool without multiplexing.
///
/// With one Sync per statement, 4: the server flushes each statement's answer anyway, and
/// deeper lines only lengthen the wait (64 callers over 8 connections: the same rate at 16,
/// p99 twice as long; at 32, a quarter less and p99 5 ms).
const GROW_AT_DEPTH: usize = 4;

/// [`GROW_AT_DEPTH`] with one Sync per batch, once two connections are shared: a batch is one
/// server wake-up, one read and one send, so bigger batches cost the server and the client
/// less per statement. Measured with 64 callers over a pool of 8 on 2 cores (pgbench-load,
/// one run each): 4 per line, 0.74-0.77x pgbench's `\startpipeline` script (8 x 8); 8, 0.89x;
/// 16, 0.85-1.0x; 32, 0.98x; with the shortest-line picking of [`Multiplexer::choose`], 16
/// measured 0.92-0.98x in two passes. The first two connections still fill only to
/// [`GROW_AT_DEPTH`]: a connection answers one batch at a time, so a single line leaves the
/// server idle while its callers queue the next batch (8 callers: 49k statements/s on one
/// line of 8, 106k on two lines of 4).
const GROW_AT_DEPTH_BATCHES: usize = 16;

/// Statement texts remembered as safe (or never) to multiplex; beyond this, new texts take the normal
/// path (the set must not grow with every distinct SQL string a program makes up).
const MAX_SAFE_STATEMENTS: usize = 4096;

/// Command tags of statements that leave no session or transaction state behind.
const SAFE_TAGS: &[&str] = &["SELECT", "INSERT", "UPDATE", "DELETE", "MERGE"];

/// Which multiplexed statements share one Sync with the others written with them
/// ([`PsqlPoolBuilder::multiplexing_batches`](crate::PsqlPoolBuilder::multiplexing_batches)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Batching {
    /// None: a Sync per statement.
    Never,
    /// Reads ([`Verdict::Read`]); writes keep a Sync each. The default.
    Reads,
    /// Every statement.
    All,
}

/// What a solo run showed about a statement text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// Never shared: one of its runs changed a setting.
    Never,
    /// Shared, with a Sync of its own unless every statement is batched: it writes (or locks
    /// rows), so in a batch it would hold its locks until the batch ends.
    Write,
    /// Shared, and batched with the others: tag SELECT and no row-locking clause.
    Read,
}

/// Whether a SELECT's text asks for row locks (`FOR UPDATE`, `FOR NO KEY UPDATE`, `FOR SHARE`,
/// `FOR KEY SHARE`). Word-based and conservative: the words inside a string literal or a
/// comment count too, which only costs that statement its batching.
fn locks_rows(sql: &str) -> bool {
    let mut words = sql
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty());
    while let Some(w) = words.next() {
        if !w.eq_ignore_ascii_case("FOR") {
            continue;
        }
        let mut next = words.clone();
        let lock = match next.next() {
            Some(w) if w.eq_ignore_ascii_case("UPDATE") || w.eq_ignore_ascii_case("SHARE") => true,
            Some(w) if w.eq_ignore_ascii_case("NO") || w.eq_ignore_ascii_case("KEY") => next
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case("KEY") || w.eq_ignore_ascii_case("SHARE")),
            _ => false,
        };
        if lock {
            return true;
        }
    }
    false
}

/// The multiplexer of one pool.
pub(crate) struct Multiplexer {
    conns: Mutex<Vec<Arc<MuxConn>>>,
    /// Statement texts judged by a solo run. [`Verdict::Never`] sticks: pooled sessions keep
    /// settings, so a later run that changes nothing proves nothing.
    statements: RwLock<HashMap<Box<str>, Verdict>>,
    /// The bounded queue: a caller takes a permit before it queues (first come, first served,
    /// at most the pool's wait timeout).
    permits: Semaphore,
    /// One caller at a time borrows a new connection for multiplexing.
    growing: AtomicBool,
    /// The pool is closing: shared connections go back as they empty.
    closed: AtomicBool,
    /// Shared connections that take no new requests and go back to the pool once empty.
    draining: AtomicUsize,
    /// Whole-connection borrowers in `connection()` now: while any is, no connection is
    /// borrowed for sharing and shared ones drain.
    wanted: AtomicUsize,
    /// Callers waiting for a slot to share (none was there): not borrowers that shared
    /// connections should drain for.
    mux_waiting: AtomicUsize,
    /// Wakes callers waiting for a slot when another caller starts sharing a connection.
    shared_ready: tokio::sync::Notify,
    /// The pool's `max_db_pool_size`, changed by [`resize`](Self::resize).
    max_conns: AtomicUsize,
    /// Queue permits a shrink could not take back at once (they were held): forgotten as their
    /// callers give them back.
    permits_owed: AtomicUsize,
    /// Which statements are batched.
    batching: Batching,
}

impl Multiplexer {
    pub(crate) fn new(max_conns: usize, batching: Batching) -> Multiplexer {
        Multiplexer {
            conns: Mutex::new(Vec::new()),
            statements: RwLock::new(HashMap::new()),
            permits: Semaphore::new(max_conns * QUEUE_PER_CONNECTION),
            growing: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            draining: AtomicUsize::new(0),
            wanted: AtomicUsize::new(0),
            mux_waiting: AtomicUsize::new(0),
            shared_ready: tokio::sync::Notify::new(),
            max_conns: AtomicUsize::new(max_conns),
            permits_owed: AtomicUsize::new(0),
            batching,
        }
    }

    /// Counts a whole-connection borrower until the guard drops.
    pub(crate) fn want_whole(&self) -> WantGuard<'_> {
        self.wanted.fetch_add(1, Ordering::AcqRel);
        CountDown(&self.wanted)
    }

    /// Follows the pool to a new `max_db_pool_size`: the queue bound becomes
    /// `max × QUEUE_PER_CONNECTION` (permits held by callers now are taken back as they return),
    /// and when shrinking, the shared connections beyond the new size stop taking requests and
    /// go back to the pool (which closes the surplus) once their lines are empty.
    pub(crate) fn resize(&self, max_conns: usize) {
        {
            // The set's lock also keeps two resizes from interleaving.
            let conns = self.lock_conns();
            let old = self.max_conns.swap(max_conns, Ordering::AcqRel);
            if max_conns > old {
                let grow = (max_conns - old) * QUEUE_PER_CONNECTION;
                let owed = self
                    .permits_owed
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                        Some(n.saturating_sub(grow))
                    })
                    .unwrap_or(0);
                self.permits.add_permits(grow - owed.min(grow));
            } else if max_conns < old {
                let shrink = (old - max_conns) * QUEUE_PER_CONNECTION;
                let forgotten = self.permits.forget_permits(shrink);
                self.permits_owed
                    .fetch_add(shrink - forgotten, Ordering::AcqRel);
                let mut open: Vec<&Arc<MuxConn>> = conns
                    .iter()
                    .filter(|c| c.open.load(Ordering::Acquire))
                    .collect();
                open.sort_by_key(|c| c.queued.load(Ordering::Relaxed));
                let excess = open.len().saturating_sub(max_conns);
                for c in open.into_iter().take(excess) {
                    c.close();
                }
            }
        }
        // Quiescent surplus connections go back now; the others with their last caller.
        self.rebalance(false, false);
    }

    /// `Some` when `sql` has shown that it may be multiplexed, with whether it is batched
    /// with the others written with it.
    pub(crate) fn share_kind(&self, sql: &str) -> Option<bool> {
        let verdict = *self
            .statements
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(sql)?;
        match (verdict, self.batching) {
            (Verdict::Never, _) => None,
            (_, Batching::All) | (Verdict::Read, Batching::Reads) => Some(true),
            _ => Some(false),
        }
    }

    /// Never shares `sql` again: a run of it changed a session setting.
    fn deny(&self, sql: &str) {
        let mut statements = self
            .statements
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(verdict) = statements.get_mut(sql) {
            *verdict = Verdict::Never;
        } else if statements.len() < MAX_SAFE_STATEMENTS {
            statements.insert(sql.into(), Verdict::Never);
        }
    }

    /// Remembers `sql` as safe when its solo run proved it: a safe command tag, an idle
    /// session afterwards, and no setting the server reports changed meanwhile.
    pub(crate) fn learn(
        &self,
        sql: &str,
        result: &QueryResult,
        status: TransactionStatus,
        settings_changed: bool,
    ) {
        let verb = result.command_tag().and_then(|t| t.split(' ').next());
        let tag_ok = verb.is_some_and(|verb| SAFE_TAGS.contains(&verb));
        if settings_changed {
            self.deny(sql);
            return;
        }
        if !tag_ok || status != TransactionStatus::Idle {
            return;
        }
        let verdict = if verb == Some("SELECT") && !locks_rows(sql) {
            Verdict::Read
        } else {
            Verdict::Write
        };
        let mut statements = self
            .statements
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if !statements.contains_key(sql) && statements.len() < MAX_SAFE_STATEMENTS {
            statements.insert(sql.into(), verdict);
        }
    }

    /// Requests queued or in flight on multiplexed connections.
    pub(crate) fn queued(&self) -> usize {
        self.lock_conns()
            .iter()
            .map(|c| c.queued.load(Ordering::Relaxed))
            .sum()
    }

    /// Connections held for multiplexing.
    pub(crate) fn connections(&self) -> usize {
        self.lock_conns().len()
    }

    fn lock_conns(&self) -> MutexGuard<'_, Vec<Arc<MuxConn>>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands shared connections back to the pool: when whole-connection borrowers wait, one
    /// connection stops taking new requests (draining) and goes back once its line is empty;
    /// with `all` (the pool is closing), every one does.
    pub(crate) fn rebalance(&self, want: bool, all: bool) {
        let mut released = Vec::new();
        {
            let mut conns = self.lock_conns();
            if all {
                self.closed.store(true, Ordering::Release);
                for c in conns.iter() {
                    c.close();
                }
            } else if want && conns.iter().all(|c| c.open.load(Ordering::Acquire)) {
                if let Some(c) = conns
                    .iter()
                    .min_by_key(|c| c.queued.load(Ordering::Relaxed))
                {
                    c.close();
                }
            }
            conns.retain(|c| {
                let mut st = c.lock();
                if st.is_dead() || (st.closing && st.is_quiescent()) {
                    released.extend(st.conn.take());
                    false
                } else {
                    true
                }
            });
            let draining = conns
                .iter()
                .filter(|c| !c.open.load(Ordering::Acquire))
                .count();
            self.draining.store(draining, Ordering::Relaxed);
        }
        // Given back outside the lock: a waiting borrower takes it at once.
        drop(released);
    }

    /// Runs `sql` multiplexed. `None`: it could not be (no connection to share, a request too
    /// large, values the unnamed statement cannot take): the caller takes the normal path.
    pub(crate) async fn execute(
        &self,
        pool: &PsqlPool,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        unnamed: bool,
        batch: bool,
    ) -> Option<Result<QueryResult>> {
        // A free place is taken without a timer (no clock read, no timer entry); only a
        // caller that has to wait arms the pool's wait timeout.
        let permit = match self.permits.try_acquire() {
            Ok(p) => p,
            Err(tokio::sync::TryAcquireError::Closed) => return Some(Err(Error::Closed)),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                match tokio::time::timeout(pool.wait_timeout(), self.permits.acquire()).await {
                    Ok(Ok(p)) => p,
                    Ok(Err(_)) => return Some(Err(Error::Closed)),
                    Err(_) => return Some(Err(Error::Timeout(TimeoutKind::Wait))),
                }
            }
        };
        let permit = QueuePlace {
            permit: Some(permit),
            owed: &self.permits_owed,
        };
        let mut conn = match self.pick(pool, batch).await {
            Ok(Some(c)) => c,
            Ok(None) => return None,
            Err(e) => return Some(Err(e)),
        };
        // Three rounds at most, four with a Parse: the first may only prepare the statement on
        // this connection, and a statement whose batch failed because of another one runs
        // again alone.
        let mut alone = false;
        let mut moved = 0;
        let mut rounds = 0;
        while rounds < 4 {
            rounds += 1;
            let (seq, prepare) = match conn.enqueue(sql, params, unnamed, batch && !alone) {
                Enqueued::Queued { seq, prepare } => (seq, prepare),
                Enqueued::Failed(e) => return Some(Err(e)),
                Enqueued::NotHere if moved < 2 && !conn.open.load(Ordering::Acquire) => {
                    // The line began draining (a whole-connection borrower wants its slot) or
                    // failed after this caller picked it: queue on another one. Taking the
                    // normal path instead would make this caller a whole-connection borrower
                    // too, and drain the next line: under load, callers caught by one drain
                    // cascaded until no connection was shared.
                    moved += 1;
                    rounds -= 1;
                    self.after_call(pool, &conn);
                    conn = match self.pick(pool, batch).await {
                        Ok(Some(c)) => c,
                        Ok(None) => return None,
                        Err(e) => return Some(Err(e)),
                    };
                    continue;
                }
                Enqueued::NotHere => break,
            };
            let answer = Call::new(conn.clone(), seq).wait().await;
            match answer {
                Answer::Retry => alone = true,
                Answer::Done(Ok(_)) if prepare => {}
                Answer::Done(Err(Error::Backend(e))) if e.is_stale_statement() => {
                    // The table changed under the cached statement; nothing ran.
                    conn.invalidate(sql);
                    break;
                }
                Answer::Done(r) => {
                    if r.is_err() && conn.changed_settings(seq) {
                        self.deny(sql);
                    }
                    drop(permit);
                    self.after_call(pool, &conn);
                    return Some(r);
                }
            }
        }
        drop(permit);
        self.after_call(pool, &conn);
        None
    }

    /// The shared connection to queue on ([`choose`](Self::choose)), borrowing a new one from the pool while the pool
    /// has a free slot and every shared one is busy.
    async fn pick(&self, pool: &PsqlPool, batch: bool) -> Result<Option<Arc<MuxConn>>> {
        let (best, n) = self.choose(batch);
        let deep = grow_at(n, batch);
        let busy = best.as_ref().is_none_or(|c| {
            c.queued.load(Ordering::Relaxed) >= deep || c.large.load(Ordering::Relaxed)
        });
        let wanted = self.wanted.load(Ordering::Acquire) > 0;
        if busy
            && !wanted
            && n < self.max_conns.load(Ordering::Acquire)
            && !self.growing.swap(true, Ordering::AcqRel)
        {
            // Reset however this ends: a caller cancelled here must not stop all growth.
            let _growing = ResetOnDrop(&self.growing);
            if let Ok(c) = pool.connection_to_share().await {
                if let Some(mc) = self.share(c) {
                    return Ok(Some(mc));
                }
            }
        }
        if best.is_some() {
            return Ok(best);
        }
        // Nothing to share (none yet, or every one draining): wait for a connection like any
        // borrower. Going to the normal path instead would make a burst of callers take every
        // slot one statement at a time, and keep multiplexing from ever starting.
        self.mux_waiting.fetch_add(1, Ordering::AcqRel);
        let _waiting = CountDown(&self.mux_waiting);
        loop {
            // Registered before looking, so a connection shared meanwhile is not missed.
            let mut shared = std::pin::pin!(self.shared_ready.notified());
            shared.as_mut().enable();
            if let (Some(best), _) = self.choose(batch) {
                return Ok(Some(best));
            }
            let got = {
                let mut slot = std::pin::pin!(pool.connection_to_share_waiting());
                poll_fn(|cx| {
                    if let Poll::Ready(r) = slot.as_mut().poll(cx) {
                        return Poll::Ready(Some(r));
                    }
                    // Another caller started sharing one: use it rather than wait for a slot.
                    shared.as_mut().poll(cx).map(|()| None)
                })
                .await
            };
            match got {
                Some(Ok(c)) => return Ok(self.share(c)),
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
    }

    /// The open shared connection to queue on, avoiding one that reads a large result, and
    /// how many connections are shared. For a statement with a Sync of its own: the fullest
    /// line shorter than [`GROW_AT_DEPTH`] (fill first), else the shortest line. For a batched
    /// one (`batch`): the shortest line.
    ///
    /// One Sync per statement: filling one line before the next keeps the callers that come
    /// back together (woken by one read) together: their requests leave in one write and
    /// their responses come back in one read. Spreading them over the shortest lines instead
    /// splits every batch between the connections, and each half costs the server and the
    /// client a send and a wake-up.
    ///
    /// One Sync per batch: a connection takes its next batch only once the previous one is
    /// answered, so the callers it just answered belong back on it (its line is now the
    /// shortest) while the others' batches are on the server. Filling the fullest line
    /// instead would pile them behind a batch still in flight and leave their own
    /// connection idle (8 callers over two lines: 55k statements/s against 106k).
    fn choose(&self, batch: bool) -> (Option<Arc<MuxConn>>, usize) {
        let conns = self.lock_conns();
        let open = |c: &&Arc<MuxConn>| c.open.load(Ordering::Acquire);
        let shortest = || {
            conns.iter().filter(open).min_by_key(|c| {
                (
                    c.large.load(Ordering::Relaxed),
                    c.queued.load(Ordering::Relaxed),
                )
            })
        };
        let best = if batch {
            shortest()
        } else {
            conns
                .iter()
                .filter(|c| {
                    open(c)
                        && !c.large.load(Ordering::Relaxed)
                        && c.queued.load(Ordering::Relaxed) < GROW_AT_DEPTH
                })
                .max_by_key(|c| c.queued.load(Ordering::Relaxed))
                .or_else(shortest)
        };
        (best.cloned(), conns.len())
    }

    /// Starts sharing a freshly borrowed connection (it must be idle and clean: a fresh guard
    /// has no rollback of its own pending).
    fn share(&self, c: PooledConnection) -> Option<Arc<MuxConn>> {
        if !c.mux_ready() {
            return None;
        }
        let mc = Arc::new(MuxConn::new(c, self.batching != Batching::Never));
        self.lock_conns().push(mc.clone());
        self.shared_ready.notify_waiters();
        Some(mc)
    }

    /// After a call: a connection that failed leaves the set; when whole-connection borrowers
    /// wait, a quiescent shared connection goes back to the pool.
    fn after_call(&self, pool: &PsqlPool, conn: &Arc<MuxConn>) {
        // Every path that fails a line or takes its connection clears `open` first (closing
        // does too), so an open line is alive without taking its lock.
        let dead = !conn.open.load(Ordering::Acquire) && conn.lock().is_dead();
        if dead {
            self.lock_conns().retain(|c| !Arc::ptr_eq(c, conn));
            // Closed (it is broken) and its slot freed, outside the lock.
            let taken = conn.lock().conn.take();
            drop(taken);
        }
        // Borrowers waiting for a slot, less the multiplexer's own callers waiting for one.
        let others = pool
            .borrowers_waiting()
            .saturating_sub(self.mux_waiting.load(Ordering::Acquire));
        let want = others > 0 || self.wanted.load(Ordering::Acquire) > 0;
        let all = self.closed.load(Ordering::Acquire);
        if want || all || self.draining.load(Ordering::Relaxed) > 0 {
            self.rebalance(want, all);
        }
    }
}

/// How deep every line gets before another connection is shared, with `lines` shared now,
/// for a batched statement or not ([`GROW_AT_DEPTH`], [`GROW_AT_DEPTH_BATCHES`]).
fn grow_at(lines: usize, batch: bool) -> usize {
    if batch && lines >= 2 {
        GROW_AT_DEPTH_BATCHES
    } else {
        GROW_AT_DEPTH
    }
}

/// A caller's place in the bounded queue: its permit goes back when dropped (however the call
/// ends), or is forgotten while a shrink still owes permits.
struct QueuePlace<'a> {
    permit: Option<tokio::sync::SemaphorePermit<'a>>,
    owed: &'a AtomicUsize,
}

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.permit.take() {
            let owed = self
                .owed
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok();
            if owed {
                p.forget();
            }
        }
    }
}

/// Clears a flag when dropped.
struct ResetOnDrop<'a>(&'a AtomicBool);

impl Drop for ResetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// A whole-connection borrower in `connection()`; see [`Multiplexer::want_whole`].
pub(crate) type WantGuard<'a> = CountDown<'a>;

/// Decrements a counter when dropped.
pub(crate) struct CountDown<'a>(&'a AtomicUsize);

impl Drop for CountDown<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::locks_rows;

    #[test]
    fn row_locking_clauses_are_found_in_any_case_and_spacing() {
        for sql in [
            "SELECT * FROM t WHERE id = $1 FOR UPDATE",
            "select * from t for no key update skip locked",
            "SELECT * FROM t FOR SHARE",
            "SELECT * FROM t\nFOR\tKEY SHARE NOWAIT",
            "SELECT * FROM t FOR UPDATE OF t",
        ] {
            assert!(locks_rows(sql), "{sql}");
        }
        for sql in [
            "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
            "SELECT format FROM updates",
            "SELECT for_update FROM t",
            "SELECT $1::int8",
            "SELECT * FROM t FOR",
        ] {
            assert!(!locks_rows(sql), "{sql}");
        }
    }
}
