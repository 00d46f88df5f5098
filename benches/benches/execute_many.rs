//! 1,000-row inserts on one connection: psqlpool's `execute_many` (every Bind/Execute in one
//! write, one Sync: one round trip) against tokio-postgres doing the same two ways — a loop of
//! awaited `execute`s (one round trip per row, what psqlpy's `execute_many` does) and all 1,000
//! futures joined on one client (tokio-postgres pipelines concurrent requests by itself).

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const ROWS: usize = 1_000;
const TABLE: &str = "bench_execute_many";
const INSERT: &str = "INSERT INTO bench_execute_many (id, name) VALUES ($1, $2)";

fn execute_many(c: &mut Criterion) {
    let (rt, mut ours, tp) = psqlpool_benches::pair::connect_pair();
    rt.block_on(ours.batch_execute(&format!(
        "DROP TABLE IF EXISTS {TABLE}; CREATE UNLOGGED TABLE {TABLE} (id int4, name text)"
    )))
    .expect("table");
    let tp_insert = rt.block_on(tp.prepare(INSERT)).expect("prepare");

    let ids: Vec<i32> = (0..ROWS as i32).collect();
    let names: Vec<String> = (0..ROWS).map(|i| format!("name number {i}")).collect();

    let mut group = c.benchmark_group("execute_many_1000");
    group
        .throughput(Throughput::Elements(ROWS as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4));

    group.bench_function("psqlpool/execute_many", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let rows: Vec<[&(dyn pgwire_lite::ToSql + Sync); 2]> = ids
                    .iter()
                    .zip(&names)
                    .map(|(i, n)| [i as _, n as _])
                    .collect();
                let start = Instant::now();
                for _ in 0..iters {
                    let n = ours
                        .execute_many(INSERT, &rows)
                        .await
                        .expect("execute_many");
                    assert_eq!(n, ROWS as u64);
                }
                let t = start.elapsed();
                ours.batch_execute(&format!("TRUNCATE {TABLE}"))
                    .await
                    .expect("truncate");
                t
            })
        })
    });
    group.bench_function("tokio-postgres/loop", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    for (i, n) in ids.iter().zip(&names) {
                        tp.execute(&tp_insert, &[i, n]).await.expect("insert");
                    }
                }
                let t = start.elapsed();
                tp.batch_execute(&format!("TRUNCATE {TABLE}"))
                    .await
                    .expect("truncate");
                t
            })
        })
    });
    group.bench_function("tokio-postgres/pipelined", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let params: Vec<[&(dyn tokio_postgres::types::ToSql + Sync); 2]> = ids
                    .iter()
                    .zip(&names)
                    .map(|(i, n)| [i as _, n as _])
                    .collect();
                let start = Instant::now();
                for _ in 0..iters {
                    let futs = params.iter().map(|p| tp.execute(&tp_insert, p));
                    for r in futures_join_all(futs).await {
                        r.expect("insert");
                    }
                }
                let t = start.elapsed();
                tp.batch_execute(&format!("TRUNCATE {TABLE}"))
                    .await
                    .expect("truncate");
                t
            })
        })
    });
    group.finish();
}

/// Polls every future concurrently on this task (a tiny `join_all`, to avoid a dependency).
async fn futures_join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut futs: Vec<_> = futs.map(|f| Some(Box::pin(f))).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, out) in futs.iter_mut().zip(out.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *out = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|o| o.expect("every future finished"))
        .collect()
}

criterion_group!(benches, execute_many);
criterion_main!(benches);
