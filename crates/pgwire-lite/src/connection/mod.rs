//! One connection to a PostgreSQL server: socket, buffers, startup, authentication, queries.
//!
//! The caller that holds `&mut Connection` owns the socket: there is no background task and no
//! channel. A request is built whole in the write buffer and sent with one `write`; responses are
//! framed straight out of the read buffer.
//!
//! | file | what lives there |
//! |---|---|
//! | `mod.rs` | the struct, accessors, settings, close |
//! | `transport.rs` | TCP / TLS / Unix stream, [`Peer`], socket options, write-while-reading, idle read |
//! | `tls.rs` | `sslmode`: SSLRequest, certificate verification, client certificates (rustls) |
//! | `connect.rs` | address resolution, multi-host, `target_session_attrs`, sslmode retries |
//! | `startup.rs` | startup packet and authentication (SCRAM channel binding) |
//! | `reader.rs` | the request-state core: what a request is owed, the read loop |
//! | `simple_query.rs`, `prepare.rs`, `extended.rs`, `pipeline.rs` | the operations |
//! | `stream.rs`, `copy.rs`, `binary_copy.rs` | streamed rows, COPY FROM STDIN / TO STDOUT, typed binary COPY |
//! | `timeout.rs`, `cancel.rs` | query timeouts and CancelRequest |
//! | `notify.rs` | waiting for a LISTEN/NOTIFY notification on an idle connection |
//! | `trace.rs` | the per-statement tracing span and the slow-statement warning |
//! | `multiplex.rs` | one request of a shared connection: encode, write by hand, read one response |
//!
//! # Cancellation safety
//! Dropping a query future at any await point never leaves the connection in an unknown state.
//! Before the first byte of a request is written, the number of ReadyForQuery messages still owed
//! by the server is recorded; each ReadyForQuery read settles one. A future dropped after that
//! point leaves the count above zero, [`Connection::has_pending`] says so, and the next operation
//! (or [`Connection::drain`]) first reads and discards the rest of the old response. A future
//! dropped in the middle of writing leaves a partial message on the wire, which cannot be
//! repaired: the connection then reports [`Connection::is_broken`].

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::error::{DbError, Result};
use crate::protocol::backend::{self, DEFAULT_MAX_MESSAGE_LEN};
use crate::protocol::frontend;
use crate::statement::{DEFAULT_STATEMENT_CACHE_CAPACITY, StatementCache};

mod binary_copy;
mod cancel;
mod connect;
mod copy;
mod extended;
mod multiplex;
mod notify;
mod pipeline;
mod prepare;
mod reader;
mod simple_query;
mod startup;
mod stream;
mod timeout;
mod tls;
mod trace;
mod transport;
mod type_lookup;

pub use binary_copy::{BinaryCopyInWriter, BinaryCopyOutRow, BinaryCopyOutStream};
pub use cancel::CancelToken;
pub use copy::{CopyInSink, CopyOutStream};
pub use multiplex::{MuxDecoder, MuxIo, MuxRequest};
pub use pipeline::Pipeline;
pub use stream::RowStream;
pub use transport::Peer;

pub(crate) use extended::is_stale_statement;
use reader::{Owes, RequestState};
use transport::{READ_CHUNK, Stream};

/// How many unread notifications a connection keeps; older ones are dropped first, so a busy
/// channel nobody reads cannot grow memory without bound.
const MAX_QUEUED_NOTIFICATIONS: usize = 10_000;

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

/// The client-side settings of a connection — everything a borrower can change without talking
/// to the server. A pool takes them after opening a connection and puts them back when the
/// connection is returned, so one borrower's changes never reach the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSettings {
    /// [`Connection::set_max_message_len`].
    pub max_message_len: usize,
    /// [`Connection::set_query_timeout`].
    pub query_timeout: Option<Duration>,
    /// [`Connection::set_param_types`].
    pub param_types: ParamTypes,
    /// [`Connection::set_statement_cache_capacity`].
    pub statement_cache_capacity: usize,
    /// [`Connection::set_slow_statement_threshold`].
    pub slow_statement_threshold: Option<Duration>,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            max_message_len: DEFAULT_MAX_MESSAGE_LEN,
            query_timeout: None,
            param_types: ParamTypes::Inferred,
            statement_cache_capacity: DEFAULT_STATEMENT_CACHE_CAPACITY,
            slow_statement_threshold: None,
        }
    }
}

/// A connection to a PostgreSQL server.
pub struct Connection {
    stream: Stream,
    peer: Peer,
    read_buf: BytesMut,
    write_buf: BytesMut,
    state: RequestState,
    tx_status: TransactionStatus,
    parameters: HashMap<Box<str>, Box<str>>,
    /// ParameterStatus messages received after startup: a session setting the server reports
    /// changed (see [`Connection::parameter_changes`]).
    parameter_changes: u64,
    process_id: i32,
    secret_key: Box<[u8]>,
    cache: StatementCache,
    /// Types looked up in `pg_type`; shared with the other connections of a pool.
    types: std::sync::Arc<crate::types::TypeCache>,
    notifications: VecDeque<Notification>,
    notice_handler: Option<NoticeHandler>,
    max_message_len: usize,
    query_timeout: Option<Duration>,
    param_types: ParamTypes,
    slow_statement_threshold: Option<Duration>,
    /// What the tracing spans say about the server.
    trace: trace::TraceTarget,
    created_at: Instant,
    /// The tokio runtime whose reactor the socket is registered with: once that runtime is
    /// gone, the socket can never be read again.
    runtime: Option<tokio::runtime::Id>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The cancel key is a secret of sorts: it lets anyone cancel our queries.
        f.debug_struct("Connection")
            .field("peer", &self.peer)
            .field("process_id", &self.process_id)
            .field("transaction_status", &self.tx_status)
            .field("pending", &self.state.ready_owed())
            .field("broken", &self.state.broken())
            .field("cached_statements", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl Connection {
    fn new(stream: Stream, peer: Peer) -> Connection {
        let settings = ClientSettings::default();
        Connection {
            stream,
            peer,
            read_buf: BytesMut::with_capacity(READ_CHUNK),
            write_buf: BytesMut::with_capacity(READ_CHUNK),
            state: RequestState::default(),
            tx_status: TransactionStatus::Idle,
            parameters: HashMap::new(),
            parameter_changes: 0,
            process_id: 0,
            secret_key: Box::new([]),
            cache: StatementCache::new(settings.statement_cache_capacity),
            types: std::sync::Arc::default(),
            notifications: VecDeque::new(),
            notice_handler: None,
            max_message_len: settings.max_message_len,
            query_timeout: settings.query_timeout,
            param_types: settings.param_types,
            slow_statement_threshold: settings.slow_statement_threshold,
            trace: trace::TraceTarget::default(),
            created_at: Instant::now(),
            runtime: tokio::runtime::Handle::try_current().ok().map(|h| h.id()),
        }
    }

    /// The transaction status reported by the last ReadyForQuery.
    pub fn transaction_status(&self) -> TransactionStatus {
        self.tx_status
    }

    /// Ready for a query outside any transaction: not broken, nothing pending.
    pub fn is_idle(&self) -> bool {
        !self.is_broken() && !self.has_pending() && self.tx_status == TransactionStatus::Idle
    }

    /// Inside a transaction block (possibly a failed one).
    pub fn in_transaction(&self) -> bool {
        self.tx_status != TransactionStatus::Idle
    }

    /// The connection failed (I/O error, protocol violation, FATAL error, partial write) and must
    /// not be used again.
    pub fn is_broken(&self) -> bool {
        self.state.broken().is_some()
    }

    /// A previous request's responses are still unread, because its future was dropped. The next
    /// operation drains them first; [`drain`](Connection::drain) does it explicitly.
    pub fn has_pending(&self) -> bool {
        self.state.has_pending()
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

    /// How many ParameterStatus messages arrived (startup's included): the server sends one whenever
    /// a setting it reports (`TimeZone`, `DateStyle`, `application_name`, ...) changes, so a
    /// statement during which this count moved changed the session.
    pub fn parameter_changes(&self) -> u64 {
        self.parameter_changes
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

    /// Takes the notifications received so far, oldest first. At most the latest 10,000 are
    /// kept: beyond that the oldest are dropped, so a busy channel nobody reads cannot grow
    /// memory without bound.
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
    /// closed on the server with the next request. 0 turns named statements off: `execute` and
    /// `execute_many` go through the unnamed statement, as
    /// [`execute_unprepared`](Self::execute_unprepared) does (for transaction poolers).
    pub fn set_statement_cache_capacity(&mut self, capacity: usize) {
        self.cache.set_capacity(capacity);
    }

    /// The number of statements in the cache.
    pub fn cached_statements(&self) -> usize {
        self.cache.len()
    }

    /// The names of the server-side statements this connection's cache owns, for checking
    /// them against `pg_prepared_statements`.
    pub fn cached_statement_names(&self) -> Vec<String> {
        self.cache.names().map(str::to_owned).collect()
    }

    /// Sets a time limit for every query on this connection (`None`, the default: no limit).
    ///
    /// When it expires, the query is cancelled on the server (CancelRequest) and its response
    /// drained, and the caller gets [`Error::Timeout`](crate::Error::Timeout); the connection
    /// stays usable. When the server does not finish the cancellation within a short grace
    /// (200 ms: a hung or stopped server is never waited on), the connection is marked broken
    /// instead. Either way the caller waits at most the limit plus that grace.
    pub fn set_query_timeout(&mut self, timeout: Option<Duration>) {
        self.query_timeout = timeout;
    }

    /// Statements that take at least this long (from the first byte sent to the last byte of
    /// the response; for streams and COPY, until the first row or data) are reported with a
    /// `tracing` WARN event ("slow statement", target `pgwire_lite::slow`) carrying the elapsed
    /// time and the SQL text, never the parameter values. `None` (the default) reads no clock.
    pub fn set_slow_statement_threshold(&mut self, threshold: Option<Duration>) {
        self.slow_statement_threshold = threshold;
    }

    /// The query time limit, if one is set.
    pub fn query_timeout(&self) -> Option<Duration> {
        self.query_timeout
    }

    /// Chooses where parameter types come from for statements this connection has not prepared
    /// yet. See [`ParamTypes`].
    pub fn set_param_types(&mut self, param_types: ParamTypes) {
        self.param_types = param_types;
    }

    /// The client-side settings in force now.
    pub fn client_settings(&self) -> ClientSettings {
        ClientSettings {
            max_message_len: self.max_message_len,
            query_timeout: self.query_timeout,
            param_types: self.param_types,
            statement_cache_capacity: self.cache.capacity(),
            slow_statement_threshold: self.slow_statement_threshold,
        }
    }

    /// Puts back client-side settings taken with [`client_settings`](Self::client_settings),
    /// and removes the notice handler: nothing a borrower changed on the client side survives.
    pub fn restore_client_settings(&mut self, settings: &ClientSettings) {
        self.max_message_len = settings.max_message_len;
        self.query_timeout = settings.query_timeout;
        self.param_types = settings.param_types;
        self.slow_statement_threshold = settings.slow_statement_threshold;
        if self.cache.capacity() != settings.statement_cache_capacity {
            self.cache.set_capacity(settings.statement_cache_capacity);
        }
        self.notice_handler = None;
    }

    /// Without a round trip, checks whether an idle connection is still usable.
    ///
    /// Returns false when the server closed it (EOF: restart, `idle_session_timeout`,
    /// `pg_terminate_backend`), sent something other than asynchronous messages (a FATAL
    /// ErrorResponse, garbage), or when the connection was opened on another tokio runtime
    /// (whose reactor may be gone); the connection is then marked broken. Notices,
    /// notifications and parameter changes waiting on the socket are processed and do not count
    /// against it.
    pub fn check_idle_socket(&mut self) -> bool {
        self.check_runtime() && self.check_idle()
    }

    /// [`check_idle_socket`](Self::check_idle_socket) without the look at the socket: false
    /// when the connection is broken or was opened on another tokio runtime (then it is marked
    /// broken). No system call.
    pub fn check_runtime(&mut self) -> bool {
        if self.is_broken() {
            return false;
        }
        let here = tokio::runtime::Handle::try_current().ok().map(|h| h.id());
        if here != self.runtime {
            self.state
                .set_broken("the connection was opened on another tokio runtime");
            return false;
        }
        true
    }

    /// Closes the connection politely (Terminate, then shutdown).
    pub async fn close(mut self) -> Result<()> {
        tracing::debug!(
            target: "pgwire_lite::connection",
            backend_pid = self.process_id,
            broken = self.is_broken(),
            server.address = &*self.trace.address,
            server.port = self.trace.port,
            "connection closed"
        );
        if self.is_broken() {
            return Ok(());
        }
        self.clear_write_buf();
        frontend::terminate(&mut self.write_buf);
        self.send(Owes::Nothing).await?;
        self.stream.shutdown().await?;
        Ok(())
    }
}
