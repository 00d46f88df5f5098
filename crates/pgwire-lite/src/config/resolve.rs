//! `Config::resolve`: the `PG*` environment variables, then libpq's defaults.

use std::path::Path;

use super::options::{parse_connect_timeout, parse_host_list, parse_port_list};
use super::{Config, DEFAULT_PORT, Host, SslMode, TargetSessionAttrs};
use crate::error::ConfigError;

/// Where a local server's socket usually lives: Debian's directory first, then upstream's.
#[cfg(unix)]
const DEFAULT_SOCKET_DIRS: [&str; 2] = ["/var/run/postgresql", "/tmp"];

impl Config {
    /// The configuration described by the `PG*` environment variables and libpq's defaults:
    /// `Config::new().resolve()`.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::new().resolve()
    }

    /// A copy with every missing part filled from the process environment, then from libpq's
    /// defaults, and validated. See [`Config::resolve_with`] for the rules.
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let env = |name: &str| std::env::var(name).ok();
        self.resolve_inner(&env, &SystemProbe)
    }

    /// [`Config::resolve`] with `env` standing in for the process environment.
    ///
    /// Fills, when unset: hosts from `PGHOST`, ports from `PGPORT`, user from `PGUSER`,
    /// password from `PGPASSWORD`, dbname from `PGDATABASE`, application_name from
    /// `PGAPPNAME` (then `fallback_application_name`), connect_timeout from
    /// `PGCONNECT_TIMEOUT`, options from `PGOPTIONS`, sslmode from `PGSSLMODE`,
    /// target_session_attrs from `PGTARGETSESSIONATTRS`, require_auth from `PGREQUIREAUTH`.
    /// Empty variables count as unset. Then libpq's defaults: user = the OS user (`USER`,
    /// `LOGNAME`, else the effective uid's `/etc/passwd` entry), dbname = user, port 5432,
    /// host = the first of `/var/run/postgresql`, `/tmp` holding a `.s.PGSQL.<port>` socket,
    /// else `localhost`; sslmode `prefer`, target_session_attrs `any`.
    pub fn resolve_with(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        self.resolve_inner(env, &SystemProbe)
    }

    /// The one place that touches the environment and the machine, so tests can fake both.
    pub(super) fn resolve_inner(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
        probe: &dyn Probe,
    ) -> Result<Config, ConfigError> {
        let get = |name: &str| env(name).filter(|v| !v.is_empty());
        fn from(var: &'static str) -> impl Fn(ConfigError) -> ConfigError {
            move |e| ConfigError::new(format!("{} (from {var})", e.message()))
        }
        let mut c = self.clone();

        if c.hosts.is_empty() {
            if let Some(v) = get("PGHOST") {
                c.hosts = parse_host_list(&v);
            }
        }
        if c.ports.is_empty() {
            if let Some(v) = get("PGPORT") {
                c.ports = parse_port_list(&v, " in PGPORT")?;
            }
        }
        if c.ports.is_empty() {
            c.ports.push(DEFAULT_PORT);
        }
        if c.user.is_none() {
            c.user = get("PGUSER")
                .or_else(|| get("USER"))
                .or_else(|| get("LOGNAME"))
                .or_else(|| probe.os_user().filter(|u| !u.is_empty()));
        }
        let Some(user) = c.user.clone() else {
            return Err(ConfigError::new(
                "could not determine the user name: set user in the connection string or PGUSER",
            ));
        };
        if c.password.is_none() {
            c.password = get("PGPASSWORD").map(String::into_bytes);
        }
        if c.dbname.is_none() {
            c.dbname = Some(get("PGDATABASE").unwrap_or(user));
        }
        if c.application_name.is_none() {
            c.application_name = get("PGAPPNAME").or_else(|| c.fallback_application_name.clone());
        }
        if c.connect_timeout.is_none() {
            c.connect_timeout = Some(match get("PGCONNECT_TIMEOUT") {
                Some(v) => parse_connect_timeout(&v, "in PGCONNECT_TIMEOUT")?,
                None => None,
            });
        }
        if c.options.is_none() {
            c.options = get("PGOPTIONS");
        }
        if c.ssl_mode.is_none() {
            c.ssl_mode = Some(match get("PGSSLMODE") {
                Some(v) => v.parse().map_err(from("PGSSLMODE"))?,
                None => SslMode::default(),
            });
        }
        if c.target_session_attrs.is_none() {
            c.target_session_attrs = Some(match get("PGTARGETSESSIONATTRS") {
                Some(v) => v.parse().map_err(from("PGTARGETSESSIONATTRS"))?,
                None => TargetSessionAttrs::default(),
            });
        }
        if c.require_auth.is_none() {
            c.require_auth = get("PGREQUIREAUTH");
        }

        if c.hosts.is_empty() {
            c.hosts.push(Host::Tcp(String::new()));
        }
        c.check_port_count()?;
        for i in 0..c.hosts.len() {
            let port = c.port_for(i);
            if let Some(h) = c.hosts.get_mut(i) {
                if h.is_placeholder() {
                    *h = default_host(port, probe);
                }
            }
        }
        c.validate()?;
        Ok(c)
    }
}

/// What [`Config::resolve`] asks of the machine, so tests can stand in for it.
pub(super) trait Probe {
    /// Whether something exists at `path` (a server's Unix socket, for the default host).
    fn socket_exists(&self, path: &Path) -> bool;
    /// The name of the user this process runs as, as the OS knows it.
    fn os_user(&self) -> Option<String>;
}

pub(super) struct SystemProbe;

impl Probe for SystemProbe {
    fn socket_exists(&self, path: &Path) -> bool {
        std::fs::symlink_metadata(path).is_ok()
    }

    /// libpq's `pg_fe_getusername`: on unix the name of the effective uid (`getpwuid_r`, so
    /// NSS/LDAP users are found, not only `/etc/passwd` lines), on Windows `GetUserNameW`.
    /// A name that is not UTF-8 counts as none: it could not be sent as a startup parameter.
    fn os_user(&self) -> Option<String> {
        whoami::username_os().ok()?.into_string().ok()
    }
}

/// libpq's default host: on unix the first default socket directory holding this port's
/// socket, else `localhost`.
#[cfg(unix)]
fn default_host(port: u16, probe: &dyn Probe) -> Host {
    DEFAULT_SOCKET_DIRS
        .iter()
        .map(Path::new)
        .find(|dir| probe.socket_exists(&dir.join(format!(".s.PGSQL.{port}"))))
        .map(|dir| Host::Unix(dir.to_path_buf()))
        .unwrap_or_else(|| Host::Tcp("localhost".to_owned()))
}

/// libpq's default host off unix: `localhost` (its `DEFAULT_PGSOCKET_DIR` is empty there).
#[cfg(not(unix))]
fn default_host(_port: u16, _probe: &dyn Probe) -> Host {
    Host::Tcp("localhost".to_owned())
}
