//! libpq's password file: `~/.pgpass` (`%APPDATA%\postgresql\pgpass.conf` on Windows),
//! `PGPASSFILE` or `passfile=`.
//!
//! Consulted only when no password was given, once per connection attempt, for each host
//! actually tried (libpq's `connectOptions2` and `passwordFromFile`). Each line is
//! `hostname:port:database:username:password`; the first four fields are literal or `*`,
//! `\` escapes `:` and `\`, lines starting with `#` are comments, and the first matching line
//! wins. `localhost` also matches a Unix-socket connection to the default socket directory.
//!
//! On unix a file that is not a regular file, or that the group or others may access, is
//! ignored with libpq's warning: a password is never taken from a file others could have
//! written or read, nor from one the user could not have meant.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{Config, Host};

/// Largest password file read. libpq has no limit, but a password file is a few lines; the
/// cap only keeps a mistaken `passfile=` (a log file, say) from being read into memory whole.
const MAX_PASSFILE_BYTES: u64 = 1 << 20;

/// The name of the default password file in the libpq home directory (`pqGetHomeDirectory`).
#[cfg(unix)]
pub(super) const DEFAULT_PASSFILE: &str = ".pgpass";
/// The name of the default password file in the libpq home directory (`pqGetHomeDirectory`).
#[cfg(not(unix))]
pub(super) const DEFAULT_PASSFILE: &str = "pgpass.conf";

/// A password file's contents, read once per connection attempt and matched per host.
///
/// No `Debug`: the contents are secrets.
pub(crate) struct PassFile {
    contents: Vec<u8>,
}

/// Why a password file was not used; `Display` is libpq's warning, word for word where libpq
/// has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PassFileWarning(String);

impl std::fmt::Display for PassFileWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PassFile {
    /// Reads `path`. `Ok(None)` when it cannot be opened (libpq: "if password file cannot be
    /// opened, ignore it"); `Err` with libpq's warning when it exists but must not be used.
    pub(crate) fn load(path: &Path) -> Result<Option<PassFile>, PassFileWarning> {
        let Ok(file) = std::fs::File::open(path) else {
            return Ok(None);
        };
        let Ok(meta) = file.metadata() else {
            return Ok(None);
        };
        check_file(path, &meta)?;
        let mut contents = Vec::new();
        if file
            .take(MAX_PASSFILE_BYTES + 1)
            .read_to_end(&mut contents)
            .is_err()
        {
            return Ok(None);
        }
        if contents.len() as u64 > MAX_PASSFILE_BYTES {
            return Err(PassFileWarning(format!(
                "WARNING: password file \"{}\" is larger than {} bytes; ignored",
                path.display(),
                MAX_PASSFILE_BYTES
            )));
        }
        Ok(Some(PassFile { contents }))
    }

    /// The password of the first line matching the connection; `None` when no line matches
    /// (or the matching line's password is empty, which libpq's callers treat as none).
    pub(crate) fn find(&self, host: &Host, port: u16, dbname: &str, user: &str) -> Option<Vec<u8>> {
        let hosts = host_names(host);
        let port = port.to_string();
        self.contents
            .split(|&b| b == b'\n')
            .filter(|line| line.first() != Some(&b'#'))
            .map(strip_cr)
            .filter(|line| !line.is_empty())
            .find_map(|line| {
                let rest = hosts.iter().find_map(|h| match_field(line, h))?;
                let rest = match_field(rest, port.as_bytes())?;
                let rest = match_field(rest, dbname.as_bytes())?;
                let rest = match_field(rest, user.as_bytes())?;
                Some(unescape_password(rest))
            })
            .filter(|pw| !pw.is_empty())
    }
}

/// libpq's checks before reading: a regular file, and on unix no group or other access.
#[cfg(unix)]
fn check_file(path: &Path, meta: &std::fs::Metadata) -> Result<(), PassFileWarning> {
    use std::os::unix::fs::PermissionsExt;
    if !meta.is_file() {
        return Err(PassFileWarning(format!(
            "WARNING: password file \"{}\" is not a plain file",
            path.display()
        )));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(PassFileWarning(format!(
            "WARNING: password file \"{}\" has group or world access; permissions should be \
             u=rw (0600) or less",
            path.display()
        )));
    }
    Ok(())
}

/// Off unix libpq checks nothing: the file lives in the user's profile directory, which is
/// private by default.
#[cfg(not(unix))]
fn check_file(path: &Path, meta: &std::fs::Metadata) -> Result<(), PassFileWarning> {
    if !meta.is_file() {
        return Err(PassFileWarning(format!(
            "WARNING: password file \"{}\" is not a plain file",
            path.display()
        )));
    }
    Ok(())
}

/// The names a host is looked up by. A socket in a default socket directory is also
/// `localhost` (libpq: "pghost empty or the default socket directory"); both of our default
/// directories count, because either can be the default of the libpq the file was written
/// for (Debian's `/var/run/postgresql`, upstream's `/tmp`).
fn host_names(host: &Host) -> Vec<Vec<u8>> {
    match host {
        Host::Tcp(name) if name.is_empty() => vec![b"localhost".to_vec()],
        Host::Tcp(name) => vec![name.as_bytes().to_vec()],
        Host::Unix(dir) => {
            let path = dir.as_os_str().as_encoded_bytes().to_vec();
            if super::resolve::is_default_socket_dir(dir) {
                vec![b"localhost".to_vec(), path]
            } else {
                vec![path]
            }
        }
    }
}

/// libpq's `pg_strip_crlf` after the line was split at `\n`.
fn strip_cr(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\r' | b'\n') {
        end -= 1;
    }
    &line[..end]
}

/// libpq's `pwdfMatchesString`: whether the field at the start of `line` matches `token`;
/// if so, what follows the field's `:`. A field that is exactly `*` matches anything.
fn match_field<'a>(line: &'a [u8], token: &[u8]) -> Option<&'a [u8]> {
    if let Some(rest) = line.strip_prefix(b"*:") {
        return Some(rest);
    }
    let (mut i, mut t) = (0, 0);
    loop {
        let mut c = *line.get(i)?;
        let escaped = c == b'\\';
        if escaped {
            i += 1;
            c = *line.get(i)?;
        }
        if c == b':' && !escaped && t == token.len() {
            return line.get(i + 1..);
        }
        if c != *token.get(t)? {
            return None;
        }
        i += 1;
        t += 1;
    }
}

/// The password field: up to the first unescaped `:`, with `\x` read as `x`.
fn unescape_password(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while let Some(&c) = field.get(i) {
        if c == b':' {
            break;
        }
        match (c, field.get(i + 1)) {
            (b'\\', Some(&next)) => {
                out.push(next);
                i += 2;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

impl Config {
    /// Sets the password file consulted when no password is given (libpq's `passfile`).
    /// Unset, [`Config::resolve`] uses `PGPASSFILE`, else `~/.pgpass`
    /// (`%APPDATA%\postgresql\pgpass.conf` on Windows).
    pub fn passfile(&mut self, path: impl AsRef<Path>) -> &mut Self {
        let p = path.as_ref();
        self.passfile = (!p.as_os_str().is_empty()).then(|| p.to_path_buf());
        self
    }

    /// The password file: as given, or on a [resolved](Config::resolve) config without a
    /// password, the one that will be read.
    pub fn get_passfile(&self) -> Option<&Path> {
        self.passfile.as_deref()
    }

    /// The password file to match hosts against: read when no password is given and a file
    /// is named. A file that must not be used is skipped with libpq's warning, as a `tracing`
    /// WARN event (where libpq prints it to stderr).
    pub(crate) fn load_passfile(&self) -> Option<PassFile> {
        if self.password.is_some() {
            return None;
        }
        match PassFile::load(self.passfile.as_deref()?) {
            Ok(file) => file,
            Err(warning) => {
                tracing::warn!(target: "pgwire_lite::passfile", "{warning}");
                None
            }
        }
    }

    /// This configuration with the password `file` holds for `host` and `port`, or `None`
    /// when it has no entry for them (or a password was given).
    pub(crate) fn with_passfile_password(
        &self,
        file: &PassFile,
        host: &Host,
        port: u16,
    ) -> Option<Config> {
        if self.password.is_some() {
            return None;
        }
        let user = self.user.as_deref()?;
        let dbname = self.dbname.as_deref().unwrap_or(user);
        let password = file.find(host, port, dbname, user)?;
        let mut c = self.clone();
        c.password = Some(password);
        Some(c)
    }
}

/// The default password file under libpq's home directory.
pub(super) fn default_passfile(home: &Path) -> PathBuf {
    home.join(DEFAULT_PASSFILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> PassFile {
        PassFile {
            contents: text.as_bytes().to_vec(),
        }
    }

    fn tcp(h: &str) -> Host {
        Host::Tcp(h.into())
    }

    fn find(f: &PassFile, host: &Host, port: u16, db: &str, user: &str) -> Option<String> {
        f.find(host, port, db, user)
            .map(|p| String::from_utf8_lossy(&p).into_owned())
    }

    #[test]
    fn first_matching_line_wins_and_wildcards_match_anything() {
        let f = file(
            "# hostname:port:database:username:password\n\
             db1:5432:app:alice:first\n\
             db1:5432:app:alice:second\n\
             *:*:*:alice:wild\n\
             db2:*:*:*:any-user\n",
        );
        assert_eq!(
            find(&f, &tcp("db1"), 5432, "app", "alice"),
            Some("first".into())
        );
        assert_eq!(
            find(&f, &tcp("db1"), 5433, "app", "alice"),
            Some("wild".into())
        );
        assert_eq!(find(&f, &tcp("db9"), 1, "x", "alice"), Some("wild".into()));
        assert_eq!(
            find(&f, &tcp("db2"), 6000, "x", "bob"),
            Some("any-user".into())
        );
        assert_eq!(find(&f, &tcp("db3"), 5432, "app", "bob"), None);
    }

    #[test]
    fn fields_match_whole_values_only() {
        let f = file("db:5432:app:alice:pw\n");
        assert_eq!(
            find(&f, &tcp("db"), 5432, "app", "alice"),
            Some("pw".into())
        );
        assert_eq!(find(&f, &tcp("d"), 5432, "app", "alice"), None);
        assert_eq!(find(&f, &tcp("dbx"), 5432, "app", "alice"), None);
        assert_eq!(find(&f, &tcp("db"), 543, "app", "alice"), None);
        assert_eq!(find(&f, &tcp("db"), 5432, "app", "alic"), None);
        assert_eq!(find(&f, &tcp("db"), 5432, "app", "alicex"), None);
        // `*` is a wildcard only as the whole field.
        let g = file("d*:5432:app:alice:pw\n");
        assert_eq!(find(&g, &tcp("db"), 5432, "app", "alice"), None);
        assert_eq!(
            find(&g, &tcp("d*"), 5432, "app", "alice"),
            Some("pw".into())
        );
    }

    #[test]
    fn escapes_in_fields_and_password() {
        let f = file(
            "fe80\\:\\:1:5432:my\\\\db:us\\:er:p\\:a\\\\ss:word\n\
             h:5432:d:u:trailing\\\n",
        );
        assert_eq!(
            find(&f, &tcp("fe80::1"), 5432, "my\\db", "us:er"),
            Some("p:a\\ss".into()),
            "the password ends at the first unescaped colon"
        );
        // A lone backslash at the end stays, as libpq's de-escaping leaves it.
        assert_eq!(
            find(&f, &tcp("h"), 5432, "d", "u"),
            Some("trailing\\".into())
        );
    }

    #[test]
    fn comments_blank_lines_and_crlf() {
        let f = file("\n# db:5432:app:alice:commented\n\r\ndb:5432:app:alice:real\r\n");
        assert_eq!(
            find(&f, &tcp("db"), 5432, "app", "alice"),
            Some("real".into())
        );
        // A line with too few fields never matches.
        let g = file("db:5432:app\n");
        assert_eq!(find(&g, &tcp("db"), 5432, "app", "alice"), None);
        // An empty password is no password.
        let h = file("db:5432:app:alice:\n*:*:*:*:later\n");
        assert_eq!(find(&h, &tcp("db"), 5432, "app", "alice"), None);
    }

    #[cfg(unix)]
    #[test]
    fn localhost_matches_the_default_socket_directories() {
        let f = file("localhost:5432:app:alice:local\n/srv/sock:5432:app:alice:custom\n");
        for dir in ["/var/run/postgresql", "/tmp"] {
            assert_eq!(
                find(&f, &Host::Unix(dir.into()), 5432, "app", "alice"),
                Some("local".into()),
                "{dir}"
            );
        }
        assert_eq!(
            find(&f, &Host::Unix("/srv/sock".into()), 5432, "app", "alice"),
            Some("custom".into())
        );
        assert_eq!(
            find(&f, &Host::Unix("/srv/other".into()), 5432, "app", "alice"),
            None
        );
        // The default socket directory is also matched by its own path.
        let g = file("/tmp:5432:app:alice:by-path\n");
        assert_eq!(
            find(&g, &Host::Unix("/tmp".into()), 5432, "app", "alice"),
            Some("by-path".into())
        );
    }

    #[test]
    fn with_passfile_password_uses_resolved_user_and_dbname() {
        let f = file("db1:5432:app:alice:one\ndb2:6000:app:alice:two\n");
        let mut c = Config::new();
        c.user("alice").dbname("app");
        let one = c.with_passfile_password(&f, &tcp("db1"), 5432);
        assert_eq!(one.and_then(|c| c.password), Some(b"one".to_vec()));
        let two = c.with_passfile_password(&f, &tcp("db2"), 6000);
        assert_eq!(two.and_then(|c| c.password), Some(b"two".to_vec()));
        assert!(c.with_passfile_password(&f, &tcp("db2"), 5432).is_none());
        // A given password is never replaced.
        c.password("given");
        assert!(c.with_passfile_password(&f, &tcp("db1"), 5432).is_none());
        // dbname defaults to the user name, as after resolve.
        let g = file("db:5432:alice:alice:same\n");
        let mut d = Config::new();
        d.user("alice");
        let found = d.with_passfile_password(&g, &tcp("db"), 5432);
        assert_eq!(found.and_then(|c| c.password), Some(b"same".to_vec()));
    }

    /// A fresh file under the target directory's temp space, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, text: &str) -> TempFile {
            let dir = std::env::temp_dir()
                .join(format!("pgwire-lite-pgpass-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}"));
            let path = dir.join("pgpass");
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    #[cfg(unix)]
    fn chmod(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {path:?}: {e}"));
    }

    #[cfg(unix)]
    #[test]
    fn load_checks_permissions_as_libpq() {
        let t = TempFile::new("perm", "*:*:*:*:secret-pw\n");
        chmod(&t.0, 0o600);
        let f = PassFile::load(&t.0)
            .unwrap_or_else(|w| panic!("{w}"))
            .unwrap_or_else(|| panic!("0600 file not read"));
        assert_eq!(find(&f, &tcp("h"), 1, "d", "u"), Some("secret-pw".into()));
        chmod(&t.0, 0o400);
        assert!(matches!(PassFile::load(&t.0), Ok(Some(_))));
        for mode in [0o640, 0o604, 0o660, 0o644, 0o610] {
            chmod(&t.0, mode);
            let warning = match PassFile::load(&t.0) {
                Err(w) => w.to_string(),
                Ok(_) => panic!("mode {mode:o} was read"),
            };
            assert_eq!(
                warning,
                format!(
                    "WARNING: password file \"{}\" has group or world access; permissions \
                     should be u=rw (0600) or less",
                    t.0.display()
                )
            );
            assert!(!warning.contains("secret-pw"));
        }
        // A directory is not a password file.
        let dir = t.0.parent().unwrap_or_else(|| panic!("no parent"));
        match PassFile::load(dir) {
            Err(w) => assert!(w.to_string().ends_with("is not a plain file"), "{w}"),
            Ok(_) => panic!("a directory was read as a password file"),
        }
    }

    #[test]
    fn load_ignores_a_missing_file() {
        let t = TempFile::new("missing", "");
        let missing = t.0.with_file_name("nope");
        assert!(matches!(PassFile::load(&missing), Ok(None)));
    }

    #[cfg(unix)]
    #[test]
    fn load_passfile_skips_an_unsafe_file_and_a_given_password() {
        let t = TempFile::new("cfg", "*:*:*:*:from-file\n");
        chmod(&t.0, 0o644);
        let mut c = Config::new();
        c.user("u").passfile(&t.0);
        assert!(
            c.load_passfile().is_none(),
            "a world-readable file was used"
        );
        chmod(&t.0, 0o600);
        let f = c
            .load_passfile()
            .unwrap_or_else(|| panic!("a 0600 file was not used"));
        assert_eq!(find(&f, &tcp("h"), 1, "u", "u"), Some("from-file".into()));
        c.password("given");
        assert!(
            c.load_passfile().is_none(),
            "read although a password was given"
        );
    }
}
