//! Multiplexed `pool.execute` (`multiplexing(true)`) against a real server: every caller gets
//! its own statement's outcome (no cross-talk) under cancellation, failures stay with their
//! statement, connection failures and server restarts end every caller's wait, session-changing
//! statements never share a connection, a large result does not hold up other callers, and
//! `resize()` moves the multiplexer with the pool.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{admin, pool_builder, started};
use pg_harness::{Cluster, Role, ShutdownMode, unique_name};
use pool_core::{Error as PoolError, PsqlPool};

/// Every call of these tests must end within this (none hangs).
const CALL_LIMIT: Duration = Duration::from_secs(10);

/// A small deterministic generator (xorshift), so a failure can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A multiplexing pool; `batches`: one Sync per batch of statements written together.
async fn mux_pool(app: &str, max: usize, batches: bool) -> PsqlPool {
    started(
        pool_builder(app, max)
            .multiplexing(true)
            .multiplexing_batches(batches),
    )
    .await
}

/// Runs `SELECT $1::int8` once so the pool learns it is safe to multiplex.
async fn learn_select(pool: &PsqlPool) {
    learn(pool, "SELECT $1::int8").await;
}

/// Runs `sql` (`SELECT $1::int8 ...`) once on a whole connection so the pool learns it is
/// safe to multiplex.
async fn learn(pool: &PsqlPool, sql: &str) {
    let r = pool.execute(sql, &[&-1i64]).await.unwrap();
    assert_eq!(r.rows()[0].get::<_, i64>(0), -1);
}

/// The status adds up, and nothing is queued any more (a cancelled caller's response may
/// still be on its way to the drain task: it gets a moment).
async fn assert_status_adds_up(pool: &PsqlPool) {
    // A connection given back inside a transaction (BEGIN) is rolled back by a pool task.
    let deadline = Instant::now() + Duration::from_secs(2);
    let settled =
        |s: pool_core::Status| s.queued == 0 && s.in_use <= pool.multiplexed_connections();
    while !settled(pool.status()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let s = pool.status();
    assert_eq!(s.queued, 0, "requests still queued: {s:?}");
    assert_eq!(s.waiting, 0, "{s:?}");
    assert_eq!(s.idle + s.in_use, s.size, "status does not add up: {s:?}");
    assert!(s.size <= s.max_size, "{s:?}");
    assert!(
        s.in_use <= pool.multiplexed_connections(),
        "a slot is held by something other than multiplexing: {s:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_callers_get_their_own_values_under_random_cancellation() {
    sixty_four_callers_get_their_own_values_under_random_cancellation_with(false).await;
}

/// The same with one Sync per batch: a failing statement's batch is rolled back and the
/// others run again alone, so the outcome each caller sees is the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_callers_get_their_own_values_under_random_cancellation_in_batches() {
    sixty_four_callers_get_their_own_values_under_random_cancellation_with(true).await;
}

async fn sixty_four_callers_get_their_own_values_under_random_cancellation_with(batches: bool) {
    let app = unique_name("mux_own");
    let pool = mux_pool(&app, 8, batches).await;
    learn_select(&pool).await;
    let completed = Arc::new(AtomicUsize::new(0));
    let cancelled = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for caller in 0..64u64 {
        let (pool, completed, cancelled) = (pool.clone(), completed.clone(), cancelled.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (caller + 1));
            for i in 0..100u64 {
                let value = i64::try_from(caller * 1_000_000 + i).unwrap();
                let params: [&(dyn pool_core::ToSql + Sync); 1] = [&value];
                let call = pool.execute("SELECT $1::int8", &params);
                // One call in four gets a tiny time limit: cancelled while queued, written,
                // or half read.
                let r = if rng.next() % 4 == 0 {
                    let limit = Duration::from_micros(rng.next() % 300);
                    match tokio::time::timeout(limit, call).await {
                        Ok(r) => r,
                        Err(_) => {
                            cancelled.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    }
                } else {
                    tokio::time::timeout(CALL_LIMIT, call)
                        .await
                        .expect("a multiplexed call hung")
                };
                let got: i64 = r.expect("SELECT $1 succeeds").rows()[0].get(0);
                assert_eq!(got, value, "caller {caller} got another caller's result");
                completed.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (done, gone) = (
        completed.load(Ordering::Relaxed),
        cancelled.load(Ordering::Relaxed),
    );
    assert_eq!(done + gone, 6400);
    assert!(done > 4000, "only {done} calls completed");
    assert!(
        pool.multiplexed_connections() > 0,
        "nothing was multiplexed"
    );
    // Cancelled callers' responses are read by whoever reads next: one more round drains them.
    for v in 0..16i64 {
        let r = pool.execute("SELECT $1::int8", &[&v]).await.unwrap();
        assert_eq!(r.rows()[0].get::<_, i64>(0), v);
    }
    assert_status_adds_up(&pool).await;
    // A whole connection is still handed out: a shared one goes back to the pool for it.
    let mut conn = tokio::time::timeout(Duration::from_secs(2), pool.connection())
        .await
        .expect("connection() while connections are shared")
        .expect("a whole connection");
    let r = conn.execute("SELECT 7::int4", &[]).await.unwrap();
    assert_eq!(r.rows()[0].get::<_, i32>(0), 7);
    drop(conn);
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_insert_among_63_good_ones_fails_alone() {
    one_failing_insert_among_63_good_ones_fails_alone_with(false).await;
}

/// The same with one Sync per batch: a failing statement's batch is rolled back and the
/// others run again alone, so the outcome each caller sees is the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_insert_among_63_good_ones_fails_alone_in_batches() {
    one_failing_insert_among_63_good_ones_fails_alone_with(true).await;
}

async fn one_failing_insert_among_63_good_ones_fails_alone_with(batches: bool) {
    let app = unique_name("mux_ins");
    let table = unique_name("mux_ins_t");
    let mut a = admin().await;
    a.batch_execute(&format!(
        "CREATE TABLE {table} (id int8 PRIMARY KEY, v int8 NOT NULL CHECK (v >= 0))"
    ))
    .await
    .unwrap();
    // Two connections for 64 callers: they must share.
    let pool = mux_pool(&app, 2, batches).await;
    let insert = format!("INSERT INTO {table} (id, v) VALUES ($1, $2)");
    pool.execute(&insert, &[&-1i64, &0i64]).await.unwrap();
    for round in 0..5i64 {
        let mut tasks = Vec::new();
        for i in 0..64i64 {
            let (pool, insert) = (pool.clone(), insert.clone());
            let id = round * 100 + i;
            // Caller 17 violates the CHECK constraint.
            let v = if i == 17 { -1 } else { i };
            tasks.push(tokio::spawn(async move {
                let r = tokio::time::timeout(CALL_LIMIT, pool.execute(&insert, &[&id, &v]))
                    .await
                    .expect("a multiplexed INSERT hung");
                (i, r)
            }));
        }
        for t in tasks {
            let (i, r) = t.await.unwrap();
            if i == 17 {
                let e = r.expect_err("the failing INSERT errors");
                let db = match &e {
                    PoolError::Backend(b) => b.as_db_error().expect("a server error"),
                    other => panic!("expected the CHECK violation, got {other:?}"),
                };
                assert_eq!(db.code(), "23514", "{db:?}");
            } else {
                let r = r.unwrap_or_else(|e| panic!("good INSERT {i} failed: {e}"));
                assert_eq!(r.rows_affected(), 1);
            }
        }
    }
    assert!(
        pool.multiplexed_connections() > 0,
        "nothing was multiplexed"
    );
    let rows = a
        .query(
            &format!(
                "SELECT id, count(*)::int8 FROM {table} WHERE id >= 0 GROUP BY id ORDER BY id"
            ),
            &[],
        )
        .await
        .unwrap();
    let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    let expected: Vec<i64> = (0..5i64)
        .flat_map(|round| (0..64).filter(|i| *i != 17).map(move |i| round * 100 + i))
        .collect();
    assert_eq!(
        ids, expected,
        "every good row exactly once, the bad one absent"
    );
    assert!(rows.iter().all(|r| r.get::<_, i64>(1) == 1));
    assert_status_adds_up(&pool).await;
    pool.close().await;
    a.batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_changing_statements_are_never_multiplexed() {
    let app = unique_name("mux_set");
    let pool = mux_pool(&app, 4, false).await;
    // Each runs on a whole connection; none of them may ever be shared.
    for _ in 0..3 {
        let mut tasks = Vec::new();
        for sql in [
            "SET statement_timeout = 0",
            "BEGIN",
            "LISTEN mux_never",
            "SET application_name = 'mux_never'",
        ] {
            let pool = pool.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..8 {
                    let _ = pool.execute(sql, &[]).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
    assert_eq!(
        pool.multiplexed_connections(),
        0,
        "a session-changing statement was multiplexed"
    );
    // BEGIN left its connection in a transaction: the pool rolled it back, and a statement
    // that is safe is multiplexed from its second run on.
    learn_select(&pool).await;
    let r = pool.execute("SELECT $1::int8", &[&5i64]).await.unwrap();
    assert_eq!(r.rows()[0].get::<_, i64>(0), 5);
    assert_eq!(pool.multiplexed_connections(), 1);
    // A BEGIN run while SELECTs are multiplexed goes to a whole connection, so the shared
    // one never sees a transaction.
    let mut tasks = Vec::new();
    for caller in 0..16i64 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                if caller == 0 && i % 10 == 0 {
                    pool.execute("BEGIN", &[]).await.unwrap();
                } else {
                    let v = caller * 1000 + i;
                    let r = pool.execute("SELECT $1::int8", &[&v]).await.unwrap();
                    assert_eq!(r.rows()[0].get::<_, i64>(0), v);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_status_adds_up(&pool).await;
    pool.close().await;
}

/// Runs `callers` tasks of `SELECT $1::int8` until `stop` is set; every call ends (within the
/// limit) with its own value or an error. Each task returns (ok, errors).
fn load(
    pool: &PsqlPool,
    callers: u64,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<(u64, u64)>> {
    (0..callers)
        .map(|caller| {
            let (pool, stop) = (pool.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut ok, mut err) = (0, 0);
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let value = i64::try_from(caller * 10_000_000 + i).unwrap();
                    let r = tokio::time::timeout(
                        CALL_LIMIT,
                        pool.execute("SELECT $1::int8", &[&value]),
                    )
                    .await
                    .expect("a multiplexed call hung through a connection failure");
                    match r {
                        Ok(r) => {
                            assert_eq!(r.rows()[0].get::<_, i64>(0), value, "cross-talk");
                            ok += 1;
                        }
                        Err(_) => {
                            err += 1;
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                }
                (ok, err)
            })
        })
        .collect()
}

async fn totals(tasks: Vec<tokio::task::JoinHandle<(u64, u64)>>) -> (u64, u64) {
    let mut sum = (0, 0);
    for t in tasks {
        let (ok, err) = t.await.unwrap();
        sum.0 += ok;
        sum.1 += err;
    }
    sum
}

/// Serves fresh calls within `budget` and the status adds up.
async fn assert_recovers(pool: &PsqlPool, budget: Duration) {
    let start = Instant::now();
    loop {
        match pool.execute("SELECT $1::int8", &[&42i64]).await {
            Ok(r) => {
                assert_eq!(r.rows()[0].get::<_, i64>(0), 42);
                break;
            }
            Err(e) => {
                assert!(
                    start.elapsed() < budget,
                    "no recovery within {budget:?}: {e}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    // Several in a row: every shared connection left is a live one.
    for v in 0..32i64 {
        let r = pool.execute("SELECT $1::int8", &[&v]).await.unwrap();
        assert_eq!(r.rows()[0].get::<_, i64>(0), v);
    }
    assert_status_adds_up(pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_backends_under_multiplexed_load() {
    terminated_backends_under_multiplexed_load_with(false).await;
}

/// The same with one Sync per batch: a failing statement's batch is rolled back and the
/// others run again alone, so the outcome each caller sees is the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_backends_under_multiplexed_load_in_batches() {
    terminated_backends_under_multiplexed_load_with(true).await;
}

async fn terminated_backends_under_multiplexed_load_with(batches: bool) {
    let app = unique_name("mux_kill");
    let pool = mux_pool(&app, 4, batches).await;
    learn_select(&pool).await;
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&pool, 32, &stop);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut a = admin().await;
    eprintln!(
        "before kill: shared {} status {:?}",
        pool.multiplexed_connections(),
        pool.status()
    );
    let killed: Vec<bool> = a
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&app.as_str()],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!killed.is_empty(), "no backend to terminate");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let (ok, err) = totals(tasks).await;
    eprintln!("ok {ok} err {err} killed {}", killed.len());
    assert!(ok > 0, "nothing succeeded");
    assert!(
        err > 0,
        "terminating every backend under load failed no call"
    );
    assert_recovers(&pool, Duration::from_secs(3)).await;
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_under_multiplexed_load() {
    server_restart_under_multiplexed_load_with(false).await;
}

/// The same with one Sync per batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_under_multiplexed_load_in_batches() {
    server_restart_under_multiplexed_load_with(true).await;
}

async fn server_restart_under_multiplexed_load_with(batches: bool) {
    let pg = Cluster::start_throwaway();
    let app = unique_name("mux_restart");
    let mut cfg: pgwire_lite::Config = pg.url(Role::Scram).parse().unwrap();
    cfg.application_name(&app)
        .connect_timeout(Duration::from_secs(2));
    let pool = started(
        PsqlPool::builder()
            .config(cfg)
            .max_db_pool_size(4)
            .wait_timeout(Duration::from_secs(1))
            .multiplexing(true)
            .multiplexing_batches(batches),
    )
    .await;
    learn_select(&pool).await;
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&pool, 32, &stop);
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::task::block_in_place(|| pg.restart_with(ShutdownMode::Fast));
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let (ok, err) = totals(tasks).await;
    assert!(ok > 0, "nothing succeeded");
    assert!(err > 0, "a restart under load failed no call");
    assert_recovers(&pool, Duration::from_secs(3)).await;
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_result_does_not_stall_the_others() {
    a_large_result_does_not_stall_the_others_with(false).await;
}

/// The same with one Sync per batch: a failing statement's batch is rolled back and the
/// others run again alone, so the outcome each caller sees is the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_result_does_not_stall_the_others_in_batches() {
    a_large_result_does_not_stall_the_others_with(true).await;
}

async fn a_large_result_does_not_stall_the_others_with(batches: bool) {
    let app = unique_name("mux_big");
    let pool = mux_pool(&app, 4, batches).await;
    let big = "SELECT g::int8 FROM generate_series(1, $1::int8) g";
    learn_select(&pool).await;
    let r = pool.execute(big, &[&10i64]).await.unwrap();
    assert_eq!(r.len(), 10);
    // Warm the shared connections with small calls.
    let mut warm = Vec::new();
    for v in 0..16i64 {
        let pool = pool.clone();
        warm.push(tokio::spawn(async move {
            pool.execute("SELECT $1::int8", &[&v]).await.unwrap()
        }));
    }
    for t in warm {
        t.await.unwrap();
    }
    let big_task = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let r = pool.execute(big, &[&200_000i64]).await.unwrap();
            assert_eq!(r.len(), 200_000);
            assert_eq!(r.rows()[199_999].get::<_, i64>(0), 200_000);
            (start.elapsed(), Instant::now())
        })
    };
    // Small calls while the big one transfers: each is bounded by the big one's own time, and
    // once its connection is seen to carry a large response (head-of-line blocking is inherent
    // to pipelining: a caller queued behind it waits for it), new callers go elsewhere and
    // finish long before it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut small = Vec::new();
    for caller in 0..8i64 {
        let pool = pool.clone();
        small.push(tokio::spawn(async move {
            let mut worst = Duration::ZERO;
            for i in 0..10 {
                let v = caller * 100 + i;
                let t = Instant::now();
                let r = pool.execute("SELECT $1::int8", &[&v]).await.unwrap();
                assert_eq!(r.rows()[0].get::<_, i64>(0), v);
                worst = worst.max(t.elapsed());
            }
            (worst, Instant::now())
        }));
    }
    let (big_took, big_end) = big_task.await.unwrap();
    let mut finished_before_big = 0;
    eprintln!("shared connections: {}", pool.multiplexed_connections());
    for t in small {
        let (worst, done_at) = t.await.unwrap();
        eprintln!(
            "small: worst {worst:?}, done {:?} before the large result; it took {big_took:?}",
            big_end.saturating_duration_since(done_at)
        );
        assert!(
            worst <= big_took + Duration::from_millis(200),
            "a small call waited {worst:?}, the large result took {big_took:?}"
        );
        if done_at < big_end {
            finished_before_big += 1;
        }
    }
    // Usually most finish while the large result transfers; a caller that landed behind it
    // before its connection was seen to carry a large result waits for it (responses are in
    // order), which on a loaded machine can be every small caller: not asserted.
    eprintln!("{finished_before_big} of 8 small callers finished before the large result");
    assert_status_adds_up(&pool).await;
    pool.close().await;
}

/// A SELECT can change the session (`set_config(.., false)`): its tag does not tell. When the
/// server reports the change (ParameterStatus, for TimeZone, DateStyle, application_name, ...),
/// the solo run that shows it keeps the statement off shared connections; a statement that
/// changes nothing in its solo run and then does on a shared connection closes that connection,
/// and its caller hears so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_select_that_changes_a_reported_setting_is_caught() {
    let app = unique_name("mux_guc");
    let pool = mux_pool(&app, 4, false).await;
    // Changes TimeZone in its solo run: never learned as safe.
    for _ in 0..3 {
        pool.execute("SELECT set_config('TimeZone', 'Asia/Tokyo', false)", &[])
            .await
            .unwrap();
    }
    assert_eq!(pool.multiplexed_connections(), 0);
    // Sets the value the session already has: no change, so its solo run proves nothing
    // wrong and it is learned...
    let sql = "SELECT set_config('DateStyle', $1, false)";
    let mut c = pool.connection().await.unwrap();
    let current: String = c.query_one("SHOW DateStyle", &[]).await.unwrap().get(0);
    drop(c);
    pool.execute(sql, &[&current.as_str()]).await.unwrap();
    // ...then, shared, it changes DateStyle: the connection is closed, the caller told.
    let err = tokio::time::timeout(CALL_LIMIT, pool.execute(sql, &[&"SQL, DMY"]))
        .await
        .expect("must not hang")
        .expect_err("a changed session setting on a shared connection is an error");
    assert!(
        err.to_string().contains("session setting"),
        "the error must say why: {err}"
    );
    // Nobody else runs under the changed DateStyle: every fresh session has the default.
    for v in 0..16i64 {
        let r = pool.execute("SELECT $1::int8", &[&v]).await.unwrap();
        assert_eq!(r.rows()[0].get::<_, i64>(0), v);
    }
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let r = pool
                .execute("SELECT current_setting('DateStyle')", &[])
                .await;
            r.unwrap().rows()[0].get::<_, String>(0)
        }));
    }
    for t in tasks {
        let style = t.await.unwrap();
        assert!(
            !style.contains("DMY"),
            "a changed DateStyle leaked: {style}"
        );
    }
    assert_status_adds_up(&pool).await;
    pool.close().await;
}

/// `resize()` moves the multiplexer with the pool: a shrink hands the surplus shared
/// connections back (and the pool closes them), and the queue bound follows the new size
/// (`max × 64` callers queued or in flight), also for permits held while it shrank.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resize_moves_the_multiplexer_with_the_pool() {
    let pool = mux_pool("mux_resize", 4, false).await;
    // Slow enough that lines fill up (another connection is shared only when every line has
    // 4 or more) and up to 2 × 64 callers stay queued after the shrink.
    let slow = "SELECT $1::int8 FROM pg_sleep(0.002)";
    learn(&pool, slow).await;
    callers_run(&pool, slow, 32, 5).await;
    let before = pool.multiplexed_connections();
    assert!(
        before > 2,
        "32 callers shared only {before} connections: {:?}",
        pool.status()
    );

    pool.resize(2).unwrap();
    assert!(
        pool.multiplexed_connections() <= 2,
        "{} connections still shared after resize(2)",
        pool.multiplexed_connections()
    );
    let done = Arc::new(AtomicBool::new(false));
    let max_queued = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (pool, done, max_queued) = (pool.clone(), done.clone(), max_queued.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Acquire) {
                max_queued.fetch_max(pool.status().queued, Ordering::AcqRel);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    // 200 callers at once: the old bound (4 × 64) would let all of them queue.
    callers_run(&pool, slow, 200, 1).await;
    done.store(true, Ordering::Release);
    sampler.await.unwrap();
    let max_queued = max_queued.load(Ordering::Acquire);
    assert!(
        max_queued <= 2 * 64,
        "{max_queued} queued: the queue bound did not follow resize(2)"
    );
    assert!(
        max_queued > 64,
        "the burst never filled the queue ({max_queued}): nothing was tested"
    );
    assert!(
        pool.multiplexed_connections() <= 2,
        "{} connections shared after resize(2)",
        pool.multiplexed_connections()
    );
    assert_status_adds_up(&pool).await;
    assert!(pool.status().size <= 2, "{:?}", pool.status());

    // Growing again gives the multiplexer the room back.
    pool.resize(4).unwrap();
    callers_run(&pool, slow, 32, 5).await;
    assert!(pool.multiplexed_connections() > 2, "{:?}", pool.status());
    assert_status_adds_up(&pool).await;
}

/// A multiplexed request too large to share (over 16 KiB) takes the normal path; the Closes
/// of evicted statements that were encoded in front of it go with the next request instead of
/// being lost (the evicted statement would stay prepared on the server until the connection
/// closed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closes_in_front_of_a_request_too_large_to_share_are_not_lost() {
    let pool = started(
        PsqlPool::builder()
            .dsn(format!(
                "{}?application_name=mux_closes&connect_timeout=2&statement_cache_capacity=2",
                pg_harness::cluster().admin_url()
            ))
            .max_db_pool_size(2)
            .multiplexing(true),
    )
    .await;
    let a = "SELECT $1::int8 AS mux_closes_a";
    let c = "SELECT $1::int8 AS mux_closes_c";
    let d = "SELECT length($1::text)::int8 AS mux_closes_d";
    let q = "SELECT count(*)::int8 FROM pg_prepared_statements WHERE statement = $1";
    // One caller at a time: every statement's first run is alone (on the other connection,
    // where it is learnt safe), later runs share the one shared connection, whose statement
    // cache holds 2.
    for sql in [a, a, c, c] {
        pool.execute(sql, &[&1i64]).await.unwrap();
    }
    pool.execute(d, &[&"x"]).await.unwrap();
    assert_eq!(pool.multiplexed_connections(), 1);
    // Shared: d is prepared first (evicting a, whose Close waits for the next request), then
    // its Bind is too large to share: it runs on the other connection, and the Close must not
    // go with it.
    let huge = "z".repeat(20 * 1024);
    let r = pool.execute(d, &[&huge]).await.unwrap();
    assert_eq!(r.rows()[0].get::<_, i64>(0), 20 * 1024);
    // Learnt on the other connection, then shared: a's Close rides in front of it.
    pool.execute(q, &[&a]).await.unwrap();
    let r = pool.execute(q, &[&a]).await.unwrap();
    assert_eq!(pool.multiplexed_connections(), 1);
    assert_eq!(
        r.rows()[0].get::<_, i64>(0),
        0,
        "an evicted statement stayed prepared on the shared connection"
    );
}

/// Runs `sql` (`SELECT $1::int8 ...`) from `callers` tasks, `rounds` times each, checking that
/// every caller gets its own value back.
async fn callers_run(pool: &PsqlPool, sql: &'static str, callers: i64, rounds: i64) {
    let mut tasks = Vec::new();
    for caller in 0..callers {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..rounds {
                let v = caller * 100 + i;
                let r = tokio::time::timeout(CALL_LIMIT, pool.execute(sql, &[&v]))
                    .await
                    .expect("a call hung")
                    .unwrap();
                assert_eq!(r.rows()[0].get::<_, i64>(0), v, "cross-talk");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// With one Sync per batch, lines grow deeper before another connection is shared (16 per
/// line once two are shared; one Sync per statement: 4): 8 callers share exactly two
/// connections (a second one at 4, so one batch is on the server while the other queues), and
/// 40 callers at most three (a fourth only once three lines hold 16 each), where one Sync per
/// statement spreads the same 40 over more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_fill_deeper_lines_before_sharing_more_connections() {
    // Slow enough that every caller is queued or in flight at once.
    let slow = "SELECT $1::int8 FROM pg_sleep(0.002)";
    let batches = mux_pool("mux_depth_batches", 8, true).await;
    learn(&batches, slow).await;
    callers_run(&batches, slow, 8, 10).await;
    assert_eq!(
        batches.multiplexed_connections(),
        2,
        "8 callers in batches: {:?}",
        batches.status()
    );
    callers_run(&batches, slow, 40, 5).await;
    let shared = batches.multiplexed_connections();
    assert!(
        (2..=3).contains(&shared),
        "40 callers in batches shared {shared} connections: {:?}",
        batches.status()
    );
    assert_status_adds_up(&batches).await;
    batches.close().await;

    let single = mux_pool("mux_depth_single", 8, false).await;
    learn(&single, slow).await;
    callers_run(&single, slow, 40, 5).await;
    let shared = single.multiplexed_connections();
    assert!(
        shared > 3,
        "40 callers with one Sync per statement shared only {shared} connections: {:?}",
        single.status()
    );
    assert_status_adds_up(&single).await;
    single.close().await;
}

/// Runs `sql` (returning the caller's value and `pg_current_xact_id()`) from 32 callers, 20
/// times each, and returns how many distinct transactions ran them and how many statements.
async fn transactions_of(pool: &PsqlPool, sql: &str, first_id: i64) -> (usize, usize) {
    let mut tasks = Vec::new();
    for caller in 0..32i64 {
        let (pool, sql) = (pool.clone(), sql.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut xids = Vec::new();
            for round in 0..20i64 {
                let id = first_id + caller * 100 + round;
                let r = tokio::time::timeout(CALL_LIMIT, pool.execute(&sql, &[&id]))
                    .await
                    .expect("a call hung")
                    .unwrap();
                let row = &r.rows()[0];
                assert_eq!(row.get::<_, i64>(0), id, "cross-talk");
                xids.push(row.get::<_, String>(1));
            }
            xids
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let n = all.len();
    all.sort();
    all.dedup();
    (all.len(), n)
}

/// Without `multiplexing_batches`, reads share a Sync (one implicit transaction per batch, so
/// several callers' SELECTs report the same transaction id) and writes do not: every INSERT,
/// and every SELECT ... FOR UPDATE, is a transaction of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_reads_share_a_sync_and_writes_keep_their_own() {
    let table = unique_name("mux_default_t");
    let mut a = admin().await;
    a.batch_execute(&format!(
        "CREATE TABLE {table} (id int8 PRIMARY KEY);
         INSERT INTO {table} SELECT -g FROM generate_series(1, 4000) g"
    ))
    .await
    .unwrap();
    let pool = started(pool_builder(&unique_name("mux_default"), 4).multiplexing(true)).await;
    let read = "SELECT $1::int8, pg_current_xact_id()::text";
    let write =
        format!("INSERT INTO {table} (id) VALUES ($1) RETURNING id, pg_current_xact_id()::text");
    let locking =
        format!("SELECT id, pg_current_xact_id()::text FROM {table} WHERE id = $1 FOR UPDATE");
    // Each learned on a whole connection first (that run is its own transaction).
    for (sql, id) in [(read, 0i64), (&write, 0), (&locking, -4000)] {
        pool.execute(sql, &[&id]).await.unwrap();
    }

    let (xacts, statements) = transactions_of(&pool, read, 1).await;
    assert!(
        xacts < statements,
        "{statements} SELECTs ran in {xacts} transactions: reads were not batched"
    );
    let (xacts, statements) = transactions_of(&pool, &write, 1).await;
    assert_eq!(xacts, statements, "INSERTs shared a transaction");
    let (xacts, statements) = transactions_of(&pool, &locking, -3999).await;
    assert_eq!(
        xacts, statements,
        "SELECT ... FOR UPDATEs shared a transaction"
    );
    assert!(pool.multiplexed_connections() > 0, "{:?}", pool.status());
    assert_status_adds_up(&pool).await;
    pool.close().await;
}

/// Reads and writes on the same lines at once (the default batching): every caller gets its
/// own value, the one failing INSERT fails alone, every good row is in the table once, and no
/// INSERT shares a transaction with any other statement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_writes_interleaved_on_shared_lines() {
    let table = unique_name("mux_mixed_t");
    let mut a = admin().await;
    a.batch_execute(&format!(
        "CREATE TABLE {table} (id int8 PRIMARY KEY, v int8 NOT NULL CHECK (v >= 0))"
    ))
    .await
    .unwrap();
    let pool = started(pool_builder(&unique_name("mux_mixed"), 2).multiplexing(true)).await;
    let read = "SELECT $1::int8, pg_current_xact_id()::text";
    let write = format!(
        "INSERT INTO {table} (id, v) VALUES ($1, $2) RETURNING id, pg_current_xact_id()::text"
    );
    pool.execute(read, &[&0i64]).await.unwrap();
    pool.execute(&write, &[&0i64, &0i64]).await.unwrap();

    let mut tasks = Vec::new();
    for caller in 0..32i64 {
        let (pool, write) = (pool.clone(), write.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for round in 0..20i64 {
                let id = 1 + caller * 100 + round;
                let writes = (caller + round) % 2 == 1;
                // One INSERT violates the CHECK constraint.
                let v = if caller == 7 && round == 8 { -1 } else { 1 };
                let call = async {
                    if writes {
                        pool.execute(&write, &[&id, &v]).await
                    } else {
                        pool.execute(read, &[&id]).await
                    }
                };
                let r = tokio::time::timeout(CALL_LIMIT, call)
                    .await
                    .expect("a call hung");
                out.push((id, writes, v, r));
            }
            out
        }));
    }
    let (mut read_xids, mut write_xids, mut inserted) = (Vec::new(), Vec::new(), 0i64);
    for t in tasks {
        for (id, writes, v, r) in t.await.unwrap() {
            if v < 0 {
                let e = r.expect_err("the failing INSERT errors");
                assert!(matches!(&e, PoolError::Backend(_)), "{e:?}");
                continue;
            }
            let r = r.unwrap_or_else(|e| panic!("statement {id} (write: {writes}) failed: {e}"));
            let row = &r.rows()[0];
            assert_eq!(row.get::<_, i64>(0), id, "cross-talk");
            let xid = row.get::<_, String>(1);
            if writes {
                inserted += 1;
                write_xids.push(xid);
            } else {
                read_xids.push(xid);
            }
        }
    }
    let n = write_xids.len();
    write_xids.sort();
    write_xids.dedup();
    assert_eq!(write_xids.len(), n, "INSERTs shared a transaction");
    read_xids.sort();
    assert!(
        write_xids
            .iter()
            .all(|x| read_xids.binary_search(x).is_err()),
        "an INSERT shared a transaction with a read"
    );
    let count = a
        .query_one(&format!("SELECT count(*) FROM {table} WHERE id > 0"), &[])
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(count, inserted, "good rows lost or doubled");
    assert_status_adds_up(&pool).await;
    pool.close().await;
}
