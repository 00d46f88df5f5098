//! TLS with libpq's `sslmode` semantics, over rustls (ring provider).
//!
//! What is checked follows libpq (`fe-secure-openssl.c`): the chain is verified whenever root
//! certificates are available (`sslrootcert`, or `~/.postgresql/root.crt` when it exists), in any
//! mode; `verify-ca` and `verify-full` fail without them; only `verify-full` checks the host name
//! (SAN, IP addresses included). `require` without roots encrypts but trusts any certificate.
//!
//! The negotiation closes the known holes: bytes the server sent after its `S` and before the
//! handshake are refused (CVE-2021-23222: they could be injected by a man in the middle and
//! read as if encrypted), and an `E` reply is refused without showing its text
//! (CVE-2024-10977: nothing has authenticated the server yet).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::BytesMut;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime,
};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use rustls::{SignatureScheme, SupportedProtocolVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::config::{Config, RootCert, SslMode, SslNegotiation, TlsVersion};
use crate::error::{Error, Result};
use crate::protocol::frontend;

/// The TLS side of one configuration: the sslmode and the rustls client configuration built
/// from the certificate files. Shared by a connection's cancel requests.
pub(crate) struct TlsPlan {
    mode: SslMode,
    direct: bool,
    config: Arc<ClientConfig>,
}

impl fmt::Debug for TlsPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The client configuration holds the client's private key: never printed.
        f.debug_struct("TlsPlan")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// What the server answered to the SSLRequest.
pub(super) enum Negotiated {
    /// TLS is up.
    Tls(Box<TlsStream<TcpStream>>),
    /// The server said `N`: no TLS; the socket is still usable for a plain startup.
    Refused(TcpStream),
    /// The server said `S` but the handshake failed (libpq's `prefer` retries in plain text).
    HandshakeFailed(Error),
}

/// A TLS failure: an I/O error whose message starts with "SSL error" as libpq's do.
pub(super) fn tls_error(msg: impl Into<String>) -> Error {
    Error::Io(io::Error::other(msg.into()))
}

impl super::Connection {
    /// Whether the connection is encrypted with TLS.
    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }
}

impl TlsPlan {
    /// The plan for `config`, reading the certificate files now; `None` for `sslmode=disable`.
    pub(super) fn new(config: &Config) -> Result<Option<Arc<TlsPlan>>> {
        let mode = config.get_ssl_mode();
        config.check_direct_negotiation(mode)?;
        if mode == SslMode::Disable {
            return Ok(None);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions = versions(config)?;
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| tls_error(format!("SSL error: {e}")))?;
        let roots = load_roots(config, mode)?;
        let verifier: Arc<dyn ServerCertVerifier> = match roots {
            Some(roots) => {
                // As libpq with OpenSSL's CRL_CHECK_ALL: once lists are given, every certificate
                // of the chain needs its issuer's list, and a revoked one is refused.
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .with_crls(load_crls(config)?)
                        .build()
                        .map_err(|e| tls_error(format!("SSL error: {e}")))?;
                if mode == SslMode::VerifyFull {
                    webpki
                } else {
                    Arc::new(ChainOnly(webpki))
                }
            }
            None => Arc::new(AcceptAny(provider.signature_verification_algorithms)),
        };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut tls = match load_client_cert(config)? {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| tls_error(format!("SSL error: client certificate: {e}")))?,
            None => builder.with_no_client_auth(),
        };
        tls.enable_sni = config.get_ssl_sni();
        // As libpq 17: servers 17+ check it, and require it for direct TLS.
        tls.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(Some(Arc::new(TlsPlan {
            mode,
            direct: config.get_ssl_negotiation() == SslNegotiation::Direct,
            config: Arc::new(tls),
        })))
    }

    /// The configured sslmode.
    pub(super) fn mode(&self) -> SslMode {
        self.mode
    }

    /// Sends an SSLRequest on `tcp` and, if the server agrees, runs the TLS handshake.
    /// `host` is the name the certificate must match under `verify-full` (and the SNI).
    ///
    /// With `sslnegotiation=direct` the handshake starts at once (ALPN `postgresql`), as
    /// PostgreSQL 17 accepts; an older server reads the ClientHello as a malformed startup
    /// packet and closes the connection, which ends the handshake with an error that says so.
    pub(super) async fn negotiate(&self, mut tcp: TcpStream, host: &str) -> Result<Negotiated> {
        if self.direct {
            let name = server_name(host, &tcp)?;
            let connector = TlsConnector::from(self.config.clone());
            return match connector.connect(name, tcp).await {
                Ok(s) => Ok(Negotiated::Tls(Box::new(s))),
                Err(e) => Err(Error::Io(io::Error::new(
                    e.kind(),
                    format!(
                        "SSL error: {e} (sslnegotiation=direct: the server may be older than \
                         PostgreSQL 17, which is the first to accept direct TLS; use \
                         sslnegotiation=postgres)"
                    ),
                ))),
            };
        }
        let mut req = BytesMut::with_capacity(8);
        frontend::ssl_request(&mut req)?;
        tcp.write_all(&req).await?;
        let mut answer = [0u8; 1];
        if let Err(e) = tcp.read_exact(&mut answer).await {
            return Err(tls_error(format!(
                "SSL error: the server closed the connection during SSL negotiation ({e})"
            )));
        }
        match answer[0] {
            b'S' => {}
            b'N' => return Ok(Negotiated::Refused(tcp)),
            // Not read further: the text would come from a server nobody authenticated.
            b'E' => {
                return Err(tls_error(
                    "server sent an error response during SSL exchange",
                ));
            }
            other => {
                return Err(tls_error(format!(
                    "received invalid response to SSL negotiation: 0x{other:02x}"
                )));
            }
        }
        if unencrypted_data_waiting(&tcp) {
            return Err(tls_error("received unencrypted data after SSL response"));
        }
        let name = server_name(host, &tcp)?;
        let connector = TlsConnector::from(self.config.clone());
        match connector.connect(name, tcp).await {
            Ok(s) => Ok(Negotiated::Tls(Box::new(s))),
            Err(e) => Ok(Negotiated::HandshakeFailed(Error::Io(io::Error::new(
                e.kind(),
                format!("SSL error: {e}"),
            )))),
        }
    }
}

/// Whether the socket already holds bytes after the server's `S`: nothing legitimate can,
/// since the server speaks TLS only after our ClientHello. Read straight from the socket (not
/// through tokio's readiness, which can lag): the bytes are refused anyway.
fn unencrypted_data_waiting(tcp: &TcpStream) -> bool {
    let sock = socket2::SockRef::from(tcp);
    let mut r = &*sock;
    let mut one = [0u8; 1];
    matches!(io::Read::read(&mut r, &mut one), Ok(n) if n > 0)
}

/// The name rustls checks the certificate against and sends as SNI: the host as configured
/// (an IP literal checks the IP SAN), else the peer's address.
fn server_name(host: &str, tcp: &TcpStream) -> Result<ServerName<'static>> {
    if let Ok(name) = ServerName::try_from(host.to_owned()) {
        return Ok(name);
    }
    Ok(ServerName::IpAddress(tcp.peer_addr()?.ip().into()))
}

/// The protocol versions `ssl_min_protocol_version`/`ssl_max_protocol_version` allow, among
/// those rustls speaks (1.2 and 1.3: a minimum below 1.2 admits 1.2).
fn versions(config: &Config) -> Result<Vec<&'static SupportedProtocolVersion>> {
    let min = config.get_ssl_min_protocol_version();
    let max = config
        .get_ssl_max_protocol_version()
        .unwrap_or(TlsVersion::V1_3);
    let mut out = Vec::new();
    if min <= TlsVersion::V1_2 && max >= TlsVersion::V1_2 {
        out.push(&rustls::version::TLS12);
    }
    if max >= TlsVersion::V1_3 {
        out.push(&rustls::version::TLS13);
    }
    if out.is_empty() {
        return Err(tls_error(
            "SSL error: ssl_max_protocol_version is below TLSv1.2, which is the oldest \
             version supported",
        ));
    }
    Ok(out)
}

/// libpq's per-user directory for certificates, `~/.postgresql`.
fn user_dir() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".postgresql"))
}

/// The trusted roots, or `None` when there are none and the mode does not need them.
fn load_roots(config: &Config, mode: SslMode) -> Result<Option<RootCertStore>> {
    let verify = matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull);
    let path = match config.get_ssl_root_cert() {
        Some(RootCert::System) => {
            let found = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(tls_error(
                    "SSL error: sslrootcert=system: no usable certificate in the system's store",
                ));
            }
            return Ok(Some(store));
        }
        Some(RootCert::File(p)) => p,
        None => match user_dir() {
            Some(d) => d.join("root.crt"),
            None => PathBuf::from("~/.postgresql/root.crt"),
        },
    };
    if !path.exists() {
        if verify {
            return Err(tls_error(format!(
                "root certificate file \"{}\" does not exist\nEither provide the file, use the \
                 system's trusted roots with sslrootcert=system, or change sslmode to disable \
                 server certificate verification.",
                path.display()
            )));
        }
        return Ok(None);
    }
    let mut store = RootCertStore::empty();
    for cert in read_certs(&path, "root certificate")? {
        store.add(cert).map_err(|e| {
            tls_error(format!(
                "SSL error: could not use root certificate file \"{}\": {e}",
                path.display()
            ))
        })?;
    }
    Ok(Some(store))
}

/// The revocation lists of `sslcrl` (default `~/.postgresql/root.crl` when it exists) and of
/// every file in `sslcrldir`.
fn load_crls(config: &Config) -> Result<Vec<CertificateRevocationListDer<'static>>> {
    let mut files = Vec::new();
    match config.get_ssl_crl() {
        Some(p) => files.push(PathBuf::from(p)),
        None => {
            if let Some(default) = user_dir()
                .map(|d| d.join("root.crl"))
                .filter(|p| p.exists())
            {
                files.push(default);
            }
        }
    }
    if let Some(dir) = config.get_ssl_crl_dir() {
        let unreadable = |e: io::Error| {
            tls_error(format!(
                "SSL error: could not read sslcrldir \"{dir}\": {e}"
            ))
        };
        let mut in_dir = std::fs::read_dir(dir)
            .map_err(unreadable)?
            .map(|e| e.map(|e| e.path()))
            .collect::<io::Result<Vec<_>>>()
            .map_err(unreadable)?;
        in_dir.retain(|p| p.is_file());
        in_dir.sort();
        files.extend(in_dir);
    }
    let mut crls = Vec::new();
    for path in files {
        let bad = |e: &dyn fmt::Display| {
            tls_error(format!(
                "SSL error: could not read certificate revocation list file \"{}\": {e}",
                path.display()
            ))
        };
        let before = crls.len();
        for crl in CertificateRevocationListDer::pem_file_iter(&path).map_err(|e| bad(&e))? {
            crls.push(crl.map_err(|e| bad(&e))?);
        }
        if crls.len() == before {
            return Err(bad(&"no revocation list in it"));
        }
    }
    Ok(crls)
}

fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let bad = |e: &dyn fmt::Display| {
        tls_error(format!(
            "could not read {what} file \"{}\": {e}",
            path.display()
        ))
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(&e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(&e))?;
    if certs.is_empty() {
        return Err(bad(&"no certificate in it"));
    }
    Ok(certs)
}

/// The client certificate and key: `sslcert`/`sslkey`, else `~/.postgresql/postgresql.crt` and
/// `.key`. No certificate file means no client certificate, as in libpq.
fn load_client_cert(
    config: &Config,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>> {
    let dir = user_dir();
    let cert_path = match (config.get_ssl_cert(), &dir) {
        (Some(p), _) => PathBuf::from(p),
        (None, Some(d)) => d.join("postgresql.crt"),
        (None, None) => return Ok(None),
    };
    if !cert_path.exists() {
        return Ok(None);
    }
    let chain = read_certs(&cert_path, "certificate")?;
    let key_path = match (config.get_ssl_key(), &dir) {
        (Some(p), _) => PathBuf::from(p),
        (None, Some(d)) => d.join("postgresql.key"),
        (None, None) => {
            return Err(tls_error(
                "certificate present, but not private key file (set sslkey)",
            ));
        }
    };
    check_key_permissions(&key_path)?;
    // The parser's error never includes the key's bytes; the message names the file only.
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|_| {
        tls_error(format!(
            "could not load private key file \"{}\": no PEM private key in it",
            key_path.display()
        ))
    })?;
    Ok(Some((chain, key)))
}

/// libpq's rule: a key readable by group or others is refused — 0600 or less when owned by
/// the user, 0640 or less when owned by root (a system-managed key). The owner itself is not
/// compared with the effective uid (that would need unsafe code); the mode bits are what
/// keeps the key private.
#[cfg(unix)]
fn check_key_permissions(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|e| {
        tls_error(format!(
            "certificate present, but not private key file \"{}\": {e}",
            path.display()
        ))
    })?;
    if !meta.is_file() {
        return Err(tls_error(format!(
            "private key file \"{}\" is not a regular file",
            path.display()
        )));
    }
    let mode = meta.mode();
    let too_open = if meta.uid() == 0 {
        mode & 0o037 != 0
    } else {
        mode & 0o077 != 0
    };
    if too_open {
        return Err(tls_error(format!(
            "private key file \"{}\" has group or world access; file must have permissions \
             u=rw (0600) or less if owned by the current user, or permissions u=rw,g=r (0640) \
             or less if owned by root",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_key_permissions(_path: &Path) -> Result<()> {
    Ok(())
}

/// `verify-ca` (and `require`/`prefer` with roots): the chain must lead to a trusted root, the
/// host name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain before the name: a name error means the chain was good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `require`/`prefer`/`allow` without roots: any certificate is accepted (libpq's
/// SSL_VERIFY_NONE), but the handshake signatures are still checked, so the session key is
/// shared with whoever holds the certificate's key.
#[derive(Debug)]
struct AcceptAny(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
