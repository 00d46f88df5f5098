//! `PsqlPool::builder()`: psqlpy's `PSQLPool` parameter names, validated in one place.

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use pgwire_lite::{Config, Connection};

use crate::error::{Error, Result};
use crate::hooks::{BoxFuture, ConnectionMetadata, HookResult, Hooks};
use crate::limits::{
    self, DEFAULT_CREATE_TIMEOUT, DEFAULT_RECYCLE_TIMEOUT, DEFAULT_WAIT_TIMEOUT, MIN_POOL_SIZE,
};
use crate::multiplex::Batching;
use crate::pool::PsqlPool;
use crate::recycle::{PgManager, RecyclingMethod, TraceTarget};
use crate::slots::SlotConfig;

impl PsqlPool {
    /// A builder with psqlpy's `PSQLPool` parameters (`dsn`, `username`, `password`, `host`, `port`,
    /// `db_name`, `max_db_pool_size`, `conn_recycling_method`) and the pool's own knobs.
    pub fn builder() -> PsqlPoolBuilder {
        PsqlPoolBuilder::default()
    }
}

/// Builds a [`PsqlPool`]. Start with [`PsqlPool::builder()`].
///
/// Connection parameters come either from [`dsn`](Self::dsn) (or a ready
/// [`config`](Self::config)), or from the separate setters `username`, `password`, `host`,
/// `port`, `db_name`. **If a DSN is given, the separate connection parameters have no
/// effect**, as in psqlpy. Anything left unset is filled from libpq's environment variables
/// and defaults when connecting (`PGHOST`, `PGUSER`, ..., port 5432).
///
/// `Debug` never shows the password (nor the DSN, which may contain one).
#[derive(Clone)]
pub struct PsqlPoolBuilder {
    dsn: Option<String>,
    config: Option<Config>,
    username: Option<String>,
    password: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    db_name: Option<String>,
    max_db_pool_size: usize,
    conn_recycling_method: RecyclingMethod,
    wait_timeout: Duration,
    create_timeout: Duration,
    recycle_timeout: Duration,
    max_lifetime: Option<Duration>,
    idle_timeout: Option<Duration>,
    min_idle: usize,
    query_timeout: Option<Duration>,
    prepared_statements: bool,
    param_types: pgwire_lite::ParamTypes,
    slow_statement_threshold: Option<Duration>,
    hooks: Hooks<Connection>,
    multiplexing: Option<bool>,
    multiplexing_batches: Option<bool>,
}

impl Default for PsqlPoolBuilder {
    fn default() -> Self {
        PsqlPoolBuilder {
            dsn: None,
            config: None,
            username: None,
            password: None,
            host: None,
            port: None,
            db_name: None,
            max_db_pool_size: MIN_POOL_SIZE,
            conn_recycling_method: RecyclingMethod::Fast,
            wait_timeout: DEFAULT_WAIT_TIMEOUT,
            create_timeout: DEFAULT_CREATE_TIMEOUT,
            recycle_timeout: DEFAULT_RECYCLE_TIMEOUT,
            max_lifetime: None,
            idle_timeout: None,
            min_idle: 0,
            query_timeout: None,
            prepared_statements: true,
            param_types: pgwire_lite::ParamTypes::Inferred,
            slow_statement_threshold: None,
            hooks: Hooks::default(),
            multiplexing: None,
            multiplexing_batches: None,
        }
    }
}

impl fmt::Debug for PsqlPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured without `..`, so a field added later does not compile until it is
        // shown here (or deliberately redacted).
        let PsqlPoolBuilder {
            dsn,
            config,
            username,
            password,
            host,
            port,
            db_name,
            max_db_pool_size,
            conn_recycling_method,
            wait_timeout,
            create_timeout,
            recycle_timeout,
            max_lifetime,
            idle_timeout,
            min_idle,
            query_timeout,
            prepared_statements,
            param_types,
            slow_statement_threshold,
            hooks,
            multiplexing,
            multiplexing_batches,
        } = self;
        // The DSN may hold a password too. `Config`'s own Debug redacts its password.
        let secret = |set: bool| if set { Some("<redacted>") } else { None };
        f.debug_struct("PsqlPoolBuilder")
            .field("dsn", &secret(dsn.is_some()))
            .field("config", config)
            .field("username", username)
            .field("password", &secret(password.is_some()))
            .field("host", host)
            .field("port", port)
            .field("db_name", db_name)
            .field("max_db_pool_size", max_db_pool_size)
            .field("conn_recycling_method", conn_recycling_method)
            .field("wait_timeout", wait_timeout)
            .field("create_timeout", create_timeout)
            .field("recycle_timeout", recycle_timeout)
            .field("max_lifetime", max_lifetime)
            .field("idle_timeout", idle_timeout)
            .field("min_idle", min_idle)
            .field("query_timeout", query_timeout)
            .field("prepared_statements", prepared_statements)
            .field("param_types", param_types)
            .field("slow_statement_threshold", slow_statement_threshold)
            .field("hooks", hooks)
            .field("multiplexing", multiplexing)
            .field("multiplexing_batches", multiplexing_batches)
            .finish()
    }
}

impl PsqlPoolBuilder {
    /// A connection string: a `postgresql://` / `postgres://` URL or libpq `key=value` pairs,
    /// e.g. `postgres://postgres:postgres@localhost:5432/postgres`. When given, `username`,
    /// `password`, `host`, `port` and `db_name` are ignored.
    pub fn dsn(mut self, dsn: impl Into<String>) -> Self {
        self.dsn = Some(dsn.into());
        self
    }

    /// A ready [`Config`], for what psqlpy's parameters do not cover (TLS mode, several
    /// hosts, keepalives, ...). Like a DSN, it makes the separate parameters ignored; giving
    /// both a DSN and a config is an error at [`build`](Self::build).
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// The PostgreSQL user name.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// The PostgreSQL user's password.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// The server's host name or IP address, or a directory holding its Unix socket
    /// (starting with `/`).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// The server's port (default 5432).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// The database name (default: the user name).
    pub fn db_name(mut self, db_name: impl Into<String>) -> Self {
        self.db_name = Some(db_name.into());
        self
    }

    /// The maximum number of connections. Minimum and default: 2.
    pub fn max_db_pool_size(mut self, size: usize) -> Self {
        self.max_db_pool_size = size;
        self
    }

    /// How idle connections are checked before reuse (default [`RecyclingMethod::Fast`]).
    pub fn conn_recycling_method(mut self, method: RecyclingMethod) -> Self {
        self.conn_recycling_method = method;
        self
    }

    /// How long a borrower waits for a free slot before [`TimeoutKind::Wait`]
    /// (default 30 s). Zero means "only if one is free right now".
    ///
    /// [`TimeoutKind::Wait`]: crate::TimeoutKind::Wait
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.wait_timeout = timeout;
        self
    }

    /// How long opening one connection may take before [`TimeoutKind::Create`]
    /// (default 30 s; must be more than zero).
    ///
    /// [`TimeoutKind::Create`]: crate::TimeoutKind::Create
    pub fn create_timeout(mut self, timeout: Duration) -> Self {
        self.create_timeout = timeout;
        self
    }

    /// How long readying an idle connection (drain, rollback, the recycling method) may take
    /// before [`TimeoutKind::Recycle`] (default 5 s; must be more than zero).
    ///
    /// [`TimeoutKind::Recycle`]: crate::TimeoutKind::Recycle
    pub fn recycle_timeout(mut self, timeout: Duration) -> Self {
        self.recycle_timeout = timeout;
        self
    }

    /// Connections older than this (less a random 0-10 %, so they do not all expire
    /// together) are closed when next idle and replaced. Default: none.
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = Some(lifetime);
        self
    }

    /// Idle connections unused for this long (less a random 0-10 %) are closed by the
    /// background maintenance while more than `min_idle` are idle. Default: none.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// A time limit for every statement run through the pool's connections (default: none).
    /// An overrunning statement is cancelled on the server and the caller gets a timeout error
    /// (see [`Connection::set_query_timeout`](pgwire_lite::Connection::set_query_timeout)).
    /// Applied at every checkout, so a borrower that changed its connection's limit does not
    /// pass the change on.
    pub fn query_timeout(mut self, timeout: Duration) -> Self {
        self.query_timeout = Some(timeout);
        self
    }

    /// Whether `execute` uses named prepared statements, cached per connection (default
    /// true; psqlpy's `prepared=True`). `false` makes every statement go through the unnamed
    /// statement (psqlpy's `prepared=False` for the whole pool), as a transaction pooler such
    /// as PgBouncer in `pool_mode=transaction` needs; the DSN key `statement_cache_capacity=0`
    /// does the same. The pool also switches itself when it detects such a pooler: see
    /// [`PsqlPool::detected_transaction_pooler`].
    pub fn prepared_statements(mut self, on: bool) -> Self {
        self.prepared_statements = on;
        self
    }

    /// Where the parameter types of a statement a connection has not seen come from, for every
    /// connection of the pool (default [`ParamTypes::Inferred`](pgwire_lite::ParamTypes)): with
    /// `ParamTypes::FromValues` the Rust values declare them, as sqlx does, and a new statement
    /// costs one round trip instead of two. Worth it where statements are rarely cached: with
    /// `prepared_statements(false)`, behind a transaction pooler, every statement is new. A
    /// borrower's own `set_param_types` lasts until it gives the connection back.
    pub fn param_types(mut self, types: pgwire_lite::ParamTypes) -> Self {
        self.param_types = types;
        self
    }

    /// Lets concurrent [`execute`](PsqlPool::execute) / [`execute_unprepared`](PsqlPool::execute_unprepared)
    /// calls share connections (default off; the DSN key `multiplexing=on` does the same, and
    /// this setter wins over it). Their requests are written together and their responses read
    /// in order, by the callers themselves (no background task): many statements per write and
    /// per read instead of one round trip each, so more statements per second than
    /// connections would allow one at a time.
    ///
    /// Every caller gets exactly its own statement's outcome. Reads written together share
    /// one Sync and writes keep one each (see
    /// [`multiplexing_batches`](Self::multiplexing_batches)). A statement text is multiplexed
    /// only after it ran once on a whole
    /// connection and showed that it leaves no session state behind (command tag SELECT,
    /// INSERT, UPDATE, DELETE or MERGE, and no open transaction); everything else, and
    /// everything while a [`query_timeout`](Self::query_timeout) is set, takes the normal
    /// path. [`PsqlPool::connection`] always hands out a whole connection: shared connections
    /// go back to the pool when borrowers wait for one. See the README for the model.
    pub fn multiplexing(mut self, on: bool) -> Self {
        self.multiplexing = Some(on);
        self
    }

    /// With [`multiplexing`](Self::multiplexing): which statements written together share one
    /// Sync (a batch) instead of one each. Unset (the default): reads do — statements whose
    /// solo run ended with the tag SELECT and whose text locks no rows (`FOR UPDATE`,
    /// `FOR SHARE`, ...) — and writes (INSERT, UPDATE, DELETE, MERGE, locking SELECTs) keep a
    /// Sync each. `true`: every statement does; `false`: none does.
    ///
    /// The server flushes its output once per batch instead of once per statement (8 callers
    /// over a pool of 8 on 2 cores: 1.4× the statements per second), but a batch is one
    /// implicit transaction: when one statement fails, the others of its batch are rolled
    /// back (or skipped), and each of them is run again on its own before its caller hears
    /// anything; the failing caller gets its error. Results are handed out only once the
    /// batch's end says it committed. Statements of one batch see each other's writes and
    /// hold their locks until the batch ends: with writes that contend, batches deadlock and
    /// re-run more than single statements would, which is why writes are not batched unless
    /// asked. Reads in a batch share its snapshot only under REPEATABLE READ or SERIALIZABLE
    /// defaults; under READ COMMITTED each still takes its own.
    pub fn multiplexing_batches(mut self, on: bool) -> Self {
        self.multiplexing_batches = Some(on);
        self
    }

    /// How many idle connections the background maintenance keeps open (default 0). It
    /// only uses slots nobody is waiting for.
    pub fn min_idle(mut self, min_idle: usize) -> Self {
        self.min_idle = min_idle;
        self
    }

    /// Statements through the pool's connections that take at least `threshold` are reported
    /// with a `tracing` WARN event ("slow statement", target `pgwire_lite::slow`) carrying the
    /// elapsed time and the SQL text, never parameter values. Default: none (no clock is read).
    /// See [`Connection::set_slow_statement_threshold`].
    pub fn slow_statement_threshold(mut self, threshold: Duration) -> Self {
        self.slow_statement_threshold = Some(threshold);
        self
    }

    /// Runs `hook` once on every new connection before anyone uses it (sqlx's
    /// `after_connect`, deadpool's `post_create`): `SET` session parameters, `PREPARE`,
    /// `LISTEN`. It runs inside the create timeout. If it fails (or panics), the connection
    /// is closed and the checkout that opened it fails with [`Error::Hook`]; the slot is freed.
    ///
    /// ```
    /// # use pool_core::PsqlPool;
    /// let builder = PsqlPool::builder().after_connect(|conn| {
    ///     Box::pin(async move {
    ///         conn.batch_execute("SET application_name = 'billing'").await?;
    ///         Ok(())
    ///     })
    /// });
    /// ```
    pub fn after_connect<F>(mut self, hook: F) -> Self
    where
        F: for<'c> Fn(&'c mut Connection) -> BoxFuture<'c, HookResult<()>> + Send + Sync + 'static,
    {
        self.hooks.after_connect = Some(std::sync::Arc::new(hook));
        self
    }

    /// Runs `hook` on an idle connection before it is handed out (sqlx's `before_acquire`,
    /// deadpool's `pre_recycle`), after the recycling method, under the recycle timeout.
    /// `Ok(false)` vetoes it: the connection is closed and the checkout goes on with another
    /// idle one or a new one (which this hook does not see: it is fresh). An error or a panic
    /// counts as a veto (and in [`PoolStats::hook_failures`](crate::PoolStats::hook_failures)).
    /// With this hook set, every checkout of an idle connection runs it, even under
    /// [`RecyclingMethod::Fast`].
    ///
    /// ```
    /// # use pool_core::PsqlPool;
    /// # use std::time::Duration;
    /// // Refuse connections idle for more than a minute instead of checking them.
    /// let builder = PsqlPool::builder()
    ///     .before_acquire(|_conn, meta| Box::pin(async move { Ok(meta.idle_for < Duration::from_secs(60)) }));
    /// ```
    pub fn before_acquire<F>(mut self, hook: F) -> Self
    where
        F: for<'c> Fn(&'c mut Connection, ConnectionMetadata) -> BoxFuture<'c, HookResult<bool>>
            + Send
            + Sync
            + 'static,
    {
        self.hooks.before_acquire = Some(std::sync::Arc::new(hook));
        self
    }

    /// Runs `hook` on a connection a borrower gave back, before it goes back to the idle
    /// stack (sqlx's `after_release`, deadpool's `post_recycle`). `Drop` cannot await, so it
    /// runs in a task spawned on the current tokio runtime, holding the connection's slot,
    /// under the recycle timeout. `Ok(false)`, an error, a panic or the timeout close the
    /// connection. A connection given back outside any tokio runtime cannot be checked and is
    /// closed. It runs after the pool rolled back an open transaction, never before.
    pub fn after_release<F>(mut self, hook: F) -> Self
    where
        F: for<'c> Fn(&'c mut Connection, ConnectionMetadata) -> BoxFuture<'c, HookResult<bool>>
            + Send
            + Sync
            + 'static,
    {
        self.hooks.after_release = Some(std::sync::Arc::new(hook));
        self
    }

    /// Validates everything and builds the pool. Opens no connection: call
    /// [`PsqlPool::startup`] next.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad parameter: `max_db_pool_size` below 2, `min_idle`
    /// above it, a zero create/recycle/query timeout, lifetime or idle timeout, an unparsable
    /// DSN, both a DSN and a config.
    pub fn build(self) -> Result<PsqlPool> {
        let (config, slots) = self.validate()?;
        let capacity = config.get_statement_cache_capacity();
        // PGTARGETSESSIONATTRS counts as the DSN key does.
        let target = config
            .resolve()
            .map_or(config.get_target_session_attrs(), |c| {
                c.get_target_session_attrs()
            });
        let unnamed = !self.prepared_statements || capacity == Some(0);
        // Host, port and database as the environment completes them, for the spans.
        let trace = config
            .resolve()
            .map_or_else(|_| TraceTarget::of(&config), |c| TraceTarget::of(&c));
        let multiplexing = self
            .multiplexing
            .or(config.get_multiplexing())
            .unwrap_or(false);
        let manager = PgManager {
            config: std::sync::RwLock::new(std::sync::Arc::new(config)),
            method: self.conn_recycling_method,
            query_timeout: self.query_timeout,
            cache_capacity: capacity
                .unwrap_or(pgwire_lite::ClientSettings::default().statement_cache_capacity),
            unnamed: AtomicBool::new(unnamed),
            param_types: self.param_types,
            detected: AtomicBool::new(false),
            target,
            types: std::sync::Arc::default(),
            slow_statement_threshold: self.slow_statement_threshold,
            trace,
        };
        Ok(PsqlPool::from_parts(
            manager,
            slots,
            self.hooks,
            multiplexing,
            match self.multiplexing_batches {
                None => Batching::Reads,
                Some(true) => Batching::All,
                Some(false) => Batching::Never,
            },
        ))
    }

    fn validate(&self) -> Result<(Config, SlotConfig)> {
        let slots = SlotConfig {
            max_size: self.max_db_pool_size,
            wait_timeout: self.wait_timeout,
            create_timeout: self.create_timeout,
            recycle_timeout: self.recycle_timeout,
            max_lifetime: self.max_lifetime,
            idle_timeout: self.idle_timeout,
            min_idle: self.min_idle,
        };
        limits::validate(&slots, self.query_timeout)?;
        let config = self.connection_config()?;
        Ok((config, slots))
    }

    /// The connection parameters: the DSN or config if given, else the separate setters.
    fn connection_config(&self) -> Result<Config> {
        match (&self.dsn, &self.config) {
            (Some(_), Some(_)) => Err(Error::config(
                "give either dsn or config, not both (each describes the whole connection)",
            )),
            (Some(dsn), None) => dsn
                .parse::<Config>()
                .map_err(|e| Error::config(format!("dsn: {}", e.message()))),
            (None, Some(config)) => Ok(config.clone()),
            (None, None) => {
                let mut config = Config::new();
                if let Some(user) = &self.username {
                    config.user(user);
                }
                if let Some(password) = &self.password {
                    config.password(password);
                }
                if let Some(host) = &self.host {
                    config.host(host);
                }
                if let Some(port) = self.port {
                    config.port(port);
                }
                if let Some(db_name) = &self.db_name {
                    config.dbname(db_name);
                }
                config.validate()?;
                Ok(config)
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn connection_config_for_tests(&self) -> Result<Config> {
        self.validate().map(|(c, _)| c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(b: PsqlPoolBuilder) -> String {
        match b.build() {
            Ok(_) => String::from("<built>"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn pool_size_below_two_is_a_clear_error() {
        for n in [0, 1] {
            let m = msg(PsqlPool::builder().max_db_pool_size(n));
            assert_eq!(
                m,
                format!("invalid pool configuration: max_db_pool_size must be at least 2, got {n}")
            );
        }
        assert!(PsqlPool::builder().max_db_pool_size(2).build().is_ok());
    }

    #[test]
    fn defaults_follow_the_seed() {
        let pool = PsqlPool::builder().build().unwrap();
        let s = pool.status();
        assert_eq!((s.max_size, s.size, s.waiting), (2, 0, 0));
        let b = PsqlPoolBuilder::default();
        assert_eq!(b.conn_recycling_method, RecyclingMethod::Fast);
        assert_eq!(b.wait_timeout, Duration::from_secs(30));
    }

    #[test]
    fn separate_parameters_build_the_config() {
        let b = PsqlPool::builder()
            .username("alice")
            .password("s3cret")
            .host("db.example")
            .port(6543)
            .db_name("app");
        let c = b.connection_config_for_tests().unwrap();
        let mut want = Config::new();
        want.user("alice")
            .password("s3cret")
            .host("db.example")
            .port(6543)
            .dbname("app");
        assert_eq!(c, want);
    }

    #[test]
    fn dsn_wins_over_separate_parameters() {
        let dsn = "postgres://bob:pw@dsnhost:7777/dsndb";
        let b = PsqlPool::builder()
            .dsn(dsn)
            .username("ignored")
            .password("ignored")
            .host("ignored-host")
            .port(1)
            .db_name("ignored-db");
        let c = b.connection_config_for_tests().unwrap();
        assert_eq!(c, dsn.parse::<Config>().unwrap());
        assert_eq!(c.get_user(), Some("bob"));
        assert_eq!(c.get_ports(), &[7777]);
        assert_eq!(c.get_dbname(), Some("dsndb"));
    }

    #[test]
    fn bad_dsn_names_the_problem_without_the_password() {
        let m = msg(PsqlPool::builder().dsn("mysql://u:hunter2@h/db"));
        assert!(m.starts_with("invalid pool configuration: dsn: "), "{m}");
        assert!(m.contains("mysql"), "{m}");
        assert!(!m.contains("hunter2"), "{m}");
        let m = msg(PsqlPool::builder().dsn("postgres://u:hunter2@h:notaport/db"));
        assert!(m.contains("port"), "{m}");
        assert!(!m.contains("hunter2"), "{m}");
    }

    #[test]
    fn dsn_and_config_together_are_refused() {
        let m = msg(PsqlPool::builder().dsn("host=a").config(Config::new()));
        assert!(m.contains("either dsn or config"), "{m}");
    }

    #[test]
    fn other_knobs_are_validated() {
        let m = msg(PsqlPool::builder().max_db_pool_size(3).min_idle(4));
        assert!(
            m.contains("min_idle (4) cannot exceed max_db_pool_size (3)"),
            "{m}"
        );
        for (name, b) in [
            (
                "create_timeout",
                PsqlPool::builder().create_timeout(Duration::ZERO),
            ),
            (
                "recycle_timeout",
                PsqlPool::builder().recycle_timeout(Duration::ZERO),
            ),
            (
                "max_lifetime",
                PsqlPool::builder().max_lifetime(Duration::ZERO),
            ),
            (
                "idle_timeout",
                PsqlPool::builder().idle_timeout(Duration::ZERO),
            ),
        ] {
            assert_eq!(
                msg(b),
                format!("invalid pool configuration: {name} must be more than zero")
            );
        }
        // A zero wait timeout is allowed: it means "only if free now".
        assert!(
            PsqlPool::builder()
                .wait_timeout(Duration::ZERO)
                .build()
                .is_ok()
        );
    }

    #[test]
    fn debug_never_shows_secrets() {
        let b = PsqlPool::builder()
            .dsn("postgres://u:hunter2@h/db")
            .password("hunter3");
        let d = format!("{b:?}");
        assert!(!d.contains("hunter2") && !d.contains("hunter3"), "{d}");
        assert!(d.contains("<redacted>"), "{d}");
        let pool = PsqlPool::builder()
            .dsn("postgres://u:hunter2@h/db")
            .build()
            .unwrap();
        let d = format!("{pool:?}");
        assert!(!d.contains("hunter2"), "{d}");
    }

    #[test]
    fn debug_shows_every_field_but_the_password() {
        let mut config = Config::new();
        config.user("cfg_user").password("hunter4");
        let b = PsqlPool::builder()
            .dsn("postgres://u:hunter2@h/db")
            .config(config)
            .username("alice")
            .password("hunter3")
            .host("db.example")
            .port(6543)
            .db_name("app")
            .max_db_pool_size(7)
            .conn_recycling_method(RecyclingMethod::Verified)
            .wait_timeout(Duration::from_secs(11))
            .create_timeout(Duration::from_secs(12))
            .recycle_timeout(Duration::from_secs(13))
            .max_lifetime(Duration::from_secs(14))
            .idle_timeout(Duration::from_secs(15))
            .min_idle(1)
            .query_timeout(Duration::from_secs(16))
            .prepared_statements(false)
            .param_types(pgwire_lite::ParamTypes::FromValues)
            .multiplexing(true)
            .multiplexing_batches(true);
        let d = format!("{b:?}");
        // The names come from an exhaustive pattern: once a field is added this does not
        // compile until the field is listed here, and so checked against the output.
        macro_rules! every_field {
            ($($field:ident),* $(,)?) => {{
                let PsqlPoolBuilder { $($field: _),* } = &b;
                [$(stringify!($field)),*]
            }};
        }
        let fields = every_field!(
            dsn,
            config,
            username,
            password,
            host,
            port,
            db_name,
            max_db_pool_size,
            conn_recycling_method,
            wait_timeout,
            create_timeout,
            recycle_timeout,
            max_lifetime,
            idle_timeout,
            min_idle,
            query_timeout,
            prepared_statements,
            param_types,
            slow_statement_threshold,
            hooks,
            multiplexing,
            multiplexing_batches,
        );
        for name in fields {
            assert!(d.contains(&format!("{name}: ")), "{name} missing from {d}");
        }
        for value in [
            "username: Some(\"alice\")",
            "max_db_pool_size: 7",
            "conn_recycling_method: Verified",
            "min_idle: 1",
            "query_timeout: Some(16s)",
            "prepared_statements: false",
            "param_types: FromValues",
            "multiplexing: Some(true)",
        ] {
            assert!(d.contains(value), "{value} missing from {d}");
        }
        for secret in ["hunter2", "hunter3", "hunter4"] {
            assert!(!d.contains(secret), "{secret} leaked into {d}");
        }
    }

    #[test]
    fn multiplexing_is_off_unless_turned_on_by_setter_or_dsn() {
        assert!(!PsqlPool::builder().build().unwrap().multiplexing());
        assert!(
            PsqlPool::builder()
                .multiplexing(true)
                .build()
                .unwrap()
                .multiplexing()
        );
        let on = PsqlPool::builder()
            .dsn("postgres://u@h/db?multiplexing=on")
            .build()
            .unwrap();
        assert!(on.multiplexing());
        let kv = PsqlPool::builder()
            .dsn("host=h user=u multiplexing=on")
            .build()
            .unwrap();
        assert!(kv.multiplexing());
        // The setter wins over the DSN.
        let off = PsqlPool::builder()
            .dsn("host=h multiplexing=on")
            .multiplexing(false)
            .build()
            .unwrap();
        assert!(!off.multiplexing());
        let err = PsqlPool::builder()
            .dsn("host=h multiplexing=sometimes")
            .build()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("multiplexing") && err.contains("sometimes"),
            "{err}"
        );
    }

    #[test]
    fn named_statements_are_on_unless_turned_off() {
        assert!(PsqlPool::builder().build().unwrap().prepared_statements());
        let off = PsqlPool::builder()
            .prepared_statements(false)
            .build()
            .unwrap();
        assert!(!off.prepared_statements());
        let dsn = "postgres://u@h/db?statement_cache_capacity=0";
        let off = PsqlPool::builder().dsn(dsn).build().unwrap();
        assert!(!off.prepared_statements());
        let dsn = "host=h user=u statement_cache_capacity=64";
        let on = PsqlPool::builder().dsn(dsn).build().unwrap();
        assert!(on.prepared_statements());
        assert!(!on.detected_transaction_pooler());
        let bad = PsqlPool::builder()
            .dsn("host=h statement_cache_capacity=-1")
            .build();
        assert!(bad.is_err());
    }

    #[test]
    fn build_and_resize_refuse_alike() {
        let pool = PsqlPool::builder()
            .max_db_pool_size(4)
            .min_idle(3)
            .build()
            .unwrap();
        for size in [0, 1, 2] {
            let built = msg(PsqlPool::builder().max_db_pool_size(size).min_idle(3));
            let resized = pool.resize(size).unwrap_err().to_string();
            assert_eq!(built, resized);
            assert!(resized.contains("max_db_pool_size"), "{resized}");
        }
        assert_eq!(
            pool.status().max_size,
            4,
            "a refused resize changes nothing"
        );
    }
}
