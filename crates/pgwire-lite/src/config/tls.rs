//! The TLS keys (`sslrootcert`, `sslcert`, `sslkey`, `sslsni`, `ssl_min_protocol_version`,
//! `ssl_max_protocol_version`, `sslnegotiation`, `sslcrl`, `sslcrldir`): parsed and stored here, read by the connection's TLS layer.
//!
//! Only paths and switches are stored; files are read when connecting, as libpq does, so a
//! parsed configuration never holds key material.

use std::path::PathBuf;

use super::Config;
use crate::error::ConfigError;

/// The TLS settings of a [`Config`] as given (unset = libpq's default).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct TlsParams {
    pub(super) root_cert: Option<String>,
    pub(super) cert: Option<String>,
    pub(super) key: Option<String>,
    pub(super) sni: Option<bool>,
    pub(super) min_version: Option<TlsVersion>,
    pub(super) max_version: Option<TlsVersion>,
    pub(super) negotiation: Option<SslNegotiation>,
    pub(super) crl: Option<String>,
    pub(super) crl_dir: Option<String>,
}

/// libpq's `sslnegotiation` (PostgreSQL 17): how TLS is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SslNegotiation {
    /// An SSLRequest first, TLS after the server's `S` (every server version; the default).
    #[default]
    Postgres,
    /// The TLS handshake straight away, with ALPN `postgresql`: one round trip less, but only
    /// PostgreSQL 17 and newer understand it (older servers close the connection). Requires
    /// `sslmode=require` or stricter, as in libpq.
    Direct,
}

/// A TLS protocol version, as `ssl_min_protocol_version` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    /// `TLSv1` (refused when connecting: rustls speaks 1.2 and 1.3 only).
    V1_0,
    /// `TLSv1.1` (refused when connecting, as for `TLSv1`).
    V1_1,
    /// `TLSv1.2` (libpq's default minimum).
    V1_2,
    /// `TLSv1.3`.
    V1_3,
}

impl TlsVersion {
    fn parse(key: &str, v: &str) -> Result<TlsVersion, ConfigError> {
        Ok(match v {
            "TLSv1" => TlsVersion::V1_0,
            "TLSv1.1" => TlsVersion::V1_1,
            "TLSv1.2" => TlsVersion::V1_2,
            "TLSv1.3" => TlsVersion::V1_3,
            _ => return Err(ConfigError::new(format!("invalid {key} value: \"{v}\""))),
        })
    }
}

/// libpq's `channel_binding`: whether SCRAM authentication binds itself to the TLS session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelBinding {
    /// Never bind.
    Disable,
    /// Bind when the connection is TLS and the server offers SCRAM-SHA-256-PLUS (default).
    Prefer,
    /// Refuse to authenticate any other way than SCRAM-SHA-256-PLUS over TLS.
    Require,
}

/// Where the trusted root certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file of CA certificates.
    File(PathBuf),
    /// The operating system's trust store (`sslrootcert=system`).
    System,
}

impl Config {
    /// Sets one TLS key; `false` when `key` is not a TLS key.
    pub(super) fn set_tls_param(&mut self, key: &str, v: &str) -> Result<bool, ConfigError> {
        let opt = || (!v.is_empty()).then(|| v.to_owned());
        let t = &mut self.tls;
        match key {
            "sslrootcert" => t.root_cert = opt(),
            "sslcert" => t.cert = opt(),
            "sslkey" => t.key = opt(),
            "sslsni" => {
                t.sni = Some(match v {
                    "0" => false,
                    "1" => true,
                    _ => return Err(ConfigError::new(format!("invalid sslsni value: \"{v}\""))),
                })
            }
            "ssl_min_protocol_version" => {
                t.min_version = (!v.is_empty())
                    .then(|| TlsVersion::parse(key, v))
                    .transpose()?
            }
            "ssl_max_protocol_version" => {
                t.max_version = (!v.is_empty())
                    .then(|| TlsVersion::parse(key, v))
                    .transpose()?
            }
            "sslcrl" => t.crl = opt(),
            "sslcrldir" => t.crl_dir = opt(),
            "sslnegotiation" => {
                t.negotiation = match v {
                    "" => None,
                    "postgres" => Some(SslNegotiation::Postgres),
                    "direct" => Some(SslNegotiation::Direct),
                    _ => {
                        return Err(ConfigError::new(format!(
                            "invalid sslnegotiation value: \"{v}\""
                        )));
                    }
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Whether the TLS key `key` has a value; `None` when it is not a TLS key.
    pub(super) fn tls_param_given(&self, key: &str) -> Option<bool> {
        let t = &self.tls;
        Some(match key {
            "sslrootcert" => t.root_cert.is_some(),
            "sslcert" => t.cert.is_some(),
            "sslkey" => t.key.is_some(),
            "sslsni" => t.sni.is_some(),
            "ssl_min_protocol_version" => t.min_version.is_some(),
            "ssl_max_protocol_version" => t.max_version.is_some(),
            "sslnegotiation" => t.negotiation.is_some(),
            "sslcrl" => t.crl.is_some(),
            "sslcrldir" => t.crl_dir.is_some(),
            _ => return None,
        })
    }

    /// Checks the TLS keys together: a version range that admits nothing is refused.
    pub(super) fn validate_tls(&self) -> Result<(), ConfigError> {
        // libpq: the system store holds every public CA, so only a host name check makes
        // trusting it meaningful.
        if self.tls.root_cert.as_deref() == Some("system") {
            if let Some(mode) = self.ssl_mode.filter(|m| *m != super::SslMode::VerifyFull) {
                return Err(ConfigError::new(format!(
                    "weak sslmode \"{mode}\" may not be used with sslrootcert=system (use \
                     \"verify-full\")"
                )));
            }
        }
        // libpq 17: direct TLS has no plain-text fallback, so only modes that insist on TLS.
        // An unset sslmode is checked when connecting (`check_direct_negotiation`): a service
        // file's lines are validated one by one, and its sslmode may come on a later line.
        if let Some(mode) = self.ssl_mode {
            self.check_direct_negotiation(mode)?;
        }
        if let (Some(min), Some(max)) = (self.tls.min_version, self.tls.max_version) {
            if min > max {
                return Err(ConfigError::new(
                    "invalid SSL protocol version range: ssl_min_protocol_version is above \
                     ssl_max_protocol_version",
                ));
            }
        }
        Ok(())
    }

    /// Sets `sslrootcert`: a PEM file of trusted CA certificates, or `system`.
    pub fn ssl_root_cert(&mut self, path: &str) -> &mut Self {
        self.tls.root_cert = (!path.is_empty()).then(|| path.to_owned());
        self
    }

    /// Sets `sslcert`, the client certificate (PEM) sent when the server asks for one.
    pub fn ssl_cert(&mut self, path: &str) -> &mut Self {
        self.tls.cert = (!path.is_empty()).then(|| path.to_owned());
        self
    }

    /// Sets `sslkey`, the private key (PEM) of the client certificate.
    pub fn ssl_key(&mut self, path: &str) -> &mut Self {
        self.tls.key = (!path.is_empty()).then(|| path.to_owned());
        self
    }

    /// `sslrootcert` as given: `None` means libpq's default `~/.postgresql/root.crt`, used
    /// when that file exists.
    pub fn get_ssl_root_cert(&self) -> Option<RootCert> {
        self.tls.root_cert.as_deref().map(|p| match p {
            "system" => RootCert::System,
            _ => RootCert::File(PathBuf::from(p)),
        })
    }

    /// `sslcert` as given (`None`: libpq's default `~/.postgresql/postgresql.crt`, if present).
    pub fn get_ssl_cert(&self) -> Option<&str> {
        self.tls.cert.as_deref()
    }

    /// `sslkey` as given (`None`: libpq's default `~/.postgresql/postgresql.key`).
    pub fn get_ssl_key(&self) -> Option<&str> {
        self.tls.key.as_deref()
    }

    /// `channel_binding` (`Prefer` when unset, as in libpq).
    pub fn get_channel_binding(&self) -> ChannelBinding {
        match self.channel_binding.as_deref() {
            Some("disable") => ChannelBinding::Disable,
            Some("require") => ChannelBinding::Require,
            _ => ChannelBinding::Prefer,
        }
    }

    /// `sslsni`: whether the host name is sent in the TLS handshake (default on).
    pub fn get_ssl_sni(&self) -> bool {
        self.tls.sni.unwrap_or(true)
    }

    /// `ssl_min_protocol_version` (`TLSv1.2` when unset, libpq's default).
    pub fn get_ssl_min_protocol_version(&self) -> TlsVersion {
        self.tls.min_version.unwrap_or(TlsVersion::V1_2)
    }

    /// `sslcrl` as given: a PEM file of certificate revocation lists checked whenever the
    /// server's chain is (`verify-ca`, `verify-full`, or `require` with a root certificate).
    /// `None` means libpq's default `~/.postgresql/root.crl`, used when that file exists.
    pub fn get_ssl_crl(&self) -> Option<&str> {
        self.tls.crl.as_deref()
    }

    /// `sslcrldir` as given: a directory whose every file is read as PEM revocation lists.
    pub fn get_ssl_crl_dir(&self) -> Option<&str> {
        self.tls.crl_dir.as_deref()
    }

    /// Refuses `sslnegotiation=direct` with an sslmode that would allow plain text.
    pub(crate) fn check_direct_negotiation(&self, mode: super::SslMode) -> Result<(), ConfigError> {
        use super::SslMode::{Allow, Disable, Prefer};
        if self.tls.negotiation == Some(SslNegotiation::Direct)
            && matches!(mode, Disable | Allow | Prefer)
        {
            return Err(ConfigError::new(format!(
                "weak sslmode \"{mode}\" may not be used with sslnegotiation=direct (use \
                 \"require\", \"verify-ca\", or \"verify-full\")"
            )));
        }
        Ok(())
    }

    /// `sslnegotiation` (`Postgres` when unset).
    pub fn get_ssl_negotiation(&self) -> SslNegotiation {
        self.tls.negotiation.unwrap_or_default()
    }

    /// Sets `sslnegotiation`.
    pub fn ssl_negotiation(&mut self, negotiation: SslNegotiation) -> &mut Self {
        self.tls.negotiation = Some(negotiation);
        self
    }

    /// `ssl_max_protocol_version` (`None`: the newest rustls speaks).
    pub fn get_ssl_max_protocol_version(&self) -> Option<TlsVersion> {
        self.tls.max_version
    }
}
