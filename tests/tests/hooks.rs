//! Connection hooks against a real PostgreSQL: `after_connect` sets up every new session,
//! `before_acquire` and `after_release` veto connections (closed and replaced), and a hook that
//! errors or panics costs only its connection: `status()` adds up, the counters balance, the
//! pool keeps serving and holds no more backends than its maximum.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{assert_counters_add_up, assert_recovered, backends, pool_builder, started};
use pg_harness::unique_name;
use pool_core::{Error, PsqlPool, TransactionStatus};

const PANIC_MESSAGE: &str = "hooks suite: deliberate panic";

/// Keeps the deliberate panics out of the test output; any other panic still prints.
fn quiet_deliberate_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&PANIC_MESSAGE) {
                default(info);
            }
        }));
    });
}

async fn quiesce(pool: &PsqlPool) {
    for _ in 0..1000 {
        if pool.status().in_use == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("slots still in use: {:?}", pool.status());
}

async fn setting(pool: &PsqlPool, name: &str) -> String {
    let mut c = pool.connection().await.unwrap();
    c.query_one("SELECT current_setting($1)", &[&name])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn after_connect_sets_up_every_new_session() {
    let app = unique_name("hooks_setup");
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let pool = started(pool_builder(&app, 3).after_connect(move |conn| {
        seen.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            conn.batch_execute("SET search_path = hooks_schema, public; SET work_mem = '7MB'")
                .await?;
            Ok(())
        })
    }))
    .await;
    // Three connections at once, so three sessions were opened and set up.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(pool.connection().await.unwrap());
    }
    for c in &mut held {
        let row = c
            .query_one(
                "SELECT current_setting('work_mem'), current_setting('search_path')",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "7MB");
        assert_eq!(row.get::<_, String>(1), "hooks_schema, public");
    }
    drop(held);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(pool.stats().connections_created, 3);
    assert_eq!(setting(&pool, "work_mem").await, "7MB");
    assert_recovered(&pool, &app, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_failing_after_connect_fails_startup_with_a_clear_error_and_frees_the_slot() {
    let app = unique_name("hooks_fail");
    let pool = pool_builder(&app, 2)
        .after_connect(|conn| {
            Box::pin(async move {
                conn.batch_execute("SET no_such_parameter_at_all = 1")
                    .await?;
                Ok(())
            })
        })
        .build()
        .unwrap();
    let err = pool.startup().await.unwrap_err();
    match &err {
        Error::Hook { hook, source } => {
            assert_eq!(*hook, "after_connect");
            assert!(
                source.to_string().contains("no_such_parameter_at_all"),
                "{source}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("the after_connect hook failed: "),
        "{err}"
    );
    let s = pool.status();
    assert_eq!((s.size, s.in_use), (0, 0), "{s:?}");
    let st = pool.stats();
    assert_eq!(
        (st.connections_created, st.closed_by_hook, st.hook_failures),
        (1, 1, 1),
        "{st:?}"
    );
    // The refused session was closed on the server too.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(backends(&app).await, 0);
}

#[tokio::test]
async fn a_panicking_after_connect_n_times_then_a_normal_acquire_works() {
    quiet_deliberate_panics();
    let app = unique_name("hooks_panic");
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let pool = pool_builder(&app, 2)
        .after_connect(move |_conn| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if n < 5 {
                    std::panic::panic_any(PANIC_MESSAGE);
                }
                Ok(())
            })
        })
        .build()
        .unwrap();
    for _ in 0..5 {
        let err = pool.startup().await.unwrap_err();
        assert!(err.to_string().contains(PANIC_MESSAGE), "{err}");
        let s = pool.status();
        assert_eq!((s.size, s.in_use, s.waiting), (0, 0, 0), "{s:?}");
    }
    pool.startup().await.unwrap();
    // Both slots usable at once: none was lost.
    let a = pool.connection_timeout(Duration::ZERO).await.unwrap();
    let b = pool.connection_timeout(Duration::ZERO).await.unwrap();
    drop((a, b));
    let st = pool.stats();
    assert_eq!((st.closed_by_hook, st.hook_failures), (5, 5), "{st:?}");
    assert_recovered(&pool, &app, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn before_acquire_vetoes_a_connection_and_the_checkout_takes_another() {
    quiet_deliberate_panics();
    let app = unique_name("hooks_before");
    // Veto sessions a borrower marked; panic on sessions marked "panic".
    let pool = started(pool_builder(&app, 2).before_acquire(|conn, meta| {
        Box::pin(async move {
            assert!(meta.age >= meta.idle_for, "{meta:?}");
            let mark: Option<String> = conn
                .query_one("SELECT current_setting('app.mark', true)", &[])
                .await?
                .get(0);
            match mark.as_deref() {
                Some("veto") => Ok(false),
                Some("panic") => std::panic::panic_any(PANIC_MESSAGE),
                Some("error") => Err("marked as an error".into()),
                _ => Ok(true),
            }
        })
    }))
    .await;
    for mark in ["veto", "panic", "error"] {
        let mut c = pool.connection().await.unwrap();
        let pid = c.backend_pid();
        c.batch_execute(&format!("SET app.mark = '{mark}'"))
            .await
            .unwrap();
        drop(c);
        let c = pool.connection().await.unwrap();
        assert_ne!(
            c.backend_pid(),
            pid,
            "{mark}: the marked session was replaced"
        );
    }
    // An unmarked session passes and is reused.
    let pid = pool.connection().await.unwrap().backend_pid();
    assert_eq!(pool.connection().await.unwrap().backend_pid(), pid);
    let st = pool.stats();
    assert_eq!((st.closed_by_hook, st.hook_failures), (3, 2), "{st:?}");
    assert_recovered(&pool, &app, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn after_release_closes_what_it_vetoes_and_sees_transactions_already_rolled_back() {
    quiet_deliberate_panics();
    let app = unique_name("hooks_release");
    let statuses = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = Arc::clone(&statuses);
    let pool = started(pool_builder(&app, 2).after_release(move |conn, meta| {
        log.lock()
            .unwrap()
            .push((conn.transaction_status(), meta.idle_for));
        Box::pin(async move {
            // Sessions that created temporary tables are not worth keeping.
            let temp: bool = conn
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_class WHERE relpersistence = 't')",
                    &[],
                )
                .await?
                .get(0);
            let mark: Option<String> = conn
                .query_one("SELECT current_setting('app.mark', true)", &[])
                .await?
                .get(0);
            if mark.as_deref() == Some("panic") {
                std::panic::panic_any(PANIC_MESSAGE);
            }
            Ok(!temp)
        })
    }))
    .await;
    // Kept: an ordinary borrow, even one given back inside a transaction.
    let mut c = pool.connection().await.unwrap();
    let pid = c.backend_pid();
    c.batch_execute("BEGIN; SELECT 1").await.unwrap();
    drop(c);
    quiesce(&pool).await;
    assert_eq!(pool.connection().await.unwrap().backend_pid(), pid);
    quiesce(&pool).await;
    // Vetoed: a temporary table.
    let mut c = pool.connection().await.unwrap();
    let pid = c.backend_pid();
    c.batch_execute("CREATE TEMP TABLE t (x int)")
        .await
        .unwrap();
    drop(c);
    quiesce(&pool).await;
    assert_ne!(pool.connection().await.unwrap().backend_pid(), pid);
    quiesce(&pool).await;
    // Panicked: closed, slot back.
    let mut c = pool.connection().await.unwrap();
    let pid = c.backend_pid();
    c.batch_execute("SET app.mark = 'panic'").await.unwrap();
    drop(c);
    quiesce(&pool).await;
    assert_ne!(pool.connection().await.unwrap().backend_pid(), pid);
    quiesce(&pool).await;
    for (status, idle_for) in statuses.lock().unwrap().iter() {
        assert_eq!(
            *status,
            TransactionStatus::Idle,
            "rolled back before the hook"
        );
        assert_eq!(*idle_for, Duration::ZERO);
    }
    let st = pool.stats();
    assert_eq!((st.closed_by_hook, st.hook_failures), (2, 1), "{st:?}");
    assert_counters_add_up(&pool);
    assert_recovered(&pool, &app, Duration::from_secs(2)).await;
}
