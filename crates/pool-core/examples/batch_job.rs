//! A batch job: 200,000 rows loaded by four workers with `execute_many` (each chunk one round
//! trip and all-or-nothing), with a progress line.
//!
//! ```text
//! cargo run -p pool-core --example batch_job
//! ```

mod common;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pool_core::{PsqlPool, ToSql};

const TOTAL_ROWS: usize = 200_000;
const CHUNK_ROWS: usize = 5_000;
const WORKERS: usize = 4;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = PsqlPool::builder()
        .dsn(common::database_url())
        .max_db_pool_size(WORKERS)
        .build()?;
    pool.startup().await?;
    pool.execute("DROP TABLE IF EXISTS batch_events", &[])
        .await?;
    pool.execute(
        "CREATE TABLE batch_events (id int8 PRIMARY KEY, kind text NOT NULL, amount int8 NOT NULL)",
        &[],
    )
    .await?;

    let chunks = TOTAL_ROWS.div_ceil(CHUNK_ROWS);
    let next_chunk = Arc::new(AtomicUsize::new(0));
    let loaded = Arc::new(AtomicU64::new(0));
    let started = Instant::now();

    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let (pool, next_chunk, loaded) = (pool.clone(), next_chunk.clone(), loaded.clone());
        workers.spawn(async move {
            // Each worker takes the next chunk until none is left.
            loop {
                let chunk = next_chunk.fetch_add(1, Ordering::Relaxed);
                if chunk >= chunks {
                    return Ok::<(), pool_core::Error>(());
                }
                let first = chunk * CHUNK_ROWS;
                let last = TOTAL_ROWS.min(first + CHUNK_ROWS);
                let rows: Vec<(i64, &str, i64)> = (first..last)
                    .map(|i| {
                        let i = i as i64;
                        (i, if i % 3 == 0 { "refund" } else { "sale" }, i % 1000)
                    })
                    .collect();
                // One parameter row per INSERT: Bind/Execute for all of them in one write.
                let params: Vec<[&(dyn ToSql + Sync); 3]> = rows
                    .iter()
                    .map(|(id, kind, amount)| [id as _, kind as _, amount as _])
                    .collect();
                let n = pool
                    .execute_many(
                        "INSERT INTO batch_events (id, kind, amount) VALUES ($1, $2, $3)",
                        &params,
                    )
                    .await?;
                loaded.fetch_add(n, Ordering::Relaxed);
            }
        });
    }

    // The progress line, redrawn in place until every worker is done.
    let progress = |done: u64| {
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        eprint!(
            "\r{done:>7}/{TOTAL_ROWS} rows ({:>3}%), {:>7.0} rows/s",
            done * 100 / TOTAL_ROWS as u64,
            done as f64 / secs
        );
        let _ = std::io::stderr().flush();
    };
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            joined = workers.join_next() => match joined {
                Some(result) => result??,
                None => break,
            },
            _ = tick.tick() => progress(loaded.load(Ordering::Relaxed)),
        }
    }
    progress(loaded.load(Ordering::Relaxed));
    eprintln!();

    let row = pool
        .query_one(
            "SELECT count(*)::int8, sum(amount)::int8, count(*) FILTER (WHERE kind = 'refund')::int8
             FROM batch_events",
            &[],
        )
        .await?;
    let (count, sum, refunds): (i64, i64, i64) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    println!(
        "loaded {count} rows in {:.2?} ({refunds} refunds, amounts summing to {sum})",
        started.elapsed()
    );
    if count != TOTAL_ROWS as i64 {
        return Err(format!("expected {TOTAL_ROWS} rows, found {count}").into());
    }
    pool.execute("DROP TABLE batch_events", &[]).await?;
    pool.close().await;
    Ok(())
}
