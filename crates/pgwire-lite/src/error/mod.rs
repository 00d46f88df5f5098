//! One error type for the whole crate.
//!
//! Callers ask predicates (`code()`, `sqlstate()`, `is_unique_violation()`, `is_closed()`,
//! `is_timeout()`, ...) instead of matching strings. Every predicate on [`Error`] is false for
//! the kinds it does not concern, so a caller can ask any of them of any error.
//! Nothing in here ever carries a password or a SCRAM key: messages are built from
//! static text, server-sent fields and user-visible names only.

use std::fmt;

mod display;
mod sqlstate;

pub use sqlstate::SqlState;

/// A boxed error, as returned by [`ToSql`](crate::types::ToSql) and
/// [`FromSql`](crate::types::FromSql) implementations.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The socket failed (connect refused, reset, EOF in the middle of a message, ...).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The server sent bytes that do not follow the protocol, or sent something we did not expect
    /// at this point. The connection is unusable afterwards.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The server answered with an ErrorResponse.
    #[error("{0}")]
    Db(Box<DbError>),
    /// Authentication could not be carried out on our side: an unsupported method, a server
    /// that could not prove it knows the password, a password that is needed but missing.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The configuration (DSN, builder values, environment) is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The connection is closed or broken and cannot be used any more.
    #[error("connection closed: {0}")]
    Closed(&'static str),
    /// An operation did not finish in time. Every timeout this crate enforces is this variant,
    /// which [`Error::is_timeout`] answers for. (A server-side `statement_timeout` is a
    /// database error, `57014`: [`Error::is_query_canceled`].)
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// The connection's `query_timeout` elapsed. The outcome says whether the statement took
    /// effect, as the response drained after the cancellation told.
    #[error("timed out: query_timeout elapsed; {}", .0.describe())]
    QueryTimeout(TimeoutOutcome),
    /// A Rust value could not be converted to or from a PostgreSQL value.
    #[error("{0}")]
    Conversion(String),
    /// The server started something this client does not support (COPY TO STDOUT, say). The
    /// connection stays usable.
    #[error("not supported: {0}")]
    Unsupported(&'static str),
    /// A query returned a number of rows the call does not accept (`query_one` got none or
    /// several, `query_opt` several). The query itself succeeded; the connection stays usable.
    #[error("{call} expected {expected}, the query returned {got}")]
    RowCount {
        /// The call that checked the count, e.g. `"query_one"`.
        call: &'static str,
        /// The count it accepts, e.g. `"exactly one row"`.
        expected: &'static str,
        /// How many rows the query returned.
        got: usize,
    },
}

impl Error {
    /// The SQLSTATE code of a database error, e.g. `Some("28P01")` for a wrong password.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Db(db) => Some(db.code()),
            _ => None,
        }
    }

    /// The SQLSTATE of a database error as a [`SqlState`], to compare with its constants:
    /// `err.sqlstate() == Some(SqlState::UNIQUE_VIOLATION)`.
    pub fn sqlstate(&self) -> Option<SqlState> {
        self.as_db_error().and_then(DbError::sqlstate)
    }

    /// The database error, if this is one.
    pub fn as_db_error(&self) -> Option<&DbError> {
        match self {
            Error::Db(db) => Some(db),
            _ => None,
        }
    }

    /// True when the connection can no longer be used (closed socket, I/O failure, protocol
    /// violation, or a FATAL/PANIC from the server).
    pub fn is_closed(&self) -> bool {
        match self {
            Error::Io(_) | Error::Protocol(_) | Error::Closed(_) => true,
            Error::Db(db) => db.is_fatal(),
            _ => false,
        }
    }

    /// True when a cached prepared statement no longer matched the server ("cached plan must
    /// not change result type", or the statement was deallocated behind the cache's back):
    /// nothing was executed, and preparing the statement again and re-running it is safe.
    pub fn is_stale_statement(&self) -> bool {
        crate::connection::is_stale_statement(self)
    }

    /// True for every [`Error::Timeout`] and [`Error::QueryTimeout`]: a connect, query or
    /// other deadline this crate enforces ran out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout(_) | Error::QueryTimeout(_))
    }

    /// For a query timeout, what became of the statement.
    pub fn timeout_outcome(&self) -> Option<TimeoutOutcome> {
        match self {
            Error::QueryTimeout(o) => Some(*o),
            _ => None,
        }
    }

    /// True for [`Error::RowCount`]: the query ran, but returned a number of rows the call
    /// does not accept.
    pub fn is_row_count(&self) -> bool {
        matches!(self, Error::RowCount { .. })
    }

    pub(crate) fn protocol(msg: impl Into<String>) -> Error {
        Error::Protocol(msg.into())
    }

    pub(crate) fn auth(msg: impl Into<String>) -> Error {
        Error::Auth(msg.into())
    }
}

impl From<DbError> for Error {
    fn from(e: DbError) -> Self {
        Error::Db(Box::new(e))
    }
}

/// What became of the statement whose `query_timeout` elapsed, as the drained response tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutOutcome {
    /// The statement did not take effect: the server cancelled it (or it failed, or it was
    /// never sent). Inside a transaction, the transaction is now aborted.
    Cancelled,
    /// The statement completed before the cancellation reached it: its effects stand (inside
    /// a transaction, they are committed with it).
    Completed,
    /// The connection failed before the outcome could be read: the statement may or may not
    /// have taken effect.
    Unknown,
}

impl TimeoutOutcome {
    /// A short description for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            TimeoutOutcome::Cancelled => "the query was cancelled and did not take effect",
            TimeoutOutcome::Completed => {
                "the query completed before the cancellation arrived; its effects stand"
            }
            TimeoutOutcome::Unknown => {
                "the connection failed before the outcome was known; the query may have taken \
                 effect"
            }
        }
    }
}

/// A configuration error. It names the part of the input that is wrong, and never contains
/// a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}")]
pub struct ConfigError {
    what: String,
}

impl ConfigError {
    /// A new configuration error with the given description.
    pub fn new(what: impl Into<String>) -> Self {
        ConfigError { what: what.into() }
    }

    /// The description of what is wrong.
    pub fn message(&self) -> &str {
        &self.what
    }
}

/// Every field of a PostgreSQL ErrorResponse (or NoticeResponse).
///
/// Field names follow the "Error and Notice Message Fields" page of the protocol documentation.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct DbError {
    /// `S`: ERROR, FATAL, PANIC (or WARNING, NOTICE, ... in a notice), possibly localized.
    pub severity: String,
    /// `V`: the severity, never localized (PostgreSQL 9.6+).
    pub severity_nonlocalized: Option<String>,
    /// `C`: the SQLSTATE code.
    pub code: String,
    /// `M`: the primary message.
    pub message: String,
    /// `D`: detail.
    pub detail: Option<String>,
    /// `H`: hint.
    pub hint: Option<String>,
    /// `P`: 1-based character position in the query string.
    pub position: Option<u32>,
    /// `p`: position in an internally generated query.
    pub internal_position: Option<u32>,
    /// `q`: the internally generated query.
    pub internal_query: Option<String>,
    /// `W`: the context (call stack) of the error.
    pub where_: Option<String>,
    /// `s`: schema name.
    pub schema: Option<String>,
    /// `t`: table name.
    pub table: Option<String>,
    /// `c`: column name.
    pub column: Option<String>,
    /// `d`: data type name.
    pub datatype: Option<String>,
    /// `n`: constraint name.
    pub constraint: Option<String>,
    /// `F`: source file of the server.
    pub file: Option<String>,
    /// `L`: source line of the server.
    pub line: Option<u32>,
    /// `R`: source routine of the server.
    pub routine: Option<String>,
    /// Not a protocol field: the server that sent the error (`host:port`, or the socket path),
    /// set for errors during connection startup, where several hosts or a pool's many
    /// connections make "which server refused?" the first question.
    pub server: Option<String>,
}

impl DbError {
    /// The SQLSTATE code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The SQLSTATE code as a [`SqlState`]; `None` only if the server sent a malformed one.
    pub fn sqlstate(&self) -> Option<SqlState> {
        SqlState::from_code(&self.code)
    }

    /// True when the SQLSTATE is `state`.
    fn is(&self, state: SqlState) -> bool {
        self.code == state.code()
    }

    /// The primary message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The non-localized severity where the server sent one, else the localized one.
    pub fn severity(&self) -> &str {
        self.severity_nonlocalized
            .as_deref()
            .unwrap_or(&self.severity)
    }

    /// FATAL and PANIC end the session.
    pub fn is_fatal(&self) -> bool {
        matches!(self.severity(), "FATAL" | "PANIC")
    }
}

impl fmt::Debug for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("DbError");
        d.field("severity", &self.severity())
            .field("code", &self.code)
            .field("message", &self.message);
        // Only the fields that are present, so the output stays readable.
        macro_rules! opt {
            ($($name:ident),*) => { $( if let Some(v) = &self.$name { d.field(stringify!($name), v); } )* };
        }
        opt!(
            detail,
            hint,
            position,
            internal_position,
            internal_query,
            where_,
            schema,
            table,
            column,
            datatype,
            constraint,
            file,
            line,
            routine
        );
        d.finish()
    }
}

impl std::error::Error for DbError {}

/// One predicate per common SQLSTATE, on [`DbError`] and, false for every other kind, on
/// [`Error`], so the two never disagree.
macro_rules! sqlstate_predicates {
    ($($(#[$doc:meta])* $name:ident => $state:ident;)*) => {
        impl DbError {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> bool {
                    self.is(SqlState::$state)
                }
            )*
        }

        impl Error {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> bool {
                    self.as_db_error().is_some_and(DbError::$name)
                }
            )*
        }
    };
}

sqlstate_predicates! {
    /// `23505` [`SqlState::UNIQUE_VIOLATION`]: a duplicate key.
    is_unique_violation => UNIQUE_VIOLATION;
    /// `23503` [`SqlState::FOREIGN_KEY_VIOLATION`]: a missing or still-referenced key.
    is_foreign_key_violation => FOREIGN_KEY_VIOLATION;
    /// `40001` [`SqlState::SERIALIZATION_FAILURE`]: the transaction may succeed if retried.
    is_serialization_failure => SERIALIZATION_FAILURE;
    /// `40P01` [`SqlState::DEADLOCK_DETECTED`]: the transaction may succeed if retried.
    is_deadlock => DEADLOCK_DETECTED;
    /// `57014` [`SqlState::QUERY_CANCELED`]: a cancel request or the server's
    /// `statement_timeout` stopped the statement.
    is_query_canceled => QUERY_CANCELED;
    /// `25006` [`SqlState::READ_ONLY_SQL_TRANSACTION`]: a write in a read-only transaction, or
    /// on a standby.
    is_read_only_transaction => READ_ONLY_SQL_TRANSACTION;
    /// `55P03` [`SqlState::LOCK_NOT_AVAILABLE`]: `NOWAIT` or `lock_timeout` gave up on a lock.
    is_lock_not_available => LOCK_NOT_AVAILABLE;
    /// `42P01` [`SqlState::UNDEFINED_TABLE`]: no such table or view.
    is_undefined_table => UNDEFINED_TABLE;
}

#[cfg(test)]
mod tests;
