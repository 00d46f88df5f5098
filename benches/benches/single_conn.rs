//! One connection, no pool: a prepared `SELECT $1::int8` round trip, and a 100-row × 10-column
//! select decoded fully into typed values. pgwire-lite's `Connection` vs tokio-postgres, same
//! throwaway server, same current-thread runtime, TCP.
//! (`decode` measures the decoding alone, without the round trip.)

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use psqlpool_benches::wide::{WIDE, sum_wide_ours, sum_wide_tp};

fn single_conn(c: &mut Criterion) {
    let (rt, mut ours, tp) = psqlpool_benches::pair::connect_pair();
    let tp_one = rt.block_on(tp.prepare("SELECT $1::int8")).expect("prepare");
    let tp_wide = rt.block_on(tp.prepare(WIDE)).expect("prepare");

    let mut group = c.benchmark_group("single_conn");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    group.throughput(Throughput::Elements(1));
    group.bench_function("select_int8/psqlpool", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters as i64 {
                    let res = ours.execute("SELECT $1::int8", &[&i]).await.expect("query");
                    let v: i64 = res.rows()[0].get(0);
                    assert_eq!(v, i);
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("select_int8/tokio-postgres", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters as i64 {
                    let row = tp.query_one(&tp_one, &[&i]).await.expect("query");
                    let v: i64 = row.get(0);
                    assert_eq!(v, i);
                }
                start.elapsed()
            })
        })
    });

    group.throughput(Throughput::Elements(100));
    group.bench_function("select_100x10/psqlpool", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let res = ours.execute(WIDE, &[&100i32]).await.expect("query");
                    std::hint::black_box(sum_wide_ours(res.rows()));
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("select_100x10/tokio-postgres", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let rows = tp.query(&tp_wide, &[&100i32]).await.expect("query");
                    std::hint::black_box(sum_wide_tp(&rows));
                }
                start.elapsed()
            })
        })
    });
    group.finish();

    let _ = rt.block_on(ours.close());
}

criterion_group!(benches, single_conn);
criterion_main!(benches);
