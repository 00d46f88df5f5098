//! `date`, `time`, `timestamp`, `timestamptz`, `interval`: std-only representations that mirror
//! PostgreSQL's own (counts since 2000-01-01, microsecond resolution), plus `SystemTime`.
//!
//! Years are astronomical in the API (year 0 is 1 BC, -1 is 2 BC); text uses PostgreSQL's
//! ` BC` suffix. The proleptic Gregorian calendar is used throughout, as the server does.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};

mod parse;

use super::codec::{cannot_decode, cannot_encode, err, fixed, snippet, utf8};
use super::{BoxError, FromSql, IsNull, ToSql, Type};
use parse::*;

pub(crate) const USECS_PER_SEC: i64 = 1_000_000;
const USECS_PER_MINUTE: i64 = 60 * USECS_PER_SEC;
const USECS_PER_HOUR: i64 = 60 * USECS_PER_MINUTE;
pub(crate) const USECS_PER_DAY: i64 = 24 * USECS_PER_HOUR;
/// Days from 1970-01-01 to 2000-01-01 (PostgreSQL's epoch).
const UNIX_TO_PG_DAYS: i64 = 10_957;
/// The server's earliest `date`, 4714-11-24 BC (Julian day 0), in days since 2000-01-01
/// (`DATETIME_MIN_JULIAN` in its datatype/timestamp.h). Its latest, 5874897-12-31, is beyond
/// every other library's range.
#[cfg(any(feature = "chrono", feature = "time"))]
pub(crate) const PG_MIN_DATE_DAYS: i32 = -2_451_545;
/// The server's earliest `timestamp`, 4714-11-24 00:00:00 BC, in microseconds since 2000-01-01
/// (`MIN_TIMESTAMP`); its latest, 294276-12-31 23:59:59.999999, is beyond chrono's and time's.
#[cfg(any(feature = "chrono", feature = "time"))]
pub(crate) const PG_MIN_TIMESTAMP: i64 = -211_813_488_000_000_000;

// ---- calendar ----------------------------------------------------------------------------

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Both are small and non-negative by construction.
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// Writes `YYYY-MM-DD` for an astronomical year (the ` BC` suffix is the caller's, since it
/// goes at the very end of a timestamp).
fn write_ymd(f: &mut fmt::Formatter<'_>, y: i64, m: u32, d: u32) -> fmt::Result {
    let shown = if y <= 0 { 1 - y } else { y };
    write!(f, "{shown:04}-{m:02}-{d:02}")
}

/// Writes `HH:MM:SS[.ffffff]` with trailing zeros of the fraction removed, as the server does.
fn write_hms(f: &mut fmt::Formatter<'_>, hours: u64, micros_of_hour: u64) -> fmt::Result {
    let min = micros_of_hour / 60_000_000;
    let sec = micros_of_hour / 1_000_000 % 60;
    let frac = micros_of_hour % 1_000_000;
    write!(f, "{hours:02}:{min:02}:{sec:02}")?;
    if frac != 0 {
        let s = format!("{frac:06}");
        write!(f, ".{}", s.trim_end_matches('0'))?;
    }
    Ok(())
}

// ---- Date --------------------------------------------------------------------------------

/// A PostgreSQL `date`: days since 2000-01-01, or ±infinity.
///
/// `Debug` and `Display` print it as the server does (`2024-01-02`, `0044-03-15 BC`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(i32);

impl Date {
    /// `infinity`: later than every other date.
    pub const INFINITY: Date = Date(i32::MAX);
    /// `-infinity`: earlier than every other date.
    pub const NEG_INFINITY: Date = Date(i32::MIN);

    /// The date this many days after 2000-01-01 (`i32::MAX`/`MIN` are the infinities).
    pub const fn from_days_since_2000(days: i32) -> Date {
        Date(days)
    }

    /// Days since 2000-01-01, as on the wire.
    pub const fn days_since_2000(self) -> i32 {
        self.0
    }

    /// The date of an astronomical year (0 = 1 BC), month 1-12, day 1-31; `None` if invalid
    /// or out of range.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Date> {
        if month == 0 || month > 12 || day == 0 || day > days_in_month(year.into(), month) {
            return None;
        }
        let days = days_from_civil(year.into(), month, day) - UNIX_TO_PG_DAYS;
        i32::try_from(days)
            .ok()
            .filter(|&d| d != i32::MAX && d != i32::MIN)
            .map(Date)
    }

    /// (astronomical year, month, day), or `None` for the infinities.
    pub fn ymd(self) -> Option<(i32, u32, u32)> {
        if !self.is_finite() {
            return None;
        }
        let (y, m, d) = civil_from_days(i64::from(self.0) + UNIX_TO_PG_DAYS);
        Some((i32::try_from(y).ok()?, m, d))
    }

    /// False for the infinities.
    pub fn is_finite(self) -> bool {
        self != Date::INFINITY && self != Date::NEG_INFINITY
    }
}

impl fmt::Display for Date {
    /// ISO: `2024-01-02`, `0044-03-15 BC`, `infinity`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Date::INFINITY => f.write_str("infinity"),
            Date::NEG_INFINITY => f.write_str("-infinity"),
            Date(days) => {
                let (y, m, d) = civil_from_days(i64::from(days) + UNIX_TO_PG_DAYS);
                write_ymd(f, y, m, d)?;
                if y <= 0 {
                    f.write_str(" BC")?;
                }
                Ok(())
            }
        }
    }
}

impl FromStr for Date {
    type Err = BoxError;

    /// Reads ISO dates as the server prints them (`2024-01-02`, `0044-03-15 BC`, `infinity`).
    fn from_str(s: &str) -> Result<Date, BoxError> {
        match s {
            "infinity" => return Ok(Date::INFINITY),
            "-infinity" => return Ok(Date::NEG_INFINITY),
            _ => {}
        }
        let mut c = Cursor::new(s);
        parse_ymd(&mut c)
            .and_then(|ymd| finish_date(&mut c, ymd))
            .and_then(|d| i32::try_from(d).ok())
            .filter(|&d| d != i32::MAX && d != i32::MIN)
            .map(Date)
            .ok_or_else(|| bad_text("date", s))
    }
}

// ---- Time --------------------------------------------------------------------------------

/// A PostgreSQL `time` (without time zone): microseconds since midnight, `24:00:00` included.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(i64);

impl Time {
    /// Midnight.
    pub const MIDNIGHT: Time = Time(0);

    /// The time this many microseconds after midnight; `None` outside `0..=24:00:00`.
    pub fn from_micros(micros: i64) -> Option<Time> {
        (0..=USECS_PER_DAY)
            .contains(&micros)
            .then_some(Time(micros))
    }

    /// Microseconds since midnight, as on the wire.
    pub const fn micros(self) -> i64 {
        self.0
    }

    /// The time of day from its parts; `None` if out of range (24:00:00 is allowed).
    pub fn from_hms_micro(hour: u32, minute: u32, second: u32, micro: u32) -> Option<Time> {
        if minute > 59 || second > 59 || micro > 999_999 {
            return None;
        }
        Time::from_micros(
            i64::from(hour) * USECS_PER_HOUR
                + i64::from(minute) * USECS_PER_MINUTE
                + i64::from(second) * USECS_PER_SEC
                + i64::from(micro),
        )
    }

    /// (hour, minute, second, microsecond).
    pub fn hms_micro(self) -> (u32, u32, u32, u32) {
        let v = u64::try_from(self.0).unwrap_or(0);
        let part = |x: u64| u32::try_from(x).unwrap_or(0);
        (
            part(v / 3_600_000_000),
            part(v / 60_000_000 % 60),
            part(v / 1_000_000 % 60),
            part(v % 1_000_000),
        )
    }
}

impl fmt::Display for Time {
    /// `04:05:06.7`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = u64::try_from(self.0).unwrap_or(0);
        write_hms(f, v / 3_600_000_000, v % 3_600_000_000)
    }
}

impl FromStr for Time {
    type Err = BoxError;

    /// Reads `HH:MM:SS[.ffffff]`.
    fn from_str(s: &str) -> Result<Time, BoxError> {
        let mut c = Cursor::new(s);
        parse_hms(&mut c)
            .filter(|_| c.done())
            .map(Time)
            .ok_or_else(|| bad_text("time", s))
    }
}

// ---- Timestamp / TimestampTz -------------------------------------------------------------

macro_rules! timestamp_common {
    ($t:ident) => {
        impl $t {
            /// `infinity`: later than every other value.
            pub const INFINITY: $t = $t(i64::MAX);
            /// `-infinity`: earlier than every other value.
            pub const NEG_INFINITY: $t = $t(i64::MIN);
            /// 2000-01-01 00:00:00, PostgreSQL's epoch.
            pub const PG_EPOCH: $t = $t(0);

            /// The value this many microseconds after 2000-01-01 00:00:00 (`i64::MAX`/`MIN` are
            /// the infinities).
            pub const fn from_micros_since_2000(micros: i64) -> $t {
                $t(micros)
            }

            /// Microseconds since 2000-01-01 00:00:00, as on the wire.
            pub const fn micros_since_2000(self) -> i64 {
                self.0
            }

            /// False for the infinities.
            pub fn is_finite(self) -> bool {
                self != $t::INFINITY && self != $t::NEG_INFINITY
            }

            /// Combines a finite date and a time; `None` if the date is infinite.
            pub fn new(date: Date, time: Time) -> Option<$t> {
                if !date.is_finite() {
                    return None;
                }
                i64::from(date.0)
                    .checked_mul(USECS_PER_DAY)?
                    .checked_add(time.0)
                    .filter(|v| *v != i64::MAX)
                    .map($t)
            }

            /// The date part, `None` for the infinities.
            pub fn date(self) -> Option<Date> {
                if !self.is_finite() {
                    return None;
                }
                i32::try_from(self.0.div_euclid(USECS_PER_DAY))
                    .ok()
                    .map(Date)
            }

            /// The time-of-day part, `None` for the infinities.
            pub fn time(self) -> Option<Time> {
                self.is_finite()
                    .then(|| Time(self.0.rem_euclid(USECS_PER_DAY)))
            }

            fn fmt_parts(self, f: &mut fmt::Formatter<'_>, zone: &str) -> fmt::Result {
                match self {
                    $t::INFINITY => return f.write_str("infinity"),
                    $t::NEG_INFINITY => return f.write_str("-infinity"),
                    _ => {}
                }
                let days = self.0.div_euclid(USECS_PER_DAY);
                let rem = u64::try_from(self.0.rem_euclid(USECS_PER_DAY)).unwrap_or(0);
                let (y, m, d) = civil_from_days(days + UNIX_TO_PG_DAYS);
                write_ymd(f, y, m, d)?;
                f.write_str(" ")?;
                write_hms(f, rem / 3_600_000_000, rem % 3_600_000_000)?;
                f.write_str(zone)?;
                if y <= 0 {
                    f.write_str(" BC")?;
                }
                Ok(())
            }
        }
    };
}

/// A PostgreSQL `timestamp` (without time zone): microseconds since 2000-01-01 00:00:00, or
/// ±infinity.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// A PostgreSQL `timestamptz`: microseconds since 2000-01-01 00:00:00 UTC, or ±infinity.
///
/// The server converts to and from the session time zone in text only; in binary the value is
/// always UTC. Converts to and from [`SystemTime`]. `Debug` and `Display` print it in UTC as the
/// server does with `TimeZone=UTC` (`2024-01-02 03:04:05.123456+00`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimestampTz(i64);

timestamp_common!(Timestamp);
timestamp_common!(TimestampTz);

impl fmt::Display for Timestamp {
    /// ISO: `2024-01-02 03:04:05.123456`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_parts(f, "")
    }
}

impl fmt::Display for TimestampTz {
    /// ISO in UTC: `2024-01-02 03:04:05.123456+00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_parts(f, "+00")
    }
}

impl FromStr for Timestamp {
    type Err = BoxError;

    /// Reads `2024-01-02 03:04:05[.ffffff][ BC]` and `±infinity`.
    fn from_str(s: &str) -> Result<Timestamp, BoxError> {
        match s {
            "infinity" => Ok(Timestamp::INFINITY),
            "-infinity" => Ok(Timestamp::NEG_INFINITY),
            _ => parse_timestamp(s, false)
                .map(Timestamp)
                .ok_or_else(|| bad_text("timestamp", s)),
        }
    }
}

impl FromStr for TimestampTz {
    type Err = BoxError;

    /// Reads `2024-01-02 03:04:05[.ffffff]±HH[:MM[:SS]][ BC]` (any session time zone) and
    /// `±infinity`.
    fn from_str(s: &str) -> Result<TimestampTz, BoxError> {
        match s {
            "infinity" => Ok(TimestampTz::INFINITY),
            "-infinity" => Ok(TimestampTz::NEG_INFINITY),
            _ => parse_timestamp(s, true)
                .map(TimestampTz)
                .ok_or_else(|| bad_text("timestamptz", s)),
        }
    }
}

impl TimestampTz {
    /// Reads the server's text (any session time zone) and also returns the UTC offset it was
    /// written in, in seconds east of UTC (0 for the infinities), for types that keep it.
    #[cfg(any(feature = "chrono", feature = "time"))]
    pub(crate) fn parse_with_offset(s: &str) -> Result<(TimestampTz, i32), BoxError> {
        match s {
            "infinity" => Ok((TimestampTz::INFINITY, 0)),
            "-infinity" => Ok((TimestampTz::NEG_INFINITY, 0)),
            _ => parse_timestamp_offset(s, true)
                .map(|(micros, offset)| (TimestampTz(micros), offset))
                .ok_or_else(|| bad_text("timestamptz", s)),
        }
    }

    /// The instant at which UTC wall-clock time reads `ts`.
    pub fn from_utc(ts: Timestamp) -> TimestampTz {
        TimestampTz(ts.0)
    }

    /// The UTC wall-clock reading of this instant.
    pub fn to_utc(self) -> Timestamp {
        Timestamp(self.0)
    }

    /// The same instant as a [`SystemTime`]; `None` for the infinities.
    pub fn to_system_time(self) -> Option<SystemTime> {
        if !self.is_finite() {
            return None;
        }
        let epoch = UNIX_EPOCH.checked_add(Duration::from_secs(946_684_800))?;
        let d = Duration::from_micros(self.0.unsigned_abs());
        if self.0 >= 0 {
            epoch.checked_add(d)
        } else {
            epoch.checked_sub(d)
        }
    }

    /// The instant of a [`SystemTime`], rounded down to the microsecond; `None` if it is out
    /// of range.
    pub fn from_system_time(t: SystemTime) -> Option<TimestampTz> {
        let epoch = UNIX_EPOCH.checked_add(Duration::from_secs(946_684_800))?;
        let micros = match t.duration_since(epoch) {
            Ok(d) => i64::try_from(d.as_micros()).ok()?,
            Err(e) => {
                let nanos = e.duration().as_nanos();
                -i64::try_from(nanos.div_ceil(1000)).ok()?
            }
        };
        Some(TimestampTz(micros)).filter(|t| t.is_finite())
    }
}

// ---- Interval ----------------------------------------------------------------------------

/// A PostgreSQL `interval`: months, days and microseconds, kept apart as the server keeps them
/// (a month is not a fixed number of days, nor a day a fixed number of hours across DST).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Interval {
    /// Months (years are 12 months).
    pub months: i32,
    /// Days.
    pub days: i32,
    /// Microseconds.
    pub micros: i64,
}

impl Interval {
    /// `infinity` (PostgreSQL 17+).
    pub const INFINITY: Interval = Interval {
        months: i32::MAX,
        days: i32::MAX,
        micros: i64::MAX,
    };
    /// `-infinity` (PostgreSQL 17+).
    pub const NEG_INFINITY: Interval = Interval {
        months: i32::MIN,
        days: i32::MIN,
        micros: i64::MIN,
    };

    /// An interval from its three parts.
    pub const fn new(months: i32, days: i32, micros: i64) -> Interval {
        Interval {
            months,
            days,
            micros,
        }
    }
}

impl fmt::Display for Interval {
    /// `IntervalStyle=postgres`: `1 year 2 mons 3 days 04:05:06.7`, `-1 days +00:00:01`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Interval::INFINITY {
            return f.write_str("infinity");
        }
        if *self == Interval::NEG_INFINITY {
            return f.write_str("-infinity");
        }
        // Mirrors EncodeInterval/AddPostgresIntPart in the server's datetime.c.
        let mut is_zero = true;
        let mut is_before = false;
        let mut part = |f: &mut fmt::Formatter<'_>, value: i64, unit: &str| -> fmt::Result {
            if value == 0 {
                return Ok(());
            }
            write!(
                f,
                "{}{}{value} {unit}{}",
                if is_zero { "" } else { " " },
                if is_before && value > 0 { "+" } else { "" },
                if value != 1 { "s" } else { "" }
            )?;
            is_before = value < 0;
            is_zero = false;
            Ok(())
        };
        let months = i64::from(self.months);
        part(f, months / 12, "year")?;
        part(f, months % 12, "mon")?;
        part(f, i64::from(self.days), "day")?;
        if is_zero || self.micros != 0 {
            let sign = if self.micros < 0 {
                "-"
            } else if is_before {
                "+"
            } else {
                ""
            };
            f.write_str(if is_zero { "" } else { " " })?;
            f.write_str(sign)?;
            let a = self.micros.unsigned_abs();
            write_hms(f, a / 3_600_000_000, a % 3_600_000_000)?;
        }
        Ok(())
    }
}

macro_rules! debug_as_display {
    ($($t:ident),*) => {
        $(
            impl fmt::Debug for $t {
                /// `Date(2024-01-02)`: the server's text in the type's name, not raw counts.
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    write!(f, concat!(stringify!($t), "({})"), self)
                }
            }
        )*
    };
}

debug_as_display!(Date, Time, Timestamp, TimestampTz, Interval);

impl FromStr for Interval {
    type Err = BoxError;

    /// Reads `IntervalStyle=postgres` output: `[N year[s]] [N mon[s]] [N day[s]] [±H:MM:SS[.f]]`
    /// and `±infinity`.
    fn from_str(s: &str) -> Result<Interval, BoxError> {
        match s {
            "infinity" => return Ok(Interval::INFINITY),
            "-infinity" => return Ok(Interval::NEG_INFINITY),
            _ => {}
        }
        parse_interval(s).ok_or_else(|| bad_text("interval", s))
    }
}

// ---- ISO 8601 (JSON) ----------------------------------------------------------------------

/// Writes a value as PostgreSQL's `to_json` does (ISO 8601, `T` between date and time, the
/// zone as `+00:00`, BC years as negative astronomical years: 44 BC is `-0043`), and the
/// infinities as `infinity`/`-infinity`.
#[cfg(feature = "serde")]
pub(crate) struct Iso8601<T>(pub(crate) T);

#[cfg(feature = "serde")]
fn write_iso_ymd(f: &mut fmt::Formatter<'_>, days_since_2000: i64) -> fmt::Result {
    let (y, m, d) = civil_from_days(days_since_2000 + UNIX_TO_PG_DAYS);
    if y < 0 {
        write!(f, "-{:04}-{m:02}-{d:02}", -y)
    } else {
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

#[cfg(feature = "serde")]
fn write_iso_timestamp(f: &mut fmt::Formatter<'_>, micros: i64, zone: &str) -> fmt::Result {
    match micros {
        i64::MAX => return f.write_str("infinity"),
        i64::MIN => return f.write_str("-infinity"),
        _ => {}
    }
    write_iso_ymd(f, micros.div_euclid(USECS_PER_DAY))?;
    f.write_str("T")?;
    let rem = u64::try_from(micros.rem_euclid(USECS_PER_DAY)).unwrap_or(0);
    write_hms(f, rem / 3_600_000_000, rem % 3_600_000_000)?;
    f.write_str(zone)
}

#[cfg(feature = "serde")]
impl fmt::Display for Iso8601<Date> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Date::INFINITY => f.write_str("infinity"),
            Date::NEG_INFINITY => f.write_str("-infinity"),
            Date(days) => write_iso_ymd(f, i64::from(days)),
        }
    }
}

#[cfg(feature = "serde")]
impl fmt::Display for Iso8601<Timestamp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_iso_timestamp(f, self.0.0, "")
    }
}

#[cfg(feature = "serde")]
impl fmt::Display for Iso8601<TimestampTz> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_iso_timestamp(f, self.0.0, "+00:00")
    }
}

// ---- ToSql / FromSql ---------------------------------------------------------------------

macro_rules! datetime_sql {
    ($t:ty, $ty:ident, $what:literal, $n:literal, |$raw:ident| $decode:expr, |$v:ident, $out:ident| $encode:expr) => {
        impl ToSql for $t {
            fn to_sql(&self, ty: &Type, $out: &mut BytesMut) -> Result<IsNull, BoxError> {
                if *ty != Type::$ty {
                    return Err(cannot_encode::<$t>(ty));
                }
                let $v = self;
                $encode;
                Ok(IsNull::No)
            }

            fn accepts(&self, ty: &Type) -> bool {
                *ty == Type::$ty
            }

            fn type_hint(&self) -> Option<Type> {
                Some(Type::$ty)
            }
        }

        impl<'a> FromSql<'a> for $t {
            fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
                if *ty != Type::$ty {
                    return Err(cannot_decode::<$t>(ty));
                }
                let $raw: [u8; $n] = fixed($what, raw)?;
                $decode
            }

            fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
                if *ty != Type::$ty {
                    return Err(cannot_decode::<$t>(ty));
                }
                utf8($what, raw)?.parse()
            }

            fn accepts(ty: &Type) -> bool {
                *ty == Type::$ty
            }
        }
    };
}

datetime_sql!(
    Date,
    DATE,
    "date",
    4,
    |b| Ok(Date(i32::from_be_bytes(b))),
    |v, out| out.put_i32(v.0)
);
datetime_sql!(
    Time,
    TIME,
    "time",
    8,
    |b| {
        let v = i64::from_be_bytes(b);
        Time::from_micros(v).ok_or_else(|| {
            err(format!(
                "invalid time value: {v} microseconds is out of range"
            ))
        })
    },
    |v, out| out.put_i64(v.0)
);
datetime_sql!(
    Timestamp,
    TIMESTAMP,
    "timestamp",
    8,
    |b| Ok(Timestamp(i64::from_be_bytes(b))),
    |v, out| out.put_i64(v.0)
);
datetime_sql!(
    TimestampTz,
    TIMESTAMPTZ,
    "timestamptz",
    8,
    |b| Ok(TimestampTz(i64::from_be_bytes(b))),
    |v, out| out.put_i64(v.0)
);
datetime_sql!(
    Interval,
    INTERVAL,
    "interval",
    16,
    |b| {
        let (micros, rest) = b.split_at(8);
        let (days, months) = rest.split_at(4);
        Ok(Interval {
            micros: i64::from_be_bytes(fixed("interval", micros)?),
            days: i32::from_be_bytes(fixed("interval", days)?),
            months: i32::from_be_bytes(fixed("interval", months)?),
        })
    },
    |v, out| {
        out.put_i64(v.micros);
        out.put_i32(v.days);
        out.put_i32(v.months);
    }
);

impl ToSql for SystemTime {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        TimestampTz::from_system_time(*self)
            .ok_or_else(|| err("SystemTime out of range for timestamptz"))?
            .to_sql(ty, out)
    }

    fn accepts(&self, ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }

    fn type_hint(&self) -> Option<Type> {
        Some(Type::TIMESTAMPTZ)
    }
}

impl<'a> FromSql<'a> for SystemTime {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        to_system_time(TimestampTz::from_sql(ty, raw)?)
    }

    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        to_system_time(TimestampTz::from_sql_text(ty, raw)?)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }
}

fn to_system_time(t: TimestampTz) -> Result<SystemTime, BoxError> {
    t.to_system_time().ok_or_else(|| {
        err(format!(
            "timestamptz {t} cannot be represented as SystemTime"
        ))
    })
}
