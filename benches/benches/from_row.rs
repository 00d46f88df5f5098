//! `#[derive(FromRow)]` against hand-written tokio-postgres `row.get`, without I/O: the
//! 100-row × 10-column result of `WIDE` fetched once, then mapped into the same owned struct
//! again and again — by column name on both sides (what a derive does), and tokio-postgres by
//! index for scale.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pool_core::FromRow;
use psqlpool_benches::wide::WIDE;

/// One row of `WIDE`, owned.
#[derive(Debug, PartialEq, FromRow)]
struct Wide {
    a: i64,
    b: i32,
    c: i16,
    d: f64,
    e: bool,
    f: String,
    h: String,
    i: i64,
    j: f32,
    k: String,
}

/// What a tokio-postgres user writes by hand for the same struct.
fn wide_tp_by_name(r: &tokio_postgres::Row) -> Wide {
    Wide {
        a: r.get("a"),
        b: r.get("b"),
        c: r.get("c"),
        d: r.get("d"),
        e: r.get("e"),
        f: r.get("f"),
        h: r.get("h"),
        i: r.get("i"),
        j: r.get("j"),
        k: r.get("k"),
    }
}

fn wide_tp_by_index(r: &tokio_postgres::Row) -> Wide {
    Wide {
        a: r.get(0),
        b: r.get(1),
        c: r.get(2),
        d: r.get(3),
        e: r.get(4),
        f: r.get(5),
        h: r.get(6),
        i: r.get(7),
        j: r.get(8),
        k: r.get(9),
    }
}

fn from_row(c: &mut Criterion) {
    let (rt, mut ours, tp) = psqlpool_benches::pair::connect_pair();
    let res = rt.block_on(ours.execute(WIDE, &[&100i32])).expect("query");
    let tp_rows = rt.block_on(tp.query(WIDE, &[&100i32])).expect("query");
    let derived: Vec<Wide> = res.rows_as().expect("FromRow");
    let by_hand: Vec<Wide> = tp_rows.iter().map(wide_tp_by_name).collect();
    assert_eq!(derived, by_hand);

    let mut group = c.benchmark_group("from_row");
    group
        .throughput(Throughput::Elements(100))
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group.bench_function("100x10/psqlpool-derive", |b| {
        b.iter(|| {
            std::hint::black_box(&res)
                .rows_as::<Wide>()
                .expect("FromRow")
        })
    });
    group.bench_function("100x10/tokio-postgres-by-name", |b| {
        b.iter(|| {
            std::hint::black_box(&tp_rows)
                .iter()
                .map(wide_tp_by_name)
                .collect::<Vec<_>>()
        })
    });
    group.bench_function("100x10/tokio-postgres-by-index", |b| {
        b.iter(|| {
            std::hint::black_box(&tp_rows)
                .iter()
                .map(wide_tp_by_index)
                .collect::<Vec<_>>()
        })
    });
    group.finish();
    let _ = rt.block_on(ours.close());
}

criterion_group!(benches, from_row);
criterion_main!(benches);
