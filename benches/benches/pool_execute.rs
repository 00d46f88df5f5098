//! `pool.execute` vs `pool.connection()` + `execute`: the one-call form must cost no more than
//! borrowing explicitly (same prepared `SELECT $1::int8`, pool of 4, one task, throwaway server).

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pool_core::{PsqlPool, RecyclingMethod};

fn pool_execute(c: &mut Criterion) {
    let url = pg_harness::cluster().admin_url();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let pool = PsqlPool::builder()
        .dsn(url)
        .max_db_pool_size(4)
        .conn_recycling_method(RecyclingMethod::Fast)
        .build()
        .expect("pool");
    rt.block_on(pool.startup()).expect("startup");

    let mut group = c.benchmark_group("pool_execute");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("pool.execute", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters as i64 {
                    let res = pool.execute("SELECT $1::int8", &[&i]).await.expect("query");
                    assert_eq!(res.rows()[0].get::<_, i64>(0), i);
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("connection+execute", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters as i64 {
                    let mut conn = pool.connection().await.expect("borrow");
                    let res = conn.execute("SELECT $1::int8", &[&i]).await.expect("query");
                    assert_eq!(res.rows()[0].get::<_, i64>(0), i);
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("held_connection.execute", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut conn = pool.connection().await.expect("borrow");
                let start = Instant::now();
                for i in 0..iters as i64 {
                    let res = conn.execute("SELECT $1::int8", &[&i]).await.expect("query");
                    assert_eq!(res.rows()[0].get::<_, i64>(0), i);
                }
                start.elapsed()
            })
        })
    });
    group.finish();
    rt.block_on(pool.close());
}

criterion_group!(benches, pool_execute);
criterion_main!(benches);
