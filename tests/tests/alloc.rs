//! Steady-state `execute` of a cached statement with fixed-size parameters allocates nothing
//! (issue 5), on a connection and through the pool, with tracing compiled in and no subscriber
//! (issue 15), also when it binds and reads a `chrono::DateTime<Utc>` and a `uuid::Uuid` (issue
//! 14): counted by a global allocator wrapper. Its own test binary, so nothing else runs
//! in the process while counting.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use pg_harness::cluster;
use pgwire_lite::{Config, Connection};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
/// The counter is process-wide: the tests take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract is passed on as it is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn cached_execute_allocates_nothing() {
    let _turn = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let url = cluster().admin_url();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cfg: Config = url.parse().unwrap();
        let mut c = Connection::connect(&cfg).await.unwrap();
        let sql = "SELECT $1::int8 + 1, $2::int4";
        let empty = "SELECT $1::int4 WHERE false";
        // The optional chrono and uuid types, both ways.
        let typed = "SELECT $1::timestamptz + interval '1 microsecond', $2::uuid";
        let at = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
        let id = uuid::Uuid::from_u128(0xa0ee_bc99_9c0b_4ef8_bb6d_6bb9_bd38_0a11);
        // Warm up: prepare both statements, grow buffers to their working size.
        for i in 0..100i64 {
            let r = c.execute(sql, &[&i, &7i32]).await.unwrap();
            assert_eq!(r.rows()[0].get::<_, i64>(0), i + 1);
            c.execute(empty, &[&1i32]).await.unwrap();
            c.execute(typed, &[&at, &id]).await.unwrap();
        }
        let n = 1_000;
        let mut sum = 0i64;
        let mut same_typed = true;
        ALLOCS.store(0, Ordering::Relaxed);
        COUNTING.store(true, Ordering::Relaxed);
        for i in 0..n {
            let r = c.execute(sql, &[&i, &7i32]).await.unwrap();
            sum += r.rows()[0].get::<_, i64>(0);
            drop(r);
            // An UPDATE-style statement: no rows at all.
            let r = c.execute(empty, &[&1i32]).await.unwrap();
            assert!(r.is_empty());
            // A result holds its frames' share of the read buffer: dropped before the next
            // request, the buffer is reused rather than reallocated.
            drop(r);
            let r = c.execute(typed, &[&at, &id]).await.unwrap();
            let row = &r.rows()[0];
            let later: DateTime<Utc> = row.get(0);
            let back: uuid::Uuid = row.get(1);
            same_typed &= later == at + TimeDelta::microseconds(1) && back == id;
        }
        COUNTING.store(false, Ordering::Relaxed);
        let allocs = ALLOCS.load(Ordering::Relaxed);
        assert_eq!(sum, (1..=n).sum::<i64>());
        assert!(same_typed, "chrono/uuid values came back changed");
        assert_eq!(
            allocs,
            0,
            "{allocs} heap allocations over {} cached executes",
            3 * n
        );

        // The same through the pool: checkout (with its disabled `acquire` span), the
        // statement (with its disabled `query` span), the counters, the return.
        let pool = pool_core::PsqlPool::builder()
            .dsn(url.as_str())
            .build()
            .unwrap();
        pool.startup().await.unwrap();
        for i in 0..100i64 {
            pool.execute(sql, &[&i, &7i32]).await.unwrap();
        }
        let mut sum = 0i64;
        ALLOCS.store(0, Ordering::Relaxed);
        COUNTING.store(true, Ordering::Relaxed);
        for i in 0..n {
            let r = pool.execute(sql, &[&i, &7i32]).await.unwrap();
            sum += r.rows()[0].get::<_, i64>(0);
        }
        COUNTING.store(false, Ordering::Relaxed);
        let allocs = ALLOCS.load(Ordering::Relaxed);
        assert_eq!(sum, (1..=n).sum::<i64>());
        assert_eq!(
            allocs, 0,
            "{allocs} heap allocations over {n} pool executes"
        );
        assert_eq!(pool.stats().acquires, 1 + 100 + n as u64);
        pool.close().await;
    });
}

/// Issue 17: a multiplexed `pool.execute` allocates at most one small object per call. Counted
/// for one caller at a time and for eight callers sharing the pool's connections at once.
#[test]
fn multiplexed_execute_allocates_at_most_one_object_per_call() {
    let _turn = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Eight unboxed pool futures joined on one stack: debug builds need more than the default.
    std::thread::Builder::new()
        .stack_size(32 << 20)
        .spawn(multiplexed_execute_allocations)
        .unwrap()
        .join()
        .unwrap();
}

fn multiplexed_execute_allocations() {
    for batches in [false, true] {
        multiplexed_execute_allocations_with(batches);
    }
}

fn multiplexed_execute_allocations_with(batches: bool) {
    let url = cluster().admin_url();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = pool_core::PsqlPool::builder()
            .dsn(&url)
            .max_db_pool_size(2)
            .multiplexing(true)
            .multiplexing_batches(batches)
            .build()
            .unwrap();
        pool.startup().await.unwrap();
        let sql = "SELECT $1::int8 + 1";
        let one = async |i: i64| {
            let r = pool.execute(sql, &[&i]).await.unwrap();
            assert_eq!(r.rows()[0].get::<_, i64>(0), i + 1);
        };
        let eight = async |base: i64| {
            tokio::join!(
                one(base),
                one(base + 1),
                one(base + 2),
                one(base + 3),
                one(base + 4),
                one(base + 5),
                one(base + 6),
                one(base + 7),
            );
        };
        // Warm up: learn the statement, share both connections, prepare it on each, and grow
        // every buffer and queue to its working size.
        for i in 0..200i64 {
            one(i).await;
            eight(i * 8).await;
        }
        assert!(
            pool.multiplexed_connections() > 0,
            "nothing was multiplexed"
        );
        let n = 1_000i64;
        ALLOCS.store(0, Ordering::Relaxed);
        COUNTING.store(true, Ordering::Relaxed);
        for i in 0..n {
            one(i).await;
        }
        COUNTING.store(false, Ordering::Relaxed);
        let sequential = ALLOCS.load(Ordering::Relaxed);
        ALLOCS.store(0, Ordering::Relaxed);
        COUNTING.store(true, Ordering::Relaxed);
        for i in 0..n / 8 {
            eight(i * 8).await;
        }
        COUNTING.store(false, Ordering::Relaxed);
        let concurrent = ALLOCS.load(Ordering::Relaxed);
        println!(
            "multiplexed execute (batches: {batches}): {:.2} allocations per call alone, {:.2} \
             with 8 at once",
            sequential as f64 / n as f64,
            concurrent as f64 / n as f64
        );
        assert!(
            sequential <= n as usize,
            "{sequential} allocations over {n} multiplexed executes (one caller)"
        );
        assert!(
            concurrent <= n as usize,
            "{concurrent} allocations over {n} multiplexed executes (8 at once)"
        );
        pool.close().await;
    });
}
