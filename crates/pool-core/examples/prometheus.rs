//! The pool's counters in Prometheus' text exposition format, by plain string formatting (no
//! metrics crate): `stats()` becomes counters, `status()` gauges. An HTTP handler for
//! `/metrics` would return `render(&pool)` with `Content-Type: text/plain; version=0.0.4`.
//!
//! Runs against a throwaway PostgreSQL it starts itself (or `DATABASE_URL`):
//!
//! `cargo run -p pool-core --example prometheus`

use std::fmt::Write as _;
use std::time::Duration;

use pool_core::{PoolStats, PsqlPool, Status};

/// One metric family: its help line, type, and samples (`labels`, value).
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(&str, f64)]) {
    // Writing into a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

/// The exposition text for one pool. Counters end in `_total`, times are in seconds, as the
/// Prometheus naming conventions ask.
fn render(stats: &PoolStats, status: &Status) -> String {
    let mut out = String::new();
    let n = |v: u64| v as f64;
    let counters: [(&str, &str, u64); 7] = [
        (
            "psqlpool_acquires_total",
            "Successful connection checkouts.",
            stats.acquires,
        ),
        (
            "psqlpool_acquires_waited_total",
            "Checkouts that queued because every slot was busy.",
            stats.acquires_waited,
        ),
        (
            "psqlpool_acquires_cancelled_total",
            "Checkouts whose future was dropped before they got a connection.",
            stats.acquires_cancelled,
        ),
        (
            "psqlpool_query_timeouts_total",
            "Statements that overran query_timeout.",
            stats.query_timeouts,
        ),
        (
            "psqlpool_connections_created_total",
            "Connections opened.",
            stats.connections_created,
        ),
        (
            "psqlpool_connection_create_failures_total",
            "Connection opens that failed.",
            stats.create_failures,
        ),
        (
            "psqlpool_hook_failures_total",
            "Hook calls that returned an error or panicked.",
            stats.hook_failures,
        ),
    ];
    for (name, help, value) in counters {
        family(&mut out, name, "counter", help, &[("", n(value))]);
    }
    family(
        &mut out,
        "psqlpool_timeouts_total",
        "counter",
        "Pool timeouts by kind.",
        &[
            (r#"kind="wait""#, n(stats.wait_timeouts)),
            (r#"kind="create""#, n(stats.create_timeouts)),
            (r#"kind="recycle""#, n(stats.recycle_timeouts)),
        ],
    );
    family(
        &mut out,
        "psqlpool_connections_closed_total",
        "counter",
        "Connections closed, by reason.",
        &[
            (r#"reason="max_lifetime""#, n(stats.closed_max_lifetime)),
            (r#"reason="idle_timeout""#, n(stats.closed_idle_timeout)),
            (r#"reason="broken""#, n(stats.closed_broken)),
            (r#"reason="recycle_failed""#, n(stats.closed_recycle_failed)),
            (r#"reason="hook""#, n(stats.closed_by_hook)),
            (r#"reason="aborted""#, n(stats.closed_aborted)),
            (r#"reason="pool""#, n(stats.closed_by_pool)),
        ],
    );
    family(
        &mut out,
        "psqlpool_acquire_wait_seconds_total",
        "counter",
        "Time checkouts spent queued for a slot.",
        &[("", stats.acquire_wait_time.as_secs_f64())],
    );
    family(
        &mut out,
        "psqlpool_connection_create_seconds_total",
        "counter",
        "Time spent opening connections.",
        &[("", stats.create_time.as_secs_f64())],
    );
    let gauges: [(&str, &str, usize); 5] = [
        (
            "psqlpool_max_connections",
            "The pool's maximum size.",
            status.max_size,
        ),
        (
            "psqlpool_connections",
            "Connections held, idle or in use.",
            status.size,
        ),
        (
            "psqlpool_idle_connections",
            "Idle connections.",
            status.idle,
        ),
        (
            "psqlpool_in_use_connections",
            "Slots held by borrowers.",
            status.in_use,
        ),
        (
            "psqlpool_waiting_acquires",
            "Borrowers queued for a slot.",
            status.waiting,
        ),
    ];
    for (name, help, value) in gauges {
        family(&mut out, name, "gauge", help, &[("", value as f64)]);
    }
    out
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pg = pg_harness::cluster();
    let url = if pg.is_external() {
        std::env::var("DATABASE_URL")?
    } else {
        pg.admin_url()
    };
    let pool = PsqlPool::builder().dsn(url).max_db_pool_size(2).build()?;
    pool.startup().await?;

    // Some traffic worth counting: queries, a wait for a busy slot, a wait timeout.
    for i in 0..20i32 {
        pool.execute("SELECT $1::int4", &[&i]).await?;
    }
    let a = pool.connection().await?;
    let b = pool.connection().await?;
    let late = pool.connection_timeout(Duration::from_millis(20)).await;
    eprintln!(
        "a third borrower with both slots busy: {}",
        late.unwrap_err()
    );
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.connection().await.map(drop) })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    drop(a);
    waiter.await??;
    drop(b);

    print!("{}", render(&pool.stats(), &pool.status()));
    pool.close().await;
    Ok(())
}
