//! Cleaning up clusters whose test process is gone.
//!
//! Rust's test harness never drops statics, and a killed process drops nothing, so each cluster
//! gets a detached shell watching the test pid. A sweep at start-up is the second line of defence
//! (reaper killed too, machine rebooted mid-run).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use crate::sys::{self, Account};

/// Dir-name prefixes owned by the harness, each followed by `<owner pid>-`; the data dir is `data/`.
pub(crate) const CLUSTER_PREFIX: &str = "psqlpool-cluster-";
pub(crate) const TEMPLATE_BUILD_PREFIX: &str = "psqlpool-pgtemplate-build-";

/// Polls the owner every 200 ms; once it is gone: immediate shutdown (as `postgres` via runuser when
/// root, since pg_ctl refuses root), then, if a postmaster of this data dir survives, SIGQUIT
/// (what `-m immediate` sends) and SIGKILL; then the directory goes.
const REAPER_SCRIPT: &str = r#"
owner=$1; dir=$2; data=$3; pg_ctl=$4; as_user=$5
while kill -0 "$owner" 2>/dev/null; do sleep 0.2; done
if [ -f "$data/postmaster.pid" ]; then
  if [ -n "$as_user" ]; then
    runuser -u "$as_user" -- "$pg_ctl" -D "$data" stop -m immediate -w -t 20 >/dev/null 2>&1
  else
    "$pg_ctl" -D "$data" stop -m immediate -w -t 20 >/dev/null 2>&1
  fi
  pm=$(head -n 1 "$data/postmaster.pid" 2>/dev/null)
  if [ -n "$pm" ] && tr '\0' ' ' < "/proc/$pm/cmdline" 2>/dev/null | grep -qF -- "$data"; then
    kill -QUIT "$pm" 2>/dev/null
    n=0
    while kill -0 "$pm" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done
    kill -KILL "$pm" 2>/dev/null
  fi
fi
rm -rf "$dir"
"#;

/// Starts the detached reaper for the cluster in `dir` (data dir `data`), owned by this process.
/// It runs in a process group of its own so Ctrl-C on the test run does not kill it, with all
/// stdio closed so it never holds a pipe of `cargo test` open.
pub(crate) fn spawn_reaper(dir: &Path, data: &Path, pg_ctl: &Path, account: Option<Account>) {
    let as_user = if account.is_some() { "postgres" } else { "" };
    let spawned = Command::new("sh")
        .arg("-c")
        .arg(REAPER_SCRIPT)
        .arg("psqlpool-reaper")
        .arg(std::process::id().to_string())
        .arg(dir)
        .arg(data)
        .arg(pg_ctl)
        .arg(as_user)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    // Dropping the Child does not kill or wait for it: it outlives us by design.
    if let Err(e) = spawned {
        panic!("could not spawn the cluster reaper (sh): {e}");
    }
}

/// Removes harness directories in `tmp` whose owner process is dead (and that are older than a
/// few seconds, so a directory being set up right now is never touched), stopping any postmaster
/// still running on them first.
pub(crate) fn sweep_leftovers(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name
            .strip_prefix(CLUSTER_PREFIX)
            .or_else(|| name.strip_prefix(TEMPLATE_BUILD_PREFIX))
        else {
            continue;
        };
        let Some(owner) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if owner == std::process::id() || sys::pid_alive(owner) {
            continue;
        }
        let old_enough = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age > Duration::from_secs(10));
        if !old_enough {
            continue;
        }
        let dir = entry.path();
        stop_postmaster_of(&dir.join("data"));
        // Best effort: another sweeper or the reaper may be removing it at the same time.
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Stops the postmaster recorded in `data/postmaster.pid`, if it is alive and really serves `data`
/// (pids are reused, so the command line is checked before signalling).
fn stop_postmaster_of(data: &Path) {
    let Some(pid) = std::fs::read_to_string(data.join("postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next()?.trim().parse::<u32>().ok())
    else {
        return;
    };
    let serves_data = std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .zip(data.to_str())
        .is_some_and(|(cmdline, data)| cmdline.contains(data));
    if !serves_data {
        return;
    }
    signal(pid, "QUIT");
    for _ in 0..50 {
        if !sys::pid_alive(pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(pid, "KILL");
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}
