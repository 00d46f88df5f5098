//! `stream-copy-bench`: the two measurements of issue 13, in one run so the ratios compare.
//!
//! 1. COPY IN of a file of N rows (default 1,000,000; `int4`, `text`): pgwire-lite's
//!    `copy_in`, tokio-postgres's `copy_in` and `psql \copy` (libpq; its time includes starting
//!    psql), interleaved over several rounds, the table truncated before each.
//! 2. Streaming M rows (default 10,000,000; an `int4` and a 32-byte `text`): pgwire-lite's
//!    `query_stream` and tokio-postgres's `query_raw`, each in its own child process so its
//!    peak RSS (`getrusage` `ru_maxrss`) is its own: the figure is the peak during the stream
//!    minus the peak after connecting.
//!
//! Server: the embedded throwaway PostgreSQL (pg_harness), or `DATABASE_URL` when set.
//! Usage: `stream-copy-bench [--copy-rows N] [--stream-rows M] [--rounds R]`.

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use psqlpool_benches::target;

const TABLE: &str = "psqlpool_bench_copy";
const STREAM_SQL: &str = "SELECT g::int4, md5(g::text) FROM generate_series(1, $1::int4) g";
const CHUNK: usize = 64 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("rss-child") {
        let (driver, url, rows) = (&args[2], &args[3], args[4].parse().expect("row count"));
        rss_child(driver, url, rows);
        return;
    }
    let opt = |name: &str, default: u64| -> u64 {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse().expect("a number"))
            .unwrap_or(default)
    };
    let copy_rows = opt("--copy-rows", 1_000_000);
    let stream_rows = opt("--stream-rows", 10_000_000);
    let rounds = opt("--rounds", 3);
    let target = target::resolve(false).unwrap_or_else(|e| panic!("{e}"));
    println!("server: {}", target.describe);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(copy_bench(&target.url, copy_rows, rounds));
    rss_bench(&target.url, stream_rows, rounds);
}

async fn copy_bench(url: &str, rows: u64, rounds: u64) {
    let path = std::env::temp_dir().join(format!("psqlpool-copy-{}.txt", std::process::id()));
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("data file"));
        for i in 1..=rows {
            writeln!(f, "{i}\tname-{i:012}").expect("write data file");
        }
    }
    let mut ours = pgwire_lite::Connection::connect(&url.parse().expect("URL"))
        .await
        .expect("pgwire-lite connects");
    let (tp, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("tokio-postgres connects");
    tokio::spawn(conn);
    ours.batch_execute(&format!(
        "DROP TABLE IF EXISTS {TABLE}; CREATE UNLOGGED TABLE {TABLE} (id int4, name text)"
    ))
    .await
    .expect("table");
    let psql = pg_harness::find_psql();
    let copy_sql = format!("COPY {TABLE} FROM STDIN");
    let mut times: [Vec<Duration>; 3] = Default::default();
    for round in 0..rounds {
        for d in 0..3 {
            // Rotate the order each round so no driver always runs first.
            let driver = (d + round as usize) % 3;
            ours.batch_execute(&format!("TRUNCATE {TABLE}; CHECKPOINT"))
                .await
                .expect("truncate");
            let start = Instant::now();
            let copied = match driver {
                0 => {
                    let mut sink = ours.copy_in(&copy_sql).await.expect("copy_in");
                    let mut f = std::fs::File::open(&path).expect("data file");
                    let mut buf = vec![0u8; CHUNK];
                    loop {
                        let n = f.read(&mut buf).expect("read data file");
                        if n == 0 {
                            break;
                        }
                        sink.send(&buf[..n]).await.expect("send");
                    }
                    sink.finish().await.expect("finish")
                }
                1 => {
                    let sink = tp.copy_in::<_, Bytes>(&copy_sql).await.expect("copy_in");
                    let mut sink = std::pin::pin!(sink);
                    let mut f = std::fs::File::open(&path).expect("data file");
                    let mut buf = vec![0u8; CHUNK];
                    loop {
                        let n = f.read(&mut buf).expect("read data file");
                        if n == 0 {
                            break;
                        }
                        sink.feed(Bytes::copy_from_slice(&buf[..n]))
                            .await
                            .expect("feed");
                    }
                    sink.as_mut().finish().await.expect("finish")
                }
                _ => {
                    let out = Command::new(&psql)
                        .arg(url)
                        .arg("-qAtc")
                        .arg(format!("\\copy {TABLE} FROM '{}'", path.display()))
                        .output()
                        .expect("psql runs");
                    assert!(out.status.success(), "psql \\copy failed: {out:?}");
                    rows
                }
            };
            let elapsed = start.elapsed();
            assert_eq!(copied, rows, "driver {driver} copied {copied} rows");
            times[driver].push(elapsed);
        }
    }
    let _ = std::fs::remove_file(&path);
    ours.batch_execute(&format!("DROP TABLE {TABLE}"))
        .await
        .expect("drop");
    let names = [
        "pgwire-lite copy_in",
        "tokio-postgres copy_in",
        "psql \\copy",
    ];
    println!("\nCOPY IN of {rows} rows from a file, {rounds} rounds (median, min):");
    let ours_med = median(&times[0]);
    for (name, t) in names.iter().zip(&times) {
        let med = median(t);
        println!(
            "  {name:<24} median {:>8.1} ms  min {:>8.1} ms  rows/s {:>10.0}  speed ours/this {:.2}x",
            ms(med),
            ms(*t.iter().min().expect("rounds")),
            rows as f64 / med.as_secs_f64(),
            med.as_secs_f64() / ours_med.as_secs_f64()
        );
    }
}

fn rss_bench(url: &str, rows: u64, rounds: u64) {
    let exe = std::env::current_exe().expect("own path");
    println!("\nstreaming {rows} rows (int4 + 32-byte text), {rounds} rounds, one process each:");
    let mut results: [Vec<(f64, f64, f64)>; 2] = Default::default();
    for round in 0..rounds {
        for d in 0..2 {
            let driver = (d + round as usize) % 2;
            let name = ["ours", "tokio-postgres"][driver];
            let out = Command::new(&exe)
                .args(["rss-child", name, url, &rows.to_string()])
                .output()
                .expect("child runs");
            assert!(out.status.success(), "child {name} failed: {out:?}");
            let text = String::from_utf8_lossy(&out.stdout);
            let mut it = text
                .split_whitespace()
                .map(|v| v.parse::<f64>().expect("number"));
            let (rss_mib, secs) = (it.next().expect("rss"), it.next().expect("secs"));
            let peak = it.next().expect("peak");
            results[driver].push((rss_mib, secs, peak));
        }
    }
    let ours_secs = median_f(results[0].iter().map(|r| r.1).collect());
    for (name, r) in ["pgwire-lite query_stream", "tokio-postgres query_raw"]
        .iter()
        .zip(&results)
    {
        let rss = r.iter().map(|x| x.0).fold(0.0, f64::max);
        let peak = r.iter().map(|x| x.2).fold(0.0, f64::max);
        let secs = median_f(r.iter().map(|x| x.1).collect());
        println!(
            "  {name:<26} peak RSS +{rss:>5.1} MiB, {peak:>5.1} MiB in all (max over rounds)  \
             median {secs:>6.2} s  rows/s {:>9.0}  speed ours/this {:.2}x",
            rows as f64 / secs,
            secs / ours_secs
        );
    }
}

/// Child: connect, note the peak RSS, stream the rows, print "<peak increase MiB> <seconds>
/// <peak MiB>".
fn rss_child(driver: &str, url: &str, rows: i32) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut checksum = 0u64;
        let (before, elapsed) = if driver == "ours" {
            let mut c = pgwire_lite::Connection::connect(&url.parse().expect("URL"))
                .await
                .expect("connect");
            c.query_one("SELECT 1::int4", &[]).await.expect("warm up");
            let before = max_rss_kib();
            let start = Instant::now();
            let mut s = c.query_stream(STREAM_SQL, &[&rows]).await.expect("stream");
            while let Some(row) = s.next().await {
                let row = row.expect("row");
                checksum += row.get::<_, i32>(0) as u64 + row.get::<_, &str>(1).len() as u64;
            }
            (before, start.elapsed())
        } else {
            let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .expect("connect");
            tokio::spawn(conn);
            c.query_one("SELECT 1::int4", &[]).await.expect("warm up");
            let before = max_rss_kib();
            let start = Instant::now();
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&rows];
            let s = c.query_raw(STREAM_SQL, params).await.expect("stream");
            let mut s = std::pin::pin!(s);
            while let Some(row) = s.next().await {
                let row = row.expect("row");
                checksum += row.get::<_, i32>(0) as u64 + row.get::<_, &str>(1).len() as u64;
            }
            (before, start.elapsed())
        };
        assert!(checksum > 0);
        let peak = max_rss_kib();
        let grew = peak.saturating_sub(before);
        println!(
            "{:.2} {:.3} {:.2}",
            grew as f64 / 1024.0,
            elapsed.as_secs_f64(),
            peak as f64 / 1024.0
        );
    });
}

/// This process's peak resident set so far, in KiB (Linux `ru_maxrss`).
fn max_rss_kib() -> u64 {
    // SAFETY: `getrusage` only writes into the zero-initialised plain-old-data struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid `who` constant and an exclusive pointer to `ru`.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0;
    }
    u64::try_from(ru.ru_maxrss).unwrap_or(0)
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

fn median_f(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
