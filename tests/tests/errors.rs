//! Server errors against the real server: their `Display` reads as psql prints them, their
//! SQLSTATE matches the generated constants, and the constants match PostgreSQL's own
//! `errcodes.txt`.

use std::process::Command;

use pg_harness::cluster;
use pgwire_lite::{Config, Connection, DbError, SqlState};

async fn admin() -> Connection {
    let cfg: Config = cluster().admin_url().parse().expect("harness URL parses");
    Connection::connect(&cfg).await.expect("connect")
}

/// What psql prints on stderr for `sql` at `verbosity`, without its `psql:<stdin>:N: ` prefix.
fn psql_error(sql: &str, verbosity: &str) -> String {
    let script = format!("\\set VERBOSITY {verbosity}\n{sql}\n");
    let err = cluster()
        .psql_with(&cluster().admin_url(), &script)
        .expect_err("psql must fail on this statement");
    // psql_with appends psql's exit status in parentheses.
    let err = err.rsplit_once(" (exit status").map_or(&*err, |(e, _)| e);
    let start = err.find("ERROR:  ").expect("an ERROR line");
    err[start..].to_string()
}

/// The server's error for `sql`, sent as a simple query.
async fn db_error(c: &mut Connection, sql: &str) -> DbError {
    let err = c.simple_query(sql).await.expect_err("the statement fails");
    err.as_db_error()
        .unwrap_or_else(|| panic!("not a database error: {err:?}"))
        .clone()
}

/// Our one-string Display is what psql prints at its default verbosity, with the SQLSTATE on
/// the first line. Where the statement's own text would be needed for the `LINE`/caret pair, it
/// is psql's terse first line instead (the position as `at character N`) without that pair.
fn assert_prints_like_psql(db: &DbError, sql: &str) {
    let default = psql_error(sql, "default");
    let mut lines: Vec<&str> = default.lines().collect();
    let terse;
    if db.position.is_some() {
        assert!(
            lines.get(1).is_some_and(|l| l.starts_with("LINE ")),
            "{default}"
        );
        lines.drain(1..3);
        terse = psql_error(sql, "terse");
        lines[0] = terse.trim_end();
    }
    let mut expected = format!("{} (SQLSTATE {})", lines[0], db.code());
    for line in &lines[1..] {
        expected.push('\n');
        expected.push_str(line);
    }
    assert_eq!(db.to_string(), expected, "psql printed:\n{default}");
}

#[tokio::test]
async fn syntax_error_prints_its_position() {
    let mut c = admin().await;
    for (sql, position) in [("SELEC 1", 1), ("SELECT 1 +", 11)] {
        let db = db_error(&mut c, sql).await;
        assert_eq!(db.position, Some(position), "{sql}");
        assert_eq!(db.code(), SqlState::SYNTAX_ERROR.code());
        assert_eq!(db.sqlstate(), Some(SqlState::SYNTAX_ERROR));
        assert!(
            db.to_string()
                .ends_with(&format!(" at character {position} (SQLSTATE 42601)")),
            "{db}"
        );
        assert_prints_like_psql(&db, sql);
    }
    let db = db_error(&mut c, "SELEC 1").await;
    assert_eq!(
        db.to_string(),
        "ERROR:  syntax error at or near \"SELEC\" at character 1 (SQLSTATE 42601)"
    );
    assert!(c.is_idle());
}

#[tokio::test]
async fn unique_violation_carries_its_detail() {
    let mut c = admin().await;
    let t = pg_harness::unique_name("errs_unique");
    c.batch_execute(&format!(
        "CREATE TABLE {t} (id int4 PRIMARY KEY); INSERT INTO {t} VALUES (1)"
    ))
    .await
    .unwrap();
    let sql = format!("INSERT INTO {t} VALUES (1)");
    let err = c.execute(&sql, &[]).await.unwrap_err();
    assert!(err.is_unique_violation(), "{err:?}");
    assert!(!err.is_foreign_key_violation() && !err.is_serialization_failure());
    assert_eq!(err.code(), Some(SqlState::UNIQUE_VIOLATION.code()));
    assert_eq!(err.sqlstate(), Some(SqlState::UNIQUE_VIOLATION));
    assert!(matches!(err.sqlstate(), Some(SqlState::UNIQUE_VIOLATION)));
    let db = err.as_db_error().unwrap();
    assert_eq!(db.detail.as_deref(), Some("Key (id)=(1) already exists."));
    assert!(
        err.to_string()
            .ends_with("(SQLSTATE 23505)\nDETAIL:  Key (id)=(1) already exists."),
        "{err}"
    );
    assert_prints_like_psql(db, &format!("{sql};"));
    c.batch_execute(&format!("DROP TABLE {t}")).await.unwrap();
}

#[tokio::test]
async fn undefined_function_carries_position_and_hint() {
    let mut c = admin().await;
    let sql = "SELECT nosuchfn(1)";
    let err = c.execute(sql, &[]).await.unwrap_err();
    assert_eq!(err.code(), Some(SqlState::UNDEFINED_FUNCTION.code()));
    assert_eq!(err.sqlstate(), Some(SqlState::UNDEFINED_FUNCTION));
    let db = err.as_db_error().unwrap();
    assert_eq!(db.position, Some(8));
    let hint = db.hint.as_deref().expect("a hint");
    assert!(hint.starts_with("No function matches the given name and argument types"));
    assert_eq!(
        err.to_string(),
        format!(
            "ERROR:  function nosuchfn(integer) does not exist at character 8 (SQLSTATE 42883)\n\
             HINT:  {hint}"
        )
    );
    assert_prints_like_psql(db, &format!("{sql};"));
}

#[tokio::test]
async fn internal_query_draws_the_caret_psql_draws() {
    let mut c = admin().await;
    let long = (2..=26)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    for sql in [
        "DO $$ BEGIN PERFORM nosuchcol FROM pg_class; END $$;".to_string(),
        // A second line, long enough that libpq cuts it on both sides.
        format!("DO $$ BEGIN PERFORM 1,\n   {long}, nosuchcol, 27, 28, 29 FROM pg_class; END $$;"),
        // Near the start of a long line: cut on the right only.
        format!("DO $$ BEGIN PERFORM nosuchcol, {long}, {long} FROM pg_class; END $$;"),
    ] {
        let db = db_error(&mut c, &sql).await;
        assert_eq!(db.sqlstate(), Some(SqlState::UNDEFINED_COLUMN), "{sql}");
        assert!(db.internal_query.is_some() && db.internal_position.is_some());
        assert!(db.to_string().contains("\nLINE "), "{db}");
        assert_prints_like_psql(&db, &sql);
    }
}

#[tokio::test]
async fn predicates_on_real_errors() {
    let mut c = admin().await;
    let err = c
        .execute("SELECT * FROM no_such_table_here", &[])
        .await
        .unwrap_err();
    assert!(err.is_undefined_table(), "{err:?}");
    c.batch_execute("BEGIN READ ONLY").await.unwrap();
    let t = pg_harness::unique_name("errs_ro");
    let err = c
        .batch_execute(&format!("CREATE TABLE {t} (x int)"))
        .await
        .unwrap_err();
    assert!(err.is_read_only_transaction(), "{err:?}");
    c.batch_execute("ROLLBACK").await.unwrap();
    c.batch_execute("SET statement_timeout = '50ms'")
        .await
        .unwrap();
    let err = c.execute("SELECT pg_sleep(5)", &[]).await.unwrap_err();
    assert!(err.is_query_canceled(), "{err:?}");
    assert!(!err.is_closed() && c.is_idle());
}

/// The PostgreSQL version `gen/sqlstate.py` read `errcodes.txt` from.
const TABLE_MAJOR: &str = "15";

#[test]
fn every_code_of_the_installed_errcodes_txt_is_known() {
    let Some(pg_config) = pg_harness::try_find_bin_dir()
        .map(|d| d.join("pg_config"))
        .filter(|p| p.is_file())
    else {
        // Only a DATABASE_URL run may lack the local installation.
        assert!(cluster().is_external(), "pg_config not found");
        return;
    };
    let run = |arg: &str| {
        let out = Command::new(&pg_config)
            .arg(arg)
            .output()
            .expect("pg_config runs");
        String::from_utf8(out.stdout)
            .expect("UTF-8")
            .trim()
            .to_string()
    };
    let version = run("--version");
    if version.split([' ', '.']).nth(1) != Some(TABLE_MAJOR) {
        eprintln!("{version} installed, the table is from {TABLE_MAJOR}: not compared");
        return;
    }
    let path = std::path::Path::new(&run("--sharedir")).join("errcodes.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut codes = std::collections::BTreeSet::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(code) = fields.first().filter(|c| c.len() == 5 && fields.len() >= 3) else {
            continue;
        };
        if !code
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        {
            continue;
        }
        let state = SqlState::from_code(code).expect("well-formed");
        let name = state
            .name()
            .unwrap_or_else(|| panic!("{code} is not in the table"));
        if let Some(condition) = fields.get(3) {
            assert_eq!(name, *condition, "{code}");
        }
        assert!(fields[2].starts_with("ERRCODE_"), "{line}");
        codes.insert(*code);
    }
    // The unit test pins the table at 260 codes: the same set, both ways.
    assert_eq!(codes.len(), 260, "{}", path.display());
}
