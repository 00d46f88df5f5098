//! The pool's error type: every failure says which step failed.

use std::fmt;

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
    /// True for [`Error::Timeout`], whatever the kind, and for a connection's query timeout
    /// ([`pgwire_lite::Error::QueryTimeout`]).
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

    pub(crate) fn config(what: impl Into<String>) -> Error {
        Error::Config(pgwire_lite::ConfigError::new(what))
    }
}

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
}
