//! Transactions with modes, savepoints, the retrying `PsqlPool::transaction`, and the
//! `GenericClient` trait, against the real server.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{pool_builder, started};
use pg_harness::unique_name;
use pool_core::{
    Error, GenericClient, IsolationLevel, PsqlPool, RetryPolicy, Transaction, TransactionOptions,
};

async fn pool(app: &str) -> PsqlPool {
    started(pool_builder(&unique_name(app), 4)).await
}

/// A fresh table `(x int4)`; returns its name.
async fn table(pool: &PsqlPool) -> String {
    let t = unique_name("tx");
    pool.batch_execute(&format!("CREATE TABLE {t} (x int4)"))
        .await
        .unwrap();
    t
}

async fn xs(pool: &PsqlPool, t: &str) -> Vec<i32> {
    pool.execute(&format!("SELECT x FROM {t} ORDER BY x"), &[])
        .await
        .unwrap()
        .rows()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn show(tx: &mut Transaction<'_>, setting: &str) -> String {
    tx.query_one(&format!("SHOW {setting}"), &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn modes_are_in_force() {
    let pool = pool("tx_modes").await;
    let mut conn = pool.connection().await.unwrap();
    let mut tx = conn
        .build_transaction()
        .isolation_level(IsolationLevel::Serializable)
        .read_only(true)
        .deferrable(true)
        .start()
        .await
        .unwrap();
    assert_eq!(show(&mut tx, "transaction_isolation").await, "serializable");
    assert_eq!(show(&mut tx, "transaction_read_only").await, "on");
    assert_eq!(show(&mut tx, "transaction_deferrable").await, "on");
    tx.commit().await.unwrap();

    let cases = [
        (IsolationLevel::ReadUncommitted, "read uncommitted"),
        (IsolationLevel::ReadCommitted, "read committed"),
        (IsolationLevel::RepeatableRead, "repeatable read"),
    ];
    for (level, shown) in cases {
        let mut tx = conn
            .build_transaction()
            .options(
                TransactionOptions::new()
                    .isolation_level(level)
                    .read_only(false),
            )
            .start()
            .await
            .unwrap();
        assert_eq!(show(&mut tx, "transaction_isolation").await, shown);
        assert_eq!(show(&mut tx, "transaction_read_only").await, "off");
        tx.rollback().await.unwrap();
    }
    // A plain transaction takes the session's defaults.
    let mut tx = conn.transaction().await.unwrap();
    assert_eq!(
        show(&mut tx, "transaction_isolation").await,
        "read committed"
    );
    drop(tx);
    assert!(conn.query_one("SELECT 1", &[]).await.is_ok());
    assert!(!conn.in_transaction());
    pool.close().await;
}

#[tokio::test]
async fn read_only_refuses_writes() {
    let pool = pool("tx_ro").await;
    let t = table(&pool).await;
    let mut conn = pool.connection().await.unwrap();
    let mut tx = conn
        .build_transaction()
        .read_only(true)
        .start()
        .await
        .unwrap();
    let e = tx
        .execute(&format!("INSERT INTO {t} VALUES (1)"), &[])
        .await
        .unwrap_err();
    assert!(e.is_read_only_transaction(), "{e:?}");
    assert_eq!(e.sqlstate().unwrap().code(), "25006");
    // The failed transaction's COMMIT is a rollback.
    assert!(matches!(tx.commit().await, Err(Error::RolledBack)));
    drop(conn);
    assert!(xs(&pool, &t).await.is_empty());
    pool.close().await;
}

#[tokio::test]
async fn a_dropped_savepoint_rolls_back_and_keeps_the_outer_work() {
    let pool = pool("tx_sp").await;
    let t = table(&pool).await;
    let ins = format!("INSERT INTO {t} VALUES ($1)");
    let mut conn = pool.connection().await.unwrap();
    let mut tx = conn.transaction().await.unwrap();
    tx.execute(&ins, &[&1i32]).await.unwrap();
    {
        let mut sp = tx.savepoint("a").await.unwrap();
        sp.execute(&ins, &[&2i32]).await.unwrap();
        // Dropped uncommitted.
    }
    tx.execute(&ins, &[&3i32]).await.unwrap();
    {
        let mut sp = tx.savepoint("b").await.unwrap();
        sp.execute(&ins, &[&4i32]).await.unwrap();
        sp.commit().await.unwrap();
    }
    {
        // A failure inside a savepoint, rolled back explicitly: the transaction goes on.
        let mut sp = tx.savepoint("c").await.unwrap();
        sp.execute(&ins, &[&5i32]).await.unwrap();
        assert!(sp.execute("SELECT 1/0", &[]).await.is_err());
        sp.rollback().await.unwrap();
    }
    {
        // The same, with the failed savepoint dropped instead.
        let mut sp = tx.savepoint("d").await.unwrap();
        assert!(sp.execute("SELECT 1/0", &[]).await.is_err());
    }
    // The commit rolls back the dropped savepoint first, so the commit succeeds.
    tx.commit().await.unwrap();
    drop(conn);
    assert_eq!(xs(&pool, &t).await, [1, 3, 4]);
    pool.close().await;
}

#[tokio::test]
async fn savepoints_nest_to_any_depth() {
    let pool = pool("tx_nest").await;
    let t = table(&pool).await;
    let ins = format!("INSERT INTO {t} VALUES ($1)");
    let mut conn = pool.connection().await.unwrap();

    // A name reused at two depths; the inner one released, a third one dropped.
    let mut tx = conn.transaction().await.unwrap();
    tx.execute(&ins, &[&1i32]).await.unwrap();
    {
        let mut a1 = tx.savepoint("a").await.unwrap();
        a1.execute(&ins, &[&2i32]).await.unwrap();
        {
            let mut a2 = a1.savepoint("a").await.unwrap();
            a2.execute(&ins, &[&3i32]).await.unwrap();
            {
                let mut x = a2.savepoint("x").await.unwrap();
                x.execute(&ins, &[&4i32]).await.unwrap();
            }
            a2.commit().await.unwrap();
        }
        {
            let mut y = a1.savepoint("y").await.unwrap();
            y.execute(&ins, &[&5i32]).await.unwrap();
        }
        a1.execute(&ins, &[&6i32]).await.unwrap();
        assert_eq!(
            a1.query_one(&format!("SELECT array_agg(x ORDER BY x) FROM {t}"), &[])
                .await
                .unwrap()
                .get::<_, Vec<i32>>(0),
            [1, 2, 3, 6]
        );
        // a1 dropped: 2, 3 and 6 go.
    }
    tx.execute(&ins, &[&7i32]).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(xs(&pool, &t).await, [1, 7]);

    // 12 levels deep, all committed from the inside out. (The guard stack itself has no
    // limit; the test's recursion polls one boxed future inside the next, and 12 levels of
    // unoptimized query futures fit the test thread's stack.)
    pool.batch_execute(&format!("TRUNCATE {t}")).await.unwrap();
    let mut tx = conn.transaction().await.unwrap();
    nest(&mut tx, &ins, 1, 12).await;
    tx.commit().await.unwrap();
    assert_eq!(xs(&pool, &t).await, (1..=12).collect::<Vec<i32>>());

    // 12 levels deep, abandoned at the bottom: every level's guard is dropped, then the
    // outermost transaction goes on.
    pool.batch_execute(&format!("TRUNCATE {t}")).await.unwrap();
    let mut tx = conn.transaction().await.unwrap();
    {
        let sp = tx.savepoint("deep").await.unwrap();
        abandon(sp, &ins, 12).await;
    }
    tx.execute(&ins, &[&100i32]).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(xs(&pool, &t).await, [100]);

    // Names are quoted as given.
    let mut tx = conn.transaction().await.unwrap();
    let sp = tx.savepoint("We\"ird name; DROP").await.unwrap();
    sp.commit().await.unwrap();
    for bad in ["", &"s".repeat(64), "nul\0"] {
        let e = tx.savepoint(bad).await.unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidName {
                    what: "savepoint",
                    ..
                }
            ),
            "{e:?}"
        );
    }
    tx.commit().await.unwrap();
    pool.close().await;
}

/// Opens savepoints `level..=last`, one row each, and commits them all.
fn nest<'a>(
    tx: &'a mut Transaction<'_>,
    ins: &'a str,
    level: i32,
    last: i32,
) -> pool_core::BoxFuture<'a, ()> {
    Box::pin(async move {
        let mut sp = tx.savepoint(&format!("l{level}")).await.unwrap();
        sp.execute(ins, &[&level]).await.unwrap();
        if level < last {
            nest(&mut sp, ins, level + 1, last).await;
        }
        sp.commit().await.unwrap();
    })
}

/// Writes a row in `sp`, opens `depth` more nested savepoints that write too, and drops them.
fn abandon<'a>(mut sp: Transaction<'a>, ins: &'a str, depth: i32) -> pool_core::BoxFuture<'a, ()> {
    Box::pin(async move {
        sp.execute(ins, &[&depth]).await.unwrap();
        if depth > 0 {
            let inner = sp.savepoint("deep").await.unwrap();
            abandon(inner, ins, depth - 1).await;
        }
    })
}

#[tokio::test]
async fn a_dropped_transaction_with_savepoints_is_rolled_back_whole() {
    let pool = pool("tx_drop").await;
    let t = table(&pool).await;
    let ins = format!("INSERT INTO {t} VALUES ($1)");
    let mut conn = pool.connection().await.unwrap();
    {
        let mut tx = conn.transaction().await.unwrap();
        tx.execute(&ins, &[&1i32]).await.unwrap();
        let mut sp = tx.savepoint("s").await.unwrap();
        sp.execute(&ins, &[&2i32]).await.unwrap();
        sp.commit().await.unwrap();
        let _open = tx.savepoint("t").await.unwrap();
    }
    // The next operation rolls back first; a new transaction starts clean.
    let mut tx = conn.transaction().await.unwrap();
    tx.execute(&ins, &[&3i32]).await.unwrap();
    tx.commit().await.unwrap();
    drop(conn);
    assert_eq!(xs(&pool, &t).await, [3]);
    pool.close().await;
}

#[tokio::test]
async fn execute_many_and_pipelines_run_inside_a_transaction() {
    let pool = pool("tx_batch").await;
    let t = table(&pool).await;
    let ins = format!("INSERT INTO {t} VALUES ($1)");
    let mut conn = pool.connection().await.unwrap();
    let mut tx = conn.transaction().await.unwrap();
    let rows: Vec<[&(dyn pool_core::ToSql + Sync); 1]> = vec![[&1i32], [&2i32], [&3i32]];
    assert_eq!(tx.execute_many(&ins, &rows).await.unwrap(), 3);
    let four = 4i32;
    let params: [&(dyn pool_core::ToSql + Sync); 1] = [&four];
    let count = format!("SELECT count(*)::int4 FROM {t}");
    let mut p = tx.pipeline().await.unwrap();
    p.push(&ins, &params).push(&count, &[]);
    let results = p.run().await.unwrap();
    assert_eq!(results.len(), 2);
    let seen: i32 = results[1].as_ref().unwrap().rows()[0].get(0);
    assert_eq!(seen, 4);
    tx.rollback().await.unwrap();
    drop(conn);
    assert!(xs(&pool, &t).await.is_empty(), "all of it was rolled back");
    pool.close().await;
}

/// Inserts a user and counts the rows, whatever runs the queries.
async fn add(db: &mut impl GenericClient, t: &str, x: i32) -> i64 {
    db.execute(&format!("INSERT INTO {t} VALUES ($1)"), &[&x])
        .await
        .unwrap();
    db.batch_execute("SELECT 1").await.unwrap();
    assert!(
        db.query_opt(&format!("SELECT x FROM {t} WHERE x = -1"), &[])
            .await
            .unwrap()
            .is_none()
    );
    db.query_one(&format!("SELECT count(*) FROM {t}"), &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn generic_client_takes_connections_and_transactions() {
    let pool = pool("tx_generic").await;
    let t = table(&pool).await;
    let mut conn = pool.connection().await.unwrap();
    assert_eq!(add(&mut conn, &t, 1).await, 1);
    let mut tx = conn.transaction().await.unwrap();
    assert_eq!(add(&mut tx, &t, 2).await, 2);
    {
        let mut sp = tx.savepoint("g").await.unwrap();
        assert_eq!(add(&mut sp, &t, 3).await, 3);
    }
    assert_eq!(
        add(&mut tx, &t, 4).await,
        3,
        "the savepoint's row was rolled back"
    );
    tx.commit().await.unwrap();
    drop(conn);

    // The pool's own one-shot helpers.
    let row = pool.query_one("SELECT 41 + 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
    assert!(
        pool.query_opt("SELECT 1 WHERE false", &[])
            .await
            .unwrap()
            .is_none()
    );
    let e = pool
        .query_opt("SELECT * FROM generate_series(1, 2)", &[])
        .await
        .unwrap_err();
    assert!(e.is_row_count(), "{e:?}");
    assert_eq!(xs(&pool, &t).await, [1, 2, 4]);
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transaction_helper_retries_a_real_serialization_failure() {
    let pool = pool("tx_retry").await;
    let t = table(&pool).await;
    pool.batch_execute(&format!("INSERT INTO {t} VALUES (1), (2)"))
        .await
        .unwrap();
    // Both transactions read the whole table before either writes (write skew): the
    // serializable one that commits second fails with 40001, and is run again.
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let runs = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for me in [10i32, 20] {
        let (pool, t, barrier, runs) = (pool.clone(), t.clone(), barrier.clone(), runs.clone());
        tasks.push(tokio::spawn(async move {
            let options = TransactionOptions::new().isolation_level(IsolationLevel::Serializable);
            pool.transaction_with(options, RetryPolicy::default(), |tx| {
                let (t, barrier, runs) = (t.clone(), barrier.clone(), runs.clone());
                Box::pin(async move {
                    let run = runs.fetch_add(1, Ordering::SeqCst);
                    let sum: i64 = tx
                        .query_one(&format!("SELECT sum(x)::int8 FROM {t}"), &[])
                        .await?
                        .get(0);
                    if run < 2 {
                        barrier.wait().await;
                    }
                    tx.execute(&format!("INSERT INTO {t} VALUES ($1)"), &[&me])
                        .await?;
                    Ok(sum)
                })
            })
            .await
        }));
    }
    let mut sums = Vec::new();
    for task in tasks {
        sums.push(task.await.unwrap().expect("retried until it committed"));
    }
    sums.sort();
    assert_eq!(runs.load(Ordering::SeqCst), 3, "exactly one retry");
    // The retried one saw the other's row: the result is serializable.
    assert!(sums == [3, 13] || sums == [3, 23], "{sums:?}");
    assert_eq!(xs(&pool, &t).await, [1, 2, 10, 20]);
    pool.close().await;
}

#[tokio::test]
async fn the_transaction_helper_gives_up_and_passes_other_errors_through() {
    let pool = pool("tx_giveup").await;
    let t = table(&pool).await;
    for (code, retried) in [
        ("serialization_failure", true),
        ("deadlock_detected", true),
        ("unique_violation", false),
    ] {
        let runs = AtomicU32::new(0);
        let policy = RetryPolicy::default()
            .attempts(3)
            .base_delay(Duration::from_millis(20));
        let start = Instant::now();
        let e = pool
            .transaction_with(TransactionOptions::new(), policy, |tx| {
                runs.fetch_add(1, Ordering::SeqCst);
                let sql = format!(
                    "INSERT INTO {t} VALUES (1); \
                     DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '{code}'; END $$"
                );
                Box::pin(async move {
                    tx.batch_execute(&sql).await?;
                    Ok(())
                })
            })
            .await
            .unwrap_err();
        let expected = if retried { 3 } else { 1 };
        assert_eq!(runs.load(Ordering::SeqCst), expected, "{code}");
        match code {
            "serialization_failure" => assert!(e.is_serialization_failure(), "{e:?}"),
            "deadlock_detected" => assert!(e.is_deadlock(), "{e:?}"),
            _ => assert!(e.is_unique_violation(), "{e:?}"),
        }
        if retried {
            // Two sleeps of at least half of 20 ms and 40 ms.
            assert!(start.elapsed() >= Duration::from_millis(30), "{code}");
        }
    }
    // Nothing of any run was committed.
    assert!(xs(&pool, &t).await.is_empty());

    // The closure's value comes back; a commit that succeeds ends it.
    let v = pool
        .transaction(|tx| {
            Box::pin(async move { Ok(tx.query_one("SELECT 7", &[]).await?.get::<_, i32>(0)) })
        })
        .await
        .unwrap();
    assert_eq!(v, 7);
    assert_eq!(pool.status().in_use, 0);
    pool.close().await;
}
