//! The byte stream under a connection: TCP or a Unix socket, with libpq's socket options,
//! write-while-reading for large requests, and the non-blocking idle check.
//!
//! Everything that knows what kind of socket it is lives here; TLS plugs in here and nowhere
//! else.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
#[cfg(unix)]
use tokio::net::UnixStream;

use crate::config::Config;
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
    /// Opens a new stream to the same place, for a CancelRequest.
    pub(super) async fn open(&self) -> Result<Stream> {
        match self {
            Peer::Tcp(addr) => {
                let s = TcpStream::connect(addr).await?;
                s.set_nodelay(true)?;
                Ok(Stream::Tcp(s))
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
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Stream {
    /// Connects to a resolved TCP address with libpq's socket options (no Nagle, keepalives).
    /// `name` is the host name it came from, for the error message.
    pub(super) async fn connect_tcp(
        name: &str,
        addr: &SocketAddr,
        config: &Config,
    ) -> Result<(Stream, Peer)> {
        let s = TcpStream::connect(addr)
            .await
            .map_err(|e| connect_error(e, &tcp_target(name, addr)))?;
        // Requests are written whole; Nagle would only delay them.
        s.set_nodelay(true)?;
        set_keepalive(&s, config)?;
        let addr = s.peer_addr()?;
        Ok((Stream::Tcp(s), Peer::Tcp(addr)))
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
            #[cfg(unix)]
            Stream::Unix(s) => s.read_buf(buf).await,
        }
    }

    pub(super) async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(buf).await,
            #[cfg(unix)]
            Stream::Unix(s) => s.write_all(buf).await,
        }
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
            #[cfg(unix)]
            Stream::Unix(s) => {
                let (mut r, mut w) = s.split();
                write_all_reading(&mut r, &mut w, buf, rbuf).await
            }
        }
    }

    /// Reads until the peer closes, discarding what arrives (the end of a CancelRequest).
    pub(super) async fn read_to_close(&mut self) -> io::Result<()> {
        let mut sink = [0u8; 64];
        loop {
            let n = match self {
                Stream::Tcp(s) => s.read(&mut sink).await?,
                #[cfg(unix)]
                Stream::Unix(s) => s.read(&mut sink).await?,
            };
            if n == 0 {
                return Ok(());
            }
        }
    }

    pub(super) async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown().await,
            #[cfg(unix)]
            Stream::Unix(s) => s.shutdown().await,
        }
    }

    /// Reads what the socket holds right now without waiting, appending it to `buf`.
    ///
    /// A non-blocking read straight from the socket (tokio leaves it in O_NONBLOCK mode), not
    /// tokio's `try_read`: that trusts the reactor's readiness, which can lag a just-arrived EOF
    /// by a driver turn and would let a dead connection pass as idle. One syscall per checkout
    /// is the price.
    pub(super) fn read_now(&self, buf: &mut BytesMut) -> ReadNow {
        let mut chunk = [0u8; 4096];
        let sock = match self {
            Stream::Tcp(s) => socket2::SockRef::from(s),
            #[cfg(unix)]
            Stream::Unix(s) => socket2::SockRef::from(s),
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
            match Pin::new(&mut *w).poll_write(cx, buf) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    buf = &buf[n..];
                    if buf.is_empty() {
                        return Poll::Ready(Ok(()));
                    }
                    continue;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
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
