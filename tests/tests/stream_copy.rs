//! Streamed rows (`query_stream`, with and without a fetch size) and COPY in and out, against
//! the real server: large results, values checked, streams and sinks dropped at every poll,
//! errors mid-stream and mid-COPY, and a server restart mid-COPY.

mod common;

use std::future::Future;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use common::{admin, pool_builder, started};
use futures_core::Stream;
use pg_harness::{Cluster, Role, ShutdownMode, unique_name};
use pgwire_lite::{Config, Connection, Error, Row, RowStream};

/// The next item of a stream.
async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
}

/// Streams can move between tasks of a multi-threaded runtime.
fn assert_send<T: Send>(_: &T) {}

/// Every row of a stream, panicking on an error.
async fn all_rows(mut s: RowStream<'_>) -> Vec<Row> {
    let mut rows = Vec::new();
    while let Some(r) = next(&mut s).await {
        rows.push(r.expect("a streamed row"));
    }
    rows
}

/// Everything a COPY OUT stream yields, joined.
async fn copy_out_all(conn: &mut Connection, sql: &str) -> Vec<u8> {
    let mut s = conn.copy_out(sql).await.expect("copy_out starts");
    assert_send(&s);
    let mut out = Vec::new();
    while let Some(chunk) = next(&mut s).await {
        out.extend_from_slice(&chunk.expect("a COPY OUT chunk"));
    }
    out
}

/// The connection answers a fresh query, with nothing left over and no transaction open.
async fn assert_usable(conn: &mut Connection) {
    let r = conn
        .query_one("SELECT 42::int4", &[])
        .await
        .expect("usable");
    assert_eq!(r.get::<_, i32>(0), 42);
    assert!(conn.is_idle(), "{conn:?}");
}

async fn count(conn: &mut Connection, table: &str) -> i64 {
    conn.query_one(&format!("SELECT count(*)::int8 FROM {table}"), &[])
        .await
        .expect("count")
        .get(0)
}

const ROWS_SQL: &str = "SELECT g::int4, 'row ' || g::text FROM generate_series(1, $1::int4) g";

fn check_rows(rows: &[Row], n: i32) {
    assert_eq!(rows.len(), n as usize);
    for (i, r) in rows.iter().enumerate() {
        let want = i as i32 + 1;
        assert_eq!(r.get::<_, i32>(0), want);
        assert_eq!(r.get::<_, &str>(1), format!("row {want}"));
    }
}

#[tokio::test]
async fn stream_100k_rows_with_correct_values() {
    let mut conn = admin().await;
    let s = conn.query_stream(ROWS_SQL, &[&100_000i32]).await.unwrap();
    assert_eq!(s.columns().map(<[_]>::len), Some(2));
    assert_send(&s);
    let mut s = s;
    let mut n = 0;
    while let Some(r) = next(&mut s).await {
        let r = r.unwrap();
        n += 1;
        assert_eq!(r.get::<_, i32>(0), n);
        assert_eq!(r.get::<_, &str>(1), format!("row {n}"));
    }
    assert_eq!(n, 100_000);
    assert_eq!(s.rows_affected(), Some(100_000));
    drop(s);
    assert_usable(&mut conn).await;
}

#[tokio::test]
async fn fetch_size_streams_through_a_portal_in_a_transaction() {
    let mut conn = admin().await;
    conn.batch_execute("BEGIN").await.unwrap();
    let s = conn
        .query_stream_with_fetch_size(ROWS_SQL, &[&10_007i32], 1000)
        .await
        .unwrap();
    check_rows(&all_rows(s).await, 10_007);
    assert!(
        conn.in_transaction(),
        "the stream must not end the transaction"
    );
    conn.batch_execute("COMMIT").await.unwrap();
    // Outside a transaction too, and with a fetch size larger than the result.
    for size in [1, 3, 50_000] {
        let s = conn
            .query_stream_with_fetch_size(ROWS_SQL, &[&25i32], size)
            .await
            .unwrap();
        check_rows(&all_rows(s).await, 25);
        assert_usable(&mut conn).await;
    }
}

#[tokio::test]
async fn empty_and_rowless_statements_stream_nothing() {
    let mut conn = admin().await;
    let s = conn.query_stream(ROWS_SQL, &[&0i32]).await.unwrap();
    assert!(all_rows(s).await.is_empty());
    let s = conn
        .query_stream("CREATE TEMP TABLE s_nothing (a int4)", &[])
        .await
        .unwrap();
    assert!(s.columns().is_none());
    assert!(all_rows(s).await.is_empty());
    assert_usable(&mut conn).await;
}

/// Polls a `query_stream` (its setup future, then the stream) `budget` times with a waker that
/// never wakes, then drops whatever it got to: every poll is a possible drop point.
fn poll_then_drop(conn: &mut Connection, fetch: Option<u32>, budget: usize) -> usize {
    let mut cx = Context::from_waker(Waker::noop());
    let mut polls = 0;
    let mut stream = {
        let mut setup = pin!(async {
            match fetch {
                Some(n) => {
                    conn.query_stream_with_fetch_size(ROWS_SQL, &[&3000i32], n)
                        .await
                }
                None => conn.query_stream(ROWS_SQL, &[&3000i32]).await,
            }
        });
        loop {
            if polls == budget {
                return polls;
            }
            polls += 1;
            if let Poll::Ready(s) = setup.as_mut().poll(&mut cx) {
                break s.expect("query_stream");
            }
        }
    };
    while polls < budget {
        polls += 1;
        if let Poll::Ready(None) = Pin::new(&mut stream).poll_next(&mut cx) {
            break;
        }
    }
    polls
}

#[tokio::test]
async fn a_stream_dropped_at_any_poll_leaves_the_connection_clean() {
    let mut conn = admin().await;
    for fetch in [None, Some(100)] {
        for budget in (0..40).chain((40..4000).step_by(97)) {
            let polls = poll_then_drop(&mut conn, fetch, budget);
            assert!(!conn.is_broken(), "budget {budget}: {conn:?}");
            assert_usable(&mut conn).await;
            if polls < budget {
                break;
            }
        }
        // After a dropped stream, the full result still comes back whole.
        poll_then_drop(&mut conn, fetch, 20);
        let s = conn.query_stream(ROWS_SQL, &[&3000i32]).await.unwrap();
        check_rows(&all_rows(s).await, 3000);
    }
}

#[tokio::test]
async fn an_error_mid_stream_reaches_the_caller() {
    let mut conn = admin().await;
    let sql = "SELECT (10 / (5000 - g))::int4 FROM generate_series(1, 10000) g";
    for fetch in [None, Some(64)] {
        let mut s = match fetch {
            Some(n) => conn.query_stream_with_fetch_size(sql, &[], n).await,
            None => conn.query_stream(sql, &[]).await,
        }
        .unwrap();
        let mut rows = 0;
        let err = loop {
            match next(&mut s).await {
                Some(Ok(_)) => rows += 1,
                Some(Err(e)) => break e,
                None => panic!("the stream ended without the division error"),
            }
        };
        assert_eq!(err.code(), Some("22012"), "{err:?}");
        assert!(rows > 0 && rows < 5000, "{rows} rows before the error");
        assert!(next(&mut s).await.is_none(), "the error is the last item");
        drop(s);
        assert_usable(&mut conn).await;
    }
    // An error at Bind time comes from the call itself.
    let e = conn
        .query_stream("SELECT $1::int4 / 0", &[&1i32])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("22012"), "{e:?}");
    assert_usable(&mut conn).await;
}

#[tokio::test]
async fn copy_statements_through_query_stream_are_refused_cleanly() {
    let mut conn = admin().await;
    conn.batch_execute("CREATE TEMP TABLE s_refuse (a int4)")
        .await
        .unwrap();
    for fetch in [None, Some(10)] {
        for sql in ["COPY s_refuse FROM STDIN", "COPY (SELECT 1) TO STDOUT"] {
            let mut s = match fetch {
                Some(n) => conn.query_stream_with_fetch_size(sql, &[], n).await,
                None => conn.query_stream(sql, &[]).await,
            }
            .unwrap();
            let item = next(&mut s).await;
            assert!(matches!(item, Some(Err(_))), "{sql}: {item:?}");
            drop(s);
            assert_usable(&mut conn).await;
        }
    }
}

#[tokio::test]
async fn streams_through_a_pooled_connection() {
    let app = unique_name("stream_pool");
    let pool = started(pool_builder(&app, 2)).await;
    let mut c = pool.connection().await.unwrap();
    let s = c.query_stream(ROWS_SQL, &[&5000i32]).await.unwrap();
    check_rows(&all_rows(s).await, 5000);
    // Dropped halfway and given back: the pool drains it, the next borrower sees nothing.
    let mut s = c.query_stream(ROWS_SQL, &[&5000i32]).await.unwrap();
    next(&mut s).await.unwrap().unwrap();
    drop(s);
    drop(c);
    // A connection given back dirty is drained by a background task that holds its slot.
    for _ in 0..400 {
        if pool.status().in_use == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut c = pool.connection().await.unwrap();
    assert_eq!(
        c.query_one("SELECT 7::int4", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        7
    );
    drop(c);
    common::assert_recovered(&pool, &app, Duration::from_secs(2)).await;
}

// ------------------------------------------------------------------------------------------
// COPY
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn copy_text_round_trip_100k_rows() {
    let mut conn = admin().await;
    conn.batch_execute("CREATE TEMP TABLE c_text (id int4, name text)")
        .await
        .unwrap();
    let mut data = Vec::new();
    for i in 1..=100_000 {
        data.extend_from_slice(format!("{i}\tname {i}\n").as_bytes());
    }
    let mut sink = conn.copy_in("COPY c_text FROM STDIN").await.unwrap();
    assert_send(&sink);
    // Uneven chunks: rows split across them.
    for chunk in data.chunks(7919) {
        sink.send(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    assert_eq!(sink.finish().await.unwrap(), 100_000);
    let out = copy_out_all(
        &mut conn,
        "COPY (SELECT * FROM c_text ORDER BY id) TO STDOUT",
    )
    .await;
    assert!(out == data, "COPY OUT gives back what COPY IN took");
    let mut s = conn.copy_out("COPY c_text TO STDOUT").await.unwrap();
    while next(&mut s).await.is_some() {}
    assert_eq!(s.rows(), Some(100_000));
    drop(s);
    assert_usable(&mut conn).await;
}

#[tokio::test]
async fn copy_csv_with_quoting_and_from_an_async_reader() {
    let mut conn = admin().await;
    conn.batch_execute("CREATE TEMP TABLE c_csv (id int4, v text)")
        .await
        .unwrap();
    let csv = "1,\"a, with comma\"\n2,\"say \"\"hi\"\"\"\n3,\"two\nlines\"\n4,\n5,\"\"\n";
    let mut sink = conn
        .copy_in("COPY c_csv FROM STDIN (FORMAT csv)")
        .await
        .unwrap();
    assert_eq!(
        sink.send_from(csv.as_bytes()).await.unwrap(),
        csv.len() as u64
    );
    assert_eq!(sink.finish().await.unwrap(), 5);
    let rows = conn
        .query("SELECT v FROM c_csv ORDER BY id", &[])
        .await
        .unwrap();
    let vals: Vec<Option<String>> = rows.iter().map(|r| r.get(0)).collect();
    let want = [
        Some("a, with comma"),
        Some("say \"hi\""),
        Some("two\nlines"),
        None,
        Some(""),
    ];
    assert_eq!(
        vals,
        want.map(|v| v.map(str::to_owned)).to_vec(),
        "CSV quoting, NULL and empty string"
    );
    let out = copy_out_all(
        &mut conn,
        "COPY (SELECT * FROM c_csv ORDER BY id) TO STDOUT (FORMAT csv)",
    )
    .await;
    assert_eq!(String::from_utf8(out).unwrap(), csv);
}

#[tokio::test]
async fn copy_binary_round_trip() {
    let mut conn = admin().await;
    conn.batch_execute(
        "CREATE TEMP TABLE c_bin_a AS SELECT g::int4 AS id, md5(g::text) AS h, \
         (g % 3 = 0) AS b, CASE WHEN g % 5 = 0 THEN NULL ELSE g * 1.5 END AS f \
         FROM generate_series(1, 20000) g; \
         CREATE TEMP TABLE c_bin_b (LIKE c_bin_a)",
    )
    .await
    .unwrap();
    let out = copy_out_all(&mut conn, "COPY c_bin_a TO STDOUT (FORMAT binary)").await;
    assert!(out.starts_with(b"PGCOPY\n\xff\r\n\0"), "binary COPY header");
    let mut sink = conn
        .copy_in("COPY c_bin_b FROM STDIN (FORMAT binary)")
        .await
        .unwrap();
    for chunk in out.chunks(100_000) {
        sink.send(chunk).await.unwrap();
    }
    assert_eq!(sink.finish().await.unwrap(), 20_000);
    let diff = conn
        .query_one(
            "SELECT count(*)::int8 FROM \
             ((TABLE c_bin_a EXCEPT ALL TABLE c_bin_b) UNION ALL \
              (TABLE c_bin_b EXCEPT ALL TABLE c_bin_a)) d",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(diff, 0, "binary COPY round trip changed rows");
}

#[tokio::test]
async fn bad_data_mid_copy_is_the_servers_error_and_the_connection_goes_on() {
    let mut conn = admin().await;
    conn.batch_execute("CREATE TEMP TABLE c_bad (id int4)")
        .await
        .unwrap();
    let mut sink = conn.copy_in("COPY c_bad FROM STDIN").await.unwrap();
    let good: String = (1..=1000).map(|i| format!("{i}\n")).collect();
    sink.send(&good).await.unwrap();
    sink.send("not a number\n").await.unwrap();
    // The error shows up at a later send (once it has been flushed and answered) or at finish.
    let mut err = None;
    for _ in 0..200 {
        if let Err(e) = sink.send(&good).await {
            err = Some(e);
            break;
        }
    }
    let err = match err {
        Some(e) => {
            let again = sink.send("1\n").await.unwrap_err();
            assert!(matches!(again, Error::Unsupported(_)), "{again:?}");
            e
        }
        None => sink.finish().await.unwrap_err(),
    };
    assert_eq!(err.code(), Some("22P02"), "{err:?}");
    assert!(!conn.is_broken());
    assert_eq!(
        count(&mut conn, "c_bad").await,
        0,
        "the failed COPY copied nothing"
    );
    assert_usable(&mut conn).await;

    // Binary COPY given text: the header check fails.
    let sink = conn
        .copy_in("COPY c_bad FROM STDIN (FORMAT binary)")
        .await
        .unwrap();
    let mut sink = sink;
    sink.send("1\n2\n").await.unwrap();
    let e = sink.finish().await.unwrap_err();
    assert_eq!(e.code(), Some("22P04"), "{e:?}");
    assert_usable(&mut conn).await;
}

#[tokio::test]
async fn abort_sends_copy_fail_with_the_reason() {
    let mut conn = admin().await;
    conn.batch_execute("CREATE TEMP TABLE c_abort (id int4)")
        .await
        .unwrap();
    let reason = unique_name("truncated_input");
    let mut sink = conn.copy_in("COPY c_abort FROM STDIN").await.unwrap();
    sink.send("1\n2\n").await.unwrap();
    sink.abort(&reason).await.unwrap();
    assert_eq!(count(&mut conn, "c_abort").await, 0);
    // The server failed the COPY with our reason: its log quotes it.
    let log = pg_harness::cluster().log_file().to_path_buf();
    let mut found = false;
    for _ in 0..50 {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains(&format!("COPY from stdin failed: {reason}")) {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(found, "the server log quotes the CopyFail reason {reason}");
    // Inside a transaction block, the aborted COPY fails the transaction.
    conn.batch_execute("BEGIN").await.unwrap();
    let sink = conn.copy_in("COPY c_abort FROM STDIN").await.unwrap();
    sink.abort("reason 42").await.unwrap();
    let e = conn.query_one("SELECT 1::int4", &[]).await.unwrap_err();
    assert_eq!(
        e.code(),
        Some("25P02"),
        "the COPY failed the transaction: {e:?}"
    );
    conn.batch_execute("ROLLBACK").await.unwrap();
    assert_usable(&mut conn).await;
}

#[tokio::test]
async fn a_dropped_sink_aborts_the_copy() {
    let mut conn = admin().await;
    conn.batch_execute("CREATE TEMP TABLE c_drop (id int4)")
        .await
        .unwrap();
    for rows in [0, 10, 20_000] {
        {
            // The sink goes out of scope without finish() or abort().
            let mut sink = conn.copy_in("COPY c_drop FROM STDIN").await.unwrap();
            let data: String = (0..rows).map(|i| format!("{i}\n")).collect();
            sink.send(&data).await.unwrap();
        }
        assert!(conn.has_pending());
        assert_usable(&mut conn).await;
        assert_eq!(count(&mut conn, "c_drop").await, 0, "{rows} rows sent");
    }
    // A COPY OUT stream dropped halfway is drained.
    let mut s = conn
        .copy_out("COPY (SELECT generate_series(1, 100000)) TO STDOUT")
        .await
        .unwrap();
    next(&mut s).await.unwrap().unwrap();
    drop(s);
    assert_usable(&mut conn).await;
}

#[tokio::test]
async fn copy_calls_refuse_other_statements() {
    let mut conn = admin().await;
    conn.batch_execute("CREATE TEMP TABLE c_other (id int4)")
        .await
        .unwrap();
    for sql in ["SELECT 1", "COPY (SELECT 1) TO STDOUT", "SELEC broken"] {
        let e = conn.copy_in(sql).await.unwrap_err();
        assert!(!e.is_closed(), "{sql}: {e:?}");
        assert_usable(&mut conn).await;
    }
    for sql in ["SELECT 1", "COPY c_other FROM STDIN"] {
        let e = conn.copy_out(sql).await.unwrap_err();
        assert!(!e.is_closed(), "{sql}: {e:?}");
        assert_usable(&mut conn).await;
    }
    // A server error at the start of COPY OUT.
    let e = conn
        .copy_out("COPY no_such_table TO STDOUT")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("42P01"));
    // An error mid-COPY OUT is the stream's last item.
    let mut s = conn
        .copy_out("COPY (SELECT 10 / (500 - g) FROM generate_series(1, 1000) g) TO STDOUT")
        .await
        .unwrap();
    let mut last = None;
    while let Some(item) = next(&mut s).await {
        last = Some(item);
    }
    let e = last.unwrap().unwrap_err();
    assert_eq!(e.code(), Some("22012"), "{e:?}");
    drop(s);
    assert_usable(&mut conn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_mid_copy_is_a_clean_error_and_the_pool_recovers() {
    let pg = Cluster::start_throwaway();
    let app = unique_name("copy_restart");
    let mut cfg: Config = pg.url(Role::Scram).parse().unwrap();
    cfg.application_name(&app)
        .connect_timeout(Duration::from_secs(2));
    let pool = started(
        pool_core::PsqlPool::builder()
            .config(cfg)
            .max_db_pool_size(2)
            .wait_timeout(Duration::from_secs(1)),
    )
    .await;
    let mut c = pool.connection().await.unwrap();
    let conn = c.connection_mut().await.unwrap();
    conn.batch_execute("CREATE TEMP TABLE c_restart (id int4)")
        .await
        .unwrap();
    let mut sink = conn.copy_in("COPY c_restart FROM STDIN").await.unwrap();
    sink.send("1\n2\n").await.unwrap();
    tokio::task::block_in_place(|| pg.restart_with(ShutdownMode::Fast));
    let chunk: String = (0..10_000).map(|i| format!("{i}\n")).collect();
    let mut err = None;
    for _ in 0..100 {
        if let Err(e) = sink.send(&chunk).await {
            err = Some(e);
            break;
        }
    }
    let err = match err {
        Some(e) => e,
        None => sink.finish().await.unwrap_err(),
    };
    assert!(
        err.is_closed() || err.code() == Some("57P01"),
        "a clean connection error: {err:?}"
    );
    assert!(c.is_broken());
    drop(c);
    let s = pool.status();
    assert_eq!(s.in_use, 0, "{s:?}");
    // A fresh connection serves COPY again.
    let mut c = pool.connection().await.unwrap();
    let conn = c.connection_mut().await.unwrap();
    let out = copy_out_all(conn, "COPY (SELECT 7) TO STDOUT").await;
    assert_eq!(out, b"7\n");
    drop(c);
    common::assert_recovered(&pool, &app, Duration::from_secs(3)).await;
}

#[tokio::test]
async fn typed_binary_copy_writer_and_reader() {
    use pgwire_lite::{BinaryCopyInWriter, BinaryCopyOutStream, Type};
    let mut conn = admin().await;
    conn.batch_execute("CREATE TEMP TABLE c_typed (id int4, name text, score float8, big int8)")
        .await
        .unwrap();
    let types = [Type::INT4, Type::TEXT, Type::FLOAT8, Type::INT8];
    let sink = conn
        .copy_in("COPY c_typed FROM STDIN (FORMAT binary)")
        .await
        .unwrap();
    let mut w = BinaryCopyInWriter::new(sink, &types);
    for i in 0..50_000i32 {
        let name = format!("n{i}");
        let score = (i % 7 != 0).then_some(f64::from(i) / 4.0);
        w.write(&[&i, &name, &score, &(i64::from(i) << 33)])
            .await
            .unwrap();
    }
    // A value of the wrong type is refused before anything of its row is queued.
    let e = w.write(&[&"x", &"y", &1.0f64, &1i64]).await.unwrap_err();
    assert!(matches!(e, Error::Conversion(_)), "{e:?}");
    let e = w.write(&[&1i32]).await.unwrap_err();
    assert!(matches!(e, Error::Conversion(_)), "{e:?}");
    assert_eq!(w.finish().await.unwrap(), 50_000);

    let out = conn
        .copy_out("COPY (SELECT * FROM c_typed ORDER BY id) TO STDOUT (FORMAT binary)")
        .await
        .unwrap();
    let mut rows = BinaryCopyOutStream::new(out, &types);
    let mut n = 0i32;
    while let Some(row) = next(&mut rows).await {
        let row = row.unwrap();
        assert_eq!(row.len(), 4);
        assert_eq!(row.try_get::<i32>(0).unwrap(), n);
        assert_eq!(row.try_get::<&str>(1).unwrap(), format!("n{n}"));
        let score: Option<f64> = row.try_get(2).unwrap();
        assert_eq!(score, (n % 7 != 0).then_some(f64::from(n) / 4.0));
        assert_eq!(row.try_get::<i64>(3).unwrap(), i64::from(n) << 33);
        assert!(
            row.try_get::<String>(0).is_err(),
            "int4 is not read as text"
        );
        assert!(row.try_get::<i32>(9).is_err(), "no value 9");
        n += 1;
    }
    assert_eq!(n, 50_000);
    drop(rows);

    // Types that do not match the data: an error, and the connection goes on.
    let out = conn
        .copy_out("COPY (SELECT 1::int4) TO STDOUT (FORMAT binary)")
        .await
        .unwrap();
    let mut rows = BinaryCopyOutStream::new(out, &types);
    assert!(matches!(
        next(&mut rows).await,
        Some(Err(Error::Conversion(_)))
    ));
    assert!(next(&mut rows).await.is_none());
    drop(rows);
    // Text COPY data read as binary: no signature.
    let out = conn.copy_out("COPY (SELECT 1) TO STDOUT").await.unwrap();
    let mut rows = BinaryCopyOutStream::new(out, &[Type::INT4]);
    assert!(matches!(
        next(&mut rows).await,
        Some(Err(Error::Conversion(_)))
    ));
    drop(rows);
    assert_usable(&mut conn).await;
}
