//! [`SqlState`]: a SQLSTATE code as a value, with a named constant for every code PostgreSQL
//! defines.
//!
//! The constants and the name table live in `sqlstate/table.rs`, generated from PostgreSQL's
//! `errcodes.txt` by `crates/pgwire-lite/gen/sqlstate.py` (its header says how to regenerate).
//! This file is the hand-written part.

use std::fmt;

/// A SQLSTATE code: five characters, each a digit or an upper-case ASCII letter.
///
/// Every code of PostgreSQL's `errcodes.txt` has a constant named after its condition name
/// ([`SqlState::UNIQUE_VIOLATION`] is `23505`, [`SqlState::SERIALIZATION_FAILURE`] is `40001`).
/// A code the table does not know (a newer server's) is still a valid `SqlState`; only
/// [`SqlState::name`] returns `None` for it.
///
/// The constants work in patterns:
///
/// ```
/// use pgwire_lite::SqlState;
///
/// fn retry(state: Option<SqlState>) -> bool {
///     matches!(state, Some(SqlState::SERIALIZATION_FAILURE | SqlState::DEADLOCK_DETECTED))
/// }
/// assert!(retry(SqlState::from_code("40001")));
/// assert!(!retry(SqlState::from_code("23505")));
/// ```
// The bytes are inline so a state is `Copy`, needs no allocation, and can represent codes the
// table does not list.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SqlState([u8; 5]);

impl SqlState {
    /// The state for `code`, known or not; `None` unless it is five digits or upper-case ASCII
    /// letters.
    pub fn from_code(code: &str) -> Option<SqlState> {
        SqlState::parse(code.as_bytes())
    }

    /// The five-character code, e.g. `"23505"`.
    pub fn code(&self) -> &str {
        // Only `parse` builds a SqlState, and it admits ASCII alone.
        std::str::from_utf8(&self.0).unwrap_or("?????")
    }

    /// PostgreSQL's condition name, the one PL/pgSQL's `EXCEPTION WHEN` takes (e.g.
    /// `"unique_violation"`); `None` for a code the table does not know.
    pub fn name(&self) -> Option<&'static str> {
        TABLE
            .binary_search_by(|(state, _)| state.cmp(self))
            .ok()
            .and_then(|i| TABLE.get(i))
            .map(|(_, name)| *name)
    }

    /// The generic code of this code's class (its first two characters followed by `000`), e.g.
    /// [`SqlState::INTEGRITY_CONSTRAINT_VIOLATION`] for [`SqlState::UNIQUE_VIOLATION`].
    pub fn class(&self) -> SqlState {
        SqlState([self.0[0], self.0[1], b'0', b'0', b'0'])
    }

    const fn parse(b: &[u8]) -> Option<SqlState> {
        if b.len() != 5 {
            return None;
        }
        let mut i = 0;
        while i < 5 {
            if !(b[i].is_ascii_digit() || b[i].is_ascii_uppercase()) {
                return None;
            }
            i += 1;
        }
        Some(SqlState([b[0], b[1], b[2], b[3], b[4]]))
    }

    /// For the generated constants: a malformed code is a compile error, not a runtime one.
    const fn from_static(code: &'static str) -> SqlState {
        match SqlState::parse(code.as_bytes()) {
            Some(state) => state,
            None => panic!("not a SQLSTATE code"),
        }
    }
}

/// The bare code, e.g. `23505`.
impl fmt::Display for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The code and, when known, the condition name: `SqlState(23505 unique_violation)`.
impl fmt::Debug for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SqlState({}", self.code())?;
        if let Some(name) = self.name() {
            write!(f, " {name}")?;
        }
        f.write_str(")")
    }
}

/// One line per code: `CONSTANT = "code", "condition_name";`. Declares each constant and the
/// sorted `TABLE` that [`SqlState::name`] searches.
macro_rules! sqlstates {
    ($($name:ident = $code:literal, $condition:literal;)*) => {
        impl SqlState {
            $(
                #[doc = concat!("`", $code, "`: `", $condition, "`.")]
                pub const $name: SqlState = SqlState::from_static($code);
            )*
        }

        /// Every code of `errcodes.txt` once, sorted by code, with its condition name.
        pub(super) static TABLE: &[(SqlState, &str)] = &[$((SqlState::$name, $condition)),*];
    };
}

mod table;

use table::TABLE;

#[cfg(test)]
mod tests {
    use super::*;

    /// `errcodes.txt` of PostgreSQL 15 has 266 code lines; six of them give a second C macro
    /// name to a code listed on another line, so 260 distinct codes.
    const DISTINCT_CODES: usize = 260;

    #[test]
    fn table_has_every_code_once_and_sorted() {
        assert_eq!(TABLE.len(), DISTINCT_CODES);
        // Strictly increasing: sorted for the binary search, and no code twice.
        assert!(TABLE.windows(2).all(|w| w[0].0 < w[1].0));
        for (state, name) in TABLE {
            assert_eq!(SqlState::from_code(state.code()), Some(*state));
            assert_eq!(state.name(), Some(*name));
            assert!(
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b == b'_' || b.is_ascii_lowercase() || b.is_ascii_digit()),
                "{name}"
            );
        }
        // Every class has its generic `XX000` code in the table.
        for (state, _) in TABLE {
            assert!(state.class().name().is_some(), "{state:?}");
        }
    }

    #[test]
    fn lookups_by_code() {
        let cases = [
            ("23505", SqlState::UNIQUE_VIOLATION, "unique_violation"),
            (
                "40001",
                SqlState::SERIALIZATION_FAILURE,
                "serialization_failure",
            ),
            ("40P01", SqlState::DEADLOCK_DETECTED, "deadlock_detected"),
            ("57014", SqlState::QUERY_CANCELED, "query_canceled"),
            (
                "25006",
                SqlState::READ_ONLY_SQL_TRANSACTION,
                "read_only_sql_transaction",
            ),
            ("42601", SqlState::SYNTAX_ERROR, "syntax_error"),
            (
                "00000",
                SqlState::SUCCESSFUL_COMPLETION,
                "successful_completion",
            ),
            ("XX002", SqlState::INDEX_CORRUPTED, "index_corrupted"),
            (
                "01004",
                SqlState::WARNING_STRING_DATA_RIGHT_TRUNCATION,
                "string_data_right_truncation",
            ),
            (
                "22001",
                SqlState::STRING_DATA_RIGHT_TRUNCATION,
                "string_data_right_truncation",
            ),
        ];
        for (code, state, name) in cases {
            assert_eq!(SqlState::from_code(code), Some(state), "{code}");
            assert_eq!(state.code(), code);
            assert_eq!(state.name(), Some(name), "{code}");
            assert_eq!(state.to_string(), code);
        }
        // Second names are the same code.
        assert_eq!(SqlState::UNDEFINED_DATABASE, SqlState::INVALID_CATALOG_NAME);
        assert_eq!(SqlState::UNDEFINED_DATABASE.code(), "3D000");
        assert_eq!(
            SqlState::DATETIME_VALUE_OUT_OF_RANGE.name(),
            Some("datetime_field_overflow")
        );
        assert_eq!(
            SqlState::UNIQUE_VIOLATION.class(),
            SqlState::INTEGRITY_CONSTRAINT_VIOLATION
        );
        assert_eq!(
            format!("{:?}", SqlState::QUERY_CANCELED),
            "SqlState(57014 query_canceled)"
        );
    }

    #[test]
    fn unknown_and_malformed_codes() {
        // Well-formed but not in PostgreSQL 15's table: a state without a name.
        let future = SqlState::from_code("22ZZ9").expect("well-formed");
        assert_eq!(future.code(), "22ZZ9");
        assert_eq!(future.name(), None);
        assert_eq!(format!("{future:?}"), "SqlState(22ZZ9)");
        assert_eq!(future.class(), SqlState::DATA_EXCEPTION);
        for bad in ["", "2350", "235050", "2350a", "23 05", "2350é", "ＡＢ"] {
            assert_eq!(SqlState::from_code(bad), None, "{bad:?}");
        }
    }
}
