//! The pool's error type: every failure says which step failed.

use std::fmt;

use pgwire_lite::SqlState;

/// Which of the pool's three timeouts ran out.
///
/// Each has its own knob on the builder and its own default, so a log line tells whether the
/// pool was exhausted (`Wait`), the server was slow to accept a connection (`Create`), or an
/// idle connection was slow to be checked or cleaned (`Recycle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeoutKind {
    /// No connection slot became free within the wait timeout (every slot was busy).
    Wait,
    /// Opening a new connection (TCP, TLS, startup, authentication) took longer than the
    /// create timeout.
    Create,
    /// Preparing an idle connection for the next borrower (draining, rolling back, running the
    /// recycling method's SQL) took longer than the recycle timeout.
    Recycle,
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutKind::Wait => "timed out waiting for a free connection slot (wait timeout)",
            TimeoutKind::Create => "timed out opening a new connection (create timeout)",
            TimeoutKind::Recycle => "timed out recycling an idle connection (recycle timeout)",
        })
    }
}

/// Everything the pool can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// One of the pool's timeouts ran out; the kind says which.
    #[error("{0}")]
    Timeout(TimeoutKind),
    /// The pool was closed with [`PsqlPool::close`](crate::PsqlPool::close): no new borrows.
    #[error("the pool is closed")]
    Closed,
    /// An operation ran before [`PsqlPool::startup`](crate::PsqlPool::startup) succeeded.
    #[error("the pool is not started: call PsqlPool::startup() before any other operation")]
    NotStarted,
    /// `COMMIT` found the transaction already failed (an earlier statement in it raised an
    /// error), so PostgreSQL rolled it back instead: nothing was committed.
    #[error("the transaction had failed, so COMMIT rolled it back: nothing was committed")]
    RolledBack,
    /// `COMMIT` with no transaction open: it was never begun, was already committed or rolled
    /// back, or was rolled back because its guard was dropped. Nothing was committed.
    #[error("COMMIT outside a transaction: there was nothing to commit")]
    NoTransaction,
    /// A savepoint or LISTEN channel name the pool cannot quote safely: empty, longer than
    /// PostgreSQL's 63-byte identifier limit (which it would silently truncate), or with a
    /// NUL byte. Nothing was sent to the server.
    #[error("invalid {what} name {name:?}: {why}")]
    InvalidName {
        /// What the name is for: `"savepoint"` or `"channel"`.
        what: &'static str,
        /// The name (its first 80 characters).
        name: String,
        /// Why it was refused.
        why: &'static str,
    },
    /// A connection hook failed (returned an error or panicked). Only `after_connect` fails a
    /// checkout: its connection is closed and the checkout (or `startup`) returns this. A
    /// failing `before_acquire` or `after_release` just closes that connection.
    #[error("the {hook} hook failed: {source}")]
    Hook {
        /// Which hook: `"after_connect"`.
        hook: &'static str,
        /// The hook's error, or the panic's message.
        #[source]
        source: crate::hooks::HookError,
    },
    /// A builder value or the DSN is invalid. The message names the bad part and never
    /// contains the password.
    #[error("invalid pool configuration: {0}")]
    Config(#[from] pgwire_lite::ConfigError),
    /// The database or the connection failed: the server's own error (wrong password, SQL
    /// error, refused connection, ...), unchanged.
    #[error(transparent)]
    Backend(#[from] pgwire_lite::Error),
}

impl Error {
    /// True for every timeout: one of the pool's own ([`Error::Timeout`], whatever the kind), or
    /// a connection's ([`pgwire_lite::Error::Timeout`], [`pgwire_lite::Error::QueryTimeout`]) passed through
    /// as [`Error::Backend`]. [`Error::timeout_kind`] tells the pool's three apart.
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Timeout(_) => true,
            Error::Backend(e) => e.is_timeout(),
            _ => false,
        }
    }

    /// The timeout kind, if this is a timeout.
    pub fn timeout_kind(&self) -> Option<TimeoutKind> {
        match self {
            Error::Timeout(k) => Some(*k),
            _ => None,
        }
    }

    /// The backend error, if this is one (e.g. to ask for its SQLSTATE with `code()`).
    pub fn as_backend(&self) -> Option<&pgwire_lite::Error> {
        match self {
            Error::Backend(e) => Some(e),
            _ => None,
        }
    }

    /// The SQLSTATE of a database error passed through as [`Error::Backend`], e.g.
    /// `err.sqlstate() == Some(SqlState::UNIQUE_VIOLATION)`.
    pub fn sqlstate(&self) -> Option<SqlState> {
        self.as_backend().and_then(pgwire_lite::Error::sqlstate)
    }

    /// True for a [`pgwire_lite::Error::RowCount`] passed through: `query_one` or `query_opt`
    /// got a number of rows it does not accept.
    pub fn is_row_count(&self) -> bool {
        self.as_backend()
            .is_some_and(pgwire_lite::Error::is_row_count)
    }

    pub(crate) fn config(what: impl Into<String>) -> Error {
        Error::Config(pgwire_lite::ConfigError::new(what))
    }
}

/// The SQLSTATE predicates of [`pgwire_lite::Error`], answered for the error it wraps, false
/// for the pool's own kinds.
macro_rules! forward_predicates {
    ($($name:ident),* $(,)?) => {
        impl Error {
            $(
                #[doc = concat!("[`pgwire_lite::Error::", stringify!($name), "`] of the wrapped \
                    backend error; false for the pool's own kinds.")]
                pub fn $name(&self) -> bool {
                    self.as_backend().is_some_and(pgwire_lite::Error::$name)
                }
            )*
        }
    };
}

forward_predicates!(
    is_unique_violation,
    is_foreign_key_violation,
    is_serialization_failure,
    is_deadlock,
    is_query_canceled,
    is_read_only_transaction,
    is_lock_not_available,
    is_undefined_table,
);

/// The name psqlpy's documentation uses (`PoolError`); the same type as [`Error`].
pub type PoolError = Error;

/// The pool's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_step() {
        assert!(
            Error::Timeout(TimeoutKind::Wait)
                .to_string()
                .contains("wait timeout")
        );
        assert!(
            Error::Timeout(TimeoutKind::Create)
                .to_string()
                .contains("create timeout")
        );
        assert!(
            Error::Timeout(TimeoutKind::Recycle)
                .to_string()
                .contains("recycle timeout")
        );
        assert!(Error::NotStarted.to_string().contains("startup()"));
        let e = Error::config("max_db_pool_size must be at least 2, got 1");
        assert_eq!(
            e.to_string(),
            "invalid pool configuration: max_db_pool_size must be at least 2, got 1"
        );
        assert_eq!(
            Error::Timeout(TimeoutKind::Create).timeout_kind(),
            Some(TimeoutKind::Create)
        );
        assert!(Error::Closed.timeout_kind().is_none());
    }

    fn db(code: &str) -> Error {
        Error::Backend(pgwire_lite::Error::from(pgwire_lite::DbError {
            severity: "ERROR".into(),
            code: code.into(),
            message: "m".into(),
            ..Default::default()
        }))
    }

    #[test]
    fn predicates_forward_to_the_backend_error() {
        type Predicate = fn(&Error) -> bool;
        let cases: [(&str, Predicate); 8] = [
            ("23505", Error::is_unique_violation),
            ("23503", Error::is_foreign_key_violation),
            ("40001", Error::is_serialization_failure),
            ("40P01", Error::is_deadlock),
            ("57014", Error::is_query_canceled),
            ("25006", Error::is_read_only_transaction),
            ("55P03", Error::is_lock_not_available),
            ("42P01", Error::is_undefined_table),
        ];
        for (i, (code, _)) in cases.iter().enumerate() {
            let e = db(code);
            assert_eq!(e.sqlstate(), SqlState::from_code(code));
            for (j, (_, pred)) in cases.iter().enumerate() {
                assert_eq!(pred(&e), i == j, "{code} / {j}");
            }
            assert!(!e.is_timeout() && !e.is_row_count());
        }
        for own in [Error::Closed, Error::NotStarted, Error::RolledBack] {
            assert!(cases.iter().all(|(_, pred)| !pred(&own)), "{own}");
            assert_eq!(own.sqlstate(), None);
        }
    }

    #[test]
    fn timeouts_and_row_counts_of_either_layer() {
        assert!(Error::Timeout(TimeoutKind::Wait).is_timeout());
        let query = Error::Backend(pgwire_lite::Error::Timeout("query"));
        assert!(query.is_timeout());
        assert_eq!(query.timeout_kind(), None);
        let rows = Error::Backend(pgwire_lite::Error::RowCount {
            call: "query_one",
            expected: "exactly one row",
            got: 2,
        });
        assert!(rows.is_row_count() && !rows.is_timeout());
        assert_eq!(
            rows.to_string(),
            "query_one expected exactly one row, the query returned 2"
        );
        assert!(!Error::Closed.is_timeout() && !Error::Closed.is_row_count());
    }
}
