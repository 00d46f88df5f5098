//! pgwire-lite's values against a real PostgreSQL, both ways: every supported type sent as a
//! parameter and read back, PostgreSQL's own literals read in binary (extended protocol) and
//! text (simple protocol) format, edge values, arrays of every shape, NULLs, widening and
//! mismatch errors, `Value` as a parameter, `result()` maps, and a seeded random sweep.

mod common;

use std::fmt::Debug;
use std::panic::{AssertUnwindSafe, catch_unwind};

use pg_harness::{Rng, Role, cluster};
use pgwire_lite::types::{
    Array, Date, FromSqlOwned, Interval, Json, Numeric, Time, Timestamp, TimestampTz, Uuid,
};
use pgwire_lite::{Config, Connection, Error, Format, ToSql, Type, Value};

// ---- helpers -----------------------------------------------------------------------------

async fn connect() -> Connection {
    let config: Config = cluster()
        .url(Role::Postgres)
        .parse()
        .expect("harness URL parses");
    Connection::connect(&config)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
}

/// Column 0 of the single row of `sql`, in binary format; panics on an error.
async fn read_bin<T: FromSqlOwned>(c: &mut Connection, sql: &str) -> T {
    common::read_binary(c, sql)
        .await
        .unwrap_or_else(|e| panic!("binary {sql}: {e}"))
}

/// Column 0 of the single row of `sql`, in text format; panics on an error.
async fn read_text<T: FromSqlOwned>(c: &mut Connection, sql: &str) -> T {
    common::read_text(c, sql)
        .await
        .unwrap_or_else(|e| panic!("text {sql}: {e}"))
}

/// `server_version_num` (150004 for 15.4).
async fn server_version(c: &mut Connection) -> i32 {
    read_bin(c, "SELECT current_setting('server_version_num')::int4").await
}

/// A SQL string literal (standard_conforming_strings is on: only quotes need doubling).
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The four checks every scalar gets: PostgreSQL's literal `lit::ty` read in binary and in text
/// equals `expected` (by `eq`); `expected` sent as `$1::ty` reads back equal; and the server
/// itself finds the parameter equal to the literal (so the encoding is right, not just
/// symmetric with our decoder).
async fn check_by<T>(c: &mut Connection, ty: &str, lit: &str, expected: T, eq: fn(&T, &T) -> bool)
where
    T: ToSql + Sync + FromSqlOwned + Debug,
{
    let sql = format!("SELECT {lit}::{ty}");
    let b: T = read_bin(c, &sql).await;
    assert!(eq(&b, &expected), "binary {sql}: {b:?} != {expected:?}");
    let t: T = read_text(c, &sql).await;
    assert!(eq(&t, &expected), "text {sql}: {t:?} != {expected:?}");

    let psql = format!("SELECT $1::{ty}");
    let row = c
        .query_one(&psql, &[&expected])
        .await
        .unwrap_or_else(|e| panic!("{psql} with {expected:?}: {e}"));
    let back: T = row
        .try_get(0)
        .unwrap_or_else(|e| panic!("{psql} with {expected:?}: {e}"));
    assert!(eq(&back, &expected), "{psql}: {back:?} != {expected:?}");

    let cmp = same_on_server(ty, lit);
    let same: bool = c
        .query_one(&cmp, &[&expected])
        .await
        .unwrap_or_else(|e| panic!("{cmp} with {expected:?}: {e}"))
        .get(0);
    assert!(same, "server: {expected:?} sent as {ty} differs from {lit}");
}

/// A query whose one boolean says the parameter `$1` equals `lit`, both as `ty`.
fn same_on_server(ty: &str, lit: &str) -> String {
    // json has no equality operator: compare its text.
    match ty {
        "json" => format!("SELECT $1::json::text IS NOT DISTINCT FROM {lit}::json::text"),
        "json[]" => format!("SELECT $1::json[]::text[] IS NOT DISTINCT FROM {lit}::json[]::text[]"),
        _ => format!("SELECT $1::{ty} IS NOT DISTINCT FROM {lit}::{ty}"),
    }
}

async fn check<T>(c: &mut Connection, ty: &str, lit: &str, expected: T)
where
    T: ToSql + Sync + FromSqlOwned + Debug + PartialEq,
{
    check_by(c, ty, lit, expected, |a, b| a == b).await;
}

/// NULL of `ty`: read as `None` in both formats, sent as `None` arrives as NULL, and a
/// non-Option `T` refuses it with an error saying so.
async fn check_null<T>(c: &mut Connection, ty: &str)
where
    T: ToSql + Sync + FromSqlOwned + Debug,
{
    let sql = format!("SELECT NULL::{ty} AS v");
    let b: Option<T> = read_bin(c, &sql).await;
    assert!(b.is_none(), "binary {sql}: {b:?}");
    let t: Option<T> = read_text(c, &sql).await;
    assert!(t.is_none(), "text {sql}: {t:?}");
    let v: Value = read_bin(c, &sql).await;
    assert_eq!(v, Value::Null, "{sql}");

    let row = c.query_one(&sql, &[]).await.unwrap();
    let err = row.try_get::<_, T>(0).unwrap_err();
    assert!(matches!(err, Error::Conversion(_)), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("NULL") && msg.contains("\"v\""), "{ty}: {msg}");

    let psql = format!("SELECT $1::{ty}, $1::{ty} IS NULL");
    let row = c.query_one(&psql, &[&None::<T>]).await.unwrap();
    assert!(row.get::<_, Option<T>>(0).is_none(), "{psql}");
    assert!(row.get::<_, bool>(1), "{psql}");
}

fn date(y: i32, m: u32, d: u32) -> Date {
    Date::from_ymd(y, m, d).unwrap_or_else(|| panic!("bad date {y}-{m}-{d}"))
}

fn time(h: u32, m: u32, s: u32, us: u32) -> Time {
    Time::from_hms_micro(h, m, s, us).unwrap_or_else(|| panic!("bad time {h}:{m}:{s}.{us}"))
}

fn ts(d: Date, t: Time) -> Timestamp {
    Timestamp::new(d, t).expect("finite timestamp")
}

fn tstz(d: Date, t: Time) -> TimestampTz {
    TimestampTz::from_utc(ts(d, t))
}

fn num(s: &str) -> Numeric {
    s.parse()
        .unwrap_or_else(|e| panic!("numeric {s:?} parses: {e}"))
}

fn uuid(s: &str) -> Uuid {
    s.parse().unwrap_or_else(|e| panic!("uuid {s:?}: {e}"))
}

fn hms(h: i64, m: i64, s: i64, us: i64) -> i64 {
    ((h * 60 + m) * 60 + s) * 1_000_000 + us
}

fn all_bytes() -> Vec<u8> {
    (0..=255u8).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn same_f64(a: &f64, b: &f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn same_f32(a: &f32, b: &f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

// ---- scalars -----------------------------------------------------------------------------

#[tokio::test]
async fn bool_and_integers() {
    let mut c = connect().await;
    check(&mut c, "bool", "'true'", true).await;
    check(&mut c, "bool", "'f'", false).await;
    for (lit, v) in [("'-32768'", i16::MIN), ("'32767'", i16::MAX), ("'0'", 0)] {
        check(&mut c, "int2", lit, v).await;
    }
    for (lit, v) in [
        ("'-2147483648'", i32::MIN),
        ("'2147483647'", i32::MAX),
        ("'-1'", -1),
    ] {
        check(&mut c, "int4", lit, v).await;
    }
    for (lit, v) in [
        ("'-9223372036854775808'", i64::MIN),
        ("'9223372036854775807'", i64::MAX),
        ("'4294967296'", 1i64 << 32),
    ] {
        check(&mut c, "int8", lit, v).await;
    }
    for (lit, v) in [
        ("'0'", 0u32),
        ("'4294967295'", u32::MAX),
        ("'pg_class'::regclass", 1259),
    ] {
        check(&mut c, "oid", lit, v).await;
    }
    // Narrower columns read into wider Rust integers, in both formats.
    assert_eq!(
        read_bin::<i64>(&mut c, "SELECT (-32768)::int2").await,
        -32768
    );
    assert_eq!(
        read_text::<i64>(&mut c, "SELECT (-32768)::int2").await,
        -32768
    );
    assert_eq!(
        read_text::<i32>(&mut c, "SELECT 2147483647::int4").await,
        i32::MAX
    );
}

#[tokio::test]
async fn floats_with_nan_and_infinities() {
    let mut c = connect().await;
    for (lit, v) in [
        ("'0'", 0.0f64),
        ("'-0'", -0.0),
        ("'1.5'", 1.5),
        ("'0.1'", 0.1),
        ("'1e100'", 1e100),
        ("'1.7976931348623157e308'", f64::MAX),
        ("'-1.7976931348623157e308'", f64::MIN),
        ("'2.2250738585072014e-308'", f64::MIN_POSITIVE),
        ("'5e-324'", 5e-324),
        ("'NaN'", f64::NAN),
        ("'Infinity'", f64::INFINITY),
        ("'-Infinity'", f64::NEG_INFINITY),
    ] {
        check_by(&mut c, "float8", lit, v, same_f64).await;
    }
    for (lit, v) in [
        ("'0'", 0.0f32),
        ("'-0'", -0.0),
        ("'1.5'", 1.5),
        ("'0.1'", 0.1),
        ("'3.4028235e38'", f32::MAX),
        ("'1.1754944e-38'", f32::MIN_POSITIVE),
        ("'1e-45'", 1e-45),
        ("'NaN'", f32::NAN),
        ("'Infinity'", f32::INFINITY),
        ("'-Infinity'", f32::NEG_INFINITY),
    ] {
        check_by(&mut c, "float4", lit, v, same_f32).await;
    }
    // float4 read as f64 is the widened f32 in both formats (not the parse of its digits).
    let b: f64 = read_bin(&mut c, "SELECT '0.1'::float4").await;
    let t: f64 = read_text(&mut c, "SELECT '0.1'::float4").await;
    assert_eq!(b, f64::from(0.1f32));
    assert_eq!(t, f64::from(0.1f32));
}

#[tokio::test]
async fn numeric_exact_huge_tiny_and_special() {
    let mut c = connect().await;
    let digits1000: String = "1234567890".repeat(100);
    let mixed = format!("-{digits1000}.{}", "0987654321".repeat(50));
    let mut cases: Vec<(String, String)> = vec![
        ("'0'".into(), "0".into()),
        ("'0.000'".into(), "0.000".into()),
        ("'-0'".into(), "0".into()),
        ("'1.50'".into(), "1.50".into()),
        ("'-12345.678'".into(), "-12345.678".into()),
        ("'9999.9999'".into(), "9999.9999".into()),
        ("'10000'".into(), "10000".into()),
        ("'0.0001'".into(), "0.0001".into()),
        ("'1e1000'".into(), "1e1000".into()),
        ("'-1e-1000'".into(), "-1e-1000".into()),
        ("'12345e20'".into(), "12345e20".into()),
        ("'1.23e-5'".into(), "0.0000123".into()),
        (quote(&digits1000), digits1000.clone()),
        (quote(&mixed), mixed.clone()),
        ("'NaN'".into(), "NaN".into()),
    ];
    let version = server_version(&mut c).await;
    if version >= 140000 {
        cases.push(("'Infinity'".into(), "Infinity".into()));
        cases.push(("'-Infinity'".into(), "-Infinity".into()));
    }
    for (lit, expected) in &cases {
        check(&mut c, "numeric", lit, num(expected)).await;
    }
    // A negative-scale typmod (PG 15+) rounds to hundreds.
    if version >= 150000 {
        let v: Numeric = read_bin(&mut c, "SELECT 12345::numeric(5,-2)").await;
        assert_eq!(v, num("12300"));
        let v: Numeric = read_text(&mut c, "SELECT 12345::numeric(5,-2)").await;
        assert_eq!(v, num("12300"));
    }
    // A computed value with the server's own display scale.
    let v: Numeric = read_bin(&mut c, "SELECT 1::numeric / 3").await;
    assert_eq!(v, num("0.33333333333333333333"));
    assert_eq!(v.to_string(), "0.33333333333333333333");
    // Our Display is the server's text output, digit for digit.
    for (_, expected) in &cases {
        let n = num(expected);
        let text: String = c
            .query_one("SELECT $1::numeric::text", &[&n])
            .await
            .unwrap()
            .get(0);
        assert_eq!(text, n.to_string());
    }
    // Integers go to numeric parameters exactly.
    let row = c
        .query_one("SELECT $1::numeric, $2::numeric", &[&i64::MIN, &i32::MAX])
        .await
        .unwrap();
    assert_eq!(row.get::<_, Numeric>(0), num("-9223372036854775808"));
    assert_eq!(row.get::<_, Numeric>(1), num("2147483647"));
}

#[tokio::test]
async fn text_types_and_non_ascii() {
    let mut c = connect().await;
    let samples = [
        "",
        "plain",
        "emoji 🦀👩‍👩‍👧 end",
        "漢字かなカナ한국어",
        "e\u{301} n\u{303} combining",
        "quote ' double \" backslash \\ brace {} comma ,",
        "tab\tnewline\nreturn\r",
        "\u{10FFFF}\u{FFFD}",
    ];
    for s in samples {
        for ty in ["text", "varchar"] {
            check(&mut c, ty, &quote(s), s.to_owned()).await;
        }
        if !s.is_empty() {
            check(&mut c, "name", &quote(s), s.to_owned()).await;
        }
        // Borrowed from the row in binary.
        let row = c.query_one("SELECT $1::text", &[&s]).await.unwrap();
        assert_eq!(row.get::<_, &str>(0), s);
    }
    // bpchar keeps and pads trailing blanks; an unconstrained bpchar keeps what it got.
    check(&mut c, "bpchar", "'ab  '", "ab  ".to_owned()).await;
    let padded: String = read_bin(&mut c, "SELECT 'ab'::char(4)").await;
    assert_eq!(padded, "ab  ");
    let padded: String = read_text(&mut c, "SELECT 'é'::char(3)").await;
    assert_eq!(padded, "é  ");
    // name truncates to 63 bytes on the server: a client-side non-event, but the read works.
    let long = "x".repeat(100);
    let n: String = read_bin(&mut c, &format!("SELECT {}::name", quote(&long))).await;
    assert_eq!(n, "x".repeat(63));
    // "char": one byte, including the high-bit and zero bytes.
    check(&mut c, "\"char\"", "'a'", b'a' as i8).await;
    check(&mut c, "\"char\"", "''", 0i8).await;
    let high: i8 = read_bin(&mut c, "SELECT (-1)::int4::\"char\"").await;
    assert_eq!(high, -1);
    let high: i8 = read_text(&mut c, "SELECT (-1)::int4::\"char\"").await;
    assert_eq!(high, -1);
    let row = c
        .query_one("SELECT $1::\"char\"::int4", &[&-1i8])
        .await
        .unwrap();
    // The server's "char"-to-int cast is signed.
    assert_eq!(row.get::<_, i32>(0), -1);
}

#[tokio::test]
async fn bytea_every_byte_in_hex_and_escape_output() {
    let mut c = connect().await;
    let bytes = all_bytes();
    let lit = format!("'\\x{}'", hex(&bytes));
    check(&mut c, "bytea", &lit, bytes.clone()).await;
    check(&mut c, "bytea", "''", Vec::<u8>::new()).await;
    // Borrowed from the row in binary; in text it must be decoded, and says so.
    let row = c
        .query_one("SELECT $1::bytea", &[&&bytes[..]])
        .await
        .unwrap();
    assert_eq!(row.get::<_, &[u8]>(0), &bytes[..]);
    let results = c
        .simple_query(&format!("SELECT {lit}::bytea"))
        .await
        .unwrap();
    let err = results[0].rows()[0].try_get::<_, &[u8]>(0).unwrap_err();
    assert!(err.to_string().contains("Vec<u8>"), "{err}");
    // The legacy escape output format decodes to the same bytes.
    c.batch_execute("SET bytea_output = 'escape'")
        .await
        .unwrap();
    let t: Vec<u8> = read_text(&mut c, &format!("SELECT {lit}::bytea")).await;
    assert_eq!(t, bytes);
    let v: Value = read_text(&mut c, &format!("SELECT {lit}::bytea")).await;
    assert_eq!(v, Value::Bytea(bytes.clone()));
}

#[tokio::test]
async fn dates_times_and_infinities() {
    let mut c = connect().await;
    for (lit, v) in [
        ("'2000-01-01'", date(2000, 1, 1)),
        ("'1999-12-31'", date(1999, 12, 31)),
        ("'1970-01-01'", date(1970, 1, 1)),
        ("'1900-02-28'", date(1900, 2, 28)),
        ("'1582-10-04'", date(1582, 10, 4)),
        ("'0001-01-01'", date(1, 1, 1)),
        ("'0001-12-31 BC'", date(0, 12, 31)),
        ("'0044-03-15 BC'", date(-43, 3, 15)),
        ("'4714-11-24 BC'", date(-4713, 11, 24)),
        ("'5874897-12-31'", date(5_874_897, 12, 31)),
        ("'2024-02-29'", date(2024, 2, 29)),
        ("'infinity'", Date::INFINITY),
        ("'-infinity'", Date::NEG_INFINITY),
    ] {
        check(&mut c, "date", lit, v).await;
    }
    for (lit, v) in [
        ("'00:00:00'", Time::MIDNIGHT),
        ("'04:05:06.789'", time(4, 5, 6, 789_000)),
        ("'23:59:59.999999'", time(23, 59, 59, 999_999)),
        ("'24:00:00'", Time::from_micros(86_400_000_000).unwrap()),
    ] {
        check(&mut c, "time", lit, v).await;
    }
    for (lit, v) in [
        ("'2000-01-01 00:00:00'", Timestamp::PG_EPOCH),
        (
            "'1999-12-31 23:59:59.5'",
            ts(date(1999, 12, 31), time(23, 59, 59, 500_000)),
        ),
        (
            "'1969-07-20 20:17:40'",
            ts(date(1969, 7, 20), time(20, 17, 40, 0)),
        ),
        (
            "'0044-03-15 12:00:00 BC'",
            ts(date(-43, 3, 15), time(12, 0, 0, 0)),
        ),
        (
            "'4714-11-24 00:00:00 BC'",
            ts(date(-4713, 11, 24), Time::MIDNIGHT),
        ),
        (
            "'294276-12-31 23:59:59.999999'",
            ts(date(294_276, 12, 31), time(23, 59, 59, 999_999)),
        ),
        ("'infinity'", Timestamp::INFINITY),
        ("'-infinity'", Timestamp::NEG_INFINITY),
    ] {
        check(&mut c, "timestamp", lit, v).await;
    }
    for (lit, v) in [
        (
            "'1 year 2 mons 3 days 04:05:06.789'",
            Interval::new(14, 3, hms(4, 5, 6, 789_000)),
        ),
        (
            "'-1 year -2 mons +3 days -04:05:06'",
            Interval::new(-14, 3, -hms(4, 5, 6, 0)),
        ),
        ("'-1 days +00:00:01'", Interval::new(0, -1, 1_000_000)),
        ("'00:00:00'", Interval::default()),
        ("'1.5 years'", Interval::new(18, 0, 0)),
        ("'2562047788:00:54.775807'", Interval::new(0, 0, i64::MAX)),
        ("'178956970 years 7 mons'", Interval::new(i32::MAX, 0, 0)),
        ("'-178956970 years -8 mons'", Interval::new(i32::MIN, 0, 0)),
        ("'2147483647 days'", Interval::new(0, i32::MAX, 0)),
    ] {
        check(&mut c, "interval", lit, v).await;
    }
}

#[tokio::test]
async fn timestamptz_is_one_instant_in_every_time_zone() {
    let mut c = connect().await;
    let instants = [
        // (UTC text, value)
        (
            "2024-01-15 12:00:00+00",
            tstz(date(2024, 1, 15), time(12, 0, 0, 0)),
        ),
        (
            "2024-07-15 12:00:00.123456+00",
            tstz(date(2024, 7, 15), time(12, 0, 0, 123_456)),
        ),
        (
            "1999-12-31 23:59:59+00",
            tstz(date(1999, 12, 31), time(23, 59, 59, 0)),
        ),
        // Local mean time before standard zones: offsets with seconds.
        (
            "1850-06-01 00:00:00+00",
            tstz(date(1850, 6, 1), Time::MIDNIGHT),
        ),
        (
            "0044-03-15 12:00:00+00 BC",
            tstz(date(-43, 3, 15), time(12, 0, 0, 0)),
        ),
        ("infinity", TimestampTz::INFINITY),
        ("-infinity", TimestampTz::NEG_INFINITY),
    ];
    for tz in ["America/St_Johns", "Asia/Kolkata", "UTC"] {
        c.batch_execute(&format!("SET TimeZone = '{tz}'"))
            .await
            .unwrap();
        for (utc, v) in instants {
            let lit = quote(utc);
            check(&mut c, "timestamptz", &lit, v).await;
            // What the text path parsed is the zone-local rendering, not UTC.
            let shown: String = read_bin(&mut c, &format!("SELECT {lit}::timestamptz::text")).await;
            if tz != "UTC" && v.is_finite() {
                assert!(!shown.contains("+00"), "{tz}: {shown}");
            }
            // And the zone-local text, fed back as a literal, is still the same instant.
            check(&mut c, "timestamptz", &quote(&shown), v).await;
        }
        // A local wall-clock literal means the instant in that zone.
        let local = match tz {
            "America/St_Johns" => "2024-07-15 09:30:00", // NDT, -02:30
            "Asia/Kolkata" => "2024-07-15 17:30:00",     // IST, +05:30
            _ => "2024-07-15 12:00:00",
        };
        let v: TimestampTz = read_text(&mut c, &format!("SELECT '{local}'::timestamptz")).await;
        assert_eq!(v, tstz(date(2024, 7, 15), time(12, 0, 0, 0)), "{tz}");
    }
    // std's SystemTime, both ways.
    let now = std::time::SystemTime::now();
    let row = c
        .query_one("SELECT $1::timestamptz", &[&now])
        .await
        .unwrap();
    let back: std::time::SystemTime = row.get(0);
    let drift = now.duration_since(back).unwrap();
    assert!(drift.as_micros() < 1, "{drift:?}");
}

#[tokio::test]
async fn uuid_and_json() {
    let mut c = connect().await;
    let u = uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    check(&mut c, "uuid", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", u).await;
    check(&mut c, "uuid", "'{A0EEBC99-9C0B4EF8-BB6D6BB9-BD380A11}'", u).await;
    check(
        &mut c,
        "uuid",
        "'00000000-0000-0000-0000-000000000000'",
        Uuid::default(),
    )
    .await;
    check(
        &mut c,
        "uuid",
        "'ffffffff-ffff-ffff-ffff-ffffffffffff'",
        Uuid([0xff; 16]),
    )
    .await;
    let raw: [u8; 16] = read_bin(
        &mut c,
        "SELECT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid",
    )
    .await;
    assert_eq!(raw, u.0);

    // json keeps its text exactly; jsonb normalizes (key order, spacing, escapes).
    let doc = r#"{"b": 1,  "a": [1, 2.50, "x\u00e9 🦀", null], "c": {}}"#;
    check(&mut c, "json", &quote(doc), Json(doc.to_owned())).await;
    let normalized = r#"{"a": [1, 2.50, "xé 🦀", null], "b": 1, "c": {}}"#;
    let b: Json = read_bin(&mut c, &format!("SELECT {}::jsonb", quote(doc))).await;
    assert_eq!(b.0, normalized);
    check(&mut c, "jsonb", &quote(doc), Json(normalized.to_owned())).await;
    check(&mut c, "jsonb", "'\"\"'", Json("\"\"".to_owned())).await;
    // Invalid JSON is the server's error, and the connection carries on.
    let err = c
        .execute("SELECT $1::jsonb", &[&Json("{nope".to_owned())])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("22P02"), "{err}");
    assert!(c.is_idle());
}

#[tokio::test]
async fn null_of_every_type() {
    let mut c = connect().await;
    check_null::<bool>(&mut c, "bool").await;
    check_null::<i16>(&mut c, "int2").await;
    check_null::<i32>(&mut c, "int4").await;
    check_null::<i64>(&mut c, "int8").await;
    check_null::<f32>(&mut c, "float4").await;
    check_null::<f64>(&mut c, "float8").await;
    check_null::<Numeric>(&mut c, "numeric").await;
    for ty in ["text", "varchar", "bpchar", "name"] {
        check_null::<String>(&mut c, ty).await;
    }
    check_null::<i8>(&mut c, "\"char\"").await;
    check_null::<Vec<u8>>(&mut c, "bytea").await;
    check_null::<Date>(&mut c, "date").await;
    check_null::<Time>(&mut c, "time").await;
    check_null::<Timestamp>(&mut c, "timestamp").await;
    check_null::<TimestampTz>(&mut c, "timestamptz").await;
    check_null::<Interval>(&mut c, "interval").await;
    check_null::<Uuid>(&mut c, "uuid").await;
    check_null::<Json>(&mut c, "json").await;
    check_null::<Json>(&mut c, "jsonb").await;
    check_null::<u32>(&mut c, "oid").await;
    check_null::<Vec<Option<i32>>>(&mut c, "int4[]").await;
    check_null::<Array<String>>(&mut c, "text[]").await;
}

// ---- arrays ------------------------------------------------------------------------------

#[tokio::test]
async fn one_dimensional_arrays_of_every_type_with_nulls() {
    let mut c = connect().await;
    check(
        &mut c,
        "bool[]",
        "'{t,NULL,f}'",
        vec![Some(true), None, Some(false)],
    )
    .await;
    check(
        &mut c,
        "int2[]",
        "'{-32768,NULL,32767}'",
        vec![Some(i16::MIN), None, Some(i16::MAX)],
    )
    .await;
    check(
        &mut c,
        "int4[]",
        "'{1,NULL,3}'",
        vec![Some(1i32), None, Some(3)],
    )
    .await;
    check(
        &mut c,
        "int8[]",
        "ARRAY[NULL,9223372036854775807]",
        vec![None, Some(i64::MAX)],
    )
    .await;
    check(&mut c, "int4[]", "'{}'", Vec::<i32>::new()).await;
    check(&mut c, "int4[]", "'{}'", Vec::<Option<i32>>::new()).await;
    check_by(
        &mut c,
        "float8[]",
        "'{NaN,Infinity,-Infinity,NULL,-0,1.5}'",
        vec![
            Some(f64::NAN),
            Some(f64::INFINITY),
            Some(f64::NEG_INFINITY),
            None,
            Some(-0.0),
            Some(1.5),
        ],
        |a, b| {
            a.len() == b.len()
                && a.iter().zip(b).all(|(x, y)| match (x, y) {
                    (Some(x), Some(y)) => same_f64(x, y),
                    (x, y) => x.is_none() && y.is_none(),
                })
        },
    )
    .await;
    check(&mut c, "float4[]", "'{0.1,NULL}'", vec![Some(0.1f32), None]).await;
    check(
        &mut c,
        "numeric[]",
        "'{1.50,NULL,NaN,-1e-20,12345e20}'",
        vec![
            Some(num("1.50")),
            None,
            Some(Numeric::nan()),
            Some(num("-1e-20")),
            Some(num("12345e20")),
        ],
    )
    .await;
    let tricky = vec![
        Some("a\"b".to_owned()),
        Some("c,d".to_owned()),
        Some("e\\f".to_owned()),
        Some("{g}".to_owned()),
        Some("NULL".to_owned()),
        None,
        Some(String::new()),
        Some(" sp ".to_owned()),
        Some("null".to_owned()),
        Some("🦀 漢".to_owned()),
        Some("new\nline".to_owned()),
    ];
    let tricky_lit =
        r#"ARRAY['a"b','c,d','e\f','{g}','NULL',NULL,'',' sp ','null','🦀 漢',E'new\nline']"#;
    for ty in ["text[]", "varchar[]", "name[]"] {
        check(&mut c, ty, tricky_lit, tricky.clone()).await;
    }
    check(
        &mut c,
        "bpchar[]",
        "ARRAY['ab'::char(3),NULL,'x,y']",
        vec![Some("ab ".to_owned()), None, Some("x,y".to_owned())],
    )
    .await;
    check(
        &mut c,
        "\"char\"[]",
        "ARRAY['a'::\"char\",NULL,'\"'::\"char\",'\\'::\"char\",(-1)::int4::\"char\"]",
        vec![
            Some(b'a' as i8),
            None,
            Some(b'"' as i8),
            Some(b'\\' as i8),
            Some(-1i8),
        ],
    )
    .await;
    let bytes = all_bytes();
    check(
        &mut c,
        "bytea[]",
        &format!("ARRAY['\\x{}'::bytea,NULL,''::bytea]", hex(&bytes)),
        vec![Some(bytes.clone()), None, Some(Vec::new())],
    )
    .await;
    check(
        &mut c,
        "date[]",
        "'{1999-12-31,NULL,infinity,\"0044-03-15 BC\"}'",
        vec![
            Some(date(1999, 12, 31)),
            None,
            Some(Date::INFINITY),
            Some(date(-43, 3, 15)),
        ],
    )
    .await;
    check(
        &mut c,
        "time[]",
        "'{24:00:00,NULL}'",
        vec![Some(Time::from_micros(86_400_000_000).unwrap()), None],
    )
    .await;
    check(
        &mut c,
        "timestamp[]",
        "'{\"0044-03-15 12:00:00 BC\",NULL,-infinity}'",
        vec![
            Some(ts(date(-43, 3, 15), time(12, 0, 0, 0))),
            None,
            Some(Timestamp::NEG_INFINITY),
        ],
    )
    .await;
    c.batch_execute("SET TimeZone = 'Asia/Kolkata'")
        .await
        .unwrap();
    check(
        &mut c,
        "timestamptz[]",
        "'{\"2024-01-15 12:00:00+00\",NULL,\"1850-06-01 00:00:00+00\"}'",
        vec![
            Some(tstz(date(2024, 1, 15), time(12, 0, 0, 0))),
            None,
            Some(tstz(date(1850, 6, 1), Time::MIDNIGHT)),
        ],
    )
    .await;
    check(
        &mut c,
        "interval[]",
        "'{\"-1 days +00:00:01\",NULL,\"1 year\"}'",
        vec![
            Some(Interval::new(0, -1, 1_000_000)),
            None,
            Some(Interval::new(12, 0, 0)),
        ],
    )
    .await;
    let u = uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    check(
        &mut c,
        "uuid[]",
        "'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,NULL}'",
        vec![Some(u), None],
    )
    .await;
    let doc = r#"{"k": "v,\"q\"", "n": [1, null]}"#;
    check(
        &mut c,
        "json[]",
        &format!("ARRAY[{}::json,NULL]", quote(doc)),
        vec![Some(Json(doc.to_owned())), None],
    )
    .await;
    check(
        &mut c,
        "jsonb[]",
        &format!("ARRAY[{}::jsonb,NULL]", quote(doc)),
        vec![Some(Json(doc.to_owned())), None],
    )
    .await;
    check(
        &mut c,
        "oid[]",
        "'{0,4294967295,NULL}'",
        vec![Some(0u32), Some(u32::MAX), None],
    )
    .await;
    // Plain Vec<T> refuses a NULL element, naming the element.
    let row = c
        .query_one("SELECT '{1,NULL}'::int4[] AS a", &[])
        .await
        .unwrap();
    let err = row.try_get::<_, Vec<i32>>(0).unwrap_err().to_string();
    assert!(err.contains("element 2") && err.contains("NULL"), "{err}");
}

#[tokio::test]
async fn arrays_with_lower_bounds_and_dimensions() {
    let mut c = connect().await;
    let lb0 = Array::new(vec![(3, 0)], vec![Some(1i32), None, Some(3)]).unwrap();
    check(&mut c, "int4[]", "'[0:2]={1,NULL,3}'", lb0.clone()).await;
    // The server sees the lower bound we sent.
    let row = c
        .query_one(
            "SELECT array_lower($1::int4[], 1), array_upper($1::int4[], 1)",
            &[&lb0],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i32>(0), row.get::<_, i32>(1)), (0, 2));
    assert_eq!(lb0.get(&[0]), Some(Some(&1)));
    assert_eq!(lb0.get(&[1]), Some(None));
    assert_eq!(lb0.get(&[3]), None);
    // Vec<T> reads a 1-D array of any lower bound (dropping the bound).
    let v: Vec<Option<i32>> = read_bin(&mut c, "SELECT '[0:2]={1,NULL,3}'::int4[]").await;
    assert_eq!(v, vec![Some(1), None, Some(3)]);
    let v: Vec<Option<i32>> = read_text(&mut c, "SELECT '[0:2]={1,NULL,3}'::int4[]").await;
    assert_eq!(v, vec![Some(1), None, Some(3)]);
    let neg = Array::new(vec![(2, -5)], vec![Some("x".to_owned()), None]).unwrap();
    check(&mut c, "text[]", "'[-5:-4]={x,NULL}'", neg).await;

    let two_d = Array::new(
        vec![(2, 1), (3, 1)],
        vec![Some(1i64), Some(2), None, Some(4), Some(5), Some(6)],
    )
    .unwrap();
    check(&mut c, "int8[]", "'{{1,2,NULL},{4,5,6}}'", two_d.clone()).await;
    assert_eq!(two_d.get(&[2, 1]), Some(Some(&4)));
    let shifted = Array::new(vec![(2, 0), (1, 5)], vec![Some(true), None]).unwrap();
    check(&mut c, "bool[]", "'[0:1][5:5]={{t},{NULL}}'", shifted).await;
    let three_d = Array::new(
        vec![(2, 1), (2, 1), (2, 1)],
        (1..=8).map(|i| (i != 5).then(|| format!("s{i}"))).collect(),
    )
    .unwrap();
    check(
        &mut c,
        "text[]",
        "'{{{s1,s2},{s3,s4}},{{NULL,s6},{s7,s8}}}'",
        three_d,
    )
    .await;
    let text_2d = Array::new(
        vec![(2, 1), (2, 1)],
        vec![
            Some("a\"b".to_owned()),
            Some("NULL".to_owned()),
            None,
            Some("{x},\\".to_owned()),
        ],
    )
    .unwrap();
    check(
        &mut c,
        "text[]",
        r#"ARRAY[ARRAY['a"b','NULL'],ARRAY[NULL,'{x},\']]"#,
        text_2d,
    )
    .await;
    // Six dimensions is PostgreSQL's maximum.
    let six = Array::new(vec![(1, 1); 6], vec![Some(7i32)]).unwrap();
    check(&mut c, "int4[]", "'{{{{{{7}}}}}}'", six).await;
    // Vec<T> refuses more than one dimension, saying what to use instead.
    let row = c
        .query_one("SELECT '{{1,2},{3,4}}'::int4[] AS m", &[])
        .await
        .unwrap();
    let err = row.try_get::<_, Vec<i32>>(0).unwrap_err().to_string();
    assert!(err.contains("Array<T>") && err.contains("\"m\""), "{err}");
    // An empty array is the same whatever shape the server was asked for.
    let e: Array<i32> = read_bin(&mut c, "SELECT '{}'::int4[]").await;
    assert_eq!(e, Array::default());
    let row = c
        .query_one(
            "SELECT cardinality($1::int4[])",
            &[&Array::<i32>::default()],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 0);
}

// ---- widening and errors -----------------------------------------------------------------

#[tokio::test]
async fn lossless_widening_and_refused_narrowing() {
    let mut c = connect().await;
    let row = c
        .query_one(
            "SELECT $1::int8, $2::int4, $3::int8, $4::numeric, $5::float8, $6::int8[]",
            &[&1i32, &-7i16, &i16::MIN, &i32::MIN, &0.1f32, &vec![1i32, 2]],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
    assert_eq!(row.get::<_, i32>(1), -7);
    assert_eq!(row.get::<_, i64>(2), i64::from(i16::MIN));
    assert_eq!(row.get::<_, Numeric>(3), num("-2147483648"));
    assert_eq!(row.get::<_, f64>(4), f64::from(0.1f32));
    assert_eq!(row.get::<_, Vec<i64>>(5), vec![1, 2]);

    refused(&mut c, "SELECT $1::int4", &[&5i64], "$1", "i64", "int4").await;
    refused(
        &mut c,
        "SELECT $1::int4, $2::int2",
        &[&1i32, &2i32],
        "$2",
        "i32",
        "int2",
    )
    .await;
    refused(
        &mut c,
        "SELECT $1::float4",
        &[&1.5f64],
        "$1",
        "f64",
        "float4",
    )
    .await;
    refused(
        &mut c,
        "SELECT $1::int4[]",
        &[&vec![1i64]],
        "$1",
        "Vec<i64>",
        "int4[]",
    )
    .await;
    refused(&mut c, "SELECT $1::text", &[&1i32], "$1", "i32", "text").await;
    refused(&mut c, "SELECT $1::int4", &[&"1"], "$1", "str", "int4").await;
}

/// A parameter the statement's type cannot take: a conversion error naming the parameter and
/// both types, nothing sent, and the connection ready for the next query.
async fn refused(
    c: &mut Connection,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    pos: &str,
    rust: &str,
    pg: &str,
) {
    let err = c.execute(sql, params).await.unwrap_err();
    assert!(matches!(err, Error::Conversion(_)), "{sql}: {err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(pos) && msg.contains(rust) && msg.contains(pg),
        "{sql}: {msg}"
    );
    assert!(c.is_idle() && !c.is_broken(), "{sql}");
    let ok: i32 = read_bin(c, "SELECT 42::int4").await;
    assert_eq!(ok, 42);
}

#[tokio::test]
async fn mismatched_reads_are_errors_naming_column_and_types() {
    let mut c = connect().await;
    let row = c
        .query_one(
            "SELECT 7::int4 AS n, NULL::int4 AS z, 'x'::text AS s, 70000::int4 AS big",
            &[],
        )
        .await
        .unwrap();
    let err = row.try_get::<_, String>(0).unwrap_err();
    assert!(matches!(err, Error::Conversion(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("\"n\"") && msg.contains("int4") && msg.contains("String"),
        "{msg}"
    );
    let msg = row
        .try_get::<_, Option<String>>("n")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("\"n\"") && msg.contains("int4"), "{msg}");
    // Narrowing reads are refused by type, never by value.
    let msg = row.try_get::<_, i16>("big").unwrap_err().to_string();
    assert!(
        msg.contains("\"big\"") && msg.contains("int4") && msg.contains("i16"),
        "{msg}"
    );
    let msg = row.try_get::<_, i32>("s").unwrap_err().to_string();
    assert!(
        msg.contains("\"s\"") && msg.contains("text") && msg.contains("i32"),
        "{msg}"
    );
    let msg = row.try_get::<_, i32>("z").unwrap_err().to_string();
    assert!(
        msg.contains("\"z\"") && msg.contains("NULL") && msg.contains("int4"),
        "{msg}"
    );
    assert_eq!(row.get::<_, Option<i32>>("z"), None);
    let msg = row.try_get::<_, i32>("nope").unwrap_err().to_string();
    assert!(
        msg.contains("nope") && msg.contains("n, z, s, big"),
        "{msg}"
    );
    let msg = row.try_get::<_, i32>(9).unwrap_err().to_string();
    assert!(msg.contains('9'), "{msg}");

    // get panics with exactly try_get's message.
    for (idx, expected) in [
        (0usize, row.try_get::<_, String>(0).unwrap_err().to_string()),
        (1, row.try_get::<_, String>(1).unwrap_err().to_string()),
    ] {
        let panic = catch_unwind(AssertUnwindSafe(|| row.get::<_, String>(idx))).unwrap_err();
        let shown = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap();
        assert_eq!(shown, expected);
    }
    let panic = catch_unwind(AssertUnwindSafe(|| row.get::<_, i32>("z"))).unwrap_err();
    let shown = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert_eq!(shown, row.try_get::<_, i32>("z").unwrap_err().to_string());

    // The same through the simple protocol.
    let results = c
        .simple_query("SELECT 7::int4 AS n, NULL::int4 AS z")
        .await
        .unwrap();
    let row = &results[0].rows()[0];
    let msg = row.try_get::<_, String>("n").unwrap_err().to_string();
    assert!(
        msg.contains("\"n\"") && msg.contains("int4") && msg.contains("String"),
        "{msg}"
    );
    let msg = row.try_get::<_, i32>("z").unwrap_err().to_string();
    assert!(msg.contains("\"z\"") && msg.contains("NULL"), "{msg}");
}

#[tokio::test]
#[should_panic(expected = "cannot read column \"n\" of type int4 as alloc::string::String")]
async fn get_panics_on_a_type_mismatch() {
    let mut c = connect().await;
    let row = c.query_one("SELECT 7::int4 AS n", &[]).await.unwrap();
    let _: String = row.get("n");
}

// ---- Value -------------------------------------------------------------------------------

/// (type, literal) pairs covering every type `Value` knows, plus one it does not (`macaddr8`).
fn value_cases() -> Vec<(&'static str, String)> {
    let bytes = format!("'\\x{}'", hex(&all_bytes()));
    let mut v: Vec<(&'static str, String)> = [
        ("bool", "true"),
        ("int2", "(-32768)"),
        ("int4", "2147483647"),
        ("int8", "(-9223372036854775808)"),
        ("float4", "'0.1'"),
        ("float4", "'NaN'"),
        ("float8", "'-Infinity'"),
        ("float8", "'-0'"),
        ("numeric", "'-1e-1000'"),
        ("numeric", "'12345e20'"),
        ("numeric", "'NaN'"),
        ("text", "'🦀 ''q'' \\ {,}'"),
        ("varchar", "''"),
        ("bpchar", "'ab  '"),
        ("name", "'pg_class'"),
        ("\"char\"", "'z'"),
        ("date", "'0044-03-15 BC'"),
        ("date", "'-infinity'"),
        ("time", "'24:00:00'"),
        ("timestamp", "'1999-12-31 23:59:59.999999'"),
        ("timestamptz", "'1850-06-01 00:00:00+00'"),
        ("interval", "'-1 year -2 mons +3 days -04:05:06.7'"),
        ("uuid", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'"),
        ("json", r#"'{"b": 1,  "a": "\u00e9"}'"#),
        ("jsonb", r#"'{"b": 1,  "a": "\u00e9"}'"#),
        ("oid", "4294967295"),
        ("int4[]", "'[0:2]={1,NULL,3}'"),
        ("int8[]", "'{{1,2},{NULL,4}}'"),
        ("text[]", r#"'{"a\"b","c,d","e\\f",NULL,"NULL",""}'"#),
        ("numeric[]", "'{1.50,NaN,NULL}'"),
        ("timestamptz[]", "'{infinity,\"2024-01-15 12:00:00+00\"}'"),
        ("date[]", "'{}'"),
        ("macaddr8", "'08:00:2b:01:02:03:04:05'"),
    ]
    .into_iter()
    .map(|(t, l)| (t, l.to_owned()))
    .collect();
    v.push(("bytea", bytes));
    v
}

/// NaN floats compare unequal under `PartialEq`; everything else is exact.
fn has_nan(v: &Value) -> bool {
    match v {
        Value::Float4(f) => f.is_nan(),
        Value::Float8(f) => f.is_nan(),
        _ => false,
    }
}

#[tokio::test]
async fn values_read_from_the_server_go_back_equal() {
    let mut c = connect().await;
    c.batch_execute("SET TimeZone = 'America/St_Johns'")
        .await
        .unwrap();
    for (ty, lit) in value_cases() {
        let sql = format!("SELECT {lit}::{ty}");
        let bin: Value = read_bin(&mut c, &sql).await;
        let text: Value = read_text(&mut c, &sql).await;
        assert!(!bin.is_null(), "{sql}");
        let cmp = same_on_server(ty, &lit);
        let same: bool = c
            .query_one(&cmp, &[&bin])
            .await
            .unwrap_or_else(|e| panic!("{cmp} with {bin:?}: {e}"))
            .get(0);
        assert!(same, "binary Value {bin:?} of {sql} sent back differs");
        match &text {
            // Text of a type we do not decode stays text: only text-like parameters take it.
            Value::Unknown {
                ty: t,
                format: Format::Text,
                raw,
            } => {
                assert_eq!(ty, "macaddr8", "{sql} decoded to Unknown in text");
                assert_eq!(t.oid(), 774);
                assert_eq!(t.name(), Some("macaddr8"), "looked up in pg_type");
                assert_eq!(raw, b"08:00:2b:01:02:03:04:05");
                assert!(matches!(
                    bin,
                    Value::Unknown {
                        format: Format::Binary,
                        ..
                    }
                ));
                let err = c.execute(&cmp, &[&text]).await.unwrap_err();
                assert!(err.to_string().contains("$1"), "{err}");
            }
            _ => {
                if !has_nan(&bin) {
                    assert_eq!(text, bin, "{sql}: text and binary Values differ");
                }
                let same: bool = c
                    .query_one(&cmp, &[&text])
                    .await
                    .unwrap_or_else(|e| panic!("{cmp} with {text:?}: {e}"))
                    .get(0);
                assert!(same, "text Value {text:?} of {sql} sent back differs");
            }
        }
    }
    // NULL goes to any type.
    let row = c
        .query_one(
            "SELECT $1::int4 IS NULL, $2::jsonb IS NULL",
            &[&Value::Null, &Value::Null],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0) && row.get::<_, bool>(1));
    // Values widen like their inner types, and refuse narrowing with the parameter named.
    let row = c
        .query_one("SELECT $1::int8", &[&Value::Int4(5)])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 5);
    let err = c
        .execute("SELECT $1::int4", &[&Value::Int8(5)])
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("$1") && err.to_string().contains("int4"),
        "{err}"
    );
    assert!(c.is_idle());
}

#[tokio::test]
async fn result_maps_hold_every_type_in_column_order() {
    let mut c = connect().await;
    c.batch_execute("SET TimeZone = 'Asia/Kolkata'")
        .await
        .unwrap();
    let bytes = all_bytes();
    let sql = format!(
        "SELECT true AS b, (-32768)::int2 AS i2, 2147483647::int4 AS i4, \
         (-9223372036854775808)::int8 AS i8, '0.1'::float4 AS f4, '-Infinity'::float8 AS f8, \
         '-1e-30'::numeric AS num, '🦀 漢'::text AS t, 'v'::varchar AS vc, 'ab'::char(3) AS bp, \
         'pg_class'::name AS nm, 'z'::\"char\" AS ch, '\\x{}'::bytea AS by, \
         '0044-03-15 BC'::date AS d, '24:00:00'::time AS tm, \
         '1999-12-31 23:59:59.5'::timestamp AS ts, '2024-01-15 12:00:00+00'::timestamptz AS tz, \
         '1 year -3 days 00:00:01'::interval AS iv, \
         'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, '{{\"a\": 1}}'::json AS j, \
         '{{\"b\":  [true]}}'::jsonb AS jb, 4294967295::oid AS o, \
         '[0:2]={{1,NULL,3}}'::int4[] AS arr, '{{{{a,b}},{{NULL,\"c,d\"}}}}'::text[] AS arr2, \
         NULL::int4 AS nul, '08:00:2b:01:02:03:04:05'::macaddr8 AS ip",
        hex(&bytes)
    );
    let int_array = Value::Array {
        element_type: Type::INT4,
        array: Array::new(
            vec![(3, 0)],
            vec![Some(Value::Int4(1)), None, Some(Value::Int4(3))],
        )
        .unwrap(),
    };
    let text_array = Value::Array {
        element_type: Type::TEXT,
        array: Array::new(
            vec![(2, 1), (2, 1)],
            vec![
                Some(Value::Text("a".into())),
                Some(Value::Text("b".into())),
                None,
                Some(Value::Text("c,d".into())),
            ],
        )
        .unwrap(),
    };
    let expected: Vec<(&str, Value)> = vec![
        ("b", Value::Bool(true)),
        ("i2", Value::Int2(i16::MIN)),
        ("i4", Value::Int4(i32::MAX)),
        ("i8", Value::Int8(i64::MIN)),
        ("f4", Value::Float4(0.1)),
        ("f8", Value::Float8(f64::NEG_INFINITY)),
        ("num", Value::Numeric(num("-1e-30"))),
        ("t", Value::Text("🦀 漢".into())),
        ("vc", Value::Text("v".into())),
        ("bp", Value::Text("ab ".into())),
        ("nm", Value::Text("pg_class".into())),
        ("ch", Value::Char(b'z' as i8)),
        ("by", Value::Bytea(bytes.clone())),
        ("d", Value::Date(date(-43, 3, 15))),
        (
            "tm",
            Value::Time(Time::from_micros(86_400_000_000).unwrap()),
        ),
        (
            "ts",
            Value::Timestamp(ts(date(1999, 12, 31), time(23, 59, 59, 500_000))),
        ),
        (
            "tz",
            Value::TimestampTz(tstz(date(2024, 1, 15), time(12, 0, 0, 0))),
        ),
        ("iv", Value::Interval(Interval::new(12, -3, 1_000_000))),
        (
            "u",
            Value::Uuid(uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")),
        ),
        ("j", Value::Json(Json("{\"a\": 1}".into()))),
        ("jb", Value::Jsonb(Json("{\"b\": [true]}".into()))),
        ("o", Value::Oid(u32::MAX)),
        ("arr", int_array),
        ("arr2", text_array),
        ("nul", Value::Null),
    ];
    let names: Vec<&str> = expected.iter().map(|(n, _)| *n).chain(["ip"]).collect();

    let res = c.execute(&sql, &[]).await.unwrap();
    let maps = res.result();
    assert_eq!(maps.len(), 1);
    let map = &maps[0];
    assert_eq!(map.keys().collect::<Vec<_>>(), names);
    assert_eq!(map.len(), names.len());
    for (name, value) in &expected {
        assert_eq!(map.get(name), Some(value), "binary column {name}");
        assert_eq!(&map[*name], value);
    }
    let ip_bin = map.get("ip").unwrap();
    assert!(
        matches!(ip_bin, Value::Unknown { ty, format: Format::Binary, .. } if ty.oid() == 774),
        "{ip_bin:?}"
    );
    // Case-insensitive lookup falls back after the exact name.
    assert_eq!(map.get("I4"), Some(&Value::Int4(i32::MAX)));
    assert_eq!(map.get("missing"), None);

    // The simple protocol's text values decode to the same Values. The one exception: a type
    // Value does not decode keeps its raw bytes, which are text here and binary above.
    let results = c.simple_query(&sql).await.unwrap();
    let maps = results[0].result();
    let map = &maps[0];
    assert_eq!(map.keys().collect::<Vec<_>>(), names);
    for (name, value) in &expected {
        assert_eq!(map.get(name), Some(value), "text column {name}");
    }
    assert!(
        matches!(
            map.get("ip"),
            Some(Value::Unknown { ty, format: Format::Text, raw })
                if ty.oid() == 774 && raw == b"08:00:2b:01:02:03:04:05"
        ),
        "{:?}",
        map.get("ip")
    );
    assert_eq!(
        res.rows()[0].values().unwrap().len(),
        names.len(),
        "Row::values agrees"
    );
}

// ---- random sweep ------------------------------------------------------------------------

/// A random string for the sweep: half the characters from a pool of quoting, escaping and
/// multi-byte troublemakers, half any scalar value PostgreSQL text can hold.
fn random_text(rng: &mut Rng) -> String {
    const POOL: &[char] = &[
        'a',
        'Z',
        '0',
        ' ',
        '\'',
        '"',
        '\\',
        '{',
        '}',
        ',',
        'é',
        '漢',
        '🦀',
        '\u{301}',
        '\n',
        '\t',
        'ß',
        '\u{10FFFF}',
    ];
    let len = rng.below(24);
    (0..len)
        .map(|_| {
            if rng.below(2) == 0 {
                POOL[rng.below(POOL.len() as u64) as usize]
            } else {
                // Any scalar value except NUL, which PostgreSQL text cannot hold.
                loop {
                    let u = rng.below(0x11_0000) as u32;
                    if let Some(ch) = char::from_u32(u).filter(|&ch| ch != '\0') {
                        break ch;
                    }
                }
            }
        })
        .collect()
}

/// A random numeric literal: up to 40 integer and 40 fraction digits, exponent -60..=60.
fn random_numeric_text(rng: &mut Rng) -> String {
    let digits = |r: &mut Rng, max: u64| -> String {
        let n = r.below(max + 1);
        (0..n)
            .map(|_| char::from(b'0' + r.below(10) as u8))
            .collect()
    };
    let mut int = digits(rng, 40);
    if int.is_empty() {
        int.push('0');
    }
    let frac = digits(rng, 40);
    let exp = rng.below(121) as i64 - 60;
    let sign = if rng.below(2) == 0 { "-" } else { "" };
    format!("{sign}{int}.{frac}e{exp}")
}

fn float_literal<F: std::fmt::LowerExp + Into<f64> + Copy>(v: F) -> String {
    let f: f64 = v.into();
    if f.is_nan() {
        "'NaN'".into()
    } else if f.is_infinite() {
        if f > 0.0 {
            "'Infinity'".into()
        } else {
            "'-Infinity'".into()
        }
    } else {
        format!("'{v:e}'")
    }
}

#[tokio::test]
async fn random_values_round_trip() {
    let mut c = connect().await;
    let seed = 0x5EED_1234_ABCD_0001u64;
    let mut rng = Rng::from_state(seed);
    let sql = "SELECT $1::int2, $2::int4, $3::int8, $4::float4, $5::float8, $6::text, \
               $7::bytea, $8::numeric, $8::numeric::text";
    for i in 0..500 {
        let i2 = rng.next() as i16;
        let i4 = rng.next() as i32;
        let i8 = rng.next() as i64;
        // Mostly finite floats from random bits, NaN/infinities included as they come.
        let f4 = f32::from_bits(rng.next() as u32);
        let f8 = f64::from_bits(rng.next());
        let text = random_text(&mut rng);
        let len = rng.below(64) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let numeric = num(&random_numeric_text(&mut rng));
        let ctx = format!("seed {seed:#x} iteration {i}");

        let row = c
            .query_one(sql, &[&i2, &i4, &i8, &f4, &f8, &text, &bytes, &numeric])
            .await
            .unwrap_or_else(|e| panic!("{ctx}: {e}"));
        assert_eq!(row.get::<_, i16>(0), i2, "{ctx}");
        assert_eq!(row.get::<_, i32>(1), i4, "{ctx}");
        assert_eq!(row.get::<_, i64>(2), i8, "{ctx}");
        assert!(same_f32(&row.get(3), &f4), "{ctx}: {f4:e}");
        assert!(same_f64(&row.get(4), &f8), "{ctx}: {f8:e}");
        assert_eq!(row.get::<_, &str>(5), text, "{ctx}");
        assert_eq!(row.get::<_, &[u8]>(6), &bytes[..], "{ctx}");
        assert_eq!(row.get::<_, Numeric>(7), numeric, "{ctx}");
        assert_eq!(row.get::<_, &str>(8), numeric.to_string(), "{ctx}");

        // The same values as literals, read back in text format.
        let lit = format!(
            "SELECT {i2}::int2, {i4}::int4, {i8}::int8, {}::float4, {}::float8, {}::text, \
             '\\x{}'::bytea, '{numeric}'::numeric",
            float_literal(f4),
            float_literal(f8),
            quote(&text),
            hex(&bytes),
        );
        let results = c
            .simple_query(&lit)
            .await
            .unwrap_or_else(|e| panic!("{ctx}: {lit}: {e}"));
        let row = &results[0].rows()[0];
        assert_eq!(row.get::<_, i16>(0), i2, "{ctx}");
        assert_eq!(row.get::<_, i32>(1), i4, "{ctx}");
        assert_eq!(row.get::<_, i64>(2), i8, "{ctx}");
        assert!(same_f32(&row.get(3), &f4), "{ctx}: {f4:e}");
        assert!(same_f64(&row.get(4), &f8), "{ctx}: {f8:e}");
        assert_eq!(row.get::<_, String>(5), text, "{ctx}");
        assert_eq!(row.get::<_, Vec<u8>>(6), bytes, "{ctx}");
        assert_eq!(row.get::<_, Numeric>(7), numeric, "{ctx}");
    }
}

/// Random dates, times, timestamps and intervals across their whole ranges: sent in binary and
/// read back, our `Display` equal to the server's text output, and that text (read through the
/// simple protocol) decoding to the same value.
#[tokio::test]
async fn random_datetimes_round_trip() {
    let mut c = connect().await;
    c.batch_execute("SET TimeZone = 'UTC'").await.unwrap();
    let seed = 0xDA7E_0000_0000_0042u64;
    let mut rng = Rng::from_state(seed);
    // PostgreSQL's ranges: 4714-11-24 BC to 5874897-12-31 for date, to 294276-12-31 for
    // timestamps (END_TIMESTAMP is 294277-01-01 00:00:00).
    let (date_min, date_max) = (-2_451_545i64, 2_145_031_948i64);
    let (ts_min, ts_end) = (-211_813_488_000_000_000i64, 9_223_371_331_200_000_000i64);
    let sql = "SELECT $1::date, $2::time, $3::timestamp, $4::timestamptz, $5::interval, \
               $1::date::text, $2::time::text, $3::timestamp::text, $4::timestamptz::text, \
               $5::interval::text";
    for i in 0..300 {
        // Half the draws near 2000 (where most data lives), half over the whole range.
        let near = rng.below(2) == 0;
        let pick = |r: &mut Rng, lo: i64, hi: i64, span: i64| -> i64 {
            let (lo, hi) = if near {
                (lo.max(-span), hi.min(span))
            } else {
                (lo, hi)
            };
            // In i128: the timestamp range is wider than i64::MAX.
            let width = (i128::from(hi) - i128::from(lo)) as u64;
            (i128::from(lo) + i128::from(r.next() % width)) as i64
        };
        let d = Date::from_days_since_2000(pick(&mut rng, date_min, date_max + 1, 40_000) as i32);
        let t = Time::from_micros((rng.next() % 86_400_000_001) as i64).unwrap();
        let span = 40_000 * 86_400_000_000;
        let tsv = Timestamp::from_micros_since_2000(pick(&mut rng, ts_min, ts_end, span));
        let tz = TimestampTz::from_micros_since_2000(pick(&mut rng, ts_min, ts_end, span));
        let iv = if near {
            Interval::new(
                rng.below(2401) as i32 - 1200,
                rng.below(2001) as i32 - 1000,
                (rng.next() % 200_000_000_000) as i64 - 100_000_000_000,
            )
        } else {
            Interval::new(rng.next() as i32, rng.next() as i32, rng.next() as i64)
        };
        // PG 17+ reserves the all-extremes interval for ±infinity; a random draw never hits it.
        let ctx = format!("seed {seed:#x} iteration {i}: {d} {t} {tsv} {tz} {iv:?}");

        let row = c
            .query_one(sql, &[&d, &t, &tsv, &tz, &iv])
            .await
            .unwrap_or_else(|e| panic!("{ctx}: {e}"));
        assert_eq!(row.get::<_, Date>(0), d, "{ctx}");
        assert_eq!(row.get::<_, Time>(1), t, "{ctx}");
        assert_eq!(row.get::<_, Timestamp>(2), tsv, "{ctx}");
        assert_eq!(row.get::<_, TimestampTz>(3), tz, "{ctx}");
        assert_eq!(row.get::<_, Interval>(4), iv, "{ctx}");
        let texts: Vec<String> = (5..10).map(|i| row.get::<_, String>(i)).collect();
        assert_eq!(texts[0], d.to_string(), "{ctx}");
        assert_eq!(texts[1], t.to_string(), "{ctx}");
        assert_eq!(texts[2], tsv.to_string(), "{ctx}");
        assert_eq!(texts[3], tz.to_string(), "{ctx}");
        assert_eq!(texts[4], iv.to_string(), "{ctx}");

        // The timestamptz comes back rendered in a rotating session time zone.
        let zone = ["America/St_Johns", "Asia/Kolkata", "UTC"][i % 3];
        let lit = format!(
            "SET TimeZone = '{zone}'; \
             SELECT {}::date, {}::time, {}::timestamp, {}::timestamptz, {}::interval; \
             SET TimeZone = 'UTC'",
            quote(&texts[0]),
            quote(&texts[1]),
            quote(&texts[2]),
            quote(&texts[3]),
            quote(&texts[4]),
        );
        let results = c
            .simple_query(&lit)
            .await
            .unwrap_or_else(|e| panic!("{ctx}: {lit}: {e}"));
        let row = &results[1].rows()[0];
        assert_eq!(row.get::<_, Date>(0), d, "{ctx}");
        assert_eq!(row.get::<_, Time>(1), t, "{ctx}");
        assert_eq!(row.get::<_, Timestamp>(2), tsv, "{ctx}");
        assert_eq!(row.get::<_, TimestampTz>(3), tz, "{ctx} in {zone}");
        assert_eq!(row.get::<_, Interval>(4), iv, "{ctx}");
    }
}
