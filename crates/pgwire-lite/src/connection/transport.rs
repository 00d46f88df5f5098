//! The byte stream under a connection: TCP, TLS over TCP, or a Unix socket, with libpq's
//! socket options, write-while-reading for large requests, and the non-blocking idle check.
//!
//! Everything that knows what kind of socket it is lives here (the TLS negotiation itself is in
//! `tls.rs`); every query path sees only [`Stream`].

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
#[cfg(unix)]
use tokio::net::UnixStream;
use tokio_rustls::client::TlsStream;

use super::tls::{Negotiated, TlsPlan};
use crate::config::{Config, SslMode};
use crate::error::{Error, Result};

/// Reads take at most this much at a time, and the read buffer grows in steps of it: it never
/// reserves what a length header claims.
pub(super) const READ_CHUNK: usize = 8 * 1024;

/// Where a connection is connected to: what a CancelRequest must go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix socket path.
    Unix(PathBuf),
}

impl Peer {
    /// Opens a new stream to the same place, for a CancelRequest: over TLS when `tls` is given
    /// (the connection used TLS), as libpq 17's PQcancelCreate does.
    pub(super) async fn open(&self, tls: Option<&(Arc<TlsPlan>, String)>) -> Result<Stream> {
        match self {
            Peer::Tcp(addr) => {
                let s = TcpStream::connect(addr).await?;
                s.set_nodelay(true)?;
                match tls {
                    None => Ok(Stream::Tcp(s)),
                    Some((plan, host)) => match plan.negotiate(s, host).await? {
                        Negotiated::Tls(t) => Ok(Stream::Tls(t, plan.clone(), host.clone())),
                        Negotiated::Refused(_) => Err(super::tls::tls_error(
                            "server does not support SSL, but the connection being cancelled \
                             used it",
                        )),
                        Negotiated::HandshakeFailed(e) => Err(e),
                    },
                }
            }
            #[cfg(unix)]
            Peer::Unix(path) => Ok(Stream::Unix(UnixStream::connect(path).await?)),
            #[cfg(not(unix))]
            Peer::Unix(_) => Err(unix_unsupported()),
        }
    }
}

/// A connected socket.
pub(super) enum Stream {
    Tcp(TcpStream),
    /// TLS over TCP, with the plan and host name it was made with (a cancel request reuses
    /// them).
    Tls(Box<TlsStream<TcpStream>>, Arc<TlsPlan>, String),
    #[cfg(unix)]
    Unix(UnixStream),
    /// Lent out to a shared connection's reader or writer for one read or write, done
    /// without the lock that guards the rest of the connection (see [`MuxIo`]).
    ///
    /// [`MuxIo`]: super::multiplex::MuxIo
    Lent,
}

/// The error of I/O on a [`Stream::Lent`]: never seen unless a lent stream was not given back.
fn lent() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the socket is lent to a multiplexed reader or writer",
    )
}

impl Stream {
    /// Connects to a resolved TCP address with libpq's socket options (no Nagle, keepalives).
    /// `name` is the host name it came from, for the error message.
    pub(super) async fn connect_tcp(
        name: &str,
        addr: &SocketAddr,
        config: &Config,
    ) -> Result<(TcpStream, Peer)> {
        let s = TcpStream::connect(addr)
            .await
            .map_err(|e| connect_error(e, &tcp_target(name, addr)))?;
        // Requests are written whole; Nagle would only delay them.
        s.set_nodelay(true)?;
        set_keepalive(&s, config)?;
        let addr = s.peer_addr()?;
        Ok((s, Peer::Tcp(addr)))
    }

    /// Connects over TCP and applies `sslmode`: an SSLRequest first unless TLS is off, then TLS
    /// or (when the mode allows it and the server said `N`) plain text. `require_tls` is the
    /// second attempt of `sslmode=allow`, which must not fall back again.
    pub(super) async fn connect_tcp_tls(
        name: &str,
        addr: &SocketAddr,
        config: &Config,
        tls: Option<&Arc<TlsPlan>>,
        require_tls: bool,
    ) -> Result<(Stream, Peer)> {
        let (tcp, peer) = Self::connect_tcp(name, addr, config).await?;
        let Some(plan) = tls else {
            return Ok((Stream::Tcp(tcp), peer));
        };
        let required = require_tls || plan.mode().requires_tls();
        match plan.negotiate(tcp, name).await? {
            Negotiated::Tls(t) => Ok((Stream::Tls(t, plan.clone(), name.to_owned()), peer)),
            Negotiated::Refused(_) if required => Err(super::tls::tls_error(format!(
                "server does not support SSL (TLS), but sslmode={} requires it",
                plan.mode()
            ))),
            Negotiated::Refused(tcp) => Ok((Stream::Tcp(tcp), peer)),
            // libpq's prefer: a failed handshake is retried without TLS on a new connection.
            Negotiated::HandshakeFailed(_) if plan.mode() == SslMode::Prefer && !required => {
                let (tcp, peer) = Self::connect_tcp(name, addr, config).await?;
                Ok((Stream::Tcp(tcp), peer))
            }
            Negotiated::HandshakeFailed(e) => Err(e),
        }
    }

    /// Connects to the server's socket `.s.PGSQL.<port>` in `dir`.
    pub(super) async fn connect_unix(dir: &std::path::Path, port: u16) -> Result<(Stream, Peer)> {
        let path = dir.join(format!(".s.PGSQL.{port}"));
        #[cfg(unix)]
        {
            let s = UnixStream::connect(&path)
                .await
                .map_err(|e| connect_error(e, &path.display().to_string()))?;
            Ok((Stream::Unix(s), Peer::Unix(path)))
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            Err(unix_unsupported())
        }
    }

    pub(super) async fn read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read_buf(buf).await,
            Stream::Tls(s, ..) => s.read_buf(buf).await,
            #[cfg(unix)]
            Stream::Unix(s) => s.read_buf(buf).await,
            Stream::Lent => Err(lent()),
        }
    }

    pub(super) async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(buf).await,
            // rustls may keep records back when the socket would block: flush sends them.
            Stream::Tls(s, ..) => {
                s.write_all(buf).await?;
                s.flush().await
            }
            #[cfg(unix)]
            Stream::Unix(s) => s.write_all(buf).await,
            Stream::Lent => Err(lent()),
        }
    }

    /// Writes some of `buf`, polled by hand: a multiplexed connection's writer keeps the
    /// unwritten rest in shared state, so a writer whose future is dropped loses nothing.
    pub(super) fn poll_write(
        &mut self,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        // Tokio's write future holds no state between polls: a fresh one per poll is the
        // same as polling `poll_write`, without unsafe code.
        std::future::Future::poll(std::pin::pin!(self.write_some(buf)), cx)
    }

    async fn write_some(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf).await,
            Stream::Tls(s, ..) => s.write(buf).await,
            #[cfg(unix)]
            Stream::Unix(s) => s.write(buf).await,
            Stream::Lent => Err(lent()),
        }
    }

    /// Flushes what TLS keeps back (ready at once for a plain socket), polled by hand.
    pub(super) fn poll_flush(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::future::Future::poll(std::pin::pin!(self.flush()), cx)
    }

    async fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush().await,
            Stream::Tls(s, ..) => s.flush().await,
            #[cfg(unix)]
            Stream::Unix(s) => s.flush().await,
            Stream::Lent => Err(lent()),
        }
    }

    /// [`read_buf`](Self::read_buf) polled by hand (cancel-safe the same way); `Ok(0)` is EOF.
    pub(super) fn poll_read_buf(
        &mut self,
        cx: &mut std::task::Context<'_>,
        buf: &mut BytesMut,
    ) -> std::task::Poll<io::Result<usize>> {
        std::future::Future::poll(std::pin::pin!(self.read_buf(buf)), cx)
    }

    /// Writes all of `buf` while reading whatever the server sends meanwhile into `rbuf`.
    ///
    /// A server that floods output (notices at `client_min_messages=debug5`, say) stops reading
    /// our input once its send buffer is full; if we only wrote, both sides would wait on each
    /// other for ever. Reads into `rbuf` are cancel-safe; a write cut short leaves the request
    /// state's `write_incomplete` set by the caller.
    pub(super) async fn write_all_reading(
        &mut self,
        buf: &[u8],
        rbuf: &mut BytesMut,
    ) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => {
                let (mut r, mut w) = s.split();
                write_all_reading(&mut r, &mut w, buf, rbuf).await
            }
            Stream::Tls(s, ..) => {
                // One TLS session under both halves: tokio's split locks it per poll.
                let (mut r, mut w) = tokio::io::split(&mut **s);
                write_all_reading(&mut r, &mut w, buf, rbuf).await
            }
            #[cfg(unix)]
            Stream::Unix(s) => {
                let (mut r, mut w) = s.split();
                write_all_reading(&mut r, &mut w, buf, rbuf).await
            }
            Stream::Lent => Err(lent()),
        }
    }

    /// The TLS plan and host name to send a CancelRequest with, if this stream is TLS.
    pub(super) fn cancel_tls(&self) -> Option<(Arc<TlsPlan>, String)> {
        match self {
            Stream::Tls(_, plan, host) => Some((plan.clone(), host.clone())),
            _ => None,
        }
    }

    /// The `tls-server-end-point` channel-binding data of a TLS stream (`None` without TLS, or
    /// when the certificate's signature algorithm has no RFC 5929 hash).
    pub(super) fn tls_server_end_point(&self) -> Option<Vec<u8>> {
        match self {
            Stream::Tls(s, ..) => {
                let cert = s.get_ref().1.peer_certificates()?.first()?;
                crate::auth::end_point::tls_server_end_point(cert)
            }
            _ => None,
        }
    }

    /// Whether the stream is encrypted.
    pub(super) fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(..))
    }

    /// Reads until the peer closes, discarding what arrives (the end of a CancelRequest).
    pub(super) async fn read_to_close(&mut self) -> io::Result<()> {
        let mut sink = [0u8; 64];
        loop {
            let n = match self {
                Stream::Tcp(s) => s.read(&mut sink).await?,
                Stream::Tls(s, ..) => s.read(&mut sink).await?,
                #[cfg(unix)]
                Stream::Unix(s) => s.read(&mut sink).await?,
                Stream::Lent => return Err(lent()),
            };
            if n == 0 {
                return Ok(());
            }
        }
    }

    pub(super) async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown().await,
            Stream::Tls(s, ..) => s.shutdown().await,
            #[cfg(unix)]
            Stream::Unix(s) => s.shutdown().await,
            Stream::Lent => Err(lent()),
        }
    }

    /// Reads what the socket holds right now without waiting, appending it to `buf`.
    ///
    /// A non-blocking read straight from the socket (tokio leaves it in O_NONBLOCK mode), not
    /// tokio's `try_read`: that trusts the reactor's readiness, which can lag a just-arrived EOF
    /// by a driver turn and would let a dead connection pass as idle. One syscall per checkout
    /// is the price.
    ///
    /// Over TLS the socket's bytes are records, which must go through the TLS session: the
    /// check peeks at the TCP socket (EOF with nothing before it is `Closed`, nothing at all is
    /// `Open`); only when bytes are waiting does it poll the TLS stream once with a no-op
    /// waker, which yields the plaintext rustls can decrypt now (a close_notify alert, say, or
    /// a server's FATAL goodbye; records tokio's readiness has not caught up with are left for
    /// the next real read).
    pub(super) fn read_now(&mut self, buf: &mut BytesMut) -> ReadNow {
        let mut chunk = [0u8; 4096];
        let sock = match self {
            Stream::Tls(s, ..) => return tls_read_now(s, buf),
            Stream::Tcp(s) => socket2::SockRef::from(&*s),
            #[cfg(unix)]
            Stream::Unix(s) => socket2::SockRef::from(&*s),
            Stream::Lent => return ReadNow::Failed,
        };
        loop {
            let mut r = &*sock;
            match io::Read::read(&mut r, &mut chunk) {
                Ok(0) => return ReadNow::Closed,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadNow::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return ReadNow::Failed,
            }
        }
    }
}

fn tls_read_now(s: &mut TlsStream<TcpStream>, buf: &mut BytesMut) -> ReadNow {
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};
    let mut peek = [std::mem::MaybeUninit::<u8>::uninit(); 1];
    match socket2::SockRef::from(s.get_ref().0).peek(&mut peek) {
        Ok(0) => return ReadNow::Closed,
        Ok(_) => {}
        // Nothing has arrived since the last read, so the session has no new record to
        // decrypt: one syscall per checkout, as for a plain socket.
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadNow::Open,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        Err(_) => return ReadNow::Failed,
    }
    let mut cx = Context::from_waker(Waker::noop());
    let mut chunk = [0u8; 4096];
    loop {
        let mut rb = tokio::io::ReadBuf::new(&mut chunk);
        match tokio::io::AsyncRead::poll_read(Pin::new(&mut *s), &mut cx, &mut rb) {
            Poll::Ready(Ok(())) if rb.filled().is_empty() => return ReadNow::Closed,
            Poll::Ready(Ok(())) => buf.extend_from_slice(rb.filled()),
            Poll::Ready(Err(_)) => return ReadNow::Failed,
            Poll::Pending => return ReadNow::Open,
        }
    }
}

/// What [`Stream::read_now`] found.
pub(super) enum ReadNow {
    /// Still open; whatever was waiting has been appended.
    Open,
    /// The peer closed the connection (EOF).
    Closed,
    /// The socket reported an error.
    Failed,
}

#[cfg(not(unix))]
fn unix_unsupported() -> Error {
    Error::Unsupported("Unix-domain sockets on this platform (use a TCP host)")
}

/// `host:port`, with brackets around an IPv6 address.
pub(super) fn tcp_address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `name (addr)` when the name is not the address itself, as libpq words it.
pub(super) fn tcp_target(name: &str, addr: &SocketAddr) -> String {
    if name.parse::<std::net::IpAddr>().is_ok() {
        tcp_address(name, addr.port())
    } else {
        format!("{} ({addr})", tcp_address(name, addr.port()))
    }
}

/// A failed connect names where it tried (several hosts may be configured, and "connection
/// refused" alone does not say which); the error kind is kept for callers that match on it.
pub(super) fn connect_error(e: io::Error, address: &str) -> Error {
    Error::Io(io::Error::new(
        e.kind(),
        format!("could not connect to {address}: {e}"),
    ))
}

async fn write_all_reading<R, W>(
    r: &mut R,
    w: &mut W,
    mut buf: &[u8],
    rbuf: &mut BytesMut,
) -> io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    use std::pin::Pin;
    use std::task::Poll;
    let mut eof = false;
    let mut chunk = [0u8; READ_CHUNK];
    std::future::poll_fn(|cx| {
        loop {
            if buf.is_empty() {
                // TLS may still hold records back; for a plain socket this is ready at once.
                match Pin::new(&mut *w).poll_flush(cx) {
                    Poll::Ready(r) => return Poll::Ready(r),
                    Poll::Pending => {}
                }
            } else {
                match Pin::new(&mut *w).poll_write(cx, buf) {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                    }
                    Poll::Ready(Ok(n)) => {
                        buf = &buf[n..];
                        continue;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
            if eof {
                return Poll::Pending;
            }
            let mut rb = tokio::io::ReadBuf::new(&mut chunk);
            match Pin::new(&mut *r).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) if rb.filled().is_empty() => {
                    // The server closed its side; the write will fail or the next read see EOF.
                    eof = true;
                }
                Poll::Ready(Ok(())) => rbuf.extend_from_slice(rb.filled()),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await
}

/// libpq's keepalive settings: on by default, with the OS's timings unless overridden.
fn set_keepalive(s: &TcpStream, config: &Config) -> io::Result<()> {
    let sock = socket2::SockRef::from(s);
    if config.get_keepalives() {
        let mut ka = socket2::TcpKeepalive::new();
        if let Some(idle) = config.get_keepalives_idle() {
            ka = ka.with_time(idle);
        }
        #[cfg(not(target_os = "openbsd"))]
        if let Some(interval) = config.get_keepalives_interval() {
            ka = ka.with_interval(interval);
        }
        #[cfg(not(any(target_os = "openbsd", windows)))]
        if let Some(count) = config.get_keepalives_count() {
            ka = ka.with_retries(count);
        }
        sock.set_tcp_keepalive(&ka)?;
    }
    // TCP_USER_TIMEOUT exists on Linux (and Android/Fuchsia) only; libpq ignores the setting
    // elsewhere, and so do we.
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "fuchsia"))]
    if let Some(t) = config.get_tcp_user_timeout() {
        sock.set_tcp_user_timeout(Some(t))?;
    }
    Ok(())
}
