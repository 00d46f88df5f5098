//! `Config`: everything a libpq user writes.
//!
//! Three ways in, one value out:
//!
//! | source | how |
//! |---|---|
//! | a DSN, URL or key=value | [`Config::parse`], `"…".parse::<Config>()` |
//! | builder setters | [`Config::new`] then `.host(..).user(..)` (tokio-postgres style) |
//! | `PG*` environment variables and libpq defaults | [`Config::resolve`], [`Config::from_env`] |
//! | libpq's service file (`service=`, `PGSERVICE`) | [`Config::resolve`] |
//! | libpq's password file (`~/.pgpass`, `PGPASSFILE`) | read when connecting, per host |
//!
//! Parsing is a pure function of its input: no environment, no filesystem. That keeps it
//! fuzzable and testable. The environment, the files and the defaults (OS user, socket
//! directory) only enter through [`Config::resolve`], which the connection calls right before
//! connecting. Precedence is libpq's: DSN or setters, then the service file, then environment,
//! then defaults; the password file only when no password came from any of them.
//!
//! ```
//! use pgwire_lite::{Config, Host};
//!
//! let cfg: Config = "postgresql://app@db1:5433,db2/orders?application_name=billing".parse()?;
//! assert_eq!(cfg.get_hosts(), &[Host::Tcp("db1".into()), Host::Tcp("db2".into())]);
//! assert_eq!(cfg.get_ports(), &[5433, 5432]);
//! assert_eq!(cfg.get_dbname(), Some("orders"));
//! # Ok::<(), pgwire_lite::ConfigError>(())
//! ```

mod key_value;
mod options;
mod params;
mod pgpass;
mod resolve;
mod service;
mod tls;
mod url;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use crate::error::ConfigError;

pub use params::{Host, SslMode, TargetSessionAttrs};
pub use tls::{ChannelBinding, RootCert, SslNegotiation, TlsVersion};

use options::options_set_client_encoding;
use url::{URL_SCHEMES, foreign_scheme, parse_url};

/// libpq's `DEF_PGPORT`: used when no port is given, and for each empty entry of a port list.
pub const DEFAULT_PORT: u16 = 5432;

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
    /// `None`: not given (on, the libpq default).
    keepalives: Option<bool>,
    keepalives_idle: Option<Duration>,
    keepalives_interval: Option<Duration>,
    keepalives_count: Option<u32>,
    tcp_user_timeout: Option<Duration>,
    require_auth: Option<String>,
    /// Accepted values of libpq keys that change nothing here (e.g. `channel_binding=prefer`
    /// without TLS), kept so that a key given in the DSN is not overridden by its
    /// environment variable, as in libpq.
    client_encoding: Option<String>,
    gssencmode: Option<String>,
    channel_binding: Option<String>,
    load_balance_hosts: Option<String>,
    statement_cache_capacity: Option<usize>,
    multiplexing: Option<bool>,
    tls: tls::TlsParams,
    /// libpq's `passfile`: after resolve, the file consulted when no password is given.
    passfile: Option<std::path::PathBuf>,
    /// libpq's `service` and `servicefile`.
    service: Option<String>,
    servicefile: Option<std::path::PathBuf>,
    /// Whether resolve already merged the service's values in: resolving again must not read
    /// the service file a second time.
    service_applied: bool,
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
            .field("keepalives", &self.get_keepalives())
            .field("keepalives_idle", &self.keepalives_idle)
            .field("keepalives_interval", &self.keepalives_interval)
            .field("keepalives_count", &self.keepalives_count)
            .field("tcp_user_timeout", &self.tcp_user_timeout)
            .field("require_auth", &self.require_auth)
            .field("client_encoding", &self.client_encoding)
            .field("gssencmode", &self.gssencmode)
            .field("channel_binding", &self.channel_binding)
            .field("load_balance_hosts", &self.load_balance_hosts)
            .field("statement_cache_capacity", &self.statement_cache_capacity)
            .field("multiplexing", &self.multiplexing)
            .field("tls", &self.tls)
            .field("passfile", &self.passfile)
            .field("service", &self.service)
            .field("servicefile", &self.servicefile)
            .finish()
    }
}

impl FromStr for Config {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Config::parse(s)
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
            keepalives: None,
            keepalives_idle: None,
            keepalives_interval: None,
            keepalives_count: None,
            tcp_user_timeout: None,
            require_auth: None,
            client_encoding: None,
            gssencmode: None,
            channel_binding: None,
            load_balance_hosts: None,
            statement_cache_capacity: None,
            multiplexing: None,
            tls: tls::TlsParams::default(),
            passfile: None,
            service: None,
            servicefile: None,
            service_applied: false,
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
            key_value::parse_key_value(s)?
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks what can be checked without the environment; the connection calls it (through
    /// [`Config::resolve`]) before connecting, and [`Config::parse`] calls it too.
    ///
    /// Rejects: an empty TLS version range, a port list that cannot be matched to the host
    /// list, port 0, NUL bytes in any value sent to the server, and `options` that set
    /// `client_encoding` (we always speak UTF8).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_tls()?;
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
    pub(super) fn check_port_count(&self) -> Result<(), ConfigError> {
        let (p, h) = (self.ports.len(), self.hosts.len());
        if p > 1 && p != h {
            return Err(ConfigError::new(format!(
                "could not match {p} port numbers to {h} hosts"
            )));
        }
        Ok(())
    }

    pub(super) fn port_for(&self, i: usize) -> u16 {
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

    /// Sets the TLS mode (`sslmode`).
    pub fn ssl_mode(&mut self, mode: SslMode) -> &mut Self {
        self.ssl_mode = Some(mode);
        self
    }

    /// Turns TCP keepalives on or off (on by default).
    pub fn keepalives(&mut self, on: bool) -> &mut Self {
        self.keepalives = Some(on);
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

    /// Sets how many named prepared statements each connection caches
    /// (`statement_cache_capacity`, pgx's name; default 256). 0 turns named statements off:
    /// `execute` and `execute_many` then use the unnamed statement, as a transaction pooler
    /// (PgBouncer before 1.21, or without `max_prepared_statements`) needs.
    pub fn statement_cache_capacity(&mut self, capacity: usize) -> &mut Self {
        self.statement_cache_capacity = Some(capacity);
        self
    }

    /// `load_balance_hosts=random` (libpq 16): hosts, and the addresses of each host, are
    /// tried in a random order for every connection, spreading connections across servers.
    pub fn load_balances_randomly(&self) -> bool {
        self.load_balance_hosts.as_deref() == Some("random")
    }

    /// Sets `multiplexing` (not libpq's; off by default): whether a pool built from this
    /// configuration lets concurrent `execute` calls share connections. A connection ignores
    /// it; pool-core's `PsqlPoolBuilder::multiplexing` explains it.
    pub fn multiplexing(&mut self, on: bool) -> &mut Self {
        self.multiplexing = Some(on);
        self
    }

    /// `multiplexing`, if given.
    pub fn get_multiplexing(&self) -> Option<bool> {
        self.multiplexing
    }

    /// `statement_cache_capacity`, if given.
    pub fn get_statement_cache_capacity(&self) -> Option<usize> {
        self.statement_cache_capacity
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
        self.keepalives.unwrap_or(true)
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

pub(super) fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}
