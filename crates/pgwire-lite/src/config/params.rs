//! The parameter model: the value types (`Host`, `SslMode`, `TargetSessionAttrs`), the libpq
//! key lists, and `set_param`, the one place a `key = value` becomes part of a [`Config`].

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::Config;
use super::options::{parse_connect_timeout, parse_host_list, parse_int, parse_port_list};
use crate::error::ConfigError;

/// Keys we parse and store (libpq names).
pub(super) const SUPPORTED_KEYS: &[&str] = &[
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
    // Not libpq's: pgx's name. 0 turns named prepared statements off (transaction poolers).
    "statement_cache_capacity",
    // Not libpq's: a pool option (pool-core's multiplexed execute), on/off.
    "multiplexing",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslsni",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "sslnegotiation",
    "sslcrl",
    "sslcrldir",
    "passfile",
    "service",
    "servicefile",
];

/// libpq keys we know but cannot honour yet: rejected with "not supported" rather than
/// silently ignored, so nobody believes e.g. `sslrootcert` is being checked.
pub(super) const UNSUPPORTED_KEYS: &[&str] = &[
    "hostaddr",
    "sslcompression",
    "sslcertmode",
    "sslpassword",
    "requirepeer",
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
    pub(super) fn from_libpq(s: &str) -> Host {
        if s.starts_with('/') {
            Host::Unix(PathBuf::from(s))
        } else {
            Host::Tcp(s.to_owned())
        }
    }

    pub(super) fn is_placeholder(&self) -> bool {
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

/// libpq's `sslmode`: whether TLS is tried or required, and what of the server's certificate
/// is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// Plain text first; TLS only if the server refuses the plain connection.
    Allow,
    /// TLS when the server offers it, plain text when it says it has none (the default).
    #[default]
    Prefer,
    /// TLS required; the certificate is checked only when a root certificate is configured
    /// (`sslrootcert`, or `~/.postgresql/root.crt` exists), as in libpq.
    Require,
    /// TLS required, certificate chain checked against `sslrootcert`; host name not checked.
    VerifyCa,
    /// TLS required, certificate chain and host name (SAN, IP addresses too) checked.
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

/// Where a value came from, for error messages and for the URL-only `ssl=true`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    Url,
    KeyValue,
    /// The libpq environment variable standing for the key, e.g. `PGPORT` for `port`.
    Env(&'static str),
    /// A line of a connection service file; the error names the file and line.
    Service,
}

impl Origin {
    /// Ends a "bad value" message: `invalid port "x" in URL`.
    pub(super) fn suffix(self) -> String {
        match self {
            Origin::Url => " in URL".to_owned(),
            Origin::KeyValue => " in connection string".to_owned(),
            Origin::Env(var) => format!(" in {var}"),
            Origin::Service => " in service file".to_owned(),
        }
    }

    /// Ends a "bad integer" message: `... for connection option "keepalives"` (libpq's
    /// wording) or `... in PGCONNECT_TIMEOUT`.
    fn int_context(self, key: &str) -> String {
        match self {
            Origin::Env(var) => format!("in {var}"),
            Origin::Url | Origin::KeyValue | Origin::Service => {
                format!("for connection option \"{key}\"")
            }
        }
    }
}

impl Config {
    /// Sets one libpq parameter. Later values replace earlier ones, as in libpq.
    pub(super) fn set_param(
        &mut self,
        key: &str,
        value: &[u8],
        origin: Origin,
    ) -> Result<(), ConfigError> {
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
        let int_for = |v: &str| parse_int(v, &origin.int_context(key));
        if self.set_tls_param(key, v)? {
            return Ok(());
        }
        match key {
            "host" => self.hosts = parse_host_list(v),
            "port" => self.ports = parse_port_list(v, &origin.suffix())?,
            "user" => self.user = opt(),
            "dbname" => self.dbname = opt(),
            "options" => self.options = opt(),
            "application_name" => self.application_name = opt(),
            "fallback_application_name" => self.fallback_application_name = opt(),
            "require_auth" => self.require_auth = opt(),
            "connect_timeout" => {
                self.connect_timeout = Some(parse_connect_timeout(v, &origin.int_context(key))?)
            }
            "client_encoding" => {
                if !is_utf8_name(v) {
                    return Err(ConfigError::new(format!(
                        "client_encoding \"{v}\" is not supported: pgwire-lite always uses UTF8"
                    )));
                }
                self.client_encoding = Some(v.to_owned());
            }
            "keepalives" => self.keepalives = Some(int_for(v)? != 0),
            "passfile" => self.passfile = opt().map(PathBuf::from),
            "service" => {
                self.service = opt();
                self.service_applied = false;
            }
            "servicefile" => {
                self.servicefile = opt().map(PathBuf::from);
                self.service_applied = false;
            }
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
                "disable" | "prefer" => self.gssencmode = Some(v.to_owned()),
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
            "channel_binding" => match v {
                "disable" | "prefer" | "require" => self.channel_binding = Some(v.to_owned()),
                _ => {
                    return Err(ConfigError::new(format!(
                        "invalid channel_binding value: \"{v}\""
                    )));
                }
            },
            "statement_cache_capacity" => {
                let n = int_for(v)?;
                self.statement_cache_capacity = Some(usize::try_from(n).map_err(|_| {
                    ConfigError::new(format!("invalid statement_cache_capacity value: \"{v}\""))
                })?);
            }
            "multiplexing" => {
                self.multiplexing = Some(match v {
                    "on" | "true" | "yes" | "1" => true,
                    "off" | "false" | "no" | "0" => false,
                    _ => {
                        return Err(ConfigError::new(format!(
                            "invalid multiplexing value: \"{v}\" (expected on or off)"
                        )));
                    }
                });
            }
            "load_balance_hosts" => match v {
                "disable" | "random" => self.load_balance_hosts = Some(v.to_owned()),
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

    /// Whether `key` already has a value (from a DSN, a setter or an earlier source), so a
    /// lower-precedence source must leave it alone. Keys in [`UNSUPPORTED_KEYS`] never do:
    /// setting one fails.
    pub(super) fn is_given(&self, key: &str) -> bool {
        if let Some(given) = self.tls_param_given(key) {
            return given;
        }
        match key {
            "host" => !self.hosts.is_empty(),
            "port" => !self.ports.is_empty(),
            "user" => self.user.is_some(),
            "password" => self.password.is_some(),
            "dbname" => self.dbname.is_some(),
            "options" => self.options.is_some(),
            "application_name" => self.application_name.is_some(),
            "fallback_application_name" => self.fallback_application_name.is_some(),
            "connect_timeout" => self.connect_timeout.is_some(),
            "client_encoding" => self.client_encoding.is_some(),
            "target_session_attrs" => self.target_session_attrs.is_some(),
            "sslmode" => self.ssl_mode.is_some(),
            "require_auth" => self.require_auth.is_some(),
            "gssencmode" => self.gssencmode.is_some(),
            "channel_binding" => self.channel_binding.is_some(),
            "load_balance_hosts" => self.load_balance_hosts.is_some(),
            "statement_cache_capacity" => self.statement_cache_capacity.is_some(),
            "keepalives" => self.keepalives.is_some(),
            "keepalives_idle" => self.keepalives_idle.is_some(),
            "keepalives_interval" => self.keepalives_interval.is_some(),
            "keepalives_count" => self.keepalives_count.is_some(),
            "tcp_user_timeout" => self.tcp_user_timeout.is_some(),
            "passfile" => self.passfile.is_some(),
            "service" => self.service.is_some(),
            "servicefile" => self.servicefile.is_some(),
            "multiplexing" => self.multiplexing.is_some(),
            _ => false,
        }
    }
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
