//! `Config::resolve`: libpq's environment variables, then its defaults.
//!
//! Every variable goes through [`Config::set_param`] exactly as its DSN key would, and its
//! value is checked alone as `Config::parse("key=value")` would check it. So the environment
//! can neither weaken what a DSN could not (a refused `channel_binding=require` is refused as
//! `PGCHANNELBINDING=require` too), and every refusal names the variable.

use std::path::{Path, PathBuf};

use super::options::escape_option_value;
use super::params::Origin;
use super::service::{self, ServiceFiles};
use super::{Config, DEFAULT_PORT, Host, SslMode, TargetSessionAttrs};
use crate::error::ConfigError;

/// Where a local server's socket usually lives: Debian's directory first, then upstream's.
#[cfg(unix)]
const DEFAULT_SOCKET_DIRS: [&str; 2] = ["/var/run/postgresql", "/tmp"];

/// The system-wide directory of `pg_service.conf` when `PGSYSCONFDIR` is unset: Debian and
/// Ubuntu's libpq (`pg_config --sysconfdir`). Upstream's default depends on the build prefix.
#[cfg(unix)]
const DEFAULT_SYSCONF_DIR: &str = "/etc/postgresql-common";

/// Whether `dir` is one of the socket directories a default host resolves to, which the
/// password file also calls `localhost`.
#[cfg(unix)]
pub(super) fn is_default_socket_dir(dir: &Path) -> bool {
    DEFAULT_SOCKET_DIRS.iter().any(|d| Path::new(d) == dir)
}

/// Off unix there is no default socket directory.
#[cfg(not(unix))]
pub(super) fn is_default_socket_dir(_dir: &Path) -> bool {
    false
}

/// libpq's environment variables that stand for a connection key, in the order of libpq's
/// "Environment Variables" page. Keys in `UNSUPPORTED_KEYS` are refused from here as from a
/// DSN: an unread `PGSSLROOTCERT` must not look like a checked certificate.
pub(super) const ENV_KEYS: &[(&str, &str)] = &[
    ("PGHOST", "host"),
    ("PGSSLNEGOTIATION", "sslnegotiation"),
    ("PGHOSTADDR", "hostaddr"),
    ("PGPORT", "port"),
    ("PGDATABASE", "dbname"),
    ("PGUSER", "user"),
    ("PGPASSWORD", "password"),
    ("PGPASSFILE", "passfile"),
    ("PGREQUIREAUTH", "require_auth"),
    ("PGCHANNELBINDING", "channel_binding"),
    ("PGSERVICE", "service"),
    ("PGSERVICEFILE", "servicefile"),
    ("PGOPTIONS", "options"),
    ("PGAPPNAME", "application_name"),
    ("PGSSLMODE", "sslmode"),
    ("PGSSLCOMPRESSION", "sslcompression"),
    ("PGSSLCERT", "sslcert"),
    ("PGSSLKEY", "sslkey"),
    ("PGSSLCERTMODE", "sslcertmode"),
    ("PGSSLROOTCERT", "sslrootcert"),
    ("PGSSLCRL", "sslcrl"),
    ("PGSSLCRLDIR", "sslcrldir"),
    ("PGSSLSNI", "sslsni"),
    ("PGREQUIREPEER", "requirepeer"),
    ("PGSSLMINPROTOCOLVERSION", "ssl_min_protocol_version"),
    ("PGSSLMAXPROTOCOLVERSION", "ssl_max_protocol_version"),
    ("PGMINPROTOCOLVERSION", "min_protocol_version"),
    ("PGMAXPROTOCOLVERSION", "max_protocol_version"),
    ("PGGSSENCMODE", "gssencmode"),
    ("PGKRBSRVNAME", "krbsrvname"),
    ("PGGSSLIB", "gsslib"),
    ("PGGSSDELEGATION", "gssdelegation"),
    ("PGCONNECT_TIMEOUT", "connect_timeout"),
    ("PGCLIENTENCODING", "client_encoding"),
    ("PGTARGETSESSIONATTRS", "target_session_attrs"),
    ("PGLOADBALANCEHOSTS", "load_balance_hosts"),
];

/// The deprecated `PGREQUIRESSL`: a value starting with `1` means `sslmode=require` when
/// neither the DSN nor `PGSSLMODE` sets sslmode; any other value is ignored (libpq,
/// `conninfo_add_defaults`).
const REQUIRESSL_VAR: &str = "PGREQUIRESSL";

/// Variables libpq sends as server settings in the startup packet, not as connection keys
/// (libpq's `EnvironmentOptions`). They become `-c name=value` at the end of `options`, where
/// they win over an earlier `-c` for the same name, as the startup packet's settings do.
/// The value `default` (any case) means "send nothing", as in libpq.
pub(super) const SESSION_ENV: &[(&str, &str)] = &[
    ("PGDATESTYLE", "datestyle"),
    ("PGTZ", "timezone"),
    ("PGGEQO", "geqo"),
];

impl Config {
    /// The configuration described by the `PG*` environment variables and libpq's defaults:
    /// `Config::new().resolve()`.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::new().resolve()
    }

    /// A copy with every missing part filled from the process environment, then from libpq's
    /// defaults. See [`Config::resolve_with`] for the rules.
    ///
    /// The result is [validated](Config::validate): it can be connected with as it is.
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        // Raw bytes: a password need not be UTF-8, and a non-UTF-8 value of any other
        // variable must be refused by name rather than skipped as if unset.
        let env = |name: &str| std::env::var_os(name).map(|v| v.into_encoded_bytes());
        self.resolve_bytes(&env, &SystemProbe)
    }

    /// [`Config::resolve`] with `env` standing in for the process environment.
    ///
    /// First the service: when `service` (or `PGSERVICE`) names one, its section of the
    /// service file fills the keys still unset — the file from `servicefile`, else
    /// `PGSERVICEFILE`, else `~/.pg_service.conf` if it exists; a service it lacks is looked
    /// up in `PGSYSCONFDIR/pg_service.conf` (default directory on unix:
    /// `/etc/postgresql-common`). An unknown service is an error naming the files searched; a
    /// bad value is an error naming the file and line.
    ///
    /// Then each of libpq's variables fills its key when the key is unset, going through the same
    /// checks as that key in a DSN: `PGHOST`, `PGHOSTADDR`, `PGPORT`, `PGDATABASE`, `PGUSER`,
    /// `PGPASSWORD`, `PGPASSFILE`, `PGREQUIREAUTH`, `PGCHANNELBINDING`, `PGSERVICE`,
    /// `PGSERVICEFILE`, `PGOPTIONS`, `PGAPPNAME`, `PGSSLMODE`, `PGSSLNEGOTIATION`,
    /// `PGSSLCOMPRESSION`, `PGSSLCERT`, `PGSSLKEY`, `PGSSLCERTMODE`, `PGSSLROOTCERT`,
    /// `PGSSLCRL`, `PGSSLCRLDIR`, `PGSSLSNI`, `PGREQUIREPEER`, `PGSSLMINPROTOCOLVERSION`,
    /// `PGSSLMAXPROTOCOLVERSION`, `PGMINPROTOCOLVERSION`, `PGMAXPROTOCOLVERSION`,
    /// `PGGSSENCMODE`, `PGKRBSRVNAME`, `PGGSSLIB`, `PGGSSDELEGATION`, `PGCONNECT_TIMEOUT`,
    /// `PGCLIENTENCODING`, `PGTARGETSESSIONATTRS`, `PGLOADBALANCEHOSTS`. A value its key
    /// would refuse in a DSN (an unsupported feature, e.g. `PGCHANNELBINDING=require` or
    /// `PGSSLMODE=require` while TLS is missing) is refused, and the error names the
    /// variable. `PGREQUIRESSL=1` stands for `sslmode=require` when sslmode is not otherwise
    /// set. `PGDATESTYLE`, `PGTZ` and `PGGEQO` are appended to `options` as `-c datestyle=…`,
    /// `-c timezone=…`, `-c geqo=…`. Empty variables count as unset.
    ///
    /// Then libpq's defaults: user = the OS user (`USER`, `LOGNAME`, else the name of the
    /// effective user as the OS reports it), dbname = user, port 5432, application_name =
    /// `fallback_application_name`, sslmode `prefer`, target_session_attrs `any`; host = on
    /// unix the first of `/var/run/postgresql`, `/tmp` holding a `.s.PGSQL.<port>` socket,
    /// else (and on other systems) `localhost`; without a password, `passfile` = `~/.pgpass`
    /// (`HOME`, else the user's passwd entry; `%APPDATA%\postgresql\pgpass.conf` on
    /// Windows). The password file itself is read when connecting, and matched against each
    /// host as it is tried.
    ///
    /// The result is [validated](Config::validate).
    pub fn resolve_with(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        self.resolve_inner(env, &SystemProbe)
    }

    /// [`Config::resolve_with`] with the machine faked too.
    pub(super) fn resolve_inner(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
        probe: &dyn Probe,
    ) -> Result<Config, ConfigError> {
        self.resolve_bytes(&|name: &str| env(name).map(String::into_bytes), probe)
    }

    /// The one place that reads the environment and the machine, so tests can fake both.
    pub(super) fn resolve_bytes(
        &self,
        env: &dyn Fn(&str) -> Option<Vec<u8>>,
        probe: &dyn Probe,
    ) -> Result<Config, ConfigError> {
        let get = |name: &str| env(name).filter(|v| !v.is_empty());
        let mut c = self.clone();

        // libpq's conninfo_add_defaults: the service's values before the environment's.
        for (var, key) in [("PGSERVICE", "service"), ("PGSERVICEFILE", "servicefile")] {
            if !c.is_given(key) {
                if let Some(value) = get(var) {
                    c.set_from_env(var, key, &value)?;
                }
            }
        }
        c.apply_service(&get, probe)?;

        for &(var, key) in ENV_KEYS {
            if c.is_given(key) {
                continue;
            }
            if let Some(value) = get(var) {
                c.set_from_env(var, key, &value)?;
            }
        }
        if !c.is_given("sslmode") && get(REQUIRESSL_VAR).is_some_and(|v| v.starts_with(b"1")) {
            c.set_from_env(REQUIRESSL_VAR, "sslmode", b"require")?;
        }
        c.add_session_env(&get)?;

        if c.ports.is_empty() {
            c.ports.push(DEFAULT_PORT);
        }
        if c.user.is_none() {
            let text = |name: &str| get(name).and_then(|v| String::from_utf8(v).ok());
            c.user = text("USER")
                .or_else(|| text("LOGNAME"))
                .or_else(|| probe.os_user().filter(|u| !u.is_empty()));
        }
        let Some(user) = c.user.clone() else {
            return Err(ConfigError::new(
                "could not determine the user name: set user in the connection string or PGUSER",
            ));
        };
        c.dbname.get_or_insert(user);
        if c.application_name.is_none() {
            c.application_name = c.fallback_application_name.clone();
        }
        // Resolved means complete: resolving again reads nothing from the environment.
        c.connect_timeout.get_or_insert(None);
        // libpq: sslrootcert=system makes verify-full the default.
        if c.get_ssl_root_cert() == Some(super::RootCert::System) {
            c.ssl_mode.get_or_insert(SslMode::VerifyFull);
        }
        c.ssl_mode.get_or_insert(SslMode::default());
        c.target_session_attrs
            .get_or_insert(TargetSessionAttrs::default());
        c.client_encoding.get_or_insert_with(|| "UTF8".to_owned());
        c.gssencmode.get_or_insert_with(|| "disable".to_owned());
        c.channel_binding.get_or_insert_with(|| "prefer".to_owned());
        c.load_balance_hosts
            .get_or_insert_with(|| "disable".to_owned());
        // libpq's connectOptions2: no password, no passfile -> the default file. It is read
        // when connecting, per host (see `pgpass`).
        if c.password.is_none() && c.passfile.is_none() {
            c.passfile = libpq_home(&get, probe).map(|h| super::pgpass::default_passfile(&h));
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

    /// Sets `key` from the variable `var`. The value is first checked alone, as
    /// `Config::parse("key=value")` would check it, so a refusal is reported here, naming
    /// `var`, rather than by the final [`Config::validate`] without a name.
    fn set_from_env(
        &mut self,
        var: &'static str,
        key: &str,
        value: &[u8],
    ) -> Result<(), ConfigError> {
        let origin = Origin::Env(var);
        let mut alone = Config::new();
        alone
            .set_param(key, value, origin)
            .and_then(|()| alone.validate())
            .map_err(|e| named(e, var))?;
        self.set_param(key, value, origin)
    }

    /// Merges the named service's section (from `service=` or `PGSERVICE`) into the keys
    /// still unset. Nothing to do without a service, or when done already.
    fn apply_service(
        &mut self,
        get: &dyn Fn(&str) -> Option<Vec<u8>>,
        probe: &dyn Probe,
    ) -> Result<(), ConfigError> {
        if self.service_applied {
            return Ok(());
        }
        let Some(name) = self.service.clone() else {
            return Ok(());
        };
        let files = ServiceFiles {
            explicit: self.servicefile.clone(),
            user: libpq_home(get, probe).map(|h| h.join(service::USER_SERVICE_FILE)),
            system: get("PGSYSCONFDIR")
                .and_then(path_from_env)
                .or_else(|| probe.sysconf_dir())
                .map(|d| d.join(service::SYSTEM_SERVICE_FILE)),
        };
        for entry in service::find_service(&name, &files)? {
            if self.is_given(&entry.key) {
                continue;
            }
            let at = |e: ConfigError| {
                let place = format!("\"{}\", line {}", entry.file.display(), entry.line);
                let m = e.message();
                ConfigError::new(if m.ends_with(" in service file") {
                    format!("{m} {place}")
                } else {
                    format!("{m} (in service file {place})")
                })
            };
            let mut alone = Config::new();
            alone
                .set_param(&entry.key, &entry.value, Origin::Service)
                .and_then(|()| alone.validate())
                .map_err(at)?;
            self.set_param(&entry.key, &entry.value, Origin::Service)
                .map_err(at)?;
        }
        self.service_applied = true;
        Ok(())
    }

    /// Appends `PGDATESTYLE`, `PGTZ` and `PGGEQO` to `options` (see [`SESSION_ENV`]).
    /// Idempotent, so that resolving a resolved config changes nothing.
    fn add_session_env(
        &mut self,
        get: &dyn Fn(&str) -> Option<Vec<u8>>,
    ) -> Result<(), ConfigError> {
        let mut args = Vec::new();
        for &(var, setting) in SESSION_ENV {
            let Some(value) = get(var) else { continue };
            let Ok(value) = String::from_utf8(value) else {
                return Err(ConfigError::new(format!("{var} is not valid UTF-8")));
            };
            if value.eq_ignore_ascii_case("default") {
                continue;
            }
            let arg = format!("-c {setting}={}", escape_option_value(&value));
            let mut alone = Config::new();
            alone.options(&arg);
            alone.validate().map_err(|e| named(e, var))?;
            args.push(arg);
        }
        if args.is_empty() {
            return Ok(());
        }
        let tail = args.join(" ");
        match &mut self.options {
            Some(o) if o.ends_with(&tail) => {}
            Some(o) => {
                o.push(' ');
                o.push_str(&tail);
            }
            None => self.options = Some(tail),
        }
        Ok(())
    }
}

/// Makes `e` name the variable its value came from, unless it already ends by naming it
/// (`invalid port "x" in PGPORT`, from [`Origin::suffix`]).
fn named(e: ConfigError, var: &str) -> ConfigError {
    if e.message().ends_with(&format!(" in {var}")) {
        e
    } else {
        ConfigError::new(format!("{} (from {var})", e.message()))
    }
}

/// What [`Config::resolve`] asks of the machine, so tests can stand in for it.
pub(super) trait Probe {
    /// Whether something exists at `path` (a server's Unix socket, for the default host).
    // Only unix looks for a default socket; the tests' fake machines implement it everywhere.
    #[cfg_attr(not(unix), allow(dead_code))]
    fn socket_exists(&self, path: &Path) -> bool;
    /// The name of the user this process runs as, as the OS knows it.
    fn os_user(&self) -> Option<String>;
    /// The home directory when `HOME` is unset (on unix, the user's passwd entry).
    // Off unix libpq's home is %APPDATA%\postgresql, read from the environment.
    #[cfg_attr(not(unix), allow(dead_code))]
    fn home_dir(&self) -> Option<PathBuf>;
    /// The directory of the system-wide service file when `PGSYSCONFDIR` is unset.
    fn sysconf_dir(&self) -> Option<PathBuf>;
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

    /// std's `home_dir`: on unix `HOME`, else `getpwuid_r` of the real uid — what libpq's
    /// `pqGetHomeDirectory` does. Off unix it is not used (libpq uses `APPDATA` there).
    fn home_dir(&self) -> Option<PathBuf> {
        // Deprecated only for its Windows behaviour (fixed since Rust 1.85), never used there.
        #[allow(deprecated)]
        std::env::home_dir()
    }

    fn sysconf_dir(&self) -> Option<PathBuf> {
        #[cfg(unix)]
        return Some(PathBuf::from(DEFAULT_SYSCONF_DIR));
        #[cfg(not(unix))]
        None
    }
}

/// libpq's `pqGetHomeDirectory`, where `.pgpass` and `.pg_service.conf` live: `HOME`, else the
/// user's passwd entry.
#[cfg(unix)]
fn libpq_home(get: &dyn Fn(&str) -> Option<Vec<u8>>, probe: &dyn Probe) -> Option<PathBuf> {
    get("HOME")
        .and_then(path_from_env)
        .or_else(|| probe.home_dir())
}

/// libpq's `pqGetHomeDirectory` on Windows: `%APPDATA%\postgresql`.
#[cfg(not(unix))]
fn libpq_home(get: &dyn Fn(&str) -> Option<Vec<u8>>, _probe: &dyn Probe) -> Option<PathBuf> {
    get("APPDATA")
        .and_then(path_from_env)
        .map(|d| d.join("postgresql"))
}

/// A path from an environment variable's raw bytes: any bytes on unix, UTF-8 elsewhere (a
/// variable that is not is treated as unset).
#[cfg(unix)]
fn path_from_env(bytes: Vec<u8>) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    Some(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
}

/// A path from an environment variable's raw bytes: any bytes on unix, UTF-8 elsewhere (a
/// variable that is not is treated as unset).
#[cfg(not(unix))]
fn path_from_env(bytes: Vec<u8>) -> Option<PathBuf> {
    String::from_utf8(bytes).ok().map(PathBuf::from)
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
