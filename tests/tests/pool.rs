//! pool-core against a real PostgreSQL: startup, the README's usage, recycling methods (what
//! survives between borrowers and what does not), dirty returns, dead connections, recovery
//! after a restart, and the pool's counters under load.

mod common;

use std::time::Duration;

use common::{admin, started};
use pg_harness::{Cluster, Role, cluster};
use pool_core::{
    Error, PsqlPool, PsqlPoolBuilder, RecyclingMethod, TimeoutKind, TransactionStatus,
};

/// A builder for the shared cluster, as `scram_user`.
fn builder() -> PsqlPoolBuilder {
    PsqlPool::builder().dsn(cluster().url(Role::Scram))
}

/// Waits until no slot is in use: a connection given back dirty is reset by a background
/// task that holds its slot meanwhile.
async fn quiesce(pool: &PsqlPool) {
    for _ in 0..1000 {
        if pool.status().in_use == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("slots still in use: {:?}", pool.status());
}

async fn scalar_i64(conn: &mut pool_core::PooledConnection, sql: &str) -> i64 {
    conn.query_one(sql, &[]).await.unwrap().get::<_, i64>(0)
}

async fn scalar_text(conn: &mut pool_core::PooledConnection, sql: &str) -> String {
    conn.query_one(sql, &[]).await.unwrap().get::<_, String>(0)
}

/// The README's usage example (and the crate docs'), step by step: the builder with separate
/// parameters, `execute` through the statement cache and `execute_unprepared` without it.
#[tokio::test]
async fn the_readme_example_runs() {
    if !cluster().require_roles() {
        return;
    }
    let pg = cluster();
    let users = pg.unique_name("users");
    pg.psql(&format!(
        "CREATE TABLE {users} (id int4, username text); \
         INSERT INTO {users} VALUES (100, 'Alex'), (101, 'Bo'); \
         GRANT SELECT ON {users} TO scram_user;"
    ));
    let pool = started(
        PsqlPool::builder()
            .username(pg_harness::SCRAM_USER)
            .password(pg_harness::SCRAM_PASS)
            .host(pg.host())
            .port(pg.port())
            .db_name(pg.db_name())
            .max_db_pool_size(10)
            .conn_recycling_method(RecyclingMethod::Fast),
    )
    .await;
    let sql = format!("SELECT * FROM {users} WHERE id = $1 and username = $2");
    let res = pool.execute(&sql, &[&100i32, &"Alex"]).await.unwrap();
    let dicts = res.result();
    assert_eq!(dicts.len(), 1);
    assert_eq!(dicts[0].keys().collect::<Vec<_>>(), ["id", "username"]);
    assert_eq!(res.rows()[0].get::<_, &str>("username"), "Alex");
    // prepared=False: the same through the unnamed statement.
    let res = pool
        .execute_unprepared(&sql, &[&101i32, &"Bo"])
        .await
        .unwrap();
    assert_eq!(res.rows()[0].get::<_, i32>("id"), 101);
    let conn = pool.connection().await.unwrap();
    assert!(conn.is_idle());
    drop(conn);
    let s = pool.status();
    assert_eq!((s.max_size, s.in_use, s.waiting), (10, 0, 0));
    assert!(s.size >= 1 && s.size == s.idle);
}

#[tokio::test]
async fn dsn_makes_the_separate_parameters_ignored() {
    if !cluster().require_roles() {
        return;
    }
    let pool = started(
        builder()
            .username("nobody")
            .password("wrong")
            .host("203.0.113.1")
            .port(1)
            .db_name("nope"),
    )
    .await;
    let mut c = pool.connection().await.unwrap();
    assert_eq!(
        scalar_text(&mut c, "SELECT current_user::text").await,
        pg_harness::SCRAM_USER
    );
}

#[tokio::test]
async fn startup_fails_with_the_servers_error() {
    if !cluster().require_roles() {
        return;
    }
    let pg = cluster();
    let pool = PsqlPool::builder()
        .username(pg_harness::SCRAM_USER)
        .password("not-the-password")
        .host(pg.host())
        .port(pg.port())
        .db_name(pg.db_name())
        .build()
        .unwrap();
    let err = pool.startup().await.unwrap_err();
    assert_eq!(
        err.as_backend().and_then(|e| e.code()),
        Some("28P01"),
        "{err}"
    );
    assert!(!err.to_string().contains("not-the-password"));
    assert!(matches!(
        pool.execute("SELECT 1", &[]).await,
        Err(Error::NotStarted)
    ));
    assert_eq!(pool.status().size, 0);

    // A server that is down: the connect error, quickly, not a hang.
    let pool = PsqlPool::builder()
        .host("127.0.0.1")
        .port(1)
        .build()
        .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), pool.startup())
        .await
        .expect("no hang")
        .unwrap_err();
    assert!(matches!(err, Error::Backend(_)), "{err:?}");
}

#[tokio::test]
async fn execute_caches_and_execute_unprepared_does_not() {
    if !cluster().require_roles() {
        return;
    }
    let pool = started(builder()).await;
    let mut c = pool.connection().await.unwrap();
    let before = c.cached_statements();
    c.execute("SELECT $1::int4 + 1", &[&1i32]).await.unwrap();
    c.execute("SELECT $1::int4 + 1", &[&2i32]).await.unwrap();
    assert_eq!(c.cached_statements(), before + 1);
    c.execute_unprepared("SELECT $1::int4 + 2", &[&1i32])
        .await
        .unwrap();
    assert_eq!(c.cached_statements(), before + 1);
}

/// Borrows twice in a row from a pool that only ever has one idle connection, so the
/// second borrow gets the first one's connection (most recently used first).
async fn two_borrows(
    method: RecyclingMethod,
    setup: &str,
) -> (pool_core::PooledConnection, i32, PsqlPool) {
    let pool = started(builder().conn_recycling_method(method)).await;
    let mut c = pool.connection().await.unwrap();
    let pid = c.backend_pid();
    c.batch_execute(setup).await.unwrap();
    drop(c);
    let c = pool.connection().await.unwrap();
    assert_eq!(c.backend_pid(), pid, "same connection reused");
    (c, pid, pool)
}

const SESSION_STATE: &str = "SET application_name = 'borrower1'; \
    SET search_path = pg_catalog, public; \
    CREATE TEMP TABLE scratch (x int); \
    LISTEN chan_one; \
    SELECT pg_advisory_lock(4242); \
    CREATE TEMP SEQUENCE seq1; SELECT nextval('seq1'); \
    PREPARE user_stmt AS SELECT 1;";

/// What the second borrower sees of the first one's session.
#[derive(Debug, PartialEq, Eq)]
struct Leftovers {
    app_name: bool,
    temp_table: bool,
    listen: bool,
    advisory_lock: bool,
    sql_prepared: bool,
}

async fn leftovers(c: &mut pool_core::PooledConnection) -> Leftovers {
    let app = scalar_text(c, "SELECT current_setting('application_name')").await;
    Leftovers {
        app_name: app == "borrower1",
        temp_table: scalar_i64(
            c,
            "SELECT count(*) FROM pg_class WHERE oid = to_regclass('pg_temp.scratch')",
        )
        .await
            == 1,
        listen: scalar_i64(c, "SELECT count(*) FROM pg_listening_channels()").await == 1,
        advisory_lock: scalar_i64(
            c,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
        )
        .await
            == 1,
        sql_prepared: scalar_i64(
            c,
            "SELECT count(*) FROM pg_prepared_statements WHERE from_sql",
        )
        .await
            == 1,
    }
}

const ALL_SURVIVE: Leftovers = Leftovers {
    app_name: true,
    temp_table: true,
    listen: true,
    advisory_lock: true,
    sql_prepared: true,
};

#[tokio::test]
async fn fast_keeps_session_state() {
    if !cluster().require_roles() {
        return;
    }
    let (mut c, _, _pool) = two_borrows(RecyclingMethod::Fast, SESSION_STATE).await;
    assert_eq!(leftovers(&mut c).await, ALL_SURVIVE);
    assert_eq!(scalar_i64(&mut c, "SELECT currval('seq1')").await, 1);
}

#[tokio::test]
async fn verified_keeps_session_state_and_costs_one_round_trip() {
    if !cluster().require_roles() {
        return;
    }
    let pool = started(builder().conn_recycling_method(RecyclingMethod::Verified)).await;
    let mut c = pool.connection().await.unwrap();
    let (pid, count) = (c.backend_pid(), c.metrics().recycle_count());
    c.batch_execute(SESSION_STATE).await.unwrap();
    drop(c);
    let mut c = pool.connection().await.unwrap();
    assert_eq!(c.backend_pid(), pid);
    assert_eq!(c.metrics().recycle_count(), count + 1);
    assert_eq!(leftovers(&mut c).await, ALL_SURVIVE);
}

#[tokio::test]
async fn clean_resets_session_state_but_keeps_the_statement_cache() {
    if !cluster().require_roles() {
        return;
    }
    let pool = started(builder().conn_recycling_method(RecyclingMethod::Clean)).await;
    let mut c = pool.connection().await.unwrap();
    c.execute("SELECT $1::int4 * 2", &[&21i32]).await.unwrap();
    let cached = c.cached_statement_names();
    c.batch_execute(SESSION_STATE).await.unwrap();
    c.batch_execute("SET ROLE NONE; SET statement_timeout = '5min'")
        .await
        .unwrap();
    drop(c);
    let mut c = pool.connection().await.unwrap();
    // The cache's own statements are still there (checked before the probes add more).
    assert_eq!(c.cached_statement_names(), cached);
    let gone = Leftovers {
        app_name: false,
        temp_table: false,
        listen: false,
        advisory_lock: false,
        sql_prepared: false,
    };
    assert_eq!(leftovers(&mut c).await, gone);
    assert_eq!(
        scalar_text(&mut c, "SELECT current_setting('statement_timeout')").await,
        "0"
    );
    // ... still prepared on the server, and still used.
    let n = c.cached_statements();
    let r = c.execute("SELECT $1::int4 * 2", &[&4i32]).await.unwrap();
    assert_eq!(r.rows()[0].get::<_, i32>(0), 8);
    assert_eq!(c.cached_statements(), n, "no re-prepare");
}

#[tokio::test]
async fn clean_notices_a_borrower_dropping_the_cache_statements() {
    if !cluster().require_roles() {
        return;
    }
    let pool = started(builder().conn_recycling_method(RecyclingMethod::Clean)).await;
    let mut c = pool.connection().await.unwrap();
    c.execute("SELECT $1::int4 + 100", &[&1i32]).await.unwrap();
    assert!(c.cached_statements() >= 1);
    c.batch_execute("DEALLOCATE ALL").await.unwrap();
    drop(c);
    let mut c = pool.connection().await.unwrap();
    assert_eq!(
        c.cached_statements(),
        0,
        "cache cleared to match the server"
    );
    let r = c.execute("SELECT $1::int4 + 100", &[&1i32]).await.unwrap();
    assert_eq!(r.rows()[0].get::<_, i32>(0), 101);
}

#[tokio::test]
async fn clean_resets_sequence_state() {
    if !cluster().require_roles() {
        return;
    }
    let pg = cluster();
    let seq = pg.unique_name("seq");
    pg.psql(&format!(
        "CREATE SEQUENCE {seq}; GRANT USAGE ON {seq} TO scram_user;"
    ));
    for (method, survives) in [
        (RecyclingMethod::Fast, true),
        (RecyclingMethod::Clean, false),
    ] {
        let (mut c, _, _pool) =
            two_borrows(method.clone(), &format!("SELECT nextval('{seq}')")).await;
        let r = c.query_one(&format!("SELECT currval('{seq}')"), &[]).await;
        assert_eq!(r.is_ok(), survives, "{method:?}: {r:?}");
    }
}

#[tokio::test]
async fn custom_runs_its_sql() {
    if !cluster().require_roles() {
        return;
    }
    let (mut c, _, _pool) = two_borrows(
        RecyclingMethod::Custom("RESET ALL; UNLISTEN *".into()),
        SESSION_STATE,
    )
    .await;
    let l = leftovers(&mut c).await;
    assert_eq!(
        l,
        Leftovers {
            app_name: false,
            listen: false,
            ..ALL_SURVIVE
        }
    );
}

#[tokio::test]
async fn custom_sql_that_leaves_a_transaction_open_is_refused() {
    if !cluster().require_roles() {
        return;
    }
    let pool =
        started(builder().conn_recycling_method(RecyclingMethod::Custom("BEGIN".into()))).await;
    let pid = pool.connection().await.unwrap().backend_pid();
    let c = pool.connection().await.unwrap();
    assert_ne!(
        c.backend_pid(),
        pid,
        "the connection failing its check was replaced"
    );
    assert_eq!(c.transaction_status(), TransactionStatus::Idle);
}

#[tokio::test]
async fn a_connection_returned_in_a_transaction_is_rolled_back() {
    if !cluster().require_roles() {
        return;
    }
    let pg = cluster();
    let t = pg.unique_name("tx");
    pg.psql(&format!(
        "CREATE TABLE {t} (id int); GRANT ALL ON {t} TO scram_user;"
    ));
    for method in [
        RecyclingMethod::Fast,
        RecyclingMethod::Verified,
        RecyclingMethod::Clean,
    ] {
        let pool = started(builder().conn_recycling_method(method.clone())).await;
        // Open, with a row lock held.
        let mut c = pool.connection().await.unwrap();
        let pid = c.backend_pid();
        c.begin().await.unwrap();
        c.execute(&format!("INSERT INTO {t} VALUES (1)"), &[])
            .await
            .unwrap();
        drop(c);
        quiesce(&pool).await;
        // Failed.
        let mut c = pool.connection().await.unwrap();
        assert_eq!(
            c.backend_pid(),
            pid,
            "{method:?}: rolled back and reused, not replaced"
        );
        assert_eq!(
            c.transaction_status(),
            TransactionStatus::Idle,
            "{method:?}"
        );
        c.begin().await.unwrap();
        assert!(c.execute("SELECT 1/0", &[]).await.is_err());
        assert_eq!(c.transaction_status(), TransactionStatus::Failed);
        drop(c);
        quiesce(&pool).await;
        let mut c = pool.connection().await.unwrap();
        assert_eq!(c.backend_pid(), pid, "{method:?}");
        assert_eq!(
            c.transaction_status(),
            TransactionStatus::Idle,
            "{method:?}"
        );
        assert_eq!(
            scalar_i64(&mut c, &format!("SELECT count(*) FROM {t}")).await,
            0
        );
    }
}

#[tokio::test]
async fn the_transaction_guard_rolls_back_on_drop_and_commit_reports_a_failed_one() {
    if !cluster().require_roles() {
        return;
    }
    let pg = cluster();
    let t = pg.unique_name("txg");
    pg.psql(&format!(
        "CREATE TABLE {t} (id int); GRANT ALL ON {t} TO scram_user;"
    ));
    let pool = started(builder()).await;
    let mut c = pool.connection().await.unwrap();
    {
        let mut tx = c.transaction().await.unwrap();
        tx.execute(&format!("INSERT INTO {t} VALUES (1)"), &[])
            .await
            .unwrap();
        assert!(tx.in_transaction());
        // Dropped without commit.
    }
    // The next statement on the same connection does not run inside it.
    assert_eq!(
        scalar_i64(&mut c, &format!("SELECT count(*) FROM {t}")).await,
        0
    );
    assert_eq!(c.transaction_status(), TransactionStatus::Idle);

    let mut tx = c.transaction().await.unwrap();
    tx.execute(&format!("INSERT INTO {t} VALUES (2)"), &[])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        scalar_i64(&mut c, &format!("SELECT count(*) FROM {t}")).await,
        1
    );

    let mut tx = c.transaction().await.unwrap();
    tx.execute(&format!("INSERT INTO {t} VALUES (3)"), &[])
        .await
        .unwrap();
    assert!(tx.execute("SELECT 1/0", &[]).await.is_err());
    let err = tx.commit().await.unwrap_err();
    assert!(matches!(err, Error::RolledBack), "{err:?}");
    assert_eq!(
        scalar_i64(&mut c, &format!("SELECT count(*) FROM {t}")).await,
        1
    );

    let mut tx = c.transaction().await.unwrap();
    tx.execute(&format!("INSERT INTO {t} VALUES (4)"), &[])
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(c.transaction_status(), TransactionStatus::Idle);
    assert_eq!(
        scalar_i64(&mut c, &format!("SELECT count(*) FROM {t}")).await,
        1
    );
}

#[tokio::test]
async fn a_query_cancelled_mid_flight_is_drained_before_reuse() {
    if !cluster().require_roles() {
        return;
    }
    let pool = started(builder()).await;
    let mut c = pool.connection().await.unwrap();
    let pid = c.backend_pid();
    let r = tokio::time::timeout(
        Duration::from_millis(50),
        c.execute("SELECT pg_sleep(0.3)", &[]),
    )
    .await;
    assert!(r.is_err(), "cancelled");
    assert!(c.has_pending());
    drop(c);
    assert_eq!(pool.status().in_use, 1, "still held while it drains");
    quiesce(&pool).await;
    let mut c = pool.connection().await.unwrap();
    assert_eq!(c.backend_pid(), pid, "drained and reused");
    assert!(c.is_idle());
    assert_eq!(scalar_i64(&mut c, "SELECT 7::int8").await, 7);
}

#[tokio::test]
async fn a_long_query_left_running_is_cancelled_on_the_server() {
    if !cluster().require_roles() {
        return;
    }
    let pool = started(builder().recycle_timeout(Duration::from_secs(5))).await;
    let mut c = pool.connection().await.unwrap();
    let pid = c.backend_pid();
    let r = tokio::time::timeout(
        Duration::from_millis(50),
        c.execute("SELECT pg_sleep(30)", &[]),
    )
    .await;
    assert!(r.is_err());
    let start = std::time::Instant::now();
    drop(c);
    quiesce(&pool).await;
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "cancelled, not waited out"
    );
    let mut c = pool.connection().await.unwrap();
    assert_eq!(c.backend_pid(), pid, "drained and reused");
    assert_eq!(scalar_i64(&mut c, "SELECT 3::int8").await, 3);
}

#[tokio::test]
async fn an_idle_connection_killed_by_the_server_is_replaced_without_error() {
    if !cluster().require_roles() {
        return;
    }
    let pool = started(builder().conn_recycling_method(RecyclingMethod::Fast)).await;
    let pid = pool.connection().await.unwrap().backend_pid();
    let mut admin = admin().await;
    admin
        .execute("SELECT pg_terminate_backend($1, 10000)", &[&pid])
        .await
        .unwrap();
    let mut c = pool.connection().await.unwrap();
    assert_ne!(c.backend_pid(), pid);
    assert_eq!(scalar_i64(&mut c, "SELECT 1::int8").await, 1);
}

#[tokio::test]
async fn the_pool_recovers_after_a_server_restart() {
    // Its own server: stopping the shared one would disturb every other test.
    let pg = Cluster::start_throwaway();
    let pool = started(
        PsqlPool::builder()
            .dsn(pg.url(Role::Scram))
            .create_timeout(Duration::from_secs(5))
            .wait_timeout(Duration::from_secs(5)),
    )
    .await;
    pool.execute("SELECT 1", &[]).await.unwrap();
    pg.stop();
    // Idle connections are noticed dead; creating fails with the server's (connect) error.
    let err = pool.execute("SELECT 1", &[]).await.unwrap_err();
    assert!(matches!(err, Error::Backend(_)), "{err:?}");
    let s = pool.status();
    assert_eq!((s.in_use, s.waiting), (0, 0), "{s:?}");
    pg.start();
    let r = pool.execute("SELECT 41 + 1", &[]).await.unwrap();
    assert_eq!(r.rows()[0].get::<_, i32>(0), 42);
    // A restart while connections sit idle: replaced at checkout, no error.
    pg.restart();
    tokio::time::sleep(Duration::from_millis(200)).await;
    pool.execute("SELECT 1", &[]).await.unwrap();
}

#[tokio::test]
async fn many_tasks_share_a_small_pool() {
    if !cluster().require_roles() {
        return;
    }
    let pool = started(builder().max_db_pool_size(4)).await;
    let mut tasks = Vec::new();
    for i in 0..40i32 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for j in 0..10i32 {
                let r = pool
                    .execute("SELECT $1::int4 * 100 + $2::int4", &[&i, &j])
                    .await
                    .unwrap();
                assert_eq!(r.rows()[0].get::<_, i32>(0), i * 100 + j);
                let s = pool.status();
                assert!(s.size <= 4 && s.size == s.idle + s.in_use, "{s:?}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let s = pool.status();
    assert_eq!((s.in_use, s.waiting), (0, 0));
    assert!(s.size <= 4);
}

#[tokio::test]
async fn wait_timeout_close_and_resize_with_real_connections() {
    if !cluster().require_roles() {
        return;
    }
    let pool = started(builder().wait_timeout(Duration::from_millis(100))).await;
    let a = pool.connection().await.unwrap();
    let b = pool.connection().await.unwrap();
    let err = pool.connection().await.unwrap_err();
    assert_eq!(err.timeout_kind(), Some(TimeoutKind::Wait));
    pool.resize(3).unwrap();
    let c = pool.connection().await.unwrap();
    drop((a, b, c));
    assert_eq!(pool.status().idle, 3);
    pool.resize(2).unwrap();
    assert_eq!(pool.status().idle, 2);
    let waiter = {
        let held = (
            pool.connection().await.unwrap(),
            pool.connection().await.unwrap(),
        );
        let p = pool.clone();
        let w = tokio::spawn(async move { p.connection_timeout(Duration::from_secs(30)).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(pool.status().waiting, 1);
        (w, held)
    };
    pool.close().await;
    let err = waiter.0.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Closed), "{err:?}");
    drop(waiter.1);
    let s = pool.status();
    assert_eq!((s.size, s.waiting), (0, 0));
    assert!(matches!(
        pool.execute("SELECT 1", &[]).await,
        Err(Error::Closed)
    ));
}

#[tokio::test]
async fn max_lifetime_and_min_idle_with_real_connections() {
    if !cluster().require_roles() {
        return;
    }
    let pool = started(
        builder()
            .max_db_pool_size(3)
            .min_idle(2)
            .max_lifetime(Duration::from_millis(800)),
    )
    .await;
    for _ in 0..500 {
        if pool.status().idle >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(pool.status().idle, 2, "kept warm");
    let first = pool.connection().await.unwrap().backend_pid();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let c = pool.connection().await.unwrap();
    assert_ne!(c.backend_pid(), first, "expired connections replaced");
    drop(c);
    assert!(pool.status().size <= 3);
}

#[tokio::test]
async fn pool_execute_holds_no_lock_while_a_query_runs() {
    if !cluster().require_roles() {
        return;
    }
    let pool = started(builder().max_db_pool_size(4)).await;
    // Open all four first, so the timing below is only the queries.
    let warm: Vec<_> = futures_all(&pool, 4).await;
    drop(warm);
    let start = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            pool.execute("SELECT pg_sleep(0.3)", &[]).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let took = start.elapsed();
    // Serialized they would take 1.2 s; in parallel about 0.3 s.
    assert!(took < Duration::from_millis(900), "{took:?}");
}

async fn futures_all(pool: &PsqlPool, n: usize) -> Vec<pool_core::PooledConnection> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(pool.connection().await.unwrap());
    }
    out
}

#[tokio::test]
async fn query_timeout_applies_to_every_borrower() {
    let pool = PsqlPool::builder()
        .dsn(cluster().admin_url())
        .max_db_pool_size(2)
        .query_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    pool.startup().await.unwrap();
    let t = std::time::Instant::now();
    let err = pool.execute("SELECT pg_sleep(10)", &[]).await.unwrap_err();
    assert!(
        matches!(err.as_backend(), Some(pgwire_lite::Error::QueryTimeout(_))),
        "{err:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // A borrower lifting the limit on its connection does not pass that on.
    let mut c = pool.connection().await.unwrap();
    c.connection_mut().await.unwrap().set_query_timeout(None);
    let pid = c.backend_pid();
    drop(c);
    let c = pool.connection().await.unwrap();
    assert_eq!(c.backend_pid(), pid, "the same connection comes back");
    assert_eq!(c.query_timeout(), Some(Duration::from_millis(300)));
    drop(c);
    // Zero is refused, naming the knob.
    let err = PsqlPool::builder()
        .dsn(cluster().admin_url())
        .query_timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("query_timeout"), "{err}");
}

/// `param_types(FromValues)` holds for every connection and every borrower: a `&str` for
/// `$1::int4` is declared text and cast by the server (inferred types would refuse it), and a
/// borrower that switches back to inferred types does not pass that on.
#[tokio::test]
async fn pool_wide_param_types() {
    let pool = started(
        builder()
            .max_db_pool_size(2)
            .param_types(pool_core::ParamTypes::FromValues),
    )
    .await;
    let res = pool.execute("SELECT $1::int4 + 1", &[&"41"]).await.unwrap();
    assert_eq!(res.rows()[0].get::<_, i32>(0), 42);
    {
        let mut conn = pool.connection().await.unwrap();
        let c = conn.connection_mut().await.unwrap();
        c.set_param_types(pool_core::ParamTypes::Inferred);
        let e = c
            .execute("SELECT $1::int4 + 2", &[&"41"])
            .await
            .unwrap_err();
        assert!(e.to_string().contains("int4"), "{e}");
    }
    for _ in 0..4 {
        let mut conn = pool.connection().await.unwrap();
        let row = conn
            .query_one("SELECT $1::int4 + 3", &[&"41"])
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), 44);
    }
    // The default stays inference: the same call is refused on the client.
    let plain = started(builder()).await;
    assert!(
        plain
            .execute("SELECT $1::int4 + 1", &[&"41"])
            .await
            .is_err()
    );
    pool.close().await;
    plain.close().await;
}
