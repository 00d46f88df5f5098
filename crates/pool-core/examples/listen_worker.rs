//! A LISTEN worker: jobs are rows of a table, `NOTIFY` wakes the worker, and when its
//! connection is lost (here: killed on purpose halfway) the listener reconnects by itself and
//! reports a gap, on which the worker rescans the table, so no job is missed.
//!
//! ```text
//! cargo run -p pool-core --example listen_worker
//! ```

mod common;

use std::time::Duration;

use pool_core::{ListenerEvent, PsqlPool};

const JOBS: usize = 6;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = common::database_url();
    let sep = if url.contains('?') { '&' } else { '?' };
    let pool = PsqlPool::builder()
        // The application_name lets the producer below find the listener's backend.
        .dsn(format!("{url}{sep}application_name=listen_worker"))
        .max_db_pool_size(4)
        .build()?;
    pool.startup().await?;
    pool.execute("DROP TABLE IF EXISTS worker_jobs", &[])
        .await?;
    pool.execute(
        "CREATE TABLE worker_jobs (id serial PRIMARY KEY, payload text NOT NULL, done_at timestamptz)",
        &[],
    )
    .await?;

    // Listen before anything can be queued: what is committed after LISTEN is notified.
    let mut listener = pool.listener().await?;
    listener.listen("worker_jobs").await?;

    let producer = tokio::spawn(produce(pool.clone()));

    // Whatever was queued before we listened (nothing here, but a restarted worker would
    // find its backlog this way).
    let mut done = process_pending(&pool).await?;
    let work = async {
        while done < JOBS {
            match listener.recv().await? {
                ListenerEvent::Notification(n) => {
                    let Ok(id) = n.payload.parse::<i32>() else {
                        eprintln!("ignoring a malformed payload {:?}", n.payload);
                        continue;
                    };
                    done += process(&pool, id).await?;
                }
                ListenerEvent::Gap { cause } => {
                    println!("listener reconnected after: {cause}; rescanning the table");
                    done += process_pending(&pool).await?;
                }
                // ListenerEvent is non_exhaustive.
                _ => {}
            }
        }
        Ok::<(), pool_core::Error>(())
    };
    // A worker that waits forever is a bug in a demo: give up after 30 s.
    tokio::time::timeout(Duration::from_secs(30), work)
        .await
        .map_err(|_| "the worker did not finish within 30 s")??;
    producer.await??;

    let left: i64 = pool
        .query_one(
            "SELECT count(*)::int8 FROM worker_jobs WHERE done_at IS NULL",
            &[],
        )
        .await?
        .try_get(0)?;
    println!("processed {done} jobs, {left} left");
    if done != JOBS || left != 0 {
        return Err(format!("expected {JOBS} jobs done and none left").into());
    }
    pool.execute("DROP TABLE worker_jobs", &[]).await?;
    pool.close().await;
    Ok(())
}

/// Queues the jobs: each insert notifies in the same statement, so the notification is sent
/// exactly when the row commits. Halfway, the listener's connection is terminated, as a
/// failover or an idle-connection killer would.
async fn produce(pool: PsqlPool) -> Result<(), pool_core::Error> {
    for i in 0..JOBS {
        if i == JOBS / 2 {
            let killed: i64 = pool
                .query_one(
                    "SELECT count(pg_terminate_backend(pid))::int8 FROM pg_stat_activity
                     WHERE application_name = 'listen_worker' AND query LIKE 'LISTEN%'",
                    &[],
                )
                .await?
                .try_get(0)?;
            println!("producer: terminated {killed} listener connection(s)");
        }
        pool.execute(
            "WITH job AS (INSERT INTO worker_jobs (payload) VALUES ($1) RETURNING id)
             SELECT pg_notify('worker_jobs', id::text) FROM job",
            &[&format!("job #{i}")],
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Claims and runs job `id`; 0 when it was done already (a notification and a rescan can
/// both name it).
async fn process(pool: &PsqlPool, id: i32) -> Result<usize, pool_core::Error> {
    let claimed = pool
        .query_opt(
            "UPDATE worker_jobs SET done_at = now() WHERE id = $1 AND done_at IS NULL
             RETURNING payload",
            &[&id],
        )
        .await?;
    Ok(match claimed {
        Some(row) => {
            let payload: String = row.try_get(0)?;
            println!("worker: did {payload} (id {id})");
            1
        }
        None => 0,
    })
}

/// Runs every job not done yet.
async fn process_pending(pool: &PsqlPool) -> Result<usize, pool_core::Error> {
    let pending = pool
        .execute(
            "SELECT id FROM worker_jobs WHERE done_at IS NULL ORDER BY id",
            &[],
        )
        .await?;
    let mut done = 0;
    for row in pending.rows() {
        done += process(pool, row.try_get(0)?).await?;
    }
    Ok(done)
}
