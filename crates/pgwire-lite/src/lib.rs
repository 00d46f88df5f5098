//! A small PostgreSQL protocol-3 client: startup, SCRAM-SHA-256 / MD5 / cleartext
//! authentication, the simple and the extended query protocol, and conversions between Rust and
//! PostgreSQL values. No third-party driver underneath; no background task.
//!
//! ```
//! use pgwire_lite::{Config, Connection};
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), pgwire_lite::Error> {
//! let url = "postgresql://postgres:postgres@localhost:5432/postgres";
//! # // The doctest runs against the test suite's throwaway server (or DATABASE_URL) instead.
//! # let url = &pg_harness::cluster().admin_url();
//! let config: Config = url.parse()?;
//! let mut conn = Connection::connect(&config).await?;
//!
//! // Extended protocol, named statement cached on this connection.
//! let row = conn.query_one("SELECT $1::int8 + 1 AS n", &[&41i64]).await?;
//! assert_eq!(row.get::<_, i64>("n"), 42);
//!
//! // psqlpy-style: one name -> value map per row.
//! let res = conn.execute("SELECT 1 AS id, 'Alex' AS name", &[]).await?;
//! for map in res.result() {
//!     println!("{:?}", map.get("name"));
//! }
//!
//! // Simple protocol, several statements in one string.
//! conn.batch_execute("CREATE TEMP TABLE t (x int); INSERT INTO t VALUES (1)").await?;
//! conn.close().await?;
//! Ok(())
//! }
//! ```
//!
//! # The model
//!
//! | piece | what it does |
//! |---|---|
//! | [`Config`] | libpq's DSN forms (URL and `key=value`), `PG*` environment variables, the service and password files, defaults |
//! | [`Connection`] | owns the socket; one request is one `write`; `&mut self` means one query at a time |
//! | `protocol` (internal) | bytes ↔ messages, no I/O: the decoder never panics and caps every length |
//! | `auth` (internal) | SCRAM-SHA-256 (with SASLprep and server-signature verification), MD5 |
//! | [`types`] | [`ToSql`] / [`FromSql`] in binary (and text) format, the dynamic [`Value`] |
//! | [`Row`] / [`QueryResult`] | rows share the read buffer; columns decode only when asked |
//! | [`FromRow`] | a row into a struct by column name ([`QueryResult::rows_as`]); derived with pool-core's `derive` feature |
//! | [`TypeCache`] | user types (enums, domains, composites) looked up in `pg_type` once, shared by a pool |
//!
//! | call | protocol | statement | round trips |
//! |---|---|---|---|
//! | [`Connection::execute`] | extended | named, cached per connection | 2 the first time (1 with [`ParamTypes::FromValues`]), then 1 |
//! | [`Connection::execute_unprepared`] | extended | unnamed (safe behind PgBouncer) | 1 request, 2 flushes |
//! | [`Connection::simple_query`] | simple | none; text results; no parameters | 1 |
//!
//! # Connection state
//!
//! A connection always knows whether it can take the next query: [`Connection::is_idle`],
//! [`Connection::in_transaction`], [`Connection::is_broken`], [`Connection::has_pending`]. A
//! query future dropped mid-flight leaves responses owed by the server; the next call drains them
//! first. An I/O error, a protocol violation, a FATAL error or a `client_encoding` other than UTF8
//! marks the connection broken for good.
//!
//! # Notices
//!
//! NoticeResponses (warnings, `RAISE NOTICE`) never read as errors. They go to the callback set
//! with [`Connection::set_notice_handler`], and are discarded when none is set.
//!
//! # Not supported yet
//!
//! GSSAPI/SSPI, protocol 3.2, `sslnegotiation=direct`, `sslcrl`, `sslpassword`, `hostaddr`:
//! each is refused by name rather than ignored.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

// The crate README's example is compiled as a doctest, so what crates.io shows builds.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

// `protocol` and `auth` are internals; the `fuzzing` feature opens them to the fuzz targets and
// the corpus replay, and nothing else should depend on them.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod auth;
#[cfg(not(feature = "fuzzing"))]
mod auth;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod protocol;
// A complete codec: some accessors serve only the fuzz targets and the unit tests.
#[cfg(not(feature = "fuzzing"))]
#[allow(dead_code)]
mod protocol;

mod config;
mod connection;
mod error;
pub mod from_row;
mod row;
mod statement;
pub mod types;

pub use config::{
    ChannelBinding, Config, Host, RootCert, SslMode, SslNegotiation, TargetSessionAttrs, TlsVersion,
};
pub use connection::{
    BinaryCopyInWriter, BinaryCopyOutRow, BinaryCopyOutStream, CancelToken, ClientSettings,
    Connection, CopyInSink, CopyOutStream, MuxDecoder, MuxIo, MuxRequest, NoticeHandler,
    Notification, ParamTypes, Peer, Pipeline, RowStream, TransactionStatus,
};
pub use error::{ConfigError, DbError, Error, Result, SqlState, TimeoutOutcome};
pub use from_row::FromRow;
pub use row::{Column, QueryResult, Row, RowIndex, RowMap};
pub use statement::Statement;
pub use types::{Format, FromSql, IsNull, Kind, ToSql, Type, TypeCache, Value};
