//! `pg_harness`: a throwaway PostgreSQL for psqlpool's integration tests, std only.
//!
//! ```no_run
//! use pg_harness::{cluster, Role};
//!
//! let pg = cluster(); // started once per test binary, gone when the process ends
//! if !pg.require_roles() {
//!     return; // DATABASE_URL points at a server without our roles
//! }
//! let url = pg.url(Role::Scram); // postgresql://scram_user:scram_pass@127.0.0.1:PORT/psqlpool_test
//! let table = pg.unique_name("orders");
//! pg.psql(&format!("CREATE TABLE {table} (id int)"));
//! # let _ = url;
//! ```
//!
//! | piece | how |
//! |---|---|
//! | binaries | `PG_BINDIR`, `pg_config --bindir`, `initdb` on `PATH`, highest `/usr/lib/postgresql/*/bin` |
//! | template | initdb + roles + `pg_hba.conf` once per machine, in `$TMPDIR/psqlpool-pgtemplate-<major>-<hash>` (atomic rename) |
//! | cluster | `cp -a` of the template into `$TMPDIR/psqlpool-cluster-<pid>-<rand>`, free port on 127.0.0.1, private socket dir, `pg_ctl -w start` |
//! | root | initdb refuses root: the server runs as the `postgres` OS user |
//! | cleanup | a detached reaper shell waits for the test pid to vanish, stops the server (immediate) and removes the dir; a sweep at start-up removes what dead processes left |
//! | pgbouncer | [`Bouncer::start`]: a throwaway PgBouncer (config written at test time, trust auth, free port) in front of a cluster, as `postgres` when root |
//! | standby | [`Standby::start`]: `pg_basebackup -R` from a throwaway primary, started as a hot standby on its own port |
//! | faults | [`Cluster::terminate`], `cancel`, `crash_backend`, `freeze` / `freeze_backend` ([`FreezeGuard`] resumes on drop), [`Cluster::create_role`] ([`RoleGuard`]) and per-role knobs |
//! | seeded draws | [`Rng`]: xorshift64*, one reproducible stream per seed, for test schedules and bench workloads |
//! | override | `DATABASE_URL` set: [`cluster`] returns an external handle; [`Cluster::require_roles`] skips tests needing our roles or server control |

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod bins;
mod bouncer;
mod cluster;
mod faults;
mod reaper;
mod rng;
mod roles;
mod standby;
mod sys;
mod url;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

pub use bins::{find_bin_dir, find_psql, try_find_bin_dir};
pub use bouncer::{Bouncer, PoolMode, find_pgbouncer};
pub use cluster::{Cluster, ShutdownMode};
pub use faults::{FreezeGuard, RoleGuard};
pub use rng::Rng;
pub use roles::{
    ADMIN_PASS, ADMIN_USER, DB_NAME, MD5_PASS, MD5_USER, PASS_PASS, PASS_USER, Role, SASL_PASS,
    SASL_PASS_PREPARED, SASL_USER, SCRAM_PASS, SCRAM_USER, TRUST_USER,
};
pub use standby::Standby;
pub use url::percent_encode;

/// The cluster shared by every test of this process: started on first use (about a second once
/// the per-machine template exists, a few seconds the very first time), or the server named by
/// `DATABASE_URL`. Stopped and removed by the reaper when the process exits, however it exits.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(Cluster::from_env)
}

/// A fresh SQL identifier for a per-test table, database or role: `<prefix>_<pid>_<n>_<random>`,
/// lowercase, at most 63 bytes (NAMEDATALEN - 1), safe unquoted. Unique across the tests of one
/// process and, through pid and randomness, across processes sharing a server.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut clean: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if !clean.starts_with(|c: char| c.is_ascii_lowercase() || c == '_') {
        clean.insert(0, 't');
    }
    let suffix = format!(
        "_{}_{n}_{:08x}",
        std::process::id(),
        sys::random_u64() & 0xffff_ffff
    );
    clean.truncate(63usize.saturating_sub(suffix.len()));
    clean + &suffix
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_are_valid_identifiers_and_distinct() {
        let a = unique_name("Orders-2024");
        let b = unique_name("Orders-2024");
        assert_ne!(a, b);
        assert!(a.starts_with("orders_2024_"), "{a}");
        for name in [
            &a,
            &b,
            &unique_name(&"x".repeat(200)),
            &unique_name("9lives"),
        ] {
            assert!(name.len() <= 63, "{name}");
            assert!(
                name.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'),
                "{name}"
            );
            assert!(!name.starts_with(|c: char| c.is_ascii_digit()), "{name}");
        }
        assert_eq!(unique_name("").chars().next(), Some('t'));
    }
}
