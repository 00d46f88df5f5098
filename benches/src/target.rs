//! Which server a load runs against: the embedded throwaway cluster of `pg_harness` by default,
//! or `DATABASE_URL`.

use std::path::PathBuf;

use pg_harness::Role;

/// A server and how to reach it.
#[derive(Debug, Clone)]
pub struct Target {
    /// libpq-style URL every driver (and pgbench) connects with.
    pub url: String,
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
            url,
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
        url,
        bin_dir: Some(cluster.bin_dir().to_path_buf()),
        describe,
    })
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
    fn socket_urls_are_recognised() {
        assert!(names_socket("postgresql://u@/db?host=%2Ftmp%2Fs&port=5"));
        assert!(names_socket("host=/var/run/postgresql dbname=x"));
        assert!(!names_socket("postgresql://u:p@127.0.0.1:5432/db"));
    }
}
