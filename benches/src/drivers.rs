//! The in-process drivers a load runs through, and the client loop they share.
//!
//! psqlpool: `PsqlPool` with `RecyclingMethod::Fast`; `pool.execute` for the select (a named
//! statement cached per connection), `pool.connection()` + `execute` for TPC-B.
//!
//! Every driver runs the same statements with bound parameters and prepared (named) statements,
//! sequentially (no pipelining), `BEGIN`/`END` as simple queries:
//! - deadpool-postgres: `RecyclingMethod::Fast`, `prepare_cached` on the pooled client;
//! - bb8-postgres: its `PostgresConnectionManager` wrapped so each pooled connection carries a
//!   statement map (prepared once per connection; bb8-postgres itself has no statement cache and
//!   preparing per call would add a round trip per statement);
//! - sqlx: `sqlx::query(..).bind(..)`, persistent statements (its per-connection cache, default on).
//!
//! Pool health checks that cost a round trip per checkout (bb8 `test_on_check_out`, sqlx
//! `test_before_acquire`, both on by default) are switched off unless `peer_defaults`, so every pool
//! does the same work as psqlpool's `RecyclingMethod::Fast`. sqlx still pings every connection on
//! release (in a background task; not configurable).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pg_harness::Rng;
use tokio_postgres::{NoTls, Statement};

use crate::hist::Recorder;
use crate::workload::{self, Params, Workload};

/// The drivers the load command knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// psqlpool (`pool_core::PsqlPool`).
    Ours,
    /// psqlpool multiplexed with one Sync per batch (`multiplexing_batches(true)`; on the
    /// read-only select load the same as the default, which batches reads), beside `ours`
    /// with `--multiplex` (`multiplexing_batches(false)`: one Sync per statement) in the same
    /// run.
    OursBatches,
    /// tokio-postgres through deadpool-postgres.
    Deadpool,
    /// tokio-postgres through bb8-postgres.
    Bb8,
    /// sqlx's `PgPool`.
    Sqlx,
    /// The `pgbench` binary, `-M prepared` (run as a child process, not through [`Driver`]).
    Pgbench,
    /// `pgbench -M prepared` running a `\startpipeline` script: `--pool` clients, each with
    /// `--clients / --pool` selects per pipeline (one Sync per pipeline), so as many statements
    /// are in flight as a multiplexed psqlpool has callers. Counted in statements.
    PgbenchPipeline,
}

impl Kind {
    /// Every peer, in the order `--compare` runs them.
    pub const PEERS: [Kind; 4] = [Kind::Deadpool, Kind::Bb8, Kind::Sqlx, Kind::Pgbench];

    /// Short name used on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ours => "psqlpool",
            Kind::OursBatches => "psqlpool-batches",
            Kind::Deadpool => "deadpool-postgres",
            Kind::Bb8 => "bb8-postgres",
            Kind::Sqlx => "sqlx",
            Kind::Pgbench => "pgbench",
            Kind::PgbenchPipeline => "pgbench-pipeline",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ours" | "psqlpool" => Ok(Kind::Ours),
            "ours-batches" | "psqlpool-batches" => Ok(Kind::OursBatches),
            "deadpool" | "deadpool-postgres" => Ok(Kind::Deadpool),
            "bb8" | "bb8-postgres" => Ok(Kind::Bb8),
            "sqlx" => Ok(Kind::Sqlx),
            "pgbench" => Ok(Kind::Pgbench),
            "pgbench-pipeline" => Ok(Kind::PgbenchPipeline),
            other => Err(format!(
                "unknown driver {other:?}: expected ours, deadpool, bb8, sqlx, pgbench or \
                 pgbench-pipeline"
            )),
        }
    }
}

/// A tokio-postgres client that remembers its prepared statements (the bb8 connection type).
pub struct PreparedClient {
    client: tokio_postgres::Client,
    statements: HashMap<&'static str, Statement>,
}

impl PreparedClient {
    async fn statement(&mut self, sql: &'static str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql).await?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }
}

/// bb8-postgres's manager, with a statement map per connection.
pub struct PreparedManager(bb8_postgres::PostgresConnectionManager<NoTls>);

impl bb8::ManageConnection for PreparedManager {
    type Connection = PreparedClient;
    type Error = tokio_postgres::Error;

    async fn connect(&self) -> Result<PreparedClient, tokio_postgres::Error> {
        Ok(PreparedClient {
            client: self.0.connect().await?,
            statements: HashMap::new(),
        })
    }

    async fn is_valid(&self, conn: &mut PreparedClient) -> Result<(), tokio_postgres::Error> {
        self.0.is_valid(&mut conn.client).await
    }

    fn has_broken(&self, conn: &mut PreparedClient) -> bool {
        self.0.has_broken(&mut conn.client)
    }
}

/// sqlx options for `url`, read by tokio-postgres's libpq-compatible parser: sqlx's own parser
/// rejects libpq's Unix-socket form `postgresql://user@/db?host=/dir`.
fn sqlx_options(url: &str) -> Result<sqlx::postgres::PgConnectOptions, String> {
    let pg: tokio_postgres::Config = url.parse().map_err(err)?;
    let mut o = sqlx::postgres::PgConnectOptions::new_without_pgpass();
    match pg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => o = o.host(h),
        Some(tokio_postgres::config::Host::Unix(dir)) => o = o.socket(dir),
        None => {}
    }
    if let Some(port) = pg.get_ports().first() {
        o = o.port(*port);
    }
    if let Some(user) = pg.get_user() {
        o = o.username(user);
    }
    if let Some(pass) = pg.get_password() {
        o = o.password(std::str::from_utf8(pass).map_err(err)?);
    }
    if let Some(db) = pg.get_dbname() {
        o = o.database(db);
    }
    Ok(o)
}

/// How the in-process drivers are built for one load.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Keep the peers' per-checkout health checks (bb8 `test_on_check_out`, sqlx
    /// `test_before_acquire`).
    pub peer_defaults: bool,
    /// The URL asks for TLS (`sslmode=require`): the tokio-postgres peers connect through
    /// tokio-postgres-rustls (ring), as psqlpool uses rustls with ring.
    pub tls: bool,
    /// No named statements (a transaction pooler in front): psqlpool with
    /// `prepared_statements(false)` and values declaring their types, tokio-postgres with
    /// `query_typed` (the unnamed statement, types given: one round trip each).
    pub unnamed: bool,
    /// psqlpool with `multiplexing(true)`: concurrent `execute` calls share connections (with
    /// one Sync per statement for `ours`, `multiplexing_batches(false)`).
    pub multiplex: bool,
}

/// A pool of one in-process driver, ready to run transactions. Cheap to clone (shared pool).
#[derive(Clone)]
pub enum Driver {
    /// psqlpool.
    Ours(pool_core::PsqlPool),
    /// psqlpool multiplexed with one Sync per batch.
    OursBatches(pool_core::PsqlPool),
    /// deadpool-postgres; `true`: unnamed statements through `query_typed`.
    Deadpool(deadpool_postgres::Pool, bool),
    /// bb8-postgres (with per-connection statements).
    Bb8(bb8::Pool<PreparedManager>),
    /// sqlx.
    Sqlx(sqlx::PgPool),
    /// The connect workload through psqlpool's client: a new `Connection` per transaction.
    OursConnect(Arc<pgwire_lite::Config>),
    /// The connect workload through tokio-postgres (what deadpool-postgres opens), plain or
    /// over rustls.
    TokioPostgresConnect(
        Arc<tokio_postgres::Config>,
        Option<tokio_postgres_rustls::MakeRustlsConnect>,
    ),
}

/// An error with its whole `source()` chain (tokio-postgres alone says just "db error").
pub fn err(e: impl std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl Driver {
    /// Builds the pool of `kind` with at most `size` connections to `url`. Connections are opened
    /// lazily (by the warm-up), as each pool does by default. Must run inside a tokio runtime.
    pub async fn build(
        kind: Kind,
        url: &str,
        size: usize,
        opts: Options,
    ) -> Result<Driver, String> {
        let size32 = u32::try_from(size).map_err(|_| format!("--pool {size}: too large"))?;
        let peer_defaults = opts.peer_defaults;
        if opts.tls && matches!(kind, Kind::Bb8 | Kind::Sqlx) {
            return Err(format!("{kind}: not measured over TLS here"));
        }
        match kind {
            Kind::Ours | Kind::OursBatches => {
                let batches = kind == Kind::OursBatches;
                let mut builder = pool_core::PsqlPool::builder()
                    .dsn(url)
                    .max_db_pool_size(size)
                    .conn_recycling_method(pool_core::RecyclingMethod::Fast)
                    .multiplexing(opts.multiplex || batches)
                    .multiplexing_batches(batches);
                if opts.unnamed {
                    builder = builder
                        .prepared_statements(false)
                        .param_types(pool_core::ParamTypes::FromValues);
                }
                let pool = builder.build().map_err(err)?;
                pool.startup().await.map_err(err)?;
                Ok(if batches {
                    Driver::OursBatches(pool)
                } else {
                    Driver::Ours(pool)
                })
            }
            Kind::Deadpool => {
                let pg: tokio_postgres::Config = url.parse().map_err(err)?;
                let config = deadpool_postgres::ManagerConfig {
                    recycling_method: deadpool_postgres::RecyclingMethod::Fast,
                };
                let manager = if opts.tls {
                    deadpool_postgres::Manager::from_config(
                        pg,
                        crate::tls::tokio_postgres_tls()?,
                        config,
                    )
                } else {
                    deadpool_postgres::Manager::from_config(pg, NoTls, config)
                };
                let pool = deadpool_postgres::Pool::builder(manager)
                    .max_size(size)
                    .build()
                    .map_err(err)?;
                Ok(Driver::Deadpool(pool, opts.unnamed))
            }
            Kind::Bb8 => {
                let manager = PreparedManager(
                    bb8_postgres::PostgresConnectionManager::new_from_stringlike(url, NoTls)
                        .map_err(err)?,
                );
                let pool = bb8::Pool::builder()
                    .max_size(size32)
                    .test_on_check_out(peer_defaults)
                    .build_unchecked(manager);
                Ok(Driver::Bb8(pool))
            }
            Kind::Sqlx => {
                let options = sqlx_options(url)?;
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(size32)
                    .test_before_acquire(peer_defaults)
                    .connect_lazy_with(options);
                Ok(Driver::Sqlx(pool))
            }
            Kind::Pgbench | Kind::PgbenchPipeline => {
                Err("pgbench runs as a child process, not as a pool".into())
            }
        }
    }

    /// The connect workload's driver of `kind`: nothing pooled, a connection per transaction.
    pub fn for_connect(kind: Kind, url: &str, opts: Options) -> Result<Driver, String> {
        match kind {
            Kind::Ours => Ok(Driver::OursConnect(Arc::new(
                pgwire_lite::Config::parse(url).map_err(err)?,
            ))),
            Kind::Deadpool => {
                let tls = if opts.tls {
                    Some(crate::tls::tokio_postgres_tls()?)
                } else {
                    None
                };
                Ok(Driver::TokioPostgresConnect(
                    Arc::new(url.parse().map_err(err)?),
                    tls,
                ))
            }
            other => Err(format!(
                "{other}: the connect workload runs ours, deadpool (tokio-postgres) and pgbench"
            )),
        }
    }

    /// Which driver this is.
    pub fn kind(&self) -> Kind {
        match self {
            Driver::Ours(_) | Driver::OursConnect(_) => Kind::Ours,
            Driver::OursBatches(_) => Kind::OursBatches,
            Driver::Deadpool(..) | Driver::TokioPostgresConnect(..) => Kind::Deadpool,
            Driver::Bb8(_) => Kind::Bb8,
            Driver::Sqlx(_) => Kind::Sqlx,
        }
    }

    /// One transaction of `workload`.
    pub async fn run(&self, workload: Workload, p: &Params) -> Result<(), String> {
        match workload {
            Workload::Select => self.select(p.aid).await.map(|_| ()),
            Workload::Tpcb => self.tpcb(p).await,
            Workload::Connect => self.connect_select(p.aid).await.map(|_| ()),
        }
    }

    /// `pgbench -C -S`: connect (TLS and SCRAM as the URL says), one select through the
    /// unnamed statement with a typed parameter (one round trip, as pgbench `-M extended`),
    /// close.
    pub async fn connect_select(&self, aid: i32) -> Result<i32, String> {
        match self {
            Driver::OursConnect(config) => {
                let mut conn = pgwire_lite::Connection::connect(config)
                    .await
                    .map_err(err)?;
                conn.set_param_types(pgwire_lite::ParamTypes::FromValues);
                let res = conn
                    .execute_unprepared(workload::SELECT_ACCOUNT, &[&aid])
                    .await
                    .map_err(err)?;
                let balance = res
                    .rows()
                    .first()
                    .ok_or_else(|| format!("no account {aid}"))?
                    .try_get(0)
                    .map_err(err)?;
                conn.close().await.map_err(err)?;
                Ok(balance)
            }
            Driver::TokioPostgresConnect(config, tls) => {
                let client = match tls {
                    Some(tls) => {
                        let (client, conn) = config.connect(tls.clone()).await.map_err(err)?;
                        tokio::spawn(conn);
                        client
                    }
                    None => {
                        let (client, conn) = config.connect(NoTls).await.map_err(err)?;
                        tokio::spawn(conn);
                        client
                    }
                };
                let row = client
                    .query_typed(
                        workload::SELECT_ACCOUNT,
                        &[(&aid, tokio_postgres::types::Type::INT4)],
                    )
                    .await
                    .map_err(err)?;
                let balance = row
                    .first()
                    .ok_or_else(|| format!("no account {aid}"))?
                    .try_get(0)
                    .map_err(err)?;
                // Dropping the client sends Terminate and ends the spawned connection task.
                drop(client);
                Ok(balance)
            }
            other => Err(format!("{}: not a connect-workload driver", other.kind())),
        }
    }

    /// `pgbench -S`: the balance of account `aid`, decoded.
    pub async fn select(&self, aid: i32) -> Result<i32, String> {
        match self {
            Driver::Ours(pool) | Driver::OursBatches(pool) => {
                let res = pool
                    .execute(workload::SELECT_ACCOUNT, &[&aid])
                    .await
                    .map_err(err)?;
                let row = res
                    .rows()
                    .first()
                    .ok_or_else(|| format!("no account {aid}"))?;
                row.try_get(0).map_err(err)
            }
            Driver::Deadpool(pool, true) => {
                let client = pool.get().await.map_err(err)?;
                let rows = client
                    .query_typed(
                        workload::SELECT_ACCOUNT,
                        &[(&aid, tokio_postgres::types::Type::INT4)],
                    )
                    .await
                    .map_err(err)?;
                rows.first()
                    .ok_or_else(|| format!("no account {aid}"))?
                    .try_get(0)
                    .map_err(err)
            }
            Driver::Deadpool(pool, false) => {
                let client = pool.get().await.map_err(err)?;
                let stmt = client
                    .prepare_cached(workload::SELECT_ACCOUNT)
                    .await
                    .map_err(err)?;
                let row = client.query_one(&stmt, &[&aid]).await.map_err(err)?;
                row.try_get(0).map_err(err)
            }
            Driver::Bb8(pool) => {
                let mut conn = pool.get().await.map_err(err)?;
                let stmt = conn
                    .statement(workload::SELECT_ACCOUNT)
                    .await
                    .map_err(err)?;
                let row = conn.client.query_one(&stmt, &[&aid]).await.map_err(err)?;
                row.try_get(0).map_err(err)
            }
            Driver::Sqlx(pool) => {
                use sqlx::Row;
                let row = sqlx::query(workload::SELECT_ACCOUNT)
                    .bind(aid)
                    .fetch_one(pool)
                    .await
                    .map_err(err)?;
                row.try_get(0).map_err(err)
            }
            Driver::OursConnect(_) | Driver::TokioPostgresConnect(..) => {
                Err("a connect-workload driver runs connect_select only".into())
            }
        }
    }

    /// pgbench's TPC-B-like transaction.
    pub async fn tpcb(&self, p: &Params) -> Result<(), String> {
        match self {
            Driver::Ours(pool) | Driver::OursBatches(pool) => {
                let mut conn = pool.connection().await.map_err(err)?;
                conn.batch_execute(workload::BEGIN).await.map_err(err)?;
                conn.execute(workload::UPDATE_ACCOUNT, &[&p.delta, &p.aid])
                    .await
                    .map_err(err)?;
                let res = conn
                    .execute(workload::SELECT_ACCOUNT, &[&p.aid])
                    .await
                    .map_err(err)?;
                let row = res
                    .rows()
                    .first()
                    .ok_or_else(|| format!("no account {}", p.aid))?;
                let _: i32 = row.try_get(0).map_err(err)?;
                conn.execute(workload::UPDATE_TELLER, &[&p.delta, &p.tid])
                    .await
                    .map_err(err)?;
                conn.execute(workload::UPDATE_BRANCH, &[&p.delta, &p.bid])
                    .await
                    .map_err(err)?;
                conn.execute(
                    workload::INSERT_HISTORY,
                    &[&p.tid, &p.bid, &p.aid, &p.delta],
                )
                .await
                .map_err(err)?;
                conn.batch_execute(workload::END).await.map_err(err)
            }
            Driver::Deadpool(pool, _) => {
                let client = pool.get().await.map_err(err)?;
                // Simple-query BEGIN/END, as for every driver (`transaction()` sends the same).
                client.batch_execute(workload::BEGIN).await.map_err(err)?;
                let s = client
                    .prepare_cached(workload::UPDATE_ACCOUNT)
                    .await
                    .map_err(err)?;
                client.execute(&s, &[&p.delta, &p.aid]).await.map_err(err)?;
                let s = client
                    .prepare_cached(workload::SELECT_ACCOUNT)
                    .await
                    .map_err(err)?;
                let row = client.query_one(&s, &[&p.aid]).await.map_err(err)?;
                let _: i32 = row.try_get(0).map_err(err)?;
                let s = client
                    .prepare_cached(workload::UPDATE_TELLER)
                    .await
                    .map_err(err)?;
                client.execute(&s, &[&p.delta, &p.tid]).await.map_err(err)?;
                let s = client
                    .prepare_cached(workload::UPDATE_BRANCH)
                    .await
                    .map_err(err)?;
                client.execute(&s, &[&p.delta, &p.bid]).await.map_err(err)?;
                let s = client
                    .prepare_cached(workload::INSERT_HISTORY)
                    .await
                    .map_err(err)?;
                client
                    .execute(&s, &[&p.tid, &p.bid, &p.aid, &p.delta])
                    .await
                    .map_err(err)?;
                client.batch_execute(workload::END).await.map_err(err)
            }
            Driver::Bb8(pool) => {
                let mut conn = pool.get().await.map_err(err)?;
                let c = &mut *conn;
                c.client.batch_execute(workload::BEGIN).await.map_err(err)?;
                let s = c.statement(workload::UPDATE_ACCOUNT).await.map_err(err)?;
                c.client
                    .execute(&s, &[&p.delta, &p.aid])
                    .await
                    .map_err(err)?;
                let s = c.statement(workload::SELECT_ACCOUNT).await.map_err(err)?;
                let row = c.client.query_one(&s, &[&p.aid]).await.map_err(err)?;
                let _: i32 = row.try_get(0).map_err(err)?;
                let s = c.statement(workload::UPDATE_TELLER).await.map_err(err)?;
                c.client
                    .execute(&s, &[&p.delta, &p.tid])
                    .await
                    .map_err(err)?;
                let s = c.statement(workload::UPDATE_BRANCH).await.map_err(err)?;
                c.client
                    .execute(&s, &[&p.delta, &p.bid])
                    .await
                    .map_err(err)?;
                let s = c.statement(workload::INSERT_HISTORY).await.map_err(err)?;
                c.client
                    .execute(&s, &[&p.tid, &p.bid, &p.aid, &p.delta])
                    .await
                    .map_err(err)?;
                c.client.batch_execute(workload::END).await.map_err(err)
            }
            Driver::Sqlx(pool) => {
                use sqlx::Row;
                // `begin()` / `commit()` send BEGIN / COMMIT as simple queries.
                let mut tx = pool.begin().await.map_err(err)?;
                sqlx::query(workload::UPDATE_ACCOUNT)
                    .bind(p.delta)
                    .bind(p.aid)
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
                let row = sqlx::query(workload::SELECT_ACCOUNT)
                    .bind(p.aid)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(err)?;
                let _: i32 = row.try_get(0).map_err(err)?;
                sqlx::query(workload::UPDATE_TELLER)
                    .bind(p.delta)
                    .bind(p.tid)
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
                sqlx::query(workload::UPDATE_BRANCH)
                    .bind(p.delta)
                    .bind(p.bid)
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
                sqlx::query(workload::INSERT_HISTORY)
                    .bind(p.tid)
                    .bind(p.bid)
                    .bind(p.aid)
                    .bind(p.delta)
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
                tx.commit().await.map_err(err)
            }
            Driver::OursConnect(_) | Driver::TokioPostgresConnect(..) => {
                Err("a connect-workload driver runs connect_select only".into())
            }
        }
    }

    /// Closes the pool's connections (so the next driver's round starts on a quiet server).
    pub async fn close(&self) {
        match self {
            Driver::Ours(pool) | Driver::OursBatches(pool) => pool.close().await,
            Driver::Deadpool(pool, _) => pool.close(),
            // bb8 closes connections when the last pool handle drops; the connect drivers
            // hold none.
            Driver::Bb8(_) | Driver::OursConnect(_) | Driver::TokioPostgresConnect(..) => {}
            Driver::Sqlx(pool) => pool.close().await,
        }
    }
}

/// One client: runs transactions back to back until `deadline`, recording each.
pub async fn client_loop(
    driver: Driver,
    workload: Workload,
    scale: i32,
    client: u64,
    deadline: Instant,
    recorder: Arc<Recorder>,
) {
    // Distinct clients get distinct, fixed streams.
    let mut rng = Rng::for_stream(client);
    // Each task its own counters (the low half of `client` is its index), and one clock read
    // per transaction: its end is the next one's start and the deadline check.
    let shard = recorder.shard(client as u32 as usize);
    let mut now = Instant::now();
    while now < deadline {
        let p = Params::draw(&mut rng, scale);
        let start = now;
        let result = driver.run(workload, &p).await;
        now = Instant::now();
        match result {
            Ok(()) => shard.record(now.duration_since(start)),
            Err(e) => {
                recorder.error(|| format!("{}: {e}", driver.kind()));
                // An error loop (server gone) must not spin a core the server needs.
                tokio::time::sleep(Duration::from_millis(10)).await;
                now = Instant::now();
            }
        }
    }
}
