//! Helpers shared by the integration suites: an admin connection, a started pool, table-driven
//! cases, and the assertions every chaos test ends with (tests/FAULTS.md, A1–A6). Include with
//! `mod common;` from a test file under tests/tests/.
#![allow(dead_code)] // each test binary uses a different subset

use std::future::Future;
use std::time::{Duration, Instant};

use pg_harness::cluster;
use pgwire_lite::types::FromSqlOwned;
use pgwire_lite::{Config, Connection, Format};
use pool_core::{PsqlPool, PsqlPoolBuilder};

/// A pool on the shared cluster as the superuser, tagged with `app` so its backends can be
/// counted in `pg_stat_activity`; short timeouts, as the budgets in tests/FAULTS.md assume.
pub fn pool_builder(app: &str, max: usize) -> PsqlPoolBuilder {
    PsqlPool::builder()
        .dsn(format!(
            "{}?application_name={app}&connect_timeout=2",
            cluster().admin_url()
        ))
        .max_db_pool_size(max)
        .wait_timeout(Duration::from_secs(1))
}

/// An admin connection that is not part of any pool under test.
pub async fn admin() -> Connection {
    let cfg: Config = cluster().admin_url().parse().expect("admin URL parses");
    Connection::connect(&cfg).await.expect("admin connects")
}

/// Builds the pool and runs `startup` (which opens `min_idle` connections), panicking with the
/// error if either fails: every test that uses it needs a working pool to start from.
pub async fn started(b: PsqlPoolBuilder) -> PsqlPool {
    let pool = b.build().expect("valid pool config");
    pool.startup().await.expect("startup");
    pool
}

/// Runs one case of a table-driven test as its own task and, should it panic, fails naming
/// `name` (the case's own panic message is printed just before).
pub async fn run_case<F>(name: &str, case: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    if let Err(e) = tokio::spawn(case).await {
        panic!("case {name} failed: {e}");
    }
}

/// The number of server backends whose application_name is `app`.
pub async fn backends(app: &str) -> i64 {
    let mut c = admin().await;
    c.query_one(
        "SELECT count(*)::int8 FROM pg_stat_activity WHERE application_name = $1",
        &[&app],
    )
    .await
    .expect("pg_stat_activity")
    .get(0)
}

/// The backend pids of `app`'s connections.
pub async fn backend_pids(app: &str) -> Vec<i32> {
    let mut c = admin().await;
    c.query(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
        &[&app],
    )
    .await
    .expect("pg_stat_activity")
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// The checks after every chaos test (tests/FAULTS.md), once all tasks are joined:
/// A1. `status()` adds up, nothing in use or waiting;
/// A2. a fresh `SELECT 1` succeeds within `budget`;
/// A4. the server holds no more backends for `app` than the pool's maximum.
pub async fn assert_recovered(pool: &PsqlPool, app: &str, budget: Duration) {
    let s = pool.status();
    assert_eq!(s.in_use, 0, "a slot is still in use: {s:?}");
    assert_eq!(s.waiting, 0, "a waiter is still waiting: {s:?}");
    assert!(s.size <= s.max_size, "{s:?}");
    assert_eq!(s.idle + s.in_use, s.size, "status does not add up: {s:?}");
    assert_counters_add_up(pool);
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < budget {
        match pool.execute("SELECT 1::int4", &[]).await {
            Ok(r) => {
                assert_eq!(r.rows()[0].get::<_, i32>(0), 1);
                last = None;
                break;
            }
            Err(e) => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    if let Some(e) = last {
        panic!("the pool did not serve a fresh query within {budget:?}: {e}");
    }
    let n = backends(app).await;
    assert!(
        n <= s.max_size as i64,
        "the server holds {n} backends for {app}, more than the pool's maximum {}",
        s.max_size
    );
}

/// A6' (counters): with no checkout mid-way, every connection the pool opened is held or was
/// counted closed: `connections_created - connections_closed() == size`. The two reads are
/// not atomic together, so they are repeated until no counter moved in between (the
/// `min_idle` filler may be opening one).
pub fn assert_counters_add_up(pool: &PsqlPool) {
    let mut last = None;
    for _ in 0..100 {
        let before = pool.stats();
        let s = pool.status();
        if before != pool.stats() || s.in_use != 0 {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let open = before.connections_created - before.connections_closed();
        if open == s.size as u64 {
            return;
        }
        last = Some((before, s));
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the counters do not add up (created - closed != size): {last:?}");
}

/// A3 (tests/FAULTS.md): a call must finish within its timeout plus slack.
pub async fn within<T>(
    limit: Duration,
    what: &str,
    fut: impl std::future::Future<Output = T>,
) -> T {
    let slack = Duration::from_millis(250);
    match tokio::time::timeout(limit + slack, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what} took longer than {limit:?} + {slack:?}"),
    }
}

/// Column 0 of the single row of `sql`, through the extended protocol (binary format).
pub async fn read_binary<T: FromSqlOwned>(
    c: &mut Connection,
    sql: &str,
) -> Result<T, pgwire_lite::Error> {
    let row = c
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    assert_eq!(row.columns()[0].format(), Format::Binary, "{sql}");
    row.try_get(0)
}

/// Column 0 of the single row of `sql`, through the simple protocol (text format).
pub async fn read_text<T: FromSqlOwned>(
    c: &mut Connection,
    sql: &str,
) -> Result<T, pgwire_lite::Error> {
    let results = c
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let result = results.last().expect("one result");
    assert_eq!(result.len(), 1, "{sql}");
    let row = &result.rows()[0];
    assert_eq!(row.columns()[0].format(), Format::Text, "{sql}");
    row.try_get(0)
}
