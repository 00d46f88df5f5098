//! Scaling out. In front, a real PgBouncer (Debian's package, config written at test time):
//! accepted in every pool mode with PgBouncer's default settings, and correct under concurrency
//! in transaction and session mode, named statements or not, through a PgBouncer restart.
//! Behind, several servers: `load_balance_hosts=random` spreads connections across them, and
//! `target_session_attrs` tells a real primary from a real streaming standby, through a
//! failover drill.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pg_harness::{Bouncer, Cluster, PoolMode, Role, Standby, cluster};
use pgwire_lite::{Config, Connection, ToSql};
use pool_core::PsqlPool;

/// Borrowers running at once.
const BORROWERS: usize = 64;
/// Rounds of the workload each borrower runs.
const ROUNDS: usize = 5;

fn pool(url: &str, prepared: bool) -> PsqlPool {
    PsqlPool::builder()
        .dsn(url)
        .max_db_pool_size(16)
        .wait_timeout(Duration::from_secs(60))
        .prepared_statements(prepared)
        .build()
        .expect("valid pool")
}

fn table() -> String {
    let t = pg_harness::unique_name("bouncer");
    cluster().psql(&format!(
        "CREATE TABLE {t} (borrower int4, round int4, k int4); \
         GRANT ALL ON {t} TO {}",
        pg_harness::TRUST_USER
    ));
    t
}

fn count(t: &str) -> usize {
    let out = cluster().psql(&format!("SELECT count(*) FROM {t}"));
    out.trim().parse().expect("a count")
}

/// One borrower's round: a named (or unnamed) statement, an unnamed one, a transaction,
/// `execute_many` and a pipeline. Inserts 1 + 3 rows.
async fn round(pool: &PsqlPool, t: &str, b: i32, r: i32) -> pool_core::Result<()> {
    let v = pool.execute("SELECT $1::int4 + 1", &[&b]).await?;
    assert_eq!(v.rows()[0].get::<_, i32>(0), b + 1);
    let v = pool
        .execute_unprepared("SELECT $1::int4 * 2", &[&b])
        .await?;
    assert_eq!(v.rows()[0].get::<_, i32>(0), b * 2);
    {
        let mut conn = pool.connection().await?;
        let mut tx = conn.transaction().await?;
        tx.execute(&format!("INSERT INTO {t} VALUES ($1, $2, 0)"), &[&b, &r])
            .await?;
        let n = tx
            .query_one(
                &format!("SELECT count(*)::int8 FROM {t} WHERE borrower = $1 AND round = $2"),
                &[&b, &r],
            )
            .await?;
        assert_eq!(n.get::<_, i64>(0), 1, "the transaction sees its own row");
        tx.commit().await?;
    }
    let rows: Vec<[&(dyn ToSql + Sync); 3]> = (1..=3i32)
        .map(|k| -> [&(dyn ToSql + Sync); 3] {
            [
                &b,
                &r,
                if k == 1 {
                    &1i32
                } else if k == 2 {
                    &2i32
                } else {
                    &3i32
                },
            ]
        })
        .collect();
    let n = pool
        .execute_many(&format!("INSERT INTO {t} VALUES ($1, $2, $3)"), &rows)
        .await?;
    assert_eq!(n, 3);
    let mut conn = pool.connection().await?;
    let c = conn.connection_mut().await?;
    let params: [&(dyn ToSql + Sync); 1] = [&b];
    let mut p = c.pipeline();
    p.push("SELECT $1::int4", &params);
    p.push("SELECT $1::int4 - 1", &params);
    let results = p.run().await?;
    assert_eq!(results.len(), 2);
    for (i, res) in results.into_iter().enumerate() {
        let res = res?;
        assert_eq!(res.rows()[0].get::<_, i32>(0), b - i as i32);
    }
    Ok(())
}

/// `BORROWERS` tasks, `ROUNDS` rounds each; returns the errors.
async fn load(pool: &PsqlPool, t: &str) -> Vec<String> {
    let mut tasks = Vec::new();
    for b in 0..BORROWERS {
        let pool = pool.clone();
        let t = t.to_string();
        tasks.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            for r in 0..ROUNDS {
                if let Err(e) = round(&pool, &t, b as i32, r as i32).await {
                    errors.push(format!("borrower {b} round {r}: {e}"));
                }
            }
            errors
        }));
    }
    let mut errors = Vec::new();
    for task in tasks {
        errors.extend(task.await.expect("no panic"));
    }
    errors
}

#[tokio::test]
async fn default_pgbouncer_accepts_us_in_every_pool_mode() {
    if !cluster().require_roles() {
        return;
    }
    for mode in [
        PoolMode::Session,
        PoolMode::Transaction,
        PoolMode::Statement,
    ] {
        let bouncer = Bouncer::start(cluster(), mode, 2);
        let cfg: Config = bouncer.url().parse().expect("url");
        let mut c = Connection::connect(&cfg)
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}\n{}", bouncer.log()));
        let r = c
            .execute_unprepared("SELECT $1::int4 + 1", &[&41i32])
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(r.rows()[0].get::<_, i32>(0), 42, "{mode:?}");
        // Text values still decode: PostgreSQL's defaults match what simple_query reads.
        let r = c
            .simple_query("SELECT '1999-12-31'::date, '1 day 02:00'::interval")
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(
            r[0].rows()[0].get::<_, pgwire_lite::types::Date>(0).ymd(),
            Some((1999, 12, 31))
        );
        assert!(!c.pin_text_settings().await.expect("pin"), "{mode:?}");
        // And through a pool built for a transaction pooler.
        let pool = pool(&bouncer.url(), false);
        pool.startup().await.expect("startup");
        let r = pool.execute("SELECT 7::int4", &[]).await.expect("execute");
        assert_eq!(r.rows()[0].get::<_, i32>(0), 7, "{mode:?}");
        pool.close().await;
    }
}

#[tokio::test]
async fn plain_postgres_needs_nothing_pinned_after_startup() {
    if !cluster().require_roles() {
        return;
    }
    let cfg: Config = cluster().url(Role::Trust).parse().expect("url");
    let mut c = Connection::connect(&cfg).await.expect("connect");
    assert!(
        c.parameter("DateStyle")
            .is_some_and(|v| v.starts_with("ISO")),
        "{:?}",
        c.parameter("DateStyle")
    );
    assert_eq!(c.parameter("IntervalStyle"), Some("postgres"));
    // Nothing to send: the startup cost no round trip beyond authentication.
    assert!(!c.pin_text_settings().await.expect("pin"));
    // A role default that differs is reported, and pinned again in one round trip.
    c.batch_execute("SET DateStyle = German")
        .await
        .expect("set");
    assert!(c.pin_text_settings().await.expect("pin"));
    assert!(
        c.parameter("DateStyle")
            .is_some_and(|v| v.starts_with("ISO"))
    );
}

#[tokio::test]
async fn transaction_mode_64_borrowers_with_unnamed_statements() {
    if !cluster().require_roles() {
        return;
    }
    let bouncer = Bouncer::start(cluster(), PoolMode::Transaction, 4);
    let t = table();
    let pool = pool(&bouncer.url(), false);
    pool.startup().await.expect("startup");
    assert!(!pool.prepared_statements());
    let errors = load(&pool, &t).await;
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
    assert_eq!(count(&t), BORROWERS * ROUNDS * 4);
    assert!(
        !pool.detected_transaction_pooler(),
        "it was configured, not detected"
    );
    pool.close().await;
}

#[tokio::test]
async fn dsn_key_turns_named_statements_off() {
    if !cluster().require_roles() {
        return;
    }
    let bouncer = Bouncer::start(cluster(), PoolMode::Transaction, 4);
    let url = format!("{}?statement_cache_capacity=0", bouncer.url());
    let pool = pool(&url, true);
    pool.startup().await.expect("startup");
    assert!(!pool.prepared_statements());
    let mut conn = pool.connection().await.expect("borrow");
    for i in 0..20i32 {
        let r = conn
            .execute("SELECT $1::int4", &[&i])
            .await
            .expect("execute");
        assert_eq!(r.rows()[0].get::<_, i32>(0), i);
    }
    assert_eq!(
        conn.connection_mut().await.expect("c").cached_statements(),
        0
    );
    drop(conn);
    pool.close().await;
}

#[tokio::test]
async fn transaction_pooler_is_detected_and_the_statement_rerun() {
    if !cluster().require_roles() {
        return;
    }
    let bouncer = Bouncer::start(cluster(), PoolMode::Transaction, 4);
    let t = table();
    let pool = pool(&bouncer.url(), true);
    pool.startup().await.expect("startup");
    assert!(pool.prepared_statements());
    // Only pool-level calls, each of which re-runs what never executed: zero errors while the
    // pool finds out, and every row inserted exactly once.
    let mut tasks: Vec<tokio::task::JoinHandle<pool_core::Result<()>>> = Vec::new();
    for b in 0..BORROWERS as i32 {
        let pool = pool.clone();
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            for r in 0..ROUNDS as i32 {
                let v = pool.execute("SELECT $1::int4 + 1", &[&b]).await?;
                assert_eq!(v.rows()[0].get::<_, i32>(0), b + 1);
                pool.execute(&format!("INSERT INTO {t} VALUES ($1, $2, 0)"), &[&b, &r])
                    .await?;
                let rows: [[&(dyn ToSql + Sync); 3]; 1] = [[&b, &r, &1i32]];
                pool.execute_many(&format!("INSERT INTO {t} VALUES ($1, $2, $3)"), &rows)
                    .await?;
            }
            Ok(())
        }));
    }
    for task in tasks {
        task.await.expect("no panic").expect("no error");
    }
    assert_eq!(count(&t), BORROWERS * ROUNDS * 2);
    assert!(pool.detected_transaction_pooler(), "{:?}", pool.status());
    assert!(!pool.prepared_statements());
    pool.close().await;
}

#[tokio::test]
async fn session_mode_64_borrowers_with_named_statements() {
    if !cluster().require_roles() {
        return;
    }
    // One PgBouncer server connection per client connection: the pool's 16 need 16.
    let bouncer = Bouncer::start(cluster(), PoolMode::Session, 16);
    let t = table();
    let pool = pool(&bouncer.url(), true);
    pool.startup().await.expect("startup");
    let errors = load(&pool, &t).await;
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
    assert_eq!(count(&t), BORROWERS * ROUNDS * 4);
    assert!(
        pool.prepared_statements(),
        "session mode keeps named statements"
    );
    assert!(!pool.detected_transaction_pooler());
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbouncer_restart_mid_load_is_survived() {
    if !cluster().require_roles() {
        return;
    }
    let bouncer = Bouncer::start(cluster(), PoolMode::Transaction, 4);
    let pool = pool(&bouncer.url(), false);
    pool.startup().await.expect("startup");
    let late_errors = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicUsize::new(0));
    let restarted: Arc<std::sync::OnceLock<Instant>> = Arc::new(std::sync::OnceLock::new());
    let stop_at = Instant::now() + Duration::from_secs(4);
    let mut tasks = Vec::new();
    for b in 0..16i32 {
        let (pool, late, ok, restarted) = (
            pool.clone(),
            late_errors.clone(),
            ok.clone(),
            restarted.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < stop_at {
                let r = pool.execute("SELECT $1::int4", &[&b]).await;
                match r {
                    Ok(v) => {
                        assert_eq!(v.rows()[0].get::<_, i32>(0), b);
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    // Queries in flight when PgBouncer went away fail, as with a server
                    // restart; once it is back (plus the time to notice), none may.
                    Err(e) => {
                        if restarted
                            .get()
                            .is_some_and(|t| t.elapsed() > Duration::from_millis(500))
                        {
                            late.fetch_add(1, Ordering::Relaxed);
                            eprintln!("after the restart: {e}");
                        }
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let b = &bouncer;
    tokio::task::block_in_place(|| b.restart());
    restarted.set(Instant::now()).expect("set once");
    for task in tasks {
        task.await.expect("no panic");
    }
    assert_eq!(late_errors.load(Ordering::Relaxed), 0);
    assert!(
        ok.load(Ordering::Relaxed) > 100,
        "{}",
        ok.load(Ordering::Relaxed)
    );
    let r = pool.execute("SELECT 1::int4", &[]).await.expect("after");
    assert_eq!(r.rows()[0].get::<_, i32>(0), 1);
    pool.close().await;
}

#[tokio::test]
async fn load_balance_hosts_random_spreads_connections_across_hosts() {
    if !cluster().require_roles() {
        return;
    }
    let (a, b) = (Cluster::start_throwaway(), Cluster::start_throwaway());
    let dsn = |mode: &str| {
        format!(
            "host=127.0.0.1,127.0.0.1 port={},{} user={} dbname={} load_balance_hosts={mode}",
            a.port(),
            b.port(),
            pg_harness::TRUST_USER,
            pg_harness::DB_NAME
        )
    };
    let ports = |mode: &str| {
        let cfg: Config = dsn(mode).parse().expect("dsn");
        async move {
            let mut seen = std::collections::HashMap::new();
            for _ in 0..40 {
                let mut c = Connection::connect(&cfg).await.expect("connect");
                let r = c
                    .query_one("SELECT current_setting('port')::int4", &[])
                    .await
                    .expect("port");
                *seen.entry(r.get::<_, i32>(0)).or_insert(0) += 1;
            }
            seen
        }
    };
    let random = ports("random").await;
    assert_eq!(random.len(), 2, "both hosts get connections: {random:?}");
    assert!(random.values().all(|&n| n >= 5), "{random:?}");
    // disable (the default): always the first host that accepts.
    let first = ports("disable").await;
    assert_eq!(first.get(&i32::from(a.port())), Some(&40), "{first:?}");
}

#[tokio::test]
async fn target_session_attrs_against_a_real_primary_and_standby() {
    if !cluster().require_roles() {
        return;
    }
    let primary = Cluster::start_throwaway();
    let standby = Standby::start(&primary);
    let (p, s) = (i32::from(primary.port()), i32::from(standby.port()));
    let lands_on = |first: i32, second: i32, attrs: &'static str| async move {
        let dsn = format!(
            "host=127.0.0.1,127.0.0.1 port={first},{second} user={} dbname={} \
             target_session_attrs={attrs}",
            pg_harness::TRUST_USER,
            pg_harness::DB_NAME
        );
        let cfg: Config = dsn.parse().expect("dsn");
        let mut c = Connection::connect(&cfg)
            .await
            .unwrap_or_else(|e| panic!("{attrs} over {first},{second}: {e}"));
        let r = c
            .query_one(
                "SELECT current_setting('port')::int4, pg_catalog.pg_is_in_recovery()",
                &[],
            )
            .await
            .expect("query");
        let (port, recovering) = (r.get::<_, i32>(0), r.get::<_, bool>(1));
        assert_eq!(
            recovering,
            port == s,
            "{attrs}: the standby is the one in recovery"
        );
        port
    };
    for (first, second) in [(p, s), (s, p)] {
        assert_eq!(lands_on(first, second, "any").await, first);
        assert_eq!(lands_on(first, second, "read-write").await, p);
        assert_eq!(lands_on(first, second, "primary").await, p);
        assert_eq!(lands_on(first, second, "read-only").await, s);
        assert_eq!(lands_on(first, second, "standby").await, s);
        assert_eq!(lands_on(first, second, "prefer-standby").await, s);
    }
    // Only the primary listed: prefer-standby settles for it, standby and read-only find none.
    assert_eq!(lands_on(p, p, "prefer-standby").await, p);
    for attrs in ["standby", "read-only"] {
        let dsn = format!(
            "host=127.0.0.1 port={p} user={} dbname={} target_session_attrs={attrs}",
            pg_harness::TRUST_USER,
            pg_harness::DB_NAME
        );
        let cfg: Config = dsn.parse().expect("dsn");
        let err = Connection::connect(&cfg).await.unwrap_err();
        assert!(err.to_string().contains(attrs), "{attrs}: {err}");
    }
    // The standby really streams: a row written on the primary shows up there.
    let t = pg_harness::unique_name("replicated");
    primary.psql(&format!(
        "CREATE TABLE {t} (v int4); INSERT INTO {t} VALUES (42); \
         GRANT SELECT ON {t} TO {}",
        pg_harness::TRUST_USER
    ));
    let cfg: Config = format!(
        "host=127.0.0.1 port={s} user={} dbname={}",
        pg_harness::TRUST_USER,
        pg_harness::DB_NAME
    )
    .parse()
    .expect("dsn");
    let mut c = Connection::connect(&cfg).await.expect("standby");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match c.query_opt(&format!("SELECT v FROM {t}"), &[]).await {
            Ok(Some(row)) => {
                assert_eq!(row.get::<_, i32>(0), 42);
                break;
            }
            _ if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("the row never reached the standby: {other:?}"),
        }
    }
}

/// Failover drill: 16 writers through `target_session_attrs=read-write` over primary and
/// standby; the primary stops, the standby is promoted; writes resume, and every acknowledged
/// write is on the new primary exactly once. A `prefer-standby` read pool serves throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_drill_writes_resume_on_the_promoted_standby() {
    if !cluster().require_roles() {
        return;
    }
    let primary = Cluster::start_throwaway();
    let standby = Standby::start(&primary);
    let t = pg_harness::unique_name("failover");
    primary.psql(&format!(
        "CREATE TABLE {t} (writer int4, seq int4, PRIMARY KEY (writer, seq)); \
         GRANT ALL ON {t} TO {}",
        pg_harness::TRUST_USER
    ));
    let dsn = |attrs: &str| {
        format!(
            "host=127.0.0.1,127.0.0.1 port={},{} user={} dbname={} target_session_attrs={attrs}",
            primary.port(),
            standby.port(),
            pg_harness::TRUST_USER,
            pg_harness::DB_NAME
        )
    };
    let writes = pool(&dsn("read-write"), true);
    writes.startup().await.expect("writer pool");
    let reads = pool(&dsn("prefer-standby"), true);
    reads.startup().await.expect("reader pool");
    let promoted: Arc<std::sync::OnceLock<Instant>> = Arc::new(std::sync::OnceLock::new());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..16i32 {
        let (pool, t, promoted, stop) = (writes.clone(), t.clone(), promoted.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let sql = format!("INSERT INTO {t} VALUES ($1, $2)");
            let (mut acked, mut seq, mut resumed_after) = (Vec::new(), 0i32, None);
            while !stop.load(Ordering::Relaxed) {
                let r = pool.execute(&sql, &[&w, &seq]).await;
                // 23505: an attempt whose answer was lost had committed after all.
                let committed = match &r {
                    Ok(_) => true,
                    Err(e) => e.as_backend().and_then(|b| b.code()) == Some("23505"),
                };
                if committed {
                    if let Some(at) = promoted.get() {
                        resumed_after.get_or_insert_with(|| at.elapsed());
                    }
                    acked.push(seq);
                    seq += 1;
                } else {
                    // The same row again: its outcome is unknown until then.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            (w, acked, resumed_after)
        }));
    }
    let reader = {
        let (pool, stop) = (reads.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut ok, mut errors) = (0usize, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                match pool.execute("SELECT 1::int4", &[]).await {
                    Ok(_) => ok += 1,
                    Err(e) => errors.push(e.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            (ok, errors)
        })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    let stopped = Instant::now();
    tokio::task::block_in_place(|| primary.stop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::task::block_in_place(|| standby.promote());
    promoted.set(Instant::now()).expect("once");
    let promotion_done = stopped.elapsed();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked_total = 0usize;
    let mut slowest = Duration::ZERO;
    let mut acked_all = Vec::new();
    for task in writers {
        let (w, acked, resumed_after) = task.await.expect("no panic");
        let resumed = resumed_after.unwrap_or_else(|| panic!("writer {w} never resumed"));
        slowest = slowest.max(resumed);
        acked_total += acked.len();
        acked_all.push((w, acked));
    }
    eprintln!(
        "failover: primary stop + 300 ms + promote took {promotion_done:?}; every writer \
         resumed within {slowest:?} of the promotion"
    );
    assert!(slowest < Duration::from_secs(2), "{slowest:?}");
    let (reads_ok, read_errors) = reader.await.expect("no panic");
    assert!(
        read_errors.is_empty(),
        "{} read errors: {:?}",
        read_errors.len(),
        read_errors.first()
    );
    assert!(reads_ok > 100, "{reads_ok}");
    // On the new primary: every acknowledged write, each once (the primary key makes a
    // duplicate impossible to insert; the count makes a lost one visible).
    let mut c = writes.connection().await.expect("new primary");
    for (w, acked) in &acked_all {
        let n = c
            .query_one(
                &format!(
                    "SELECT count(*)::int8, coalesce(max(seq), -1) FROM {t} WHERE writer = $1"
                ),
                &[w],
            )
            .await
            .expect("count");
        assert_eq!(n.get::<_, i64>(0) as usize, acked.len(), "writer {w}");
        assert_eq!(n.get::<_, i32>(1), acked.len() as i32 - 1, "writer {w}");
    }
    assert!(acked_total > 100, "{acked_total}");
    drop(c);
    writes.close().await;
    reads.close().await;
}

/// Passive role tracking: a server that turns read-only while the pool holds connections to it
/// (`default_transaction_read_only` reported by PostgreSQL 14+) has them evicted, and the new
/// connection goes through `target_session_attrs=read-write` again, which no host passes.
#[tokio::test]
async fn connections_to_a_server_that_turned_read_only_are_evicted() {
    if !cluster().require_roles() {
        return;
    }
    let primary = Cluster::start_throwaway();
    let dsn = format!(
        "host=127.0.0.1 port={} user={} dbname={} target_session_attrs=read-write",
        primary.port(),
        pg_harness::TRUST_USER,
        pg_harness::DB_NAME
    );
    let pool = pool(&dsn, true);
    pool.startup().await.expect("startup");
    pool.execute("SELECT 1::int4", &[])
        .await
        .expect("read-write");
    primary.psql("ALTER SYSTEM SET default_transaction_read_only = on");
    primary.psql("SELECT pg_reload_conf()");
    // The server reports the change at the end of a statement; the connection that carried it
    // is evicted when it comes back, and no read-write host is left.
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        let r = pool.execute("SELECT 1::int4", &[]).await;
        let done = r.is_err();
        outcomes.push(r.map(drop).map_err(|e| e.to_string()));
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let last = outcomes.last().expect("ran");
    assert!(
        last.as_ref()
            .is_err_and(|e| e.contains("target_session_attrs=read-write")),
        "{outcomes:?}"
    );
    assert!(outcomes.len() <= 3, "{outcomes:?}");
    assert_eq!(pool.status().size, 0, "{:?}", pool.status());
    pool.close().await;
}

/// Passive role tracking the other way: a `target_session_attrs=standby` pool holding
/// connections to a standby that gets promoted (`in_hot_standby` goes off) evicts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_to_a_promoted_standby_leave_a_standby_pool() {
    if !cluster().require_roles() {
        return;
    }
    let primary = Cluster::start_throwaway();
    let standby = Standby::start(&primary);
    let dsn = format!(
        "host=127.0.0.1 port={} user={} dbname={} target_session_attrs=standby",
        standby.port(),
        pg_harness::TRUST_USER,
        pg_harness::DB_NAME
    );
    let pool = pool(&dsn, true);
    pool.startup().await.expect("startup");
    let r = pool
        .execute("SELECT pg_catalog.pg_is_in_recovery()", &[])
        .await
        .expect("standby");
    assert!(r.rows()[0].get::<_, bool>(0));
    tokio::task::block_in_place(|| standby.promote());
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        let r = pool
            .execute("SELECT pg_catalog.pg_is_in_recovery()", &[])
            .await;
        let done = r.is_err();
        outcomes.push(
            r.map(|r| r.rows()[0].get::<_, bool>(0))
                .map_err(|e| e.to_string()),
        );
        if done {
            break;
        }
    }
    let last = outcomes.last().expect("ran");
    assert!(
        last.as_ref()
            .is_err_and(|e| e.contains("target_session_attrs=standby")),
        "{outcomes:?}"
    );
    assert!(outcomes.len() <= 3, "{outcomes:?}");
    pool.close().await;
}
