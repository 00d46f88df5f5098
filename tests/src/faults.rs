//! The server-side fault kit (tests/FAULTS.md, "Where the faults come from"): terminate, cancel
//! or crash one backend, freeze the postmaster or one backend, and per-role knobs, all on a
//! [`Cluster`].
//!
//! | fault | call | what clients see |
//! |---|---|---|
//! | terminate a session | [`Cluster::terminate`] | FATAL 57P01, then EOF |
//! | cancel a query | [`Cluster::cancel`] | ERROR 57014, the session lives on |
//! | crash a backend | [`Cluster::crash_backend`] | every session: WARNING 57P02 + EOF; 57P03 while recovering |
//! | hung server | [`Cluster::freeze`] | TCP connects, startup never answers; existing sessions work |
//! | hung backend | [`Cluster::freeze_backend`] | that session's queries never answer |
//! | per-role limits | [`Cluster::create_role`], [`Cluster::set_role_option`], [`Cluster::set_connection_limit`] | 53300, 57P05, read-only sessions, ... |
//!
//! Signals go through the `kill` program (std has no `kill(2)` without `unsafe` or a
//! dependency). Every pid is checked to be this cluster's postmaster or one of its children
//! before it is signalled, so a stale or wrong pid can never hit an unrelated process.
//! Guards undo their fault in `Drop` and never panic there, also while a test unwinds.

use std::marker::PhantomData;
use std::process::{Command, Stdio};

use crate::cluster::Cluster;
use crate::roles::{ADMIN_USER, quote_ident, quote_literal};
use crate::url;

/// Undoes a [`Cluster::freeze`] or [`Cluster::freeze_backend`] when dropped: sends `SIGCONT`.
///
/// Keep it in a local of the test: it borrows the cluster, so it is always dropped (the
/// process resumed) before the cluster itself, whose shutdown would otherwise hang on a stopped
/// postmaster. Dropping it twice is impossible; [`thaw`](Self::thaw) resumes early.
#[derive(Debug)]
#[must_use = "the process is resumed when the guard is dropped: keep it while it must stay frozen"]
pub struct FreezeGuard<'a> {
    pid: u32,
    _cluster: PhantomData<&'a Cluster>,
}

impl FreezeGuard<'_> {
    /// The stopped process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Resumes the process now (the same as dropping the guard).
    pub fn thaw(self) {}
}

impl Drop for FreezeGuard<'_> {
    fn drop(&mut self) {
        // Best effort and silent: a process that died meanwhile needs no resuming.
        let _ = signal_quietly(self.pid, "CONT");
    }
}

/// A login role created by [`Cluster::create_role`]; dropped on `Drop` after its sessions are
/// ended (`NOLOGIN`, `pg_terminate_backend`, `DROP OWNED`, `DROP ROLE`). Never panics in `Drop`.
#[derive(Debug)]
#[must_use = "the role is dropped with the guard"]
pub struct RoleGuard<'a> {
    cluster: &'a Cluster,
    name: String,
    password: String,
}

impl RoleGuard<'_> {
    /// The role name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The role's password as created (not updated by a later `ALTER ROLE ... PASSWORD`).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// A TCP URL for this role and `password` against the test database, every part
    /// percent-encoded: `postgresql://name:password@127.0.0.1:PORT/psqlpool_test`.
    pub fn url_with_password(&self, password: &str) -> String {
        url::tcp_url(
            &self.name,
            Some(password),
            self.cluster.host(),
            self.cluster.port(),
            self.cluster.db_name(),
        )
    }

    /// [`url_with_password`](Self::url_with_password) with the role's original password.
    pub fn url(&self) -> String {
        self.url_with_password(&self.password)
    }
}

impl Drop for RoleGuard<'_> {
    fn drop(&mut self) {
        let role = quote_ident(&self.name);
        let lit = quote_literal(&self.name);
        // NOLOGIN first, so a pool still running cannot log back in between the terminate and
        // the drop. Errors are ignored: Drop must not panic, and a leftover role only costs a name.
        let sql = format!(
            "ALTER ROLE {role} NOLOGIN;\n\
             SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity \
             WHERE usename = {lit};\n\
             DROP OWNED BY {role};\n\
             DROP ROLE {role};\n"
        );
        let _ = self.cluster.psql_with(&admin_conninfo(self.cluster), &sql);
    }
}

/// The superuser's conninfo: the trusted Unix socket on a throwaway cluster (no password
/// needed, works while TCP is blocked), `DATABASE_URL` on an external server.
fn admin_conninfo(cluster: &Cluster) -> String {
    if cluster.is_external() {
        cluster.admin_url()
    } else {
        cluster.socket_url(crate::Role::Postgres)
    }
}

/// What `kill -SIG pid` printed when it failed, or `Ok`.
fn signal_quietly(pid: u32, sig: &str) -> Result<(), String> {
    let out = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("could not run kill: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// The parent pid of `pid` from `/proc/<pid>/stat`, `None` if it is gone.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`; comm may contain spaces and parentheses: split at the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// `ps`-style command line of a process (NUL separators turned into spaces), or "" if gone.
fn cmdline_of(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

/// A TCP socket state as the kernel reports it in `/proc/net/tcp` (`st` column).
const TCP_ESTABLISHED: &str = "01";

fn check_identifier(kind: &str, s: &str) {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
    assert!(ok, "{kind} {s:?} must be 1-63 characters of [A-Za-z0-9_.]");
}

impl Cluster {
    /// `pg_terminate_backend(pid, 5000)` as the superuser: the session gets FATAL 57P01 and its
    /// socket is closed; the call returns once the backend has exited (at most 5 s). Returns what
    /// the server returned: false if there was no such backend or it did not exit in time.
    ///
    /// # Panics
    /// When psql cannot run the statement.
    pub fn terminate(&self, pid: i32) -> bool {
        self.psql(&format!("SELECT pg_terminate_backend({pid}, 5000)")) == "t"
    }

    /// `pg_cancel_backend(pid)` as the superuser: the running query fails with 57014, the
    /// session stays. Returns whether the signal was sent.
    ///
    /// # Panics
    /// When psql cannot run the statement.
    pub fn cancel(&self, pid: i32) -> bool {
        self.psql(&format!("SELECT pg_cancel_backend({pid})")) == "t"
    }

    /// `kill -9` of one backend: the postmaster then resets every session (WARNING 57P02 + EOF)
    /// and runs crash recovery; new connections get FATAL 57P03 until it is done.
    /// Throwaway cluster only.
    ///
    /// # Panics
    /// When `pid` is not a child of this cluster's postmaster, or the signal fails.
    pub fn crash_backend(&self, pid: i32) {
        let pid = self.checked_backend(pid);
        signal_quietly(pid, "KILL")
            .unwrap_or_else(|e| panic!("kill -9 of backend {pid} failed: {e}"));
    }

    /// [`crash_backend`](Self::crash_backend) for a pid that may be gone already (a load test
    /// racing the postmaster's own reset): false, and nothing signalled, if `pid` is not (or no
    /// longer) a child of this cluster's postmaster or the signal failed.
    pub fn try_crash_backend(&self, pid: i32) -> bool {
        let (Some(postmaster), Ok(pid)) = (self.pid_of_postmaster(), u32::try_from(pid)) else {
            return false;
        };
        parent_of(pid) == Some(postmaster) && signal_quietly(pid, "KILL").is_ok()
    }

    /// Stops the postmaster (`SIGSTOP`) until the guard is dropped: new TCP connections are
    /// accepted by the kernel (listen backlog) but startup is never answered; existing sessions
    /// keep working. Throwaway cluster only.
    ///
    /// # Panics
    /// When the server is not running or the signal fails.
    pub fn freeze(&self) -> FreezeGuard<'_> {
        let pid = self
            .pid_of_postmaster()
            .unwrap_or_else(|| panic!("freeze: the server is not running"));
        self.stop_process(pid)
    }

    /// Stops one backend (`SIGSTOP`) until the guard is dropped: its kernel still ACKs, so the
    /// client sees a query that never answers (keepalives do not fire). Throwaway cluster only.
    ///
    /// # Panics
    /// When `pid` is not a child of this cluster's postmaster, or the signal fails.
    pub fn freeze_backend(&self, pid: i32) -> FreezeGuard<'_> {
        let pid = self.checked_backend(pid);
        self.stop_process(pid)
    }

    fn stop_process(&self, pid: u32) -> FreezeGuard<'_> {
        // The guard exists before the signal: should anything below panic, Drop still resumes.
        let guard = FreezeGuard {
            pid,
            _cluster: PhantomData,
        };
        signal_quietly(pid, "STOP").unwrap_or_else(|e| panic!("kill -STOP {pid} failed: {e}"));
        guard
    }

    /// `pid` as a u32 after checking it is a live child of this cluster's postmaster.
    fn checked_backend(&self, pid: i32) -> u32 {
        let postmaster = self
            .pid_of_postmaster()
            .unwrap_or_else(|| panic!("the server is not running"));
        let pid = u32::try_from(pid).unwrap_or_else(|_| panic!("invalid pid {pid}"));
        assert_eq!(
            parent_of(pid),
            Some(postmaster),
            "pid {pid} is not a backend of this cluster (postmaster {postmaster}): {:?}",
            cmdline_of(pid)
        );
        pid
    }

    /// The pids of the postmaster's children whose process title names `user` as the session
    /// user (`postgres: <user> <db> <client> ...`). Read from `/proc`, no SQL: works while the
    /// server is in crash recovery or frozen. Throwaway cluster only.
    pub fn backend_pids_of_user(&self, user: &str) -> Vec<i32> {
        let Some(postmaster) = self.pid_of_postmaster() else {
            return Vec::new();
        };
        let prefix = format!("postgres: {user} ");
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        let mut pids: Vec<i32> = dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| parent_of(pid) == Some(postmaster))
            .filter(|&pid| cmdline_of(pid).starts_with(&prefix))
            .filter_map(|pid| i32::try_from(pid).ok())
            .collect();
        pids.sort_unstable();
        pids
    }

    /// The pids in `pg_stat_activity` whose `application_name` is `app`, optionally only those in
    /// `state` (`idle`, `active`, `idle in transaction`), via psql as the superuser.
    ///
    /// # Panics
    /// When psql fails.
    pub fn backend_pids_of_app(&self, app: &str, state: Option<&str>) -> Vec<i32> {
        let mut sql = format!(
            "SELECT pid FROM pg_stat_activity WHERE application_name = {}",
            quote_literal(app)
        );
        if let Some(state) = state {
            sql.push_str(&format!(" AND state = {}", quote_literal(state)));
        }
        sql.push_str(" ORDER BY pid");
        self.psql(&sql)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// How many TCP connections to this cluster's port are ESTABLISHED on the server side,
    /// from `/proc/net/tcp{,6}`. A client that gave up on a half-open connection (timed out
    /// during startup) and closed its socket leaves the server side in CLOSE_WAIT, not here; a
    /// leaked one stays ESTABLISHED. Throwaway cluster only (an external server may be remote).
    pub fn established_connections(&self) -> usize {
        let port = format!("{:04X}", self.port());
        let mut n = 0;
        for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let Ok(table) = std::fs::read_to_string(file) else {
                continue;
            };
            // `sl local_address rem_address st ...`, addresses as HEX_IP:HEX_PORT.
            for line in table.lines().skip(1) {
                let cols: Vec<&str> = line.split_whitespace().collect();
                let (Some(local), Some(state)) = (cols.get(1), cols.get(3)) else {
                    continue;
                };
                if local.rsplit(':').next() == Some(port.as_str()) && *state == TCP_ESTABLISHED {
                    n += 1;
                }
            }
        }
        n
    }

    /// Creates a login role with `password` (SCRAM: the cluster's catch-all `pg_hba.conf` lines
    /// use `scram-sha-256`), allowed to connect to the test database. The guard ends its
    /// sessions and drops it.
    ///
    /// # Panics
    /// When the name is not a plain identifier or psql fails.
    pub fn create_role(&self, name: &str, password: &str) -> RoleGuard<'_> {
        check_identifier("role name", name);
        let guard = RoleGuard {
            cluster: self,
            name: name.to_string(),
            password: password.to_string(),
        };
        self.admin_psql(&format!(
            "SET password_encryption = 'scram-sha-256';\n\
             CREATE ROLE {} LOGIN PASSWORD {};",
            quote_ident(name),
            quote_literal(password)
        ));
        guard
    }

    /// `ALTER ROLE role SET name = 'value'`: applies to the role's sessions started afterwards,
    /// e.g. `set_role_option(r, "idle_session_timeout", "200ms")` or
    /// `set_role_option(r, "default_transaction_read_only", "on")`.
    ///
    /// # Panics
    /// When `name` is not a plain parameter name or psql fails.
    pub fn set_role_option(&self, role: &str, name: &str, value: &str) {
        check_identifier("parameter name", name);
        self.admin_psql(&format!(
            "ALTER ROLE {} SET {name} = {}",
            quote_ident(role),
            quote_literal(value)
        ));
    }

    /// `ALTER ROLE role RESET name`.
    ///
    /// # Panics
    /// When `name` is not a plain parameter name or psql fails.
    pub fn reset_role_option(&self, role: &str, name: &str) {
        check_identifier("parameter name", name);
        self.admin_psql(&format!("ALTER ROLE {} RESET {name}", quote_ident(role)));
    }

    /// `ALTER ROLE role CONNECTION LIMIT n` (`-1`: no limit). Going over it gives FATAL 53300
    /// `too many connections for role`.
    ///
    /// # Panics
    /// When psql fails.
    pub fn set_connection_limit(&self, role: &str, n: i32) {
        self.admin_psql(&format!(
            "ALTER ROLE {} CONNECTION LIMIT {n}",
            quote_ident(role)
        ));
    }

    /// `ALTER ROLE role PASSWORD 'password'` (SCRAM verifier).
    ///
    /// # Panics
    /// When psql fails.
    pub fn set_role_password(&self, role: &str, password: &str) {
        self.admin_psql(&format!(
            "SET password_encryption = 'scram-sha-256';\n\
             ALTER ROLE {} PASSWORD {};",
            quote_ident(role),
            quote_literal(password)
        ));
    }

    fn admin_psql(&self, sql: &str) -> String {
        self.psql_with(&admin_conninfo(self), sql)
            .unwrap_or_else(|e| panic!("psql as {ADMIN_USER} failed on:\n{sql}\n--- stderr\n{e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_checked() {
        check_identifier("x", "idle_session_timeout");
        check_identifier("x", "app.setting");
        for bad in ["", "a b", "x;DROP", "a'b", &"x".repeat(64)] {
            let r = std::panic::catch_unwind(|| check_identifier("x", bad));
            assert!(r.is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn parent_of_this_process_is_known_and_of_a_missing_pid_is_none() {
        let me = std::process::id();
        assert!(parent_of(me).is_some_and(|p| p != me));
        assert_eq!(parent_of(u32::MAX - 1), None);
        assert!(cmdline_of(me).contains("pg_harness") || !cmdline_of(me).is_empty());
    }

    #[test]
    fn a_guard_for_a_vanished_pid_drops_quietly() {
        // Resuming a process that no longer exists must not panic.
        drop(FreezeGuard {
            pid: u32::MAX - 1,
            _cluster: PhantomData,
        });
    }
}
