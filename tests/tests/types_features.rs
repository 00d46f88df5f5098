//! The optional type features against a real PostgreSQL: chrono, time, uuid, rust_decimal and
//! serde_json values both ways in binary (extended protocol) and text (simple protocol) format,
//! NULLs, arrays and edge values (BC dates, `infinity`, microsecond precision, leap seconds,
//! 28-digit decimals, `NaN`, non-UTC session time zones); the `serde` feature's serialization
//! (checked against the server's own `to_json`) and row deserialization; and our std-only
//! types' new conversions, ordering and `Debug`.

mod common;

use std::fmt::Debug;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use pg_harness::{Role, cluster};
use pgwire_lite::types::{
    ConvertError, Date, FromSqlOwned, Numeric, SerdeJson, Time, Timestamp, TimestampTz, Uuid,
};
use pgwire_lite::{Config, Connection, Error, Format, ToSql};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;

// ---- helpers -----------------------------------------------------------------------------

async fn connect() -> Connection {
    let config: Config = cluster()
        .url(Role::Postgres)
        .parse()
        .expect("harness URL parses");
    let mut c = Connection::connect(&config)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    c.batch_execute("SET TimeZone = 'UTC'").await.unwrap();
    c
}

/// `lit::ty` read in binary and in text equals `expected`; `expected` sent as `$1::ty` reads back
/// equal; and the server finds the parameter equal to the literal (so the encoding is right,
/// not just symmetric with our decoder).
async fn check<T>(c: &mut Connection, ty: &str, lit: &str, expected: T)
where
    T: ToSql + Sync + FromSqlOwned + Debug + PartialEq,
{
    let sql = format!("SELECT {lit}::{ty}");
    let b: T = common::read_binary(c, &sql)
        .await
        .unwrap_or_else(|e| panic!("binary {sql}: {e}"));
    assert_eq!(b, expected, "binary {sql}");
    let t: T = common::read_text(c, &sql)
        .await
        .unwrap_or_else(|e| panic!("text {sql}: {e}"));
    assert_eq!(t, expected, "text {sql}");

    let psql = format!("SELECT $1::{ty}");
    let back: T = c
        .query_one(&psql, &[&expected])
        .await
        .unwrap_or_else(|e| panic!("{psql} with {expected:?}: {e}"))
        .try_get(0)
        .unwrap_or_else(|e| panic!("{psql} with {expected:?}: {e}"));
    assert_eq!(back, expected, "{psql}");

    let cmp = match ty {
        // json has no equality, and keeps the literal's whitespace: compare as jsonb.
        "json" => format!("SELECT $1::json::jsonb = {lit}::jsonb"),
        _ => format!("SELECT $1::{ty} = {lit}::{ty}"),
    };
    let same: bool = c
        .query_one(&cmp, &[&expected])
        .await
        .unwrap_or_else(|e| panic!("{cmp} with {expected:?}: {e}"))
        .get(0);
    assert!(same, "server: {expected:?} sent as {ty} differs from {lit}");
}

/// NULL reads as `None` in both formats, `None` is sent as NULL, and a non-Option read fails
/// saying NULL.
async fn check_null<T>(c: &mut Connection, ty: &str)
where
    T: ToSql + Sync + FromSqlOwned + Debug,
{
    let sql = format!("SELECT NULL::{ty} AS v");
    assert!(
        common::read_binary::<Option<T>>(c, &sql)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        common::read_text::<Option<T>>(c, &sql)
            .await
            .unwrap()
            .is_none()
    );
    let e = common::read_binary::<T>(c, &sql)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("NULL") && e.contains("\"v\""), "{ty}: {e}");
    let row = c
        .query_one(&format!("SELECT $1::{ty} IS NULL"), &[&None::<T>])
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0), "{ty}");
}

/// Reading `sql`'s value as `T` fails in both formats with a message containing every one of
/// `needles`.
async fn check_err<T: FromSqlOwned + Debug>(c: &mut Connection, sql: &str, needles: &[&str]) {
    for (format, e) in [
        ("binary", common::read_binary::<T>(c, sql).await),
        ("text", common::read_text::<T>(c, sql).await),
    ] {
        let msg = e
            .expect_err(&format!("{format} {sql} should fail"))
            .to_string();
        for n in needles {
            assert!(msg.contains(n), "{format} {sql}: {msg:?} lacks {n:?}");
        }
    }
}

fn nd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn nt(h: u32, m: u32, s: u32, us: u32) -> NaiveTime {
    NaiveTime::from_hms_micro_opt(h, m, s, us).unwrap()
}

fn num(s: &str) -> Numeric {
    s.parse().unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

// ---- chrono ------------------------------------------------------------------------------

#[tokio::test]
async fn chrono_dates_times_and_timestamps() {
    let mut c = connect().await;
    for (lit, v) in [
        ("'2024-01-02'", nd(2024, 1, 2)),
        ("'2000-01-01'", nd(2000, 1, 1)),
        ("'1999-12-31'", nd(1999, 12, 31)),
        ("'2024-02-29'", nd(2024, 2, 29)),
        // Astronomical years: 44 BC is chrono's year -43.
        ("'0044-03-15 BC'", nd(-43, 3, 15)),
        ("'0001-12-31 BC'", nd(0, 12, 31)),
        // The server's earliest date.
        ("'4714-11-24 BC'", nd(-4713, 11, 24)),
        ("'262142-12-31'", nd(262_142, 12, 31)),
    ] {
        check(&mut c, "date", lit, v).await;
    }
    for (lit, v) in [
        ("'00:00:00'", nt(0, 0, 0, 0)),
        ("'23:59:59.999999'", nt(23, 59, 59, 999_999)),
        ("'12:34:56.000001'", nt(12, 34, 56, 1)),
    ] {
        check(&mut c, "time", lit, v).await;
    }
    for (lit, v) in [
        (
            "'2024-01-02 03:04:05.123456'",
            nd(2024, 1, 2).and_time(nt(3, 4, 5, 123_456)),
        ),
        (
            "'0044-03-15 12:00:00 BC'",
            nd(-43, 3, 15).and_time(nt(12, 0, 0, 0)),
        ),
        (
            "'1969-12-31 23:59:59.999999'",
            nd(1969, 12, 31).and_time(nt(23, 59, 59, 999_999)),
        ),
    ] {
        check(&mut c, "timestamp", lit, v).await;
    }
    let utc = Utc.from_utc_datetime(&nd(2024, 1, 2).and_time(nt(3, 4, 5, 123_456)));
    check(
        &mut c,
        "timestamptz",
        "'2024-01-02 03:04:05.123456+00'",
        utc,
    )
    .await;
    check(
        &mut c,
        "timestamptz",
        "'2024-01-02 08:34:05.123456+05:30'",
        utc.fixed_offset(),
    )
    .await;
    let bc = Utc.from_utc_datetime(&nd(-43, 3, 15).and_time(nt(0, 0, 0, 0)));
    check(&mut c, "timestamptz", "'0044-03-15 00:00:00+00 BC'", bc).await;

    // Any DateTime<Tz> is sent as its instant.
    let east = FixedOffset::east_opt(9 * 3600)
        .unwrap()
        .from_local_datetime(&nd(2024, 1, 2).and_time(nt(12, 4, 5, 123_456)))
        .unwrap();
    let same: bool = c
        .query_one(
            "SELECT $1::timestamptz = '2024-01-02 03:04:05.123456+00'",
            &[&east],
        )
        .await
        .unwrap()
        .get(0);
    assert!(same);

    check_null::<NaiveDate>(&mut c, "date").await;
    check_null::<NaiveTime>(&mut c, "time").await;
    check_null::<NaiveDateTime>(&mut c, "timestamp").await;
    check_null::<DateTime<Utc>>(&mut c, "timestamptz").await;
    check_null::<DateTime<FixedOffset>>(&mut c, "timestamptz").await;
}

#[tokio::test]
async fn chrono_precision_leap_seconds_infinity_and_range() {
    let mut c = connect().await;
    // Nanoseconds are dropped (rounded down) to the server's microseconds.
    let fine = nd(2024, 1, 2)
        .and_hms_nano_opt(3, 4, 5, 123_456_789)
        .unwrap();
    let back: NaiveDateTime = c
        .query_one("SELECT $1::timestamp", &[&fine])
        .await
        .unwrap()
        .get(0);
    assert_eq!(back, nd(2024, 1, 2).and_time(nt(3, 4, 5, 123_456)));
    // Before 1970 too: down, not toward zero.
    let early = nd(1960, 1, 1).and_hms_nano_opt(0, 0, 0, 999).unwrap();
    let back: NaiveDateTime = c
        .query_one("SELECT $1::timestamp", &[&early])
        .await
        .unwrap()
        .get(0);
    assert_eq!(back, nd(1960, 1, 1).and_time(nt(0, 0, 0, 0)));

    // chrono's leap second 23:59:60 is what the server makes of '23:59:60': the next minute.
    let leap = nd(2016, 12, 31)
        .and_hms_milli_opt(23, 59, 59, 1_000)
        .unwrap();
    let same: bool = c
        .query_one(
            "SELECT $1::timestamp = '2016-12-31 23:59:60'::timestamp",
            &[&leap],
        )
        .await
        .unwrap()
        .get(0);
    assert!(same);
    let leap_utc = leap.and_utc();
    let same: bool = c
        .query_one(
            "SELECT $1::timestamptz = '2017-01-01 00:00:00+00'",
            &[&leap_utc],
        )
        .await
        .unwrap()
        .get(0);
    assert!(same);
    // 23:59:60 as a time is 24:00:00, which the server has; half a second later is not.
    let midnight_leap = NaiveTime::from_hms_milli_opt(23, 59, 59, 1_000).unwrap();
    let same: bool = c
        .query_one("SELECT $1::time = '24:00:00'::time", &[&midnight_leap])
        .await
        .unwrap()
        .get(0);
    assert!(same);
    let past = NaiveTime::from_hms_milli_opt(23, 59, 59, 1_500).unwrap();
    let e = c
        .query_one("SELECT $1::time", &[&past])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("24:00:00"), "{e}");

    // What chrono cannot hold is an error naming the value, in both formats.
    check_err::<NaiveDate>(
        &mut c,
        "SELECT 'infinity'::date",
        &["infinity", "NaiveDate"],
    )
    .await;
    check_err::<NaiveDate>(&mut c, "SELECT '-infinity'::date", &["-infinity"]).await;
    check_err::<NaiveDateTime>(
        &mut c,
        "SELECT 'infinity'::timestamp",
        &["infinity", "NaiveDateTime"],
    )
    .await;
    check_err::<DateTime<Utc>>(
        &mut c,
        "SELECT '-infinity'::timestamptz",
        &["-infinity", "DateTime"],
    )
    .await;
    check_err::<DateTime<FixedOffset>>(&mut c, "SELECT 'infinity'::timestamptz", &["infinity"])
        .await;
    check_err::<NaiveTime>(
        &mut c,
        "SELECT '24:00:00'::time",
        &["24:00:00", "NaiveTime"],
    )
    .await;
    check_err::<NaiveDate>(&mut c, "SELECT '5874897-12-31'::date", &["5874897-12-31"]).await;
    // And what the server cannot hold is refused before it is sent.
    let too_early = nd(-5000, 1, 1);
    let e = c
        .query_one("SELECT $1::date", &[&too_early])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("4714-11-24 BC"), "{e}");
    let e = c
        .query_one(
            "SELECT $1::timestamp",
            &[&too_early.and_time(nt(0, 0, 0, 0))],
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("4714-11-24"), "{e}");
    // A parameter of the wrong type says which types.
    let e = c
        .query_one("SELECT $1::date", &[&utc_now_fixed()])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("date"), "{e}");
}

fn utc_now_fixed() -> DateTime<Utc> {
    Utc.from_utc_datetime(&nd(2024, 5, 6).and_time(nt(7, 8, 9, 0)))
}

#[tokio::test]
async fn timestamptz_under_non_utc_session_time_zones() {
    let mut c = connect().await;
    let instant = Utc.from_utc_datetime(&nd(2024, 7, 1).and_time(nt(12, 0, 0, 250_000)));
    for (zone, offset_secs) in [
        ("Asia/Kolkata", 5 * 3600 + 1800),
        ("America/St_Johns", -(2 * 3600 + 1800)), // NDT in July
        ("Europe/Berlin", 2 * 3600),
        ("UTC", 0),
    ] {
        c.batch_execute(&format!("SET TimeZone = '{zone}'"))
            .await
            .unwrap();
        let sql = "SELECT '2024-07-01 12:00:00.25+00'::timestamptz";
        // Binary values are UTC whatever the zone; text ones keep the zone's offset.
        let b: DateTime<FixedOffset> = common::read_binary(&mut c, sql).await.unwrap();
        assert_eq!(b, instant);
        assert_eq!(b.offset().local_minus_utc(), 0, "{zone}");
        let t: DateTime<FixedOffset> = common::read_text(&mut c, sql).await.unwrap();
        assert_eq!(t, instant, "{zone}");
        assert_eq!(t.offset().local_minus_utc(), offset_secs, "{zone}");
        let u: DateTime<Utc> = common::read_text(&mut c, sql).await.unwrap();
        assert_eq!(u, instant, "{zone}");
        let o: time::OffsetDateTime = common::read_text(&mut c, sql).await.unwrap();
        assert_eq!(
            o.unix_timestamp_nanos(),
            instant.timestamp_nanos_opt().unwrap().into()
        );
        assert_eq!(o.offset().whole_seconds(), offset_secs, "{zone}");
        // Sent values are instants: the zone does not shift them.
        let same: bool = c
            .query_one(
                "SELECT $1::timestamptz = '2024-07-01 12:00:00.25+00'",
                &[&t],
            )
            .await
            .unwrap()
            .get(0);
        assert!(same, "{zone}");
    }
}

#[tokio::test]
async fn chrono_arrays() {
    let mut c = connect().await;
    let dates = vec![nd(2024, 1, 2), nd(-43, 3, 15), nd(2000, 1, 1)];
    let sql = "SELECT ARRAY['2024-01-02', '0044-03-15 BC', '2000-01-01']::date[]";
    assert_eq!(
        common::read_binary::<Vec<NaiveDate>>(&mut c, sql)
            .await
            .unwrap(),
        dates
    );
    assert_eq!(
        common::read_text::<Vec<NaiveDate>>(&mut c, sql)
            .await
            .unwrap(),
        dates
    );
    let back: Vec<NaiveDate> = c
        .query_one("SELECT $1::date[]", &[&dates])
        .await
        .unwrap()
        .get(0);
    assert_eq!(back, dates);

    let times = vec![Some(nt(1, 2, 3, 4)), None, Some(nt(23, 59, 59, 999_999))];
    let sql = "SELECT ARRAY['01:02:03.000004', NULL, '23:59:59.999999']::time[]";
    assert_eq!(
        common::read_binary::<Vec<Option<NaiveTime>>>(&mut c, sql)
            .await
            .unwrap(),
        times
    );
    assert_eq!(
        common::read_text::<Vec<Option<NaiveTime>>>(&mut c, sql)
            .await
            .unwrap(),
        times
    );

    let stamps = vec![
        utc_now_fixed(),
        utc_now_fixed() + chrono::TimeDelta::microseconds(1),
    ];
    let same: bool = c
        .query_one(
            "SELECT $1::timestamptz[] = ARRAY['2024-05-06 07:08:09+00', '2024-05-06 07:08:09.000001+00']::timestamptz[]",
            &[&stamps],
        )
        .await
        .unwrap()
        .get(0);
    assert!(same);
    let sql =
        "SELECT ARRAY['2024-05-06 07:08:09+00', '2024-05-06 07:08:09.000001+00']::timestamptz[]";
    assert_eq!(
        common::read_binary::<Vec<DateTime<Utc>>>(&mut c, sql)
            .await
            .unwrap(),
        stamps
    );
    assert_eq!(
        common::read_text::<Vec<DateTime<Utc>>>(&mut c, sql)
            .await
            .unwrap(),
        stamps
    );
    let naive: Vec<NaiveDateTime> = common::read_text(
        &mut c,
        "SELECT ARRAY['2024-05-06 07:08:09', '0001-01-01 00:00:00 BC']::timestamp[]",
    )
    .await
    .unwrap();
    assert_eq!(
        naive,
        vec![
            nd(2024, 5, 6).and_time(nt(7, 8, 9, 0)),
            nd(0, 1, 1).and_time(nt(0, 0, 0, 0))
        ]
    );
    // An infinity inside an array is an error naming the element.
    check_err::<Vec<NaiveDate>>(
        &mut c,
        "SELECT ARRAY['2024-01-01', 'infinity']::date[]",
        &["element 2", "infinity"],
    )
    .await;
}

// ---- time --------------------------------------------------------------------------------

fn td(y: i32, m: u8, d: u8) -> time::Date {
    time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap()
}

fn tt(h: u8, m: u8, s: u8, us: u32) -> time::Time {
    time::Time::from_hms_micro(h, m, s, us).unwrap()
}

#[tokio::test]
async fn time_crate_types() {
    let mut c = connect().await;
    for (lit, v) in [
        ("'2024-01-02'", td(2024, 1, 2)),
        ("'0044-03-15 BC'", td(-43, 3, 15)),
        ("'4714-11-24 BC'", td(-4713, 11, 24)),
        ("'9999-12-31'", td(9999, 12, 31)),
    ] {
        check(&mut c, "date", lit, v).await;
    }
    check(&mut c, "time", "'23:59:59.999999'", tt(23, 59, 59, 999_999)).await;
    check(&mut c, "time", "'00:00:00'", tt(0, 0, 0, 0)).await;
    let pdt = time::PrimitiveDateTime::new(td(2024, 1, 2), tt(3, 4, 5, 123_456));
    check(&mut c, "timestamp", "'2024-01-02 03:04:05.123456'", pdt).await;
    let bc = time::PrimitiveDateTime::new(td(-43, 3, 15), tt(12, 0, 0, 1));
    check(&mut c, "timestamp", "'0044-03-15 12:00:00.000001 BC'", bc).await;
    check(
        &mut c,
        "timestamptz",
        "'2024-01-02 03:04:05.123456+00'",
        pdt.assume_utc(),
    )
    .await;
    // Nanoseconds are dropped.
    let fine = time::PrimitiveDateTime::new(
        td(2024, 1, 2),
        time::Time::from_hms_nano(3, 4, 5, 123_456_789).unwrap(),
    );
    let back: time::PrimitiveDateTime = c
        .query_one("SELECT $1::timestamp", &[&fine])
        .await
        .unwrap()
        .get(0);
    assert_eq!(back, pdt);

    check_err::<time::Date>(
        &mut c,
        "SELECT 'infinity'::date",
        &["infinity", "time::Date"],
    )
    .await;
    check_err::<time::Date>(&mut c, "SELECT '10000-01-01'::date", &["10000-01-01"]).await;
    check_err::<time::PrimitiveDateTime>(&mut c, "SELECT '-infinity'::timestamp", &["-infinity"])
        .await;
    check_err::<time::OffsetDateTime>(&mut c, "SELECT 'infinity'::timestamptz", &["infinity"])
        .await;
    check_err::<time::Time>(&mut c, "SELECT '24:00:00'::time", &["24:00:00"]).await;
    let e = c
        .query_one("SELECT $1::date", &[&td(-9999, 1, 1)])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("4714-11-24 BC"), "{e}");

    check_null::<time::Date>(&mut c, "date").await;
    check_null::<time::Time>(&mut c, "time").await;
    check_null::<time::PrimitiveDateTime>(&mut c, "timestamp").await;
    check_null::<time::OffsetDateTime>(&mut c, "timestamptz").await;

    let dates = vec![Some(td(2024, 1, 2)), None, Some(td(-43, 3, 15))];
    let sql = "SELECT ARRAY['2024-01-02', NULL, '0044-03-15 BC']::date[]";
    assert_eq!(
        common::read_binary::<Vec<Option<time::Date>>>(&mut c, sql)
            .await
            .unwrap(),
        dates
    );
    assert_eq!(
        common::read_text::<Vec<Option<time::Date>>>(&mut c, sql)
            .await
            .unwrap(),
        dates
    );
    let back: Vec<Option<time::Date>> = c
        .query_one("SELECT $1::date[]", &[&dates])
        .await
        .unwrap()
        .get(0);
    assert_eq!(back, dates);
    let stamps = vec![pdt.assume_utc(), bc.assume_utc()];
    let back: Vec<time::OffsetDateTime> = c
        .query_one("SELECT $1::timestamptz[]", &[&stamps])
        .await
        .unwrap()
        .get(0);
    assert_eq!(back, stamps);
}

// ---- uuid --------------------------------------------------------------------------------

#[tokio::test]
async fn uuid_crate() {
    let mut c = connect().await;
    let u = uuid::Uuid::parse_str("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").unwrap();
    check(&mut c, "uuid", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", u).await;
    check(&mut c, "uuid", "'{A0EEBC999C0B4EF8BB6D6BB9BD380A11}'", u).await;
    check(
        &mut c,
        "uuid",
        "'00000000-0000-0000-0000-000000000000'",
        uuid::Uuid::nil(),
    )
    .await;
    check(
        &mut c,
        "uuid",
        "'ffffffff-ffff-ffff-ffff-ffffffffffff'",
        uuid::Uuid::max(),
    )
    .await;
    check_null::<uuid::Uuid>(&mut c, "uuid").await;
    let list = vec![u, uuid::Uuid::nil()];
    let sql = "SELECT ARRAY['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '00000000-0000-0000-0000-000000000000']::uuid[]";
    assert_eq!(
        common::read_binary::<Vec<uuid::Uuid>>(&mut c, sql)
            .await
            .unwrap(),
        list
    );
    assert_eq!(
        common::read_text::<Vec<uuid::Uuid>>(&mut c, sql)
            .await
            .unwrap(),
        list
    );
    let back: Vec<uuid::Uuid> = c
        .query_one("SELECT $1::uuid[]", &[&list])
        .await
        .unwrap()
        .get(0);
    assert_eq!(back, list);
    // Ours and theirs are the same 16 bytes.
    let ours = Uuid::from(u);
    assert_eq!(ours.to_string(), u.to_string());
    assert_eq!(uuid::Uuid::from(ours), u);
    let e = c
        .query_one("SELECT $1::text", &[&u])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("uuid::Uuid"), "{e}");
}

// ---- rust_decimal ------------------------------------------------------------------------

#[tokio::test]
async fn rust_decimal_exact_or_error() {
    let mut c = connect().await;
    for s in [
        "0",
        "0.00",
        "1.50",
        "-12345.678",
        "9999.9999",
        "10000",
        "0.0001",
        // 28 digits, before and after the point.
        "1234567890123456789012345678",
        "0.1234567890123456789012345678",
        "-0.0000000000000000000000000001",
        "79228162514264337593543950335",
        "-79228162514264337593543950335",
        "7.9228162514264337593543950335",
    ] {
        let d = dec(s);
        check(&mut c, "numeric", &format!("'{s}'"), d).await;
        // The scale survives (Decimal's == ignores it).
        let b: Decimal = common::read_binary(&mut c, &format!("SELECT '{s}'::numeric"))
            .await
            .unwrap();
        assert_eq!(b.to_string(), s);
        let t: Decimal = common::read_text(&mut c, &format!("SELECT '{s}'::numeric"))
            .await
            .unwrap();
        assert_eq!(t.to_string(), s);
        let text: String = c
            .query_one("SELECT $1::numeric::text", &[&d])
            .await
            .unwrap()
            .get(0);
        assert_eq!(text, s);
    }
    // Zeros past the 28th place are not rounding: the value is kept, at scale 28.
    let d: Decimal =
        common::read_binary(&mut c, "SELECT '1.000000000000000000000000000000'::numeric")
            .await
            .unwrap();
    assert_eq!(d.to_string(), "1.0000000000000000000000000000");
    // Everything else that does not fit is an error naming the value, never rounded.
    for (lit, needle) in [
        ("'NaN'", "NaN"),
        ("'Infinity'", "Infinity"),
        ("'-Infinity'", "-Infinity"),
        (
            "'79228162514264337593543950336'",
            "79228162514264337593543950336",
        ),
        (
            "'0.00000000000000000000000000001'",
            "0.00000000000000000000000000001",
        ),
        ("'1.00000000000000000000000000001'", "28 decimal places"),
        ("'1e40'", "out of range"),
    ] {
        check_err::<Decimal>(
            &mut c,
            &format!("SELECT {lit}::numeric"),
            &[needle, "rust_decimal::Decimal"],
        )
        .await;
    }
    check_null::<Decimal>(&mut c, "numeric").await;
    let list = vec![Some(dec("1.5")), None, Some(dec("-0.001"))];
    let sql = "SELECT ARRAY[1.5, NULL, -0.001]::numeric[]";
    assert_eq!(
        common::read_binary::<Vec<Option<Decimal>>>(&mut c, sql)
            .await
            .unwrap(),
        list
    );
    assert_eq!(
        common::read_text::<Vec<Option<Decimal>>>(&mut c, sql)
            .await
            .unwrap(),
        list
    );
    let back: Vec<Option<Decimal>> = c
        .query_one("SELECT $1::numeric[]", &[&list])
        .await
        .unwrap()
        .get(0);
    assert_eq!(back, list);
    // Conversions with our Numeric keep the scale and refuse what does not fit.
    assert_eq!(Numeric::from(dec("-1.50")).to_string(), "-1.50");
    assert_eq!(
        Decimal::try_from(&num("0.1234567890123456789012345678")).unwrap(),
        dec("0.1234567890123456789012345678")
    );
    let e: ConvertError = Decimal::try_from(&num("NaN")).unwrap_err();
    assert!(e.to_string().contains("NaN"), "{e}");
}

// ---- serde_json --------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Doc {
    name: String,
    tags: Vec<String>,
    score: Option<f64>,
    nested: Inner,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Inner {
    n: i64,
    ok: bool,
}

fn doc() -> Doc {
    Doc {
        name: "Ünïcode \"quoted\" \\ 🦀".into(),
        tags: vec!["a".into(), "b c".into()],
        score: None,
        nested: Inner { n: -7, ok: true },
    }
}

#[tokio::test]
async fn serde_json_values_and_typed_wrapper() {
    let mut c = connect().await;
    let v = json!({"a": 1, "b": [true, null, "x"], "c": {"d": 1.5}, "e": "é\n"});
    let lit = "'{\"a\": 1, \"b\": [true, null, \"x\"], \"c\": {\"d\": 1.5}, \"e\": \"é\\n\"}'";
    check(&mut c, "jsonb", lit, v.clone()).await;
    check(&mut c, "json", lit, v.clone()).await;
    check(&mut c, "jsonb", "'[]'", json!([])).await;
    check(
        &mut c,
        "jsonb",
        "'\"just a string\"'",
        json!("just a string"),
    )
    .await;
    check(&mut c, "jsonb", "'null'", json!(null)).await;
    check_null::<serde_json::Value>(&mut c, "jsonb").await;

    let d = doc();
    check(
        &mut c,
        "jsonb",
        &format!("'{}'", serde_json::to_string(&d).unwrap()),
        SerdeJson(d.clone()),
    )
    .await;
    check(
        &mut c,
        "json",
        &format!("'{}'", serde_json::to_string(&d).unwrap()),
        SerdeJson(d.clone()),
    )
    .await;
    // The server sees real JSON, not a string of it.
    let name: String = c
        .query_one("SELECT $1::jsonb ->> 'name'", &[&SerdeJson(&d)])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, d.name);
    check_null::<SerdeJson<Doc>>(&mut c, "jsonb").await;
    // A document of the wrong shape names the Rust type.
    check_err::<SerdeJson<Doc>>(&mut c, "SELECT '{\"name\": 5}'::jsonb", &["Doc"]).await;

    let docs = vec![SerdeJson(d.clone()), SerdeJson(d.clone())];
    let back: Vec<SerdeJson<Doc>> = c
        .query_one("SELECT $1::jsonb[]", &[&docs])
        .await
        .unwrap()
        .get(0);
    assert_eq!(back, docs);
    let sql = "SELECT ARRAY['{\"n\": 1, \"ok\": false}', '{\"n\": 2, \"ok\": true}']::jsonb[]";
    let expect = vec![
        SerdeJson(Inner { n: 1, ok: false }),
        SerdeJson(Inner { n: 2, ok: true }),
    ];
    assert_eq!(
        common::read_binary::<Vec<SerdeJson<Inner>>>(&mut c, sql)
            .await
            .unwrap(),
        expect
    );
    assert_eq!(
        common::read_text::<Vec<SerdeJson<Inner>>>(&mut c, sql)
            .await
            .unwrap(),
        expect
    );
    let values: Vec<serde_json::Value> =
        common::read_text(&mut c, "SELECT ARRAY['1', '{\"a\": [2]}']::json[]")
            .await
            .unwrap();
    assert_eq!(values, vec![json!(1), json!({"a": [2]})]);
}

// ---- serde: serialize --------------------------------------------------------------------

/// A select list covering every kind of value, as both our serialization and the server's
/// `to_json` see it.
const EVERYTHING: &str = "SELECT true AS b, 7::int2 AS i2, -8::int4 AS i4, 9000000000::int8 AS i8, \
     1.5::float8 AS f8, 0.25::float4 AS f4, 'Infinity'::float8 AS inf, 'tëxt \"q\"'::text AS t, \
     'ab'::varchar AS vc, '\\x00ff10'::bytea AS by, '2024-01-02'::date AS d, '0044-03-15 BC'::date AS bc, \
     'infinity'::date AS dinf, '03:04:05.5'::time AS tm, '2024-01-02 03:04:05.123456'::timestamp AS ts, \
     '2024-01-02 03:04:05.123456+00'::timestamptz AS tz, '1 day 02:00:00'::interval AS iv, \
     'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, '{\"k\": [1, 2.5, \"x\", null, {\"z\": false}]}'::jsonb AS j, \
     '[3, {\"b\": 1, \"a\": 2}]'::json AS jo, ARRAY[1, NULL, 3]::int4[] AS arr, \
     ARRAY[['a', 'b'], ['c', NULL]]::text[] AS arr2, NULL::int4 AS nul, 'r'::\"char\" AS ch, 26::oid AS o";

#[tokio::test]
async fn serialized_results_match_the_servers_to_json() {
    let mut c = connect().await;
    let server: serde_json::Value = c
        .query_one(
            &format!("SELECT to_json(x)::text FROM ({EVERYTHING}) x"),
            &[],
        )
        .await
        .unwrap()
        .get::<_, String>(0)
        .parse()
        .unwrap();
    let serde_json::Value::Object(server) = server else {
        panic!("to_json gave {server}")
    };
    // Binary (extended protocol) and text (simple protocol) results serialize the same.
    let bin = c.execute(EVERYTHING, &[]).await.unwrap();
    let text = c.simple_query(EVERYTHING).await.unwrap().remove(0);
    for (how, res) in [("binary", &bin), ("text", &text)] {
        let ours = serde_json::to_value(res).unwrap();
        let serde_json::Value::Array(rows) = &ours else {
            panic!("{how}: {ours}")
        };
        assert_eq!(rows.len(), 1);
        let serde_json::Value::Object(row) = &rows[0] else {
            panic!("{how}: {ours}")
        };
        assert_eq!(row.len(), server.len(), "{how}");
        for (k, v) in &server {
            if k == "o" {
                // oid: a number (to_json quotes it).
                assert_eq!(v, "26");
                assert_eq!(row[k], 26, "{how}");
                continue;
            }
            if k == "bc" {
                // BC years: ISO 8601's astronomical year, where to_json prints "0044-03-15 BC"
                // (which no JSON date parser reads).
                assert_eq!(v, "0044-03-15 BC");
                assert_eq!(row[k], "-0043-03-15", "{how}");
                continue;
            }
            assert_eq!(row.get(k), Some(v), "{how}: column {k}");
        }
        // Same through result() maps and through a single Row.
        assert_eq!(serde_json::to_value(res.result()).unwrap(), ours, "{how}");
        assert_eq!(
            serde_json::to_value(&res.rows()[0]).unwrap(),
            rows[0],
            "{how}"
        );
        // Columns in select-list order, json keys in their own order.
        let s = serde_json::to_string(&res.result()[0]).unwrap();
        assert!(
            s.starts_with("{\"b\":true,\"i2\":7,\"i4\":-8,"),
            "{how}: {s}"
        );
        assert!(s.contains("\"jo\":[3,{\"b\":1,\"a\":2}]"), "{how}: {s}");
        assert!(s.ends_with("\"o\":26}"), "{how}: {s}");
    }

    // numeric differs from to_json on purpose: an exact string, whatever reads it.
    let res = c
        .execute(
            "SELECT 12345678901234567890.123456789::numeric AS n, 'NaN'::numeric AS nan, 'NaN'::float8 AS f",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&res).unwrap(),
        json!([{"n": "12345678901234567890.123456789", "nan": "NaN", "f": "NaN"}])
    );
    // Duplicate names stay, as in row_to_json; an empty result is an empty list.
    let res = c.execute("SELECT 1 AS a, 2 AS a", &[]).await.unwrap();
    assert_eq!(serde_json::to_string(&res).unwrap(), "[{\"a\":1,\"a\":2}]");
    let res = c.execute("SELECT 1 WHERE false", &[]).await.unwrap();
    assert_eq!(serde_json::to_string(&res).unwrap(), "[]");
}

// ---- serde: deserialize ------------------------------------------------------------------

#[derive(Debug, Deserialize, PartialEq)]
struct Account {
    id: i64,
    name: String,
    balance: Decimal,
    ratio: f64,
    created: DateTime<Utc>,
    born: NaiveDate,
    key: uuid::Uuid,
    note: Option<String>,
    tags: Vec<String>,
    profile: Inner,
    raw: Vec<u8>,
    #[serde(rename = "Kind")]
    kind: Kind,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Admin,
    User,
}

const ACCOUNTS: &str = "SELECT id::int8, name, balance, ratio, created, born, key, note, tags, profile, raw, kind AS \"KIND\" FROM (VALUES \
    (1, 'Ann', 12.50::numeric, 0.5::float8, '2024-01-02 03:04:05.5+00'::timestamptz, '1990-05-06'::date, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, NULL::text, ARRAY['x', 'y'], '{\"n\": 1, \"ok\": true}'::jsonb, '\\x0102'::bytea, 'admin'), \
    (2, 'Bob', -0.001::numeric, 2::float8, '1999-12-31 23:59:59+00'::timestamptz, '0044-03-15 BC'::date, '00000000-0000-0000-0000-000000000000'::uuid, 'hi', ARRAY[]::text[], '{\"n\": -2, \"ok\": false}'::jsonb, ''::bytea, 'user') \
    ) AS v(id, name, balance, ratio, created, born, key, note, tags, profile, raw, kind) ORDER BY id";

fn accounts() -> Vec<Account> {
    vec![
        Account {
            id: 1,
            name: "Ann".into(),
            balance: dec("12.50"),
            ratio: 0.5,
            created: Utc.from_utc_datetime(&nd(2024, 1, 2).and_time(nt(3, 4, 5, 500_000))),
            born: nd(1990, 5, 6),
            key: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".parse().unwrap(),
            note: None,
            tags: vec!["x".into(), "y".into()],
            profile: Inner { n: 1, ok: true },
            raw: vec![1, 2],
            kind: Kind::Admin,
        },
        Account {
            id: 2,
            name: "Bob".into(),
            balance: dec("-0.001"),
            ratio: 2.0,
            created: Utc.from_utc_datetime(&nd(1999, 12, 31).and_time(nt(23, 59, 59, 0))),
            born: nd(-43, 3, 15),
            key: uuid::Uuid::nil(),
            note: Some("hi".into()),
            tags: vec![],
            profile: Inner { n: -2, ok: false },
            raw: vec![],
            kind: Kind::User,
        },
    ]
}

#[tokio::test]
async fn rows_deserialize_into_structs() {
    let mut c = connect().await;
    let bin = c.execute(ACCOUNTS, &[]).await.unwrap();
    assert_eq!(bin.deserialize::<Account>().unwrap(), accounts());
    let text = c.simple_query(ACCOUNTS).await.unwrap().remove(0);
    assert_eq!(text.rows()[0].columns()[0].format(), Format::Text);
    assert_eq!(text.deserialize::<Account>().unwrap(), accounts());

    // Borrowed from the row, tuples by position, one column as a plain value, maps by name.
    #[derive(Deserialize)]
    struct Borrowed<'a> {
        name: &'a str,
        raw: &'a [u8],
        profile: &'a str,
    }
    let row = &bin.rows()[0];
    let b: Borrowed<'_> = row.deserialize().unwrap();
    assert_eq!((b.name, b.raw), ("Ann", &[1u8, 2][..]));
    assert_eq!(
        serde_json::from_str::<Inner>(b.profile).unwrap(),
        Inner { n: 1, ok: true }
    );
    let row = c
        .query_one("SELECT 1::int4, 'two'::text, NULL::float8", &[])
        .await
        .unwrap();
    let t: (i32, String, Option<f64>) = row.deserialize().unwrap();
    assert_eq!(t, (1, "two".into(), None));
    let row = c.query_one("SELECT 42::int8 AS n", &[]).await.unwrap();
    assert_eq!(row.deserialize::<i64>().unwrap(), 42);
    let m: std::collections::BTreeMap<String, serde_json::Value> = row.deserialize().unwrap();
    assert_eq!(m["n"], json!(42));
    // numeric into integers when whole, floats always.
    let row = c
        .query_one("SELECT 12.00::numeric AS a, 0.1::numeric AS b", &[])
        .await
        .unwrap();
    #[derive(Deserialize)]
    struct Nums {
        a: i32,
        b: f64,
    }
    let n: Nums = row.deserialize().unwrap();
    assert_eq!((n.a, n.b), (12, 0.1));
}

#[tokio::test]
async fn deserialize_errors_name_the_column_or_field() {
    let mut c = connect().await;
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct User {
        id: i32,
        name: String,
    }
    // A misnamed column: the missing field, the Rust type and the columns there are.
    let res = c
        .execute("SELECT 1::int4 AS id, 'x'::text AS nmae", &[])
        .await
        .unwrap();
    let e = res.deserialize::<User>().unwrap_err();
    assert!(matches!(e, Error::Conversion(_)), "{e:?}");
    let msg = e.to_string();
    for needle in ["missing field `name`", "User", "columns: id, nmae", "row 1"] {
        assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    }
    // NULL into a non-Option field, in both formats.
    let sql = "SELECT 1::int4 AS id, NULL::text AS name";
    let bin = c.execute(sql, &[]).await.unwrap();
    let text = c.simple_query(sql).await.unwrap().remove(0);
    for res in [bin, text] {
        let msg = res.rows()[0].deserialize::<User>().unwrap_err().to_string();
        for needle in ["column \"name\"", "NULL", "not an Option"] {
            assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
        }
    }
    // A type that does not fit names the column and its type.
    let res = c
        .execute("SELECT 'seven'::text AS id, 'x'::text AS name", &[])
        .await
        .unwrap();
    let msg = res.rows()[0].deserialize::<User>().unwrap_err().to_string();
    for needle in ["column \"id\" (text)", "invalid type", "i32"] {
        assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    }
    let res = c
        .execute("SELECT 2147483648::int8 AS id, 'x'::text AS name", &[])
        .await
        .unwrap();
    let msg = res.rows()[0].deserialize::<User>().unwrap_err().to_string();
    assert!(msg.contains("column \"id\" (int8)"), "{msg}");
    // A fraction into an integer is refused, not truncated.
    let res = c
        .execute("SELECT 1.5::numeric AS id, 'x'::text AS name", &[])
        .await
        .unwrap();
    let msg = res.rows()[0].deserialize::<User>().unwrap_err().to_string();
    assert!(
        msg.contains("column \"id\" (numeric)") && msg.contains("1.5"),
        "{msg}"
    );
    // Several columns into one value.
    let msg = res.rows()[0].deserialize::<i32>().unwrap_err().to_string();
    assert!(msg.contains("2 columns"), "{msg}");
}

// ---- our own types -----------------------------------------------------------------------

#[tokio::test]
async fn numeric_orders_and_converts_like_the_server() {
    let mut c = connect().await;
    let values = [
        "NaN",
        "Infinity",
        "-Infinity",
        "0",
        "-0.5",
        "0.5",
        "1e20",
        "-1e20",
        "123.456",
        "123.4560001",
        "0.0000001",
        "-0.0000001",
        "9999",
        "10000",
        "99999999.99",
    ];
    let list: Vec<Numeric> = values.iter().map(|s| num(s)).collect();
    let server: Vec<Numeric> = c
        .query_one(
            "SELECT array_agg(v ORDER BY v) FROM unnest($1::numeric[]) v",
            &[&list],
        )
        .await
        .unwrap()
        .get(0);
    let mut ours = list.clone();
    ours.sort();
    assert_eq!(ours, server);
    assert!(num("NaN") > num("Infinity"));
    assert_eq!(
        num("1.5").cmp_value(&num("1.50")),
        std::cmp::Ordering::Equal
    );
    assert!(num("1.5") < num("1.50") && num("1.50") < num("1.51"));

    // to_f64 is the server's numeric::float8, bit for bit.
    for s in [
        "0.1",
        "1e-300",
        "123456789012345678901234567890",
        "-2.5",
        "1e308",
        "NaN",
    ] {
        let f: f64 = c
            .query_one("SELECT $1::numeric::float8", &[&num(s)])
            .await
            .unwrap()
            .get(0);
        let ours = num(s).to_f64();
        assert!(
            f.to_bits() == ours.to_bits() || (f.is_nan() && ours.is_nan()),
            "{s}: {f} vs {ours}"
        );
    }
    // Beyond f64's range (where the server's cast errors) is infinity.
    assert_eq!(num("1e400").to_f64(), f64::INFINITY);
    assert_eq!(num("-1e400").to_f64(), f64::NEG_INFINITY);
    assert_eq!(Numeric::from(0.1f64).to_string(), "0.1");
    assert_eq!(Numeric::from(-1.5e-7f64).to_string(), "-0.00000015");
    assert!(Numeric::from(f64::NAN).is_nan());
    // i128 both ways, exact.
    let big = i128::MIN;
    let back: Numeric = c
        .query_one("SELECT $1::numeric", &[&Numeric::from(big)])
        .await
        .unwrap()
        .get(0);
    assert_eq!(back.to_string(), big.to_string());
    assert_eq!(i128::try_from(&back).unwrap(), big);
    assert_eq!(i64::try_from(&num("42.000")).unwrap(), 42);
    let e = i64::try_from(&num("42.5")).unwrap_err().to_string();
    assert!(e.contains("42.5"), "{e}");
    assert!(i64::try_from(&num("9223372036854775808")).is_err());
}

#[tokio::test]
async fn dates_and_times_print_as_the_server_does() {
    let mut c = connect().await;
    let row = c
        .query_one(
            "SELECT '2024-01-02 03:04:05.123456+00'::timestamptz, '0044-03-15 BC'::date, '04:05:06.7'::time, \
             '2024-01-02 03:04:05'::timestamp",
            &[],
        )
        .await
        .unwrap();
    let tz: TimestampTz = row.get(0);
    let d: Date = row.get(1);
    let t: Time = row.get(2);
    let ts: Timestamp = row.get(3);
    assert_eq!(
        format!("{tz:?}"),
        "TimestampTz(2024-01-02 03:04:05.123456+00)"
    );
    assert_eq!(format!("{d:?}"), "Date(0044-03-15 BC)");
    assert_eq!(format!("{t:?}"), "Time(04:05:06.7)");
    assert_eq!(format!("{ts:?}"), "Timestamp(2024-01-02 03:04:05)");
    // Display is the server's text (TimeZone is UTC here).
    let texts: (String, String, String, String) = c
        .query_one(
            "SELECT $1::timestamptz::text, $2::date::text, $3::time::text, $4::timestamp::text",
            &[&tz, &d, &t, &ts],
        )
        .await
        .unwrap()
        .deserialize()
        .unwrap();
    assert_eq!(
        texts,
        (tz.to_string(), d.to_string(), t.to_string(), ts.to_string())
    );
    // Ours and chrono's convert both ways.
    let chrono_tz = DateTime::<Utc>::try_from(tz).unwrap();
    assert_eq!(TimestampTz::try_from(chrono_tz).unwrap(), tz);
    assert_eq!(NaiveDate::try_from(d).unwrap(), nd(-43, 3, 15));
    assert!(NaiveDate::try_from(Date::INFINITY).is_err());
    assert_eq!(time::Date::try_from(d).unwrap(), td(-43, 3, 15));
    assert_eq!(Time::from(tt(4, 5, 6, 700_000)), t);
}
