use super::*;

fn db(code: &str, message: &str) -> DbError {
    DbError {
        severity: "ERROR".into(),
        severity_nonlocalized: Some("ERROR".into()),
        code: code.into(),
        message: message.into(),
        ..Default::default()
    }
}

#[test]
fn display_reads_like_psql() {
    let e = DbError {
        hint: Some("create it".into()),
        ..db("42P01", "relation \"x\" does not exist")
    };
    assert_eq!(
        e.to_string(),
        "ERROR:  relation \"x\" does not exist (SQLSTATE 42P01)\nHINT:  create it"
    );
    let err = Error::from(e);
    assert_eq!(err.code(), Some("42P01"));
    assert!(!err.is_closed());
}

#[test]
fn display_without_optional_fields_is_one_line() {
    assert_eq!(
        db("22012", "division by zero").to_string(),
        "ERROR:  division by zero (SQLSTATE 22012)"
    );
}

#[test]
fn display_has_position_detail_hint_query_context_in_libpq_order() {
    let e = DbError {
        position: Some(15),
        detail: Some("Key (id)=(1) already exists.".into()),
        hint: Some("Pick another id.".into()),
        where_: Some("SQL function \"f\" statement 1".into()),
        // Left out of the default display, as psql leaves them out.
        schema: Some("public".into()),
        constraint: Some("u_pkey".into()),
        file: Some("nbtinsert.c".into()),
        ..db(
            "23505",
            "duplicate key value violates unique constraint \"u_pkey\"",
        )
    };
    assert_eq!(
        e.to_string(),
        "ERROR:  duplicate key value violates unique constraint \"u_pkey\" at character 15 \
         (SQLSTATE 23505)\n\
         DETAIL:  Key (id)=(1) already exists.\n\
         HINT:  Pick another id.\n\
         CONTEXT:  SQL function \"f\" statement 1"
    );
}

#[test]
fn display_draws_a_caret_under_an_internal_query() {
    // What psql prints for `DO $$ BEGIN PERFORM nosuchcol FROM pg_class; END $$`.
    let e = DbError {
        internal_position: Some(8),
        internal_query: Some("SELECT nosuchcol FROM pg_class".into()),
        where_: Some("PL/pgSQL function inline_code_block line 1 at PERFORM".into()),
        ..db("42703", "column \"nosuchcol\" does not exist")
    };
    assert_eq!(
        e.to_string(),
        "ERROR:  column \"nosuchcol\" does not exist (SQLSTATE 42703)\n\
         LINE 1: SELECT nosuchcol FROM pg_class\n\
         \x20              ^\n\
         QUERY:  SELECT nosuchcol FROM pg_class\n\
         CONTEXT:  PL/pgSQL function inline_code_block line 1 at PERFORM"
    );
    // Without the query text the internal position goes on the first line.
    let e = DbError {
        internal_position: Some(8),
        ..db("42703", "column \"nosuchcol\" does not exist")
    };
    assert_eq!(
        e.to_string(),
        "ERROR:  column \"nosuchcol\" does not exist at character 8 (SQLSTATE 42703)"
    );
    // The statement's own position wins over the internal one.
    let e = DbError {
        position: Some(3),
        internal_position: Some(8),
        internal_query: Some("SELECT 1".into()),
        ..db("42703", "m")
    };
    assert_eq!(
        e.to_string(),
        "ERROR:  m at character 3 (SQLSTATE 42703)\nQUERY:  SELECT 1"
    );
}

/// The `LINE`/caret lines drawn for an internal query: what lies between the first line and
/// `QUERY:`.
fn cursor_of(query: &str, position: u32) -> String {
    let e = DbError {
        internal_position: Some(position),
        internal_query: Some(query.into()),
        ..db("42601", "m")
    };
    let shown = e.to_string();
    let (before_query, _) = shown.split_once("\nQUERY:  ").expect("a QUERY line");
    before_query
        .split_once('\n')
        .map_or("", |(_, cursor)| cursor)
        .to_string()
}

#[test]
fn caret_follows_libpq_on_lines_tabs_and_long_lines() {
    // Third line, counted across \n, \r\n and \r alike; tabs become spaces.
    assert_eq!(
        cursor_of("SELECT 1,\n\t2,\r\n  3 +\r  x", 24),
        "LINE 4:   x\n          ^"
    );
    // A position at the very end (after the last character) still draws; one past does not.
    assert_eq!(cursor_of("SELECT", 7), "LINE 1: SELECT\n              ^");
    assert_eq!(cursor_of("SELECT", 8), "");
    assert_eq!(cursor_of("SELECT", 0), "");
    // Long line, error near the start: cut on the right only.
    let long = format!("SELECT {}", "x, ".repeat(40));
    let shown = cursor_of(&long, 8);
    let (line, caret) = shown.split_once('\n').expect("two lines");
    assert_eq!(line, format!("LINE 1: {}...", &long[..60]));
    assert_eq!(caret, format!("{}^", " ".repeat(8 + 7)));
    // Error near the end: cut on the left so 60 characters end 10 after the caret.
    let pos = long.len() as u32 - 2;
    let shown = cursor_of(&long, pos);
    let (line, caret) = shown.split_once('\n').expect("two lines");
    let loc = pos as usize - 1;
    let end = long.len().min(loc + 10);
    assert_eq!(line, format!("LINE 1: ...{}", &long[end - 60..end]));
    assert_eq!(caret, format!("{}^", " ".repeat(11 + loc - (end - 60))));
    // Non-ASCII text is counted in characters, not bytes.
    assert_eq!(
        cursor_of("SELECT 'é', nope", 13),
        "LINE 1: SELECT 'é', nope\n                    ^"
    );
}

type OnDb = fn(&DbError) -> bool;
type OnErr = fn(&Error) -> bool;

#[test]
fn sqlstate_accessors_and_predicates_agree() {
    let cases: [(SqlState, OnDb, OnErr); 8] = [
        (
            SqlState::UNIQUE_VIOLATION,
            DbError::is_unique_violation,
            Error::is_unique_violation,
        ),
        (
            SqlState::FOREIGN_KEY_VIOLATION,
            DbError::is_foreign_key_violation,
            Error::is_foreign_key_violation,
        ),
        (
            SqlState::SERIALIZATION_FAILURE,
            DbError::is_serialization_failure,
            Error::is_serialization_failure,
        ),
        (
            SqlState::DEADLOCK_DETECTED,
            DbError::is_deadlock,
            Error::is_deadlock,
        ),
        (
            SqlState::QUERY_CANCELED,
            DbError::is_query_canceled,
            Error::is_query_canceled,
        ),
        (
            SqlState::READ_ONLY_SQL_TRANSACTION,
            DbError::is_read_only_transaction,
            Error::is_read_only_transaction,
        ),
        (
            SqlState::LOCK_NOT_AVAILABLE,
            DbError::is_lock_not_available,
            Error::is_lock_not_available,
        ),
        (
            SqlState::UNDEFINED_TABLE,
            DbError::is_undefined_table,
            Error::is_undefined_table,
        ),
    ];
    for (i, (state, on_db, on_err)) in cases.iter().enumerate() {
        let d = db(state.code(), "m");
        assert_eq!(d.sqlstate(), Some(*state));
        let e = Error::from(d.clone());
        assert_eq!(e.sqlstate(), Some(*state));
        assert_eq!(e.code(), Some(state.code()));
        // Each predicate says yes to its own code and no to every other one.
        for (j, (_, other_db, other_err)) in cases.iter().enumerate() {
            assert_eq!(other_db(&d), i == j, "{state:?} / {j}");
            assert_eq!(other_err(&e), i == j, "{state:?} / {j}");
        }
        // Never true for an error that is not the server's.
        assert!(!on_err(&Error::Timeout("t")));
        assert!(!on_err(&Error::Conversion(state.code().to_string())));
        assert!(on_db(&d));
    }
    // A malformed code from the server: no SqlState, no panic, every predicate false.
    let d = db("oops", "m");
    assert_eq!(d.sqlstate(), None);
    assert!(!d.is_unique_violation());
    assert_eq!(Error::from(d).code(), Some("oops"));
}

#[test]
fn timeout_and_row_count_predicates() {
    for what in ["connect", "query", "cancel"] {
        let e = Error::Timeout(what);
        assert!(e.is_timeout());
        assert!(!e.is_row_count() && !e.is_closed());
        assert_eq!(e.sqlstate(), None);
    }
    let e = Error::RowCount {
        call: "query_one",
        expected: "exactly one row",
        got: 0,
    };
    assert_eq!(
        e.to_string(),
        "query_one expected exactly one row, the query returned 0"
    );
    assert!(e.is_row_count());
    assert!(!e.is_timeout() && !e.is_closed());
    assert_eq!(e.code(), None);
    assert!(!Error::Conversion("x".into()).is_row_count());
    assert!(!Error::from(db("57014", "canceling statement due to statement timeout")).is_timeout());
}

#[test]
fn fatal_marks_closed() {
    let e = DbError {
        severity: "FATAL".into(),
        code: "57P01".into(),
        ..Default::default()
    };
    assert!(Error::from(e).is_closed());
}
