//! Finding the PostgreSQL server binaries.

use std::path::{Path, PathBuf};
use std::process::Command;

const INSTALL_HINT: &str = "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found. \
     Install them with `apt-get install -y postgresql` (or run .ci/run, which does), \
     or point PG_BINDIR at the directory holding initdb, \
     or set DATABASE_URL to use an existing server";

/// The directory holding `initdb`, `pg_ctl` and `postgres`, searched in this order:
/// `PG_BINDIR`, `pg_config --bindir`, `initdb` on `PATH` (symlinks resolved), then the highest
/// `/usr/lib/postgresql/<version>/bin`.
///
/// # Panics
/// When none is found, with a message saying what to install.
pub fn find_bin_dir() -> PathBuf {
    try_find_bin_dir().unwrap_or_else(|| panic!("{INSTALL_HINT}"))
}

/// [`find_bin_dir`] without the panic.
pub fn try_find_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BINDIR") {
        let dir = PathBuf::from(dir);
        assert!(
            has_server_bins(&dir),
            "PG_BINDIR={} does not hold initdb, pg_ctl and postgres. {INSTALL_HINT}",
            dir.display()
        );
        return Some(dir);
    }
    pg_config_bindir()
        .filter(|d| has_server_bins(d))
        .or_else(|| {
            find_on_path("initdb")
                .and_then(|p| p.canonicalize().ok())
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .filter(|d| has_server_bins(d))
        })
        .or_else(highest_debian_bindir)
}

/// The `psql` to use: the one next to the server binaries, else the one on `PATH`.
pub fn find_psql() -> PathBuf {
    try_find_bin_dir()
        .map(|d| d.join("psql"))
        .filter(|p| p.is_file())
        .or_else(|| find_on_path("psql"))
        .unwrap_or_else(|| {
            panic!("psql not found. Install it with `apt-get install -y postgresql-client`")
        })
}

fn has_server_bins(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|b| dir.join(b).is_file())
}

fn pg_config_bindir() -> Option<PathBuf> {
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| PathBuf::from(s))
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// `/usr/lib/postgresql/<N>/bin` with the highest numeric `N` that holds the server binaries.
fn highest_debian_bindir() -> Option<PathBuf> {
    let entries = std::fs::read_dir("/usr/lib/postgresql").ok()?;
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version: Vec<u32> = e
                .file_name()
                .to_str()?
                .split('.')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            let bin = e.path().join("bin");
            has_server_bins(&bin).then_some((version, bin))
        })
        .max()
        .map(|(_, bin)| bin)
}

/// `postgres --version` output, e.g. `postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`.
pub(crate) fn server_version_string(bin_dir: &Path) -> String {
    let out = Command::new(bin_dir.join("postgres"))
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("running {}/postgres --version: {e}", bin_dir.display()));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The major version (`15`) out of a `--version` string.
pub(crate) fn major_version(version: &str) -> String {
    version
        .split_whitespace()
        .find_map(|w| {
            let major = w.split('.').next()?;
            (!major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()))
                .then(|| major.to_string())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_version_parses_debian_strings() {
        assert_eq!(
            major_version("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"),
            "15"
        );
        assert_eq!(major_version("postgres (PostgreSQL) 17devel"), "unknown");
        assert_eq!(major_version("postgres (PostgreSQL) 9.6.24"), "9");
    }
}
