//! tracing: one span per statement, named after OpenTelemetry's database semantic conventions
//! (`db.system.name`, `db.namespace`, `db.operation.name`, `db.query.text`, `server.address`,
//! `server.port`, `db.response.status_code`), and the slow-statement warning.
//!
//! Parameter values are never recorded: only the SQL text, which carries `$1..$n`. With no
//! subscriber (or one that filters the span out) a statement costs one callsite check: the
//! span's fields are not even evaluated, no clock is read unless a slow-statement threshold is
//! set, and nothing is allocated.

use std::time::{Duration, Instant};

use tracing::Instrument;

use super::Connection;
use crate::error::Result;

/// What the spans say about the server, fixed when the connection is opened.
#[derive(Debug, Clone, Default)]
pub(super) struct TraceTarget {
    /// `db.namespace`: the database name.
    pub(super) namespace: Box<str>,
    /// `server.address`: the host name as configured (or the socket directory).
    pub(super) address: Box<str>,
    /// `server.port`.
    pub(super) port: u16,
}

/// The first keyword of `sql` (`SELECT`, `INSERT`, `WITH`, ...), for `db.operation.name`:
/// leading whitespace, `--` and `/* */` comments and opening parentheses are skipped. A slice of
/// `sql`, so nothing is allocated; empty when `sql` has no keyword.
pub(crate) fn operation_name(sql: &str) -> &str {
    let mut rest = sql;
    loop {
        let trimmed = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
        if let Some(after) = trimmed.strip_prefix("--") {
            rest = after.find('\n').map_or("", |i| &after[i..]);
        } else if let Some(after) = trimmed.strip_prefix("/*") {
            // PostgreSQL's block comments nest.
            let mut depth = 1usize;
            let bytes = after.as_bytes();
            let mut i = 0;
            while i < bytes.len() && depth > 0 {
                match (bytes[i], bytes.get(i + 1)) {
                    (b'/', Some(b'*')) => {
                        depth += 1;
                        i += 2;
                    }
                    (b'*', Some(b'/')) => {
                        depth -= 1;
                        i += 2;
                    }
                    _ => i += 1,
                }
            }
            rest = after.get(i..).unwrap_or("");
        } else {
            let end = trimmed
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(trimmed.len());
            return &trimmed[..end];
        }
    }
}

impl Connection {
    /// Runs one statement's request inside its span and reports it if slow; see the module
    /// docs. `sql` is what the span records as `db.query.text`.
    pub(super) async fn traced<T>(
        &mut self,
        sql: &str,
        op: impl AsyncFnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        let span = tracing::debug_span!(
            target: "pgwire_lite::query",
            "query",
            db.system.name = "postgresql",
            db.namespace = &*self.trace.namespace,
            db.operation.name = operation_name(sql),
            db.query.text = sql,
            server.address = &*self.trace.address,
            server.port = self.trace.port,
            db.response.status_code = tracing::field::Empty,
        );
        let slow = self.slow_statement_threshold;
        if span.is_disabled() && slow.is_none() {
            return self.request(op).await;
        }
        let started = slow.map(|_| Instant::now());
        let r = self.request(op).instrument(span.clone()).await;
        if let Err(e) = &r {
            if let Some(code) = e.code() {
                span.record("db.response.status_code", code);
            }
        }
        if let (Some(limit), Some(started)) = (slow, started) {
            let elapsed = started.elapsed();
            if elapsed >= limit {
                slow_statement(&span, sql, elapsed, limit);
            }
        }
        r
    }
}

/// The slow-statement warning, inside the statement's span when that is enabled.
fn slow_statement(span: &tracing::Span, sql: &str, elapsed: Duration, limit: Duration) {
    tracing::warn!(
        target: "pgwire_lite::slow",
        parent: span,
        elapsed_ms = elapsed.as_secs_f64() * 1e3,
        threshold_ms = limit.as_secs_f64() * 1e3,
        db.operation.name = operation_name(sql),
        db.query.text = sql,
        "slow statement"
    );
}

#[cfg(test)]
mod tests {
    use super::operation_name;

    #[test]
    fn the_first_keyword_without_comments_or_parentheses() {
        for (sql, op) in [
            ("SELECT 1", "SELECT"),
            ("  \n\tinsert into t values ($1)", "insert"),
            ("-- note\nUPDATE t SET x = 1", "UPDATE"),
            ("/* a /* nested */ comment */ DELETE FROM t", "DELETE"),
            ("((SELECT 1) UNION (SELECT 2))", "SELECT"),
            ("WITH x AS (SELECT 1) SELECT * FROM x", "WITH"),
            ("BEGIN;", "BEGIN"),
            ("", ""),
            ("   ", ""),
            ("-- only a comment", ""),
            ("/* unterminated", ""),
            ("ß SELECT", ""),
        ] {
            assert_eq!(operation_name(sql), op, "{sql:?}");
        }
    }
}
