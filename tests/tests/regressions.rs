//! One regression test per finding of the adversarial run (issue #11), each failing on the code
//! before its fix. Time-dependent cases are made deterministic with the server's own timing
//! (`pg_sleep`) and by stopping server processes (`SIGSTOP`), never with client-side sleeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pg_harness::{Role, cluster, unique_name};
use pgwire_lite::{Config, Connection, Error, ParamTypes, TimeoutOutcome, ToSql};
use pool_core::{ClientSettings, PsqlPool, RecyclingMethod};

async fn connect(role: Role) -> Connection {
    let cfg: Config = cluster().url(role).parse().expect("URL parses");
    Connection::connect(&cfg).await.expect("connects")
}

async fn count(c: &mut Connection, table: &str) -> i64 {
    let r = c
        .simple_query(&format!("SELECT count(*) FROM {table}"))
        .await
        .expect("count");
    r[0].rows()[0]
        .raw(0)
        .ok()
        .flatten()
        .and_then(|b| std::str::from_utf8(b).ok()?.parse().ok())
        .expect("a count")
}

fn table() -> String {
    let t = unique_name("f");
    cluster().psql(&format!("CREATE TABLE {t} (x int)"));
    t
}

// ---- 1. A query timeout says whether the statement took effect ----------------------------

/// The timeout tests depend on whether a CancelRequest gets through, and one of them stops the
/// postmaster that delivers it: they take turns.
static CANCEL_TESTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn f1_timeout_of_a_cancelled_statement_says_cancelled() {
    let _turn = CANCEL_TESTS.lock().await;
    let t = table();
    let mut c = connect(Role::Postgres).await;
    c.set_query_timeout(Some(Duration::from_millis(100)));
    let err = c
        .execute(&format!("INSERT INTO {t} SELECT 1 FROM pg_sleep(5)"), &[])
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(
        err.timeout_outcome(),
        Some(TimeoutOutcome::Cancelled),
        "{err}"
    );
    assert!(!c.is_broken());
    c.set_query_timeout(None);
    assert_eq!(count(&mut c, &t).await, 0);
}

#[tokio::test]
async fn f1_timeout_of_a_statement_that_finished_anyway_says_completed() {
    let _turn = CANCEL_TESTS.lock().await;
    if !cluster().require_roles() {
        return;
    }
    let t = table();
    let mut c = connect(Role::Postgres).await;
    c.set_query_timeout(Some(Duration::from_millis(30)));
    // The postmaster is stopped, so the CancelRequest cannot be delivered: the statement runs
    // its 150 ms and completes while the client waits out the cancellation's grace.
    let frozen = cluster().freeze();
    let err = c
        .execute(
            &format!("INSERT INTO {t} SELECT 1 FROM pg_sleep(0.15)"),
            &[],
        )
        .await
        .unwrap_err();
    frozen.thaw();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(
        err.timeout_outcome(),
        Some(TimeoutOutcome::Completed),
        "{err}"
    );
    assert!(err.to_string().contains("effects stand"), "{err}");
    // The cancel's delivery was never confirmed: it could still hit a later statement.
    assert!(c.is_broken());
    let mut admin = connect(Role::Postgres).await;
    assert_eq!(count(&mut admin, &t).await, 1);
}

#[tokio::test]
async fn f1_timeout_with_a_hung_backend_says_unknown() {
    let _turn = CANCEL_TESTS.lock().await;
    if !cluster().require_roles() {
        return;
    }
    let t = table();
    let mut c = connect(Role::Postgres).await;
    let pid = c.backend_pid();
    c.set_query_timeout(Some(Duration::from_millis(50)));
    let frozen = cluster().freeze_backend(pid);
    let err = c
        .execute(&format!("INSERT INTO {t} VALUES (1)"), &[])
        .await
        .unwrap_err();
    drop(frozen);
    assert_eq!(
        err.timeout_outcome(),
        Some(TimeoutOutcome::Unknown),
        "{err}"
    );
    assert!(c.is_broken());
}

#[tokio::test]
async fn f1_pool_query_timeout_is_a_timeout() {
    let _turn = CANCEL_TESTS.lock().await;
    let pool = PsqlPool::builder()
        .dsn(cluster().url(Role::Scram))
        .query_timeout(Duration::from_millis(50))
        .build()
        .expect("valid");
    pool.startup().await.expect("startup");
    let err = pool.execute("SELECT pg_sleep(5)", &[]).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
}

// ---- 2. commit() outside a transaction is an error ----------------------------------------

#[tokio::test]
async fn f2_commit_after_the_guard_rolled_back_is_an_error() {
    let t = table();
    let pool = PsqlPool::builder()
        .dsn(cluster().url(Role::Postgres))
        .build()
        .expect("valid");
    pool.startup().await.expect("startup");
    let mut conn = pool.connection().await.expect("conn");
    {
        let mut tx = conn.transaction().await.expect("begin");
        tx.execute(&format!("INSERT INTO {t} VALUES (1)"), &[])
            .await
            .expect("insert");
        // Dropped without commit: rolled back.
    }
    let err = conn.commit().await.unwrap_err();
    assert!(matches!(err, pool_core::Error::NoTransaction), "{err:?}");

    // Ended by a ROLLBACK sent as a statement.
    conn.begin().await.expect("begin");
    conn.execute(&format!("INSERT INTO {t} VALUES (2)"), &[])
        .await
        .expect("insert");
    conn.execute("ROLLBACK", &[]).await.expect("rollback");
    let err = conn.commit().await.unwrap_err();
    assert!(matches!(err, pool_core::Error::NoTransaction), "{err:?}");

    // Never begun.
    let err = conn.commit().await.unwrap_err();
    assert!(matches!(err, pool_core::Error::NoTransaction), "{err:?}");

    let mut admin = connect(Role::Postgres).await;
    assert_eq!(count(&mut admin, &t).await, 0);
}

// ---- 4. Statement names do not collide with the user's own --------------------------------

#[tokio::test]
async fn f4_a_users_prepare_cannot_replace_a_cached_statement() {
    for method in [RecyclingMethod::Fast, RecyclingMethod::Verified] {
        let pool = PsqlPool::builder()
            .dsn(cluster().url(Role::Scram))
            .conn_recycling_method(method.clone())
            .build()
            .expect("valid");
        pool.startup().await.expect("startup");
        let r = pool
            .execute("SELECT $1::int4 AS v", &[&7i32])
            .await
            .expect("b1");
        assert_eq!(r.rows()[0].get::<_, i32>("v"), 7);
        {
            // Borrower A, on the same (only idle) connection, prepares names the cache used to
            // use: s1, s2, ...
            let mut a = pool.connection().await.expect("a");
            for n in 1..=3 {
                let _ = a.batch_execute(&format!("DEALLOCATE \"s{n}\"")).await;
                a.batch_execute(&format!("PREPARE \"s{n}\"(int4) AS SELECT $1 + 1000000"))
                    .await
                    .expect("user PREPARE");
            }
        }
        let r = pool
            .execute("SELECT $1::int4 AS v", &[&7i32])
            .await
            .expect("b2");
        assert_eq!(r.rows()[0].get::<_, i32>("v"), 7, "{method:?}");
        pool.close().await;
    }
}

// ---- 5. Client-side settings never reach the next borrower --------------------------------

#[tokio::test]
async fn f5_client_settings_are_reset_between_borrowers() {
    for method in [RecyclingMethod::Fast, RecyclingMethod::Clean] {
        let pool = PsqlPool::builder()
            .dsn(cluster().url(Role::Scram))
            .conn_recycling_method(method.clone())
            .query_timeout(Duration::from_secs(30))
            .build()
            .expect("valid");
        pool.startup().await.expect("startup");
        let notices = Arc::new(AtomicUsize::new(0));
        let pid = {
            let mut a = pool.connection().await.expect("a");
            let c = a.connection_mut().await.expect("conn");
            c.set_max_message_len(1);
            c.set_param_types(ParamTypes::FromValues);
            c.set_statement_cache_capacity(0);
            c.set_query_timeout(Some(Duration::from_millis(1)));
            let seen = notices.clone();
            c.set_notice_handler(Some(Box::new(move |_| {
                seen.fetch_add(1, Ordering::SeqCst);
            })));
            c.backend_pid()
        };
        let mut b = pool.connection().await.expect("b");
        let c = b.connection_mut().await.expect("conn");
        assert_eq!(c.backend_pid(), pid, "the same connection comes back");
        assert_eq!(
            c.client_settings(),
            ClientSettings {
                query_timeout: Some(Duration::from_secs(30)),
                ..ClientSettings::default()
            },
            "{method:?}"
        );
        // A row wider than A's cap, and a notice A's handler would have counted.
        let r = c
            .execute("SELECT repeat('x', 100000) AS w", &[])
            .await
            .expect("wide row");
        assert_eq!(r.rows()[0].get::<_, String>("w").len(), 100_000);
        c.batch_execute("DO $$ BEGIN RAISE NOTICE 'hello'; END $$")
            .await
            .expect("notice");
        assert_eq!(notices.load(Ordering::SeqCst), 0, "{method:?}");
        assert!(c.cached_statements() > 0, "caching is back on");
        drop(b);
        pool.close().await;
    }
}

// ---- 6. Up to 65,535 parameters work on every path ----------------------------------------

fn many_params_sql(n: usize) -> String {
    let list: Vec<String> = (1..=n).map(|i| format!("${i}::int4")).collect();
    format!("SELECT array_length(ARRAY[{}], 1) AS n", list.join(","))
}

#[tokio::test]
async fn f6_65535_parameters_on_every_path() {
    let n = 65_535;
    let values: Vec<i32> = (0..n as i32).collect();
    let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as _).collect();
    let sql = many_params_sql(n);
    let mut c = connect(Role::Postgres).await;
    for (path, r) in [
        ("execute", c.execute(&sql, &params).await),
        (
            "execute_unprepared",
            c.execute_unprepared(&sql, &params).await,
        ),
    ] {
        let r = r.unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(r.rows()[0].get::<_, i32>("n"), n as i32, "{path}");
    }
    let t = table();
    let list: Vec<String> = (1..=n).map(|i| format!("${i}::int4")).collect();
    let insert = format!(
        "INSERT INTO {t} SELECT array_length(ARRAY[{}], 1)",
        list.join(",")
    );
    let rows = [params.clone(), params];
    assert_eq!(
        c.execute_many(&insert, &rows).await.expect("execute_many"),
        2
    );
    assert!(!c.is_broken());
}

// ---- 7. The write buffer shrinks; a parameter over 1 GiB is refused client-side -----------

// The memory half of finding 7 is in tests/tests/write_buffer.rs: it measures the process's
// RSS, so it runs alone in its own test binary.

#[tokio::test]
async fn f7_a_parameter_over_the_message_limit_is_a_clear_error() {
    let mut c = connect(Role::Postgres).await;
    let huge = vec![0u8; (1 << 30) + 1];
    let err = c
        .execute("SELECT length($1::bytea)", &[&huge.as_slice()])
        .await
        .unwrap_err();
    drop(huge);
    let msg = err.to_string();
    assert!(
        msg.contains("parameter $1") && msg.contains("1 GiB"),
        "{msg}"
    );
    assert!(!err.is_closed(), "{err:?}");
    // Nothing was sent: the connection goes on.
    let r = c
        .execute("SELECT 1 AS one", &[])
        .await
        .expect("still usable");
    assert_eq!(r.rows()[0].get::<_, i32>("one"), 1);
}

// ---- 8. Evicted statements are closed even when a Bind fails on the client ----------------

#[tokio::test]
async fn f8_failed_binds_do_not_leak_server_statements() {
    let mut c = connect(Role::Postgres).await;
    c.set_statement_cache_capacity(2);
    for i in 0..50 {
        // Prepared fine, then the Bind fails on our side: one parameter, none given.
        let err = c
            .execute(&format!("SELECT $1::int4 + {i}"), &[])
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Conversion(_)), "{err:?}");
    }
    // One more extended request carries the queued Closes.
    c.execute("SELECT 1", &[]).await.expect("select");
    let r = c
        .simple_query("SELECT count(*) FROM pg_prepared_statements")
        .await
        .expect("count");
    let n: i64 = std::str::from_utf8(r[0].rows()[0].raw(0).unwrap().unwrap())
        .unwrap()
        .parse()
        .unwrap();
    // The cache's two, plus at most the one evicted by the last prepare.
    assert!(n <= 3, "{n} statements on the server");
}

// ---- 9. A pool used from a second runtime replaces connections of the first ---------------

#[test]
fn f9_a_pool_outlives_the_runtime_it_started_on() {
    let pool = PsqlPool::builder()
        .dsn(cluster().url(Role::Scram))
        .build()
        .expect("valid");
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    first.block_on(async {
        pool.startup().await.expect("startup");
        pool.execute("SELECT 1", &[]).await.expect("first runtime");
    });
    drop(first);
    let second = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    second.block_on(async {
        for _ in 0..3 {
            pool.execute("SELECT 1", &[])
                .await
                .expect("second runtime: no error");
        }
        let s = pool.status();
        assert_eq!(s.in_use, 0, "{s:?}");
    });
}

// ---- Error polish ---------------------------------------------------------------------------

#[tokio::test]
async fn query_one_with_no_row_is_a_row_count_error() {
    let mut c = connect(Role::Postgres).await;
    let err = c.query_one("SELECT 1 WHERE false", &[]).await.unwrap_err();
    assert!(err.is_row_count(), "{err:?}");
    assert!(
        matches!(err, Error::RowCount { got: 0, .. }),
        "not a conversion error: {err:?}"
    );
    let err = c
        .query_opt("SELECT generate_series(1, 2)", &[])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RowCount { got: 2, .. }), "{err:?}");
}

#[tokio::test]
async fn connect_and_authentication_errors_name_the_server() {
    let pg = cluster();
    if !pg.require_roles() {
        return;
    }
    let address = format!("{}:{}", pg.host(), pg.port());
    // The server refuses: a wrong password.
    let url = cluster()
        .url(Role::Scram)
        .replacen("scram_pass", "wrong", 1);
    let cfg: Config = url.parse().expect("URL parses");
    let err = Connection::connect(&cfg).await.unwrap_err();
    assert_eq!(err.code(), Some("28P01"), "{err:?}");
    assert!(err.to_string().contains(&address), "{err}");
    // We refuse: no password for a SCRAM role.
    let url = cluster().url(Role::Scram).replacen(":scram_pass", "", 1);
    let cfg: Config = url.parse().expect("URL parses");
    let err = Connection::connect(&cfg).await.unwrap_err();
    assert!(matches!(err, Error::Auth(_)), "{err:?}");
    assert!(err.to_string().contains(&address), "{err}");
}
