//! libpq's connection service file: `service=` / `PGSERVICE` name a section of
//! `servicefile=` / `PGSERVICEFILE` / `~/.pg_service.conf`, else of the system-wide
//! `PGSYSCONFDIR/pg_service.conf`.
//!
//! The file is INI-like (`[name]` sections of `key=value` libpq keys, `#` comments). Its values
//! fill only the keys the DSN or setters left unset, and are applied before the environment
//! variables, so the order is libpq's (`conninfo_add_defaults`): DSN, then service, then
//! environment, then defaults. The parsing follows libpq's `parseServiceFile`: whitespace
//! around a line is ignored, not around `=`; the first value of a key wins; a nested
//! `service=` is an error.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::Config;
use crate::error::ConfigError;

/// Largest service file read. libpq has no file limit (it limits lines to 1023 bytes); a
/// service file is a few sections, and the cap keeps a mistaken path from being read whole.
const MAX_SERVICE_FILE_BYTES: u64 = 1 << 20;

/// The per-user service file's name in libpq's home directory.
pub(super) const USER_SERVICE_FILE: &str = ".pg_service.conf";
/// The system-wide service file's name in `PGSYSCONFDIR` (or the compiled-in directory).
pub(super) const SYSTEM_SERVICE_FILE: &str = "pg_service.conf";

/// One `key=value` of the service's section, with where it was written (for errors).
pub(super) struct ServiceEntry {
    pub(super) key: String,
    /// Bytes: a password need not be UTF-8.
    pub(super) value: Vec<u8>,
    pub(super) file: PathBuf,
    pub(super) line: usize,
}

/// The files a service is looked up in, libpq's order.
pub(super) struct ServiceFiles {
    /// `servicefile=` or `PGSERVICEFILE`: must exist when given.
    pub(super) explicit: Option<PathBuf>,
    /// `~/.pg_service.conf`, read when it exists and no file was given explicitly.
    pub(super) user: Option<PathBuf>,
    /// `PGSYSCONFDIR/pg_service.conf`, read when it exists and the first file lacks the
    /// service.
    pub(super) system: Option<PathBuf>,
}

/// The entries of service `name`: from the explicit or per-user file if it has the section,
/// else from the system file. libpq's `parseServiceInfo`.
pub(super) fn find_service(
    name: &str,
    files: &ServiceFiles,
) -> Result<Vec<ServiceEntry>, ConfigError> {
    let mut searched = Vec::new();
    let first = match &files.explicit {
        Some(path) => Some(path),
        None => files.user.as_ref().filter(|p| p.exists()),
    };
    if let Some(path) = first {
        searched.push(path.as_path());
        if let Some(entries) = parse_service_file(path, name)? {
            return Ok(entries);
        }
    }
    if let Some(path) = files.system.as_ref().filter(|p| p.exists()) {
        searched.push(path.as_path());
        if let Some(entries) = parse_service_file(path, name)? {
            return Ok(entries);
        }
    }
    let list = if searched.is_empty() {
        "no service file exists".to_owned()
    } else {
        let names: Vec<String> = searched
            .iter()
            .map(|p| format!("\"{}\"", p.display()))
            .collect();
        format!("searched {}", names.join(", "))
    };
    Err(ConfigError::new(format!(
        "definition of service \"{name}\" not found ({list})"
    )))
}

/// Reads `path` and returns the section `[name]`, `None` when the file has no such section.
fn parse_service_file(path: &Path, name: &str) -> Result<Option<Vec<ServiceEntry>>, ConfigError> {
    let file = std::fs::File::open(path).map_err(|e| {
        ConfigError::new(format!(
            "service file \"{}\" not found: {e}",
            path.display()
        ))
    })?;
    let mut contents = Vec::new();
    file.take(MAX_SERVICE_FILE_BYTES + 1)
        .read_to_end(&mut contents)
        .map_err(|e| {
            ConfigError::new(format!(
                "could not read service file \"{}\": {e}",
                path.display()
            ))
        })?;
    if contents.len() as u64 > MAX_SERVICE_FILE_BYTES {
        return Err(ConfigError::new(format!(
            "service file \"{}\" is larger than {MAX_SERVICE_FILE_BYTES} bytes",
            path.display()
        )));
    }
    parse_service(&contents, path, name)
}

/// The section `[name]` of a service file's `contents`.
pub(super) fn parse_service(
    contents: &[u8],
    path: &Path,
    name: &str,
) -> Result<Option<Vec<ServiceEntry>>, ConfigError> {
    let at = |line: usize| format!("service file \"{}\", line {line}", path.display());
    let mut found: Option<Vec<ServiceEntry>> = None;
    for (i, raw) in contents.split(|&b| b == b'\n').enumerate() {
        let line_no = i + 1;
        let line = raw.trim_ascii();
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        if let Some(header) = line.strip_prefix(b"[") {
            if found.is_some() {
                // The end of the wanted section.
                break;
            }
            // libpq compares the name then checks for `]`; what follows it is ignored.
            if header
                .strip_prefix(name.as_bytes())
                .is_some_and(|rest| rest.first() == Some(&b']'))
            {
                found = Some(Vec::new());
            }
            continue;
        }
        let Some(entries) = found.as_mut() else {
            continue;
        };
        let Some(eq) = line.iter().position(|&b| b == b'=') else {
            return Err(ConfigError::new(format!(
                "syntax error in {}: expected key=value",
                at(line_no)
            )));
        };
        let (key, value) = (&line[..eq], &line[eq + 1..]);
        let Ok(key) = std::str::from_utf8(key) else {
            return Err(ConfigError::new(format!(
                "syntax error in {}: the key is not valid UTF-8",
                at(line_no)
            )));
        };
        if key == "service" {
            return Err(ConfigError::new(format!(
                "nested service specifications not supported in {}",
                at(line_no)
            )));
        }
        // libpq: a key already set keeps its first value.
        if entries.iter().any(|e| e.key == key) {
            continue;
        }
        entries.push(ServiceEntry {
            key: key.to_owned(),
            value: value.to_vec(),
            file: path.to_path_buf(),
            line: line_no,
        });
    }
    Ok(found)
}

impl Config {
    /// Sets the service name (libpq's `service`): its section of the service file supplies
    /// the keys this configuration leaves unset, when [resolved](Config::resolve).
    pub fn service(&mut self, name: &str) -> &mut Self {
        self.service = super::non_empty(name);
        self.service_applied = false;
        self
    }

    /// Sets the service file (libpq's `servicefile`), which then must exist when a service
    /// is named. Unset, [`Config::resolve`] uses `PGSERVICEFILE`, else `~/.pg_service.conf`,
    /// then the system-wide `pg_service.conf`.
    pub fn servicefile(&mut self, path: impl AsRef<Path>) -> &mut Self {
        let p = path.as_ref();
        self.servicefile = (!p.as_os_str().is_empty()).then(|| p.to_path_buf());
        self.service_applied = false;
        self
    }

    /// The service name, if given.
    pub fn get_service(&self) -> Option<&str> {
        self.service.as_deref()
    }

    /// The service file, if given.
    pub fn get_servicefile(&self) -> Option<&Path> {
        self.servicefile.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// key, value, line
    type Line = (String, String, usize);

    fn parse(text: &str, name: &str) -> Result<Option<Vec<Line>>, String> {
        parse_service(text.as_bytes(), Path::new("/svc.conf"), name)
            .map(|found| {
                found.map(|entries| {
                    entries
                        .into_iter()
                        .map(|e| {
                            (
                                e.key,
                                String::from_utf8_lossy(&e.value).into_owned(),
                                e.line,
                            )
                        })
                        .collect()
                })
            })
            .map_err(|e| e.to_string())
    }

    fn kv(k: &str, v: &str, line: usize) -> Line {
        (k.into(), v.into(), line)
    }

    #[test]
    fn picks_the_named_section_only() {
        let text = "# comment\n\
                    [other]\nhost=wrong\n\n\
                    [mydb]\n  host=somehost  \nport=5433\n# inside\nuser=admin\n\
                    [mydb2]\nhost=also-wrong\n";
        assert_eq!(
            parse(text, "mydb"),
            Ok(Some(vec![
                kv("host", "somehost", 6),
                kv("port", "5433", 7),
                kv("user", "admin", 9)
            ]))
        );
        assert_eq!(parse(text, "my"), Ok(None), "a prefix is not the name");
        assert_eq!(parse(text, "missing"), Ok(None));
    }

    #[test]
    fn first_value_wins_and_values_keep_inner_text() {
        let text = "[s]\r\nhost=a\r\nhost=b\r\noptions=-c search_path=x,y\r\npassword=p=w\r\n";
        assert_eq!(
            parse(text, "s"),
            Ok(Some(vec![
                kv("host", "a", 2),
                kv("options", "-c search_path=x,y", 4),
                kv("password", "p=w", 5)
            ]))
        );
    }

    #[test]
    fn errors_name_the_file_and_line() {
        assert_eq!(
            parse("[s]\nhost=a\nservice=t\n", "s"),
            Err(
                "nested service specifications not supported in service file \"/svc.conf\", line 3"
                    .into()
            )
        );
        assert_eq!(
            parse("[s]\nhost\n", "s"),
            Err("syntax error in service file \"/svc.conf\", line 2: expected key=value".into())
        );
        // Lines of other sections are not looked at, as in libpq.
        assert_eq!(
            parse("[t]\nnonsense\n[s]\nhost=a\n", "s").map(|f| f.map(|e| e.len())),
            Ok(Some(1))
        );
    }

    #[test]
    fn file_order_is_libpqs() {
        let dir = std::env::temp_dir().join(format!("pgwire-lite-service-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let user = dir.join("user.conf");
        let system = dir.join("system.conf");
        std::fs::write(&user, "[both]\nhost=from-user\n[user-only]\nport=1\n")
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&system, "[both]\nhost=from-system\n[system-only]\nport=2\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let files = ServiceFiles {
            explicit: None,
            user: Some(user.clone()),
            system: Some(system.clone()),
        };
        let first = |name: &str, files: &ServiceFiles| {
            find_service(name, files).map(|e| {
                let e = &e[0];
                (
                    e.key.clone(),
                    String::from_utf8_lossy(&e.value).into_owned(),
                )
            })
        };
        assert_eq!(
            first("both", &files),
            Ok(("host".into(), "from-user".into()))
        );
        assert_eq!(first("user-only", &files), Ok(("port".into(), "1".into())));
        assert_eq!(
            first("system-only", &files),
            Ok(("port".into(), "2".into()))
        );
        assert_eq!(
            first("nope", &files).map_err(|e| e.to_string()),
            Err(format!(
                "definition of service \"nope\" not found (searched \"{}\", \"{}\")",
                user.display(),
                system.display()
            ))
        );
        // An explicit file replaces the per-user one and must exist.
        let explicit = ServiceFiles {
            explicit: Some(dir.join("absent.conf")),
            user: Some(user.clone()),
            system: Some(system.clone()),
        };
        let err = first("both", &explicit).map_err(|e| e.to_string());
        assert!(
            err.as_ref().is_err_and(|e| e.starts_with(&format!(
                "service file \"{}\" not found",
                dir.join("absent.conf").display()
            ))),
            "{err:?}"
        );
        // Missing per-user and system files are skipped.
        let none = ServiceFiles {
            explicit: None,
            user: Some(dir.join("absent-user.conf")),
            system: Some(dir.join("absent-system.conf")),
        };
        assert_eq!(
            first("both", &none).map_err(|e| e.to_string()),
            Err("definition of service \"both\" not found (no service file exists)".into())
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
