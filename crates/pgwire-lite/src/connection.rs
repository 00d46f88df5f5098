//! One connection to a PostgreSQL server: socket, buffers, startup, authentication, queries.
//!
//! The caller that holds `&mut Connection` owns the socket: there is no background task and no
//! channel. A request is built whole in the write buffer and sent with one `write`; responses are
//! framed straight out of the read buffer.
//!
//! # Cancellation safety
//! Dropping a query future at any await point never leaves the connection in an unknown state.
//! Before the first byte of a request is written, the number of ReadyForQuery messages still owed
//! by the server is incremented; each ReadyForQuery read decrements it. A future dropped after
//! that point leaves the count above zero, [`Connection::has_pending`] says so, and the next
//! operation (or [`Connection::drain`]) first reads and discards the rest of the old response.
//! A future dropped in the middle of writing leaves a partial message on the wire, which cannot be
//! repaired: the connection then reports [`Connection::is_broken`].

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use crate::auth::{AuthMethod, RequireAuth, md5::md5_password, scram::ScramSha256};
use crate::cancel::CancelToken;
use crate::config::{Config, Host, TargetSessionAttrs};
use crate::error::{DbError, Error, Result};
use crate::protocol::backend::{
    self, BackendMessage, DEFAULT_MAX_MESSAGE_LEN, MAX_AUTH_MESSAGE_LEN,
};
use crate::protocol::frontend;
use crate::row::{Column, QueryResult, Row, Rows};
use crate::statement::{DEFAULT_STATEMENT_CACHE_CAPACITY, Statement, StatementCache};
use crate::types::{Format, IsNull, ToSql, Type};

mod pipeline;
pub use pipeline::Pipeline;

/// How many unread notifications a connection keeps; older ones are dropped first, so a busy
/// channel nobody reads cannot grow memory without bound.
const MAX_QUEUED_NOTIFICATIONS: usize = 10_000;

/// The read buffer grows in steps of this size; it never reserves what a length header claims.
const READ_CHUNK: usize = 8 * 1024;

/// After a query timeout, how long the CancelRequest and the drain to ReadyForQuery may take
/// before the connection is given up: a healthy server answers a cancel in about a millisecond,
/// a hung one never does, and the caller should wait at most its timeout plus this.
const CANCEL_GRACE: Duration = Duration::from_millis(200);

/// Requests up to this size are written without reading at the same time: the kernel's socket
/// buffers take them whole, so the server cannot block us. Larger ones (huge parameters, long
/// batches) are written while reading, see `Stream::write_all_reading`.
const WRITE_WITHOUT_READING: usize = 32 * 1024;

/// A read buffer grown beyond this by a large message is replaced by a fresh small one once it
/// is empty again, so one huge row does not pin its memory for the connection's lifetime.
const READ_BUF_SHRINK_ABOVE: usize = 1 << 20;

/// The transaction status reported by the last ReadyForQuery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    /// Not in a transaction block.
    Idle,
    /// Inside a transaction block.
    InTransaction,
    /// Inside a failed transaction block: queries are rejected until it ends.
    Failed,
}

/// Where the parameter types of a statement come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParamTypes {
    /// The server infers them (Parse with no declared types, then Describe), as tokio-postgres
    /// and libpq do: a statement costs one extra round trip the first time a connection sees it,
    /// and a value must fit the inferred type (`&"42"` is refused for `$1::int4`). The default.
    #[default]
    Inferred,
    /// The values declare them (`i32` → int4, `&str` → text, ...), as sqlx does: a new statement
    /// runs in one round trip (Parse, Describe, Bind, Execute, Sync in one write). The server
    /// then casts where the SQL asks for another type (`$1::int8` with an `i32`, or `$1::int4`
    /// with `&"42"`). Used only outside transactions and when every value declares a type; a
    /// Parse the declared types make fail falls back to inference, having executed nothing.
    FromValues,
}

/// A LISTEN/NOTIFY notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The notifying backend's process id.
    pub process_id: i32,
    /// The channel.
    pub channel: String,
    /// The payload.
    pub payload: String,
}

/// A callback that receives every NoticeResponse (warnings, `RAISE NOTICE`, ...).
pub type NoticeHandler = Box<dyn FnMut(&DbError) + Send + Sync>;

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    async fn read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read_buf(buf).await,
            Stream::Unix(s) => s.read_buf(buf).await,
        }
    }

    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(buf).await,
            Stream::Unix(s) => s.write_all(buf).await,
        }
    }

    /// Writes all of `buf` while reading whatever the server sends meanwhile into `rbuf`.
    ///
    /// A server that floods output (notices at `client_min_messages=debug5`, say) stops reading
    /// our input once its send buffer is full; if we only wrote, both sides would wait on each
    /// other for ever. Reads into `rbuf` are cancel-safe; a write cut short leaves
    /// `write_incomplete` set by the caller.
    async fn write_all_reading(&mut self, buf: &[u8], rbuf: &mut BytesMut) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => {
                let (mut r, mut w) = s.split();
                write_all_reading(&mut r, &mut w, buf, rbuf).await
            }
            Stream::Unix(s) => {
                let (mut r, mut w) = s.split();
                write_all_reading(&mut r, &mut w, buf, rbuf).await
            }
        }
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown().await,
            Stream::Unix(s) => s.shutdown().await,
        }
    }

    fn sock(&self) -> socket2::SockRef<'_> {
        match self {
            Stream::Tcp(s) => socket2::SockRef::from(s),
            Stream::Unix(s) => socket2::SockRef::from(s),
        }
    }
}

/// Where a connection is connected to: what a CancelRequest must go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix socket path.
    Unix(PathBuf),
}

/// A connection to a PostgreSQL server.
pub struct Connection {
    stream: Stream,
    peer: Peer,
    read_buf: BytesMut,
    write_buf: BytesMut,
    /// ReadyForQuery messages the server still owes us.
    pending: usize,
    /// A request ended with Flush, not Sync, and was not finished: drain must send the Sync.
    sync_owed: bool,
    /// A write was started and not finished: the stream holds a partial message.
    write_incomplete: bool,
    /// The request in flight is an extended-protocol one (Bind/Execute/Sync). A COPY FROM STDIN
    /// it starts swallows its Sync, so refusing the COPY needs a Sync of our own.
    extended_in_flight: bool,
    broken: Option<&'static str>,
    tx_status: TransactionStatus,
    parameters: HashMap<Box<str>, Box<str>>,
    process_id: i32,
    secret_key: Box<[u8]>,
    cache: StatementCache,
    notifications: VecDeque<Notification>,
    notice_handler: Option<NoticeHandler>,
    /// The FATAL error the server ended the session with. The server closes the socket right
    /// after it, and no ReadyForQuery follows: the EOF that the reader then hits reports this
    /// error instead, so the caller learns why (57P01, 25P03, ...) rather than just "EOF".
    fatal: Option<DbError>,
    /// The last operator-intervention notice (SQLSTATE class 57, e.g. WARNING 57P01 "immediate
    /// shutdown" or 57P02 "crash of another server process"): the server's last words before it
    /// closes the socket, kept as context for the EOF error.
    last_words: Option<String>,
    max_message_len: usize,
    query_timeout: Option<Duration>,
    param_types: ParamTypes,
    created_at: Instant,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The cancel key is a secret of sorts: it lets anyone cancel our queries.
        f.debug_struct("Connection")
            .field("peer", &self.peer)
            .field("process_id", &self.process_id)
            .field("transaction_status", &self.tx_status)
            .field("pending", &self.pending)
            .field("broken", &self.broken)
            .field("cached_statements", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects, authenticates and waits until the server is ready for queries.
    ///
    /// The configuration is first completed from libpq's environment variables and defaults
    /// ([`Config::resolve`]). Hosts are tried in order until one accepts and matches
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
        let config = config.resolve()?;
        config.validate()?;
        let timeout = config.get_connect_timeout();
        let passes = match config.get_target_session_attrs() {
            TargetSessionAttrs::PreferStandby => {
                vec![TargetSessionAttrs::Standby, TargetSessionAttrs::Any]
            }
            want => vec![want],
        };
        let mut last_err = None;
        for want in passes {
            for (host, port) in config.targets() {
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
                    Ok(a) => a,
                    Err(e) => {
                        last_err = Some(e);
                        continue;
                    }
                };
                for addr in addrs {
                    let attempt = async {
                        let mut conn = Self::connect_one(&config, &addr, port).await?;
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
        Err(last_err.unwrap_or_else(|| {
            Error::Config(crate::error::ConfigError::new("no host to connect to"))
        }))
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

    async fn connect_one(config: &Config, target: &Target, port: u16) -> Result<Connection> {
        let (stream, peer) = match target {
            Target::Tcp(name, addr) => {
                let s = TcpStream::connect(addr)
                    .await
                    .map_err(|e| connect_error(e, &tcp_target(name, addr)))?;
                // Requests are written whole; Nagle would only delay them.
                s.set_nodelay(true)?;
                set_keepalive(&s, config)?;
                let addr = s.peer_addr()?;
                (Stream::Tcp(s), Peer::Tcp(addr))
            }
            Target::Unix(dir) => {
                let path = dir.join(format!(".s.PGSQL.{port}"));
                let s = UnixStream::connect(&path)
                    .await
                    .map_err(|e| connect_error(e, &path.display().to_string()))?;
                (Stream::Unix(s), Peer::Unix(path))
            }
        };
        let mut conn = Connection {
            stream,
            peer,
            read_buf: BytesMut::with_capacity(READ_CHUNK),
            write_buf: BytesMut::with_capacity(READ_CHUNK),
            pending: 0,
            sync_owed: false,
            write_incomplete: false,
            extended_in_flight: false,
            broken: None,
            tx_status: TransactionStatus::Idle,
            parameters: HashMap::new(),
            process_id: 0,
            secret_key: Box::new([]),
            cache: StatementCache::new(DEFAULT_STATEMENT_CACHE_CAPACITY),
            notifications: VecDeque::new(),
            notice_handler: None,
            fatal: None,
            last_words: None,
            max_message_len: DEFAULT_MAX_MESSAGE_LEN,
            query_timeout: None,
            param_types: ParamTypes::Inferred,
            created_at: Instant::now(),
        };
        conn.startup(config).await?;
        Ok(conn)
    }

    async fn startup(&mut self, config: &Config) -> Result<()> {
        let user = config
            .get_user()
            .ok_or_else(|| Error::Config(crate::error::ConfigError::new("no user name given")))?;
        let mut params: Vec<(&str, &str)> = vec![("user", user)];
        if let Some(db) = config.get_dbname() {
            params.push(("database", db));
        }
        if let Some(app) = config.get_application_name() {
            params.push(("application_name", app));
        }
        if let Some(opts) = config.get_options() {
            params.push(("options", opts));
        }
        // Text values (simple-query results) are decoded as UTF-8, with ISO dates, postgres-style
        // intervals and floats printed exactly; a role or database default must not change that.
        // (A later `SET DateStyle` by the user still would: documented on simple_query.)
        params.push(("client_encoding", "UTF8"));
        params.push(("DateStyle", "ISO"));
        params.push(("IntervalStyle", "postgres"));
        params.push(("extra_float_digits", "3"));
        self.write_buf.clear();
        frontend::startup_message(params, &mut self.write_buf)?;
        self.flush_write().await?;
        let require = match config.get_require_auth() {
            Some(r) => RequireAuth::parse(r)?,
            None => RequireAuth::default(),
        };
        self.authenticate(user, config.get_password(), require)
            .await?;
        // After AuthenticationOk: BackendKeyData, ParameterStatus (handled in recv), then
        // ReadyForQuery, or an ErrorResponse.
        loop {
            let frame = self.recv_startup().await?;
            match backend::decode(&frame)? {
                BackendMessage::BackendKeyData {
                    process_id,
                    secret_key,
                } => {
                    self.process_id = process_id;
                    self.secret_key = secret_key.into();
                }
                BackendMessage::ReadyForQuery { status } => {
                    self.set_tx_status(status);
                    return Ok(());
                }
                BackendMessage::ErrorResponse(f) => return Err(f.to_db_error().into()),
                BackendMessage::NegotiateProtocolVersion { .. } => {}
                other => {
                    return Err(Error::protocol(format!(
                        "unexpected {other:?} during startup"
                    )));
                }
            }
        }
    }

    async fn authenticate(
        &mut self,
        user: &str,
        password: Option<&[u8]>,
        require: RequireAuth,
    ) -> Result<()> {
        let need_password = |method: &str| {
            Error::auth(format!(
                "the server requested {method} password authentication, but no password was given"
            ))
        };
        // Checked before anything is sent: a password never goes out in a way require_auth
        // does not allow (a server downgrading SCRAM to cleartext, say).
        let check = |method: AuthMethod| {
            if require.allows(method) {
                Ok(())
            } else {
                Err(Error::auth(format!(
                    "the server requested \"{}\" authentication, which require_auth does not allow",
                    method.as_str()
                )))
            }
        };
        let mut scram: Option<ScramSha256> = None;
        let mut requested = false;
        loop {
            let frame = self.recv_startup().await?;
            let msg = backend::decode(&frame)?;
            self.write_buf.clear();
            if !matches!(
                msg,
                BackendMessage::AuthenticationOk
                    | BackendMessage::ErrorResponse(_)
                    | BackendMessage::NegotiateProtocolVersion { .. }
            ) {
                requested = true;
            }
            match msg {
                BackendMessage::AuthenticationOk => {
                    if !requested {
                        check(AuthMethod::None)?;
                    }
                    // A server that skips SASLFinal never proved it knows the password: it
                    // could be anyone who intercepted the connection.
                    if let Some(s) = &scram {
                        if !s.is_verified() {
                            return Err(Error::auth(
                                "the server sent AuthenticationOk before proving it knows the \
                                 password (no valid SCRAM server signature)",
                            ));
                        }
                    }
                    return Ok(());
                }
                BackendMessage::AuthenticationCleartextPassword => {
                    check(AuthMethod::Password)?;
                    let pw = password.ok_or_else(|| need_password("cleartext"))?;
                    frontend::password_message(pw, &mut self.write_buf)?;
                }
                BackendMessage::AuthenticationMD5Password { salt } => {
                    check(AuthMethod::Md5)?;
                    let pw = password.ok_or_else(|| need_password("MD5"))?;
                    let hashed = md5_password(user.as_bytes(), pw, salt);
                    frontend::password_message(hashed.as_bytes(), &mut self.write_buf)?;
                }
                BackendMessage::AuthenticationSASL { mechanisms } => {
                    if scram.is_some() {
                        return Err(Error::protocol("a second SASL exchange during startup"));
                    }
                    if !mechanisms.contains(&crate::auth::scram::SCRAM_SHA_256) {
                        return Err(Error::auth(format!(
                            "the server offers only SASL mechanisms {mechanisms:?}; supported: \
                             SCRAM-SHA-256 (SCRAM-SHA-256-PLUS needs TLS channel binding, \
                             which is not supported yet)"
                        )));
                    }
                    check(AuthMethod::ScramSha256)?;
                    let pw = password.ok_or_else(|| need_password("SCRAM-SHA-256"))?;
                    let s = ScramSha256::new(pw)?;
                    frontend::sasl_initial_response(
                        crate::auth::scram::SCRAM_SHA_256,
                        s.client_first(),
                        &mut self.write_buf,
                    )?;
                    scram = Some(s);
                }
                BackendMessage::AuthenticationSASLContinue { data } => {
                    let s = scram
                        .as_mut()
                        .ok_or_else(|| Error::protocol("SASLContinue without a SASL exchange"))?;
                    let client_final = s.update(data)?;
                    frontend::sasl_response(&client_final, &mut self.write_buf)?;
                }
                BackendMessage::AuthenticationSASLFinal { data } => {
                    let s = scram
                        .as_mut()
                        .ok_or_else(|| Error::protocol("SASLFinal without a SASL exchange"))?;
                    s.finish(data)?;
                    continue;
                }
                BackendMessage::AuthenticationKerberosV5 => {
                    return Err(Error::auth("Kerberos V5 authentication is not supported"));
                }
                BackendMessage::AuthenticationSCMCredential => {
                    return Err(Error::auth(
                        "SCM credential authentication is not supported",
                    ));
                }
                BackendMessage::AuthenticationGSS | BackendMessage::AuthenticationGSSContinue => {
                    check(AuthMethod::Gss)?;
                    return Err(Error::auth("GSSAPI authentication is not supported"));
                }
                BackendMessage::AuthenticationSSPI => {
                    check(AuthMethod::Sspi)?;
                    return Err(Error::auth("SSPI authentication is not supported"));
                }
                BackendMessage::ErrorResponse(f) => return Err(f.to_db_error().into()),
                BackendMessage::NegotiateProtocolVersion { .. } => continue,
                other => {
                    return Err(Error::protocol(format!(
                        "unexpected {other:?} during authentication"
                    )));
                }
            }
            self.flush_write().await?;
        }
    }

    /// During startup, frames are capped much lower: no legitimate startup message is large.
    async fn recv_startup(&mut self) -> Result<Bytes> {
        let cap = self.max_message_len;
        self.max_message_len = cap.min(MAX_AUTH_MESSAGE_LEN.max(backend::MAX_SHORT_MESSAGE_LEN));
        let r = self.recv().await;
        self.max_message_len = cap;
        r
    }

    // ---------------------------------------------------------------------------------------
    // State
    // ---------------------------------------------------------------------------------------

    /// The transaction status reported by the last ReadyForQuery.
    pub fn transaction_status(&self) -> TransactionStatus {
        self.tx_status
    }

    /// Ready for a query outside any transaction: not broken, nothing pending.
    pub fn is_idle(&self) -> bool {
        self.broken.is_none() && !self.has_pending() && self.tx_status == TransactionStatus::Idle
    }

    /// Inside a transaction block (possibly a failed one).
    pub fn in_transaction(&self) -> bool {
        self.tx_status != TransactionStatus::Idle
    }

    /// The connection failed (I/O error, protocol violation, FATAL error, partial write) and must
    /// not be used again.
    pub fn is_broken(&self) -> bool {
        self.broken.is_some() || self.write_incomplete
    }

    /// A previous request's responses are still unread, because its future was dropped. The next
    /// operation drains them first; [`drain`](Connection::drain) does it explicitly.
    pub fn has_pending(&self) -> bool {
        self.pending > 0 || self.sync_owed || self.write_incomplete
    }

    /// Reads and discards whatever a dropped request left unread, up to its ReadyForQuery.
    pub async fn drain(&mut self) -> Result<()> {
        self.ensure_ready().await
    }

    /// The backend's process id (for `pg_terminate_backend`, logs, cancel requests).
    pub fn backend_pid(&self) -> i32 {
        self.process_id
    }

    /// Where this connection is connected to.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// A run-time parameter reported by the server (`server_version`, `TimeZone`, ...).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters.get(name).map(|v| &**v)
    }

    /// When the connection was opened.
    pub fn created_at(&self) -> Instant {
        self.created_at
    }

    /// Sets the callback that receives NoticeResponses. Without one, notices are discarded.
    /// Notices never read as errors.
    pub fn set_notice_handler(&mut self, handler: Option<NoticeHandler>) {
        self.notice_handler = handler;
    }

    /// Takes the notifications received so far (at most the last 10,000).
    pub fn take_notifications(&mut self) -> Vec<Notification> {
        self.notifications.drain(..).collect()
    }

    /// Sets the largest message accepted from the server (default 1 GiB).
    pub fn set_max_message_len(&mut self, len: usize) {
        self.max_message_len = len.max(backend::MAX_SHORT_MESSAGE_LEN);
    }

    /// Forgets every cached prepared statement, for when the server already dropped them
    /// (`DISCARD ALL`, `DEALLOCATE ALL`).
    pub fn clear_statement_cache(&mut self) {
        self.cache.clear();
    }

    /// Sets how many named statements the cache keeps (default 256). Evicted statements are
    /// closed on the server with the next request; 0 disables caching.
    pub fn set_statement_cache_capacity(&mut self, capacity: usize) {
        self.cache.set_capacity(capacity);
    }

    /// The number of statements in the cache.
    pub fn cached_statements(&self) -> usize {
        self.cache.len()
    }

    /// The names of the server-side statements this connection's cache owns.
    pub fn cached_statement_names(&self) -> Vec<String> {
        self.cache.names().map(str::to_owned).collect()
    }

    /// Without a round trip, checks whether an idle connection's socket is still usable.
    ///
    /// Returns false when the server closed it (EOF: restart, `idle_session_timeout`,
    /// `pg_terminate_backend`) or sent something other than asynchronous messages (a FATAL
    /// ErrorResponse, garbage); the connection is then marked broken. Notices, notifications and
    /// parameter changes waiting on the socket are processed and do not count against it.
    pub fn check_idle_socket(&mut self) -> bool {
        if self.is_broken() {
            return false;
        }
        let mut chunk = [0u8; 4096];
        loop {
            // A non-blocking read straight from the socket (tokio leaves it in O_NONBLOCK mode).
            // Not tokio's try_read: that trusts the reactor's readiness, which can lag a
            // just-arrived EOF by a driver turn, and then hands a dead connection to a borrower
            // (tried; the S5 chaos test caught it). One syscall per checkout is the price.
            let n = {
                let sock = self.stream.sock();
                let mut r = &*sock;
                match io::Read::read(&mut r, &mut chunk) {
                    Ok(0) => {
                        self.broken = Some("the server closed the connection while it was idle");
                        return false;
                    }
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        self.broken = Some("the idle connection's socket failed");
                        return false;
                    }
                }
            };
            self.read_buf.extend_from_slice(&chunk[..n]);
        }
        // Anything buffered must be asynchronous messages only.
        while let Ok(Some(n)) = backend::check_frame(&self.read_buf, self.max_message_len) {
            let tag = self.read_buf[0];
            if !matches!(tag, b'N' | b'S' | b'A') {
                self.broken = Some("the server sent a message to an idle connection");
                return false;
            }
            let frame = self.read_buf.split_to(n).freeze();
            if self.handle_async(&frame).is_err() {
                return false;
            }
        }
        if backend::check_frame(&self.read_buf, self.max_message_len).is_err() {
            self.broken = Some("the server sent garbage to an idle connection");
            return false;
        }
        true
    }

    /// Closes the connection politely (Terminate, then shutdown).
    pub async fn close(mut self) -> Result<()> {
        if self.is_broken() {
            return Ok(());
        }
        self.write_buf.clear();
        frontend::terminate(&mut self.write_buf);
        self.flush_write().await?;
        self.stream.shutdown().await?;
        Ok(())
    }

    // ---------------------------------------------------------------------------------------
    // Queries
    // ---------------------------------------------------------------------------------------

    /// Runs one or more statements with the simple query protocol and returns one result per
    /// statement. Values arrive in text format. No parameters: use [`execute`](Self::execute)
    /// for anything with user input.
    ///
    /// Text values are decoded assuming the settings the connection starts with (`DateStyle=ISO`,
    /// `IntervalStyle=postgres`, `extra_float_digits=3`); after a `SET` of one of those, dates,
    /// intervals or floats read through this method may fail to decode (they come back as
    /// [`Value::Unknown`](crate::Value::Unknown) in `result()`). The extended protocol is
    /// unaffected: its values are binary.
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<QueryResult>> {
        self.timed(async |c| c.simple_query_request(sql).await)
            .await
    }

    async fn simple_query_request(&mut self, sql: &str) -> Result<Vec<QueryResult>> {
        self.ensure_ready().await?;
        self.write_buf.clear();
        frontend::query(sql, &mut self.write_buf)?;
        self.pending += 1;
        self.extended_in_flight = false;
        let r = self.simple_query_inner().await;
        self.check(r)
    }

    async fn simple_query_inner(&mut self) -> Result<Vec<QueryResult>> {
        self.flush_write().await?;
        let mut results = Vec::new();
        let mut columns: Option<Arc<[Column]>> = None;
        let mut rows = Rows::default();
        let mut error = None;
        loop {
            let frame = self.recv().await?;
            match frame[0] {
                b'T' => {
                    let BackendMessage::RowDescription(rd) = backend::decode(&frame)? else {
                        return Err(Error::protocol("bad RowDescription"));
                    };
                    columns = Some(columns_from(&rd, None));
                    rows = Rows::default();
                }
                b'D' => {
                    let cols = columns
                        .as_ref()
                        .ok_or_else(|| Error::protocol("DataRow without a RowDescription"))?;
                    rows.push(self.row_from(cols, frame)?);
                }
                b'C' => {
                    let BackendMessage::CommandComplete { tag } = backend::decode(&frame)? else {
                        return Err(Error::protocol("bad CommandComplete"));
                    };
                    let tag = frame.slice_ref(tag.as_bytes());
                    results.push(QueryResult::new(
                        columns.take(),
                        std::mem::take(&mut rows),
                        Some(tag),
                    ));
                }
                b'I' => {
                    backend::decode(&frame)?;
                    results.push(QueryResult::new(None, Rows::default(), None));
                }
                b'E' => error = Some(self.db_error(&frame)?),
                b'G' | b'W' => {
                    // COPY FROM STDIN: refuse it so the server ends the statement with an error.
                    backend::decode(&frame)?;
                    self.refuse_copy_in(false).await?;
                }
                b'H' => {
                    // COPY TO STDOUT: its data is read and discarded, and the call fails: rows
                    // silently missing from a "successful" result would be worse.
                    backend::decode(&frame)?;
                    error.get_or_insert_with(copy_out_unsupported);
                }
                b'd' | b'c' => {
                    backend::decode(&frame)?;
                }
                b'Z' => {
                    // Every simple query is answered with at least one CommandComplete,
                    // EmptyQueryResponse or ErrorResponse before its ReadyForQuery: one without
                    // is a stray left over from before, and taking it as this query's answer
                    // would put every later answer one request out of step.
                    if results.is_empty() && error.is_none() {
                        return Err(Error::protocol(
                            "ReadyForQuery before any result of the query (a stray ReadyForQuery)",
                        ));
                    }
                    self.ready_for_query(&frame)?;
                    break;
                }
                _ => return Err(unexpected(&frame, "a simple query response")),
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(results),
        }
    }

    /// Runs statements with the simple query protocol and discards their rows (BEGIN, SET, DDL).
    pub async fn batch_execute(&mut self, sql: &str) -> Result<()> {
        self.simple_query(sql).await.map(drop)
    }

    /// Runs `sql` with parameters `$1..$n` as a named prepared statement, kept in this
    /// connection's statement cache (psqlpy's `prepared=True`). The first call costs a
    /// Parse/Describe round trip; later ones send only Bind/Execute/Sync.
    pub async fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<QueryResult> {
        self.timed(async |c| c.execute_request(sql, params).await)
            .await
    }

    async fn execute_request(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<QueryResult> {
        check_param_count(params.len())?;
        self.ensure_ready().await?;
        let stmt = match self.cache.get(sql) {
            // The common case: cached, and the server's parameter types take these values.
            Some(s) if accepts_all(&s, params) => s,
            cached => {
                // A miss (or cached types these values do not fit): one round trip when the
                // values say their types, otherwise Parse/Describe first and let the server infer.
                if let Some(r) = self.try_one_trip(sql, true, params).await? {
                    return Ok(r);
                }
                match cached {
                    Some(s) => s,
                    None => self.prepare_cached(sql).await?,
                }
            }
        };
        match self.execute_statement(&stmt, params).await {
            // "cached plan must not change result type" (the table changed under the cached
            // statement), or "prepared statement does not exist" (someone ran DEALLOCATE ALL or
            // DISCARD ALL behind the cache's back). Nothing was executed; recognised by SQLSTATE
            // and routine, never by the (localized) message.
            Err(e) if is_stale_statement(&e) => {
                self.cache.invalidate(sql);
                if self.tx_status != TransactionStatus::Idle {
                    return Err(e);
                }
                let stmt = self.prepare_cached(sql).await?;
                self.execute_statement(&stmt, params).await
            }
            r => r,
        }
    }

    /// Runs `sql` with parameters through the unnamed statement, nothing cached (psqlpy's
    /// `prepared=False`). Parse, Describe and (after a Flush) Bind/Execute form one request with a
    /// single Sync, so it is safe behind PgBouncer in transaction mode.
    pub async fn execute_unprepared(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<QueryResult> {
        self.timed(async |c| c.execute_unprepared_request(sql, params).await)
            .await
    }

    async fn execute_unprepared_request(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<QueryResult> {
        check_param_count(params.len())?;
        self.ensure_ready().await?;
        if let Some(r) = self.try_one_trip(sql, false, params).await? {
            return Ok(r);
        }
        self.write_buf.clear();
        self.write_pending_closes()?;
        frontend::parse("", sql, std::iter::empty(), &mut self.write_buf)?;
        frontend::describe(b'S', "", &mut self.write_buf)?;
        frontend::flush(&mut self.write_buf);
        self.sync_owed = true;
        let r = self.execute_unprepared_inner(params).await;
        self.check(r)
    }

    async fn execute_unprepared_inner(
        &mut self,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<QueryResult> {
        self.flush_write().await?;
        let described = self.read_describe().await;
        let stmt = match described {
            Ok((param_types, columns)) => Statement {
                name: "".into(),
                params: param_types,
                columns,
            },
            Err(e) => {
                // The server skips everything up to the Sync we still owe it.
                self.write_buf.clear();
                self.finish_with_sync().await?;
                return Err(e);
            }
        };
        self.write_buf.clear();
        if let Err(e) = self.write_bind_execute(&stmt, params) {
            self.write_buf.clear();
            self.finish_with_sync().await?;
            return Err(e);
        }
        frontend::sync(&mut self.write_buf);
        self.pending += 1;
        self.sync_owed = false;
        self.flush_write().await?;
        self.read_execute_response(stmt.columns.clone()).await
    }

    /// Parse (with the parameter types the values declare), Describe, Bind, Execute and Sync in
    /// one write: one round trip for a statement this connection has not seen.
    ///
    /// Returns `Ok(None)` when it does not apply — a value without a type hint, or an open
    /// transaction, where a failed Parse would abort the caller's transaction — and when the
    /// server rejected the Parse (nothing was executed), so the caller falls back to letting the
    /// server infer the types. An error after the Parse succeeded is the statement's own error.
    async fn try_one_trip(
        &mut self,
        sql: &str,
        cache: bool,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<QueryResult>> {
        if self.param_types != ParamTypes::FromValues || self.tx_status != TransactionStatus::Idle {
            return Ok(None);
        }
        let Some(hints) = params
            .iter()
            .map(|p| p.type_hint())
            .collect::<Option<Box<[Type]>>>()
        else {
            return Ok(None);
        };
        let name: Box<str> = if cache {
            self.cache.next_name()
        } else {
            "".into()
        };
        self.write_buf.clear();
        self.write_pending_closes()?;
        frontend::parse(&name, sql, hints.iter().map(Type::oid), &mut self.write_buf)?;
        frontend::describe(b'S', &name, &mut self.write_buf)?;
        let stmt = Statement {
            name,
            params: hints,
            columns: None,
        };
        self.write_bind_execute(&stmt, params)?;
        frontend::sync(&mut self.write_buf);
        self.pending += 1;
        let r = async {
            self.flush_write().await?;
            match self.read_describe().await {
                Ok((params, columns)) => {
                    let result = self.read_execute_response(columns.clone()).await;
                    // The statement exists on the server even when its execution failed.
                    if cache {
                        let stmt = Statement {
                            name: stmt.name,
                            params,
                            columns,
                        };
                        self.cache.insert(sql, Arc::new(stmt));
                    }
                    result.map(Some)
                }
                Err(e) if !e.is_closed() => {
                    self.read_until_ready().await?;
                    Ok(None)
                }
                Err(e) => Err(e),
            }
        }
        .await;
        self.check(r)
    }

    /// Sends the owed Sync and reads up to its ReadyForQuery.
    async fn finish_with_sync(&mut self) -> Result<()> {
        frontend::sync(&mut self.write_buf);
        self.pending += 1;
        self.sync_owed = false;
        self.flush_write().await?;
        self.read_until_ready().await
    }

    /// Runs a query and returns its rows.
    pub async fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        self.execute(sql, params).await.map(QueryResult::into_rows)
    }

    /// Runs a query that must return exactly one row.
    pub async fn query_one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        let result = self.execute(sql, params).await?;
        let n = result.len();
        result.into_single_row().ok_or_else(|| {
            Error::Conversion(format!(
                "query_one expected exactly one row, the query returned {n}"
            ))
        })
    }

    /// Runs a query that returns at most one row.
    pub async fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        let rows = self.query(sql, params).await?;
        let n = rows.len();
        let mut it = rows.into_iter();
        match (it.next(), n) {
            (row, 0 | 1) => Ok(row),
            _ => Err(Error::Conversion(format!(
                "query_opt expected at most one row, the query returned {n}"
            ))),
        }
    }

    /// Prepares `sql` as a named statement in the cache (or returns the cached one).
    pub async fn prepare(&mut self, sql: &str) -> Result<Arc<Statement>> {
        self.ensure_ready().await?;
        match self.cache.get(sql) {
            Some(s) => Ok(s),
            None => self.prepare_cached(sql).await,
        }
    }

    async fn prepare_cached(&mut self, sql: &str) -> Result<Arc<Statement>> {
        let name = self.cache.next_name();
        self.write_buf.clear();
        self.write_pending_closes()?;
        frontend::parse(&name, sql, std::iter::empty(), &mut self.write_buf)?;
        frontend::describe(b'S', &name, &mut self.write_buf)?;
        frontend::sync(&mut self.write_buf);
        self.pending += 1;
        let r = self.prepare_inner(name, sql).await;
        self.check(r)
    }

    async fn prepare_inner(&mut self, name: Box<str>, sql: &str) -> Result<Arc<Statement>> {
        self.flush_write().await?;
        let described = self.read_describe().await;
        // Whatever the outcome, the request ends with our Sync's ReadyForQuery.
        self.read_until_ready().await?;
        let (params, columns) = described?;
        let stmt = Arc::new(Statement {
            name,
            params,
            columns,
        });
        self.cache.insert(sql, stmt.clone());
        Ok(stmt)
    }

    /// Reads CloseComplete*, ParseComplete, ParameterDescription, RowDescription | NoData.
    /// On an ErrorResponse, returns it without reading further.
    async fn read_describe(&mut self) -> Result<(Box<[Type]>, Option<Arc<[Column]>>)> {
        let mut params: Option<Box<[Type]>> = None;
        loop {
            let frame = self.recv().await?;
            match backend::decode(&frame)? {
                BackendMessage::CloseComplete | BackendMessage::ParseComplete => {}
                BackendMessage::ParameterDescription(p) => {
                    params = Some(p.oids().map(Type::from_oid).collect());
                }
                BackendMessage::RowDescription(rd) => {
                    // Bind asks for every result column in binary.
                    let cols = columns_from(&rd, Some(Format::Binary));
                    return Ok((params.unwrap_or_default(), Some(cols)));
                }
                BackendMessage::NoData => return Ok((params.unwrap_or_default(), None)),
                BackendMessage::ErrorResponse(f) => {
                    let e = f.to_db_error();
                    return Err(self.note_error(e));
                }
                _ => return Err(unexpected(&frame, "a Parse/Describe response")),
            }
        }
    }

    async fn execute_statement(
        &mut self,
        stmt: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<QueryResult> {
        self.write_buf.clear();
        self.write_pending_closes()?;
        self.write_bind_execute(stmt, params)?;
        frontend::sync(&mut self.write_buf);
        self.pending += 1;
        let r = async {
            self.flush_write().await?;
            self.read_execute_response(stmt.columns.clone()).await
        }
        .await;
        self.check(r)
    }

    fn write_bind_execute(
        &mut self,
        stmt: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<()> {
        if params.len() != stmt.params.len() {
            return Err(Error::Conversion(format!(
                "the statement has {} parameters but {} were given",
                stmt.params.len(),
                params.len()
            )));
        }
        frontend::bind(
            "",
            &stmt.name,
            params.len(),
            |i, buf| encode_param(params[i], stmt.params[i], i, buf),
            &mut self.write_buf,
        )?;
        self.extended_in_flight = true;
        frontend::execute("", 0, &mut self.write_buf)
    }

    /// Answers a CopyInResponse with CopyFail, so the server ends the COPY with an error. In the
    /// extended protocol the server ignored our Sync while in copy-in mode and now discards
    /// messages until a Sync: send one, whose ReadyForQuery replaces the swallowed one. (In the
    /// simple protocol the Query's own ReadyForQuery follows the error.)
    async fn refuse_copy_in(&mut self, extended: bool) -> Result<()> {
        self.write_buf.clear();
        frontend::copy_fail("COPY FROM STDIN is not supported", &mut self.write_buf)?;
        if extended {
            frontend::sync(&mut self.write_buf);
        }
        self.flush_write().await
    }

    /// Closes for evicted statements ride in front of the next extended request; the server
    /// answers each with CloseComplete (closing a name that does not exist is not an error).
    fn write_pending_closes(&mut self) -> Result<()> {
        if self.cache.has_to_close() {
            for name in self.cache.take_to_close() {
                frontend::close(b'S', &name, &mut self.write_buf)?;
            }
        }
        Ok(())
    }

    /// Reads the answer to `[Close*] Bind Execute Sync`, in the only order the protocol allows:
    /// CloseComplete*, BindComplete, DataRow*, then CommandComplete, EmptyQueryResponse or
    /// PortalSuspended, then ReadyForQuery. An ErrorResponse may come at any point (also a FATAL
    /// after CommandComplete); after it only ReadyForQuery. Anything else is a protocol error:
    /// a BindComplete after the rows, or rows before it, means the stream is out of step with
    /// our requests.
    async fn read_execute_response(
        &mut self,
        columns: Option<Arc<[Column]>>,
    ) -> Result<QueryResult> {
        #[derive(PartialEq)]
        enum Step {
            Bind,
            Rows,
            CopyOut,
            Done,
        }
        let mut step = Step::Bind;
        let mut rows = Rows::default();
        let mut tag = None;
        let mut error = None;
        loop {
            let frame = self.recv().await?;
            match frame[0] {
                b'E' => error = Some(self.db_error(&frame)?),
                b'Z' if error.is_some() || step == Step::Done => {
                    self.ready_for_query(&frame)?;
                    break;
                }
                _ if error.is_some() => {
                    return Err(unexpected(&frame, "the end of a failed Execute"));
                }
                b'3' if step == Step::Bind => {
                    backend::decode(&frame)?;
                }
                b'2' if step == Step::Bind => {
                    backend::decode(&frame)?;
                    step = Step::Rows;
                }
                b'D' if step == Step::Rows => {
                    let cols = columns.as_ref().ok_or_else(|| {
                        Error::protocol("DataRow for a statement without columns")
                    })?;
                    rows.push(self.row_from(cols, frame)?);
                }
                b'C' if step == Step::Rows => {
                    let BackendMessage::CommandComplete { tag: t } = backend::decode(&frame)?
                    else {
                        return Err(Error::protocol("bad CommandComplete"));
                    };
                    tag = Some(frame.slice_ref(t.as_bytes()));
                    step = Step::Done;
                }
                b'I' | b's' if step == Step::Rows => {
                    backend::decode(&frame)?;
                    step = Step::Done;
                }
                b'G' | b'W' if step == Step::Rows => {
                    // COPY FROM STDIN: refused; the server answers with an ErrorResponse
                    // (57014, quoting our reason) and the ReadyForQuery of our Sync.
                    backend::decode(&frame)?;
                    self.refuse_copy_in(true).await?;
                }
                b'H' if step == Step::Rows => {
                    // COPY TO STDOUT: read to its end, then reported as unsupported.
                    backend::decode(&frame)?;
                    step = Step::CopyOut;
                }
                b'd' | b'c' if step == Step::CopyOut => {
                    backend::decode(&frame)?;
                }
                b'C' if step == Step::CopyOut => {
                    backend::decode(&frame)?;
                    error = Some(copy_out_unsupported());
                    step = Step::Done;
                }
                _ => return Err(unexpected(&frame, "an Execute response")),
            }
        }
        if let Some(e) = error {
            return Err(e);
        }
        Ok(QueryResult::new(columns, rows, tag))
    }

    fn row_from(&self, columns: &Arc<[Column]>, frame: Bytes) -> Result<Row> {
        let BackendMessage::DataRow(body) = backend::decode(&frame)? else {
            return Err(Error::protocol("bad DataRow"));
        };
        if body.len() != columns.len() {
            return Err(Error::protocol(format!(
                "DataRow has {} values but the RowDescription has {} columns",
                body.len(),
                columns.len()
            )));
        }
        Ok(Row::new(
            columns.clone(),
            frame.slice(backend::HEADER_LEN..),
        ))
    }

    // ---------------------------------------------------------------------------------------
    // Timeouts and cancellation
    // ---------------------------------------------------------------------------------------

    /// A token that cancels this connection's running query from another task.
    pub fn cancel_token(&self) -> CancelToken {
        CancelToken {
            peer: self.peer.clone(),
            process_id: self.process_id,
            secret_key: self.secret_key.clone(),
        }
    }

    /// Sets a time limit for every query on this connection (`None`, the default: no limit).
    ///
    /// When it expires, the query is cancelled on the server (CancelRequest) and its response
    /// drained, and the caller gets [`Error::Timeout`]; the connection stays usable. When the
    /// server does not finish the cancellation within a short grace (200 ms: a hung or stopped
    /// server is never waited on), the connection is marked broken instead. Either way the caller
    /// waits at most the limit plus that grace.
    pub fn set_query_timeout(&mut self, timeout: Option<Duration>) {
        self.query_timeout = timeout;
    }

    /// Chooses where parameter types come from for statements this connection has not prepared
    /// yet. See [`ParamTypes`].
    pub fn set_param_types(&mut self, param_types: ParamTypes) {
        self.param_types = param_types;
    }

    /// The query time limit, if one is set.
    pub fn query_timeout(&self) -> Option<Duration> {
        self.query_timeout
    }

    async fn timed<T>(&mut self, request: impl AsyncFnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let Some(limit) = self.query_timeout else {
            return request(self).await;
        };
        match tokio::time::timeout(limit, request(self)).await {
            Ok(r) => r,
            Err(_) => {
                // The request future is gone; what it sent is still owed to us.
                if self.has_pending() && !self.is_broken() {
                    let token = self.cancel_token();
                    let cleanup = async {
                        token.cancel_query().await?;
                        self.ensure_ready().await
                    };
                    match tokio::time::timeout(CANCEL_GRACE, cleanup).await {
                        Ok(Ok(())) => {}
                        _ => {
                            self.broken = Some(
                                "the server did not answer the cancellation of a timed-out query",
                            );
                        }
                    }
                }
                Err(Error::Timeout(
                    "query_timeout elapsed; the query was cancelled",
                ))
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Plumbing
    // ---------------------------------------------------------------------------------------

    /// Makes sure the connection can take a new request: not broken, and nothing left over from
    /// a dropped request (which is drained here).
    async fn ensure_ready(&mut self) -> Result<()> {
        if self.write_incomplete {
            self.broken = Some("a request was only partly written (its future was dropped)");
        }
        if let Some(why) = self.broken {
            return Err(Error::Closed(why));
        }
        if self.sync_owed || self.pending > 0 {
            let r = async {
                if self.sync_owed {
                    self.write_buf.clear();
                    frontend::sync(&mut self.write_buf);
                    self.pending += 1;
                    self.sync_owed = false;
                    self.flush_write().await?;
                }
                self.read_until_ready().await
            }
            .await;
            if r.is_err() && self.broken.is_none() {
                // Draining is best effort: anything that goes wrong leaves an unknown state.
                self.broken = Some("draining a cancelled request failed");
            }
            r?;
        }
        Ok(())
    }

    /// Reads and discards messages until every owed ReadyForQuery has arrived.
    async fn read_until_ready(&mut self) -> Result<()> {
        while self.pending > 0 {
            let frame = self.recv().await?;
            match frame[0] {
                b'Z' => self.ready_for_query(&frame)?,
                b'E' => {
                    self.db_error(&frame)?;
                }
                b'G' | b'W' => {
                    backend::decode(&frame)?;
                    let extended = self.extended_in_flight;
                    self.refuse_copy_in(extended).await?;
                }
                _ => {
                    // Validate even what is discarded: garbage means a broken stream.
                    backend::decode(&frame)?;
                }
            }
        }
        Ok(())
    }

    fn ready_for_query(&mut self, frame: &[u8]) -> Result<()> {
        let BackendMessage::ReadyForQuery { status } = backend::decode(frame)? else {
            return Err(Error::protocol("bad ReadyForQuery"));
        };
        if self.pending == 0 {
            return Err(Error::protocol("ReadyForQuery that no request asked for"));
        }
        self.pending -= 1;
        self.set_tx_status(status);
        Ok(())
    }

    fn set_tx_status(&mut self, status: u8) {
        self.tx_status = match status {
            b'T' => TransactionStatus::InTransaction,
            b'E' => TransactionStatus::Failed,
            _ => TransactionStatus::Idle,
        };
    }

    fn db_error(&mut self, frame: &[u8]) -> Result<Error> {
        let BackendMessage::ErrorResponse(f) = backend::decode(frame)? else {
            return Err(Error::protocol("bad ErrorResponse"));
        };
        Ok(self.note_error(f.to_db_error()))
    }

    /// A FATAL or PANIC error ends the session: the connection is broken from here on.
    fn note_error(&mut self, e: DbError) -> Error {
        if e.is_fatal() {
            self.broken = Some("the server ended the session with a FATAL error");
            self.fatal = Some(e.clone());
        }
        e.into()
    }

    /// Records an I/O or protocol failure as a broken connection.
    fn check<T>(&mut self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            if e.is_closed() && self.broken.is_none() {
                self.broken = Some(match e {
                    Error::Io(_) => "an I/O error occurred",
                    Error::Protocol(_) => "the server violated the protocol",
                    _ => "the connection failed",
                });
            }
        }
        r
    }

    async fn flush_write(&mut self) -> Result<()> {
        self.write_incomplete = true;
        if self.write_buf.len() <= WRITE_WITHOUT_READING {
            self.stream.write_all(&self.write_buf).await?;
        } else {
            self.stream
                .write_all_reading(&self.write_buf, &mut self.read_buf)
                .await?;
        }
        self.write_incomplete = false;
        self.write_buf.clear();
        Ok(())
    }

    /// The next frame that is not an asynchronous message.
    async fn recv(&mut self) -> Result<Bytes> {
        loop {
            let frame = self.read_frame().await?;
            match frame[0] {
                b'N' | b'S' | b'A' => self.handle_async(&frame)?,
                _ => return Ok(frame),
            }
        }
    }

    async fn read_frame(&mut self) -> Result<Bytes> {
        loop {
            match backend::check_frame(&self.read_buf, self.max_message_len) {
                Ok(Some(n)) => {
                    let frame = self.read_buf.split_to(n).freeze();
                    if self.read_buf.is_empty() && self.read_buf.capacity() > READ_BUF_SHRINK_ABOVE
                    {
                        self.read_buf = BytesMut::with_capacity(READ_CHUNK);
                    }
                    return Ok(frame);
                }
                Ok(None) => {}
                Err(e) => {
                    self.broken = Some("the server violated the protocol");
                    return Err(e);
                }
            }
            self.read_buf.reserve(READ_CHUNK);
            match self.stream.read_buf(&mut self.read_buf).await {
                Ok(0) => {
                    self.broken = Some("the server closed the connection");
                    if let Some(fatal) = self.fatal.take() {
                        return Err(fatal.into());
                    }
                    let msg = match self.last_words.take() {
                        Some(words) => format!("the server closed the connection after: {words}"),
                        None => "the server closed the connection".to_string(),
                    };
                    return Err(Error::Io(io::Error::new(io::ErrorKind::UnexpectedEof, msg)));
                }
                Ok(_) => {}
                Err(e) => {
                    self.broken = Some("an I/O error occurred");
                    // A reset right after a FATAL error is the same goodbye.
                    if let Some(fatal) = self.fatal.take() {
                        return Err(fatal.into());
                    }
                    return Err(e.into());
                }
            }
        }
    }

    fn handle_async(&mut self, frame: &[u8]) -> Result<()> {
        let r = match backend::decode(frame) {
            Ok(BackendMessage::NoticeResponse(f)) => {
                let notice = f.to_db_error();
                if notice.code().starts_with("57") {
                    self.last_words = Some(notice.to_string());
                }
                if let Some(h) = self.notice_handler.as_mut() {
                    h(&notice);
                }
                Ok(())
            }
            Ok(BackendMessage::ParameterStatus { name, value }) => {
                // Every text value is decoded as UTF-8; another encoding would corrupt them.
                if name == "client_encoding" && !value.eq_ignore_ascii_case("UTF8") {
                    Err(Error::protocol(format!(
                        "the server switched client_encoding to {value}; only UTF8 is supported"
                    )))
                } else {
                    self.parameters.insert(name.into(), value.into());
                    Ok(())
                }
            }
            Ok(BackendMessage::NotificationResponse {
                process_id,
                channel,
                payload,
            }) => {
                if self.notifications.len() >= MAX_QUEUED_NOTIFICATIONS {
                    self.notifications.pop_front();
                }
                self.notifications.push_back(Notification {
                    process_id,
                    channel: channel.into(),
                    payload: payload.into(),
                });
                Ok(())
            }
            Ok(_) => Err(Error::protocol("not an asynchronous message")),
            Err(e) => Err(e),
        };
        if r.is_err() {
            self.broken = Some("the server violated the protocol");
        }
        r
    }
}

/// `host:port`, with brackets around an IPv6 address.
fn tcp_address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A failed connect names where it tried (several hosts may be configured, and "connection
/// refused" alone does not say which); the error kind is kept for callers that match on it.
fn connect_error(e: io::Error, address: &str) -> Error {
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
        if let Some(interval) = config.get_keepalives_interval() {
            ka = ka.with_interval(interval);
        }
        if let Some(count) = config.get_keepalives_count() {
            ka = ka.with_retries(count);
        }
        sock.set_tcp_keepalive(&ka)?;
    }
    if let Some(t) = config.get_tcp_user_timeout() {
        sock.set_tcp_user_timeout(Some(t))?;
    }
    Ok(())
}

/// One address to try: a resolved TCP address (with the name it came from, for errors) or a
/// Unix socket directory.
enum Target {
    Tcp(String, SocketAddr),
    Unix(PathBuf),
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

/// `name (addr)` when the name is not the address itself, as libpq words it.
fn tcp_target(name: &str, addr: &SocketAddr) -> String {
    if name.parse::<std::net::IpAddr>().is_ok() {
        tcp_address(name, addr.port())
    } else {
        format!("{} ({addr})", tcp_address(name, addr.port()))
    }
}

fn columns_from(rd: &backend::RowDescriptionBody<'_>, format: Option<Format>) -> Arc<[Column]> {
    rd.fields()
        .map(|f| {
            let fmt = format.unwrap_or(if f.format == 1 {
                Format::Binary
            } else {
                Format::Text
            });
            Column::new(
                f.name,
                Type::from_oid(f.type_oid),
                fmt,
                f.table_oid,
                f.column_id,
            )
        })
        .collect()
}

fn encode_param(p: &(dyn ToSql + Sync), ty: Type, i: usize, buf: &mut BytesMut) -> Result<IsNull> {
    if !p.accepts(&ty) {
        return Err(Error::Conversion(format!(
            "cannot send parameter ${} of Rust type {} as PostgreSQL type {ty}",
            i + 1,
            p.type_name()
        )));
    }
    p.to_sql(&ty, buf).map_err(|e| frontend::param_error(i, e))
}

/// Whether each value can be sent as the statement's corresponding parameter type.
fn accepts_all(stmt: &Statement, params: &[&(dyn ToSql + Sync)]) -> bool {
    params.len() == stmt.params.len()
        && params
            .iter()
            .zip(&stmt.params[..])
            .all(|(p, t)| p.accepts(t))
}

fn is_stale_statement(e: &Error) -> bool {
    e.as_db_error().is_some_and(|d| match d.code() {
        "0A000" => d.routine.as_deref() == Some("RevalidateCachedQuery"),
        "26000" => d.routine.as_deref() == Some("FetchPreparedStatement"),
        _ => false,
    })
}

/// More parameters than Bind can carry are refused before anything is sent: otherwise the
/// statement would be parsed (a round trip, possibly a server error of its own) only for the
/// Bind to fail.
fn check_param_count(n: usize) -> Result<()> {
    if n > frontend::MAX_PARAMS {
        return Err(Error::Conversion(format!(
            "{n} parameters given; the protocol allows at most {}",
            frontend::MAX_PARAMS
        )));
    }
    Ok(())
}

/// The error of a statement that started COPY TO STDOUT (its data was read and discarded; the
/// connection stays usable).
fn copy_out_unsupported() -> Error {
    Error::Unsupported("COPY TO STDOUT (the data the server sent was read and discarded)")
}

fn unexpected(frame: &[u8], during: &str) -> Error {
    Error::protocol(format!(
        "unexpected message {} during {during}",
        backend::tag_name(frame[0])
    ))
}
