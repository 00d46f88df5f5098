//! Chaos suite, server side (tests/FAULTS.md: server lifecycle S1-S9 and server-side limits
//! L1-L11): each test injects one fault with the harness's fault kit, asserts what FAULTS.md says
//! must hold (error variant and SQLSTATE, never just `is_err()`), and ends with
//! `common::assert_recovered` (A1, A2, A4).
//!
//! Tests that stop, restart, crash or freeze the server use their own
//! `Cluster::start_throwaway()`; the others use the shared cluster with their own
//! `application_name` (and their own role where a role setting is the fault). All blocking
//! harness calls (psql, pg_ctl, kill) run in `block_in_place`, so the runtime's other worker keeps
//! driving the pool meanwhile.

mod common;

use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{started, within};
use pg_harness::{Cluster, Role, SCRAM_PASS, SCRAM_USER, ShutdownMode};
use pg_harness::{cluster, unique_name};
use pgwire_lite::{Config, Connection, TargetSessionAttrs};
use pool_core::{Error as PoolError, PsqlPool, PsqlPoolBuilder, TimeoutKind};

/// The budgets of tests/FAULTS.md assume `connect_timeout = 2 s` and `wait = 1 s`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const WAIT_TIMEOUT: Duration = Duration::from_secs(1);
/// A2: the pool serves a fresh query within 2 s after the fault clears...
const RECOVER: Duration = Duration::from_secs(2);
/// ...and within `connect_timeout + 1 s` after a server restart.
const RECOVER_AFTER_RESTART: Duration = Duration::from_secs(3);

// ------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------

/// Runs a blocking harness call (psql, pg_ctl, kill) without stalling the runtime.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// `url` plus our application_name and connect timeout.
fn config(url: &str, app: &str, connect_timeout: Duration) -> Config {
    let mut c: Config = url.parse().expect("the harness's URL parses");
    c.application_name(app).connect_timeout(connect_timeout);
    c
}

/// A pool on `url` tagged `app`, with the timeouts the budgets assume.
fn pool_on(url: &str, app: &str, max: usize) -> PsqlPoolBuilder {
    PsqlPool::builder()
        .config(config(url, app, CONNECT_TIMEOUT))
        .max_db_pool_size(max)
        .wait_timeout(WAIT_TIMEOUT)
}

/// `common::assert_recovered` (status adds up, a fresh `SELECT 1` within `budget`, backend count
/// on the shared cluster), plus the backend count on `pg`, which for a throwaway cluster is where
/// the pool's backends actually are (`common::backends` only looks at the shared cluster).
async fn recovered(pg: &Cluster, pool: &PsqlPool, app: &str, budget: Duration) {
    common::assert_recovered(pool, app, budget).await;
    let n = blocking(|| pg.backend_pids_of_app(app, None)).len();
    let max = pool.status().max_size;
    assert!(
        n <= max,
        "the server holds {n} backends for {app}, more than the pool's maximum {max}"
    );
}

/// Polls `cond` every 10 ms until it holds; panics after `limit`.
async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "still waiting after {limit:?} for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The client error inside a pool error; panics with the error if it is a pool-level one.
fn backend(e: &PoolError) -> &pgwire_lite::Error {
    e.as_backend()
        .unwrap_or_else(|| panic!("expected the server's/connection's error, got {e:?}"))
}

/// Asserts a database error with this SQLSTATE (and FATAL severity when `fatal`).
fn assert_db(e: &pgwire_lite::Error, code: &str, fatal: bool) {
    let db = e
        .as_db_error()
        .unwrap_or_else(|| panic!("expected a database error {code}, got {e:?}"));
    assert_eq!(db.code(), code, "{e:?}");
    assert_eq!(db.is_fatal(), fatal, "severity of {e:?}");
}

/// The connection ended by the server closing the socket: `Io(UnexpectedEof)` or `Closed`,
/// never a database error (a WARNING notice before the EOF is context, not the error).
fn assert_eof(e: &pgwire_lite::Error) {
    assert_eq!(e.code(), None, "a notice was taken for the error: {e:?}");
    match e {
        pgwire_lite::Error::Io(io) => assert_eq!(io.kind(), ErrorKind::UnexpectedEof, "{e:?}"),
        pgwire_lite::Error::Closed(_) => {}
        other => panic!("expected EOF (Io(UnexpectedEof) or Closed), got {other:?}"),
    }
}

/// What S3/S6-style assertions accept for a session the server ended: FATAL 57P01, or the
/// socket closing under it.
fn assert_terminated(e: &pgwire_lite::Error) {
    match e {
        pgwire_lite::Error::Db(_) => assert_db(e, "57P01", true),
        pgwire_lite::Error::Io(_) | pgwire_lite::Error::Closed(_) => {}
        other => panic!("expected 57P01, Io or Closed, got {other:?}"),
    }
}

async fn query_i32(conn: &mut pool_core::PooledConnection, sql: &str) -> i32 {
    conn.query_one(sql, &[]).await.expect(sql).get::<_, i32>(0)
}

/// Collects the notices a connection receives.
fn collect_notices(conn: &mut Connection) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    conn.set_notice_handler(Some(Box::new(move |n| {
        sink.lock().unwrap_or_else(|e| e.into_inner()).push(format!(
            "{} {} {}",
            n.severity(),
            n.code(),
            n.message()
        ));
    })));
    seen
}

/// Starts `n` borrowers that each run `sql` (expected to be interrupted) and report the error
/// and whether their connection was left broken. Returns once all are running on the server.
async fn in_flight(
    pg: &Cluster,
    pool: &PsqlPool,
    app: &str,
    n: usize,
    sql: &'static str,
) -> Vec<tokio::task::JoinHandle<(pool_core::Error, bool, Vec<String>)>> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = pool.connection().await.expect("borrow");
            let notices = collect_notices(conn.connection_mut().await.expect("settle"));
            let err = conn
                .execute(sql, &[])
                .await
                .expect_err("the fault must interrupt the query");
            let broken = conn.is_broken();
            let notices = notices.lock().unwrap_or_else(|e| e.into_inner()).clone();
            (err, broken, notices)
        }));
    }
    let deadline = Duration::from_secs(5);
    let start = Instant::now();
    loop {
        let active = blocking(|| pg.backend_pids_of_app(app, Some("active"))).len();
        if active >= n {
            break;
        }
        assert!(
            start.elapsed() < deadline,
            "only {active} of {n} queries running"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tasks
}

/// Drops a database (forcing its sessions out) when dropped; never panics.
struct DatabaseGuard<'a> {
    pg: &'a Cluster,
    name: String,
}

impl Drop for DatabaseGuard<'_> {
    fn drop(&mut self) {
        let _ = self.pg.psql_with(
            &self.pg.admin_url(),
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

// ------------------------------------------------------------------------------------------
// S: server lifecycle
// ------------------------------------------------------------------------------------------

/// S1: `startup()` against a stopped server fails at once with `Io(ConnectionRefused)` naming
/// host:port, starts nothing in the background, and succeeds once the server is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s1_server_down_at_startup() {
    let pg = Cluster::start_throwaway();
    let app = unique_name("s1");
    blocking(|| pg.stop());
    let pool = pool_on(&pg.url(Role::Scram), &app, 2).build().unwrap();
    let where_ = format!("127.0.0.1:{}", pg.port());

    let start = Instant::now();
    let err = within(
        Duration::from_millis(500),
        "startup against a stopped server",
        pool.startup(),
    )
    .await
    .expect_err("nothing listens");
    match backend(&err) {
        pgwire_lite::Error::Io(io) => assert_eq!(io.kind(), ErrorKind::ConnectionRefused),
        other => panic!("expected Io(ConnectionRefused), got {other:?}"),
    }
    assert!(
        err.to_string().contains(&where_),
        "the error must name {where_}: {err}"
    );
    // The bare client says the same.
    let cfg = config(&pg.url(Role::Scram), &app, CONNECT_TIMEOUT);
    let err = Connection::connect(&cfg).await.expect_err("refused");
    assert!(
        matches!(&err, pgwire_lite::Error::Io(io) if io.kind() == ErrorKind::ConnectionRefused),
        "{err:?}"
    );
    assert!(err.to_string().contains(&where_), "{err}");
    assert!(start.elapsed() < Duration::from_millis(500));

    // No lazy start, nothing retrying in the background: the pool stays empty and unstarted.
    assert!(matches!(
        pool.connection().await,
        Err(PoolError::NotStarted)
    ));
    let s = pool.status();
    assert_eq!((s.size, s.in_use, s.waiting), (0, 0, 0), "{s:?}");

    blocking(|| pg.start());
    within(
        CONNECT_TIMEOUT,
        "startup once the server is up",
        pool.startup(),
    )
    .await
    .expect("startup succeeds once the server is up");
    recovered(&pg, &pool, &app, RECOVER_AFTER_RESTART).await;
}

/// S2: a fast restart while every pooled connection is idle: the non-blocking read at checkout
/// sees FATAL 57P01 + EOF and replaces them; borrowers see zero errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s2_fast_restart_with_idle_connections_gives_zero_errors() {
    let pg = Cluster::start_throwaway();
    let app = unique_name("s2");
    let pool = started(pool_on(&pg.url(Role::Scram), &app, 4)).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(pool.connection().await.unwrap());
    }
    let old: Vec<i32> = held.iter().map(|c| c.backend_pid()).collect();
    drop(held);
    assert_eq!(pool.status().idle, 4);

    blocking(|| pg.restart_with(ShutdownMode::Fast));

    // Borrows that start after the restart finished: not one error.
    let mut tasks = Vec::new();
    for i in 0..8i32 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut pids = Vec::new();
            for j in 0..5i32 {
                let mut c = pool
                    .connection()
                    .await
                    .expect("zero errors after a restart");
                pids.push(c.backend_pid());
                let r = c
                    .query_one("SELECT $1::int4 * 10 + $2::int4", &[&i, &j])
                    .await
                    .expect("zero errors after a restart");
                assert_eq!(r.get::<_, i32>(0), i * 10 + j);
            }
            pids
        }));
    }
    for t in tasks {
        for pid in t.await.unwrap() {
            assert!(
                !old.contains(&pid),
                "a dead pre-restart connection was handed out"
            );
        }
    }
    recovered(&pg, &pool, &app, RECOVER_AFTER_RESTART).await;
}

/// S3: a fast restart while queries run: each borrower gets 57P01 (or the EOF under it), its
/// connection is broken and never pooled, the slots are freed, later borrows succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_fast_restart_with_queries_in_flight() {
    let pg = Cluster::start_throwaway();
    let app = unique_name("s3");
    let pool = started(pool_on(&pg.url(Role::Scram), &app, 3)).await;
    let tasks = in_flight(&pg, &pool, &app, 3, "SELECT pg_sleep(30)").await;

    blocking(|| pg.restart_with(ShutdownMode::Fast));

    for t in tasks {
        let (err, broken, _) = within(Duration::from_secs(2), "an interrupted borrower", t)
            .await
            .unwrap();
        assert_terminated(backend(&err));
        assert!(broken, "the connection must be marked broken: {err:?}");
    }
    let s = pool.status();
    assert_eq!(
        (s.size, s.idle, s.in_use, s.waiting),
        (0, 0, 0, 0),
        "broken connections must not be pooled: {s:?}"
    );
    recovered(&pg, &pool, &app, RECOVER_AFTER_RESTART).await;
}

/// S4: immediate shutdown. The backend sends WARNING 57P01 as a *notice* and then EOF: the
/// error is the EOF (with the notice as context), not the warning. New connects are refused
/// until the server is started again; then the pool recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s4_immediate_shutdown() {
    let pg = Cluster::start_throwaway();
    let app = unique_name("s4");
    let pool = started(pool_on(&pg.url(Role::Scram), &app, 3)).await;
    // One idle connection besides the busy one.
    drop(pool.connection().await.unwrap());
    let tasks = in_flight(&pg, &pool, &app, 1, "SELECT pg_sleep(30)").await;

    blocking(|| pg.stop_with(ShutdownMode::Immediate));

    for t in tasks {
        let (err, broken, notices) = within(Duration::from_secs(2), "the busy borrower", t)
            .await
            .unwrap();
        let e = backend(&err);
        assert_eof(e);
        assert!(broken);
        assert!(
            notices
                .iter()
                .any(|n| n.starts_with("WARNING 57P01") && n.contains("immediate shutdown")),
            "the warning reaches the notice handler: {notices:?}"
        );
        assert!(
            err.to_string().contains("immediate shutdown"),
            "the EOF error keeps the server's last words as context: {err}"
        );
    }
    // The idle one is noticed dead at checkout; a new one is refused while the server is down.
    let err = within(WAIT_TIMEOUT, "a borrow while down", pool.connection())
        .await
        .expect_err("the server is down");
    assert!(
        matches!(backend(&err), pgwire_lite::Error::Io(io) if io.kind() == ErrorKind::ConnectionRefused),
        "{err:?}"
    );
    let s = pool.status();
    assert_eq!((s.size, s.in_use, s.waiting), (0, 0, 0), "{s:?}");

    blocking(|| pg.start());
    recovered(&pg, &pool, &app, RECOVER_AFTER_RESTART).await;
}

/// S5: `kill -9` of another backend: every session gets WARNING 57P02 + EOF (EOF is the error);
/// creates during crash recovery fail with 57P03 to the borrower that asked; the pool is not
/// poisoned and recovers within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s5_crash_of_another_backend() {
    let pg = Cluster::start_throwaway();
    let app = unique_name("s5");
    let pool = started(pool_on(&pg.url(Role::Scram), &app, 3)).await;
    let (a, b) = (
        pool.connection().await.unwrap(),
        pool.connection().await.unwrap(),
    );
    let idle_pids = [a.backend_pid(), b.backend_pid()];
    drop((a, b));
    let tasks = in_flight(&pg, &pool, &app, 1, "SELECT pg_sleep(30)").await;
    let victim = Connection::connect(&config(&pg.url(Role::Postgres), "victim", CONNECT_TIMEOUT))
        .await
        .unwrap();

    blocking(|| pg.crash_backend(victim.backend_pid()));

    for t in tasks {
        let (err, broken, notices) = within(Duration::from_secs(2), "the busy borrower", t)
            .await
            .unwrap();
        assert_eof(backend(&err));
        assert!(broken);
        assert!(
            notices.iter().any(|n| n.starts_with("WARNING 57P02")),
            "{notices:?}"
        );
        assert!(
            err.to_string().contains("crash of another server process"),
            "the EOF error keeps the server's last words as context: {err}"
        );
    }
    // The idle pooled sessions were reset by the postmaster too.
    wait_for(
        "the crashed sessions to exit",
        Duration::from_secs(5),
        || {
            idle_pids
                .iter()
                .all(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
        },
    )
    .await;

    // Until recovery is over, creates fail with 57P03; the idle dead ones never surface.
    let start = Instant::now();
    let mut refusals = 0;
    loop {
        match pool.execute("SELECT 1::int4", &[]).await {
            Ok(r) => {
                assert_eq!(r.rows()[0].get::<_, i32>(0), 1);
                break;
            }
            Err(e) => {
                assert_db(backend(&e), "57P03", true);
                refusals += 1;
                let s = pool.status();
                assert_eq!(
                    (s.in_use, s.waiting),
                    (0, 0),
                    "a failed create is not counted: {s:?}"
                );
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no recovery within 5 s ({refusals} refusals)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("57P03 refusals during recovery: {refusals}");
    recovered(&pg, &pool, &app, RECOVER_AFTER_RESTART).await;
}

/// S6: a SIGSTOPped postmaster. TCP connects succeed but startup never answers, so new
/// connections fail with a timeout at `connect_timeout` (which covers startup and auth);
/// borrows served by idle connections keep working; waiters get a wait timeout on schedule;
/// everything recovers after SIGCONT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s6_frozen_postmaster() {
    const CT: Duration = Duration::from_millis(800);
    const WAIT: Duration = Duration::from_millis(400);
    let pg = Cluster::start_throwaway();
    let app = unique_name("s6");
    let cfg = config(&pg.url(Role::Scram), &app, CT);
    let pool = started(
        PsqlPool::builder()
            .config(cfg.clone())
            .max_db_pool_size(2)
            .wait_timeout(WAIT)
            .create_timeout(Duration::from_secs(5)),
    )
    .await;
    assert_eq!(pool.status().idle, 1);

    let frozen = blocking(|| pg.freeze());

    // The idle connection's backend is not frozen: it serves.
    let mut idle = within(
        WAIT,
        "a borrow served by an idle connection",
        pool.connection(),
    )
    .await
    .expect("the idle connection serves");
    assert_eq!(query_i32(&mut idle, "SELECT 7::int4").await, 7);

    // The bare client: Error::Timeout at connect_timeout, not before.
    let start = Instant::now();
    let err = within(CT, "connect to a frozen server", Connection::connect(&cfg))
        .await
        .expect_err("startup never answers");
    assert!(err.is_timeout(), "{err:?}");
    assert!(
        start.elapsed() >= CT,
        "gave up early: {:?}",
        start.elapsed()
    );

    // The pool: a create (holding the second slot) times out at connect_timeout, and a third
    // borrower, finding no free slot, gets a wait timeout at its own schedule.
    let creator = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let r = pool.connection().await.map(|_| ());
            (r, start.elapsed())
        })
    };
    wait_for("the creator to take the slot", CT, || {
        pool.status().in_use == 2
    })
    .await;
    let start = Instant::now();
    let err = within(WAIT, "a waiter", pool.connection())
        .await
        .expect_err("no slot frees up");
    assert_eq!(err.timeout_kind(), Some(TimeoutKind::Wait), "{err:?}");
    assert!(start.elapsed() >= WAIT);
    let (r, took) = within(CT, "the creator", creator).await.unwrap();
    let err = r.expect_err("the create times out");
    assert!(
        matches!(backend(&err), pgwire_lite::Error::Timeout(_)),
        "a connect timeout, not {err:?}"
    );
    assert!(took >= CT, "gave up early: {took:?}");
    let s = pool.status();
    assert_eq!((s.size, s.in_use, s.waiting), (1, 1, 0), "{s:?}");
    assert_eq!(query_i32(&mut idle, "SELECT 8::int4").await, 8);
    drop(idle);

    frozen.thaw();
    // After SIGCONT new connections work again: two at once forces one new connection.
    let (mut a, mut b) = within(RECOVER, "two borrows after thawing", async {
        (pool.connection().await, pool.connection().await)
    })
    .await;
    {
        let (a, b) = (
            a.as_mut().expect("after thaw"),
            b.as_mut().expect("after thaw"),
        );
        assert_eq!(query_i32(a, "SELECT 1::int4").await, 1);
        assert_eq!(query_i32(b, "SELECT 2::int4").await, 2);
    }
    drop((a, b));
    recovered(&pg, &pool, &app, RECOVER).await;
}

/// S7: a backend SIGSTOPped while its session runs `SELECT 1` in a loop. Only the client-side
/// query timeout ends the wait: `Error::Timeout`, the connection closed (broken, never pooled),
/// the slot freed. The pool has no query-timeout knob, so it is set on the pooled connection
/// through `connection_mut()`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s7_hung_backend_mid_query() {
    const QT: Duration = Duration::from_millis(300);
    let pg = Cluster::start_throwaway();
    let app = unique_name("s7");
    let pool = started(pool_on(&pg.url(Role::Scram), &app, 2)).await;
    let mut conn = pool.connection().await.unwrap();
    let pid = conn.backend_pid();
    conn.connection_mut()
        .await
        .unwrap()
        .set_query_timeout(Some(QT));
    let done = Arc::new(AtomicUsize::new(0));
    let looping = {
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            loop {
                let start = Instant::now();
                match conn.execute("SELECT 1::int4", &[]).await {
                    Ok(_) => done.fetch_add(1, Ordering::Relaxed),
                    Err(e) => return (e, start.elapsed(), conn),
                };
            }
        })
    };
    wait_for("the loop to run", Duration::from_secs(2), || {
        done.load(Ordering::Relaxed) >= 20
    })
    .await;

    let frozen = blocking(|| pg.freeze_backend(pid));

    // The timeout fires at QT; the client then tries a CancelRequest and a drain bounded by QT
    // again (documented on set_query_timeout), which a stopped peer never answers.
    let (err, took, conn) = within(QT * 2, "the hung query", looping).await.unwrap();
    assert!(
        matches!(backend(&err), pgwire_lite::Error::QueryTimeout(_)),
        "{err:?}"
    );
    assert!(took >= QT, "gave up early: {took:?}");
    assert!(
        conn.is_broken(),
        "a stopped peer must not be drained and reused"
    );
    drop(conn);
    let s = pool.status();
    assert_eq!(
        (s.size, s.in_use, s.waiting),
        (0, 0, 0),
        "the hung connection must be closed and its slot freed: {s:?}"
    );
    // Another borrower is served meanwhile, by a new connection.
    let mut other = within(
        CONNECT_TIMEOUT,
        "a borrow while one backend hangs",
        pool.connection(),
    )
    .await
    .unwrap();
    assert_ne!(other.backend_pid(), pid);
    assert_eq!(query_i32(&mut other, "SELECT 5::int4").await, 5);
    drop(other);

    drop(frozen);
    wait_for(
        "the hung backend to exit once resumed",
        Duration::from_secs(3),
        || !std::path::Path::new(&format!("/proc/{pid}")).exists(),
    )
    .await;
    recovered(&pg, &pool, &app, RECOVER).await;
}

/// S8: `kill -9` of one backend every 500 ms while 16 tasks run queries. Failures are only
/// 57P0x / I/O / closed; within 2 s of the last kill every task succeeds again; no leak.
/// Two seconds of kills keep the test near the suite's 5 s budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s8_crash_restart_cycle_under_load() {
    const MAX: usize = 8;
    let pg = Cluster::start_throwaway();
    let app = unique_name("s8");
    let pool =
        started(pool_on(&pg.url(Role::Scram), &app, MAX).wait_timeout(Duration::from_secs(2)))
            .await;
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let pool = pool.clone();
        let stop = Arc::clone(&stop);
        tasks.push(tokio::spawn(async move {
            let mut unexpected = Vec::new();
            let mut last_err: Option<Duration> = None;
            let mut oks_at = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match pool.execute("SELECT 1::int4", &[]).await {
                    Ok(_) => oks_at.push(epoch.elapsed()),
                    Err(e) => {
                        last_err = Some(epoch.elapsed());
                        let fine = match e.as_backend() {
                            Some(pgwire_lite::Error::Db(db)) => db.code().starts_with("57P0"),
                            Some(pgwire_lite::Error::Io(_) | pgwire_lite::Error::Closed(_)) => true,
                            _ => false,
                        };
                        if !fine {
                            unexpected.push(format!("{e:?}"));
                        }
                        // A failed borrow returns at once; do not spin on a recovering server.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                let s = pool.status();
                assert!(s.size <= MAX && s.size == s.idle + s.in_use, "{s:?}");
            }
            (unexpected, last_err, oks_at)
        }));
    }

    let mut kills = 0;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let pids = pg.backend_pids_of_user(SCRAM_USER);
        if let Some(&pid) = pids.get(kills % pids.len().max(1)) {
            if blocking(|| pg.try_crash_backend(pid)) {
                kills += 1;
            }
        }
    }
    let last_kill = epoch.elapsed();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    stop.store(true, Ordering::Relaxed);
    let mut errors = 0;
    for t in tasks {
        let (unexpected, last_err, oks_at) = within(Duration::from_secs(3), "a load task", t)
            .await
            .expect("no panic in a load task");
        assert!(unexpected.is_empty(), "unexpected errors: {unexpected:?}");
        if let Some(at) = last_err {
            errors += 1;
            assert!(
                at <= last_kill + Duration::from_secs(2),
                "a task still failed {:?} after the last kill",
                at - last_kill
            );
        }
        assert!(
            oks_at
                .iter()
                .any(|&t| t > last_kill + Duration::from_secs(2)),
            "a task did not succeed again within 2 s of the last kill"
        );
    }
    assert!(kills >= 3, "only {kills} backends were killed");
    println!("{kills} crashes, {errors} of 16 tasks saw errors");
    let s = pool.status();
    assert!(s.size <= MAX && s.in_use == 0, "{s:?}");
    recovered(&pg, &pool, &app, RECOVER).await;
}

/// S9: credential rotation. Existing connections keep working; a new connection fails 28P01,
/// surfaced to the requester without poisoning the pool. The running pool cannot take a new
/// password (no `set_password`: the gap is reported), so the last step is what can be done: a
/// pool built with the new password connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s9_credential_rotation() {
    let pg = cluster();
    if !pg.require_roles() {
        return;
    }
    let name = unique_name("chaos_s9");
    let role = blocking(|| pg.create_role(&name, "old_pw"));
    let app = unique_name("s9");
    let pool = started(pool_on(&role.url(), &app, 3)).await;
    let mut a = pool.connection().await.unwrap();
    let mut b = pool.connection().await.unwrap();

    blocking(|| pg.set_role_password(&name, "new_pw"));

    assert_eq!(query_i32(&mut a, "SELECT 1::int4").await, 1);
    assert_eq!(query_i32(&mut b, "SELECT 2::int4").await, 2);
    let err = within(
        CONNECT_TIMEOUT,
        "a create with the old password",
        pool.connection(),
    )
    .await
    .expect_err("the old password no longer works");
    assert_db(backend(&err), "28P01", true);
    let s = pool.status();
    assert_eq!((s.size, s.in_use, s.waiting), (2, 2, 0), "{s:?}");
    drop(a);
    // Not poisoned: the idle session serves the next borrower.
    assert_eq!(
        pool.execute("SELECT 3::int4", &[]).await.unwrap().rows()[0].get::<_, i32>(0),
        3
    );
    drop(b);

    // The running pool takes the new password: connections opened from now on use it, the
    // open ones are kept.
    pool.set_password("new_pw");
    let held: Vec<_> = futures_all(&pool, 3).await;
    assert_eq!(pool.status().size, 3);
    assert!(!format!("{pool:?}").contains("new_pw"));
    drop(held);
    recovered(pg, &pool, &app, RECOVER).await;
    pool.close().await;
}

/// Borrows `n` connections at once (so new ones must be opened).
async fn futures_all(pool: &pool_core::PsqlPool, n: usize) -> Vec<pool_core::PooledConnection> {
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(
            pool.connection()
                .await
                .expect("a connection with the rotated password"),
        );
    }
    held
}

// ------------------------------------------------------------------------------------------
// L: server-side limits and timeouts
// ------------------------------------------------------------------------------------------

/// L1: the role's CONNECTION LIMIT is reached. The create fails with 53300 to the borrower that
/// asked; others keep being served by existing connections; the failed create is not counted;
/// the background filler backs off instead of retrying every tick; recovers once slots free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_connection_limit() {
    let pg = cluster();
    if !pg.require_roles() {
        return;
    }
    let name = unique_name("chaos_l1");
    let role = blocking(|| pg.create_role(&name, "pw_l1"));
    blocking(|| pg.set_connection_limit(&name, 2));
    let app = unique_name("l1");
    let pool = started(pool_on(&role.url(), &app, 4)).await;
    let a = pool.connection().await.unwrap();
    let b = pool.connection().await.unwrap();

    let err = within(WAIT_TIMEOUT, "a create over the limit", pool.connection())
        .await
        .expect_err("over the role's connection limit");
    assert_db(backend(&err), "53300", true);
    assert!(err.to_string().contains("too many connections"), "{err}");
    let s = pool.status();
    assert_eq!((s.size, s.in_use, s.waiting), (2, 2, 0), "{s:?}");

    // Concurrent borrowers: the ones that got a session are served; the others get 53300.
    let (pa, pb) = (a.backend_pid(), b.backend_pid());
    drop((a, b));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut served = Vec::new();
            for _ in 0..5 {
                match pool.connection().await {
                    Ok(mut c) => {
                        assert_eq!(query_i32(&mut c, "SELECT 1::int4").await, 1);
                        served.push(c.backend_pid());
                    }
                    Err(e) => assert_db(backend(&e), "53300", true),
                }
            }
            served
        }));
    }
    let mut served = Vec::new();
    for t in tasks {
        served.extend(t.await.unwrap());
    }
    assert!(!served.is_empty());
    assert!(
        served.iter().all(|p| *p == pa || *p == pb),
        "only the two existing sessions can serve"
    );

    // The background filler (min_idle above the limit) must not retry every maintenance tick
    // (every 100 ms with this idle_timeout): it backs off (L1, G6 in tests/FAULTS.md).
    let filler_app = unique_name("l1fill");
    let log = pg.log_file().to_path_buf();
    let refusals = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches(&format!("too many connections for role \"{name}\""))
            .count()
    };
    drop(pool);
    wait_for(
        "the first pool's sessions to end",
        Duration::from_secs(3),
        || pg.backend_pids_of_app(&app, None).is_empty(),
    )
    .await;
    let filler = started(
        pool_on(&role.url(), &filler_app, 4)
            .min_idle(3)
            .idle_timeout(Duration::from_millis(400)),
    )
    .await;
    let before = refusals();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let attempts = refusals() - before;
    assert!(
        attempts <= 6,
        "the min_idle filler retried {attempts} times in 1.5 s against a full server \
         (no backoff: 100 ms doubling would be about 4)"
    );
    let s = filler.status();
    assert!(s.size <= 2 && s.in_use == 0, "{s:?}");

    blocking(|| pg.set_connection_limit(&name, -1));
    let mut four = Vec::new();
    for _ in 0..4 {
        four.push(
            within(
                CONNECT_TIMEOUT,
                "a borrow after the limit is lifted",
                filler.connection(),
            )
            .await
            .unwrap(),
        );
    }
    drop(four);
    recovered(pg, &filler, &filler_app, RECOVER).await;
    filler.close().await;
}

/// L2: `statement_timeout`: 57014, and the connection stays usable and goes back to the pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l2_statement_timeout() {
    let pg = cluster();
    if !pg.require_roles() {
        return;
    }
    let app = unique_name("l2");
    let pool = started(common::pool_builder(&app, 2)).await;
    let mut c = pool.connection().await.unwrap();
    let pid = c.backend_pid();
    c.batch_execute("SET statement_timeout = '50ms'")
        .await
        .unwrap();
    let err = within(
        Duration::from_secs(1),
        "a statement over its timeout",
        c.execute("SELECT pg_sleep(1)", &[]),
    )
    .await
    .expect_err("statement_timeout");
    assert_db(backend(&err), "57014", false);
    assert!(c.is_idle() && !c.is_broken(), "{c:?}");
    c.batch_execute("RESET statement_timeout").await.unwrap();
    drop(c);
    let mut again = pool.connection().await.unwrap();
    assert_eq!(
        again.backend_pid(),
        pid,
        "the connection went back to the pool"
    );
    assert_eq!(query_i32(&mut again, "SELECT 1::int4").await, 1);
    drop(again);
    recovered(pg, &pool, &app, RECOVER).await;
}

/// L3: `idle_in_transaction_session_timeout`: the server sends FATAL 25P03 asynchronously and
/// closes. The next use gets it; the connection is broken and not pooled. With a transaction
/// guard, its rollback sees the broken connection and just frees the slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l3_idle_in_transaction_timeout() {
    let pg = cluster();
    if !pg.require_roles() {
        return;
    }
    let app = unique_name("l3");
    let pool = started(common::pool_builder(&app, 2)).await;

    // A plain BEGIN.
    let mut c = pool.connection().await.unwrap();
    let pid = c.backend_pid();
    c.batch_execute("SET idle_in_transaction_session_timeout = '100ms'")
        .await
        .unwrap();
    c.begin().await.unwrap();
    wait_for(
        "the server to end the idle transaction",
        Duration::from_secs(3),
        || !blocking(|| pg.backend_pids_of_app(&app, None)).contains(&pid),
    )
    .await;
    let err = c
        .execute("SELECT 1", &[])
        .await
        .expect_err("the session is gone");
    assert_db(backend(&err), "25P03", true);
    assert!(c.is_broken());
    drop(c);
    let s = pool.status();
    assert_eq!((s.size, s.in_use), (0, 0), "not pooled: {s:?}");

    // Inside a transaction guard.
    let mut c = pool.connection().await.unwrap();
    let pid = c.backend_pid();
    c.batch_execute("SET idle_in_transaction_session_timeout = '100ms'")
        .await
        .unwrap();
    let mut tx = c.transaction().await.unwrap();
    wait_for(
        "the server to end the idle transaction",
        Duration::from_secs(3),
        || !blocking(|| pg.backend_pids_of_app(&app, None)).contains(&pid),
    )
    .await;
    let err = tx
        .execute("SELECT 1", &[])
        .await
        .expect_err("the session is gone");
    assert_db(backend(&err), "25P03", true);
    // The guard ends here uncommitted, so a rollback is pending; giving the connection back
    // must see it broken and just free the slot.
    drop(c);
    let s = pool.status();
    assert_eq!(
        (s.size, s.in_use, s.waiting),
        (0, 0, 0),
        "slot freed: {s:?}"
    );
    recovered(pg, &pool, &app, RECOVER).await;
}

/// L4: `idle_session_timeout` (per role) kills pooled idle connections: noticed at checkout
/// without a round trip and replaced; borrowers see zero errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l4_idle_session_timeout_kills_pooled_connections() {
    let pg = cluster();
    if !pg.require_roles() {
        return;
    }
    let name = unique_name("chaos_l4");
    let role = blocking(|| pg.create_role(&name, "pw_l4"));
    blocking(|| pg.set_role_option(&name, "idle_session_timeout", "200ms"));
    let app = unique_name("l4");
    let pool = started(pool_on(&role.url(), &app, 3)).await;
    let held: Vec<_> = vec![
        pool.connection().await.unwrap(),
        pool.connection().await.unwrap(),
        pool.connection().await.unwrap(),
    ];
    let old: Vec<i32> = held.iter().map(|c| c.backend_pid()).collect();
    drop(held);
    assert_eq!(pool.status().idle, 3);
    wait_for(
        "the server to end the idle sessions (57P05)",
        Duration::from_secs(3),
        || blocking(|| pg.backend_pids_of_app(&app, None)).is_empty(),
    )
    .await;
    // New sessions must not die mid-test on a loaded machine: the fault has been delivered.
    blocking(|| pg.reset_role_option(&name, "idle_session_timeout"));

    let mut tasks = Vec::new();
    for _ in 0..3 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut pids = Vec::new();
            for _ in 0..5 {
                let mut c = pool.connection().await.expect("zero errors");
                assert_eq!(query_i32(&mut c, "SELECT 1::int4").await, 1);
                pids.push(c.backend_pid());
            }
            pids
        }));
    }
    for t in tasks {
        for pid in t.await.unwrap() {
            assert!(!old.contains(&pid), "a killed session was handed out");
        }
    }
    recovered(pg, &pool, &app, RECOVER).await;
    pool.close().await;
}

/// L5: `pg_terminate_backend` on idle pooled connections: as L4, zero errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l5_terminate_idle_pooled_connections() {
    let pg = cluster();
    if !pg.require_roles() {
        return;
    }
    let app = unique_name("l5");
    let pool = started(common::pool_builder(&app, 3)).await;
    let held = vec![
        pool.connection().await.unwrap(),
        pool.connection().await.unwrap(),
        pool.connection().await.unwrap(),
    ];
    drop(held);
    let idle = blocking(|| pg.backend_pids_of_app(&app, Some("idle")));
    assert_eq!(idle.len(), 3);
    for &pid in &idle {
        assert!(blocking(|| pg.terminate(pid)), "terminate {pid}");
    }
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut pids = Vec::new();
            for _ in 0..5 {
                let mut c = pool.connection().await.expect("zero errors");
                assert_eq!(query_i32(&mut c, "SELECT 1::int4").await, 1);
                pids.push(c.backend_pid());
            }
            pids
        }));
    }
    for t in tasks {
        for pid in t.await.unwrap() {
            assert!(!idle.contains(&pid), "a terminated session was handed out");
        }
    }
    recovered(pg, &pool, &app, RECOVER).await;
}

/// L6: `pg_terminate_backend` on a busy connection: FATAL 57P01 to that borrower, the
/// connection broken, the slot freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l6_terminate_busy_connection() {
    let pg = cluster();
    if !pg.require_roles() {
        return;
    }
    let app = unique_name("l6");
    let pool = started(common::pool_builder(&app, 2)).await;
    let tasks = in_flight(pg, &pool, &app, 1, "SELECT pg_sleep(30)").await;
    let active = blocking(|| pg.backend_pids_of_app(&app, Some("active")));
    assert_eq!(active.len(), 1);
    assert!(blocking(|| pg.terminate(active[0])));
    for t in tasks {
        let (err, broken, _) = within(Duration::from_secs(2), "the terminated borrower", t)
            .await
            .unwrap();
        assert_db(backend(&err), "57P01", true);
        assert!(broken);
    }
    let s = pool.status();
    assert_eq!((s.size, s.in_use, s.waiting), (0, 0, 0), "{s:?}");
    recovered(pg, &pool, &app, RECOVER).await;
}

/// L7: `pg_cancel_backend`: 57014; the connection is reusable and goes back to the pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l7_cancel_backend() {
    let pg = cluster();
    if !pg.require_roles() {
        return;
    }
    let app = unique_name("l7");
    let pool = started(common::pool_builder(&app, 2)).await;
    let tasks = in_flight(pg, &pool, &app, 1, "SELECT pg_sleep(30)").await;
    let active = blocking(|| pg.backend_pids_of_app(&app, Some("active")));
    assert_eq!(active.len(), 1);
    assert!(blocking(|| pg.cancel(active[0])));
    for t in tasks {
        let (err, broken, _) = within(Duration::from_secs(2), "the cancelled borrower", t)
            .await
            .unwrap();
        assert_db(backend(&err), "57014", false);
        assert!(!broken);
    }
    let s = pool.status();
    assert_eq!((s.size, s.idle, s.in_use), (1, 1, 0), "pooled again: {s:?}");
    let mut c = pool.connection().await.unwrap();
    assert_eq!(c.backend_pid(), active[0], "the same session, reused");
    assert_eq!(query_i32(&mut c, "SELECT 1::int4").await, 1);
    drop(c);
    recovered(pg, &pool, &app, RECOVER).await;
}

/// L8: the database refuses connections: `ALLOW_CONNECTIONS false` (55000), `CONNECTION LIMIT
/// 0` (53300), an unknown database (3D000), an unknown role (28P01/28000): a clear database
/// error with its SQLSTATE, from `startup()` and from a create in a running pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l8_database_refuses_connections() {
    let pg = cluster();
    if !pg.require_roles() {
        return;
    }
    let db = unique_name("chaos_l8");
    blocking(|| pg.psql(&format!("CREATE DATABASE {db} ALLOW_CONNECTIONS false")));
    let _drop_db = DatabaseGuard {
        pg,
        name: db.clone(),
    };
    let app = unique_name("l8");
    let url = |user: &str, pass: &str, db: &str| {
        format!(
            "postgresql://{user}:{pass}@{}:{}/{db}",
            pg.host(),
            pg.port()
        )
    };
    let scram_url = url(SCRAM_USER, SCRAM_PASS, &db);

    // startup(): ALLOW_CONNECTIONS false.
    let pool = pool_on(&scram_url, &app, 3).build().unwrap();
    let err = pool.startup().await.expect_err("connections not allowed");
    assert_db(backend(&err), "55000", true);
    assert!(
        err.to_string()
            .contains("not currently accepting connections"),
        "{err}"
    );
    // CONNECTION LIMIT 0.
    blocking(|| {
        pg.psql(&format!(
            "ALTER DATABASE {db} ALLOW_CONNECTIONS true CONNECTION LIMIT 0"
        ))
    });
    let err = pool.startup().await.expect_err("connection limit 0");
    assert_db(backend(&err), "53300", true);
    // Unknown database, unknown role.
    let err = Connection::connect(&config(
        &url(SCRAM_USER, SCRAM_PASS, "no_such_db_l8"),
        &app,
        CONNECT_TIMEOUT,
    ))
    .await
    .expect_err("unknown database");
    assert_db(&err, "3D000", true);
    let err = Connection::connect(&config(
        &url("no_such_role_l8", "x", &db),
        &app,
        CONNECT_TIMEOUT,
    ))
    .await
    .expect_err("unknown role");
    let code = err.code().unwrap_or_else(|| panic!("{err:?}")).to_string();
    assert!(code == "28P01" || code == "28000", "{err:?}");
    assert_db(&err, &code, true);

    // A running pool: a create refused while the database refuses, then recovered.
    blocking(|| pg.psql(&format!("ALTER DATABASE {db} CONNECTION LIMIT -1")));
    pool.startup().await.expect("startup once allowed");
    let mut held = pool.connection().await.unwrap();
    blocking(|| pg.psql(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS false")));
    let err = pool.connection().await.expect_err("create refused");
    assert_db(backend(&err), "55000", true);
    assert_eq!(
        query_i32(&mut held, "SELECT 1::int4").await,
        1,
        "not poisoned"
    );
    let s = pool.status();
    assert_eq!((s.size, s.in_use, s.waiting), (1, 1, 0), "{s:?}");
    drop(held);
    blocking(|| pg.psql(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true")));
    let (a, b) = (
        pool.connection().await.unwrap(),
        pool.connection().await.unwrap(),
    );
    drop((a, b));
    recovered(pg, &pool, &app, RECOVER).await;
    pool.close().await;
}

/// L9: slow authentication (`pre_auth_delay`): `Error::Timeout` at `connect_timeout`, the
/// half-open socket closed, the permit released; recovers once the server is fast again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l9_slow_startup() {
    const CT: Duration = Duration::from_millis(500);
    let pg = Cluster::start_throwaway();
    let app = unique_name("l9");
    let cfg = config(&pg.url(Role::Scram), &app, CT);
    let pool = started(
        PsqlPool::builder()
            .config(cfg.clone())
            .max_db_pool_size(2)
            .wait_timeout(WAIT_TIMEOUT)
            .create_timeout(Duration::from_secs(5)),
    )
    .await;
    let mut admin =
        Connection::connect(&config(&pg.url(Role::Postgres), "l9admin", CONNECT_TIMEOUT))
            .await
            .unwrap();
    let mut held = pool.connection().await.unwrap();
    // Two statements: ALTER SYSTEM refuses the implicit transaction of a multi-statement query.
    admin
        .batch_execute("ALTER SYSTEM SET pre_auth_delay = '1s'")
        .await
        .unwrap();
    admin
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        let v: String = admin
            .query_one("SHOW pre_auth_delay", &[])
            .await
            .unwrap()
            .get(0);
        if v == "1s" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "reload not applied: {v}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let established = pg.established_connections();
    assert_eq!(established, 2, "admin and the held session");

    let start = Instant::now();
    let err = within(CT, "a create against a slow server", pool.connection())
        .await
        .expect_err("authentication takes 1 s");
    assert!(
        matches!(backend(&err), pgwire_lite::Error::Timeout(_)),
        "{err:?}"
    );
    assert!(start.elapsed() >= CT);
    let s = pool.status();
    assert_eq!(
        (s.size, s.in_use, s.waiting),
        (1, 1, 0),
        "permit released: {s:?}"
    );
    // The half-open socket was closed: the server side is in CLOSE_WAIT, not ESTABLISHED.
    wait_for(
        "the half-open connection to be closed",
        Duration::from_millis(500),
        || pg.established_connections() == established,
    )
    .await;
    let err = within(
        CT,
        "a bare connect against a slow server",
        Connection::connect(&cfg),
    )
    .await
    .expect_err("authentication takes 1 s");
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(query_i32(&mut held, "SELECT 1::int4").await, 1);
    drop(held);

    admin
        .batch_execute("ALTER SYSTEM RESET pre_auth_delay")
        .await
        .unwrap();
    admin
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        let v: String = admin
            .query_one("SHOW pre_auth_delay", &[])
            .await
            .unwrap()
            .get(0);
        if v == "0" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "reload not applied: {v}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (a, b) = (
        pool.connection().await.unwrap(),
        pool.connection().await.unwrap(),
    );
    drop((a, b));
    recovered(&pg, &pool, &app, RECOVER).await;
}

/// L10: `target_session_attrs=read-write` against a read-only server: one host → a clear error
/// naming the attribute; several hosts → the next host is used. PG >= 14 reports
/// `default_transaction_read_only` and `in_hot_standby` at startup, so no extra round trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l10_target_session_attrs_read_write_vs_read_only() {
    let pg = cluster();
    if !pg.require_roles() {
        return;
    }
    let name = unique_name("chaos_l10");
    let role = blocking(|| pg.create_role(&name, "pw_l10"));
    blocking(|| pg.set_role_option(&name, "default_transaction_read_only", "on"));
    let app = unique_name("l10");
    let mut rw = config(&role.url(), &app, CONNECT_TIMEOUT);
    rw.target_session_attrs(TargetSessionAttrs::ReadWrite);

    let err = Connection::connect(&rw)
        .await
        .expect_err("the only host is read-only");
    assert!(
        matches!(&err, pgwire_lite::Error::Closed(m) if m.contains("target_session_attrs=read-write")),
        "a clear error naming target_session_attrs=read-write: {err:?}"
    );
    // read-only and any accept it.
    let mut ro = rw.clone();
    ro.target_session_attrs(TargetSessionAttrs::ReadOnly);
    let c = Connection::connect(&ro)
        .await
        .expect("read-only accepts a read-only server");
    assert_eq!(c.parameter("default_transaction_read_only"), Some("on"));
    drop(c);
    // No standby here: primary and prefer-standby accept this server, standby refuses it.
    for (attrs, ok) in [
        (TargetSessionAttrs::Any, true),
        (TargetSessionAttrs::Primary, true),
        (TargetSessionAttrs::PreferStandby, true),
        (TargetSessionAttrs::Standby, false),
    ] {
        let mut c = rw.clone();
        c.target_session_attrs(attrs);
        match Connection::connect(&c).await {
            Ok(_) => assert!(ok, "{attrs} accepted a primary"),
            Err(pgwire_lite::Error::Closed(m)) if !ok => {
                assert!(m.contains("target_session_attrs=standby"), "{m}");
            }
            Err(e) => panic!("{attrs}: {e:?}"),
        }
    }

    let pool = PsqlPool::builder()
        .config(rw.clone())
        .max_db_pool_size(2)
        .wait_timeout(WAIT_TIMEOUT)
        .build()
        .unwrap();
    let err = pool.startup().await.expect_err("no read-write host");
    assert!(
        matches!(backend(&err), pgwire_lite::Error::Closed(m) if m.contains("read-write")),
        "{err:?}"
    );

    // Multi-host: a throwaway server made read-only for scram_user first, the shared one second.
    let ro_pg = Cluster::start_throwaway();
    blocking(|| ro_pg.set_role_option(SCRAM_USER, "default_transaction_read_only", "on"));
    let multi = format!(
        "postgresql://{SCRAM_USER}:{SCRAM_PASS}@127.0.0.1:{},127.0.0.1:{}/{}?target_session_attrs=read-write",
        ro_pg.port(),
        pg.port(),
        pg.db_name()
    );
    let c = Connection::connect(&config(&multi, &app, CONNECT_TIMEOUT))
        .await
        .expect("the second host is read-write");
    assert_eq!(
        c.peer(),
        &pgwire_lite::Peer::Tcp(format!("127.0.0.1:{}", pg.port()).parse().unwrap()),
        "skipped the read-only first host"
    );
    assert_eq!(c.parameter("default_transaction_read_only"), Some("off"));
    drop(c);

    // The role becomes writable: the same pool starts.
    blocking(|| pg.reset_role_option(&name, "default_transaction_read_only"));
    pool.startup().await.expect("a read-write server now");
    recovered(pg, &pool, &app, RECOVER).await;
    pool.close().await;
}

/// L11: the server becomes read-only at runtime (`ALTER SYSTEM` + reload): writes fail 25006,
/// the connections stay usable and pooled (not evicted); new read-write connections are
/// refused by target_session_attrs; everything recovers when it is writable again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l11_server_becomes_read_only_at_runtime() {
    let pg = Cluster::start_throwaway();
    let app = unique_name("l11");
    let pool = started(pool_on(&pg.url(Role::Postgres), &app, 2)).await;
    let table = unique_name("l11_t");
    pool.execute(&format!("CREATE TABLE {table} (x int4)"), &[])
        .await
        .unwrap();
    let mut a = pool.connection().await.unwrap();
    let mut b = pool.connection().await.unwrap();
    let pids = [a.backend_pid(), b.backend_pid()];
    let show = "SELECT current_setting('default_transaction_read_only')";

    // Two statements: ALTER SYSTEM refuses the implicit transaction of a multi-statement query.
    a.batch_execute("ALTER SYSTEM SET default_transaction_read_only = on")
        .await
        .unwrap();
    a.batch_execute("SELECT pg_reload_conf()").await.unwrap();
    for c in [&mut a, &mut b] {
        let start = Instant::now();
        while c.query_one(show, &[]).await.unwrap().get::<_, String>(0) != "on" {
            assert!(
                start.elapsed() < Duration::from_secs(3),
                "reload not applied"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let insert = format!("INSERT INTO {table} VALUES (1)");
    for c in [&mut a, &mut b] {
        let err = c.execute(&insert, &[]).await.expect_err("read-only");
        assert_db(backend(&err), "25006", false);
        assert!(c.is_idle() && !c.is_broken(), "stays usable: {c:?}");
    }
    drop((a, b));
    let s = pool.status();
    assert_eq!((s.size, s.idle), (2, 2), "not evicted: {s:?}");
    let err = pool.execute(&insert, &[]).await.expect_err("read-only");
    assert_db(backend(&err), "25006", false);
    // New connections that want a writable server are refused.
    let mut rw = config(&pg.url(Role::Postgres), &app, CONNECT_TIMEOUT);
    rw.target_session_attrs(TargetSessionAttrs::ReadWrite);
    let err = Connection::connect(&rw)
        .await
        .expect_err("read-only server");
    assert!(
        matches!(&err, pgwire_lite::Error::Closed(m) if m.contains("target_session_attrs=read-write")),
        "{err:?}"
    );

    let mut a = pool.connection().await.unwrap();
    let mut b = pool.connection().await.unwrap();
    let mut now = [a.backend_pid(), b.backend_pid()];
    now.sort_unstable();
    let mut before = pids;
    before.sort_unstable();
    assert_eq!(now, before, "the same sessions, still pooled");
    a.batch_execute("ALTER SYSTEM RESET default_transaction_read_only")
        .await
        .unwrap();
    a.batch_execute("SELECT pg_reload_conf()").await.unwrap();
    for c in [&mut a, &mut b] {
        let start = Instant::now();
        while c.query_one(show, &[]).await.unwrap().get::<_, String>(0) != "off" {
            assert!(
                start.elapsed() < Duration::from_secs(3),
                "reload not applied"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        c.execute(&insert, &[]).await.expect("writable again");
    }
    drop((a, b));
    Connection::connect(&rw).await.expect("read-write again");
    recovered(&pg, &pool, &app, RECOVER).await;
}
