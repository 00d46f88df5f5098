//! `pgbench-load`: pgbench-style loads (select-only, TPC-B-like) through psqlpool, and with
//! `--compare` through the peers too, interleaved in rounds, printed as ratios.
//!
//! ```text
//! cargo run --release -p psqlpool-benches --bin pgbench-load -- \
//!     --workload select --clients 8 --pool 8 --seconds 10 --compare
//! ```
//!
//! The server is the embedded throwaway PostgreSQL of `pg_harness`, or `DATABASE_URL`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pg_harness::PoolMode;
use psqlpool_benches::drivers::{self, Driver, Kind, Options};
use psqlpool_benches::hist::{Recorder, Snapshot};
use psqlpool_benches::workload::Workload;
use psqlpool_benches::{cpu, pgbench, schema, target};

const USAGE: &str = "\
pgbench-load: pgbench-style load through psqlpool (and its peers with --compare)

USAGE: pgbench-load [OPTIONS]

  --workload select|tpcb|connect
                           pgbench -S, pgbench's TPC-B-like transaction, or
                           pgbench -C -S (a new connection per transaction)  [select]
  --clients N              concurrent client tasks                           [1]
  --pool N                 pool size (max connections) of every pool         [= clients]
  --seconds T              measured seconds per run                          [10]
  --warmup W               unmeasured whole seconds before each run          [2]
  --rounds R               rounds; each round runs every driver once         [2]
  --scale S                pgbench scale (100 000 accounts each)             [1]
  --unix                   connect over the Unix socket instead of TCP
  --sslmode MODE           libpq sslmode for every driver (require: TLS, not
                           verified); the embedded server gets ssl = on
  --bouncer MODE           through a throwaway PgBouncer (session|transaction|
                           statement, pool size --pool); transaction and
                           statement mode use unnamed statements
  --runtime current|multi  tokio runtime of the in-process drivers           [multi]
  --compare                also run deadpool-postgres, bb8-postgres, sqlx and
                           pgbench -M prepared (if found), interleaved, as ratios
  --drivers a,b,...        explicit driver list (ours, deadpool, bb8, sqlx, pgbench,
                           pgbench-pipeline: --pool clients, --clients/--pool
                           selects per \\startpipeline, counted in statements;
                           ours-batches: multiplexed, one Sync per batch);
                           ratios are to the first
  --multiplex              psqlpool with multiplexing(true): concurrent executes share
                           connections, one Sync per statement (ours-batches: the
                           default's batched reads; pgbench-pipeline: the
                           \\startpipeline reference)
  --peer-defaults          keep the peers' per-checkout health checks (bb8
                           test_on_check_out, sqlx test_before_acquire): +1 round trip
  --init                   recreate the pgbench tables even if present
  --quiet                  no per-second progress lines

Server: the embedded throwaway PostgreSQL (pg_harness), or DATABASE_URL when set.
Numbers: client and server share this machine's cores; compare ratios from one run.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Runtime {
    Current,
    Multi,
}

#[derive(Debug)]
struct Args {
    workload: Workload,
    clients: usize,
    pool: usize,
    seconds: u64,
    warmup: u64,
    rounds: usize,
    scale: i32,
    unix: bool,
    sslmode: Option<String>,
    bouncer: Option<PoolMode>,
    runtime: Runtime,
    drivers: Vec<Kind>,
    peer_defaults: bool,
    multiplex: bool,
    init: bool,
    quiet: bool,
}

fn parse_args(argv: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut workload = Workload::Select;
    let mut clients = 1usize;
    let mut pool = None;
    let mut seconds = 10u64;
    let mut warmup = 2u64;
    let mut rounds = 2usize;
    let mut scale = 1i32;
    let mut unix = false;
    let mut sslmode = None;
    let mut bouncer = None;
    let mut runtime = Runtime::Multi;
    let mut compare = false;
    let mut explicit: Option<Vec<Kind>> = None;
    let mut peer_defaults = false;
    let mut multiplex = false;
    let mut init = false;
    let mut quiet = false;

    let mut it = argv.into_iter();
    while let Some(arg) = it.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        fn num<T>(name: &str, v: &str, min: T) -> Result<T, String>
        where
            T: std::str::FromStr + PartialOrd + std::fmt::Display,
        {
            let n: T = v
                .parse()
                .map_err(|_| format!("{name} {v:?}: not a number"))?;
            if n < min {
                return Err(format!("{name} {v}: must be at least {min}"));
            }
            Ok(n)
        }
        match key.as_str() {
            "-h" | "--help" => return Ok(None),
            "--workload" => workload = value("--workload")?.parse()?,
            "--clients" | "-c" => clients = num("--clients", &value("--clients")?, 1)?,
            "--pool" => pool = Some(num("--pool", &value("--pool")?, 1)?),
            "--seconds" | "-T" => seconds = num("--seconds", &value("--seconds")?, 1)?,
            "--warmup" => warmup = num("--warmup", &value("--warmup")?, 0)?,
            "--rounds" => rounds = num("--rounds", &value("--rounds")?, 1)?,
            "--scale" | "-s" => scale = num("--scale", &value("--scale")?, 1)?,
            "--unix" => unix = true,
            "--sslmode" => {
                let mode = value("--sslmode")?;
                const MODES: [&str; 6] = [
                    "disable",
                    "allow",
                    "prefer",
                    "require",
                    "verify-ca",
                    "verify-full",
                ];
                if !MODES.contains(&mode.as_str()) {
                    return Err(format!("--sslmode {mode:?}: expected one of {MODES:?}"));
                }
                sslmode = Some(mode);
            }
            "--bouncer" => {
                bouncer = Some(match value("--bouncer")?.as_str() {
                    "session" => PoolMode::Session,
                    "transaction" => PoolMode::Transaction,
                    "statement" => PoolMode::Statement,
                    other => {
                        return Err(format!(
                            "--bouncer {other:?}: expected session, transaction or statement"
                        ));
                    }
                })
            }
            "--runtime" => {
                runtime = match value("--runtime")?.as_str() {
                    "current" => Runtime::Current,
                    "multi" => Runtime::Multi,
                    other => {
                        return Err(format!(
                            "--runtime {other:?}: expected `current` or `multi`"
                        ));
                    }
                }
            }
            "--compare" => compare = true,
            "--drivers" => {
                explicit = Some(
                    value("--drivers")?
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::parse)
                        .collect::<Result<_, _>>()?,
                )
            }
            "--peer-defaults" => peer_defaults = true,
            "--multiplex" => multiplex = true,
            "--init" => init = true,
            "--quiet" => quiet = true,
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    if clients > 10_000 {
        return Err(format!("--clients {clients}: at most 10000"));
    }
    if bouncer.is_some() && workload == Workload::Tpcb {
        return Err("--bouncer runs the select and connect workloads".into());
    }
    // TLS, PgBouncer and new connections are compared with deadpool-postgres (tokio-postgres)
    // and pgbench only: what the issue measures, and what a load this size has time for.
    let narrow = sslmode.as_deref().is_some_and(|m| m != "disable")
        || bouncer.is_some()
        || workload == Workload::Connect;
    let peers: Vec<Kind> = if narrow {
        vec![Kind::Deadpool, Kind::Pgbench]
    } else {
        Kind::PEERS.to_vec()
    };
    let drivers = match (explicit, compare) {
        (Some(list), _) if !list.is_empty() => {
            if let Some(k) = list.iter().find(|k| {
                let extra_ok = !narrow && matches!(**k, Kind::PgbenchPipeline | Kind::OursBatches);
                !k.eq(&&Kind::Ours) && !peers.contains(k) && !extra_ok
            }) {
                return Err(format!(
                    "--drivers {k}: with --sslmode, --bouncer or the connect workload the \
                     drivers are ours, deadpool and pgbench"
                ));
            }
            list
        }
        (Some(_), _) => return Err("--drivers: empty list".into()),
        (None, true) => std::iter::once(Kind::Ours).chain(peers).collect(),
        (None, false) => vec![Kind::Ours],
    };
    if drivers.contains(&Kind::PgbenchPipeline) && workload != Workload::Select {
        return Err("--drivers pgbench-pipeline: runs the select workload only".into());
    }
    Ok(Some(Args {
        workload,
        clients,
        pool: pool.unwrap_or(clients),
        seconds,
        warmup,
        rounds,
        scale,
        unix,
        sslmode,
        bouncer,
        runtime,
        drivers,
        peer_defaults,
        multiplex,
        init,
        quiet,
    }))
}

/// One driver's measured window in one round.
#[derive(Debug, Clone)]
struct RunResult {
    kind: Kind,
    round: usize,
    window: Snapshot,
    elapsed: Duration,
    cpu_per_txn: Option<Duration>,
    first_error: Option<String>,
}

impl RunResult {
    fn tps(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.window.txns as f64 / secs
        } else {
            0.0
        }
    }
}

fn us(d: Option<Duration>) -> String {
    match d {
        None => "-".into(),
        Some(d) => {
            let us = d.as_secs_f64() * 1e6;
            if us < 100.0 {
                format!("{us:.1}")
            } else {
                format!("{us:.0}")
            }
        }
    }
}

/// Runs one in-process driver for warm-up + window, printing a progress line per second.
fn run_inproc(
    rt: &tokio::runtime::Runtime,
    driver: &Driver,
    args: &Args,
    round: usize,
) -> RunResult {
    let recorder = Arc::new(Recorder::with_shards(args.clients));
    let name = driver.kind().name();
    rt.block_on(async {
        let start = Instant::now();
        let measure_from = start + Duration::from_secs(args.warmup);
        let deadline = measure_from + Duration::from_secs(args.seconds);
        let tasks: Vec<_> = (0..args.clients)
            .map(|c| {
                tokio::spawn(drivers::client_loop(
                    driver.clone(),
                    args.workload,
                    args.scale,
                    (round as u64) << 32 | c as u64,
                    deadline,
                    recorder.clone(),
                ))
            })
            .collect();
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::from_std(start + Duration::from_secs(1)),
            Duration::from_secs(1),
        );
        let mut last = recorder.snapshot();
        let mut last_at = Instant::now();
        let mut window_start: Option<(Snapshot, Instant, Duration)> = None;
        if args.warmup == 0 {
            window_start = Some((recorder.snapshot(), Instant::now(), cpu::self_cpu()));
        }
        loop {
            tick.tick().await;
            let now = Instant::now();
            let snap = recorder.snapshot();
            if window_start.is_none() && now >= measure_from {
                window_start = Some((snap.clone(), now, cpu::self_cpu()));
            }
            if !args.quiet {
                let delta = snap.since(&last);
                let secs = now.duration_since(last_at).as_secs_f64().max(1e-9);
                let phase = if now <= measure_from + Duration::from_millis(1) {
                    "warm"
                } else {
                    "    "
                };
                eprintln!(
                    "  {name:<18} r{round} {phase} {:>3}s {:>9.0} tps  p50 {:>7} µs  p99 {:>7} µs  err {}",
                    now.duration_since(start).as_secs_f64().round(),
                    delta.txns as f64 / secs,
                    us(delta.quantile(0.50)),
                    us(delta.quantile(0.99)),
                    delta.errors,
                );
            }
            last = snap;
            last_at = now;
            if now + Duration::from_millis(500) >= deadline {
                break;
            }
        }
        // The last tick lands on the deadline (± scheduling); wait for it exactly.
        tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
        let end = recorder.snapshot();
        let end_at = Instant::now();
        let end_cpu = cpu::self_cpu();
        for t in tasks {
            let _ = t.await;
        }
        let (begin, begin_at, begin_cpu) =
            window_start.unwrap_or((Snapshot::default(), start, Duration::ZERO));
        let window = end.since(&begin);
        let cpu = end_cpu.saturating_sub(begin_cpu);
        RunResult {
            kind: driver.kind(),
            round,
            cpu_per_txn: u32::try_from(window.txns)
                .ok()
                .filter(|&n| n > 0)
                .map(|n| cpu / n),
            elapsed: end_at.duration_since(begin_at),
            window,
            first_error: recorder.first_error(),
        }
    })
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("pgbench-load: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pgbench-load: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(mut args: Args) -> Result<ExitCode, String> {
    let target = target::resolve_with(
        args.unix,
        args.sslmode.as_deref(),
        args.bouncer.map(|m| (m, args.pool)),
    )?;
    // Through PgBouncer in transaction or statement mode a named statement may be looked up
    // on another server connection than the one that prepared it.
    let unnamed = matches!(
        args.bouncer,
        Some(PoolMode::Transaction | PoolMode::Statement)
    );
    let opts = Options {
        peer_defaults: args.peer_defaults,
        tls: args.sslmode.as_deref().is_some_and(|m| m != "disable"),
        unnamed,
        multiplex: args.multiplex,
    };
    let pgbench_bin = target::find_pgbench(target.bin_dir.as_deref());
    let is_pgbench = |k: &Kind| matches!(k, Kind::Pgbench | Kind::PgbenchPipeline);
    if args.drivers.iter().any(is_pgbench) && pgbench_bin.is_none() {
        eprintln!("pgbench-load: pgbench not found (PostgreSQL bin dir or PATH): skipping it");
        args.drivers.retain(|k| !is_pgbench(k));
    }
    let rt = match args.runtime {
        Runtime::Current => tokio::runtime::Builder::new_current_thread(),
        Runtime::Multi => tokio::runtime::Builder::new_multi_thread(),
    }
    .enable_all()
    .build()
    .map_err(|e| format!("starting the tokio runtime: {e}"))?;

    let created = rt.block_on(schema::ensure(&target.admin_url, args.scale, args.init))?;
    if target.bouncer.is_some() {
        rt.block_on(schema::grant(&target.admin_url, &target::bouncer_grants()))?;
    }
    let prewarmed = rt.block_on(schema::prewarm(&target.admin_url));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "pgbench-load: workload {} scale {} clients {} pool {} seconds {} (+{} warm-up) rounds {} \
         runtime {:?} {}; server: {}{}; {cores} cores shared by client and server",
        args.workload,
        args.scale,
        args.clients,
        args.pool,
        args.seconds,
        args.warmup,
        args.rounds,
        args.runtime,
        if args.unix { "unix" } else { "tcp" },
        target.describe,
        if created {
            " (pgbench tables created)"
        } else {
            ""
        },
    );
    if !prewarmed {
        println!("note: pg_prewarm unavailable: the first driver of round 1 fills the cache");
    }
    if args.drivers.contains(&Kind::Pgbench) && args.pool < args.clients {
        println!(
            "note: pgbench has no pool: it opens one connection per client ({}), not --pool {}",
            args.clients, args.pool
        );
    }

    let pools: Vec<Driver> = args
        .drivers
        .iter()
        .filter(|k| !is_pgbench(k))
        .map(|&k| {
            if args.workload == Workload::Connect {
                Driver::for_connect(k, &target.url, opts)
            } else {
                rt.block_on(Driver::build(k, &target.url, args.pool, opts))
            }
        })
        .collect::<Result<_, _>>()?;

    let mut results: Vec<RunResult> = Vec::new();
    for round in 1..=args.rounds {
        for &kind in &args.drivers {
            if args.workload == Workload::Tpcb {
                rt.block_on(schema::reset_for_tpcb(&target.admin_url))?;
            }
            let result = if is_pgbench(&kind) {
                // The pipeline reference: --pool connections with as many statements in
                // flight in all as --clients.
                let (clients, pipeline) = if kind == Kind::PgbenchPipeline {
                    (args.pool, (args.clients / args.pool).max(1))
                } else {
                    (args.clients, 0)
                };
                let bin = pgbench_bin
                    .as_deref()
                    .ok_or("pgbench disappeared between checks")?;
                let run = pgbench::run(&pgbench::PgbenchArgs {
                    pgbench: bin,
                    url: &target.url,
                    workload: args.workload,
                    clients,
                    warmup_secs: args.warmup,
                    seconds: args.seconds,
                    progress: !args.quiet,
                    unnamed,
                    pipeline,
                    scale: args.scale,
                })?;
                RunResult {
                    kind,
                    round,
                    window: run.window,
                    elapsed: Duration::from_secs(args.seconds),
                    cpu_per_txn: run.cpu_per_txn,
                    first_error: None,
                }
            } else {
                let driver = pools
                    .iter()
                    .find(|d| d.kind() == kind)
                    .ok_or_else(|| format!("no pool for {kind}"))?;
                run_inproc(&rt, driver, &args, round)
            };
            eprintln!(
                "  {:<18} r{round} done: {:.0} tps, p50 {} µs, p99 {} µs, {} errors",
                kind.name(),
                result.tps(),
                us(result.window.quantile(0.5)),
                us(result.window.quantile(0.99)),
                result.window.errors
            );
            if let Some(e) = &result.first_error {
                eprintln!("    first error: {e}");
            }
            results.push(result);
        }
    }
    for d in &pools {
        rt.block_on(d.close());
    }
    print_table(&args, &results);
    let failed = results.iter().any(|r| r.window.txns == 0);
    Ok(if failed {
        eprintln!("pgbench-load: a run completed no transaction");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_table(args: &Args, results: &[RunResult]) {
    let base = args.drivers.first().copied();
    let base_name = base.map_or("-", Kind::name);
    println!();
    println!(
        "| driver | round | TPS | TPS ÷ {base_name} | p50 µs | p95 µs | p99 µs | client CPU µs/txn | CPU ÷ {base_name} | errors |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let row = |name: &str,
               round: &str,
               tps: f64,
               base_tps: f64,
               window: &Snapshot,
               cpu: Option<Duration>,
               base_cpu: Option<Duration>| {
        let ratio = if base_tps > 0.0 {
            format!("{:.2}", tps / base_tps)
        } else {
            "-".into()
        };
        let cpu_ratio = match (cpu, base_cpu) {
            (Some(c), Some(b)) if !b.is_zero() => {
                format!("{:.2}", c.as_secs_f64() / b.as_secs_f64())
            }
            _ => "-".into(),
        };
        println!(
            "| {name} | {round} | {tps:.0} | {ratio} | {} | {} | {} | {} | {cpu_ratio} | {} |",
            us(window.quantile(0.50)),
            us(window.quantile(0.95)),
            us(window.quantile(0.99)),
            us(cpu),
            window.errors
        );
    };
    for round in 1..=args.rounds {
        let in_round: Vec<&RunResult> = results.iter().filter(|r| r.round == round).collect();
        let base_run = in_round.iter().find(|r| Some(r.kind) == base);
        for r in &in_round {
            row(
                r.kind.name(),
                &round.to_string(),
                r.tps(),
                base_run.map_or(0.0, |b| b.tps()),
                &r.window,
                r.cpu_per_txn,
                base_run.and_then(|b| b.cpu_per_txn),
            );
        }
    }
    // Per driver over all rounds: TPS averaged, latencies from the merged histograms, CPU weighted.
    let summary = |kind: Kind| -> (f64, Snapshot, Option<Duration>) {
        let mine: Vec<&RunResult> = results.iter().filter(|r| r.kind == kind).collect();
        let tps = mine.iter().map(|r| r.tps()).sum::<f64>() / mine.len().max(1) as f64;
        let mut merged = Snapshot::default();
        let mut cpu = Duration::ZERO;
        let mut counted = 0u64;
        for r in &mine {
            merged.merge(&r.window);
            if let Some(c) = r.cpu_per_txn {
                cpu += c * u32::try_from(r.window.txns).unwrap_or(u32::MAX);
                counted += r.window.txns;
            }
        }
        let cpu = u32::try_from(counted)
            .ok()
            .filter(|&n| n > 0)
            .map(|n| cpu / n);
        (tps, merged, cpu)
    };
    if args.rounds > 1 {
        let (base_tps, _, base_cpu) = base.map(summary).unwrap_or_default();
        for &kind in &args.drivers {
            let (tps, merged, cpu) = summary(kind);
            row(kind.name(), "all", tps, base_tps, &merged, cpu, base_cpu);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Option<Args>, String> {
        parse_args(s.split_whitespace().map(String::from))
    }

    #[test]
    fn defaults_and_flags() {
        let a = parse("").unwrap().unwrap();
        assert_eq!((a.clients, a.pool, a.seconds, a.rounds), (1, 1, 10, 2));
        let a = parse("--workload=tpcb --clients 8 --runtime current --compare --unix")
            .unwrap()
            .unwrap();
        assert_eq!(a.workload, Workload::Tpcb);
        assert_eq!((a.clients, a.pool), (8, 8));
        assert_eq!(a.runtime, Runtime::Current);
        assert!(a.unix);
        assert_eq!(a.drivers[0], Kind::Ours);
        assert_eq!(a.drivers[1..], Kind::PEERS);
        let a = parse("--drivers sqlx,pgbench --pool 2 -c 4")
            .unwrap()
            .unwrap();
        assert_eq!(a.drivers, vec![Kind::Sqlx, Kind::Pgbench]);
        assert_eq!((a.clients, a.pool), (4, 2));
        assert!(parse("--help").unwrap().is_none());
        let a = parse("--workload connect --sslmode require --compare")
            .unwrap()
            .unwrap();
        assert_eq!(a.workload, Workload::Connect);
        assert_eq!(a.sslmode.as_deref(), Some("require"));
        assert_eq!(a.drivers, vec![Kind::Ours, Kind::Deadpool, Kind::Pgbench]);
        let a = parse("--bouncer transaction --compare").unwrap().unwrap();
        assert_eq!(a.bouncer, Some(PoolMode::Transaction));
        assert_eq!(a.drivers, vec![Kind::Ours, Kind::Deadpool, Kind::Pgbench]);
        let a = parse("--multiplex -c 64 --pool 8 --drivers ours,pgbench,pgbench-pipeline")
            .unwrap()
            .unwrap();
        assert!(a.multiplex);
        assert_eq!(
            a.drivers,
            vec![Kind::Ours, Kind::Pgbench, Kind::PgbenchPipeline]
        );
        assert!(!parse("").unwrap().unwrap().multiplex);
        let e = parse("--workload tpcb --drivers ours,pgbench-pipeline").unwrap_err();
        assert!(e.contains("pgbench-pipeline"), "{e}");
    }

    #[test]
    fn bad_input_names_the_bad_part() {
        for (args, needle) in [
            ("--clients 0", "--clients 0"),
            ("--clients x", "\"x\""),
            ("--runtime fast", "fast"),
            ("--workload tpcc", "tpcc"),
            ("--drivers pgx", "pgx"),
            ("--pool", "--pool needs a value"),
            ("--frobnicate", "--frobnicate"),
            ("--sslmode required", "\"required\""),
            ("--bouncer pooled", "\"pooled\""),
            ("--bouncer session --workload tpcb", "--bouncer"),
            ("--sslmode require --drivers ours,sqlx", "sqlx"),
        ] {
            let e = parse(args).err().unwrap_or_default();
            assert!(e.contains(needle), "{args}: {e}");
        }
    }
}
