//! `Config`: everything a libpq user writes.
//!
//! Three ways in, one value out:
//!
//! | source | how |
//! |---|---|
//! | a DSN, URL or key=value | [`Config::parse`], `"…".parse::<Config>()` |
//! | builder setters | [`Config::new`] then `.host(..).user(..)` (tokio-postgres style) |
//! | `PG*` environment variables and libpq defaults | [`Config::resolve`], [`Config::from_env`] |
//!
//! Parsing is a pure function of its input: no environment, no filesystem. That keeps it
//! fuzzable and testable. The environment and the defaults (OS user, socket directory) only
//! enter through [`Config::resolve`], which the connection calls right before connecting.
//! Precedence is libpq's: DSN or setters, then environment, then defaults.
//!
//! ```
//! use pgwire_lite::config::{Config, Host};
//!
//! let cfg: Config = "postgresql://app@db1:5433,db2/orders?application_name=billing".parse()?;
//! assert_eq!(cfg.get_hosts(), &[Host::Tcp("db1".into()), Host::Tcp("db2".into())]);
//! assert_eq!(cfg.get_ports(), &[5433, 5432]);
//! assert_eq!(cfg.get_dbname(), Some("orders"));
//! # Ok::<(), pgwire_lite::error::ConfigError>(())
//! ```

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::error::ConfigError;

/// libpq's `DEF_PGPORT`: used when no port is given, and for each empty entry of a port list.
pub const DEFAULT_PORT: u16 = 5432;

/// Where a local server's socket usually lives: Debian's directory first, then upstream's.
const DEFAULT_SOCKET_DIRS: [&str; 2] = ["/var/run/postgresql", "/tmp"];

/// libpq raises `connect_timeout` values of 1 to 2 seconds: with whole-second rounding a
/// 1-second timeout could fire almost at once (fe-connect.c, `pqConnectDBComplete`).
const MIN_CONNECT_TIMEOUT_SECS: u64 = 2;

/// `/etc/passwd` is read only to find the OS user name; no sane one is larger than this.
const PASSWD_MAX_BYTES: u64 = 8 << 20;

/// The URL prefixes libpq accepts (case-sensitive, as in libpq).
const URL_SCHEMES: [&str; 2] = ["postgresql://", "postgres://"];

/// Keys we parse and store (libpq names).
const SUPPORTED_KEYS: &[&str] = &[
    "host",
    "port",
    "user",
    "password",
    "dbname",
    "options",
    "application_name",
    "fallback_application_name",
    "connect_timeout",
    "client_encoding",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "target_session_attrs",
    "sslmode",
    "require_auth",
    "gssencmode",
    "channel_binding",
    "load_balance_hosts",
];

/// libpq keys we know but cannot honour yet: rejected with "not supported" rather than
/// silently ignored, so nobody believes e.g. `sslrootcert` is being checked.
const UNSUPPORTED_KEYS: &[&str] = &[
    "hostaddr",
    "passfile",
    "service",
    "sslnegotiation",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslcertmode",
    "sslpassword",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "min_protocol_version",
    "max_protocol_version",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "replication",
    "scram_client_key",
    "scram_server_key",
];

/// One server address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A host name or IP address (IPv6 without brackets).
    ///
    /// An empty name is a placeholder for "the default host" (libpq's rule for an empty entry
    /// in a host list such as `host=a,,b`); [`Config::resolve`] replaces it.
    Tcp(String),
    /// The directory holding the server's Unix-domain socket (`.s.PGSQL.<port>` inside it).
    Unix(PathBuf),
}

impl Host {
    /// libpq's rule: a host starting with `/` is a socket directory, anything else a name.
    fn from_libpq(s: &str) -> Host {
        if s.starts_with('/') {
            Host::Unix(PathBuf::from(s))
        } else {
            Host::Tcp(s.to_owned())
        }
    }

    fn is_placeholder(&self) -> bool {
        matches!(self, Host::Tcp(name) if name.is_empty())
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Tcp(name) => f.write_str(name),
            Host::Unix(dir) => write!(f, "{}", dir.display()),
        }
    }
}

/// libpq's `target_session_attrs`: which kind of server a connection attempt accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TargetSessionAttrs {
    /// Any server (the default).
    #[default]
    Any,
    /// A server that accepts writes (`default_transaction_read_only` off, not in recovery).
    ReadWrite,
    /// A server that does not accept writes.
    ReadOnly,
    /// A server that is not in hot standby.
    Primary,
    /// A server in hot standby.
    Standby,
    /// A standby if one is reachable, else any server.
    PreferStandby,
}

impl TargetSessionAttrs {
    /// The libpq spelling, e.g. `"read-write"`.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetSessionAttrs::Any => "any",
            TargetSessionAttrs::ReadWrite => "read-write",
            TargetSessionAttrs::ReadOnly => "read-only",
            TargetSessionAttrs::Primary => "primary",
            TargetSessionAttrs::Standby => "standby",
            TargetSessionAttrs::PreferStandby => "prefer-standby",
        }
    }
}

impl FromStr for TargetSessionAttrs {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Ok(match s {
            "any" => TargetSessionAttrs::Any,
            "read-write" => TargetSessionAttrs::ReadWrite,
            "read-only" => TargetSessionAttrs::ReadOnly,
            "primary" => TargetSessionAttrs::Primary,
            "standby" => TargetSessionAttrs::Standby,
            "prefer-standby" => TargetSessionAttrs::PreferStandby,
            _ => {
                return Err(ConfigError::new(format!(
                    "invalid target_session_attrs value: \"{s}\""
                )));
            }
        })
    }
}

impl fmt::Display for TargetSessionAttrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// libpq's `sslmode`. Only the modes that can work without TLS are accepted by
/// [`Config::validate`] until TLS support lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// Try without TLS first (we never retry with TLS, as there is none yet).
    Allow,
    /// Use TLS when the server offers it (the libpq default; without TLS support this is
    /// plain text).
    #[default]
    Prefer,
    /// TLS required, certificate not checked. Rejected for now.
    Require,
    /// TLS required, certificate chain checked. Rejected for now.
    VerifyCa,
    /// TLS required, certificate chain and host name checked. Rejected for now.
    VerifyFull,
}

impl SslMode {
    /// The libpq spelling, e.g. `"verify-full"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// True for the modes that cannot work without TLS.
    pub fn requires_tls(self) -> bool {
        matches!(
            self,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        )
    }
}

impl FromStr for SslMode {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return Err(ConfigError::new(format!("invalid sslmode value: \"{s}\""))),
        })
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Connection parameters, as libpq understands them.
///
/// Unset parts stay `None`/empty until [`Config::resolve`] fills them from the environment and
/// the defaults. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    hosts: Vec<Host>,
    ports: Vec<u16>,
    user: Option<String>,
    password: Option<Vec<u8>>,
    dbname: Option<String>,
    options: Option<String>,
    application_name: Option<String>,
    fallback_application_name: Option<String>,
    /// Outer `None`: not given (the environment may fill it). `Some(None)`: given as "no
    /// timeout" (`connect_timeout=0`), which must not be overridden by `PGCONNECT_TIMEOUT`.
    connect_timeout: Option<Option<Duration>>,
    target_session_attrs: Option<TargetSessionAttrs>,
    ssl_mode: Option<SslMode>,
    keepalives: bool,
    keepalives_idle: Option<Duration>,
    keepalives_interval: Option<Duration>,
    keepalives_count: Option<u32>,
    tcp_user_timeout: Option<Duration>,
    require_auth: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

/// Prints `<redacted>` in place of the password.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("hosts", &self.hosts)
            .field("ports", &self.ports)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| Redacted))
            .field("dbname", &self.dbname)
            .field("options", &self.options)
            .field("application_name", &self.application_name)
            .field("fallback_application_name", &self.fallback_application_name)
            .field("connect_timeout", &self.get_connect_timeout())
            .field("target_session_attrs", &self.target_session_attrs)
            .field("ssl_mode", &self.ssl_mode)
            .field("keepalives", &self.keepalives)
            .field("keepalives_idle", &self.keepalives_idle)
            .field("keepalives_interval", &self.keepalives_interval)
            .field("keepalives_count", &self.keepalives_count)
            .field("tcp_user_timeout", &self.tcp_user_timeout)
            .field("require_auth", &self.require_auth)
            .finish()
    }
}

impl FromStr for Config {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Config::parse(s)
    }
}

/// Where a value came from, for error messages and for the URL-only `ssl=true`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    Url,
    KeyValue,
}

impl Origin {
    fn suffix(self) -> &'static str {
        match self {
            Origin::Url => " in URL",
            Origin::KeyValue => " in connection string",
        }
    }
}

impl Config {
    /// An empty configuration: everything unset, keepalives on (the libpq default).
    pub fn new() -> Config {
        Config {
            hosts: Vec::new(),
            ports: Vec::new(),
            user: None,
            password: None,
            dbname: None,
            options: None,
            application_name: None,
            fallback_application_name: None,
            connect_timeout: None,
            target_session_attrs: None,
            ssl_mode: None,
            keepalives: true,
            keepalives_idle: None,
            keepalives_interval: None,
            keepalives_count: None,
            tcp_user_timeout: None,
            require_auth: None,
        }
    }

    /// Parses a DSN: a `postgresql://` / `postgres://` URL or a libpq key=value string
    /// (`host=localhost user=u password='a b'`). The empty string is valid (all unset).
    ///
    /// The result is [validated](Config::validate) but not [resolved](Config::resolve).
    /// Pure: reads neither the environment nor the filesystem.
    pub fn parse(s: &str) -> Result<Config, ConfigError> {
        let trimmed = s.trim();
        let cfg = if let Some(rest) = URL_SCHEMES.iter().find_map(|p| trimmed.strip_prefix(p)) {
            parse_url(rest)?
        } else if let Some(scheme) = foreign_scheme(trimmed) {
            return Err(ConfigError::new(format!(
                "unsupported URL scheme \"{scheme}\": expected postgresql:// or postgres://"
            )));
        } else {
            parse_key_value(s)?
        };
        cfg.validate()?;
        Ok(cfg)
    }

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
    fn resolve_inner(
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

    /// Checks what can be checked without the environment; the connection calls it (through
    /// [`Config::resolve`]) before connecting, and [`Config::parse`] calls it too.
    ///
    /// Rejects: an sslmode that needs TLS, a port list that cannot be matched to the host
    /// list, port 0, NUL bytes in any value sent to the server, and `options` that set
    /// `client_encoding` (we always speak UTF8).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(mode) = self.ssl_mode.filter(|m| m.requires_tls()) {
            return Err(ConfigError::new(format!(
                "sslmode={mode}: TLS is not supported yet"
            )));
        }
        if !self.hosts.is_empty() {
            self.check_port_count()?;
        }
        if self.ports.contains(&0) {
            return Err(ConfigError::new("invalid port 0"));
        }
        let texts = [
            ("user", self.user.as_deref()),
            ("dbname", self.dbname.as_deref()),
            ("options", self.options.as_deref()),
            ("application_name", self.application_name.as_deref()),
            (
                "fallback_application_name",
                self.fallback_application_name.as_deref(),
            ),
            ("require_auth", self.require_auth.as_deref()),
        ];
        for (name, value) in texts {
            if value.is_some_and(|v| v.contains('\0')) {
                return Err(ConfigError::new(format!("{name} contains a NUL byte")));
            }
        }
        if let Some(r) = &self.require_auth {
            crate::auth::RequireAuth::parse(r)?;
        }
        if self.password.as_ref().is_some_and(|p| p.contains(&0)) {
            return Err(ConfigError::new("password contains a NUL byte"));
        }
        for host in &self.hosts {
            let nul = match host {
                Host::Tcp(name) => name.contains('\0'),
                Host::Unix(dir) => dir.as_os_str().as_encoded_bytes().contains(&0),
            };
            if nul {
                return Err(ConfigError::new("host contains a NUL byte"));
            }
        }
        if self
            .options
            .as_deref()
            .is_some_and(options_set_client_encoding)
        {
            return Err(ConfigError::new(
                "options must not set client_encoding: pgwire-lite always uses UTF8",
            ));
        }
        Ok(())
    }

    /// libpq: one port for every host, or exactly one per host.
    fn check_port_count(&self) -> Result<(), ConfigError> {
        let (p, h) = (self.ports.len(), self.hosts.len());
        if p > 1 && p != h {
            return Err(ConfigError::new(format!(
                "could not match {p} port numbers to {h} hosts"
            )));
        }
        Ok(())
    }

    fn port_for(&self, i: usize) -> u16 {
        match self.ports.as_slice() {
            [] => DEFAULT_PORT,
            [one] => *one,
            many => many.get(i).copied().unwrap_or(DEFAULT_PORT),
        }
    }

    /// Each host paired with its port, in connection-attempt order. Meant for a
    /// [resolved](Config::resolve) config; on an unresolved one, missing ports are 5432 and
    /// an empty host list gives an empty result.
    pub fn targets(&self) -> Vec<(Host, u16)> {
        self.hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.clone(), self.port_for(i)))
            .collect()
    }

    /// Sets one libpq parameter. Later values replace earlier ones, as in libpq.
    fn set_param(&mut self, key: &str, value: &[u8], origin: Origin) -> Result<(), ConfigError> {
        if key == "password" {
            self.password = (!value.is_empty()).then(|| value.to_vec());
            return Ok(());
        }
        let Ok(v) = std::str::from_utf8(value) else {
            return Err(ConfigError::new(format!(
                "value of \"{key}\" is not valid UTF-8"
            )));
        };
        let opt = || (!v.is_empty()).then(|| v.to_owned());
        let int_for = |v: &str| parse_int(v, &format!("for connection option \"{key}\""));
        match key {
            "host" => self.hosts = parse_host_list(v),
            "port" => self.ports = parse_port_list(v, origin.suffix())?,
            "user" => self.user = opt(),
            "dbname" => self.dbname = opt(),
            "options" => self.options = opt(),
            "application_name" => self.application_name = opt(),
            "fallback_application_name" => self.fallback_application_name = opt(),
            "require_auth" => self.require_auth = opt(),
            "connect_timeout" => {
                self.connect_timeout = Some(parse_connect_timeout(
                    v,
                    "for connection option \"connect_timeout\"",
                )?)
            }
            "client_encoding" => {
                if !is_utf8_name(v) {
                    return Err(ConfigError::new(format!(
                        "client_encoding \"{v}\" is not supported: pgwire-lite always uses UTF8"
                    )));
                }
            }
            "keepalives" => self.keepalives = int_for(v)? != 0,
            "keepalives_idle" => self.keepalives_idle = Some(secs(int_for(v)?)),
            "keepalives_interval" => self.keepalives_interval = Some(secs(int_for(v)?)),
            "keepalives_count" => {
                self.keepalives_count = Some(u32::try_from(int_for(v)?.max(0)).unwrap_or(0))
            }
            "tcp_user_timeout" => {
                let ms = u64::try_from(int_for(v)?.max(0)).unwrap_or(0);
                self.tcp_user_timeout = Some(Duration::from_millis(ms));
            }
            "target_session_attrs" => self.target_session_attrs = Some(v.parse()?),
            "sslmode" => self.ssl_mode = Some(v.parse()?),
            // JDBC spelling that libpq accepts in URLs only.
            "ssl" if origin == Origin::Url => match v {
                "true" => self.ssl_mode = Some(SslMode::Require),
                _ => {
                    return Err(ConfigError::new(format!(
                        "invalid ssl value: \"{v}\" (only \"true\" is accepted)"
                    )));
                }
            },
            // We never attempt GSS encryption: "prefer" degrades to what we do.
            "gssencmode" => match v {
                "disable" | "prefer" => {}
                "require" => {
                    return Err(ConfigError::new(
                        "gssencmode=require: GSSAPI encryption is not supported",
                    ));
                }
                _ => {
                    return Err(ConfigError::new(format!(
                        "invalid gssencmode value: \"{v}\""
                    )));
                }
            },
            // Channel binding needs TLS; without it only "no binding" can be honoured.
            "channel_binding" => match v {
                "disable" | "prefer" => {}
                "require" => {
                    return Err(ConfigError::new(
                        "channel_binding=require: TLS is not supported yet",
                    ));
                }
                _ => {
                    return Err(ConfigError::new(format!(
                        "invalid channel_binding value: \"{v}\""
                    )));
                }
            },
            "load_balance_hosts" => match v {
                "disable" => {}
                "random" => {
                    return Err(ConfigError::new(
                        "load_balance_hosts=random is not supported yet",
                    ));
                }
                _ => {
                    return Err(ConfigError::new(format!(
                        "invalid load_balance_hosts value: \"{v}\""
                    )));
                }
            },
            _ if UNSUPPORTED_KEYS.contains(&key) => {
                return Err(ConfigError::new(format!(
                    "connection option \"{key}\" is not supported"
                )));
            }
            _ => {
                return Err(ConfigError::new(format!(
                    "invalid connection option \"{key}\""
                )));
            }
        }
        Ok(())
    }

    // ---- builder setters ----

    /// Appends a host. A value starting with `/` is a Unix socket directory, anything else a
    /// host name or IP address. An empty value stands for the default host.
    pub fn host(&mut self, host: &str) -> &mut Self {
        self.hosts.push(Host::from_libpq(host));
        self
    }

    /// Appends a Unix socket directory, whatever its first character.
    pub fn host_path(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.hosts.push(Host::Unix(dir.as_ref().to_path_buf()));
        self
    }

    /// Appends a port: give one for all hosts, or one per host in host order.
    pub fn port(&mut self, port: u16) -> &mut Self {
        self.ports.push(port);
        self
    }

    /// Sets the user name. An empty string unsets it.
    pub fn user(&mut self, user: &str) -> &mut Self {
        self.user = non_empty(user);
        self
    }

    /// Sets the password (any bytes; SCRAM applies SASLprep when it is UTF-8). An empty
    /// password unsets it, as in libpq.
    pub fn password(&mut self, password: impl AsRef<[u8]>) -> &mut Self {
        let p = password.as_ref();
        self.password = (!p.is_empty()).then(|| p.to_vec());
        self
    }

    /// Sets the database name. An empty string unsets it.
    pub fn dbname(&mut self, dbname: &str) -> &mut Self {
        self.dbname = non_empty(dbname);
        self
    }

    /// Sets the command-line options sent to the server (e.g. `-c search_path=app`).
    pub fn options(&mut self, options: &str) -> &mut Self {
        self.options = non_empty(options);
        self
    }

    /// Sets `application_name`.
    pub fn application_name(&mut self, name: &str) -> &mut Self {
        self.application_name = non_empty(name);
        self
    }

    /// Sets the application name used when neither `application_name` nor `PGAPPNAME` is
    /// set (for tools that want a default their users can override).
    pub fn fallback_application_name(&mut self, name: &str) -> &mut Self {
        self.fallback_application_name = non_empty(name);
        self
    }

    /// Sets the timeout for each connection attempt (each host). `Duration::ZERO` means no
    /// timeout. Unlike the DSN form, sub-2-second values are kept as given.
    pub fn connect_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.connect_timeout = Some((!timeout.is_zero()).then_some(timeout));
        self
    }

    /// Sets which kind of server is acceptable.
    pub fn target_session_attrs(&mut self, attrs: TargetSessionAttrs) -> &mut Self {
        self.target_session_attrs = Some(attrs);
        self
    }

    /// Sets the TLS mode. Modes needing TLS fail [`Config::validate`] for now.
    pub fn ssl_mode(&mut self, mode: SslMode) -> &mut Self {
        self.ssl_mode = Some(mode);
        self
    }

    /// Turns TCP keepalives on or off (on by default).
    pub fn keepalives(&mut self, on: bool) -> &mut Self {
        self.keepalives = on;
        self
    }

    /// Sets the idle time before the first keepalive probe.
    pub fn keepalives_idle(&mut self, idle: Duration) -> &mut Self {
        self.keepalives_idle = Some(idle);
        self
    }

    /// Sets the time between keepalive probes.
    pub fn keepalives_interval(&mut self, interval: Duration) -> &mut Self {
        self.keepalives_interval = Some(interval);
        self
    }

    /// Sets how many unanswered keepalive probes drop the connection.
    pub fn keepalives_count(&mut self, count: u32) -> &mut Self {
        self.keepalives_count = Some(count);
        self
    }

    /// Sets `TCP_USER_TIMEOUT`: how long sent data may stay unacknowledged.
    pub fn tcp_user_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.tcp_user_timeout = Some(timeout);
        self
    }

    /// Sets `require_auth` (libpq grammar, e.g. `scram-sha-256` or `!password`), stored as
    /// written.
    pub fn require_auth(&mut self, methods: &str) -> &mut Self {
        self.require_auth = non_empty(methods);
        self
    }

    // ---- getters ----

    /// The hosts, in attempt order. An empty `Host::Tcp` is a default-host placeholder.
    pub fn get_hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The ports: empty, one for all hosts, or one per host.
    pub fn get_ports(&self) -> &[u16] {
        &self.ports
    }

    /// The user name.
    pub fn get_user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The password.
    pub fn get_password(&self) -> Option<&[u8]> {
        self.password.as_deref()
    }

    /// The database name.
    pub fn get_dbname(&self) -> Option<&str> {
        self.dbname.as_deref()
    }

    /// The command-line options for the server.
    pub fn get_options(&self) -> Option<&str> {
        self.options.as_deref()
    }

    /// `application_name`.
    pub fn get_application_name(&self) -> Option<&str> {
        self.application_name.as_deref()
    }

    /// `fallback_application_name`.
    pub fn get_fallback_application_name(&self) -> Option<&str> {
        self.fallback_application_name.as_deref()
    }

    /// The per-attempt connect timeout; `None` means wait as long as the OS does.
    pub fn get_connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout.flatten()
    }

    /// `target_session_attrs` (`Any` when unset).
    pub fn get_target_session_attrs(&self) -> TargetSessionAttrs {
        self.target_session_attrs.unwrap_or_default()
    }

    /// `sslmode` (`Prefer` when unset, as in libpq).
    pub fn get_ssl_mode(&self) -> SslMode {
        self.ssl_mode.unwrap_or_default()
    }

    /// Whether TCP keepalives are on.
    pub fn get_keepalives(&self) -> bool {
        self.keepalives
    }

    /// `keepalives_idle`, if set.
    pub fn get_keepalives_idle(&self) -> Option<Duration> {
        self.keepalives_idle
    }

    /// `keepalives_interval`, if set.
    pub fn get_keepalives_interval(&self) -> Option<Duration> {
        self.keepalives_interval
    }

    /// `keepalives_count`, if set.
    pub fn get_keepalives_count(&self) -> Option<u32> {
        self.keepalives_count
    }

    /// `tcp_user_timeout`, if set.
    pub fn get_tcp_user_timeout(&self) -> Option<Duration> {
        self.tcp_user_timeout
    }

    /// `require_auth` as written.
    pub fn get_require_auth(&self) -> Option<&str> {
        self.require_auth.as_deref()
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn secs(n: i32) -> Duration {
    Duration::from_secs(u64::try_from(n).unwrap_or(0))
}

/// The server accepts these spellings of UTF8 (case-insensitively).
fn is_utf8_name(v: &str) -> bool {
    ["utf8", "utf-8", "unicode"]
        .iter()
        .any(|n| v.trim().eq_ignore_ascii_case(n))
}

/// libpq's `parse_int_param`: an `int`, surrounding whitespace allowed, nothing else.
fn parse_int(v: &str, context: &str) -> Result<i32, ConfigError> {
    v.trim()
        .parse::<i32>()
        .map_err(|_| ConfigError::new(format!("invalid integer value \"{v}\" {context}")))
}

/// libpq: whole seconds; zero or negative means no timeout; 1 is raised to 2.
fn parse_connect_timeout(v: &str, context: &str) -> Result<Option<Duration>, ConfigError> {
    let n = parse_int(v, context)?;
    Ok(u64::try_from(n)
        .ok()
        .filter(|&s| s > 0)
        .map(|s| Duration::from_secs(s.max(MIN_CONNECT_TIMEOUT_SECS))))
}

/// A comma-separated host list. An empty string is "no hosts"; empty entries in a longer list
/// are default-host placeholders (libpq).
fn parse_host_list(v: &str) -> Vec<Host> {
    if v.is_empty() {
        return Vec::new();
    }
    v.split(',').map(Host::from_libpq).collect()
}

/// A comma-separated port list. An empty string is "no ports"; empty entries are 5432
/// (libpq's `DEF_PGPORT`, not `PGPORT`).
fn parse_port_list(v: &str, suffix: &str) -> Result<Vec<u16>, ConfigError> {
    if v.is_empty() {
        return Ok(Vec::new());
    }
    v.split(',').map(|p| parse_port(p, suffix, true)).collect()
}

/// One port, 1..=65535. `echo` is false when the text might be a piece of a password.
fn parse_port(p: &str, suffix: &str, echo: bool) -> Result<u16, ConfigError> {
    let p = p.trim();
    if p.is_empty() {
        return Ok(DEFAULT_PORT);
    }
    match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ if echo => Err(ConfigError::new(format!("invalid port \"{p}\"{suffix}"))),
        _ => Err(ConfigError::new(format!(
            "invalid port{suffix} (value not shown: it may be part of a password; \
             percent-encode special characters in the password)"
        ))),
    }
}

/// `mysql://…` and friends: name the scheme instead of failing with a confusing key=value
/// error. Only a plain scheme token is echoed.
fn foreign_scheme(s: &str) -> Option<&str> {
    let (scheme, _) = s.split_once("://")?;
    let plain = !scheme.is_empty()
        && scheme.len() <= 32
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    plain.then_some(scheme)
}

/// RFC 3986 percent-decoding (`+` stays `+`, as in libpq). `%00` decodes to NUL, which
/// [`Config::validate`] then rejects.
fn percent_decode(s: &str, part: &str) -> Result<Vec<u8>, ConfigError> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let hi = bytes.next().and_then(hex_val);
        let lo = bytes.next().and_then(hex_val);
        match (hi, lo) {
            (Some(h), Some(l)) => out.push((h << 4) | l),
            _ => {
                return Err(ConfigError::new(format!(
                    "invalid percent-encoding in URL {part}"
                )));
            }
        }
    }
    Ok(out)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn percent_decode_str(s: &str, part: &str) -> Result<String, ConfigError> {
    String::from_utf8(percent_decode(s, part)?)
        .map_err(|_| ConfigError::new(format!("URL {part} is not valid UTF-8")))
}

/// Parses what follows `postgresql://`:
/// `[user[:password]@][host[:port][,host[:port]...]][/dbname][?key=value&...]`.
fn parse_url(rest: &str) -> Result<Config, ConfigError> {
    let mut cfg = Config::new();
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    // The last '@' before the query ends the credentials, so a password with an unencoded
    // '/' or '@' still parses.
    let (userinfo, hostpart) = match before_query.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, before_query),
    };
    if let Some(userinfo) = userinfo {
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (userinfo, None),
        };
        cfg.user = non_empty(&percent_decode_str(user, "user")?);
        if let Some(p) = password {
            let p = percent_decode(p, "password")?;
            cfg.password = (!p.is_empty()).then_some(p);
        }
    }
    // Without credentials, "a:b" could be "user:password" missing its "@host": never echo
    // a port then.
    let echo = userinfo.is_some();

    let (netloc, path) = match hostpart.split_once('/') {
        Some((n, p)) => (n, Some(p)),
        None => (hostpart, None),
    };
    parse_netloc(&mut cfg, netloc, echo)?;
    if let Some(path) = path {
        cfg.dbname = non_empty(&percent_decode_str(path, "dbname")?);
    }

    if let Some(query) = query {
        for (n, param) in query.split('&').enumerate() {
            if param.is_empty() {
                continue;
            }
            let Some((key, value)) = param.split_once('=') else {
                // Not echoed: a password with an unencoded '&' would land here.
                return Err(ConfigError::new(format!(
                    "missing \"=\" in URL query parameter number {}",
                    n + 1
                )));
            };
            let key = percent_decode_str(key, "query parameter name")?;
            let value = percent_decode(value, &format!("query parameter \"{key}\""))?;
            cfg.set_param(&key, &value, Origin::Url)?;
        }
    }
    Ok(cfg)
}

/// `host[:port][,host[:port]...]`, hosts possibly `[ipv6]`, all parts percent-decoded.
fn parse_netloc(cfg: &mut Config, netloc: &str, echo: bool) -> Result<(), ConfigError> {
    let mut entries: Vec<(String, &str)> = Vec::new();
    let mut rest = netloc;
    loop {
        let (host, after) = if let Some(inner) = rest.strip_prefix('[') {
            let Some((addr, after)) = inner.split_once(']') else {
                return Err(ConfigError::new("missing \"]\" after IPv6 address in URL"));
            };
            (addr, after)
        } else {
            let end = rest.find([':', ',']).unwrap_or(rest.len());
            rest.split_at(end)
        };
        let (port, after) = match after.strip_prefix(':') {
            Some(p) => p.split_at(p.find(',').unwrap_or(p.len())),
            None => ("", after),
        };
        entries.push((percent_decode_str(host, "host")?, port));
        if after.is_empty() {
            break;
        }
        let Some(next) = after.strip_prefix(',') else {
            return Err(ConfigError::new(
                "unexpected character after IPv6 address in URL (expected \":\", \",\" or \"/\")",
            ));
        };
        rest = next;
    }
    // libpq stores the host and port lists only when non-empty: a lone empty host (and a
    // lone empty port) leaves them unset, for the environment to fill.
    if let [(host, port)] = entries.as_slice() {
        if host.is_empty() {
            cfg.hosts.clear();
        } else {
            cfg.hosts = vec![Host::from_libpq(host)];
        }
        cfg.ports = if port.is_empty() {
            Vec::new()
        } else {
            vec![parse_port(port, " in URL", echo)?]
        };
        return Ok(());
    }
    cfg.hosts = entries.iter().map(|(h, _)| Host::from_libpq(h)).collect();
    cfg.ports = entries
        .iter()
        .map(|(_, p)| parse_port(p, " in URL", echo))
        .collect::<Result<_, _>>()?;
    Ok(())
}

/// libpq's `isspace` set.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// `key = value ...`; values may be single-quoted; `\` escapes the next character, in and out
/// of quotes.
fn parse_key_value(s: &str) -> Result<Config, ConfigError> {
    let mut cfg = Config::new();
    let mut chars = s.chars().peekable();
    // After an unquoted password, a stray token is probably the rest of a password with a
    // space in it: name nothing from it in errors.
    let mut after_bare_password = false;
    loop {
        while chars.next_if(|c| is_space(*c)).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !is_space(*c)) {
            key.push(c);
        }
        while chars.next_if(|c| is_space(*c)).is_some() {}
        if chars.next_if_eq(&'=').is_none() {
            return Err(if after_bare_password {
                ConfigError::new(
                    "missing \"=\" after the password value in connection string \
                     (quote a password containing spaces: password='...')",
                )
            } else {
                ConfigError::new(format!(
                    "missing \"=\" after \"{key}\" in connection string"
                ))
            });
        }
        if after_bare_password
            && !SUPPORTED_KEYS.contains(&key.as_str())
            && !UNSUPPORTED_KEYS.contains(&key.as_str())
        {
            return Err(ConfigError::new(
                "invalid connection option after the password value \
                 (quote a password containing spaces: password='...')",
            ));
        }
        while chars.next_if(|c| is_space(*c)).is_some() {}
        let mut value = String::new();
        let quoted = chars.next_if_eq(&'\'').is_some();
        if quoted {
            loop {
                match chars.next() {
                    None => {
                        return Err(ConfigError::new(format!(
                            "unterminated quoted value for key \"{key}\""
                        )));
                    }
                    Some('\\') => {
                        if let Some(c) = chars.next() {
                            value.push(c);
                        }
                    }
                    Some('\'') => break,
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !is_space(*c)) {
                if c == '\\' {
                    // A trailing backslash is dropped, as in libpq.
                    if let Some(escaped) = chars.next() {
                        value.push(escaped);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        cfg.set_param(&key, value.as_bytes(), Origin::KeyValue)?;
        after_bare_password = key == "password" && !quoted;
    }
    Ok(cfg)
}

/// Splits `options` the way the server does (`pg_split_opts`): on whitespace, with `\`
/// escaping the next character.
fn split_options(s: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| is_space(*c)).is_some() {}
        if chars.peek().is_none() {
            return args;
        }
        let mut arg = String::new();
        while let Some(c) = chars.next_if(|c| !is_space(*c)) {
            if c == '\\' {
                if let Some(escaped) = chars.next() {
                    arg.push(escaped);
                }
            } else {
                arg.push(c);
            }
        }
        args.push(arg);
    }
}

/// The server's switches that take an argument (postgres.c, `process_postgres_switches`:
/// "B:bC:c:D:d:EeFf:h:ijk:lN:nOPp:r:S:sTt:v:W:-:").
const SWITCHES_WITH_ARG: &str = "BCcDdfhkNprStvW-";

/// True when `options` sets `client_encoding` through `-c name=value`, `-cname=value`,
/// `--name=value` or a cluster such as `-ec name=value`, in any case and with `-` for `_`.
fn options_set_client_encoding(options: &str) -> bool {
    let args = split_options(options);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let Some(switches) = arg.strip_prefix('-') else {
            continue;
        };
        for (i, c) in switches.char_indices() {
            if !SWITCHES_WITH_ARG.contains(c) {
                continue;
            }
            let attached = switches.get(i + c.len_utf8()..).unwrap_or("");
            let optarg = if attached.is_empty() {
                it.next().map(String::as_str).unwrap_or("")
            } else {
                attached
            };
            if matches!(c, 'c' | '-') {
                let name = optarg.split('=').next().unwrap_or("");
                if name.trim().to_ascii_lowercase().replace('-', "_") == "client_encoding" {
                    return true;
                }
            }
            break;
        }
    }
    false
}

/// What [`Config::resolve`] asks of the machine, so tests can stand in for it.
trait Probe {
    fn socket_exists(&self, path: &Path) -> bool;
    fn os_user(&self) -> Option<String>;
}

struct SystemProbe;

impl Probe for SystemProbe {
    fn socket_exists(&self, path: &Path) -> bool {
        std::fs::symlink_metadata(path).is_ok()
    }

    fn os_user(&self) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        // /proc/self belongs to the effective uid; this avoids libc for geteuid().
        let uid = std::fs::metadata("/proc/self").ok()?.uid();
        let file = std::fs::File::open("/etc/passwd").ok()?;
        let mut contents = String::new();
        file.take(PASSWD_MAX_BYTES)
            .read_to_string(&mut contents)
            .ok()?;
        user_from_passwd(&contents, uid)
    }
}

/// The name on the first `/etc/passwd` line (`name:pw:uid:...`) with this uid.
fn user_from_passwd(contents: &str, uid: u32) -> Option<String> {
    contents.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let line_uid: u32 = fields.nth(1)?.trim().parse().ok()?;
        (line_uid == uid && !name.is_empty()).then(|| name.to_owned())
    })
}

/// The first default socket directory holding this port's socket, else `localhost`.
fn default_host(port: u16, probe: &dyn Probe) -> Host {
    DEFAULT_SOCKET_DIRS
        .iter()
        .map(Path::new)
        .find(|dir| probe.socket_exists(&dir.join(format!(".s.PGSQL.{port}"))))
        .map(|dir| Host::Unix(dir.to_path_buf()))
        .unwrap_or_else(|| Host::Tcp("localhost".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn parse(s: &str) -> Config {
        match Config::parse(s) {
            Ok(c) => c,
            Err(e) => panic!("{s:?} should parse, got: {e}"),
        }
    }

    fn parse_err(s: &str) -> String {
        match Config::parse(s) {
            Ok(c) => panic!("{s:?} should fail, got {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn tcp(s: &str) -> Host {
        Host::Tcp(s.into())
    }

    fn unix(s: &str) -> Host {
        Host::Unix(s.into())
    }

    /// A fake machine: which sockets exist, what /etc/passwd would say.
    struct FakeProbe {
        sockets: Vec<&'static str>,
        os_user: Option<&'static str>,
    }

    impl Probe for FakeProbe {
        fn socket_exists(&self, path: &Path) -> bool {
            self.sockets.iter().any(|s| Path::new(s) == path)
        }
        fn os_user(&self) -> Option<String> {
            self.os_user.map(str::to_owned)
        }
    }

    const NO_MACHINE: FakeProbe = FakeProbe {
        sockets: Vec::new(),
        os_user: None,
    };

    fn resolve(cfg: &Config, env: &[(&str, &str)], probe: &FakeProbe) -> Result<Config, String> {
        let map: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env = move |k: &str| map.get(k).cloned();
        cfg.resolve_inner(&env, probe).map_err(|e| e.to_string())
    }

    // ---- the DSNs the issue lists, each exactly ----

    #[test]
    fn url_user_at_localhost() {
        let c = parse("postgresql://user@localhost");
        assert_eq!(c.get_hosts(), &[tcp("localhost")]);
        assert!(c.get_ports().is_empty());
        assert_eq!(c.get_user(), Some("user"));
        assert_eq!(c.get_password(), None);
        assert_eq!(c.get_dbname(), None);
    }

    #[test]
    fn url_encoded_socket_dir_password_and_timeout() {
        let c =
            parse("postgresql://user:password@%2Fvar%2Flib%2Fpostgresql/mydb?connect_timeout=10");
        assert_eq!(c.get_hosts(), &[unix("/var/lib/postgresql")]);
        assert_eq!(c.get_user(), Some("user"));
        assert_eq!(c.get_password(), Some(&b"password"[..]));
        assert_eq!(c.get_dbname(), Some("mydb"));
        assert_eq!(c.get_connect_timeout(), Some(Duration::from_secs(10)));
    }

    #[test]
    fn url_multi_host_with_target_session_attrs() {
        let c =
            parse("postgresql://user@host1:1234,host2,host3:5678?target_session_attrs=read-write");
        assert_eq!(c.get_hosts(), &[tcp("host1"), tcp("host2"), tcp("host3")]);
        assert_eq!(c.get_ports(), &[1234, DEFAULT_PORT, 5678]);
        assert_eq!(c.get_user(), Some("user"));
        assert_eq!(c.get_target_session_attrs(), TargetSessionAttrs::ReadWrite);
        assert_eq!(
            c.targets(),
            vec![
                (tcp("host1"), 1234),
                (tcp("host2"), 5432),
                (tcp("host3"), 5678)
            ]
        );
    }

    #[test]
    fn url_empty_host_with_query_host_and_user() {
        let c = parse("postgresql:///mydb?user=user&host=/var/lib/postgresql");
        assert_eq!(c.get_hosts(), &[unix("/var/lib/postgresql")]);
        assert_eq!(c.get_user(), Some("user"));
        assert_eq!(c.get_dbname(), Some("mydb"));
        assert!(c.get_ports().is_empty());
    }

    #[test]
    fn key_value_with_quoted_escaped_password() {
        let c = parse(r"host=localhost port=5432 user=u password='a b\'c' dbname=d");
        assert_eq!(c.get_hosts(), &[tcp("localhost")]);
        assert_eq!(c.get_ports(), &[5432]);
        assert_eq!(c.get_user(), Some("u"));
        assert_eq!(c.get_password(), Some(&b"a b'c"[..]));
        assert_eq!(c.get_dbname(), Some("d"));
    }

    #[test]
    fn url_postgres_scheme_full() {
        let c = parse("postgres://postgres:postgres@localhost:5432/postgres");
        assert_eq!(c.get_hosts(), &[tcp("localhost")]);
        assert_eq!(c.get_ports(), &[5432]);
        assert_eq!(c.get_user(), Some("postgres"));
        assert_eq!(c.get_password(), Some(&b"postgres"[..]));
        assert_eq!(c.get_dbname(), Some("postgres"));
    }

    // ---- URL details ----

    #[test]
    fn url_ipv6() {
        let c = parse("postgresql://[::1]:5432/db");
        assert_eq!(c.get_hosts(), &[tcp("::1")]);
        assert_eq!(c.get_ports(), &[5432]);
        let c = parse("postgresql://u@[::1],[2001:db8::2]:6000");
        assert_eq!(c.get_hosts(), &[tcp("::1"), tcp("2001:db8::2")]);
        assert_eq!(c.get_ports(), &[5432, 6000]);
        let c = parse("postgresql://[fe80::1%25eth0]");
        assert_eq!(c.get_hosts(), &[tcp("fe80::1%eth0")]);
        assert_eq!(
            parse_err("postgresql://[::1:5432/db"),
            "missing \"]\" after IPv6 address in URL"
        );
        assert!(parse_err("postgresql://[::1]x/db").contains("after IPv6 address"));
        let c = parse("host=::1 port=5433");
        assert_eq!(c.get_hosts(), &[tcp("::1")]);
    }

    #[test]
    fn url_empty_hosts() {
        for s in [
            "postgresql://",
            "postgres://",
            "postgresql:///",
            "postgresql://user@",
            "postgresql://[]",
        ] {
            let c = parse(s);
            assert!(c.get_hosts().is_empty(), "{s}");
            assert!(c.get_ports().is_empty(), "{s}");
            assert_eq!(c.get_dbname(), None, "{s}");
        }
        let c = parse("postgresql:///db");
        assert!(c.get_hosts().is_empty());
        assert_eq!(c.get_dbname(), Some("db"));
        let c = parse("postgresql://:5433/db");
        assert!(c.get_hosts().is_empty());
        assert_eq!(c.get_ports(), &[5433]);
        // Two empty entries are two default-host placeholders (libpq).
        let c = parse("postgresql://,");
        assert_eq!(c.get_hosts(), &[tcp(""), tcp("")]);
        assert_eq!(c.get_ports(), &[5432, 5432]);
    }

    #[test]
    fn url_percent_decoding_everywhere() {
        let c = parse(
            "postgresql://us%40er:p%40ss%2Fw%3Ard%FF@my%2Dhost:5432/my%20db\
             ?application_name=a%26b%3Dc&options=-c%20search_path%3Dx",
        );
        assert_eq!(c.get_user(), Some("us@er"));
        assert_eq!(c.get_password(), Some(&b"p@ss/w:rd\xff"[..]));
        assert_eq!(c.get_hosts(), &[tcp("my-host")]);
        assert_eq!(c.get_dbname(), Some("my db"));
        assert_eq!(c.get_application_name(), Some("a&b=c"));
        assert_eq!(c.get_options(), Some("-c search_path=x"));
        // '+' is not a space in libpq URLs.
        assert_eq!(parse("postgresql:///a+b").get_dbname(), Some("a+b"));
        // Percent-encoded key names too.
        assert_eq!(parse("postgresql://?%75ser=x").get_user(), Some("x"));
    }

    #[test]
    fn url_bad_percent_encoding_names_the_part() {
        assert_eq!(
            parse_err("postgresql://u@h/d%zz"),
            "invalid percent-encoding in URL dbname"
        );
        assert_eq!(
            parse_err("postgresql://u@h%2/d"),
            "invalid percent-encoding in URL host"
        );
        assert_eq!(
            parse_err("postgresql://u@h/d?user=%"),
            "invalid percent-encoding in URL query parameter \"user\""
        );
        assert_eq!(
            parse_err("postgresql://u@h/%FF"),
            "URL dbname is not valid UTF-8"
        );
    }

    #[test]
    fn url_password_with_unencoded_slash_and_at() {
        let c = parse("postgresql://u:pa/s@s@host/db");
        assert_eq!(c.get_password(), Some(&b"pa/s@s"[..]));
        assert_eq!(c.get_hosts(), &[tcp("host")]);
        assert_eq!(c.get_dbname(), Some("db"));
    }

    #[test]
    fn url_query_overrides_and_errors() {
        let c = parse("postgresql://a@h1/db1?user=b&dbname=db2&port=7&&");
        assert_eq!(c.get_user(), Some("b"));
        assert_eq!(c.get_dbname(), Some("db2"));
        assert_eq!(c.get_ports(), &[7]);
        assert_eq!(
            parse_err("postgresql://h/db?user=x&oops"),
            "missing \"=\" in URL query parameter number 2"
        );
        assert_eq!(
            parse_err("postgresql://h/db?foo=1"),
            "invalid connection option \"foo\""
        );
    }

    #[test]
    fn url_port_errors() {
        assert_eq!(
            parse_err("postgresql://u:p@h:abc/db"),
            "invalid port \"abc\" in URL"
        );
        assert_eq!(
            parse_err("postgresql://u@h:70000"),
            "invalid port \"70000\" in URL"
        );
        assert_eq!(parse_err("postgresql://u@h:0"), "invalid port \"0\" in URL");
        // Without credentials "a:b" may be "user:password": the value is not shown.
        let e = parse_err("postgresql://h:abc/db");
        assert!(e.starts_with("invalid port in URL"), "{e}");
        assert!(!e.contains("abc"), "{e}");
    }

    #[test]
    fn url_ssl_true_is_sslmode_require() {
        assert_eq!(
            parse_err("postgresql://h?ssl=true"),
            "sslmode=require: TLS is not supported yet"
        );
        assert!(parse_err("postgresql://h?ssl=1").contains("invalid ssl value"));
        assert_eq!(parse_err("ssl=true"), "invalid connection option \"ssl\"");
    }

    #[test]
    fn foreign_scheme_is_named() {
        assert_eq!(
            parse_err("mysql://u:secret@h/db"),
            "unsupported URL scheme \"mysql\": expected postgresql:// or postgres://"
        );
    }

    // ---- key=value details ----

    #[test]
    fn key_value_spaces_around_equals() {
        let c = parse("  host =  h1\tport= 6000\n user  =u   dbname='my db'  ");
        assert_eq!(c.get_hosts(), &[tcp("h1")]);
        assert_eq!(c.get_ports(), &[6000]);
        assert_eq!(c.get_user(), Some("u"));
        assert_eq!(c.get_dbname(), Some("my db"));
    }

    #[test]
    fn key_value_backslash_escapes() {
        let c = parse(r"password=a\ b\\c\'d dbname='x\\y' user=\u");
        assert_eq!(c.get_password(), Some(&br"a b\c'd"[..]));
        assert_eq!(c.get_dbname(), Some(r"x\y"));
        assert_eq!(c.get_user(), Some("u"));
        // A trailing backslash is dropped, like libpq.
        assert_eq!(parse(r"user=u\").get_user(), Some("u"));
        // Non-ASCII survives escaping.
        assert_eq!(parse(r"user=\é").get_user(), Some("é"));
        // Empty quoted value = unset.
        assert_eq!(parse("user=''").get_user(), None);
    }

    #[test]
    fn key_value_errors() {
        assert_eq!(
            parse_err("password='abc"),
            "unterminated quoted value for key \"password\""
        );
        assert_eq!(
            parse_err("host=h dbname"),
            "missing \"=\" after \"dbname\" in connection string"
        );
        assert_eq!(parse_err("foo=bar"), "invalid connection option \"foo\"");
        assert_eq!(parse_err("=bar"), "invalid connection option \"\"");
        assert_eq!(
            parse_err("hostaddr=127.0.0.1"),
            "connection option \"hostaddr\" is not supported"
        );
        assert_eq!(
            parse_err("port=abc"),
            "invalid port \"abc\" in connection string"
        );
        assert_eq!(
            parse_err("port=0"),
            "invalid port \"0\" in connection string"
        );
    }

    #[test]
    fn empty_input_is_all_unset() {
        assert_eq!(parse(""), Config::new());
        assert_eq!(parse("   "), Config::new());
    }

    #[test]
    fn later_values_replace_earlier_ones() {
        let c = parse("host=a,b host=c user=x user=y");
        assert_eq!(c.get_hosts(), &[tcp("c")]);
        assert_eq!(c.get_user(), Some("y"));
    }

    #[test]
    fn multi_host_port_rules() {
        let c = parse("host=a,b,c port=1,,3");
        assert_eq!(c.get_hosts(), &[tcp("a"), tcp("b"), tcp("c")]);
        assert_eq!(c.get_ports(), &[1, 5432, 3]);
        let c = parse("host=a,/tmp,b port=7");
        assert_eq!(
            c.targets(),
            vec![(tcp("a"), 7), (unix("/tmp"), 7), (tcp("b"), 7)]
        );
        assert_eq!(
            parse_err("host=a,b port=1,2,3"),
            "could not match 3 port numbers to 2 hosts"
        );
        // Host list entries that are empty are default-host placeholders.
        assert_eq!(
            parse("host=a,,b").get_hosts(),
            &[tcp("a"), tcp(""), tcp("b")]
        );
        // Port list alone is fine until the hosts are known.
        assert_eq!(parse("port=1,2").get_ports(), &[1, 2]);
    }

    #[test]
    fn unix_socket_hosts() {
        assert_eq!(parse("host=/tmp").get_hosts(), &[unix("/tmp")]);
        assert_eq!(
            parse("host=/var/run/postgresql,db.example").get_hosts(),
            &[unix("/var/run/postgresql"), tcp("db.example")]
        );
    }

    // ---- parameter semantics ----

    #[test]
    fn connect_timeout_follows_libpq() {
        let t = |v: &str| parse(&format!("connect_timeout={v}")).get_connect_timeout();
        assert_eq!(t("10"), Some(Duration::from_secs(10)));
        assert_eq!(t(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(t("2"), Some(Duration::from_secs(2)));
        assert_eq!(t("1"), Some(Duration::from_secs(2)));
        assert_eq!(t("0"), None);
        assert_eq!(t("-5"), None);
        assert_eq!(
            parse_err("connect_timeout=1s"),
            "invalid integer value \"1s\" for connection option \"connect_timeout\""
        );
        assert!(parse_err("connect_timeout=99999999999").contains("invalid integer value"));
    }

    #[test]
    fn target_session_attrs_values() {
        for (v, want) in [
            ("any", TargetSessionAttrs::Any),
            ("read-write", TargetSessionAttrs::ReadWrite),
            ("read-only", TargetSessionAttrs::ReadOnly),
            ("primary", TargetSessionAttrs::Primary),
            ("standby", TargetSessionAttrs::Standby),
            ("prefer-standby", TargetSessionAttrs::PreferStandby),
        ] {
            let c = parse(&format!("target_session_attrs={v}"));
            assert_eq!(c.get_target_session_attrs(), want);
            assert_eq!(want.as_str(), v);
        }
        assert_eq!(
            Config::new().get_target_session_attrs(),
            TargetSessionAttrs::Any
        );
        assert_eq!(
            parse_err("target_session_attrs=master"),
            "invalid target_session_attrs value: \"master\""
        );
    }

    #[test]
    fn sslmode_values() {
        for (v, want) in [
            ("disable", SslMode::Disable),
            ("allow", SslMode::Allow),
            ("prefer", SslMode::Prefer),
        ] {
            assert_eq!(parse(&format!("sslmode={v}")).get_ssl_mode(), want);
            assert_eq!(want.to_string(), v);
        }
        for v in ["require", "verify-ca", "verify-full"] {
            assert_eq!(
                parse_err(&format!("sslmode={v}")),
                format!("sslmode={v}: TLS is not supported yet")
            );
            assert_eq!(v.parse::<SslMode>().map(SslMode::as_str), Ok(v));
        }
        assert_eq!(parse_err("sslmode=on"), "invalid sslmode value: \"on\"");
        assert_eq!(Config::new().get_ssl_mode(), SslMode::Prefer);
        let mut c = Config::new();
        c.ssl_mode(SslMode::VerifyFull);
        assert_eq!(
            c.validate().map_err(|e| e.to_string()),
            Err("sslmode=verify-full: TLS is not supported yet".to_string())
        );
    }

    #[test]
    fn keepalive_and_tcp_parameters() {
        let c = parse(
            "keepalives=0 keepalives_idle=30 keepalives_interval=5 keepalives_count=3 \
             tcp_user_timeout=1500 require_auth=scram-sha-256,md5",
        );
        assert!(!c.get_keepalives());
        assert_eq!(c.get_keepalives_idle(), Some(Duration::from_secs(30)));
        assert_eq!(c.get_keepalives_interval(), Some(Duration::from_secs(5)));
        assert_eq!(c.get_keepalives_count(), Some(3));
        assert_eq!(c.get_tcp_user_timeout(), Some(Duration::from_millis(1500)));
        assert_eq!(c.get_require_auth(), Some("scram-sha-256,md5"));
        assert!(parse("keepalives=1").get_keepalives());
        assert!(Config::new().get_keepalives());
        // Negative values are clamped to 0, as libpq does for the keepalive knobs.
        assert_eq!(
            parse("keepalives_idle=-1").get_keepalives_idle(),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_err("keepalives=yes"),
            "invalid integer value \"yes\" for connection option \"keepalives\""
        );
    }

    #[test]
    fn other_libpq_keys() {
        parse("gssencmode=disable channel_binding=prefer load_balance_hosts=disable");
        assert!(parse_err("gssencmode=require").contains("not supported"));
        assert_eq!(
            parse_err("channel_binding=require"),
            "channel_binding=require: TLS is not supported yet"
        );
        assert!(parse_err("load_balance_hosts=random").contains("not supported"));
        assert_eq!(
            parse_err("sslrootcert=/x"),
            "connection option \"sslrootcert\" is not supported"
        );
        let c = parse("fallback_application_name=tool");
        assert_eq!(c.get_fallback_application_name(), Some("tool"));
        assert_eq!(c.get_application_name(), None);
    }

    #[test]
    fn client_encoding_must_stay_utf8() {
        for ok in ["UTF8", "utf8", "utf-8", "Unicode"] {
            parse(&format!("client_encoding={ok}"));
        }
        assert_eq!(
            parse_err("client_encoding=LATIN1"),
            "client_encoding \"LATIN1\" is not supported: pgwire-lite always uses UTF8"
        );
        let rejected = [
            "-c client_encoding=LATIN1",
            "-cclient_encoding=LATIN1",
            "--client_encoding=LATIN1",
            "--client-encoding=LATIN1",
            "-c CLIENT_ENCODING=SQL_ASCII",
            "-c search_path=x -c client_encoding=UTF8",
            "-ec client_encoding=LATIN1",
            "-c\tclient_encoding=LATIN1",
        ];
        for o in rejected {
            let mut c = Config::new();
            c.options(o);
            assert_eq!(
                c.validate().map_err(|e| e.to_string()),
                Err("options must not set client_encoding: pgwire-lite always uses UTF8".into()),
                "{o}"
            );
        }
        assert!(parse_err("options='-c client_encoding=LATIN1'").contains("client_encoding"));
        assert!(
            parse_err("postgresql://h?options=--client_encoding%3Dx").contains("client_encoding")
        );
        for ok in [
            "-c search_path=client_encoding",
            "-c application_name=client_encoding=x",
            "-c statement_timeout=5s -c geqo=off",
            r"-c search_path=a\ b",
            "-p client_encoding=x",
        ] {
            let mut c = Config::new();
            c.options(ok);
            assert_eq!(c.validate(), Ok(()), "{ok}");
        }
    }

    #[test]
    fn nul_bytes_are_rejected() {
        assert_eq!(parse_err("user=a\0b"), "user contains a NUL byte");
        assert_eq!(
            parse_err("postgresql://u@h/d%00b"),
            "dbname contains a NUL byte"
        );
        assert_eq!(
            parse_err("postgresql://h?application_name=a%00"),
            "application_name contains a NUL byte"
        );
        assert_eq!(
            parse_err("postgresql://u:sec%00ret@h"),
            "password contains a NUL byte"
        );
        assert_eq!(
            parse_err("options='-c x=\0'"),
            "options contains a NUL byte"
        );
        assert_eq!(parse_err("host=a\0"), "host contains a NUL byte");
        let mut c = Config::new();
        c.require_auth("md5\0");
        assert!(c.validate().is_err());
    }

    // ---- secrets ----

    #[test]
    fn debug_redacts_password() {
        let c = parse("postgresql://u:secret123@h/db");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("secret123"), "{dbg}");
        assert!(dbg.contains("password: Some(<redacted>)"), "{dbg}");
        assert!(format!("{:?}", Config::new()).contains("password: None"));
        let mut b = Config::new();
        b.password("secret123");
        assert!(!format!("{b:#?}").contains("secret123"));
    }

    #[test]
    fn errors_never_contain_the_password() {
        let bad = [
            "postgresql://u:secret123@h:abc/db",
            "postgresql://u:secret123@h/db?foo=1",
            "postgresql://u:secret123@[::1/db",
            "postgresql://u:secret123/db",
            "postgresql://u:secret123",
            "postgresql://u:sec?ret123@h:1",
            "postgresql://u:secret%ZZ123@h",
            "postgresql://u:secret123@h/db?password=x&ret123",
            "postgresql://h/db?password=secret%2",
            "postgresql://u:secret123%00@h",
            "password=secret123 foo",
            "password=sec ret123=x",
            "password=sec ret123",
            "password='secret123",
            "password=secret123 sslmode=require",
            "mysql://u:secret123@h",
            "password=secret123\0",
        ];
        for dsn in bad {
            let e = parse_err(dsn);
            for fragment in ["secret", "ret123", "sec"] {
                assert!(!e.contains(fragment), "{dsn:?} -> {e:?}");
            }
        }
    }

    // ---- builder ----

    #[test]
    fn builder_setters_and_getters() {
        let mut c = Config::new();
        c.host("db1")
            .host("/run/pg")
            .host_path("relative/sock")
            .port(5433)
            .user("app")
            .password(b"pw\xff")
            .dbname("orders")
            .options("-c search_path=app")
            .application_name("billing")
            .fallback_application_name("tool")
            .connect_timeout(Duration::from_millis(500))
            .target_session_attrs(TargetSessionAttrs::PreferStandby)
            .ssl_mode(SslMode::Disable)
            .keepalives(false)
            .keepalives_idle(Duration::from_secs(60))
            .keepalives_interval(Duration::from_secs(10))
            .keepalives_count(4)
            .tcp_user_timeout(Duration::from_secs(9))
            .require_auth("!password");
        assert_eq!(
            c.get_hosts(),
            &[tcp("db1"), unix("/run/pg"), unix("relative/sock")]
        );
        assert_eq!(c.get_ports(), &[5433]);
        assert_eq!(c.get_user(), Some("app"));
        assert_eq!(c.get_password(), Some(&b"pw\xff"[..]));
        assert_eq!(c.get_dbname(), Some("orders"));
        assert_eq!(c.get_options(), Some("-c search_path=app"));
        assert_eq!(c.get_application_name(), Some("billing"));
        assert_eq!(c.get_fallback_application_name(), Some("tool"));
        assert_eq!(c.get_connect_timeout(), Some(Duration::from_millis(500)));
        assert_eq!(
            c.get_target_session_attrs(),
            TargetSessionAttrs::PreferStandby
        );
        assert_eq!(c.get_ssl_mode(), SslMode::Disable);
        assert!(!c.get_keepalives());
        assert_eq!(c.get_keepalives_idle(), Some(Duration::from_secs(60)));
        assert_eq!(c.get_keepalives_interval(), Some(Duration::from_secs(10)));
        assert_eq!(c.get_keepalives_count(), Some(4));
        assert_eq!(c.get_tcp_user_timeout(), Some(Duration::from_secs(9)));
        assert_eq!(c.get_require_auth(), Some("!password"));
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(
            c.targets(),
            vec![
                (tcp("db1"), 5433),
                (unix("/run/pg"), 5433),
                (unix("relative/sock"), 5433)
            ]
        );
        c.connect_timeout(Duration::ZERO);
        assert_eq!(c.get_connect_timeout(), None);
        c.port(1);
        assert_eq!(
            c.validate().map_err(|e| e.to_string()),
            Err("could not match 2 port numbers to 3 hosts".into())
        );
        let mut z = Config::new();
        z.port(0);
        assert_eq!(
            z.validate().map_err(|e| e.to_string()),
            Err("invalid port 0".into())
        );
    }

    #[test]
    fn from_str_matches_parse() {
        let s = "postgresql://u:p@h:1/d?application_name=x";
        assert_eq!(s.parse::<Config>(), Config::parse(s));
        assert_eq!(Config::default(), Config::new());
        assert_eq!(tcp("h").to_string(), "h");
        assert_eq!(unix("/tmp").to_string(), "/tmp");
    }

    // ---- environment and defaults ----

    #[test]
    fn resolve_fills_everything_from_env() {
        let env = [
            ("PGHOST", "e1,/sock,e3"),
            ("PGPORT", "1,2,3"),
            ("PGUSER", "envuser"),
            ("PGPASSWORD", "envpw"),
            ("PGDATABASE", "envdb"),
            ("PGAPPNAME", "envapp"),
            ("PGCONNECT_TIMEOUT", "1"),
            ("PGOPTIONS", "-c geqo=off"),
            ("PGSSLMODE", "disable"),
            ("PGTARGETSESSIONATTRS", "read-only"),
            ("PGREQUIREAUTH", "scram-sha-256"),
        ];
        let c = resolve(&Config::new(), &env, &NO_MACHINE).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.get_hosts(), &[tcp("e1"), unix("/sock"), tcp("e3")]);
        assert_eq!(c.get_ports(), &[1, 2, 3]);
        assert_eq!(c.get_user(), Some("envuser"));
        assert_eq!(c.get_password(), Some(&b"envpw"[..]));
        assert_eq!(c.get_dbname(), Some("envdb"));
        assert_eq!(c.get_application_name(), Some("envapp"));
        assert_eq!(c.get_connect_timeout(), Some(Duration::from_secs(2)));
        assert_eq!(c.get_options(), Some("-c geqo=off"));
        assert_eq!(c.get_ssl_mode(), SslMode::Disable);
        assert_eq!(c.get_target_session_attrs(), TargetSessionAttrs::ReadOnly);
        assert_eq!(c.get_require_auth(), Some("scram-sha-256"));
    }

    #[test]
    fn resolve_dsn_wins_over_env() {
        let cfg = parse(
            "host=h port=9 user=u password=p dbname=d application_name=a connect_timeout=0 \
             options=-cx=1 sslmode=allow target_session_attrs=primary",
        );
        let env = [
            ("PGHOST", "eh"),
            ("PGPORT", "1"),
            ("PGUSER", "eu"),
            ("PGPASSWORD", "ep"),
            ("PGDATABASE", "ed"),
            ("PGAPPNAME", "ea"),
            ("PGCONNECT_TIMEOUT", "30"),
            ("PGOPTIONS", "-cy=2"),
            ("PGSSLMODE", "disable"),
            ("PGTARGETSESSIONATTRS", "standby"),
        ];
        let c = resolve(&cfg, &env, &NO_MACHINE).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.targets(), vec![(tcp("h"), 9)]);
        assert_eq!(c.get_user(), Some("u"));
        assert_eq!(c.get_password(), Some(&b"p"[..]));
        assert_eq!(c.get_dbname(), Some("d"));
        assert_eq!(c.get_application_name(), Some("a"));
        // connect_timeout=0 is an explicit "no timeout": PGCONNECT_TIMEOUT must not win.
        assert_eq!(c.get_connect_timeout(), None);
        assert_eq!(c.get_options(), Some("-cx=1"));
        assert_eq!(c.get_ssl_mode(), SslMode::Allow);
        assert_eq!(c.get_target_session_attrs(), TargetSessionAttrs::Primary);
    }

    #[test]
    fn resolve_defaults_without_env() {
        let machine = FakeProbe {
            sockets: vec![],
            os_user: Some("osuser"),
        };
        let c = resolve(&Config::new(), &[], &machine).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.targets(), vec![(tcp("localhost"), 5432)]);
        assert_eq!(c.get_user(), Some("osuser"));
        assert_eq!(c.get_dbname(), Some("osuser"));
        assert_eq!(c.get_password(), None);
        assert_eq!(c.get_application_name(), None);
        assert_eq!(c.get_connect_timeout(), None);
        assert_eq!(c.get_ssl_mode(), SslMode::Prefer);
        assert_eq!(c.get_target_session_attrs(), TargetSessionAttrs::Any);
        // Resolving again changes nothing.
        assert_eq!(
            resolve(&c, &[("PGHOST", "x"), ("PGCONNECT_TIMEOUT", "9")], &machine),
            Ok(c)
        );
    }

    #[test]
    fn resolve_user_from_user_then_logname_then_passwd() {
        let machine = FakeProbe {
            sockets: vec![],
            os_user: Some("fromuid"),
        };
        let user = |env: &[(&str, &str)]| {
            resolve(&Config::new(), env, &machine).map(|c| c.get_user().map(str::to_owned))
        };
        assert_eq!(
            user(&[("USER", "a"), ("LOGNAME", "b")]),
            Ok(Some("a".into()))
        );
        assert_eq!(
            user(&[("USER", ""), ("LOGNAME", "b")]),
            Ok(Some("b".into()))
        );
        assert_eq!(user(&[]), Ok(Some("fromuid".into())));
        assert_eq!(
            resolve(&Config::new(), &[], &NO_MACHINE),
            Err(
                "could not determine the user name: set user in the connection string or PGUSER"
                    .into()
            )
        );
    }

    #[test]
    fn resolve_default_host_prefers_existing_socket() {
        let both = FakeProbe {
            sockets: vec!["/var/run/postgresql/.s.PGSQL.5433", "/tmp/.s.PGSQL.5433"],
            os_user: Some("u"),
        };
        let tmp_only = FakeProbe {
            sockets: vec!["/tmp/.s.PGSQL.5432"],
            os_user: Some("u"),
        };
        let mut cfg = Config::new();
        cfg.port(5433);
        let c = resolve(&cfg, &[], &both).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.targets(), vec![(unix("/var/run/postgresql"), 5433)]);
        let c = resolve(&Config::new(), &[], &tmp_only).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.targets(), vec![(unix("/tmp"), 5432)]);
        // The socket of another port does not count.
        let c = resolve(&cfg, &[], &tmp_only).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.targets(), vec![(tcp("localhost"), 5433)]);
        // Placeholders in a host list get the default for their own port.
        let c = resolve(&parse("host=a,,b port=1,5432,3"), &[], &tmp_only)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.targets(),
            vec![(tcp("a"), 1), (unix("/tmp"), 5432), (tcp("b"), 3)]
        );
    }

    #[test]
    fn resolve_application_name_precedence() {
        let cfg = parse("fallback_application_name=fb");
        let c = resolve(&cfg, &[("USER", "u")], &NO_MACHINE).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.get_application_name(), Some("fb"));
        let c = resolve(&cfg, &[("USER", "u"), ("PGAPPNAME", "env")], &NO_MACHINE)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.get_application_name(), Some("env"));
    }

    #[test]
    fn resolve_reports_bad_env_by_name() {
        let base = [("USER", "u")];
        let with = |k: &'static str, v: &'static str| {
            let mut env = base.to_vec();
            env.push((k, v));
            resolve(&Config::new(), &env, &NO_MACHINE)
        };
        assert_eq!(
            with("PGPORT", "x"),
            Err("invalid port \"x\" in PGPORT".into())
        );
        assert_eq!(
            with("PGCONNECT_TIMEOUT", "soon"),
            Err("invalid integer value \"soon\" in PGCONNECT_TIMEOUT".into())
        );
        assert_eq!(
            with("PGSSLMODE", "bogus"),
            Err("invalid sslmode value: \"bogus\" (from PGSSLMODE)".into())
        );
        assert_eq!(
            with("PGSSLMODE", "require"),
            Err("sslmode=require: TLS is not supported yet".into())
        );
        assert_eq!(
            with("PGTARGETSESSIONATTRS", "x"),
            Err("invalid target_session_attrs value: \"x\" (from PGTARGETSESSIONATTRS)".into())
        );
        assert_eq!(
            with("PGOPTIONS", "-c client_encoding=latin1"),
            Err("options must not set client_encoding: pgwire-lite always uses UTF8".into())
        );
        // Hosts from the environment, ports from the DSN: counts are checked once both known.
        assert_eq!(
            resolve(
                &parse("port=1,2"),
                &[("USER", "u"), ("PGHOST", "a,b,c")],
                &NO_MACHINE
            ),
            Err("could not match 2 port numbers to 3 hosts".into())
        );
    }

    #[test]
    fn resolve_with_uses_the_given_env() {
        let env = |k: &str| match k {
            "PGUSER" => Some("fake".to_owned()),
            "PGHOST" => Some("envhost".to_owned()),
            _ => None,
        };
        let c = Config::new()
            .resolve_with(&env)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.get_user(), Some("fake"));
        assert_eq!(c.get_dbname(), Some("fake"));
        assert_eq!(c.targets(), vec![(tcp("envhost"), 5432)]);
    }

    #[test]
    fn passwd_lookup() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      # comment\n\
                      broken\n\
                      postgres:x:105:110::/var/lib/postgresql:/bin/bash\n";
        assert_eq!(user_from_passwd(passwd, 0), Some("root".into()));
        assert_eq!(user_from_passwd(passwd, 105), Some("postgres".into()));
        assert_eq!(user_from_passwd(passwd, 7), None);
        assert_eq!(user_from_passwd("", 0), None);
    }

    #[test]
    fn system_probe_finds_some_user() {
        // Whatever this machine is, the running uid has a passwd entry in our CI images.
        let user = SystemProbe.os_user();
        assert!(user.as_deref().is_some_and(|u| !u.is_empty()), "{user:?}");
    }

    // ---- no input panics ----

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(s in any::<String>()) {
            let _ = Config::parse(&s);
        }

        #[test]
        fn url_like_strings_never_panic(
            scheme in prop::sample::select(vec!["postgresql://", "postgres://", "x://", ""]),
            rest in "[a-z0-9:@/\\[\\],%?=&#._ '\\\\-]{0,40}",
        ) {
            let s = format!("{scheme}{rest}");
            if let Ok(c) = Config::parse(&s) {
                prop_assert_eq!(c.validate(), Ok(()));
                let _ = c.targets();
                let _ = resolve(&c, &[("USER", "u")], &NO_MACHINE);
            }
        }

        #[test]
        fn key_value_like_strings_never_panic(
            s in "((host|port|user|password|dbname|options|connect_timeout|x) ?= ?('[^']{0,8}'?|[a-z0-9,\\\\ /:-]{0,8}) ?){0,6}",
        ) {
            let _ = Config::parse(&s);
        }

        #[test]
        fn url_password_never_in_errors(
            pw in "Zq[A-Za-z0-9]{6,12}",
            rest in "[a-y0-9:@/\\[\\],%?=&._-]{0,30}",
        ) {
            let s = format!("postgresql://u:{pw}@{rest}");
            if let Err(e) = Config::parse(&s) {
                prop_assert!(!e.to_string().contains(&pw), "{} -> {}", s, e);
            }
        }
    }
}
