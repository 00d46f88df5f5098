//! # pool-core: `PsqlPool`
//!
//! A PostgreSQL connection pool on top of [`pgwire_lite`], psqlpy's `PSQLPool` API in Rust.
//!
//! ```
//! use pool_core::{PsqlPool, QueryResult, RecyclingMethod};
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), pool_core::Error> {
//! let (host, port, db) = ("localhost", 5432, "postgres");
//! # // The doctest runs against the test suite's throwaway server instead; it needs the
//! # // harness's postgres/postgres superuser, so it skips itself when DATABASE_URL names
//! # // another server.
//! # let pg = pg_harness::cluster();
//! # if pg.is_external() { return Ok(()); }
//! # let (host, port, db) = (pg.host(), pg.port(), pg.db_name());
//! let pool = PsqlPool::builder()
//!     .username("postgres")
//!     .password("postgres")
//!     .host(host)
//!     .port(port)
//!     .db_name(db)
//!     .max_db_pool_size(10)
//!     .conn_recycling_method(RecyclingMethod::Fast)
//!     .build()?; // or PsqlPool::builder().dsn("postgres://postgres:postgres@localhost:5432/postgres")
//! pool.startup().await?;
//! # pool.execute("CREATE TABLE IF NOT EXISTS users (id int4 PRIMARY KEY, username text)", &[]).await?;
//! # pool.execute("INSERT INTO users VALUES (100, 'Alex') ON CONFLICT (id) DO UPDATE SET username = 'Alex'", &[]).await?;
//!
//! let res: QueryResult = pool
//!     .execute("SELECT * FROM users WHERE id = $1 and username = $2", &[&100i32, &"Alex"])
//!     .await?;
//! let dicts = res.result(); // one name -> value map per row
//! # assert_eq!(dicts.len(), 1);
//!
//! let mut conn = pool.connection().await?; // a guard that goes back on drop
//! let mut tx = conn.transaction().await?; // rolled back if dropped uncommitted
//! tx.execute("UPDATE users SET username = $1 WHERE id = $2", &[&"Alexander", &100i32]).await?;
//! tx.commit().await?;
//! drop(conn); // back to the pool
//!
//! pool.close().await;
//! Ok(())
//! }
//! ```
//!
//! ## From psqlpy
//!
//! | psqlpy | here |
//! |---|---|
//! | `PSQLPool(dsn=..., username=..., ..., max_db_pool_size=..., conn_recycling_method=...)` | [`PsqlPool::builder()`] with the same names, then [`build`](PsqlPoolBuilder::build) |
//! | `await pool.startup()` | [`PsqlPool::startup`] (required first; opens and checks one connection) |
//! | `await pool.execute(q, params)` / `prepared=True` | [`PsqlPool::execute`] (a named statement cached per connection) |
//! | `await pool.execute(q, params, prepared=False)` | [`PsqlPool::execute_unprepared`] (the unnamed statement) |
//! | `await pool.connection()` | [`PsqlPool::connection`] → [`PooledConnection`] |
//! | `ConnRecyclingMethod.Fast / Verified / Clean` | [`RecyclingMethod`] (plus `Custom(sql)`) |
//! | `pool.status()` | [`PsqlPool::status`] → [`Status`] (plus `idle`, `in_use`) |
//! | `pool.close()` | [`PsqlPool::close`] |
//! | `QueryResult.result()` | [`QueryResult::result`] |
//!
//! ## Beyond psqlpy
//!
//! - Transactions with modes and savepoints: [`PooledConnection::build_transaction`]
//!   (`ISOLATION LEVEL`, `READ ONLY`, `DEFERRABLE` in the one `BEGIN`),
//!   [`Transaction::savepoint`] (nested guards, rolled back when dropped), and
//!   [`PsqlPool::transaction`], which reruns a closure on serialization failures and
//!   deadlocks with jittered backoff ([`RetryPolicy`]).
//! - [`GenericClient`]: one trait over [`PooledConnection`] and [`Transaction`], for helpers
//!   that take either.
//! - LISTEN/NOTIFY: [`PgListener`] ([`PsqlPool::listener`]) on its own connection, which
//!   reconnects by itself and says so with [`ListenerEvent::Gap`];
//!   [`PooledConnection::notifications`] drains what a pooled connection received.
//! - Rows into structs: [`FromRow`] and `res.rows_as::<T>()`; with the `derive` feature,
//!   `#[derive(FromRow)]`, and `#[derive(ToSql, FromSql)]` for Rust enums ↔ PostgreSQL enums
//!   and structs ↔ composite types (attributes: `#[psqlpool(rename = "..", rename_all = "..",
//!   flatten, default)]`, see the `psqlpool-derive` crate). User types are looked up in
//!   `pg_type` once per pool ([`PsqlPool::type_cache`]).
//!
//! - Hooks: [`after_connect`](PsqlPoolBuilder::after_connect) sets up every new session,
//!   [`before_acquire`](PsqlPoolBuilder::before_acquire) and
//!   [`after_release`](PsqlPoolBuilder::after_release) can veto a connection (closed and
//!   replaced); a hook that fails or panics costs its connection, never a slot.
//! - Counters: [`PsqlPool::stats`] → [`PoolStats`] (checkouts, waits, timeouts, connections
//!   opened and closed by reason), cumulative and lock-free, beside the [`Status`] snapshot.
//! - `tracing`: a span per checkout (`acquire`) and per statement (`query`, with
//!   OpenTelemetry's `db.*` and `server.*` field names and the SQLSTATE of a failure; never a
//!   parameter value), events for connections opened and closed with the reason, timeouts,
//!   listener reconnects and the transaction-pooler switch, and
//!   [`slow_statement_threshold`](PsqlPoolBuilder::slow_statement_threshold). No subscriber
//!   is installed: the application chooses one; without one the cost is a check per callsite.
//!
//! - Multiplexing (opt-in, [`PsqlPoolBuilder::multiplexing`]): concurrent
//!   [`PsqlPool::execute`] calls share connections, their statements pipelined (flat combining,
//!   no background task); only statements that showed they leave no session state behind are
//!   shared, and each caller gets exactly its own outcome.
//!
//! Unlike psqlpy's pool, every wait has a timeout (30 s by default), a connection given back
//! inside a transaction is rolled back, and waiters are served first come, first served.
//! [`PsqlPool`] explains the borrow cycle, [`RecyclingMethod`] what survives between borrowers.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

// The crate README's example is compiled as a doctest, so what crates.io shows builds.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod bench_support;
mod builder;
mod client;
mod error;
mod guard;
mod hooks;
mod ident;
mod limits;
mod listener;
mod manager;
mod multiplex;
mod pool;
mod recycle;
mod retry;
mod slots;
mod transaction;

pub use builder::PsqlPoolBuilder;
pub use client::GenericClient;
pub use error::{Error, PoolError, Result, TimeoutKind};
pub use guard::PooledConnection;
pub use hooks::{BoxFuture, ConnectionMetadata, HookError, HookResult};
pub use limits::{
    DEFAULT_CREATE_TIMEOUT, DEFAULT_RECYCLE_TIMEOUT, DEFAULT_WAIT_TIMEOUT, MIN_POOL_SIZE,
};
pub use listener::{ListenerEvent, ListenerStream, PgListener};
pub use pool::PsqlPool;
pub use recycle::{CLEAN_SQL, RecyclingMethod, VERIFIED_SQL};
pub use retry::RetryPolicy;
pub use slots::{Metrics, PoolStats, Status};
pub use transaction::{IsolationLevel, Transaction, TransactionBuilder, TransactionOptions};

pub use pgwire_lite;
#[cfg(feature = "serde_json")]
pub use pgwire_lite::types::SerdeJson;
pub use pgwire_lite::{
    ClientSettings, Config, Connection, FromRow, FromSql, Kind, Notification, ParamTypes, Pipeline,
    QueryResult, Row, RowMap, TimeoutOutcome, ToSql, TransactionStatus, Type, TypeCache, Value,
};
/// The derives (`derive` feature): each shares its name with the trait it implements, as
/// serde's do, so `use pool_core::FromRow;` brings both.
#[cfg(feature = "derive")]
pub use psqlpool_derive::{FromRow, FromSql, ToSql};
