//! DataRow decoding throughput, without I/O: a real 100-row × 10-column result fetched once,
//! then decoded again and again — typed access (`Row::get`) and psqlpy's `result()` (one
//! name -> `Value` map per row); tokio-postgres's typed access for scale.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use psqlpool_benches::wide::{WIDE, sum_wide_ours, sum_wide_tp};

fn decode(c: &mut Criterion) {
    let (rt, mut ours, tp) = psqlpool_benches::pair::connect_pair();
    let res = rt.block_on(ours.execute(WIDE, &[&100i32])).expect("query");
    let tp_rows = rt.block_on(tp.query(WIDE, &[&100i32])).expect("query");
    assert_eq!(sum_wide_ours(res.rows()), sum_wide_tp(&tp_rows));

    let mut group = c.benchmark_group("decode");
    group
        .throughput(Throughput::Elements(100))
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group.bench_function("typed_100x10/psqlpool", |b| {
        b.iter(|| sum_wide_ours(std::hint::black_box(res.rows())))
    });
    group.bench_function("typed_100x10/tokio-postgres", |b| {
        b.iter(|| sum_wide_tp(std::hint::black_box(&tp_rows)))
    });
    group.bench_function("result_100x10/psqlpool", |b| {
        b.iter(|| std::hint::black_box(&res).result())
    });
    group.finish();
    let _ = rt.block_on(ours.close());
}

criterion_group!(benches, decode);
criterion_main!(benches);
