//! Which server a load runs against: the embedded throwaway cluster of `pg_harness` by default,
//! or `DATABASE_URL`.

use std::path::PathBuf;

use pg_harness::{Bouncer, Cluster, PoolMode, Role, TRUST_USER};

/// A server and how to reach it.
#[derive(Debug)]
pub struct Target {
    /// libpq-style URL every driver (and pgbench) connects with.
    pub url: String,
    /// The server itself, for the schema: the same as `url` without TLS or PgBouncer.
    pub admin_url: String,
    /// The PgBouncer in front (`--bouncer`), stopped when the target is dropped.
    pub bouncer: Option<Bouncer>,
    /// A throwaway cluster with `ssl = on` (`--sslmode` without `DATABASE_URL`), stopped when the
    /// target is dropped.
    pub tls_cluster: Option<Cluster>,
    /// Where pgbench may be found (the throwaway cluster's bin dir), if known.
    pub bin_dir: Option<PathBuf>,
    /// Human description for reports (no password).
    pub describe: String,
}

/// The throwaway cluster (superuser; TCP with SCRAM, or the Unix socket, where it is trusted), or
/// `DATABASE_URL` when set. With `DATABASE_URL`, `unix` is refused unless the URL itself names a
/// socket directory (`host=/path`), because the load cannot invent a socket path.
pub fn resolve(unix: bool) -> Result<Target, String> {
    let cluster = pg_harness::cluster();
    if cluster.is_external() {
        let url = cluster.admin_url();
        if unix && !names_socket(&url) {
            return Err(
                "--unix with DATABASE_URL: put the socket directory in the URL itself \
                 (postgresql://user@/db?host=/var/run/postgresql) and drop --unix"
                    .into(),
            );
        }
        return Ok(Target {
            describe: format!("DATABASE_URL ({}:{})", cluster.host(), cluster.port()),
            admin_url: url.clone(),
            url,
            bouncer: None,
            tls_cluster: None,
            bin_dir: pg_harness::try_find_bin_dir(),
        });
    }
    let (url, describe) = if unix {
        (
            cluster.socket_url(Role::Postgres),
            format!(
                "throwaway PostgreSQL, Unix socket {}/.s.PGSQL.{}",
                cluster.socket_dir().display(),
                cluster.port()
            ),
        )
    } else {
        (
            cluster.admin_url(),
            format!(
                "throwaway PostgreSQL, TCP {}:{}",
                cluster.host(),
                cluster.port()
            ),
        )
    };
    Ok(Target {
        admin_url: url.clone(),
        url,
        bouncer: None,
        tls_cluster: None,
        bin_dir: Some(cluster.bin_dir().to_path_buf()),
        describe,
    })
}

/// [`resolve`], then TLS (`sslmode`, other than `disable`) or a PgBouncer in `mode` with
/// `pool_size` server connections in front. Without `DATABASE_URL`, TLS runs against a second
/// throwaway cluster with `ssl = on` and a self-signed certificate (SCRAM over TCP as usual).
pub fn resolve_with(
    unix: bool,
    sslmode: Option<&str>,
    bouncer: Option<(PoolMode, usize)>,
) -> Result<Target, String> {
    let mut target = resolve(unix)?;
    let sslmode = sslmode.filter(|m| *m != "disable");
    if sslmode.is_some() && (unix || bouncer.is_some()) {
        return Err(
            "--sslmode goes with TCP straight to the server (no --unix, no --bouncer)".into(),
        );
    }
    if let Some(mode) = sslmode {
        if !pg_harness::cluster().is_external() {
            let tls = Cluster::start_throwaway_with(|data| {
                if let Err(e) = crate::tls::prepare_server(data) {
                    panic!("{e}");
                }
            });
            target.admin_url = tls.admin_url();
            target.url = tls.admin_url();
            target.describe = format!(
                "throwaway PostgreSQL with ssl = on, TCP {}:{}",
                tls.host(),
                tls.port()
            );
            target.bin_dir = Some(tls.bin_dir().to_path_buf());
            target.tls_cluster = Some(tls);
        }
        target.url = with_param(&target.url, "sslmode", mode);
        target.describe.push_str(&format!(", sslmode={mode}"));
    }
    if let Some((mode, size)) = bouncer {
        let cluster = pg_harness::cluster();
        if cluster.is_external() || unix {
            return Err("--bouncer starts PgBouncer in front of the embedded cluster:                         not with DATABASE_URL or --unix"
                .into());
        }
        let b = Bouncer::start(cluster, mode, size);
        target.url = b.url();
        target.describe = format!(
            "PgBouncer ({mode:?} mode, default_pool_size {size}) on 127.0.0.1:{} in front of {}",
            b.port(),
            target.describe
        );
        target.bouncer = Some(b);
    }
    Ok(target)
}

/// The SQL that lets PgBouncer's login role (trusted, no password) run the loads.
pub fn bouncer_grants() -> String {
    format!(
        "GRANT SELECT, INSERT, UPDATE ON pgbench_accounts, pgbench_branches, pgbench_tellers, \
         pgbench_history TO {TRUST_USER}"
    )
}

/// `url` with `key=value` added: a query parameter of a URL, or a pair of a key=value string.
fn with_param(url: &str, key: &str, value: &str) -> String {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}{key}={value}")
    } else {
        format!("{url} {key}={value}")
    }
}

fn names_socket(url: &str) -> bool {
    url.contains("host=/") || url.contains("host=%2F") || url.contains("host=%2f")
}

/// `pgbench`: in the PostgreSQL bin dir, else on `PATH`.
pub fn find_pgbench(bin_dir: Option<&std::path::Path>) -> Option<PathBuf> {
    if let Some(p) = bin_dir.map(|d| d.join("pgbench")).filter(|p| p.is_file()) {
        return Some(p);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("pgbench"))
            .find(|p| p.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_added_in_either_syntax() {
        assert_eq!(
            with_param("postgresql://u@h/db", "sslmode", "require"),
            "postgresql://u@h/db?sslmode=require"
        );
        assert_eq!(
            with_param("postgresql://u@/db?host=/s", "sslmode", "require"),
            "postgresql://u@/db?host=/s&sslmode=require"
        );
        assert_eq!(
            with_param("host=h dbname=d", "sslmode", "require"),
            "host=h dbname=d sslmode=require"
        );
    }

    #[test]
    fn socket_urls_are_recognised() {
        assert!(names_socket("postgresql://u@/db?host=%2Ftmp%2Fs&port=5"));
        assert!(names_socket("host=/var/run/postgresql dbname=x"));
        assert!(!names_socket("postgresql://u:p@127.0.0.1:5432/db"));
    }
}
