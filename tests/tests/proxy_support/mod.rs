//! `FaultProxy` (tests/FAULTS.md, "Where the faults come from"): a TCP proxy on 127.0.0.1:0
//! that sits between a client and a server and misbehaves on demand. Include with
//! `mod proxy_support;`.
//!
//! std threads only (one accept thread, one thread per direction per connection), so it works
//! the same under any tokio runtime flavour and cannot be starved by the code under test. It
//! lives here rather than in the std-only `pg_harness` library because an RST needs
//! `SO_LINGER = 0`, which std cannot set (`TcpStream::set_linger` is unstable): `socket2` is a
//! dev-dependency.
//!
//! | fault | how |
//! |---|---|
//! | latency | [`Mode::Latency`]: every chunk read is held that long before it is written |
//! | chunked network | [`Mode::Slice`]: every chunk written in pieces of ≤ `max` bytes, one `write(2)` each (`TCP_NODELAY`), `gap` between pieces |
//! | stall | [`Mode::Blackhole`]: nothing is forwarded (not even a FIN) and nothing is dropped; sockets stay open; data flows again once the mode changes |
//! | cut mid-stream | [`Mode::LimitBytes`]: forward `n` more bytes, then [`Cut::Close`] (FIN) or [`Cut::Reset`] (RST) |
//! | FIN / RST now | [`FaultProxy::kill_all`] / [`FaultProxy::reset_all`] |
//! | hostile bytes | [`FaultProxy::inject`]: written to every client at once, between two forwarded chunks |
//!
//! Modes are per direction ([`Dir`]) and apply to every connection, present and future, from
//! the next chunk on.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread;
use std::time::Duration;

/// A direction of traffic through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client → server (queries, startup).
    Up,
    /// Server → client (results).
    Down,
}

/// How a cut connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// FIN to both ends: the client reads EOF.
    Close,
    /// RST to both ends (`SO_LINGER` 0, then close): the client reads `ECONNRESET`.
    Reset,
}

/// What one direction does with the bytes it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Forward at once.
    Pass,
    /// Hold every chunk this long, then forward it.
    Latency(Duration),
    /// Hold every chunk `latency`, then write it in pieces of at most `max` bytes (each its own
    /// write; `TCP_NODELAY` makes each its own segment), sleeping `gap` after each piece so
    /// the receiver's reads see the pieces separately.
    Slice {
        /// The largest piece, at least 1.
        max: usize,
        /// Pause after each piece.
        gap: Duration,
        /// Hold before each chunk.
        latency: Duration,
    },
    /// Forward nothing (data and FIN are held, not dropped) until the mode changes.
    Blackhole,
    /// Forward `n` more bytes (counted per connection from when this mode was set), then end
    /// the connection with `then` as soon as the `n`-th byte is written.
    LimitBytes {
        /// Bytes still forwarded.
        n: usize,
        /// How the connection ends.
        then: Cut,
    },
}

/// Modes of both directions, each with a generation that changes with every `set`.
struct Modes {
    up: (Mode, u64),
    down: (Mode, u64),
}

impl Modes {
    fn get(&self, dir: Dir) -> &(Mode, u64) {
        match dir {
            Dir::Up => &self.up,
            Dir::Down => &self.down,
        }
    }
}

struct Shared {
    modes: Mutex<Modes>,
    changed: Condvar,
    links: Mutex<Vec<Weak<Link>>>,
    stop: AtomicBool,
    accepted: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking pump thread must not take the whole proxy down with a poisoned lock.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One proxied connection. Both pump threads hold it; the sockets close when the last one
/// lets go (which is what sends the RST after `Cut::Reset`).
struct Link {
    client: TcpStream,
    server: TcpStream,
    /// Serializes writes to the client between the downstream pump and `inject`.
    client_write: Mutex<()>,
    dead: AtomicBool,
}

impl Link {
    fn cut(&self, how: Cut) {
        if self.dead.swap(true, Ordering::SeqCst) {
            return;
        }
        match how {
            Cut::Close => {
                let _ = self.client.shutdown(Shutdown::Both);
                let _ = self.server.shutdown(Shutdown::Both);
            }
            Cut::Reset => {
                for s in [&self.client, &self.server] {
                    let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
                    // Wakes a pump blocked in read without sending anything; the RST goes
                    // out when the last handle is dropped.
                    let _ = s.shutdown(Shutdown::Read);
                }
            }
        }
    }

    fn is_dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }
}

/// A fault-injecting TCP proxy. Dropping it ends every connection (FIN) and the accept thread.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = lock(&self.shared.modes);
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("up", &m.up.0)
            .field("down", &m.down.0)
            .finish()
    }
}

impl FaultProxy {
    /// Listens on 127.0.0.1 (a free port) and forwards every connection to `upstream`, both
    /// directions in [`Mode::Pass`].
    ///
    /// # Panics
    /// If the listener cannot be bound or `upstream` does not resolve.
    pub fn start(upstream: impl ToSocketAddrs) -> FaultProxy {
        let upstream: Vec<SocketAddr> = upstream
            .to_socket_addrs()
            .expect("upstream resolves")
            .collect();
        assert!(!upstream.is_empty(), "upstream resolves to no address");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy listener");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            modes: Mutex::new(Modes {
                up: (Mode::Pass, 0),
                down: (Mode::Pass, 0),
            }),
            changed: Condvar::new(),
            links: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            accepted: AtomicUsize::new(0),
        });
        let sh = Arc::clone(&shared);
        thread::Builder::new()
            .name(format!("fault-proxy-accept-{}", addr.port()))
            .spawn(move || accept_loop(listener, upstream, sh))
            .expect("spawn the accept thread");
        FaultProxy { addr, shared }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port clients connect to (the host is 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Switches one direction, for every connection, from its next chunk on.
    pub fn set(&self, dir: Dir, mode: Mode) {
        if let Mode::Slice { max, .. } = mode {
            assert!(max >= 1, "Slice max must be at least 1");
        }
        let mut m = lock(&self.shared.modes);
        let slot = match dir {
            Dir::Up => &mut m.up,
            Dir::Down => &mut m.down,
        };
        slot.0 = mode;
        slot.1 += 1;
        drop(m);
        self.shared.changed.notify_all();
    }

    /// Switches both directions.
    pub fn set_both(&self, mode: Mode) {
        self.set(Dir::Up, mode.clone());
        self.set(Dir::Down, mode);
    }

    /// Both directions back to [`Mode::Pass`]; held data flows on.
    pub fn pass(&self) {
        self.set_both(Mode::Pass);
    }

    /// The current mode of `dir`.
    pub fn mode(&self, dir: Dir) -> Mode {
        lock(&self.shared.modes).get(dir).0.clone()
    }

    /// Writes `bytes` to every live connection's client now (never in the middle of a
    /// forwarded chunk). Returns how many clients got them.
    pub fn inject(&self, bytes: &[u8]) -> usize {
        let mut n = 0;
        for link in self.live() {
            let _w = lock(&link.client_write);
            if (&link.client).write_all(bytes).is_ok() {
                n += 1;
            }
        }
        n
    }

    /// Ends every live connection now with a FIN to both ends, as if the proxy process died
    /// (and the server went away). New connections are still accepted.
    pub fn kill_all(&self) {
        for link in self.live() {
            link.cut(Cut::Close);
        }
    }

    /// Ends every live connection now with an RST to both ends.
    pub fn reset_all(&self) {
        for link in self.live() {
            link.cut(Cut::Reset);
        }
    }

    /// Connections currently open through the proxy (both ends still attached).
    pub fn connections(&self) -> usize {
        self.live().len()
    }

    /// Connections accepted since the start.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    fn live(&self) -> Vec<Arc<Link>> {
        let mut links = lock(&self.shared.links);
        links.retain(|w| w.strong_count() > 0);
        links
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|l| !l.is_dead())
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.kill_all();
        self.shared.changed.notify_all();
        // Wake the accept thread so it sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn accept_loop(listener: TcpListener, upstream: Vec<SocketAddr>, shared: Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let server = upstream
            .iter()
            .find_map(|a| TcpStream::connect_timeout(a, Duration::from_secs(2)).ok());
        let Some(server) = server else {
            // Upstream down: the client sees the connection end at once.
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let link = Arc::new(Link {
            client,
            server,
            client_write: Mutex::new(()),
            dead: AtomicBool::new(false),
        });
        lock(&shared.links).push(Arc::downgrade(&link));
        for dir in [Dir::Up, Dir::Down] {
            let (l, sh) = (Arc::clone(&link), Arc::clone(&shared));
            let spawned = thread::Builder::new()
                .name(format!("fault-proxy-{dir:?}"))
                .spawn(move || pump(l, dir, sh));
            if spawned.is_err() {
                link.cut(Cut::Close);
            }
        }
    }
}

/// Waits while `dir` is blackholed; returns the mode to apply and its generation, or `None`
/// once the link is dead or the proxy stopped.
fn wait_mode(shared: &Shared, link: &Link, dir: Dir) -> Option<(Mode, u64)> {
    let mut m = lock(&shared.modes);
    loop {
        if link.is_dead() || shared.stop.load(Ordering::SeqCst) {
            return None;
        }
        let (mode, generation) = m.get(dir).clone();
        if mode != Mode::Blackhole {
            return Some((mode, generation));
        }
        m = shared
            .changed
            .wait_timeout(m, Duration::from_millis(50))
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

fn pump(link: Arc<Link>, dir: Dir, shared: Arc<Shared>) {
    let (src, dst) = match dir {
        Dir::Up => (&link.client, &link.server),
        Dir::Down => (&link.server, &link.client),
    };
    let write = |bytes: &[u8]| -> io::Result<()> {
        let _w = (dir == Dir::Down).then(|| lock(&link.client_write));
        let mut d = dst;
        d.write_all(bytes)
    };
    let mut buf = vec![0u8; 16 * 1024];
    let mut seen_generation = None;
    let mut sent_since = 0usize;
    loop {
        let n = match (&mut &*src).read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                link.cut(Cut::Close);
                return;
            }
        };
        if n == 0 {
            // EOF travels like data: held while blackholed, then passed on as a FIN.
            if wait_mode(&shared, &link, dir).is_some() {
                let _ = dst.shutdown(Shutdown::Write);
            }
            return;
        }
        let mut data = &buf[..n];
        while !data.is_empty() {
            let Some((mode, generation)) = wait_mode(&shared, &link, dir) else {
                return;
            };
            if seen_generation != Some(generation) {
                seen_generation = Some(generation);
                sent_since = 0;
            }
            let r = match mode {
                Mode::Pass | Mode::Blackhole => write(std::mem::take(&mut data)),
                Mode::Latency(d) => {
                    thread::sleep(d);
                    write(std::mem::take(&mut data))
                }
                Mode::Slice { max, gap, latency } => {
                    thread::sleep(latency);
                    let mut r = Ok(());
                    for piece in std::mem::take(&mut data).chunks(max.max(1)) {
                        r = write(piece);
                        if r.is_err() {
                            break;
                        }
                        if !gap.is_zero() {
                            thread::sleep(gap);
                        }
                    }
                    r
                }
                Mode::LimitBytes { n, then } => {
                    let k = n.saturating_sub(sent_since).min(data.len());
                    let r = write(&data[..k]);
                    sent_since += k;
                    data = &data[k..];
                    if r.is_ok() && sent_since >= n {
                        link.cut(then);
                        return;
                    }
                    r
                }
            };
            if r.is_err() {
                link.cut(Cut::Close);
                return;
            }
        }
    }
}
