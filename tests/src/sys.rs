//! OS plumbing with std only: effective uid, the `postgres` account, process liveness, commands.

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// uid and gid to run the server as (initdb and postgres refuse to run as root).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Account {
    pub uid: u32,
    pub gid: u32,
}

/// The effective uid of this process, read from `/proc/self/status` (std has no `geteuid`),
/// falling back to `id -u`.
pub(crate) fn euid() -> u32 {
    let from_proc = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Uid:"))?;
            // Uid: real effective saved fs
            line.split_whitespace().nth(2)?.parse().ok()
        });
    from_proc
        .or_else(|| {
            let out = Command::new("id").arg("-u").output().ok()?;
            String::from_utf8_lossy(&out.stdout).trim().parse().ok()
        })
        .unwrap_or_else(|| panic!("cannot determine the effective uid (no /proc, no `id`)"))
}

/// `Some(postgres account)` when running as root, `None` otherwise (run as ourselves).
pub(crate) fn server_account() -> Option<Account> {
    if euid() != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd")
        .unwrap_or_else(|e| panic!("running as root, and reading /etc/passwd failed: {e}"));
    let account = passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        if f.next()? != "postgres" {
            return None;
        }
        let _password = f.next()?;
        let uid = f.next()?.parse().ok()?;
        let gid = f.next()?.parse().ok()?;
        Some(Account { uid, gid })
    });
    Some(account.unwrap_or_else(|| {
        panic!(
            "running as root: initdb refuses root, so the server runs as the `postgres` OS user, \
             which does not exist. `apt-get install -y postgresql` creates it \
             (or `useradd --system postgres`)"
        )
    }))
}

/// Whether a process with this pid exists (zombies count: their parent has not reaped them yet).
pub(crate) fn pid_alive(pid: u32) -> bool {
    if Path::new("/proc/self").exists() {
        return Path::new("/proc").join(pid.to_string()).exists();
    }
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A command for a PostgreSQL program: run as `account` when given, from `/` (the test's cwd may
/// not be readable by `postgres`), stdin closed, and with no inherited `PG*` variables so the
/// tester's own PGHOST/PGPORT/PGPASSWORD cannot redirect or confuse it.
pub(crate) fn pg_command(program: impl AsRef<OsStr>, account: Option<Account>) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir("/").stdin(Stdio::null());
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("PG")) {
            cmd.env_remove(key);
        }
    }
    cmd.env("PGCLIENTENCODING", "UTF8")
        .env("PGCONNECT_TIMEOUT", "10")
        .env("LC_ALL", "C");
    if let Some(a) = account {
        cmd.uid(a.uid).gid(a.gid);
    }
    cmd
}

/// Runs `cmd` to completion and returns its output, panicking (with both streams) if it could not
/// start or exited non-zero. `what` names the step for the message.
pub(crate) fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("{what}: could not run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{what} failed ({}): {cmd:?}\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Recursively hands `path` to `account` (`chown -R`); no-op when not root.
pub(crate) fn chown_tree(path: &Path, account: Option<Account>) {
    let Some(a) = account else { return };
    run(
        Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", a.uid, a.gid))
            .arg(path),
        "chown",
    );
}

/// A random-ish 64-bit value from std's per-process hasher keys (no rand dependency needed:
/// it only has to make names unique).
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// FNV-1a, for the template cache key (stable across runs, unlike `DefaultHasher`).
pub(crate) fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.iter().chain(std::iter::once(&0xffu8)) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_huge_pid_is_not() {
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(u32::MAX - 1));
    }

    #[test]
    fn fnv_is_stable_and_separates_parts() {
        assert_eq!(fnv1a(&[b"ab", b"c"]), fnv1a(&[b"ab", b"c"]));
        assert_ne!(fnv1a(&[b"ab", b"c"]), fnv1a(&[b"a", b"bc"]));
    }

    #[test]
    fn random_values_differ() {
        assert_ne!(random_u64(), random_u64());
    }
}
