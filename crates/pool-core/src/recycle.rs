//! What happens to a connection between two borrowers.
//!
//! Two stages, both bounded by the recycle timeout:
//!
//! 1. **Always, whatever the method** (local checks, no I/O unless the connection is dirty):
//!    a broken connection, or an idle one whose socket the server closed (noticed by a
//!    non-blocking read, no round trip; skipped for a connection given back less than 100 µs
//!    ago, whose server answered it a moment ago), is closed and replaced. A connection given back
//!    with a cancelled query still running, or inside a transaction (including a failed
//!    one), is drained and rolled back (`ROLLBACK`) before anyone else sees it: a query still
//!    running after 50 ms is cancelled on the server first (CancelRequest). If that fails or
//!    times out the connection is closed. See [`PsqlPool`](crate::PsqlPool) for when this runs.
//! 2. **The [`RecyclingMethod`]**, at checkout of an idle connection.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use pgwire_lite::{ClientSettings, Connection, TargetSessionAttrs};

use crate::error::Error;
use crate::manager::{Check, Health, Manager};

/// How an idle connection is checked (and cleaned) before it is handed to the next borrower.
/// psqlpy's `conn_recycling_method` (the same three as deadpool-postgres, plus `Custom`).
///
/// | method | round trips at checkout | catches | session state from the last borrower |
/// |---|---|---|---|
/// | `Fast` (default) | 0 | broken, closed by the server | kept |
/// | `Verified` | 1 (an empty query) | also a dead peer that sent nothing (half-open TCP) | kept |
/// | `Clean` | 1 (2 if a borrower prepared SQL-level statements) | same as `Verified` | reset |
/// | `Custom(sql)` | 1 | same as `Verified` | whatever `sql` resets |
///
/// Whatever the method, a connection returned inside a transaction or with a query still
/// running is rolled back / drained first (see the module docs): `Fast` never hands out a
/// connection in a transaction. Client-side settings a borrower changed through
/// [`PooledConnection::connection_mut`](crate::PooledConnection::connection_mut) (message cap,
/// statement cache size, parameter typing, query timeout, notice handler) are always put back.
///
/// # What `Fast` and `Verified` let through to the next borrower
///
/// Everything the server keeps per session: `SET` values (also `SET ROLE` and
/// `SET SESSION AUTHORIZATION`), temporary tables, cursors declared `WITH HOLD`, `LISTEN`
/// channels and the notifications received on them, session advisory locks, sequence state
/// (`currval`), and SQL-level prepared statements (`PREPARE name AS ...`). The statement
/// cache's own statements are named `pwl<random tag>_<n>`, so a borrower's `PREPARE` cannot
/// collide with them by accident.
///
/// A borrower that runs `DEALLOCATE ALL` or `DISCARD ALL` drops the cache's statements too. The
/// next `execute` of a dropped statement notices it (SQLSTATE 26000, "prepared statement does
/// not exist"): outside a transaction it prepares the statement again and runs it, invisibly;
/// inside a transaction it cannot (the failed statement has already aborted the transaction),
/// so the caller gets the 26000 error, the transaction must be rolled back, and a retry
/// succeeds. Use `Clean` when borrowers may do this.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RecyclingMethod {
    /// Local checks only: not broken, not closed by the server, not inside a transaction.
    /// No round trip. Session state (`SET` values, temporary tables, `LISTEN`s, advisory
    /// locks, SQL-level prepared statements) survives into the next borrow.
    #[default]
    Fast,
    /// `Fast` plus one round trip (an empty simple query: the server answers
    /// EmptyQueryResponse, no statement runs) to prove the server is still there.
    Verified,
    /// `Verified` plus a reset of all session state, in one round trip: the SQL of
    /// [`CLEAN_SQL`], then every SQL-level prepared statement (`PREPARE name AS ...`, which
    /// the statement cache does not own) is deallocated. The statement cache's own
    /// statements are kept, which is why this is not `DISCARD ALL`; should a borrower have
    /// dropped them (`DEALLOCATE ALL`, `DISCARD ALL`), the cache is cleared to match.
    Clean,
    /// Runs this SQL with the simple query protocol (several statements allowed). The
    /// connection must be idle afterwards (a `BEGIN` without `COMMIT` fails the check).
    /// If the SQL drops prepared statements (`DISCARD ALL`, `DEALLOCATE ALL`), the statement
    /// cache notices this at the next query of a dropped statement only; prefer `Clean`.
    Custom(String),
}

/// The reset `Clean` runs, verbatim from deadpool-postgres (what `DISCARD ALL` does, minus
/// `DEALLOCATE ALL` and `DISCARD PLANS`, so the statement cache stays useful), then a look at
/// the prepared statements left on the server:
///
/// - `CLOSE ALL`: cursors;
/// - `SET SESSION AUTHORIZATION DEFAULT`, `RESET ALL`: the session user, `SET ROLE` and every
///   `SET` value (`search_path`, `statement_timeout`, `application_name`, ...);
/// - `UNLISTEN *`: `LISTEN` channels (notifications already received are dropped too);
/// - `SELECT pg_advisory_unlock_all()`: session-level advisory locks;
/// - `DISCARD TEMP`: temporary tables;
/// - `DISCARD SEQUENCES`: cached `currval`/`lastval` and sequence caches;
/// - the last `SELECT` lists prepared statements: those with `from_sql` (SQL-level
///   `PREPARE`) are then dropped with `DEALLOCATE "name"`, in a second round trip that only
///   happens when there are some. If a statement the cache owns is missing,
///   `DEALLOCATE ALL` runs and the cache is cleared, so cache and server agree again.
pub const CLEAN_SQL: &str = "CLOSE ALL; \
SET SESSION AUTHORIZATION DEFAULT; \
RESET ALL; \
UNLISTEN *; \
SELECT pg_advisory_unlock_all(); \
DISCARD TEMP; \
DISCARD SEQUENCES; \
SELECT name, from_sql FROM pg_prepared_statements";

/// The statement `Verified` runs: empty, so nothing executes and the server just answers.
pub const VERIFIED_SQL: &str = "";

/// How long a dropped query may go on finishing by itself before it is cancelled.
const DRAIN_GRACE: std::time::Duration = std::time::Duration::from_millis(50);

/// The real manager: opens `pgwire_lite::Connection`s and recycles them with a method.
pub(crate) struct PgManager {
    /// Swapped whole by `PsqlPool::set_password`; read (an `Arc` clone) once per new connection,
    /// never held across an await.
    pub(crate) config: std::sync::RwLock<std::sync::Arc<pgwire_lite::Config>>,
    pub(crate) method: RecyclingMethod,
    pub(crate) query_timeout: Option<std::time::Duration>,
    /// Statements each connection caches when named statements are on.
    pub(crate) cache_capacity: usize,
    /// Named statements are off: every connection's cache capacity is 0, so `execute` uses
    /// the unnamed statement. Set by the builder or, once, by [`PgManager::pooler_detected`].
    pub(crate) unnamed: AtomicBool,
    /// `unnamed` was switched on because a transaction pooler was detected.
    pub(crate) detected: AtomicBool,
    /// Where new statements' parameter types come from, on every connection.
    pub(crate) param_types: pgwire_lite::ParamTypes,
    /// What the connections must be (`target_session_attrs`), checked again at every return
    /// and checkout against what the server reports.
    pub(crate) target: TargetSessionAttrs,
    /// Types looked up in `pg_type`, shared by every connection of the pool: each user type is
    /// looked up once per pool, not once per connection.
    pub(crate) types: std::sync::Arc<pgwire_lite::TypeCache>,
    /// Statements at least this slow are reported (a `tracing` WARN event).
    pub(crate) slow_statement_threshold: Option<std::time::Duration>,
    /// What the checkout spans say about the server.
    pub(crate) trace: TraceTarget,
}

/// The server fields of the checkout span (OpenTelemetry's names): the first host and port
/// configured, and the database, as known when the pool was built.
#[derive(Debug, Clone, Default)]
pub(crate) struct TraceTarget {
    pub(crate) namespace: String,
    pub(crate) address: String,
    pub(crate) port: u16,
}

impl TraceTarget {
    pub(crate) fn of(config: &pgwire_lite::Config) -> TraceTarget {
        TraceTarget {
            namespace: config
                .get_dbname()
                .or(config.get_user())
                .unwrap_or_default()
                .to_owned(),
            address: match config.get_hosts().first() {
                Some(pgwire_lite::Host::Tcp(name)) => name.clone(),
                Some(pgwire_lite::Host::Unix(dir)) => dir.display().to_string(),
                None => String::new(),
            },
            port: config.get_ports().first().copied().unwrap_or(5432),
        }
    }
}

/// SQLSTATE 26000 from `FetchPreparedStatement`: a named statement our cache prepared is not
/// on the server connection the Bind reached; 42P05: a Parse found the name taken.
fn is_pooler_symptom(e: &Error) -> bool {
    let db = e.as_backend().and_then(pgwire_lite::Error::as_db_error);
    db.is_some_and(|d| match d.code() {
        "26000" => d.routine.as_deref() == Some("FetchPreparedStatement"),
        "42P05" => true,
        _ => false,
    })
}

impl PgManager {
    pub(crate) fn config(&self) -> std::sync::Arc<pgwire_lite::Config> {
        // A poisoned lock only means a writer panicked between two plain assignments.
        match self.config.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The client-side settings every borrower starts with: the library's defaults, the pool's
    /// query timeout, statement cache and parameter types.
    fn client_settings(&self) -> ClientSettings {
        ClientSettings {
            query_timeout: self.query_timeout,
            param_types: self.param_types,
            slow_statement_threshold: self.slow_statement_threshold,
            statement_cache_capacity: self.statement_cache_capacity(),
            ..ClientSettings::default()
        }
    }

    fn statement_cache_capacity(&self) -> usize {
        if self.unnamed.load(Ordering::Relaxed) {
            0
        } else {
            self.cache_capacity
        }
    }

    /// The server changed role since the connection was opened, as it reported: a standby
    /// promoted (`in_hot_standby` off), or `default_transaction_read_only` turned on (the
    /// server reports both from PostgreSQL 14, at the end of the next statement, e.g. the one
    /// that failed with 25006 read_only_sql_transaction). Only reported values count: older
    /// servers are checked when the connection is opened only.
    fn role_changed(&self, conn: &Connection) -> bool {
        use TargetSessionAttrs as T;
        let is = |name: &str, value: &str| conn.parameter(name) == Some(value);
        match self.target {
            T::Any | T::PreferStandby => false,
            T::ReadWrite => is("default_transaction_read_only", "on") || is("in_hot_standby", "on"),
            T::ReadOnly => {
                is("default_transaction_read_only", "off") && is("in_hot_standby", "off")
            }
            T::Primary => is("in_hot_standby", "on"),
            T::Standby => is("in_hot_standby", "off"),
        }
    }

    /// Whether `e`, returned by a named-statement `execute` on `conn`, shows a transaction
    /// pooler (the statements we prepare vanish between two requests, or collide). If so,
    /// named statements are turned off for the whole pool (and for `conn` at once), and the
    /// result says whether the caller's statement may be re-run: 26000 and 42P05 are raised by
    /// Bind and Parse, before Execute, so the statement never ran; outside a transaction
    /// nothing else it was part of ran either.
    pub(crate) fn pooler_detected(&self, e: &Error, conn: &mut Connection) -> bool {
        if !is_pooler_symptom(e) {
            return false;
        }
        self.unnamed.store(true, Ordering::Relaxed);
        // Said once: the first borrower to see the symptom flips the flag and warns.
        if !self.detected.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                target: "pool_core::pooler",
                sqlstate = e.as_backend().and_then(pgwire_lite::Error::code).unwrap_or(""),
                "detected a transaction pooler (e.g. PgBouncer in pool_mode=transaction): \
                 named prepared statements are now off for the whole pool"
            );
        }
        conn.set_statement_cache_capacity(0);
        !conn.in_transaction()
    }

    pub(crate) fn set_config(&self, config: pgwire_lite::Config) {
        let mut slot = match self.config.write() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = std::sync::Arc::new(config);
    }
}

fn not_idle(what: &'static str) -> Error {
    Error::Backend(pgwire_lite::Error::Closed(what))
}

impl Manager for PgManager {
    type Conn = Connection;

    async fn create(&self) -> Result<Connection, Error> {
        let config = self.config();
        let mut conn = Connection::connect(&config).await?;
        conn.restore_client_settings(&self.client_settings());
        conn.set_type_cache(self.types.clone());
        Ok(conn)
    }

    fn health(&self, conn: &mut Connection, at: Check) -> Health {
        if at == Check::GiveBack {
            // Given back: whatever the borrower changed on the client side (message cap,
            // statement cache size, parameter typing, notice handler) is undone here, so it
            // never reaches the next borrower whatever the recycling method.
            conn.restore_client_settings(&self.client_settings());
        } else if self.unnamed.load(Ordering::Relaxed) {
            // Named statements were turned off while this one sat idle.
            conn.set_statement_cache_capacity(0);
        }
        if conn.is_broken() {
            Health::Dead
        } else if conn.has_pending() || conn.in_transaction() {
            Health::Dirty
        } else if match at {
            Check::Checkout { probe: true } => !conn.check_idle_socket(),
            Check::Checkout { probe: false } => !conn.check_runtime(),
            Check::GiveBack => false,
        } {
            Health::Dead
        } else if self.role_changed(conn) {
            // Never handed out under the wrong attributes: a new connection goes through
            // the target_session_attrs check again.
            Health::Dead
        } else {
            Health::Ok
        }
    }

    async fn reset(&self, conn: &mut Connection) -> Result<(), Error> {
        if conn.has_pending() {
            // The borrower dropped a query future. If the query finishes soon, just read
            // the rest of its answer; if not, ask the server to cancel it (a CancelRequest on
            // a side connection), then read up to its ReadyForQuery. A cancel that arrives
            // after the query finished is ignored by the server, so this cannot hit the next
            // query. The whole reset stays under the recycle timeout.
            if tokio::time::timeout(DRAIN_GRACE, conn.drain())
                .await
                .is_err()
            {
                conn.cancel_token().cancel_query().await?;
                conn.drain().await?;
            }
        }
        if conn.in_transaction() {
            conn.batch_execute("ROLLBACK").await?;
        }
        if conn.is_idle() {
            Ok(())
        } else {
            Err(not_idle("still not idle after drain and ROLLBACK"))
        }
    }

    fn recycles(&self) -> bool {
        self.method != RecyclingMethod::Fast
    }

    async fn recycle(&self, conn: &mut Connection) -> Result<(), Error> {
        match &self.method {
            RecyclingMethod::Fast => return Ok(()),
            RecyclingMethod::Verified => conn.batch_execute(VERIFIED_SQL).await?,
            RecyclingMethod::Clean => clean(conn).await?,
            RecyclingMethod::Custom(sql) => conn.batch_execute(sql).await?,
        }
        if conn.is_idle() {
            Ok(())
        } else {
            Err(not_idle(
                "the recycling SQL left the connection inside a transaction",
            ))
        }
    }

    async fn close(&self, conn: Connection) {
        // Best effort: a failed Terminate still closes the socket.
        let _ = conn.close().await;
    }
}

/// `Clean`: see [`CLEAN_SQL`].
async fn clean(conn: &mut Connection) -> Result<(), Error> {
    let results = conn.simple_query(CLEAN_SQL).await?;
    // Notifications that arrived before UNLISTEN belong to the previous borrower.
    drop(conn.take_notifications());
    conn.set_notice_handler(None);
    let mut sql_level = Vec::new();
    let mut on_server = HashSet::new();
    if let Some(listing) = results.last() {
        for row in listing.rows() {
            // Simple-query values arrive in text format: `name` as is, `from_sql` as t/f.
            let Some(name) = row.raw(0)? else { continue };
            let name = String::from_utf8_lossy(name).into_owned();
            if row.raw(1)? == Some(&b"t"[..]) {
                sql_level.push(name);
            } else {
                on_server.insert(name);
            }
        }
    }
    let cache_intact = conn
        .cached_statement_names()
        .iter()
        .all(|n| on_server.contains(n));
    let mut sql = String::new();
    if !cache_intact {
        sql.push_str("DEALLOCATE ALL;");
        conn.clear_statement_cache();
    } else {
        for name in &sql_level {
            sql.push_str("DEALLOCATE ");
            push_ident(&mut sql, name);
            sql.push(';');
        }
    }
    if !sql.is_empty() {
        conn.batch_execute(&sql).await?;
    }
    // `RESET ALL` brings back a role's or database's DateStyle/IntervalStyle; the server
    // reported it, and text decoding needs ours again (no round trip when nothing changed).
    conn.pin_text_settings().await?;
    Ok(())
}

/// Appends `name` as a quoted SQL identifier (double quotes doubled), so any name the server
/// reports is passed back verbatim and cannot break out of the statement.
fn push_ident(out: &mut String, name: &str) {
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        let mut s = String::new();
        push_ident(&mut s, r#"we"ird; DROP TABLE x"#);
        assert_eq!(s, r#""we""ird; DROP TABLE x""#);
    }

    #[test]
    fn fast_is_the_default() {
        assert_eq!(RecyclingMethod::default(), RecyclingMethod::Fast);
    }
}
