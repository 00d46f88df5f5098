//! How a [`DbError`] prints: the way psql prints a server error at its default verbosity, which
//! is libpq's `PQresultErrorMessage`, plus the SQLSTATE on the first line.
//!
//! ```text
//! ERROR:  function nosuchfn(integer) does not exist at character 8 (SQLSTATE 42883)
//! HINT:  No function matches the given name and argument types. You might need to add explicit type casts.
//! ```
//!
//! psql draws `LINE 1: SELECT nosuchfn(1)` and a caret under the position; it can because it
//! kept the query text, which an error does not carry. libpq prints `at character N` instead in
//! that case, and so do we. For an error inside an internally generated query (PL/pgSQL, say)
//! the server sends that query's text, so the caret line is drawn as libpq draws it.

use std::fmt;

use super::DbError;

/// libpq's width limit for the `LINE n:` excerpt, in characters.
const DISPLAY_SIZE: usize = 60;
/// libpq keeps at least this many characters right of the caret when it cuts a long line.
const MIN_RIGHT_CUT: usize = 10;

/// Reads like psql: `ERROR:  relation "x" does not exist at character 15 (SQLSTATE 42P01)`,
/// then the `LINE`/caret, `DETAIL:`, `HINT:`, `QUERY:` and `CONTEXT:` lines the server's fields
/// fill, in libpq's order.
impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // libpq's prefix for an error while connecting.
        if let Some(server) = &self.server {
            write!(f, "connection to server at {server} failed: ")?;
        }
        write!(f, "{}:  {}", self.severity, self.message)?;
        // As libpq: the statement's position wins; an internal query's position is drawn as a
        // caret when its text came along, else it too goes on the first line.
        let cursor = match (self.position, self.internal_position, &self.internal_query) {
            (Some(p), _, _) | (None, Some(p), None) => {
                write!(f, " at character {p}")?;
                None
            }
            (None, Some(p), Some(q)) => Some((q, p)),
            (None, None, _) => None,
        };
        if !self.code.is_empty() {
            write!(f, " (SQLSTATE {})", self.code)?;
        }
        if let Some((query, position)) = cursor {
            write_cursor(f, query, position)?;
        }
        for (label, value) in [
            ("DETAIL", &self.detail),
            ("HINT", &self.hint),
            ("QUERY", &self.internal_query),
            ("CONTEXT", &self.where_),
        ] {
            if let Some(v) = value {
                write!(f, "\n{label}:  {v}")?;
            }
        }
        Ok(())
    }
}

/// libpq's `reportErrorPosition`: the line of `query` holding the 1-based character `position`,
/// cut to [`DISPLAY_SIZE`] around it, and a caret under it. Every character counts as one column
/// (libpq asks the encoding for East Asian double widths; we do not carry a width table). A
/// position past the end draws nothing, as in libpq.
fn write_cursor(f: &mut fmt::Formatter<'_>, query: &str, position: u32) -> fmt::Result {
    let Some(loc) = usize::try_from(position)
        .ok()
        .and_then(|p| p.checked_sub(1))
    else {
        return Ok(());
    };
    let chars: Vec<char> = query
        .chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .collect();
    if loc > chars.len() {
        return Ok(());
    }
    // The line holding `loc`: each `\r` or `\n` ends a line, a `\r\n` pair ends one.
    let (mut line, mut beg, mut end) = (1, 0, chars.len());
    for (i, &c) in chars.iter().enumerate() {
        if c != '\r' && c != '\n' {
            continue;
        }
        if i >= loc {
            end = i;
            break;
        }
        if c == '\r' || i == 0 || chars[i - 1] != '\r' {
            line += 1;
        }
        beg = i + 1;
    }
    let (mut cut_left, mut cut_right) = (false, false);
    if end - beg > DISPLAY_SIZE {
        if beg + DISPLAY_SIZE >= loc + MIN_RIGHT_CUT {
            end = beg + DISPLAY_SIZE;
            cut_right = true;
        } else {
            if loc + MIN_RIGHT_CUT < end {
                end = loc + MIN_RIGHT_CUT;
                cut_right = true;
            }
            if end - beg > DISPLAY_SIZE {
                beg = end - DISPLAY_SIZE;
                cut_left = true;
            }
        }
    }
    let prefix = format!("LINE {line}: {}", if cut_left { "..." } else { "" });
    write!(f, "\n{prefix}")?;
    for c in &chars[beg..end] {
        write!(f, "{c}")?;
    }
    if cut_right {
        f.write_str("...")?;
    }
    let indent = prefix.chars().count() + (loc - beg);
    write!(f, "\n{:indent$}^", "")
}
