//! Chaos suite, client side (tests/FAULTS.md, C1–C13 and P1–P8): cancelled
//! futures at every await point, panics, misuse of the pool, thundering herds, and protocol
//! edge cases, all against the real shared cluster. Every pool test ends with
//! `common::assert_recovered` (or, for a closed pool, with the equivalent checks of a closed
//! pool).

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use common::{
    admin, assert_recovered, backend_pids, backends, pool_builder, run_case, started, within,
};
use pg_harness::{Rng, cluster, unique_name};
use pool_core::{
    Error, PooledConnection, PsqlPool, RecyclingMethod, TimeoutKind, TransactionStatus,
};

const BUDGET: Duration = Duration::from_secs(2);

// ------------------------------------------------------------------------------------------
// Tools
// ------------------------------------------------------------------------------------------

/// tokio-postgres' `Cancellable`: forwards polls to the inner future and, after it has said
/// `Pending` `polls_left + 1` times, completes with `None` so the caller drops it right there.
struct Cancellable<F> {
    fut: Pin<Box<F>>,
    polls_left: usize,
}

impl<F: Future> Future for Cancellable<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.fut.as_mut().poll(cx) {
            Poll::Ready(r) => Poll::Ready(Some(r)),
            Poll::Pending if self.polls_left == 0 => Poll::Ready(None),
            Poll::Pending => {
                self.polls_left -= 1;
                Poll::Pending
            }
        }
    }
}

/// Where a future is cut: after `n` Pendings, or by `tokio::time::timeout` after `k` µs.
#[derive(Debug, Clone, Copy)]
enum Cut {
    Polls(usize),
    Micros(u64),
}

impl Cut {
    /// Runs `fut` until the cut; `None` means it was dropped before completing.
    async fn run<F: Future>(self, fut: F) -> Option<F::Output> {
        match self {
            Cut::Polls(n) => {
                Cancellable {
                    fut: Box::pin(fut),
                    polls_left: n,
                }
                .await
            }
            Cut::Micros(k) => tokio::time::timeout(Duration::from_micros(k), fut)
                .await
                .ok(),
        }
    }
}

/// Waits until no slot is in use and nobody waits: a connection given back dirty is reset by a
/// background task that holds its slot meanwhile.
async fn quiesce(pool: &PsqlPool) {
    let start = Instant::now();
    loop {
        let s = pool.status();
        if s.in_use == 0 && s.waiting == 0 {
            assert_eq!(s.idle + s.in_use, s.size, "{s:?}");
            assert!(s.size <= s.max_size, "{s:?}");
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "slots still in use: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The connection is ready for the next borrower, and a query on it returns exactly its own
/// result: one row, one column, `marker` (no leftover rows, results or errors of an earlier
/// request).
async fn assert_clean(c: &mut PooledConnection, marker: i32, context: &str) {
    assert!(!c.in_transaction(), "{context}: in a transaction");
    assert_eq!(c.transaction_status(), TransactionStatus::Idle, "{context}");
    assert!(!c.has_pending(), "{context}: responses pending");
    assert!(!c.is_broken(), "{context}: broken connection handed out");
    assert_answers(c, marker, context).await;
}

/// A query on `c` returns exactly its own result, and leaves `c` idle outside any transaction.
/// For a borrower that goes on after cutting one of its own calls: what the cut call left
/// (owed responses, a transaction its dropped guard opened) is settled first.
async fn assert_answers(c: &mut PooledConnection, marker: i32, context: &str) {
    let r = c
        .execute("SELECT $1::int4 AS marker", &[&marker])
        .await
        .unwrap_or_else(|e| panic!("{context}: next borrower's query failed: {e}"));
    assert_eq!(r.columns().len(), 1, "{context}");
    assert_eq!(r.columns()[0].name(), "marker", "{context}");
    assert_eq!(r.rows().len(), 1, "{context}: leftover rows");
    assert_eq!(r.rows()[0].get::<_, i32>(0), marker, "{context}");
    let s = c
        .simple_query("SELECT 1")
        .await
        .unwrap_or_else(|e| panic!("{context}: next borrower's SELECT 1 failed: {e}"));
    assert_eq!(s.len(), 1, "{context}: leftover results");
    assert_eq!(s[0].rows().len(), 1, "{context}");
    assert_eq!(s[0].rows()[0].raw(0).unwrap(), Some(&b"1"[..]), "{context}");
    assert!(c.is_idle(), "{context}");
}

/// Waits for background resets, then borrows every slot of the pool (so whichever connection
/// the fault touched is among them) and checks each one is clean.
async fn assert_next_borrowers_clean(pool: &PsqlPool, marker: i32, context: &str) {
    quiesce(pool).await;
    let max = pool.status().max_size;
    let mut held = Vec::with_capacity(max);
    for _ in 0..max {
        held.push(
            pool.connection()
                .await
                .unwrap_or_else(|e| panic!("{context}: borrow after the fault: {e}")),
        );
    }
    for c in &mut held {
        assert_clean(c, marker, context).await;
    }
    drop(held);
    quiesce(pool).await;
}

fn table(prefix: &str) -> String {
    let t = unique_name(prefix);
    cluster().psql(&format!("CREATE TABLE {t} (id int, note text)"));
    t
}

async fn count(pool: &PsqlPool, sql: &str) -> i64 {
    pool.execute(sql, &[]).await.unwrap().rows()[0].get::<_, i64>(0)
}

/// The state of backend `pid` in pg_stat_activity, `None` once it is gone.
async fn backend_state(pid: i32) -> Option<(String, String)> {
    let mut a = admin().await;
    a.query_opt(
        "SELECT coalesce(state, ''), query FROM pg_stat_activity WHERE pid = $1",
        &[&pid],
    )
    .await
    .unwrap()
    .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
}

/// Polls until `pid` has left pg_stat_activity (the server closed its side too).
async fn wait_backend_gone(pid: i32, limit: Duration) {
    let start = Instant::now();
    while backend_state(pid).await.is_some() {
        assert!(
            start.elapsed() < limit,
            "backend {pid} still exists after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The checks of tests/FAULTS.md A1, A2 and A4 for a pool that was closed: nothing in use or
/// waiting, no connection kept, every borrow refused at once, and the server holds no backend
/// for `app` any more.
async fn assert_closed_clean(pool: &PsqlPool, app: &str) {
    let s = pool.status();
    assert_eq!((s.in_use, s.waiting, s.idle, s.size), (0, 0, 0, 0), "{s:?}");
    let err = within(
        Duration::ZERO,
        "borrow from a closed pool",
        pool.connection(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Closed), "{err:?}");
    let start = Instant::now();
    loop {
        let n = backends(app).await;
        if n == 0 {
            break;
        }
        assert!(
            start.elapsed() < BUDGET,
            "{n} backends of {app} survive the closed pool"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ------------------------------------------------------------------------------------------
// C1 / C2: a future dropped at every await point
// ------------------------------------------------------------------------------------------

/// ~1 MB of rows that the server produces in 20 bursts 1 ms apart, so reading the answer
/// has dozens of await points spread over ~30 ms, where a cut can land.
const ROWS_SQL: &str = "SELECT g, repeat('y', 500) AS pad FROM generate_series(1, $1::int4) g \
    WHERE g % 100 <> 0 OR pg_sleep(0.001) IS NOT NULL";
const ROWS_SQL_SIMPLE: &str = "SELECT g, repeat('y', 500) AS pad FROM generate_series(1, 2000) g \
    WHERE g % 100 <> 0 OR pg_sleep(0.001) IS NOT NULL";
const ROWS: i32 = 2000;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    PoolExecute,
    PoolExecuteUnprepared,
    ConnExecute,
    ConnSimpleQuery,
    ConnTransaction,
    TransactionCommit,
    ConnCommit,
    PoolConnection,
}

/// One attempt at `op`, cut at `cut`. Returns whether it completed (its result is checked).
/// `i` tags rows inserted by the commit variants; `reuse` keeps using the same connection
/// after the cut (its next operation drains what the dropped one left), else it goes back.
async fn attempt(pool: &PsqlPool, op: Op, cut: Cut, t: &str, i: i32, reuse: bool) -> bool {
    let ctx = format!("{op:?} cut at {cut:?}");
    let check_rows = |r: pool_core::QueryResult| {
        assert_eq!(r.rows().len(), ROWS as usize, "{ctx}");
        assert_eq!(r.rows()[ROWS as usize - 1].get::<_, i32>(0), ROWS, "{ctx}");
    };
    match op {
        Op::PoolExecute => match cut.run(pool.execute(ROWS_SQL, &[&ROWS])).await {
            Some(r) => {
                check_rows(r.unwrap());
                true
            }
            None => false,
        },
        Op::PoolExecuteUnprepared => {
            match cut.run(pool.execute_unprepared(ROWS_SQL, &[&ROWS])).await {
                Some(r) => {
                    check_rows(r.unwrap());
                    true
                }
                None => false,
            }
        }
        Op::PoolConnection => match cut.run(pool.connection()).await {
            Some(c) => {
                assert_clean(&mut c.unwrap(), i, &ctx).await;
                true
            }
            None => false,
        },
        Op::ConnExecute | Op::ConnSimpleQuery | Op::ConnTransaction => {
            let mut c = pool.connection().await.unwrap();
            let done = match op {
                Op::ConnExecute => match cut.run(c.execute(ROWS_SQL, &[&ROWS])).await {
                    Some(r) => {
                        check_rows(r.unwrap());
                        true
                    }
                    None => false,
                },
                Op::ConnSimpleQuery => match cut.run(c.simple_query(ROWS_SQL_SIMPLE)).await {
                    Some(r) => {
                        let r = r.unwrap();
                        assert_eq!(r.len(), 1, "{ctx}");
                        assert_eq!(r[0].rows().len(), ROWS as usize, "{ctx}");
                        true
                    }
                    None => false,
                },
                _ => match cut.run(c.transaction()).await {
                    // Dropped uncommitted: rolled back at the next use or on return.
                    Some(tx) => {
                        let _dropped_uncommitted = tx.unwrap();
                        true
                    }
                    None => false,
                },
            };
            if reuse {
                // The same borrower goes on: it must get its own answer, outside any
                // transaction the dropped call may have opened.
                assert_answers(&mut c, i, &format!("{ctx}, same borrower")).await;
            }
            done
        }
        Op::TransactionCommit => {
            let mut c = pool.connection().await.unwrap();
            let mut tx = c.transaction().await.unwrap();
            let ins = format!("INSERT INTO {t} (id) VALUES ($1)");
            tx.execute(&ins, &[&i]).await.unwrap();
            let done = match cut.run(tx.commit()).await {
                Some(r) => {
                    r.unwrap();
                    true
                }
                None => false,
            };
            drop(c);
            check_commit_outcome(pool, t, i, done, &ctx).await;
            done
        }
        Op::ConnCommit => {
            let mut c = pool.connection().await.unwrap();
            c.begin().await.unwrap();
            let ins = format!("INSERT INTO {t} (id) VALUES ($1)");
            c.execute(&ins, &[&i]).await.unwrap();
            let done = match cut.run(c.commit()).await {
                Some(r) => {
                    r.unwrap();
                    true
                }
                None => false,
            };
            drop(c);
            check_commit_outcome(pool, t, i, done, &ctx).await;
            done
        }
    }
}

/// A completed COMMIT is durable; a dropped one is either committed or rolled back, never left
/// open (A6 in tests/FAULTS.md: its outcome is unknown to the caller, and it is never retried).
async fn check_commit_outcome(pool: &PsqlPool, t: &str, i: i32, done: bool, ctx: &str) {
    quiesce(pool).await;
    let n = count(pool, &format!("SELECT count(*) FROM {t} WHERE id = {i}")).await;
    if done {
        assert_eq!(n, 1, "{ctx}: a completed COMMIT lost its row");
    } else {
        assert!(n == 0 || n == 1, "{ctx}: {n} rows");
    }
}

const ROUNDS: usize = 30;

/// C1: cut `op` after N = 0, 1, 2, ... Pendings until it completes, then at 30 random
/// `timeout(k µs)` (seeded); after every cut the next borrowers get clean connections.
async fn drop_at_every_await_point(op: Op, method: RecyclingMethod, seed: u64) {
    let app = unique_name(&format!("c1_{op:?}"));
    let pool = started(pool_builder(&app, 2).conn_recycling_method(method)).await;
    let t = table("c1");
    let mut marker = 0;
    let mut n = 0;
    let mut took;
    loop {
        marker += 1;
        let start = Instant::now();
        let done = attempt(&pool, op, Cut::Polls(n), &t, marker, n % 2 == 0).await;
        took = start.elapsed();
        assert_next_borrowers_clean(&pool, marker, &format!("{op:?} after {n} polls")).await;
        if done {
            break;
        }
        n += 1;
        assert!(n < 2000, "{op:?} never completed");
    }
    let mut rng = Rng::new(seed);
    let mut cut_short = 0;
    // Timeouts spread over the whole call (tokio's timer has millisecond resolution, so this
    // mostly moves the cut between the reads of the answer).
    let range = (took.as_micros() as u64 * 3 / 2).max(2000);
    for round in 0..ROUNDS {
        marker += 1;
        let k = rng.below(range);
        let done = attempt(&pool, op, Cut::Micros(k), &t, marker, round % 2 == 0).await;
        cut_short += usize::from(!done);
        let ctx = format!("{op:?} after timeout({k} µs), seed {seed}");
        assert_next_borrowers_clean(&pool, marker, &ctx).await;
    }
    eprintln!(
        "{op:?}: completes after {n} Pendings (up to {took:?}); {cut_short}/{ROUNDS} random timeouts cut it"
    );
    assert_recovered(&pool, &app, BUDGET).await;
}

/// C1 for every operation that can be cut, as one table: the operation, the recycling method
/// its connection goes back through, and the seed of the random timeouts. The cases run one
/// after another (their cuts are timed, so they do not share the runtime); `pool.connection()`
/// runs with `Clean` (reset SQL) and `Verified`, whose checkouts do I/O. A failing case is
/// named by all three.
#[tokio::test]
async fn c1_dropped_at_every_await_point() {
    let cases = [
        (Op::PoolExecute, RecyclingMethod::Fast, 11),
        (Op::PoolExecuteUnprepared, RecyclingMethod::Fast, 12),
        (Op::ConnExecute, RecyclingMethod::Fast, 13),
        (Op::ConnSimpleQuery, RecyclingMethod::Fast, 14),
        (Op::TransactionCommit, RecyclingMethod::Fast, 16),
        (Op::ConnCommit, RecyclingMethod::Fast, 17),
        (Op::PoolConnection, RecyclingMethod::Clean, 18),
        (Op::PoolConnection, RecyclingMethod::Verified, 19),
    ];
    for (op, method, seed) in cases {
        let name = format!("C1 {op:?} with {method:?}, seed {seed}");
        run_case(&name, drop_at_every_await_point(op, method, seed)).await;
    }
}

/// C2 (sqlx #4393): a cancelled BEGIN never leaves the next borrower inside a transaction.
#[tokio::test]
async fn c2_transaction_begin_dropped_at_every_await_point() {
    drop_at_every_await_point(Op::ConnTransaction, RecyclingMethod::Fast, 15).await;
}

/// `pool.connection()` cut while it opens a new connection (TCP, startup, SCRAM): the half-made
/// connection is dropped, the slot freed, `size` not incremented.
#[tokio::test]
async fn c1_pool_connection_dropped_at_every_await_point_during_create() {
    let app = unique_name("c1_create");
    let pool = started(pool_builder(&app, 3)).await;
    let mut rng = Rng::new(20);
    let mut n = 0;
    let mut micros = 0;
    loop {
        // Two slots held (one reused, one opened), and no idle connection: the next borrow
        // must open one. A smaller pool for a moment closes the idle one.
        let held = [
            pool.connection().await.unwrap(),
            pool.connection().await.unwrap(),
        ];
        pool.resize(2).unwrap();
        pool.resize(3).unwrap();
        assert_eq!(pool.status().idle, 0);
        let cut = if n < usize::MAX {
            Cut::Polls(n)
        } else {
            Cut::Micros(rng.below(20_000))
        };
        let got = cut.run(pool.connection()).await;
        let s = pool.status();
        let done = match got {
            Some(c) => {
                let mut c = c.unwrap();
                assert_clean(&mut c, 1, "opened").await;
                true
            }
            None => {
                assert_eq!(
                    (s.size, s.in_use, s.waiting),
                    (2, 2, 0),
                    "{cut:?}: half-made connection counted: {s:?}"
                );
                false
            }
        };
        drop(held);
        assert_next_borrowers_clean(&pool, 2, &format!("create cut at {cut:?}")).await;
        if n == usize::MAX {
            micros += 1;
            if micros == 15 {
                break;
            }
        } else if done {
            eprintln!("create completes after {n} Pendings");
            n = usize::MAX;
        } else {
            n += 1;
            assert!(n < 500);
        }
    }
    assert_recovered(&pool, &app, BUDGET).await;
}

// ------------------------------------------------------------------------------------------
// C3: dropped mid-write
// ------------------------------------------------------------------------------------------

/// C3: a 64 MB bytea parameter cut while it is being written leaves a partial message on the
/// wire: the connection is closed (never reused), its backend goes away, the slot is freed.
/// (64 MB, not less: with the server draining loopback on the other core, a 10 MB write
/// sometimes completes within the single poll of `Cut::Polls(0)`.)
#[tokio::test]
async fn c3_future_dropped_mid_write_closes_the_connection() {
    let app = unique_name("c3");
    let pool = started(pool_builder(&app, 2)).await;
    let sql = "SELECT length($1::bytea)";
    let big = vec![7u8; 64 << 20];
    let mut mid_write = 0;
    for cut in [
        Cut::Polls(0),
        Cut::Micros(1),
        Cut::Micros(1000),
        Cut::Micros(3000),
    ] {
        let mut c = pool.connection().await.unwrap();
        let pid = c.backend_pid();
        // Cached, so the cut call's first write is the 64 MB Bind itself.
        let small = c.execute(sql, &[&vec![1u8; 10]]).await.unwrap();
        assert_eq!(small.rows()[0].get::<_, i32>(0), 10);
        let r = cut.run(c.execute(sql, &[&big])).await;
        if let Cut::Polls(0) = cut {
            // One poll writes what the socket takes, then waits: always mid-write.
            assert!(r.is_none(), "a 64 MB write finished in one poll");
            assert!(c.is_broken(), "a partial write must break the connection");
        }
        if c.is_broken() {
            mid_write += 1;
            // The same borrower gets a clear error, not a desynchronised stream.
            let err = c.execute("SELECT 1", &[]).await.unwrap_err();
            assert!(
                matches!(err.as_backend(), Some(pgwire_lite::Error::Closed(_))),
                "{err:?}"
            );
            drop(c);
            quiesce(&pool).await;
            let mut next = pool.connection().await.unwrap();
            assert_ne!(
                next.backend_pid(),
                pid,
                "{cut:?}: a broken connection was reused"
            );
            assert_clean(&mut next, 3, &format!("{cut:?}")).await;
            drop(next);
            wait_backend_gone(pid, BUDGET).await;
        } else {
            // tokio's timer fired only after the whole request was written (its resolution
            // is a millisecond): the answer is owed, drained before the next use.
            drop(c);
            assert_next_borrowers_clean(&pool, 3, &format!("{cut:?}, written whole")).await;
        }
    }
    eprintln!("{mid_write}/4 cuts landed mid-write");
    assert_recovered(&pool, &app, BUDGET).await;
}

// ------------------------------------------------------------------------------------------
// C4: long query dropped
// ------------------------------------------------------------------------------------------

/// C4: `pg_sleep(10)` dropped after 10 ms is cancelled on the server before the connection is
/// handed out again: pg_stat_activity no longer shows it running, and the connection comes
/// back (drained, same backend) well before the sleep would have ended.
#[tokio::test]
async fn c4_long_query_dropped_is_cancelled_on_the_server() {
    let app = unique_name("c4");
    let pool = started(pool_builder(&app, 2).recycle_timeout(Duration::from_secs(2))).await;
    let mut c = pool.connection().await.unwrap();
    let pid = c.backend_pid();
    let r = Cut::Micros(10_000)
        .run(c.execute("SELECT pg_sleep(10)", &[]))
        .await;
    assert!(r.is_none());
    let (state, query) = backend_state(pid).await.unwrap();
    assert_eq!(
        (state.as_str(), query.as_str()),
        ("active", "SELECT pg_sleep(10)")
    );
    let start = Instant::now();
    drop(c);
    // The reset task holds the slot until the query is cancelled and drained.
    quiesce(&pool).await;
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    let (state, _) = backend_state(pid).await.unwrap();
    assert_eq!(state, "idle", "the sleep still runs on the server");
    let mut next = pool.connection().await.unwrap();
    assert_eq!(next.backend_pid(), pid, "drained and reused, not closed");
    assert_clean(&mut next, 4, "after the cancel").await;
    drop(next);
    let mut a = admin().await;
    let sleeping = a
        .query_one(
            "SELECT count(*)::int8 FROM pg_stat_activity \
             WHERE application_name = $1 AND state = 'active'",
            &[&app.as_str()],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(sleeping, 0);
    assert_recovered(&pool, &app, BUDGET).await;
}

/// C4, the race (lib/pq #1000): queries that end on their own right around the moment the
/// pool's reset cancels them (it waits 50 ms, then sends a CancelRequest). The cancel must
/// never land on the next borrower's query: no 57014 outside the cut query, ever.
#[tokio::test]
async fn c4_a_late_cancel_never_hits_the_next_query_pool() {
    let app = unique_name("c4_race");
    let pool = started(pool_builder(&app, 2).recycle_timeout(Duration::from_secs(2))).await;
    let mut rng = Rng::new(41);
    for i in 0..40 {
        let cut_ms = rng.below(10);
        // The reset cancels at cut + 50 ms; the sleep ends within a few ms of that.
        let sleep_ms = cut_ms + 45 + rng.below(11);
        let mut c = pool.connection().await.unwrap();
        let sql = format!("SELECT pg_sleep({sleep_ms} / 1000.0)");
        let r = Cut::Micros(cut_ms * 1000).run(c.execute(&sql, &[])).await;
        if let Some(r) = r {
            r.unwrap();
        }
        drop(c);
        // The next borrower at once, with a query long enough for a stray SIGINT to hit it.
        let r = pool
            .execute("SELECT pg_sleep(0.01), $1::int4", &[&i])
            .await
            .unwrap_or_else(|e| panic!("round {i} (cut {cut_ms} ms, sleep {sleep_ms} ms): {e:?}"));
        assert_eq!(r.rows()[0].get::<_, i32>(1), i);
    }
    assert_next_borrowers_clean(&pool, 5, "after the races").await;
    assert_recovered(&pool, &app, BUDGET).await;
}

/// C4 with `Connection::set_query_timeout`: the timed-out query is cancelled and drained before
/// the call returns (or, if that takes longer than the limit again, the connection is marked
/// broken and closed); the next query on the same connection never gets 57014.
#[tokio::test]
async fn c4_a_late_cancel_never_hits_the_next_query_query_timeout() {
    let app = unique_name("c4_qt");
    let pool = started(pool_builder(&app, 2)).await;
    let mut rng = Rng::new(42);
    let (mut reused, mut closed) = (0, 0);
    for i in 0..60 {
        let limit_ms = 10 + rng.below(10);
        let sleep_ms = limit_ms.saturating_sub(3) + rng.below(6);
        let mut c = pool.connection().await.unwrap();
        let pid = c.backend_pid();
        let conn = c.connection_mut().await.unwrap();
        conn.set_query_timeout(Some(Duration::from_millis(limit_ms)));
        let sql = format!("SELECT pg_sleep({sleep_ms} / 1000.0)");
        let timed_out = match conn.execute(&sql, &[]).await {
            Ok(_) => false,
            Err(pgwire_lite::Error::QueryTimeout(_)) => true,
            Err(e) => panic!("round {i}: the timed-out query itself: {e:?}"),
        };
        conn.set_query_timeout(None);
        if conn.is_broken() {
            // The cancellation took longer than the limit: closed, never reused.
            assert!(timed_out);
            closed += 1;
            drop(c);
            let mut next = pool.connection().await.unwrap();
            assert_ne!(next.backend_pid(), pid);
            assert_clean(&mut next, i, "after a closed timeout").await;
            continue;
        }
        assert!(
            conn.is_idle(),
            "round {i}: cancelled and drained before returning"
        );
        reused += usize::from(timed_out);
        let r = conn
            .execute("SELECT pg_sleep(0.01), $1::int4", &[&i])
            .await
            .unwrap_or_else(|e| {
                panic!("round {i} (limit {limit_ms} ms, sleep {sleep_ms} ms): {e:?}")
            });
        assert_eq!(r.rows()[0].get::<_, i32>(1), i);
    }
    eprintln!("60 rounds: {reused} timed out and reused, {closed} timed out and closed");
    assert!(
        reused > 0,
        "no timed-out connection was reused: the race was not exercised"
    );
    assert_recovered(&pool, &app, BUDGET).await;
}

// ------------------------------------------------------------------------------------------
// C5 / C6: acquire cancelled
// ------------------------------------------------------------------------------------------

/// C5 (sqlx `pool_smoke_test`): 50 tasks that poll `pool.connection()` once and drop it, next
/// to 200 tasks looping queries on the smallest pool (2: the builder's minimum). No permit
/// leaks; then the order of the waiters that stay is still first come, first served; `close()`
/// finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c5_acquire_cancelled_while_waiting() {
    let app = unique_name("c5");
    let pool = started(pool_builder(&app, 2).wait_timeout(Duration::from_secs(10))).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..200i32 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for j in 0..5i32 {
                let r = pool
                    .execute("SELECT $1::int4 * 10 + $2::int4", &[&i, &j])
                    .await
                    .unwrap();
                assert_eq!(r.rows()[0].get::<_, i32>(0), i * 10 + j);
            }
        }));
    }
    let mut cancellers = Vec::new();
    for _ in 0..50 {
        let pool = pool.clone();
        let stop = stop.clone();
        cancellers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                if let Some(c) = Cut::Polls(0).run(pool.connection()).await {
                    drop(c.unwrap());
                }
                n += 1;
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
            n
        }));
    }
    within(Duration::from_secs(10), "200 looping tasks", async {
        for t in tasks {
            t.await.unwrap();
        }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut cancelled = 0;
    for t in cancellers {
        cancelled += t.await.unwrap();
    }
    eprintln!("{cancelled} acquires cancelled after one poll");
    quiesce(&pool).await;
    assert_eq!(pool.status().size, 2);

    // FIFO for the waiters that stay: every other one gives up after one poll. One slot stays
    // held, so the other one is passed from waiter to waiter and the order they record is the
    // order they were served in (with two slots circulating, two waiters served back to back
    // could record in either order on a two-thread runtime).
    let kept = pool.connection().await.unwrap();
    let held = pool.connection().await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for i in 0..20usize {
        if i % 2 == 1 {
            assert!(Cut::Polls(0).run(pool.connection()).await.is_none());
            continue;
        }
        let p = pool.clone();
        let order = order.clone();
        waiters.push(tokio::spawn(async move {
            let c = p.connection().await.unwrap();
            order.lock().unwrap().push(i);
            // Held a moment, so the next waiter is served by this release, in turn.
            tokio::time::sleep(Duration::from_millis(2)).await;
            drop(c);
        }));
        // Queued before the next one is spawned.
        let start = Instant::now();
        while pool.status().waiting < i / 2 + 1 {
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "{:?}",
                pool.status()
            );
            tokio::task::yield_now().await;
        }
    }
    assert_eq!(
        pool.status().waiting,
        10,
        "cancelled waiters left the queue"
    );
    drop(held);
    for w in waiters {
        w.await.unwrap();
    }
    let order = order.lock().unwrap().clone();
    assert_eq!(order, (0..20).step_by(2).collect::<Vec<_>>(), "not FIFO");
    drop(kept);
    quiesce(&pool).await;
    assert_recovered(&pool, &app, BUDGET).await;
    within(Duration::from_secs(1), "close()", pool.close()).await;
    assert_closed_clean(&pool, &app).await;
}

/// C6: `timeout(5 ms, pool.connection())` while the connection is being opened (the server
/// holds every new session for 1 s with `post_auth_delay`, PGC_BACKEND, set in the startup
/// options): the half-made connection is dropped, the permit released, `size` not incremented,
/// and the server's half-made backend goes away. Then the pool's own create timeout: a second
/// pool with a 200 ms limit fails `startup()` with `Timeout(Create)` at the limit, counting
/// nothing.
#[tokio::test]
async fn c6_acquire_cancelled_during_creation() {
    let app = unique_name("c6");
    let dsn = format!(
        "{}?application_name={app}&connect_timeout=3&options=-c%20post_auth_delay%3D1",
        cluster().admin_url()
    );
    let pool = started(
        PsqlPool::builder()
            .dsn(dsn.clone())
            .max_db_pool_size(2)
            .wait_timeout(Duration::from_secs(1))
            .create_timeout(Duration::from_secs(3)),
    )
    .await;
    let held = pool.connection().await.unwrap();
    let start = Instant::now();
    let r = tokio::time::timeout(Duration::from_millis(5), pool.connection()).await;
    assert!(
        r.is_err(),
        "a connection opened in 5 ms despite post_auth_delay=1"
    );
    assert!(start.elapsed() < Duration::from_millis(250));
    let s = pool.status();
    assert_eq!((s.size, s.in_use, s.idle, s.waiting), (1, 1, 0, 0), "{s:?}");

    let impatient = PsqlPool::builder()
        .dsn(dsn)
        .max_db_pool_size(2)
        .create_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let start = Instant::now();
    let err = impatient.startup().await.unwrap_err();
    let took = start.elapsed();
    assert_eq!(err.timeout_kind(), Some(TimeoutKind::Create), "{err:?}");
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_millis(450),
        "{took:?}"
    );
    let s = impatient.status();
    assert_eq!((s.size, s.in_use, s.idle, s.waiting), (0, 0, 0, 0), "{s:?}");

    // Only the held connection's backend survives: the half-made ones leave once their delay
    // ends and they find the socket closed.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let n = backends(&app).await;
        if n == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "{n} backends for {app}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(held);
    assert_recovered(&pool, &app, BUDGET).await;
}

// ------------------------------------------------------------------------------------------
// C7 / C8: panics and transactions left open
// ------------------------------------------------------------------------------------------

/// After a borrower left `t` with an uncommitted insert of `id`, the next borrowers are outside
/// any transaction and the insert is not visible (rolled back).
async fn assert_rolled_back(pool: &PsqlPool, t: &str, id: i32, ctx: &str) {
    assert_next_borrowers_clean(pool, id, ctx).await;
    let n = count(pool, &format!("SELECT count(*) FROM {t} WHERE id = {id}")).await;
    assert_eq!(n, 0, "{ctx}: the uncommitted insert is visible");
}

/// C7: a panic while holding a connection inside a transaction, in four ways: under
/// `catch_unwind` inside the runtime, in a spawned task between queries, in a spawned task
/// during a query (a query future alive when the panic unwinds), and on a thread with no
/// tokio runtime at all. The guard's `Drop` must not panic or block, and the next borrower gets
/// a clean session: not in a transaction, the insert rolled back, no lock poisoned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c7_panic_inside_a_transaction_leaves_a_clean_session() {
    let app = unique_name("c7");
    let pool = started(pool_builder(&app, 2)).await;
    let t = table("c7");
    let ins = format!("INSERT INTO {t} (id) VALUES ($1)");

    // catch_unwind, inside the runtime.
    let mut c = pool.connection().await.unwrap();
    c.begin().await.unwrap();
    c.execute(&ins, &[&1i32]).await.unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _held = c;
        panic!("user code panics while holding the connection");
    }));
    assert!(r.is_err());
    assert_rolled_back(&pool, &t, 1, "catch_unwind").await;

    // A spawned task that panics between queries, inside a transaction guard.
    let (p, ins2) = (pool.clone(), ins.clone());
    let e = tokio::spawn(async move {
        let mut c = p.connection().await.unwrap();
        let mut tx = c.transaction().await.unwrap();
        tx.execute(&ins2, &[&2i32]).await.unwrap();
        panic!("task panics between queries");
    })
    .await
    .unwrap_err();
    assert!(e.is_panic());
    assert_rolled_back(&pool, &t, 2, "task panic between queries").await;

    // A spawned task that panics while a query is in flight.
    let (p, ins3) = (pool.clone(), ins.clone());
    let e = tokio::spawn(async move {
        let mut c = p.connection().await.unwrap();
        c.begin().await.unwrap();
        c.execute(&ins3, &[&3i32]).await.unwrap();
        let mut q = Box::pin(c.execute("SELECT pg_sleep(0.2)", &[]));
        // Sent, not answered: then the panic unwinds through the live query future.
        assert!(futures_poll_once(q.as_mut()).await.is_pending());
        panic!("task panics during a query");
    })
    .await
    .unwrap_err();
    assert!(e.is_panic());
    assert_rolled_back(&pool, &t, 3, "task panic during a query").await;

    // A plain thread, no tokio runtime: the connection goes back as it is and the next
    // checkout settles it under the recycle timeout.
    let mut c = pool.connection().await.unwrap();
    c.begin().await.unwrap();
    c.execute(&ins, &[&4i32]).await.unwrap();
    let r = std::thread::spawn(move || {
        let _held = c;
        panic!("a thread without a runtime panics");
    })
    .join();
    assert!(r.is_err());
    assert_rolled_back(&pool, &t, 4, "panic outside any runtime").await;
    assert_recovered(&pool, &app, BUDGET).await;
}

/// Polls `fut` once (with the task's waker) and returns what it said.
async fn futures_poll_once<F: Future + ?Sized>(mut fut: Pin<&mut F>) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
}

/// C8: a connection given back inside a transaction (open, failed, or through a dropped
/// `Transaction` guard) is rolled back, not closed (we roll back: same backend pid), and the
/// next borrower is outside any transaction with the insert not visible.
#[tokio::test]
async fn c8_returned_inside_a_transaction_is_rolled_back() {
    let app = unique_name("c8");
    let pool = started(pool_builder(&app, 2)).await;
    let t = table("c8");
    let ins = format!("INSERT INTO {t} (id) VALUES ($1)");
    for (id, how) in [(1, "open"), (2, "failed"), (3, "guard")] {
        let mut c = pool.connection().await.unwrap();
        let pid = c.backend_pid();
        match how {
            "open" => {
                c.begin().await.unwrap();
                c.execute(&ins, &[&id]).await.unwrap();
                assert_eq!(c.transaction_status(), TransactionStatus::InTransaction);
            }
            "failed" => {
                c.begin().await.unwrap();
                c.execute(&ins, &[&id]).await.unwrap();
                let e = c.execute("SELECT 1 / 0", &[]).await.unwrap_err();
                assert_eq!(e.as_backend().and_then(|e| e.code()), Some("22012"));
                assert_eq!(c.transaction_status(), TransactionStatus::Failed);
            }
            _ => {
                let mut tx = c.transaction().await.unwrap();
                tx.execute(&ins, &[&id]).await.unwrap();
                // The guard goes out of scope uncommitted.
            }
        }
        drop(c);
        assert_rolled_back(&pool, &t, id, how).await;
        let pids = backend_pids(&app).await;
        assert!(
            pids.contains(&pid),
            "{how}: rolled back and kept, not closed"
        );
    }
    assert_recovered(&pool, &app, BUDGET).await;
}

// ------------------------------------------------------------------------------------------
// C9: session state between borrowers
// ------------------------------------------------------------------------------------------

const SESSION_STATE: &str = "SET search_path = pg_catalog, public; \
    CREATE TEMP TABLE c9_temp (x int); \
    LISTEN c9_channel; \
    SELECT pg_advisory_lock(9); \
    PREPARE c9_stmt AS SELECT 9; \
    SET ROLE scram_user";

/// What survives of [`SESSION_STATE`] on `c`: search_path, temp table, listen, advisory lock,
/// prepared statement, role.
async fn surviving_state(c: &mut PooledConnection) -> [bool; 6] {
    let r = c
        .simple_query(
            "SELECT current_setting('search_path') = 'pg_catalog, public', \
             to_regclass('pg_temp.c9_temp') IS NOT NULL, \
             EXISTS (SELECT FROM pg_listening_channels() l WHERE l = 'c9_channel'), \
             EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND objid = 9 \
                     AND pid = pg_backend_pid()), \
             EXISTS (SELECT FROM pg_prepared_statements WHERE name = 'c9_stmt'), \
             current_user = 'scram_user'",
        )
        .await
        .unwrap();
    let row = &r[0].rows()[0];
    std::array::from_fn(|i| row.raw(i).unwrap() == Some(&b"t"[..]))
}

/// C9: with `Clean`, none of search_path, temp tables, LISTEN, advisory locks, SQL-level
/// prepared statements, SET ROLE survive to the next borrower, and the statement cache stays
/// consistent (a cached statement still runs). With `Fast` all of them survive, as
/// documented on `RecyclingMethod`.
#[tokio::test]
async fn c9_session_state_clean_resets_fast_keeps() {
    if !cluster().require_roles() {
        return;
    }
    for (method, survives) in [
        (RecyclingMethod::Clean, false),
        (RecyclingMethod::Fast, true),
    ] {
        let app = unique_name("c9");
        let pool = started(pool_builder(&app, 2).conn_recycling_method(method.clone())).await;
        let mut c = pool.connection().await.unwrap();
        let pid = c.backend_pid();
        c.execute("SELECT $1::int4", &[&1i32]).await.unwrap();
        c.batch_execute(SESSION_STATE).await.unwrap();
        assert_eq!(surviving_state(&mut c).await, [true; 6]);
        drop(c);
        let mut c = pool.connection().await.unwrap();
        assert_eq!(c.backend_pid(), pid, "{method:?}: the same connection");
        assert_eq!(surviving_state(&mut c).await, [survives; 6], "{method:?}");
        // The cached statement is still valid on the server.
        let r = c.execute("SELECT $1::int4", &[&2i32]).await.unwrap();
        assert_eq!(r.rows()[0].get::<_, i32>(0), 2);
        if survives {
            c.batch_execute("RESET ROLE; SELECT pg_advisory_unlock_all()")
                .await
                .unwrap();
        }
        drop(c);
        assert_recovered(&pool, &app, BUDGET).await;
    }
}

// ------------------------------------------------------------------------------------------
// C10 / C11: misuse of the pool's life cycle
// ------------------------------------------------------------------------------------------

/// C10: every operation before `startup()` fails at once with `NotStarted`, opening nothing
/// (no lazy start); after `close()`, with `Closed`, and `startup()` cannot revive it.
#[tokio::test]
async fn c10_execute_before_startup_and_after_close() {
    let app = unique_name("c10");
    let pool = pool_builder(&app, 2).build().unwrap();
    let now = Duration::from_millis(50);
    let e = within(now, "execute", pool.execute("SELECT 1", &[])).await;
    assert!(matches!(e, Err(Error::NotStarted)), "{e:?}");
    let e = within(now, "unprepared", pool.execute_unprepared("SELECT 1", &[])).await;
    assert!(matches!(e, Err(Error::NotStarted)), "{e:?}");
    let e = within(now, "connection", pool.connection()).await;
    assert!(matches!(e, Err(Error::NotStarted)), "{e:?}");
    let e = within(now, "conn_timeout", pool.connection_timeout(BUDGET)).await;
    assert!(matches!(e, Err(Error::NotStarted)), "{e:?}");
    assert_eq!(pool.status().size, 0, "no lazy start");
    assert_eq!(
        backends(&app).await,
        0,
        "no lazy start on the server either"
    );

    pool.startup().await.unwrap();
    assert_recovered(&pool, &app, BUDGET).await;

    within(Duration::from_secs(1), "close()", pool.close()).await;
    let e = within(now, "execute", pool.execute("SELECT 1", &[])).await;
    assert!(matches!(e, Err(Error::Closed)), "{e:?}");
    let e = within(now, "unprepared", pool.execute_unprepared("SELECT 1", &[])).await;
    assert!(matches!(e, Err(Error::Closed)), "{e:?}");
    let e = within(now, "conn_timeout", pool.connection_timeout(BUDGET)).await;
    assert!(matches!(e, Err(Error::Closed)), "{e:?}");
    let e = within(now, "startup", pool.startup()).await;
    assert!(matches!(e, Err(Error::Closed)), "{e:?}");
    assert!(pool.is_closed());
    assert_closed_clean(&pool, &app).await;

    // Closed before it ever started: Closed, not NotStarted.
    let never = pool_builder(&app, 2).build().unwrap();
    never.close().await;
    let e = within(now, "execute", never.execute("SELECT 1", &[])).await;
    assert!(matches!(e, Err(Error::Closed)), "{e:?}");
    let e = within(now, "startup", never.startup()).await;
    assert!(matches!(e, Err(Error::Closed)), "{e:?}");
}

/// C11: `close()` with 4 connections held and 10 waiters: the waiters get `Closed` at once,
/// new borrows are refused, the held ones keep working until they are given back and are then
/// closed, `close()` itself completes without waiting for them, and is idempotent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c11_close_with_active_borrowers_and_waiters() {
    let app = unique_name("c11");
    let pool = started(pool_builder(&app, 4).wait_timeout(Duration::from_secs(30))).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(pool.connection().await.unwrap());
    }
    let mut waiters = Vec::new();
    for _ in 0..10 {
        let p = pool.clone();
        waiters.push(tokio::spawn(async move {
            let r = p.connection().await;
            (r.map(drop), Instant::now())
        }));
    }
    let start = Instant::now();
    while pool.status().waiting < 10 {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            pool.status()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let closed_at = Instant::now();
    within(Duration::from_millis(200), "close()", pool.close()).await;
    for w in waiters {
        let (r, at) = within(Duration::from_millis(200), "a waiter", w)
            .await
            .unwrap();
        assert!(matches!(r, Err(Error::Closed)), "{r:?}");
        assert!(at.duration_since(closed_at) < Duration::from_millis(200));
    }
    let e = within(Duration::ZERO, "new borrow", pool.connection()).await;
    assert!(matches!(e, Err(Error::Closed)), "{e:?}");
    let s = pool.status();
    assert_eq!((s.in_use, s.waiting, s.idle), (4, 0, 0), "{s:?}");
    // The held ones finish their work.
    for (i, c) in held.iter_mut().enumerate() {
        assert_clean(c, i as i32, "held across close()").await;
    }
    assert_eq!(backends(&app).await, 4);
    drop(held);
    within(Duration::from_millis(100), "second close()", pool.close()).await;
    assert_closed_clean(&pool, &app).await;
}

/// C12: the pool has no leak detector (no `leak_threshold`: the optional HikariCP warning is not
/// implemented), so what is tested is its other half: a connection held for a long time is
/// never reclaimed from its borrower, not even past `max_lifetime` and `idle_timeout`; it is
/// retired only when given back.
#[tokio::test]
async fn c12_a_connection_held_long_is_never_reclaimed() {
    let app = unique_name("c12");
    let pool = started(
        pool_builder(&app, 2)
            .max_lifetime(Duration::from_millis(200))
            .idle_timeout(Duration::from_millis(200)),
    )
    .await;
    let mut c = pool.connection().await.unwrap();
    let pid = c.backend_pid();
    for i in 0..6 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_clean(&mut c, i, "held past max_lifetime").await;
        assert_eq!(c.backend_pid(), pid);
        assert_eq!(pool.status().in_use, 1);
    }
    drop(c);
    // Expired: closed on return, not kept.
    quiesce(&pool).await;
    assert_eq!(pool.status().size, 0, "{:?}", pool.status());
    wait_backend_gone(pid, BUDGET).await;
    assert_recovered(&pool, &app, BUDGET).await;
}

// ------------------------------------------------------------------------------------------
// C13 and the 10,000-borrower stress
// ------------------------------------------------------------------------------------------

/// C13 (bb8 `test_lots_of_waiters`): `HERD` tasks on a pool of 3, each borrowing a connection
/// and running `SELECT 1` on it. All succeed, and the order is fair: tasks queue in spawn
/// order (one runtime thread), and each is served at most `max_size` places away from its
/// place in the queue (permits go strictly first come, first served; only the 3 holders can
/// finish in any order).
#[tokio::test]
async fn c13_thundering_herd_is_served_in_order() {
    const HERD: usize = 25_000;
    let app = unique_name("c13");
    let pool = started(pool_builder(&app, 3).wait_timeout(Duration::from_secs(30))).await;
    // Three connections open first, so no borrower's turn depends on how long a connect takes.
    drop([
        pool.connection().await.unwrap(),
        pool.connection().await.unwrap(),
        pool.connection().await.unwrap(),
    ]);
    let queued = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(HERD);
    for _ in 0..HERD {
        let (p, queued, served) = (pool.clone(), queued.clone(), served.clone());
        tasks.push(tokio::spawn(async move {
            let ticket = queued.fetch_add(1, Ordering::SeqCst);
            let mut c = p.connection().await.unwrap();
            let rank = served.fetch_add(1, Ordering::SeqCst);
            let r = c.simple_query("SELECT 1").await.unwrap();
            assert_eq!(r[0].rows()[0].raw(0).unwrap(), Some(&b"1"[..]));
            (ticket, rank)
        }));
    }
    let mut worst = 0;
    within(Duration::from_secs(30), "the herd", async {
        for t in tasks {
            let (ticket, rank) = t.await.unwrap();
            worst = worst.max(ticket.abs_diff(rank));
        }
    })
    .await;
    eprintln!(
        "{HERD} tasks on 3 connections in {:?}; served at most {worst} places from their turn",
        start.elapsed()
    );
    assert!(
        worst <= 3,
        "unfair: a task was served {worst} places from its turn"
    );
    assert_eq!(served.load(Ordering::SeqCst), HERD);
    quiesce(&pool).await;
    assert_recovered(&pool, &app, BUDGET).await;
}

/// The must-have: 10,000 borrowers over 4 slots with random cancellation (at random
/// poll counts, at random timeouts, while waiting or mid-query) against the real server finish
/// with no leak and no deadlock; afterwards every connection is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_borrowers_with_random_cancellation() {
    const WORKERS: u64 = 100;
    const EACH: u64 = 100;
    let app = unique_name("stress");
    let pool = started(pool_builder(&app, 4).wait_timeout(Duration::from_secs(10))).await;
    let completed = Arc::new(AtomicUsize::new(0));
    let cut = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let (pool, completed, cut) = (pool.clone(), completed.clone(), cut.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(1000 + w);
            for i in 0..EACH {
                let marker = (w * EACH + i) as i32;
                let how = match rng.below(3) {
                    0 => None,
                    1 => Some(Cut::Polls(rng.below(6) as usize)),
                    _ => Some(Cut::Micros(rng.below(1500))),
                };
                let fut = async {
                    if rng_pick(marker) {
                        pool.execute("SELECT $1::int4", &[&marker]).await
                    } else {
                        let mut c = pool.connection().await?;
                        c.simple_query("SELECT 1").await?;
                        c.execute("SELECT $1::int4", &[&marker]).await
                    }
                };
                let r = match how {
                    None => Some(fut.await),
                    Some(how) => how.run(fut).await,
                };
                match r {
                    Some(r) => {
                        let r = r.unwrap_or_else(|e| panic!("borrower {marker}: {e:?}"));
                        assert_eq!(r.rows().len(), 1);
                        assert_eq!(r.rows()[0].get::<_, i32>(0), marker);
                        completed.fetch_add(1, Ordering::Relaxed);
                    }
                    None => {
                        cut.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    within(Duration::from_secs(10), "10,000 borrowers", async {
        for t in tasks {
            t.await.unwrap();
        }
    })
    .await;
    let (done, cut) = (
        completed.load(Ordering::Relaxed),
        cut.load(Ordering::Relaxed),
    );
    eprintln!(
        "10,000 borrowers in {:?}: {done} completed, {cut} cut",
        start.elapsed()
    );
    assert_eq!(done + cut, (WORKERS * EACH) as usize);
    assert!(cut > 1000 && done > 3000, "{done} completed, {cut} cut");
    assert_next_borrowers_clean(&pool, -1, "after the stress").await;
    assert!(pool.status().size <= 4);
    assert_recovered(&pool, &app, BUDGET).await;
}

/// Half the borrowers use `pool.execute`, half a held connection.
fn rng_pick(marker: i32) -> bool {
    marker % 2 == 0
}

// ------------------------------------------------------------------------------------------
// P1–P8: protocol and state edge cases
// ------------------------------------------------------------------------------------------

fn code(e: &Error) -> Option<&str> {
    e.as_backend().and_then(|e| e.code())
}

/// P1: a cached `SELECT *` whose table changes under it. Outside a transaction the 0A000
/// ("cached plan must not change result type") is absorbed by one re-prepare; inside one, the
/// transaction is aborted, so the error is returned and 25P02 follows.
#[tokio::test]
async fn p1_cached_statement_invalidated_by_ddl() {
    let app = unique_name("p1");
    let pool = started(pool_builder(&app, 2)).await;
    let t = table("p1");
    cluster().psql(&format!("INSERT INTO {t} VALUES (1, 'a')"));
    let sql = format!("SELECT * FROM {t}");
    let mut c = pool.connection().await.unwrap();
    assert_eq!(c.execute(&sql, &[]).await.unwrap().columns().len(), 2);
    cluster().psql(&format!("ALTER TABLE {t} ADD COLUMN c int"));
    let r = c.execute(&sql, &[]).await.unwrap();
    assert_eq!(r.columns().len(), 3, "re-prepared once, new shape");
    assert_eq!(r.rows().len(), 1);

    c.begin().await.unwrap();
    cluster().psql(&format!("ALTER TABLE {t} ADD COLUMN d int"));
    let e = c.execute(&sql, &[]).await.unwrap_err();
    assert_eq!(code(&e), Some("0A000"), "{e:?}");
    assert_eq!(c.transaction_status(), TransactionStatus::Failed);
    let e = c.execute("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(code(&e), Some("25P02"), "{e:?}");
    c.rollback().await.unwrap();
    let r = c.execute(&sql, &[]).await.unwrap();
    assert_eq!(r.columns().len(), 4);
    drop(c);
    assert_recovered(&pool, &app, BUDGET).await;
}

/// P2: `DEALLOCATE ALL` / `DISCARD ALL` behind the statement cache's back: the 26000 is
/// absorbed by one re-prepare outside a transaction; inside one it is returned (the
/// transaction is aborted) and the next try after it succeeds.
#[tokio::test]
async fn p2_statement_cache_stale_after_deallocate_or_discard() {
    let app = unique_name("p2");
    let pool = started(pool_builder(&app, 2)).await;
    let mut c = pool.connection().await.unwrap();
    let sql = "SELECT $1::int4 + 1";
    for reset in ["DEALLOCATE ALL", "DISCARD ALL"] {
        let r = c.execute(sql, &[&1i32]).await.unwrap();
        assert_eq!(r.rows()[0].get::<_, i32>(0), 2);
        assert!(c.cached_statements() > 0);
        c.batch_execute(reset).await.unwrap();
        let r = c.execute(sql, &[&2i32]).await.unwrap();
        assert_eq!(r.rows()[0].get::<_, i32>(0), 3, "{reset}: re-prepared once");
    }
    c.begin().await.unwrap();
    c.batch_execute("DEALLOCATE ALL").await.unwrap();
    let e = c.execute(sql, &[&3i32]).await.unwrap_err();
    assert_eq!(code(&e), Some("26000"), "{e:?}");
    c.rollback().await.unwrap();
    let r = c.execute(sql, &[&3i32]).await.unwrap();
    assert_eq!(r.rows()[0].get::<_, i32>(0), 4);
    // Through the pool's own execute, on whichever connection.
    c.batch_execute("DISCARD ALL").await.unwrap();
    drop(c);
    let r = pool.execute(sql, &[&4i32]).await.unwrap();
    assert_eq!(r.rows()[0].get::<_, i32>(0), 5);
    assert_recovered(&pool, &app, BUDGET).await;
}

/// P3: asynchronous messages in the middle of answers: a NOTIFY from another session while a
/// query runs, ParameterStatus mid-query (`SET TimeZone` in a batch, `set_config` in an
/// extended query), notices interleaved with rows; none is taken for a result, notices go to
/// the handler and are not errors, notifications are queued with a bound (10,000, oldest
/// dropped first).
#[tokio::test]
async fn p3_async_messages_anywhere() {
    let app = unique_name("p3");
    let pool = started(pool_builder(&app, 2)).await;
    let mut c = pool.connection().await.unwrap();
    let pid = c.backend_pid();
    c.batch_execute("LISTEN p3_chan").await.unwrap();
    let query = c.execute("SELECT pg_sleep(0.2), 42::int4", &[]);
    let notify = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut a = admin().await;
        a.batch_execute("NOTIFY p3_chan, 'during'").await.unwrap();
    };
    let (r, ()) = tokio::join!(query, notify);
    let r = r.unwrap();
    assert_eq!((r.rows().len(), r.rows()[0].get::<_, i32>(1)), (1, 42));
    // Delivered once the listener is idle: read with the next answer.
    assert_answers(&mut c, 1, "after NOTIFY").await;
    let n = c.connection_mut().await.unwrap().take_notifications();
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(
        (n[0].channel.as_str(), n[0].payload.as_str()),
        ("p3_chan", "during")
    );

    // ParameterStatus in the middle of a simple batch and of an extended query.
    let r = c
        .simple_query("SET TimeZone = 'UTC'; SELECT 7")
        .await
        .unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r[1].rows()[0].raw(0).unwrap(), Some(&b"7"[..]));
    assert_eq!(c.parameter("TimeZone"), Some("UTC"));
    let r = c
        .execute("SELECT set_config('TimeZone', 'Asia/Tokyo', false)", &[])
        .await
        .unwrap();
    assert_eq!(r.rows().len(), 1);
    assert_eq!(r.rows()[0].get::<_, &str>(0), "Asia/Tokyo");
    assert_eq!(c.parameter("TimeZone"), Some("Asia/Tokyo"));

    // Notices interleaved with rows, and a storm of them: all to the handler, none an error.
    let seen = Arc::new(AtomicUsize::new(0));
    let s2 = seen.clone();
    let conn = c.connection_mut().await.unwrap();
    conn.set_notice_handler(Some(Box::new(move |n: &pgwire_lite::DbError| {
        assert_eq!(n.severity_nonlocalized.as_deref(), Some("NOTICE"));
        s2.fetch_add(1, Ordering::Relaxed);
    })));
    conn.batch_execute(
        "CREATE FUNCTION pg_temp.p3_noisy(i int) RETURNS int LANGUAGE plpgsql AS \
         $$BEGIN RAISE NOTICE 'row %', i; RETURN i; END$$",
    )
    .await
    .unwrap();
    let r = conn
        .execute(
            "SELECT pg_temp.p3_noisy(g) FROM generate_series(1, 500) g",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.rows().len(), 500);
    assert_eq!(r.rows()[499].get::<_, i32>(0), 500);
    conn.batch_execute("DO $$BEGIN FOR i IN 1..2000 LOOP RAISE NOTICE 'n %', i; END LOOP; END$$")
        .await
        .unwrap();
    assert_eq!(seen.load(Ordering::Relaxed), 2500);
    conn.set_notice_handler(None);

    // More notifications than the queue keeps: the newest 10,000 are kept.
    let mut a = admin().await;
    a.batch_execute("SELECT pg_notify('p3_chan', g::text) FROM generate_series(1, 10050) g")
        .await
        .unwrap();
    // Read while idle (at the next query), then taken.
    let deadline = Instant::now() + BUDGET;
    let mut got = Vec::new();
    while got
        .last()
        .map(|n: &pgwire_lite::Notification| n.payload.as_str())
        != Some("10050")
    {
        assert!(Instant::now() < deadline, "notifications not delivered");
        conn.batch_execute("SELECT 1").await.unwrap();
        got.extend(conn.take_notifications());
    }
    assert_eq!(got.len(), 10_000, "bounded queue");
    assert_eq!(got[0].payload, "51", "oldest dropped first");
    assert_eq!(got[0].process_id, a.backend_pid());
    conn.batch_execute("UNLISTEN *").await.unwrap();
    assert!(conn.is_idle());
    drop(c);
    assert!(backend_pids(&app).await.contains(&pid));
    assert_recovered(&pool, &app, BUDGET).await;
}

/// P4: COPY, which the client does not support, through every path: `COPY ... FROM STDIN` is
/// refused with CopyFail (the server answers 57014 "COPY from stdin failed" quoting our
/// reason), `COPY ... TO STDOUT` is drained to CopyDone and reported as an error; never a hang,
/// and the connection stays usable (same backend).
#[tokio::test]
async fn p4_copy_is_refused_and_the_connection_stays_usable() {
    let app = unique_name("p4");
    let pool = started(pool_builder(&app, 2)).await;
    let t = table("p4");
    cluster().psql(&format!(
        "INSERT INTO {t} SELECT g, 'x' FROM generate_series(1, 1000) g"
    ));
    let mut c = pool.connection().await.unwrap();
    let pid = c.backend_pid();
    let copy_in = format!("COPY {t} FROM STDIN");
    let copy_out = format!("COPY {t} TO STDOUT");
    let limit = Duration::from_secs(2);
    for (i, path) in ["simple", "execute", "unprepared"].into_iter().enumerate() {
        for (sql, direction) in [(&copy_in, "FROM STDIN"), (&copy_out, "TO STDOUT")] {
            let ctx = format!("{path} COPY {direction}");
            let r = within(limit, &ctx, async {
                match path {
                    "simple" => c.simple_query(sql).await.map(drop),
                    "execute" => c.execute(sql, &[]).await.map(drop),
                    _ => c.execute_unprepared(sql, &[]).await.map(drop),
                }
            })
            .await;
            let e = r.expect_err(&ctx);
            let text = e.to_string();
            assert!(
                text.contains("COPY") && text.contains("not supported"),
                "{ctx}: unclear error: {e:?}"
            );
            if direction == "FROM STDIN" {
                // The server's answer to our CopyFail.
                assert_eq!(code(&e), Some("57014"), "{ctx}: {e:?}");
            } else {
                assert!(
                    matches!(e.as_backend(), Some(pgwire_lite::Error::Unsupported(_))),
                    "{ctx}: {e:?}"
                );
            }
            assert!(!c.is_broken(), "{ctx}: connection broken");
            assert_answers(&mut c, i as i32, &ctx).await;
        }
    }
    // Nothing was copied in.
    drop(c);
    assert_eq!(
        count(&pool, &format!("SELECT count(*) FROM {t}")).await,
        1000
    );
    assert!(
        backend_pids(&app).await.contains(&pid),
        "the connection was kept"
    );
    assert_recovered(&pool, &app, BUDGET).await;
}

/// P4 with the future dropped at every await point, in particular after the Execute was sent
/// but before the CopyInResponse was read: the drain at the next use refuses the COPY (with the
/// Sync the extended protocol then needs, since the server swallowed ours in copy-in mode)
/// instead of hanging.
#[tokio::test]
async fn p4_copy_in_left_by_a_dropped_future_is_refused_by_the_drain() {
    let app = unique_name("p4_drain");
    let pool = started(pool_builder(&app, 2)).await;
    let t = table("p4d");
    let sql = format!("COPY {t} FROM STDIN");
    for path in ["simple", "execute", "unprepared"] {
        let mut c = pool.connection().await.unwrap();
        let mut n = 0;
        loop {
            let r = match path {
                "simple" => Cut::Polls(n).run(c.simple_query(&sql)).await.map(drop),
                "execute" => Cut::Polls(n).run(c.execute(&sql, &[])).await.map(drop),
                _ => Cut::Polls(n)
                    .run(c.execute_unprepared(&sql, &[]))
                    .await
                    .map(drop),
            };
            let ctx = format!("{path} cut after {n} polls");
            if r.is_some() {
                break;
            }
            assert!(c.has_pending(), "{ctx}");
            within(
                Duration::from_secs(2),
                &ctx,
                assert_answers(&mut c, 1, &ctx),
            )
            .await;
            n += 1;
            assert!(n < 100);
        }
        drop(c);
        assert_next_borrowers_clean(&pool, 2, path).await;
    }
    assert_eq!(count(&pool, &format!("SELECT count(*) FROM {t}")).await, 0);
    assert_recovered(&pool, &app, BUDGET).await;
}

/// P5: an error in the middle of an extended request: a Parse error (42601), a Bind error (a
/// text value the server refuses, 22021), and a runtime error at row 500 (22012). The server
/// skips to Sync, the caller gets the error and none of the 499 rows before it, the
/// connection is usable; inside a transaction the transaction is failed (25P02 next).
#[tokio::test]
async fn p5_error_in_the_middle_of_an_extended_request() {
    let app = unique_name("p5");
    let pool = started(pool_builder(&app, 2)).await;
    let mut c = pool.connection().await.unwrap();
    let row500 = "SELECT 1 / (500 - g) FROM generate_series(1, 1000) g";
    let cases: [(&str, &str); 3] = [
        ("SELEC 1", "42601"),
        ("SELECT $1::text", "22021"),
        (row500, "22012"),
    ];
    for in_tx in [false, true] {
        for (sql, expected) in cases {
            let ctx = format!("{sql} (in transaction: {in_tx})");
            if in_tx {
                c.begin().await.unwrap();
            }
            let nul = "a\0b";
            let params: &[&(dyn pool_core::ToSql + Sync)] =
                if sql.contains('$') { &[&nul] } else { &[] };
            for unprepared in [false, true] {
                let r = if unprepared {
                    c.execute_unprepared(sql, params).await
                } else {
                    c.execute(sql, params).await
                };
                let e = r.expect_err(&ctx);
                // In the transaction the first error aborted it: the second call gets 25P02,
                // except a syntax error, which the server reports before looking at the
                // transaction.
                let want = if in_tx && unprepared && expected != "42601" {
                    "25P02"
                } else {
                    expected
                };
                assert_eq!(
                    code(&e),
                    Some(want),
                    "{ctx}, unprepared={unprepared}: {e:?}"
                );
                assert!(!c.is_broken() && !c.has_pending(), "{ctx}");
            }
            if in_tx {
                assert_eq!(c.transaction_status(), TransactionStatus::Failed, "{ctx}");
                c.rollback().await.unwrap();
            }
            assert_answers(&mut c, 5, &ctx).await;
        }
    }
    // The simple protocol: the rows before the error are not returned either.
    let e = c.simple_query(row500).await.unwrap_err();
    assert_eq!(code(&e), Some("22012"));
    assert_answers(&mut c, 6, "simple").await;
    drop(c);
    assert_recovered(&pool, &app, BUDGET).await;
}

/// P6: 65,536 parameters is a client-side error naming the count and the limit, with nothing
/// sent (pg_stat_activity still shows the previous statement) and the connection usable; a
/// text parameter with a NUL byte is the server's clean 22021 (it travels in binary, as bytes),
/// and the connection stays usable.
#[tokio::test]
async fn p6_too_many_parameters_and_nul_in_text() {
    let app = unique_name("p6");
    let pool = started(pool_builder(&app, 2)).await;
    let mut c = pool.connection().await.unwrap();
    let pid = c.backend_pid();
    let n = 65_536;
    let sql = format!(
        "SELECT ARRAY[{}]",
        (1..=n)
            .map(|i| format!("${i}::int4"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let one = 1i32;
    let params: Vec<&(dyn pool_core::ToSql + Sync)> = vec![&one; n];
    for unprepared in [false, true] {
        let marker = format!("SELECT 'p6 marker {unprepared}'");
        c.batch_execute(&marker).await.unwrap();
        let r = if unprepared {
            c.execute_unprepared(&sql, &params).await
        } else {
            c.execute(&sql, &params).await
        };
        let e = r.unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(e.as_backend(), Some(pgwire_lite::Error::Conversion(_))),
            "{e:?}"
        );
        assert!(text.contains("65536") && text.contains("65535"), "{text}");
        assert!(c.is_idle() && !c.is_broken(), "{unprepared}");
        let (_, last) = backend_state(pid).await.unwrap();
        assert_eq!(last, marker, "unprepared={unprepared}: something was sent");
        assert_answers(&mut c, 6, "after 65,536 parameters").await;
    }

    for unprepared in [false, true] {
        let sql = "SELECT $1::text";
        let r = if unprepared {
            c.execute_unprepared(sql, &[&"a\0b"]).await
        } else {
            c.execute(sql, &[&"a\0b"]).await
        };
        let e = r.unwrap_err();
        assert_eq!(code(&e), Some("22021"), "{e:?}");
        assert!(e.to_string().contains("0x00"), "{e}");
        assert!(c.is_idle());
        assert_answers(&mut c, 7, "after a NUL in text").await;
    }
    drop(c);
    assert_recovered(&pool, &app, BUDGET).await;
}

/// P7: a 50 MB value comes back whole; the same with the connection's message cap lowered to
/// 1 MiB is a protocol (limit) error naming the cap, and the connection is broken and closed,
/// never reused (it cannot skip the rest safely). A million rows come back whole too (`execute`
/// buffers the whole result: memory is about the size of the result).
#[tokio::test]
async fn p7_huge_results_and_the_message_cap() {
    let app = unique_name("p7");
    let pool = started(pool_builder(&app, 2)).await;
    let sql = "SELECT repeat('x', 50000000)";
    let r = pool.execute(sql, &[]).await.unwrap();
    assert_eq!(r.rows()[0].get::<_, &str>(0).len(), 50_000_000);
    drop(r);
    let r = pool
        .execute("SELECT g FROM generate_series(1, 1000000) g", &[])
        .await
        .unwrap();
    assert_eq!(r.rows().len(), 1_000_000);
    assert_eq!(r.rows()[999_999].get::<_, i32>(0), 1_000_000);
    drop(r);

    let mut c = pool.connection().await.unwrap();
    let pid = c.backend_pid();
    let conn = c.connection_mut().await.unwrap();
    conn.set_max_message_len(1 << 20);
    let e = conn.execute(sql, &[]).await.unwrap_err();
    assert!(matches!(e, pgwire_lite::Error::Protocol(_)), "{e:?}");
    assert!(
        e.to_string().contains("1048576"),
        "the cap is not named: {e}"
    );
    assert!(conn.is_broken());
    drop(c);
    quiesce(&pool).await;
    let mut next = pool.connection().await.unwrap();
    assert_ne!(next.backend_pid(), pid, "a broken connection was reused");
    assert_clean(&mut next, 7, "after the cap").await;
    drop(next);
    wait_backend_gone(pid, BUDGET).await;
    assert_recovered(&pool, &app, BUDGET).await;
}

/// P8: the API offers no Execute row limit, so the server never sends PortalSuspended to it;
/// what is tested is the SQL-level partial fetch (a cursor, `FETCH 10`) and that the connection
/// is usable right after, in and out of the transaction (sqlx
/// `it_pings_after_suspended_query`).
#[tokio::test]
async fn p8_partial_fetch_with_a_cursor() {
    let app = unique_name("p8");
    let pool = started(pool_builder(&app, 2)).await;
    let mut c = pool.connection().await.unwrap();
    let mut tx = c.transaction().await.unwrap();
    tx.batch_execute("DECLARE p8 CURSOR FOR SELECT g FROM generate_series(1, 1000) g")
        .await
        .unwrap();
    let r = tx.simple_query("FETCH 10 FROM p8").await.unwrap();
    assert_eq!(r[0].rows().len(), 10);
    let r = tx.execute("SELECT 1::int4", &[]).await.unwrap();
    assert_eq!(r.rows().len(), 1);
    let r = tx.simple_query("FETCH 5 FROM p8").await.unwrap();
    assert_eq!(r[0].rows()[0].raw(0).unwrap(), Some(&b"11"[..]));
    tx.commit().await.unwrap();
    assert_answers(&mut c, 8, "after the cursor").await;
    drop(c);
    assert_recovered(&pool, &app, BUDGET).await;
}
