//! `PsqlPool`: the handle users hold.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pgwire_lite::{QueryResult, Row, ToSql};
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::guard::PooledConnection;
use crate::hooks::Hooks;
use crate::limits;
use crate::multiplex::{Batching, Multiplexer};
use crate::recycle::PgManager;
use crate::slots::{Object, PoolStats, SlotConfig, Slots, Status};

/// A PostgreSQL connection pool: FIFO-fair, bounded, with recycling strategies.
///
/// Cheap to clone (an `Arc` handle); `Send + Sync`. Build it with [`PsqlPool::builder`],
/// then call [`startup`](Self::startup) before anything else.
///
/// # How a borrow works
///
/// [`connection`](Self::connection) queues (first come, first served) for one of
/// `max_db_pool_size` slots, at most the wait timeout; then takes the most recently used idle
/// connection that passes its checks (see [`RecyclingMethod`](crate::RecyclingMethod)), or
/// opens one. The returned [`PooledConnection`] goes back when dropped. A short mutex guards
/// the idle list for a push or a pop; nothing is locked while a query runs, so
/// [`execute`](Self::execute) costs the same as `connection()` + `execute`.
///
/// # Connections given back dirty
///
/// `Drop` cannot await, so a connection dropped inside a transaction (committed or not, failed
/// or not) or with a query still running (its future was cancelled) is handed to a task
/// spawned on the current tokio runtime. The task keeps the connection's slot, drains it and
/// runs `ROLLBACK` under the recycle timeout, and only then puts it back on the idle stack;
/// the server releases the transaction's locks at once. If that fails or times out, the
/// connection is closed and its slot freed. When dropped outside any tokio runtime, the
/// connection goes back as it is and the next checkout does the same work under the recycle
/// timeout. Either way the next borrower never sees it in that state. A broken connection is
/// simply closed.
///
/// # Background maintenance
///
/// Only when `max_lifetime`, `idle_timeout` or `min_idle` are set, one task (spawned by
/// `startup`) closes expired and surplus idle connections and opens connections up to
/// `min_idle`. It never runs on the query path, never queues ahead of borrowers, and stops
/// when the pool is closed or dropped. Lifetimes are also checked at checkout and return.
#[derive(Clone)]
pub struct PsqlPool {
    inner: Arc<Inner>,
}

struct Inner {
    slots: Arc<Slots<PgManager>>,
    started: AtomicBool,
    /// Serializes concurrent `startup()` calls so only one opens the first connection.
    starting: tokio::sync::Mutex<()>,
    /// Present with `multiplexing(true)`.
    mux: Option<Multiplexer>,
}

impl fmt::Debug for PsqlPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let slots = &self.inner.slots;
        // `Config`'s Debug prints `<redacted>` for the password.
        f.debug_struct("PsqlPool")
            .field("config", &slots.manager.config())
            .field("conn_recycling_method", &slots.manager.method)
            .field("started", &self.inner.started.load(Ordering::Relaxed))
            .field("status", &self.status())
            .finish()
    }
}

impl PsqlPool {
    pub(crate) fn from_parts(
        manager: PgManager,
        config: SlotConfig,
        hooks: Hooks<pgwire_lite::Connection>,
        multiplexing: bool,
        batching: Batching,
    ) -> PsqlPool {
        let mux = multiplexing.then(|| Multiplexer::new(config.max_size, batching));
        PsqlPool {
            inner: Arc::new(Inner {
                slots: Slots::with_hooks(manager, config, hooks),
                started: AtomicBool::new(false),
                starting: tokio::sync::Mutex::new(()),
                mux,
            }),
        }
    }

    /// A connection for the multiplexer to share, only if a slot is free right now (it never
    /// queues ahead of borrowers, nor reclaims its own).
    pub(crate) async fn connection_to_share(&self) -> Result<PooledConnection> {
        let s = self.inner.slots.status();
        if s.idle == 0 && s.size >= s.max_size {
            // Not even a momentary waiter: that would make shared connections drain.
            return Err(Error::Timeout(crate::TimeoutKind::Wait));
        }
        let obj = self.inner.slots.get_timeout(Duration::ZERO).await?;
        Ok(PooledConnection::new(obj))
    }

    /// A connection for the multiplexer when it has none to share: waits like any borrower
    /// (first come, first served, the wait timeout), without reclaiming shared ones.
    pub(crate) async fn connection_to_share_waiting(&self) -> Result<PooledConnection> {
        let obj = self.inner.slots.get().await?;
        Ok(PooledConnection::new(obj))
    }

    /// When every slot is taken and multiplexing holds some, one shared connection starts
    /// draining so a whole-connection borrower gets it: at once if it is idle, else when its
    /// last caller leaves. While the returned guard lives, multiplexing borrows no more
    /// connections, so it cannot take back the one given up for this borrower.
    fn reclaim_shared(&self) -> Option<crate::multiplex::WantGuard<'_>> {
        let mux = self.inner.mux.as_ref()?;
        let want = mux.want_whole();
        if mux.connections() > 0 {
            let s = self.inner.slots.status();
            if s.idle == 0 && s.size >= s.max_size {
                mux.rebalance(true, false);
            }
        }
        Some(want)
    }

    /// The pool's wait timeout, which also bounds a multiplexed caller's wait for a place.
    pub(crate) fn wait_timeout(&self) -> Duration {
        self.inner.slots.config.wait_timeout
    }

    /// Borrowers queued for a whole connection.
    pub(crate) fn borrowers_waiting(&self) -> usize {
        self.inner.slots.waiting()
    }

    /// Whether `execute` may multiplex `sql` now, and whether it may share a Sync with others
    /// ([`Multiplexer::share_kind`]); `None` without multiplexing. A pool query timeout keeps
    /// everything on the normal path: its CancelRequest would hit whatever statement the
    /// shared backend runs, possibly another caller's.
    fn multiplexer(&self, sql: &str) -> Option<(&Multiplexer, bool)> {
        let mux = self.inner.mux.as_ref()?;
        if self.inner.slots.manager.query_timeout.is_some() {
            return None;
        }
        mux.share_kind(sql).map(|batch| (mux, batch))
    }

    /// Runs `sql` on a whole connection (the normal path), and with multiplexing on, learns
    /// from the outcome whether it may be multiplexed from now on.
    async fn execute_solo(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        unnamed: bool,
    ) -> Result<QueryResult> {
        let mut conn = self.connection().await?;
        let settings_before = conn.parameter_changes();
        let r = if unnamed {
            conn.execute_unprepared(sql, params).await
        } else {
            match conn.execute(sql, params).await {
                Err(e) if self.pooler_detected(&e, &mut conn).await => {
                    conn.execute_unprepared(sql, params).await
                }
                r => r,
            }
        };
        if let (Some(mux), Ok(result)) = (&self.inner.mux, &r) {
            let settings_changed = conn.parameter_changes() != settings_before;
            mux.learn(sql, result, conn.transaction_status(), settings_changed);
        }
        r
    }

    /// Starts the pool: opens one connection and checks it, so a wrong password or a server
    /// that is down fails here, with the server's error ([`Error::Backend`]) or
    /// [`TimeoutKind::Create`](crate::TimeoutKind::Create). Then starts the background
    /// maintenance if any is configured. Must come before any other operation; calling it
    /// again after it succeeded does nothing. If it fails, it can be called again.
    ///
    /// # Errors
    /// The first connection's error; [`Error::Closed`] after [`close`](Self::close).
    pub async fn startup(&self) -> Result<()> {
        let _one_at_a_time = self.inner.starting.lock().await;
        if self.inner.slots.is_closed() {
            return Err(Error::Closed);
        }
        if self.inner.started.load(Ordering::Acquire) {
            return Ok(());
        }
        self.inner.slots.warm_one().await?;
        self.inner.started.store(true, Ordering::Release);
        self.inner.slots.spawn_maintenance();
        Ok(())
    }

    fn check_started(&self) -> Result<()> {
        if self.inner.started.load(Ordering::Acquire) {
            Ok(())
        } else if self.inner.slots.is_closed() {
            Err(Error::Closed)
        } else {
            Err(Error::NotStarted)
        }
    }

    /// Borrows one connection; it goes back to the pool when dropped.
    ///
    /// # Errors
    /// [`Error::NotStarted`] before `startup`; [`Error::Closed`] after `close`;
    /// [`Error::Timeout`] with [`Wait`](crate::TimeoutKind::Wait) (no slot came free),
    /// [`Create`](crate::TimeoutKind::Create) or [`Recycle`](crate::TimeoutKind::Recycle);
    /// [`Error::Backend`] when a new connection could not be opened.
    pub async fn connection(&self) -> Result<PooledConnection> {
        self.check_started()?;
        let _want = self.reclaim_shared();
        let obj = self.acquire(self.inner.slots.config.wait_timeout).await?;
        Ok(PooledConnection::new(obj))
    }

    /// One checkout inside its `tracing` span (`acquire`, with OpenTelemetry's server and
    /// database fields). With the span disabled, the plain checkout: no wrapper, no fields.
    async fn acquire(&self, wait: Duration) -> Result<Object<PgManager>> {
        let t = &self.inner.slots.manager.trace;
        let span = tracing::debug_span!(
            target: "pool_core::acquire",
            "acquire",
            db.system.name = "postgresql",
            db.namespace = t.namespace.as_str(),
            server.address = t.address.as_str(),
            server.port = t.port,
        );
        if span.is_disabled() {
            self.inner.slots.get_timeout(wait).await
        } else {
            self.inner.slots.get_timeout(wait).instrument(span).await
        }
    }

    /// Changes the password used for connections opened from now on (credential rotation).
    /// Open connections keep working; nothing is closed.
    pub fn set_password(&self, password: impl AsRef<[u8]>) {
        let manager = &self.inner.slots.manager;
        let mut config = (*manager.config()).clone();
        config.password(password);
        manager.set_config(config);
    }

    /// [`connection`](Self::connection) with its own wait timeout instead of the pool's.
    /// `Duration::ZERO` borrows only if a slot is free right now.
    pub async fn connection_timeout(&self, wait: Duration) -> Result<PooledConnection> {
        self.check_started()?;
        let _want = self.reclaim_shared();
        let obj = self.acquire(wait).await?;
        Ok(PooledConnection::new(obj))
    }

    /// Runs one statement with parameters `$1..$n` on a borrowed connection, as a named
    /// prepared statement kept in that connection's cache: psqlpy's
    /// `execute(querystring, parameters, prepared=True)`. For `prepared=False` use
    /// [`execute_unprepared`](Self::execute_unprepared).
    ///
    /// Borrows and gives back a connection around the one statement; no lock is held while
    /// it runs. Statements that must share a session or a transaction need
    /// [`connection`](Self::connection).
    ///
    /// The whole result is read into memory before this returns: every row of a large
    /// `SELECT` is held at once. Page through large tables (`LIMIT`/keyset) or use a cursor
    /// inside a transaction until streamed rows are available.
    ///
    /// With [`multiplexing`](crate::PsqlPoolBuilder::multiplexing) on, a statement that showed
    /// it leaves no session state behind shares a connection with other callers' statements
    /// instead of borrowing one; dropping this future then never disturbs the others.
    ///
    /// # Errors
    /// Those of [`connection`](Self::connection), and the statement's own as
    /// [`Error::Backend`]. A query timeout is [`Error::Backend`] with
    /// [`QueryTimeout`](pgwire_lite::Error::QueryTimeout), whose outcome says whether the
    /// statement took effect.
    pub async fn execute(
        &self,
        querystring: &str,
        parameters: &[&(dyn ToSql + Sync)],
    ) -> Result<QueryResult> {
        self.check_started()?;
        if let Some((mux, batch)) = self.multiplexer(querystring) {
            let unnamed = !self.prepared_statements();
            if let Some(r) = mux
                .execute(self, querystring, parameters, unnamed, batch)
                .await
            {
                return r;
            }
        }
        self.execute_solo(querystring, parameters, false).await
    }

    /// See [`PgManager::pooler_detected`]: true when the statement may be re-run unnamed.
    async fn pooler_detected(&self, e: &Error, conn: &mut PooledConnection) -> bool {
        match conn.connection_mut().await {
            Ok(c) => self.inner.slots.manager.pooler_detected(e, c),
            Err(_) => false,
        }
    }

    /// Whether `execute` uses named prepared statements now: false when the pool was built
    /// with [`prepared_statements(false)`](crate::PsqlPoolBuilder::prepared_statements) or
    /// `statement_cache_capacity=0`, or after it
    /// [detected a transaction pooler](Self::detected_transaction_pooler).
    pub fn prepared_statements(&self) -> bool {
        !self.inner.slots.manager.unnamed.load(Ordering::Relaxed)
    }

    /// True once the pool saw what only a transaction pooler (PgBouncer in
    /// `pool_mode=transaction` without `max_prepared_statements`, pgcat, Supavisor) produces: a
    /// statement it had just prepared missing on the server (SQLSTATE 26000) or a statement
    /// name already taken (42P05). From then on the whole pool uses unnamed statements. The
    /// `execute` or `execute_many` that hit it is re-run unnamed when it provably never ran
    /// (both errors come from Parse or Bind, before Execute, and it was outside a
    /// transaction); inside a transaction the caller gets the error. There is no logging
    /// dependency: this flag is how the switch is reported, once and for good.
    pub fn detected_transaction_pooler(&self) -> bool {
        self.inner.slots.manager.detected.load(Ordering::Relaxed)
    }

    /// Like [`execute`](Self::execute), through the unnamed statement (psqlpy's
    /// `prepared=False`): nothing is cached on the server, which suits one-off statements
    /// and poolers in transaction mode (PgBouncer).
    pub async fn execute_unprepared(
        &self,
        querystring: &str,
        parameters: &[&(dyn ToSql + Sync)],
    ) -> Result<QueryResult> {
        self.check_started()?;
        if let Some((mux, batch)) = self.multiplexer(querystring) {
            if let Some(r) = mux
                .execute(self, querystring, parameters, true, batch)
                .await
            {
                return r;
            }
        }
        self.execute_solo(querystring, parameters, true).await
    }

    /// Runs `querystring` once per parameter row in one round trip (psqlpy's `execute_many`):
    /// every Bind/Execute in one write with a single Sync, so the batch is all or nothing.
    /// Returns the rows affected in total. See [`pgwire_lite::Connection::execute_many`].
    pub async fn execute_many<'a, R>(&self, querystring: &str, parameters: &'a [R]) -> Result<u64>
    where
        R: AsRef<[&'a (dyn ToSql + Sync)]>,
    {
        let mut conn = self.connection().await?;
        match conn.execute_many(querystring, parameters).await {
            // The batch is one implicit transaction: when its first Bind failed, none ran.
            Err(e) if self.pooler_detected(&e, &mut conn).await => {
                conn.execute_many(querystring, parameters).await
            }
            r => r,
        }
    }

    /// Runs a query that must return exactly one row, on a borrowed connection.
    pub async fn query_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        self.connection().await?.query_one(sql, params).await
    }

    /// Runs a query that returns at most one row, on a borrowed connection.
    pub async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        self.connection().await?.query_opt(sql, params).await
    }

    /// Runs statements with the simple query protocol (no parameters) on a borrowed
    /// connection, discarding their rows.
    pub async fn batch_execute(&self, sql: &str) -> Result<()> {
        self.connection().await?.batch_execute(sql).await
    }

    /// The pool's connection settings (with the password as last set by
    /// [`set_password`](Self::set_password)), e.g. for a [`PgListener`](crate::PgListener).
    pub fn config(&self) -> pgwire_lite::Config {
        (*self.inner.slots.manager.config()).clone()
    }

    /// The types (enums, domains, composites, ...) the pool's connections looked up in
    /// `pg_type`, shared by all of them. [`TypeCache::clear`](pgwire_lite::TypeCache::clear)
    /// makes them look types up again (after `ALTER TYPE ... ADD VALUE`, say).
    pub fn type_cache(&self) -> &std::sync::Arc<pgwire_lite::TypeCache> {
        &self.inner.slots.manager.types
    }

    /// The counters (psqlpy's `max_size`, `size`, `available`, `waiting`, plus `idle` and
    /// `in_use`), read together so they always add up.
    pub fn status(&self) -> Status {
        let mut status = self.inner.slots.status();
        if let Some(mux) = &self.inner.mux {
            status.queued = mux.queued();
        }
        status
    }

    /// True when the pool was built with [`multiplexing(true)`](crate::PsqlPoolBuilder::multiplexing)
    /// (or the DSN key `multiplexing=on`).
    pub fn multiplexing(&self) -> bool {
        self.inner.mux.is_some()
    }

    /// Connections currently shared by multiplexed `execute` calls (each counts in
    /// [`Status::in_use`]); 0 without multiplexing.
    pub fn multiplexed_connections(&self) -> usize {
        self.inner.mux.as_ref().map_or(0, Multiplexer::connections)
    }

    /// Cumulative counters since the pool was built: checkouts, waits, timeouts, connections
    /// opened and closed by reason (see [`PoolStats`]). Lock-free relaxed reads, so it can
    /// be scraped often; [`status`](Self::status) is the consistent snapshot of sizes.
    pub fn stats(&self) -> PoolStats {
        self.inner.slots.stats()
    }

    /// Changes the maximum size. Growing takes effect at once (waiters are served); shrinking
    /// closes surplus idle connections at once and surplus borrowed ones as they come back.
    /// With multiplexing, the queue bound follows (`max × 64` callers) and surplus shared
    /// connections go back to be closed once their lines are empty.
    ///
    /// # Errors
    /// [`Error::Config`] if `max_db_pool_size` would drop below 2 or below `min_idle`, with the
    /// same message [`build`](crate::PsqlPoolBuilder::build) gives for that size.
    pub fn resize(&self, max_db_pool_size: usize) -> Result<()> {
        let slots = &self.inner.slots;
        let resized = SlotConfig {
            max_size: max_db_pool_size,
            ..slots.config.clone()
        };
        limits::validate(&resized, slots.manager.query_timeout)?;
        slots.resize(max_db_pool_size);
        if let Some(mux) = &self.inner.mux {
            mux.resize(max_db_pool_size);
        }
        Ok(())
    }

    /// Closes the pool: refuses new borrows ([`Error::Closed`]), wakes every waiter with
    /// that error, and closes idle connections (politely, with Terminate). Borrowed
    /// connections are closed when they come back. Cannot be undone.
    pub async fn close(&self) {
        if let Some(mux) = &self.inner.mux {
            // Shared connections that are idle go back now; busy ones with their last caller.
            mux.rebalance(false, true);
        }
        self.inner.slots.close().await;
    }

    /// True once [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.slots.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}

    #[test]
    fn pool_is_a_cheap_shared_handle() {
        assert_send_sync_clone::<PsqlPool>();
        let a = PsqlPool::builder().build().unwrap();
        let b = a.clone();
        assert!(Arc::ptr_eq(&a.inner, &b.inner));
    }

    #[tokio::test]
    async fn operations_before_startup_fail_clearly() {
        let pool = PsqlPool::builder()
            .host("127.0.0.1")
            .port(1)
            .build()
            .unwrap();
        assert!(matches!(pool.connection().await, Err(Error::NotStarted)));
        assert!(matches!(
            pool.execute("SELECT 1", &[]).await,
            Err(Error::NotStarted)
        ));
        assert!(matches!(
            pool.execute_unprepared("SELECT 1", &[]).await,
            Err(Error::NotStarted)
        ));
        assert!(matches!(
            pool.connection_timeout(Duration::ZERO).await,
            Err(Error::NotStarted)
        ));
        assert_eq!(pool.status().size, 0, "no lazy start");
        pool.close().await;
        assert!(matches!(pool.connection().await, Err(Error::Closed)));
        assert!(matches!(pool.startup().await, Err(Error::Closed)));
    }

    #[tokio::test]
    async fn startup_reports_the_connect_error() {
        // Nothing listens on port 1.
        let pool = PsqlPool::builder()
            .host("127.0.0.1")
            .port(1)
            .build()
            .unwrap();
        let err = pool.startup().await.unwrap_err();
        assert!(matches!(err, Error::Backend(_)), "{err:?}");
        assert!(matches!(pool.connection().await, Err(Error::NotStarted)));
        let s = pool.status();
        assert_eq!((s.size, s.in_use, s.waiting), (0, 0, 0));
    }

    #[test]
    fn resize_validates() {
        let pool = PsqlPool::builder()
            .max_db_pool_size(4)
            .min_idle(3)
            .build()
            .unwrap();
        assert!(
            pool.resize(1)
                .unwrap_err()
                .to_string()
                .contains("at least 2")
        );
        assert!(
            pool.resize(2)
                .unwrap_err()
                .to_string()
                .contains("min_idle (3)")
        );
        pool.resize(8).unwrap();
        assert_eq!(pool.status().max_size, 8);
    }
}
