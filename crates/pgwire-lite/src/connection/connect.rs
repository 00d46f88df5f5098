//! Connecting: address resolution, multiple hosts, `connect_timeout` and
//! `target_session_attrs`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use super::Connection;
use super::tls::TlsPlan;
use super::transport::{Stream, connect_error, tcp_address, tcp_target};
use crate::config::{Config, Host, SslMode, TargetSessionAttrs};
use crate::error::{ConfigError, Error, Result};

impl Connection {
    /// Connects, authenticates and waits until the server is ready for queries.
    ///
    /// The configuration is first completed from libpq's environment variables and defaults
    /// ([`Config::resolve`]). Hosts are tried in order (in a random order, and each host's
    /// addresses too, with `load_balance_hosts=random`) until one accepts and matches
    /// `target_session_attrs`; `connect_timeout` bounds each attempt as a whole — TCP connect,
    /// startup, authentication and the session-attributes check.
    ///
    /// `target_session_attrs` is checked as libpq does: from the `default_transaction_read_only`
    /// and `in_hot_standby` values the server reports at startup (PostgreSQL 14+, no extra round
    /// trip), else with `SHOW transaction_read_only` / `pg_is_in_recovery()`. A server that does
    /// not match is closed and the next host tried; when none matches, the error is
    /// [`Error::Closed`] naming the attribute, e.g. "no host matched
    /// target_session_attrs=read-write". `prefer-standby` tries every host for a standby first,
    /// then any server.
    pub async fn connect(config: &Config) -> Result<Connection> {
        // Boxed: the connect state machine (TLS handshake, SCRAM, host list, the type cache
        // and tracing) is several kilobytes, and every future that may open a connection (a
        // pool checkout, so `pool.execute`) would otherwise carry it inline and move it through
        // the stack. One allocation per new connection.
        Box::pin(Self::connect_unboxed(config)).await
    }

    async fn connect_unboxed(config: &Config) -> Result<Connection> {
        // Resolved configurations are validated already.
        let config = config.resolve()?;
        // Read once per connect: the certificate files, as libpq reads them per connection.
        // TLS is never used over Unix sockets (libpq), so a socket-only configuration needs no
        // TLS setup at all.
        let tls = if config.get_hosts().iter().any(|h| matches!(h, Host::Tcp(_))) {
            TlsPlan::new(&config)?
        } else {
            None
        };
        // libpq's connectOptions2: the password file, read once per connect when no password
        // was given, then matched against each host as it is tried.
        let passfile = config.load_passfile();
        let timeout = config.get_connect_timeout();
        let passes = match config.get_target_session_attrs() {
            TargetSessionAttrs::PreferStandby => {
                vec![TargetSessionAttrs::Standby, TargetSessionAttrs::Any]
            }
            want => vec![want],
        };
        let mut last_err = None;
        let mut order = Shuffle::new(config.load_balances_randomly());
        for want in passes {
            let mut targets = config.targets();
            order.shuffle(&mut targets);
            for (host, port) in targets {
                let with_password = passfile
                    .as_ref()
                    .and_then(|f| config.with_passfile_password(f, &host, port));
                let config = with_password.as_ref().unwrap_or(&config);
                // As libpq: a host name is resolved first, and connect_timeout applies to each
                // of its addresses separately (an unreachable IPv6 address must not eat the
                // IPv4 one's time).
                let resolving = resolve(&host, port);
                let resolved = match timeout {
                    Some(t) => {
                        tokio::time::timeout(t, resolving)
                            .await
                            .unwrap_or(Err(Error::Timeout(
                                "connect_timeout elapsed while resolving the host name",
                            )))
                    }
                    None => resolving.await,
                };
                let addrs = match resolved {
                    Ok(mut a) => {
                        order.shuffle(&mut a);
                        a
                    }
                    Err(e) => {
                        last_err = Some(e);
                        continue;
                    }
                };
                for addr in addrs {
                    let attempt = async {
                        let mut conn = Self::connect_one(config, &addr, port, tls.as_ref()).await?;
                        if let Some(why) = conn.session_attrs_mismatch(want).await? {
                            // Best effort: the server gets a Terminate, we go on either way.
                            let _ = conn.close().await;
                            return Err(Error::Closed(why));
                        }
                        Ok(conn)
                    };
                    let result = match timeout {
                        Some(t) => match tokio::time::timeout(t, attempt).await {
                            Ok(r) => r,
                            Err(_) => {
                                Err(Error::Timeout("connect_timeout elapsed while connecting"))
                            }
                        },
                        None => attempt.await,
                    };
                    match result {
                        Ok(conn) => return Ok(conn),
                        Err(e) => last_err = Some(e),
                    }
                }
            }
        }
        Err(last_err.unwrap_or_else(|| Error::Config(ConfigError::new("no host to connect to"))))
    }

    async fn connect_one(
        config: &Config,
        target: &Target,
        port: u16,
        tls: Option<&Arc<TlsPlan>>,
    ) -> Result<Connection> {
        // libpq's second chances: under allow, plain text first and TLS if the server refuses
        // that session; under prefer, a session the server refuses over TLS (a `hostnossl`
        // line, say) is tried again in plain text.
        if let (Target::Tcp(..), Some(plan)) = (target, tls) {
            match plan.mode() {
                SslMode::Allow => {
                    return match Self::attempt(config, target, port, None, false).await {
                        (Err(Error::Db(_)), _) => {
                            Self::attempt(config, target, port, tls, true).await.0
                        }
                        (other, _) => other,
                    };
                }
                SslMode::Prefer => {
                    return match Self::attempt(config, target, port, tls, false).await {
                        (Err(Error::Db(_)), true) => {
                            Self::attempt(config, target, port, None, false).await.0
                        }
                        (other, _) => other,
                    };
                }
                _ => {}
            }
        }
        Self::attempt(config, target, port, tls, false).await.0
    }

    async fn attempt(
        config: &Config,
        target: &Target,
        port: u16,
        tls: Option<&Arc<TlsPlan>>,
        require_tls: bool,
    ) -> (Result<Connection>, bool) {
        let opened = match target {
            Target::Tcp(name, addr) => {
                Stream::connect_tcp_tls(name, addr, config, tls, require_tls).await
            }
            Target::Unix(dir) => Stream::connect_unix(dir, port).await,
        };
        let (stream, peer) = match opened {
            Ok(o) => o,
            Err(e) => return (Err(e), false),
        };
        let used_tls = stream.is_tls();
        let mut conn = Connection::new(stream, peer);
        if let Some(n) = config.get_statement_cache_capacity() {
            conn.set_statement_cache_capacity(n);
        }
        conn.trace = super::trace::TraceTarget {
            // As the server does, the database defaults to the user name.
            namespace: config
                .get_dbname()
                .or(config.get_user())
                .unwrap_or_default()
                .into(),
            address: match target {
                Target::Tcp(name, _) => name.as_str().into(),
                Target::Unix(dir) => dir.display().to_string().into(),
            },
            port,
        };
        let started = Self::started(conn.startup(config).await, conn, target, port);
        match &started {
            Ok(conn) => tracing::debug!(
                target: "pgwire_lite::connection",
                backend_pid = conn.process_id,
                tls = used_tls,
                server.address = &*conn.trace.address,
                server.port = port,
                db.namespace = &*conn.trace.namespace,
                "connection opened"
            ),
            Err(e) => tracing::debug!(
                target: "pgwire_lite::connection",
                error = %e,
                server.address = %target.describe(port),
                "connection attempt failed"
            ),
        }
        (started, used_tls)
    }

    /// The connection once `startup` ended with `result`, or its error naming the server.
    fn started(
        result: Result<()>,
        conn: Connection,
        target: &Target,
        port: u16,
    ) -> Result<Connection> {
        match result {
            Ok(()) => Ok(conn),
            // Which server refused: with several hosts, or a pool's many connections, the
            // error alone does not say.
            Err(Error::Db(mut db)) => {
                db.server = Some(target.describe(port));
                Err(Error::Db(db))
            }
            Err(Error::Auth(m)) => Err(Error::Auth(format!(
                "connection to server at {} failed: {m}",
                target.describe(port)
            ))),
            Err(e) => Err(e),
        }
    }

    /// Why this session does not match `want` (the error message), or `None` if it does.
    async fn session_attrs_mismatch(
        &mut self,
        want: TargetSessionAttrs,
    ) -> Result<Option<&'static str>> {
        use TargetSessionAttrs as T;
        Ok(match want {
            T::Any => None,
            T::ReadWrite | T::ReadOnly => {
                let read_only = self
                    .session_flag(
                        "default_transaction_read_only",
                        "SHOW transaction_read_only",
                    )
                    .await?
                    || self
                        .session_flag("in_hot_standby", "SELECT pg_catalog.pg_is_in_recovery()")
                        .await?;
                match (want, read_only) {
                    (T::ReadWrite, true) => Some(
                        "no host matched target_session_attrs=read-write: the server is \
                         read-only (default_transaction_read_only is on, or it is a hot standby)",
                    ),
                    (T::ReadOnly, false) => Some(
                        "no host matched target_session_attrs=read-only: the server accepts writes",
                    ),
                    _ => None,
                }
            }
            T::Primary | T::Standby | T::PreferStandby => {
                let standby = self
                    .session_flag("in_hot_standby", "SELECT pg_catalog.pg_is_in_recovery()")
                    .await?;
                match (want, standby) {
                    (T::Primary, true) => Some(
                        "no host matched target_session_attrs=primary: the server is a hot standby",
                    ),
                    (T::Standby | T::PreferStandby, false) => Some(
                        "no host matched target_session_attrs=standby: the server is not a hot \
                         standby",
                    ),
                    _ => None,
                }
            }
        })
    }

    /// A boolean setting as the server reported it at startup (`on`/`off`), or, from servers
    /// older than 14 that do not report it, the answer to `fallback` (`on`/`off`/`t`/`f`).
    async fn session_flag(&mut self, reported: &str, fallback: &str) -> Result<bool> {
        if let Some(v) = self.parameter(reported) {
            return Ok(v == "on");
        }
        let results = self.simple_query(fallback).await?;
        let row = results
            .first()
            .and_then(|r| r.rows().first())
            .ok_or_else(|| Error::protocol(format!("no row from `{fallback}`")))?;
        Ok(matches!(row.raw(0)?, Some(b"on" | b"t")))
    }
}

/// One address to try: a resolved TCP address (with the name it came from, for errors) or a
/// Unix socket directory.
enum Target {
    Tcp(String, SocketAddr),
    Unix(PathBuf),
}

impl Target {
    /// `host:port` as libpq words it, or the socket's path.
    fn describe(&self, port: u16) -> String {
        match self {
            Target::Tcp(name, addr) => tcp_target(name, addr),
            Target::Unix(dir) => dir.join(format!(".s.PGSQL.{port}")).display().to_string(),
        }
    }
}

/// The addresses of one host, in the resolver's order.
async fn resolve(host: &Host, port: u16) -> Result<Vec<Target>> {
    match host {
        Host::Tcp(name) => {
            let addrs = tokio::net::lookup_host((name.as_str(), port))
                .await
                .map_err(|e| connect_error(e, &tcp_address(name, port)))?;
            Ok(addrs.map(|a| Target::Tcp(name.clone(), a)).collect())
        }
        Host::Unix(dir) => Ok(vec![Target::Unix(dir.clone())]),
    }
}

/// `load_balance_hosts=random`: a Fisher-Yates shuffle driven by xorshift64*, seeded from the
/// OS once per connect. The order only spreads load, so a weak generator is enough; without
/// OS randomness the order stays as given.
struct Shuffle(Option<u64>);

impl Shuffle {
    fn new(random: bool) -> Shuffle {
        Shuffle(
            random
                .then(|| getrandom::u64().unwrap_or(0))
                .filter(|&s| s != 0),
        )
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        let Some(state) = self.0.as_mut() else { return };
        for i in (1..items.len()).rev() {
            *state ^= *state >> 12;
            *state ^= *state << 25;
            *state ^= *state >> 27;
            let draw = state.wrapping_mul(0x2545_f491_4f6c_dd1d);
            // i + 1 is at most the list length, far below u64::MAX.
            let j = usize::try_from(draw % (i as u64 + 1)).unwrap_or(0);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Shuffle;

    #[test]
    fn shuffle_permutes_and_disable_keeps_the_order() {
        let mut keep = Shuffle::new(false);
        let mut v: Vec<u32> = (0..8).collect();
        keep.shuffle(&mut v);
        assert_eq!(v, (0..8).collect::<Vec<_>>());
        let mut firsts = std::collections::HashSet::new();
        for _ in 0..200 {
            let mut order = Shuffle::new(true);
            let mut v: Vec<u32> = (0..8).collect();
            order.shuffle(&mut v);
            firsts.insert(v[0]);
            v.sort_unstable();
            assert_eq!(v, (0..8).collect::<Vec<_>>(), "a permutation");
        }
        assert!(firsts.len() > 4, "every host gets to be first: {firsts:?}");
    }
}
