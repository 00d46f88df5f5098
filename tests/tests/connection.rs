//! pgwire-lite against a real PostgreSQL: every auth method, simple and extended query, errors,
//! cancellation safety, the statement cache and the connection's state tracking.

mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::Duration;

use common::admin;
use pg_harness::{Role, cluster};
use pgwire_lite::{Config, Connection, Error, TransactionStatus};

fn config(role: Role) -> Config {
    cluster().url(role).parse().expect("harness URL parses")
}

async fn connect(role: Role) -> Connection {
    Connection::connect(&config(role))
        .await
        .unwrap_or_else(|e| panic!("connect as {role:?}: {e}"))
}

#[tokio::test]
async fn every_auth_method_connects() {
    if !cluster().require_roles() {
        return;
    }
    for role in [
        Role::Scram,
        Role::Md5,
        Role::Password,
        Role::Trust,
        Role::Sasl,
        Role::Postgres,
    ] {
        let mut c = connect(role).await;
        let row = c.query_one("SELECT current_user::text", &[]).await.unwrap();
        assert_eq!(row.get::<_, &str>(0), role.user(), "{role:?}");
        assert!(c.backend_pid() > 0);
        assert!(c.parameter("server_version").is_some());
        assert_eq!(c.parameter("client_encoding"), Some("UTF8"));
        c.close().await.unwrap();
    }
}

#[tokio::test]
async fn unix_socket_connects() {
    if !cluster().require_roles() {
        return;
    }
    let cfg: Config = cluster().socket_url(Role::Trust).parse().unwrap();
    let mut c = Connection::connect(&cfg).await.unwrap();
    assert!(matches!(c.peer(), pgwire_lite::Peer::Unix(_)));
    let r = c.query_one("SELECT 1::int4", &[]).await.unwrap();
    assert_eq!(r.get::<_, i32>(0), 1);
}

#[tokio::test]
async fn wrong_password_is_28p01() {
    if !cluster().require_roles() {
        return;
    }
    for role in [Role::Scram, Role::Md5, Role::Password] {
        let mut cfg = config(role);
        cfg.password("definitely-wrong");
        let err = Connection::connect(&cfg).await.unwrap_err();
        assert_eq!(err.code(), Some("28P01"), "{role:?}: {err}");
        assert!(!err.to_string().contains("definitely-wrong"));
    }
}

#[tokio::test]
async fn missing_password_is_a_clear_auth_error() {
    if !cluster().require_roles() {
        return;
    }
    let mut cfg = Config::new();
    cfg.host(cluster().host())
        .port(cluster().port())
        .user(Role::Scram.user())
        .dbname(cluster().db_name());
    // PGPASSWORD would fill it in: the test is about the explicit config only.
    if std::env::var_os("PGPASSWORD").is_some() {
        return;
    }
    let err = Connection::connect(&cfg).await.unwrap_err();
    assert!(matches!(err, Error::Auth(_)), "{err}");
    assert!(err.to_string().contains("no password"), "{err}");
}

#[tokio::test]
async fn unknown_database_is_3d000() {
    let mut cfg = config(Role::Postgres);
    cfg.dbname("no_such_database_here");
    let err = Connection::connect(&cfg).await.unwrap_err();
    assert_eq!(err.code(), Some("3D000"), "{err}");
}

#[tokio::test]
async fn simple_query_returns_every_result_set() {
    let mut c = admin().await;
    let results = c
        .simple_query(
            "SELECT 1 AS a, 'x' AS b; SELECT generate_series(1,3) AS n; CREATE TEMP TABLE t(x int)",
        )
        .await
        .unwrap();
    assert_eq!(results.len(), 3, "{results:?}");
    assert_eq!(results[0].rows().len(), 1);
    assert_eq!(results[0].columns()[1].name(), "b");
    assert_eq!(results[0].rows()[0].get::<_, &str>("b"), "x");
    assert_eq!(results[0].rows()[0].get::<_, i32>("a"), 1);
    assert_eq!(results[1].rows_affected(), 3);
    let ns: Vec<i32> = results[1].rows().iter().map(|r| r.get(0)).collect();
    assert_eq!(ns, vec![1, 2, 3]);
    assert_eq!(results[2].command_tag(), Some("CREATE TABLE"));
    // Only an entirely empty query string gets EmptyQueryResponse.
    let empty = c.simple_query("").await.unwrap();
    assert_eq!(empty.len(), 1);
    assert_eq!(empty[0].command_tag(), None);
}

#[tokio::test]
async fn extended_query_with_parameters() {
    let mut c = admin().await;
    let row = c
        .query_one(
            "SELECT $1::int8 + 1 AS n, $2::text || '!' AS s, $3::int4 IS NULL AS isnull",
            &[&41i64, &"hi", &None::<i32>],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>("n"), 42);
    assert_eq!(row.get::<_, String>("s"), "hi!");
    assert!(row.get::<_, bool>("isnull"));

    // The same through the unnamed statement.
    let r = c
        .execute_unprepared("SELECT $1::int4 * 2 AS d", &[&21i32])
        .await
        .unwrap();
    assert_eq!(r.rows()[0].get::<_, i32>("d"), 42);
    assert_eq!(c.cached_statements(), 1, "unprepared must not cache");

    // A parameter count mismatch is a clear error and the connection stays usable.
    let err = c.execute("SELECT $1::int4", &[]).await.unwrap_err();
    assert!(err.to_string().contains("1 parameters but 0"), "{err}");
    assert!(c.is_idle());
    // A Rust type the parameter's type does not accept: named, never spliced.
    let err = c.execute("SELECT $1::int4", &[&"text"]).await.unwrap_err();
    assert!(err.to_string().contains("int4"), "{err}");
    assert!(c.is_idle());
}

#[tokio::test]
async fn error_in_the_middle_leaves_connection_usable() {
    let mut c = admin().await;
    let err = c
        .simple_query("SELECT 1; SELECT * FROM no_such_table; SELECT 2")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("42P01"));
    let db = err.as_db_error().unwrap();
    assert!(db.position.is_some());
    assert!(
        db.to_string()
            .starts_with("ERROR:  relation \"no_such_table\" does not exist")
    );
    assert!(c.is_idle());

    let err = c.execute("SELECT 1/$1::int4", &[&0i32]).await.unwrap_err();
    assert_eq!(err.code(), Some("22012"));
    assert!(c.is_idle());
    let err = c
        .execute_unprepared("SELEC broken syntax", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("42601"));
    assert!(c.is_idle());
    let r = c.query_one("SELECT 7::int4", &[]).await.unwrap();
    assert_eq!(r.get::<_, i32>(0), 7);
}

#[tokio::test]
async fn transaction_status_is_tracked() {
    let mut c = admin().await;
    assert_eq!(c.transaction_status(), TransactionStatus::Idle);
    c.batch_execute("BEGIN").await.unwrap();
    assert!(c.in_transaction());
    assert!(!c.is_idle());
    assert_eq!(c.transaction_status(), TransactionStatus::InTransaction);
    c.execute("SELECT 1/0", &[]).await.unwrap_err();
    assert_eq!(c.transaction_status(), TransactionStatus::Failed);
    let err = c.execute("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(err.code(), Some("25P02"));
    c.batch_execute("ROLLBACK").await.unwrap();
    assert!(c.is_idle());
}

#[tokio::test]
async fn ten_thousand_queries_on_one_connection() {
    let mut c = admin().await;
    let mut sum = 0i64;
    for i in 0..10_000i64 {
        let r = c.query_one("SELECT $1::int8", &[&i]).await.unwrap();
        sum += r.get::<_, i64>(0);
    }
    assert_eq!(sum, (0..10_000i64).sum::<i64>());
    assert_eq!(c.cached_statements(), 1);
}

/// Polls `fut` `n` times, then drops it: the tokio-postgres poll-N-then-drop test.
fn poll_n_then_drop<F: Future>(fut: F, n: usize) -> bool {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..n {
        if fut.as_mut().poll(&mut cx).is_ready() {
            return true;
        }
    }
    false
}

#[tokio::test]
async fn dropped_query_future_then_reuse() {
    let mut c = admin().await;
    // Prepared and unprepared, at every await point the first few polls reach.
    for n in 0..8 {
        for prepared in [true, false] {
            let sql = "SELECT pg_sleep(0.01), $1::int4 AS v";
            let done = if prepared {
                poll_n_then_drop(c.execute(sql, &[&1i32]), n)
            } else {
                poll_n_then_drop(c.execute_unprepared(sql, &[&1i32]), n)
            };
            // Let the server's answer arrive so draining has something to do.
            tokio::time::sleep(Duration::from_millis(15)).await;
            if !done && n > 0 {
                assert!(c.has_pending() || c.is_idle(), "n={n}");
            }
            assert!(!c.is_broken(), "n={n} prepared={prepared}");
            let row = c.query_one("SELECT 99::int4 AS v", &[]).await.unwrap();
            assert_eq!(row.get::<_, i32>("v"), 99, "n={n}");
            assert!(c.is_idle());
        }
    }
    // An explicit drain after a dropped simple query.
    assert!(!poll_n_then_drop(
        c.simple_query("SELECT pg_sleep(0.02)"),
        1
    ));
    assert!(c.has_pending());
    c.drain().await.unwrap();
    assert!(!c.has_pending());
    assert!(c.is_idle());
}

#[tokio::test]
async fn stale_cached_plan_is_reprepared_outside_transactions() {
    let mut c = admin().await;
    let t = pg_harness::unique_name("stale");
    c.batch_execute(&format!(
        "CREATE TABLE {t} (a int4); INSERT INTO {t} VALUES (1)"
    ))
    .await
    .unwrap();
    let sql = format!("SELECT * FROM {t}");
    assert_eq!(c.query(&sql, &[]).await.unwrap()[0].len(), 1);
    c.batch_execute(&format!("ALTER TABLE {t} ADD COLUMN b text DEFAULT 'x'"))
        .await
        .unwrap();
    // 0A000 "cached plan must not change result type": re-prepared and retried once.
    let rows = c.query(&sql, &[]).await.unwrap();
    assert_eq!(rows[0].len(), 2);
    assert_eq!(rows[0].get::<_, &str>("b"), "x");

    // Inside a transaction the retry would be unsafe: the error reaches the caller.
    c.batch_execute(&format!("ALTER TABLE {t} ADD COLUMN c int4"))
        .await
        .unwrap();
    c.batch_execute("BEGIN").await.unwrap();
    let err = c.query(&sql, &[]).await.unwrap_err();
    assert_eq!(err.code(), Some("0A000"));
    c.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(c.query(&sql, &[]).await.unwrap()[0].len(), 3);
    c.batch_execute(&format!("DROP TABLE {t}")).await.unwrap();
}

#[tokio::test]
async fn statement_cache_is_bounded_and_closes_on_the_server() {
    let mut c = admin().await;
    c.set_statement_cache_capacity(4);
    for i in 0..20 {
        c.execute(&format!("SELECT {i}::int4"), &[]).await.unwrap();
    }
    assert_eq!(c.cached_statements(), 4);
    // Evicted statements are closed with the next request.
    c.execute("SELECT 0::int4", &[]).await.unwrap();
    let r = c
        .query_one("SELECT count(*)::int8 FROM pg_prepared_statements", &[])
        .await
        .unwrap();
    assert!(
        r.get::<_, i64>(0) <= 5,
        "server holds {} statements",
        r.get::<_, i64>(0)
    );
}

#[tokio::test]
async fn notices_are_not_errors() {
    let mut c = admin().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    c.set_notice_handler(Some(Box::new(move |n| {
        s.lock().unwrap().push(n.message().to_owned())
    })));
    c.batch_execute("DO $$ BEGIN RAISE NOTICE 'hello %', 42; END $$")
        .await
        .unwrap();
    c.execute("DO $$ BEGIN RAISE WARNING 'careful'; END $$", &[])
        .await
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), vec!["hello 42", "careful"]);
}

#[tokio::test]
async fn client_encoding_change_breaks_the_connection() {
    let mut c = admin().await;
    let err = c
        .batch_execute("SET client_encoding = 'LATIN1'")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("client_encoding"), "{err}");
    assert!(c.is_broken());
    let err = c.execute("SELECT 1", &[]).await.unwrap_err();
    assert!(matches!(err, Error::Closed(_)), "{err}");
}

#[tokio::test]
async fn terminated_idle_connection_is_noticed_without_a_round_trip() {
    let mut victim = admin().await;
    assert!(victim.check_idle_socket());
    let pid = victim.backend_pid();
    let mut killer = admin().await;
    killer
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    // The FATAL message and EOF arrive shortly after.
    let mut alive = true;
    for _ in 0..100 {
        alive = victim.check_idle_socket();
        if !alive {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!alive);
    assert!(victim.is_broken());
}

#[tokio::test]
async fn fatal_mid_session_marks_broken() {
    let mut c = admin().await;
    let err = c
        .execute("SELECT pg_terminate_backend(pg_backend_pid())", &[])
        .await
        .unwrap_err();
    assert!(err.is_closed(), "{err}");
    assert!(c.is_broken());
}

#[tokio::test]
async fn sslmode_require_is_refused_not_downgraded() {
    let cfg: Result<Config, _> =
        format!("{}?sslmode=require", cluster().url(Role::Postgres)).parse();
    let err = match cfg {
        Err(e) => Error::Config(e),
        Ok(cfg) => Connection::connect(&cfg).await.unwrap_err(),
    };
    assert!(err.to_string().contains("TLS"), "{err}");
}

#[tokio::test]
async fn connect_timeout_covers_startup() {
    // A listener that accepts and then says nothing: the TCP connect succeeds, startup hangs.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut socks = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            socks.push(s);
        }
    });
    let cfg: Config = format!("host=127.0.0.1 port={port} user=u password=p connect_timeout=2")
        .parse()
        .unwrap();
    let t = std::time::Instant::now();
    let err = Connection::connect(&cfg).await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(t.elapsed() < Duration::from_secs(5));
    hold.abort();
}

#[tokio::test]
async fn value_round_trip_through_result_maps() {
    let mut c = admin().await;
    let res = c
        .execute(
            "SELECT 1::int4 AS id, 'Alex'::text AS username, NULL::int8 AS missing",
            &[],
        )
        .await
        .unwrap();
    let maps = res.result();
    assert_eq!(maps.len(), 1);
    assert_eq!(
        maps[0].keys().collect::<Vec<_>>(),
        vec!["id", "username", "missing"]
    );
    assert_eq!(maps[0].get("id"), Some(&pgwire_lite::Value::Int4(1)));
    assert_eq!(
        maps[0].get("username"),
        Some(&pgwire_lite::Value::Text("Alex".into()))
    );
    assert_eq!(maps[0].get("missing"), Some(&pgwire_lite::Value::Null));
}

#[tokio::test]
async fn cancel_token_cancels_the_running_query() {
    let mut c = admin().await;
    let token = c.cancel_token();
    assert!(!format!("{token:?}").contains("secret"));
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        token.cancel_query().await
    });
    let t = std::time::Instant::now();
    let err = c.execute("SELECT pg_sleep(20)", &[]).await.unwrap_err();
    assert_eq!(err.code(), Some("57014"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(10));
    canceller.await.unwrap().unwrap();
    assert!(c.is_idle());
    let r = c.query_one("SELECT 5::int4", &[]).await.unwrap();
    assert_eq!(r.get::<_, i32>(0), 5);
}

#[tokio::test]
async fn query_timeout_cancels_and_keeps_the_connection() {
    let mut c = admin().await;
    c.set_query_timeout(Some(Duration::from_millis(300)));
    for prepared in [true, false] {
        let t = std::time::Instant::now();
        let err = if prepared {
            c.execute("SELECT pg_sleep(20)", &[]).await.unwrap_err()
        } else {
            c.execute_unprepared("SELECT pg_sleep(20)", &[])
                .await
                .unwrap_err()
        };
        assert!(err.is_timeout(), "{err}");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert!(!c.is_broken());
        assert!(c.is_idle(), "drained after the cancel");
        let r = c.query_one("SELECT 6::int4", &[]).await.unwrap();
        assert_eq!(r.get::<_, i32>(0), 6);
    }
    let err = c.simple_query("SELECT pg_sleep(20)").await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    // Nothing from the cancelled query leaks into later results.
    let r = c.simple_query("SELECT 7").await.unwrap();
    assert_eq!(r[0].rows()[0].get::<_, i32>(0), 7);
}

#[tokio::test]
async fn require_auth_refuses_methods_the_user_did_not_allow() {
    if !cluster().require_roles() {
        return;
    }
    let with = |role: Role, require: &str| {
        let mut cfg = config(role);
        cfg.require_auth(require);
        cfg
    };
    // Allowed: connects.
    Connection::connect(&with(Role::Scram, "scram-sha-256"))
        .await
        .unwrap();
    Connection::connect(&with(Role::Md5, "!password"))
        .await
        .unwrap();
    // Refused before any password is sent, naming the method.
    for (role, require, method) in [
        (Role::Md5, "scram-sha-256", "md5"),
        (Role::Password, "!password", "password"),
        (Role::Password, "scram-sha-256,md5", "password"),
        (Role::Trust, "scram-sha-256", "none"),
        (Role::Trust, "!none", "none"),
    ] {
        let err = Connection::connect(&with(role, require)).await.unwrap_err();
        assert!(matches!(err, Error::Auth(_)), "{role:?} {require}: {err}");
        assert!(
            err.to_string().contains(method),
            "{role:?} {require}: {err}"
        );
    }
    // Bad grammar is a configuration error naming the entry.
    let err = format!("{}?require_auth=md5,!password", cluster().url(Role::Md5))
        .parse::<Config>()
        .unwrap_err();
    assert!(err.to_string().contains("!password"), "{err}");
}

#[tokio::test]
async fn secrets_never_reach_debug_display_or_errors() {
    if !cluster().require_roles() {
        return;
    }
    const SECRET: &str = "Zx9-very-secret-pw";
    let mut printed = String::new();
    // A wrong password through every method, as config field and inside the URL.
    for role in [Role::Scram, Role::Md5, Role::Password] {
        let mut cfg = config(role);
        cfg.password(SECRET);
        printed += &format!("{cfg:?}");
        let err = Connection::connect(&cfg).await.unwrap_err();
        printed += &format!("{err} {err:?}");
        let url = format!(
            "postgresql://{}:{SECRET}@{}:{}/{}",
            role.user(),
            cluster().host(),
            cluster().port(),
            cluster().db_name()
        );
        let cfg: Config = url.parse().unwrap();
        printed += &format!("{cfg:?}");
        let err = Connection::connect(&cfg).await.unwrap_err();
        printed += &format!("{err} {err:?}");
    }
    // Malformed URLs that contain the password.
    for bad in [
        format!("postgresql://u:{SECRET}@host:notaport/db"),
        format!("postgresql://u:{SECRET}@host/db?nope=1"),
        format!("host=h password={SECRET} bogus"),
    ] {
        if let Err(e) = bad.parse::<Config>() {
            printed += &format!("{e} {e:?}");
        }
    }
    // A live connection and its cancel token.
    let mut cfg = config(Role::Scram);
    printed += &format!("{cfg:?}");
    let c = Connection::connect(&cfg).await.unwrap();
    printed += &format!("{c:?} {:?}", c.cancel_token());
    cfg.password(SECRET);
    assert!(!printed.contains(SECRET), "{printed}");
    assert!(!printed.contains(pg_harness::SCRAM_PASS), "{printed}");
}

#[tokio::test]
async fn param_types_from_values_runs_new_statements_in_one_trip() {
    let mut c = admin().await;
    c.set_param_types(pgwire_lite::ParamTypes::FromValues);
    // The values' types are declared: the server casts where the SQL asks.
    let r = c
        .query_one("SELECT $1::int8 + 1 AS n, $2 || '!' AS s", &[&41i32, &"hi"])
        .await
        .unwrap();
    assert_eq!(r.get::<_, i64>("n"), 42);
    assert_eq!(r.get::<_, String>("s"), "hi!");
    assert_eq!(c.cached_statements(), 1);
    // Cached: the same statement again, and a value of another type re-prepares.
    let r = c
        .query_one("SELECT $1::int8 + 1 AS n, $2 || '!' AS s", &[&1i64, &"x"])
        .await
        .unwrap();
    assert_eq!(r.get::<_, i64>("n"), 2);
    // A Parse the declared types make fail falls back to server inference: here the text value
    // meets an int4 column with no text = int4 operator, which inference (int4) would refuse too,
    // so the error is the conversion error, and nothing ran twice.
    let t = pg_harness::unique_name("onetrip");
    c.batch_execute(&format!("CREATE TEMP TABLE {t} (id int4, v text)"))
        .await
        .unwrap();
    let err = c
        .execute(&format!("INSERT INTO {t} SELECT $1 WHERE $1 = 1"), &[&"7"])
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("int4") || err.code().is_some(),
        "{err}"
    );
    assert!(c.is_idle());
    let n = c
        .query_one(&format!("SELECT count(*)::int8 FROM {t}"), &[])
        .await
        .unwrap();
    assert_eq!(n.get::<_, i64>(0), 0);
    // An execution error after a successful Parse is returned, not retried.
    let err = c
        .execute(&format!("INSERT INTO {t} VALUES (1/$1, 'a')"), &[&0i32])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("22012"));
    let n = c
        .query_one(&format!("SELECT count(*)::int8 FROM {t}"), &[])
        .await
        .unwrap();
    assert_eq!(n.get::<_, i64>(0), 0);
    // Inside a transaction the one-trip path is not used (a failed Parse would abort it).
    c.batch_execute("BEGIN").await.unwrap();
    c.execute(&format!("INSERT INTO {t} VALUES ($1, $2)"), &[&1i32, &"b"])
        .await
        .unwrap();
    c.batch_execute("COMMIT").await.unwrap();
    // The unnamed path too.
    let r = c
        .execute_unprepared("SELECT $1::int4 * 2", &[&21i32])
        .await
        .unwrap();
    assert_eq!(r.rows()[0].get::<_, i32>(0), 42);
}

#[tokio::test]
async fn role_defaults_do_not_change_text_decoding() {
    if !cluster().require_roles() {
        return;
    }
    let mut adm = admin().await;
    let role = pg_harness::unique_name("styles");
    adm.batch_execute(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'pw'; \
         ALTER ROLE {role} SET IntervalStyle = 'sql_standard'; \
         ALTER ROLE {role} SET DateStyle = 'German'; \
         ALTER ROLE {role} SET extra_float_digits = 0"
    ))
    .await
    .unwrap();
    let mut cfg = config(Role::Postgres);
    cfg.user(&role).password("pw");
    let mut c = Connection::connect(&cfg).await.unwrap();
    let r = c
        .simple_query("SELECT '1 year 2 days 03:04:05'::interval, '1999-12-31'::date, 0.1::float8")
        .await
        .unwrap();
    let row = &r[0].rows()[0];
    assert_eq!(
        row.get::<_, pgwire_lite::types::Interval>(0),
        pgwire_lite::types::Interval {
            months: 12,
            days: 2,
            micros: 11_045_000_000
        }
    );
    assert_eq!(
        row.get::<_, pgwire_lite::types::Date>(1).ymd(),
        Some((1999, 12, 31))
    );
    assert_eq!(row.get::<_, f64>(2), 0.1);
    drop(c);
    adm.batch_execute(&format!("DROP ROLE {role}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn cache_survives_deallocate_all_behind_its_back() {
    let mut c = admin().await;
    c.query_one("SELECT 1::int4", &[]).await.unwrap();
    assert_eq!(c.cached_statements(), 1);
    // DEALLOCATE ALL drops the server's statements; the cache still names them (26000).
    c.batch_execute("DEALLOCATE ALL").await.unwrap();
    let r = c.query_one("SELECT 1::int4", &[]).await.unwrap();
    assert_eq!(r.get::<_, i32>(0), 1);
    c.batch_execute("DISCARD ALL").await.unwrap();
    let r = c.query_one("SELECT 1::int4", &[]).await.unwrap();
    assert_eq!(r.get::<_, i32>(0), 1);
    // In a transaction the retry is not safe: the error (and the aborted transaction) is shown.
    c.batch_execute("DEALLOCATE ALL; BEGIN").await.unwrap();
    let err = c.query_one("SELECT 1::int4", &[]).await.unwrap_err();
    assert_eq!(err.code(), Some("26000"));
    c.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(
        c.query_one("SELECT 1::int4", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        1
    );
}
