//! The `pgbench -M prepared` (or `-M extended`) run of a comparison: a child process, its per-transaction log parsed
//! into the same histogram as the in-process drivers, its CPU from `RUSAGE_CHILDREN`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::cpu;
use crate::hist::Snapshot;
use crate::workload::Workload;

/// What one pgbench run measured, over the same window as the in-process drivers.
#[derive(Debug, Clone)]
pub struct PgbenchRun {
    /// Latencies and count of the transactions that finished inside the measured window.
    pub window: Snapshot,
    /// CPU time of pgbench per transaction (whole run, warm-up included).
    pub cpu_per_txn: Option<Duration>,
}

/// How to run it.
#[derive(Debug, Clone)]
pub struct PgbenchArgs<'a> {
    /// The binary.
    pub pgbench: &'a Path,
    /// libpq URL (passed as the dbname argument, which libpq expands).
    pub url: &'a str,
    /// `-S` or the built-in `tpcb-like`.
    pub workload: Workload,
    /// `-c`.
    pub clients: usize,
    /// Whole seconds of warm-up before the window.
    pub warmup_secs: u64,
    /// Whole seconds of the measured window.
    pub seconds: u64,
    /// Let pgbench print its own `-P 1` progress lines on stderr.
    pub progress: bool,
    /// No named statements (`-M extended`, the unnamed statement), for a transaction pooler in
    /// front. The connect workload always uses them: `-M prepared` would add a round trip to
    /// every new connection.
    pub unnamed: bool,
    /// With a value N > 0 (select workload only): a custom script that sends N selects of
    /// random accounts between `\startpipeline` and `\endpipeline` (one Sync for all N), as the
    /// issue's pipelined pgbench reference does. Every logged transaction then counts as N
    /// statements with the pipeline's latency, so rates compare to one-statement drivers.
    pub pipeline: usize,
    /// The scale of the pgbench tables, written into the pipeline script: a custom script's
    /// `:scale` is 1 unless `-s` is given (pgbench detects the scale only for its built-in
    /// scripts), which would confine the script to the first 100 000 accounts.
    pub scale: i32,
}

/// The `\startpipeline` script of [`PgbenchArgs::pipeline`]: `depth` selects of random
/// accounts in one pipeline, drawn from all `100 000 × scale` of them as `pgbench -S` draws.
/// The scale is written in: pgbench sets a custom script's `:scale` to 1 unless `-s` is given
/// (it reads `pgbench_branches` only for its built-in scripts), and a reference confined to
/// the first 100 000 accounts reads a hotter, smaller index than the drivers it is compared with.
pub fn pipeline_script(depth: usize, scale: i32) -> String {
    let mut s = String::new();
    for i in 0..depth {
        s.push_str(&format!("\\set aid{i} random(1, 100000 * {scale})\n"));
    }
    s.push_str("\\startpipeline\n");
    for i in 0..depth {
        s.push_str(&format!(
            "SELECT abalance FROM pgbench_accounts WHERE aid = :aid{i};\n"
        ));
    }
    s.push_str("\\endpipeline\n");
    s
}

/// Runs pgbench for `warmup + seconds` and keeps the transactions that ended in the last `seconds`.
pub fn run(args: &PgbenchArgs<'_>) -> Result<PgbenchRun, String> {
    let dir = std::env::temp_dir().join(format!(
        "psqlpool-pgbench-log-{}-{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let result = run_in(args, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_in(args: &PgbenchArgs<'_>, dir: &Path) -> Result<PgbenchRun, String> {
    // pgbench wants at most one thread per client; 2 threads match the 2-core machine.
    let threads = args.clients.clamp(1, 2);
    let total = args.warmup_secs + args.seconds;
    let mut cmd = Command::new(args.pgbench);
    let unnamed = args.unnamed || args.workload == Workload::Connect;
    cmd.args(["-n", "-M", if unnamed { "extended" } else { "prepared" }]);
    match args.workload {
        Workload::Select if args.pipeline > 0 => {
            let script = dir.join("pipeline.sql");
            std::fs::write(&script, pipeline_script(args.pipeline, args.scale))
                .map_err(|e| format!("writing {}: {e}", script.display()))?;
            cmd.arg("-f").arg(script)
        }
        Workload::Select => cmd.arg("-S"),
        Workload::Tpcb => cmd.args(["-b", "tpcb-like"]),
        Workload::Connect => cmd.args(["-S", "-C"]),
    };
    cmd.arg("-c")
        .arg(args.clients.to_string())
        .arg("-j")
        .arg(threads.to_string())
        .arg("-T")
        .arg(total.to_string())
        .arg("-l")
        .arg("--log-prefix")
        .arg(dir.join("pgb"));
    if args.progress {
        cmd.args(["-P", "1"]);
    }
    cmd.arg(args.url)
        .env_remove("PGOPTIONS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(if args.progress {
            Stdio::inherit()
        } else {
            Stdio::piped()
        });
    let cpu_before = cpu::children_cpu();
    let out = cmd
        .output()
        .map_err(|e| format!("running {}: {e}", args.pgbench.display()))?;
    let cpu = cpu::children_cpu().saturating_sub(cpu_before);
    if !out.status.success() {
        return Err(format!(
            "pgbench failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| format!("reading pgbench logs: {e}"))? {
        let path: PathBuf = entry.map_err(|e| e.to_string())?.path();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        lines.extend(text.lines().filter_map(parse_line));
    }
    let per_txn = args.pipeline.max(1);
    if per_txn > 1 {
        // One logged pipeline is `per_txn` statements, each with the pipeline's latency.
        lines = lines
            .into_iter()
            .flat_map(|l| std::iter::repeat_n(l, per_txn))
            .collect();
    }
    let window = window(&lines, args.warmup_secs, args.seconds);
    let cpu_per_txn = u32::try_from(lines.len())
        .ok()
        .filter(|&n| n > 0)
        .map(|n| cpu / n);
    Ok(PgbenchRun {
        window,
        cpu_per_txn,
    })
}

/// One transaction from pgbench's log: (`completion time` in µs since the epoch, latency µs).
/// Format: `client_id transaction_no time script_no time_epoch time_us [...]`.
fn parse_line(line: &str) -> Option<(u64, u64)> {
    let mut f = line.split_ascii_whitespace();
    let _client = f.next()?;
    let _txn = f.next()?;
    let latency: u64 = f.next()?.parse().ok()?; // "skipped" under --rate: not a number, dropped
    let _script = f.next()?;
    let epoch: u64 = f.next()?.parse().ok()?;
    let micros: u64 = f.next()?.parse().ok()?;
    Some((epoch.checked_mul(1_000_000)?.checked_add(micros)?, latency))
}

/// The transactions that ended in `[first + warmup, first + warmup + seconds)`.
fn window(lines: &[(u64, u64)], warmup_secs: u64, seconds: u64) -> Snapshot {
    let mut snap = Snapshot::default();
    let Some(first) = lines.iter().map(|(end, _)| *end).min() else {
        return snap;
    };
    let start = first + warmup_secs * 1_000_000;
    let stop = start + seconds * 1_000_000;
    for &(end, latency) in lines {
        if (start..stop).contains(&end) {
            snap.add_micros(latency);
        }
    }
    snap
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_parse_and_window() {
        assert_eq!(
            parse_line("0 199 2241 0 1175850569 537687"),
            Some((1_175_850_569_537_687, 2241))
        );
        assert_eq!(parse_line("3 12 skipped 0 1175850569 537687"), None);
        assert_eq!(parse_line("garbage"), None);
        let base = 1_700_000_000_000_000u64;
        let lines: Vec<_> = (0..30u64).map(|i| (base + i * 500_000, 100 + i)).collect();
        // first = base; window [base+2s, base+12s): i = 4..24.
        let w = window(&lines, 2, 10);
        assert_eq!(w.txns, 20);
        assert_eq!(window(&[], 1, 1).txns, 0);
    }

    #[test]
    fn pipeline_script_sends_depth_selects_in_one_pipeline() {
        let s = pipeline_script(3, 10);
        assert_eq!(s.matches("\\set aid").count(), 3);
        // Every account of the scale-10 tables, not only the first 100 000 (`:scale` is 1 in
        // a custom script).
        assert_eq!(s.matches("random(1, 100000 * 10)").count(), 3);
        assert!(!s.contains(":scale"));
        assert_eq!(s.matches("SELECT abalance").count(), 3);
        let start = s.find("\\startpipeline").unwrap();
        let end = s.find("\\endpipeline").unwrap();
        assert!(start < s.find("SELECT").unwrap() && s.rfind("SELECT").unwrap() < end);
    }
}
