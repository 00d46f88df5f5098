//! Pool overhead: acquire + release with a no-op connection factory (no I/O at all), psqlpool's
//! slots vs deadpool and bb8, uncontended and contended (workers × pool size). Each iteration
//! is `OPS` acquire/release pairs split across the workers, timed with `iter_custom`.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use psqlpool_benches::noop::{NoopBb8, NoopDeadpool};

/// Acquire/release pairs per iteration (2^12), split across the workers.
const OPS: usize = 1 << 12;

/// (workers, pool size): the first two never wait for a slot, the rest do.
const GRID: [(usize, usize); 5] = [(1, 8), (8, 8), (8, 2), (16, 4), (64, 8)];

#[derive(Clone)]
enum Pool {
    Ours(pool_core::bench_support::NoopPool),
    Deadpool(deadpool::managed::Pool<NoopDeadpool>),
    Bb8(bb8::Pool<NoopBb8>),
}

impl Pool {
    async fn new(name: &str, size: usize) -> Pool {
        match name {
            "psqlpool" => Pool::Ours(pool_core::bench_support::NoopPool::new(size)),
            "deadpool" => Pool::Deadpool(
                deadpool::managed::Pool::builder(NoopDeadpool)
                    .max_size(size)
                    .build()
                    .expect("deadpool builds"),
            ),
            _ => Pool::Bb8(
                bb8::Pool::builder()
                    .max_size(u32::try_from(size).expect("small pool"))
                    // The default is a 30 s wait; contended workers must wait, not fail.
                    .connection_timeout(Duration::from_secs(60))
                    .build(NoopBb8)
                    .await
                    .expect("bb8 builds"),
            ),
        }
    }

    async fn cycle(&self) {
        match self {
            Pool::Ours(p) => drop(std::hint::black_box(p.get().await.expect("slot"))),
            Pool::Deadpool(p) => drop(std::hint::black_box(p.get().await.expect("slot"))),
            Pool::Bb8(p) => drop(std::hint::black_box(p.get().await.expect("slot"))),
        }
    }
}

async fn run(pool: &Pool, workers: usize) {
    let per_worker = OPS / workers;
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for _ in 0..per_worker {
                    pool.cycle().await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("worker");
    }
}

fn pool_overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("pool_overhead");
    group
        .throughput(Throughput::Elements(OPS as u64))
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (workers, size) in GRID {
        for name in ["psqlpool", "deadpool", "bb8"] {
            let pool = rt.block_on(async {
                let pool = Pool::new(name, size).await;
                // Fill the pool first, so creation is not measured.
                run(&pool, size).await;
                pool
            });
            group.bench_function(BenchmarkId::new(name, format!("{workers}x{size}")), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iters {
                            run(&pool, workers).await;
                        }
                        start.elapsed()
                    })
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, pool_overhead);
criterion_main!(benches);
