//! `PsqlPool::stats()` against a real PostgreSQL: after known sequences (checkouts, a forced
//! wait, a wait timeout, a dropped waiting future, a killed backend, a failed recycle, an
//! expired lifetime, a query timeout, a refused connection) each counter says what happened,
//! and after a chaos run (backends terminated under load) the counters still add up:
//! `connections_created - connections_closed() == status().size`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{admin, assert_recovered, backend_pids, pool_builder, started};
use pg_harness::unique_name;
use pool_core::{Error, PoolStats, PsqlPool, RecyclingMethod, TimeoutKind};

/// Waits until no slot is in use (a background reset or release hook holds one meanwhile).
async fn quiesce(pool: &PsqlPool) {
    for _ in 0..1000 {
        if pool.status().in_use == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("slots still in use: {:?}", pool.status());
}

/// Every connection the pool opened is held now or was counted closed.
fn assert_balanced(pool: &PsqlPool) -> PoolStats {
    let st = pool.stats();
    let s = pool.status();
    assert_eq!(
        st.connections_created - st.connections_closed(),
        s.size as u64,
        "{st:?} {s:?}"
    );
    st
}

async fn terminate(pid: i32) {
    admin()
        .await
        .execute("SELECT pg_terminate_backend($1, 10000)", &[&pid])
        .await
        .expect("pg_terminate_backend");
}

#[tokio::test]
async fn checkouts_waits_timeouts_and_cancellations_are_counted() {
    let app = unique_name("stats_seq");
    let pool = started(pool_builder(&app, 2)).await;
    let st = pool.stats();
    assert_eq!(
        (st.acquires, st.connections_created),
        (1, 1),
        "startup: {st:?}"
    );
    assert!(st.create_time > Duration::ZERO, "{st:?}");
    for i in 0..10i32 {
        let r = pool.execute("SELECT $1::int4", &[&i]).await.unwrap();
        assert_eq!(r.rows()[0].get::<_, i32>(0), i);
    }
    assert_eq!(pool.stats().acquires, 11);
    assert_eq!(pool.stats().acquires_waited, 0, "a free slot never waits");

    // Both slots held: a forced wait of about 150 ms.
    let a = pool.connection().await.unwrap();
    let b = pool.connection().await.unwrap();
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.connection().await.map(drop) })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    drop(a);
    waiter.await.unwrap().unwrap();
    let st = pool.stats();
    assert_eq!((st.acquires, st.acquires_waited), (14, 1), "{st:?}");
    assert!(st.acquire_wait_time >= Duration::from_millis(100), "{st:?}");
    assert!(st.acquire_wait_time < Duration::from_secs(1), "{st:?}");

    // Both held again: a wait timeout, then a waiting future dropped.
    let a = pool.connection().await.unwrap();
    let err = pool
        .connection_timeout(Duration::from_millis(50))
        .await
        .unwrap_err();
    assert_eq!(err.timeout_kind(), Some(TimeoutKind::Wait));
    assert!(
        tokio::time::timeout(Duration::from_millis(50), pool.connection())
            .await
            .is_err()
    );
    drop((a, b));
    let st = pool.stats();
    assert_eq!(
        (st.acquires, st.wait_timeouts, st.acquires_cancelled),
        (15, 1, 1),
        "{st:?}"
    );
    assert_eq!(st.connections_created, 2, "{st:?}");
    assert_eq!(st.connections_closed(), 0, "{st:?}");
    assert_balanced(&pool);
    pool.close().await;
    let st = assert_balanced(&pool);
    assert_eq!(st.closed_by_pool, 2, "close() closes the idle ones: {st:?}");
}

#[tokio::test]
async fn a_killed_backend_is_counted_broken() {
    let app = unique_name("stats_broken");
    let pool = started(pool_builder(&app, 2).conn_recycling_method(RecyclingMethod::Fast)).await;
    let pid = pool.connection().await.unwrap().backend_pid();
    terminate(pid).await;
    let c = pool.connection().await.unwrap();
    assert_ne!(c.backend_pid(), pid);
    drop(c);
    let st = assert_balanced(&pool);
    assert_eq!((st.closed_broken, st.connections_created), (1, 2), "{st:?}");
}

#[tokio::test]
async fn failed_recycles_are_counted() {
    // A recycling SQL that fails: deterministic, every checkout of an idle connection.
    let app = unique_name("stats_recycle");
    let pool = started(
        pool_builder(&app, 2).conn_recycling_method(RecyclingMethod::Custom("SELECT 1/0".into())),
    )
    .await;
    for _ in 0..3 {
        pool.execute("SELECT 1", &[]).await.unwrap();
    }
    let st = assert_balanced(&pool);
    assert_eq!((st.closed_recycle_failed, st.acquires), (3, 4), "{st:?}");

    // Verified after pg_terminate_backend: the idle socket check usually sees the server's
    // goodbye first (broken); if the FATAL had not arrived yet, the empty query fails
    // (recycle failure). Either way exactly one close, and the checkout succeeds.
    let app = unique_name("stats_verified");
    let pool =
        started(pool_builder(&app, 2).conn_recycling_method(RecyclingMethod::Verified)).await;
    let pid = pool.connection().await.unwrap().backend_pid();
    terminate(pid).await;
    let c = pool.connection().await.unwrap();
    assert_ne!(c.backend_pid(), pid);
    drop(c);
    let st = assert_balanced(&pool);
    assert_eq!(st.closed_broken + st.closed_recycle_failed, 1, "{st:?}");
}

#[tokio::test]
async fn lifetime_expiry_query_timeouts_and_refused_connections_are_counted() {
    let app = unique_name("stats_life");
    let pool = started(
        pool_builder(&app, 2)
            .max_lifetime(Duration::from_millis(200))
            .query_timeout(Duration::from_millis(200)),
    )
    .await;
    let first = pool.connection().await.unwrap().backend_pid();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c = pool.connection().await.unwrap();
    assert_ne!(c.backend_pid(), first);
    drop(c);
    let st = assert_balanced(&pool);
    assert!(st.closed_max_lifetime >= 1, "{st:?}");

    let err = pool.execute("SELECT pg_sleep(5)", &[]).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(pool.stats().query_timeouts, 1);
    pool.close().await;

    // Nothing listens on port 1.
    let refused = PsqlPool::builder()
        .host("127.0.0.1")
        .port(1)
        .build()
        .unwrap();
    assert!(matches!(refused.startup().await, Err(Error::Backend(_))));
    let st = refused.stats();
    assert_eq!(
        (st.create_failures, st.connections_created, st.acquires),
        (1, 0, 0),
        "{st:?}"
    );
}

/// Chaos (as chaos_server's L5/L6, under load): eight tasks query through a pool of four while
/// an admin terminates the pool's backends, idle and busy, five times. Afterwards the pool
/// recovers (tests/FAULTS.md A1-A4) and every connection it opened is accounted for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_add_up_after_backends_are_terminated_under_load() {
    let app = unique_name("stats_chaos");
    let pool = started(pool_builder(&app, 4).wait_timeout(Duration::from_secs(5))).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for t in 0..8i32 {
        let (pool, stop) = (pool.clone(), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u64, 0u64);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match pool
                    .execute("SELECT $1::int4, pg_sleep(0.005)", &[&t])
                    .await
                {
                    Ok(_) => ok += 1,
                    Err(_) => failed += 1,
                }
            }
            (ok, failed)
        }));
    }
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        for pid in backend_pids(&app).await {
            terminate(pid).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut failed) = (0, 0);
    for t in tasks {
        let (o, f) = t.await.unwrap();
        ok += o;
        failed += f;
    }
    quiesce(&pool).await;
    let st = assert_balanced(&pool);
    assert!(ok > 0, "no query succeeded");
    assert!(
        st.closed_broken > 0,
        "terminated backends were closed: {st:?}"
    );
    assert!(
        st.connections_created > 4,
        "replacements were opened: {st:?}"
    );
    // Every execute is one successful checkout (the failures failed in the query, not in the
    // checkout: the wait timeout is far longer than a query).
    assert_eq!(st.acquires, 1 + ok + failed, "{st:?}");
    assert_eq!(st.wait_timeouts + st.create_failures, 0, "{st:?}");
    assert_recovered(&pool, &app, Duration::from_secs(5)).await;
    assert_balanced(&pool);
}
