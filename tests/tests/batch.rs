//! execute_many and explicit pipelines against the real server.

mod common;

use common::admin;
use pg_harness::cluster;
use pgwire_lite::ToSql;

#[tokio::test]
async fn execute_many_inserts_a_thousand_rows() {
    let mut c = admin().await;
    let t = pg_harness::unique_name("many");
    c.batch_execute(&format!(
        "CREATE TEMP TABLE {t} (id int4 PRIMARY KEY, name text)"
    ))
    .await
    .unwrap();
    let names: Vec<String> = (0..1000).map(|i| format!("name {i}")).collect();
    let ids: Vec<i32> = (0..1000).collect();
    let rows: Vec<[&(dyn ToSql + Sync); 2]> = ids
        .iter()
        .zip(&names)
        .map(|(i, n)| [i as _, n as _])
        .collect();
    let n = c
        .execute_many(&format!("INSERT INTO {t} VALUES ($1, $2)"), &rows)
        .await
        .unwrap();
    assert_eq!(n, 1000);
    let r = c
        .query_one(
            &format!("SELECT count(*)::int8, sum(id)::int8 FROM {t}"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.get::<_, i64>(0), 1000);
    assert_eq!(r.get::<_, i64>(1), (0..1000i64).sum::<i64>());
    assert_eq!(
        c.execute_many::<[&(dyn ToSql + Sync); 2]>("SELECT 1", &[])
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn execute_many_is_all_or_nothing() {
    let mut c = admin().await;
    let t = pg_harness::unique_name("many_fail");
    c.batch_execute(&format!("CREATE TEMP TABLE {t} (id int4 PRIMARY KEY)"))
        .await
        .unwrap();
    // Row 500 repeats a key: the batch is one implicit transaction, nothing is applied.
    let ids: Vec<i32> = (0..1000).map(|i| if i == 500 { 3 } else { i }).collect();
    let rows: Vec<[&(dyn ToSql + Sync); 1]> = ids.iter().map(|i| [i as _]).collect();
    let err = c
        .execute_many(&format!("INSERT INTO {t} VALUES ($1)"), &rows)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("23505"), "{err}");
    assert!(c.is_idle());
    let r = c
        .query_one(&format!("SELECT count(*)::int8 FROM {t}"), &[])
        .await
        .unwrap();
    assert_eq!(r.get::<_, i64>(0), 0);
    // A value of the wrong type is refused before anything is sent, naming the row.
    let bad: Vec<[&(dyn ToSql + Sync); 1]> = vec![[&1i32], [&"x"]];
    let err = c
        .execute_many(&format!("INSERT INTO {t} VALUES ($1)"), &bad)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("row 1"), "{err}");
    assert!(c.is_idle());
}

#[tokio::test]
async fn pipeline_isolates_errors_per_statement() {
    let mut c = admin().await;
    let t = pg_harness::unique_name("pipe");
    c.batch_execute(&format!("CREATE TEMP TABLE {t} (id int4 PRIMARY KEY)"))
        .await
        .unwrap();
    let ins = format!("INSERT INTO {t} VALUES ($1)");
    let count = format!("SELECT count(*)::int8 FROM {t}");
    let mut p = c.pipeline();
    p.push(&ins, &[&1i32])
        .push(&ins, &[&1i32]) // duplicate key: fails alone
        .push(&ins, &[&2i32])
        .push("SELECT * FROM no_such_table_here", &[]) // fails to prepare: reported in its slot
        .push(&count, &[])
        .push(&ins, &[&"not an int"]); // refused client-side, not sent
    assert_eq!(p.len(), 6);
    let results = p.run().await.unwrap();
    assert_eq!(results.len(), 6);
    assert_eq!(results[0].as_ref().unwrap().rows_affected(), 1);
    assert_eq!(results[1].as_ref().unwrap_err().code(), Some("23505"));
    assert_eq!(results[2].as_ref().unwrap().rows_affected(), 1);
    assert_eq!(results[3].as_ref().unwrap_err().code(), Some("42P01"));
    assert_eq!(results[4].as_ref().unwrap().rows()[0].get::<_, i64>(0), 2);
    assert!(results[5].is_err());
    assert!(c.is_idle());
    // Run again: every statement is cached now, one write for all.
    let mut p = c.pipeline();
    p.push(&count, &[]).push(&count, &[]);
    let results = p.run().await.unwrap();
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().unwrap().rows()[0].get::<_, i64>(0) == 2)
    );
}

#[tokio::test]
async fn large_pipeline_does_not_deadlock() {
    // 20,000 statements whose answers far exceed the socket buffers while the request is still
    // being written.
    let mut c = admin().await;
    let sql = "SELECT repeat('x', 200)";
    let mut p = c.pipeline();
    for _ in 0..20_000 {
        p.push(sql, &[]);
    }
    let results = tokio::time::timeout(std::time::Duration::from_secs(60), p.run())
        .await
        .expect("pipeline deadlocked")
        .unwrap();
    assert_eq!(results.len(), 20_000);
    assert!(results.iter().all(|r| r.as_ref().unwrap().len() == 1));
}

#[tokio::test]
async fn pool_execute_many() {
    let pool = pool_core::PsqlPool::builder()
        .dsn(cluster().admin_url())
        .build()
        .unwrap();
    pool.startup().await.unwrap();
    let t = pg_harness::unique_name("pool_many");
    pool.execute(&format!("CREATE TABLE {t} (id int4)"), &[])
        .await
        .unwrap();
    let ids: Vec<i32> = (0..100).collect();
    let rows: Vec<[&(dyn ToSql + Sync); 1]> = ids.iter().map(|i| [i as _]).collect();
    let n = pool
        .execute_many(&format!("INSERT INTO {t} VALUES ($1)"), &rows)
        .await
        .unwrap();
    assert_eq!(n, 100);
    let mut conn = pool.connection().await.unwrap();
    assert_eq!(
        conn.execute_many(&format!("INSERT INTO {t} VALUES ($1)"), &rows)
            .await
            .unwrap(),
        100
    );
    let r = conn
        .query_one(&format!("SELECT count(*)::int8 FROM {t}"), &[])
        .await
        .unwrap();
    assert_eq!(r.get::<_, i64>(0), 200);
    conn.batch_execute(&format!("DROP TABLE {t}"))
        .await
        .unwrap();
}
