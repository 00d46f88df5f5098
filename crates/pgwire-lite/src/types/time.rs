//! `time` (feature `time`): `Date`, `Time`, `PrimitiveDateTime` and `OffsetDateTime` for `date`,
//! `time`, `timestamp` and `timestamptz`.
//!
//! As for chrono, every conversion goes through our own types, which have PostgreSQL's layout;
//! values that do not fit either side are errors naming the value.

use ::time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};
use bytes::BytesMut;

use super::codec::{cannot_decode, cannot_encode, utf8};
use super::datetime::{PG_MIN_DATE_DAYS, PG_MIN_TIMESTAMP, USECS_PER_DAY, USECS_PER_SEC};
use super::{
    BoxError, ConvertError, Date, FromSql, IsNull, Time, Timestamp, TimestampTz, ToSql, Type,
};

/// The Julian day number of 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_JULIAN_DAY: i32 = 2_451_545;
/// Microseconds from 1970-01-01 to 2000-01-01.
const UNIX_TO_PG_MICROS: i128 = 946_684_800 * 1_000_000;

fn infinite(what: &str, target: &str) -> ConvertError {
    ConvertError::new(format!("{what} cannot be represented as {target}"))
}

// ---- our types from time's -----------------------------------------------------------------

/// Days since 2000-01-01, checked against the server's earliest date.
fn pg_days(d: &::time::Date) -> Result<i32, ConvertError> {
    // Julian days of time's range (±9999 years, ±999999 with `large-dates`) are far from i32's
    // limits.
    let days = d.to_julian_day() - PG_EPOCH_JULIAN_DAY;
    if days < PG_MIN_DATE_DAYS {
        return Err(ConvertError::new(format!(
            "date {d} is before PostgreSQL's earliest date, 4714-11-24 BC"
        )));
    }
    Ok(days)
}

/// Microseconds since midnight, sub-microsecond parts dropped.
fn micros_of_day(t: &::time::Time) -> i64 {
    let (h, m, s, us) = t.as_hms_micro();
    (i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(s)) * USECS_PER_SEC + i64::from(us)
}

/// Microseconds since 2000-01-01 of a UTC (or zone-less) date and time; `time`'s `large-dates`
/// reach past `i64`, hence checked.
fn pg_micros(date: &::time::Date, time: &::time::Time, what: &str) -> Result<i64, ConvertError> {
    let days = i64::from(date.to_julian_day() - PG_EPOCH_JULIAN_DAY);
    days.checked_mul(USECS_PER_DAY)
        .and_then(|v| v.checked_add(micros_of_day(time)))
        .filter(|&v| v >= PG_MIN_TIMESTAMP && v != i64::MAX)
        .ok_or_else(|| {
            ConvertError::new(format!(
                "{what} {date} {time} is outside PostgreSQL's timestamp range"
            ))
        })
}

impl TryFrom<&::time::Date> for Date {
    type Error = ConvertError;

    /// Fails for dates before PostgreSQL's earliest, 4714-11-24 BC.
    fn try_from(d: &::time::Date) -> Result<Date, ConvertError> {
        pg_days(d).map(Date::from_days_since_2000)
    }
}

impl TryFrom<::time::Date> for Date {
    type Error = ConvertError;

    /// As for `&time::Date`.
    fn try_from(d: ::time::Date) -> Result<Date, ConvertError> {
        Date::try_from(&d)
    }
}

impl From<&::time::Time> for Time {
    /// Rounds down to the microsecond.
    fn from(t: &::time::Time) -> Time {
        // Always within 0..24:00:00: time has no leap seconds.
        Time::from_micros(micros_of_day(t)).unwrap_or(Time::MIDNIGHT)
    }
}

impl From<::time::Time> for Time {
    /// Rounds down to the microsecond.
    fn from(t: ::time::Time) -> Time {
        Time::from(&t)
    }
}

impl TryFrom<&PrimitiveDateTime> for Timestamp {
    type Error = ConvertError;

    /// Rounds down to the microsecond; fails outside PostgreSQL's range.
    fn try_from(dt: &PrimitiveDateTime) -> Result<Timestamp, ConvertError> {
        pg_micros(&dt.date(), &dt.time(), "timestamp").map(Timestamp::from_micros_since_2000)
    }
}

impl TryFrom<PrimitiveDateTime> for Timestamp {
    type Error = ConvertError;

    /// As for `&PrimitiveDateTime`.
    fn try_from(dt: PrimitiveDateTime) -> Result<Timestamp, ConvertError> {
        Timestamp::try_from(&dt)
    }
}

impl TryFrom<&OffsetDateTime> for TimestampTz {
    type Error = ConvertError;

    /// The same instant, rounded down to the microsecond; fails outside PostgreSQL's range.
    fn try_from(dt: &OffsetDateTime) -> Result<TimestampTz, ConvertError> {
        let micros = dt.unix_timestamp_nanos().div_euclid(1000) - UNIX_TO_PG_MICROS;
        i64::try_from(micros)
            .ok()
            .filter(|&v| v >= PG_MIN_TIMESTAMP && v != i64::MAX)
            .map(TimestampTz::from_micros_since_2000)
            .ok_or_else(|| {
                ConvertError::new(format!(
                    "timestamptz {dt} is outside PostgreSQL's timestamp range"
                ))
            })
    }
}

impl TryFrom<OffsetDateTime> for TimestampTz {
    type Error = ConvertError;

    /// As for `&OffsetDateTime`.
    fn try_from(dt: OffsetDateTime) -> Result<TimestampTz, ConvertError> {
        TimestampTz::try_from(&dt)
    }
}

// ---- time's types from ours ----------------------------------------------------------------

impl TryFrom<Date> for ::time::Date {
    type Error = ConvertError;

    /// Fails for the infinities and dates beyond time's range (±9999 years without its
    /// `large-dates` feature).
    fn try_from(d: Date) -> Result<::time::Date, ConvertError> {
        if !d.is_finite() {
            return Err(infinite(&format!("date {d}"), "time::Date"));
        }
        d.days_since_2000()
            .checked_add(PG_EPOCH_JULIAN_DAY)
            .and_then(|jd| ::time::Date::from_julian_day(jd).ok())
            .ok_or_else(|| ConvertError::new(format!("date {d} is out of time::Date's range")))
    }
}

/// time's value for microseconds since midnight below 24:00:00.
fn time_of_day(micros: i64) -> Option<::time::Time> {
    let secs = micros / USECS_PER_SEC;
    let h = u8::try_from(secs / 3600).ok()?;
    let m = u8::try_from(secs / 60 % 60).ok()?;
    let s = u8::try_from(secs % 60).ok()?;
    let us = u32::try_from(micros % USECS_PER_SEC).ok()?;
    ::time::Time::from_hms_micro(h, m, s, us).ok()
}

impl TryFrom<Time> for ::time::Time {
    type Error = ConvertError;

    /// Fails for `24:00:00`, which time has no value for.
    fn try_from(t: Time) -> Result<::time::Time, ConvertError> {
        time_of_day(t.micros()).ok_or_else(|| infinite(&format!("time {t}"), "time::Time"))
    }
}

impl TryFrom<Timestamp> for PrimitiveDateTime {
    type Error = ConvertError;

    /// Fails for the infinities and values beyond time's range.
    fn try_from(ts: Timestamp) -> Result<PrimitiveDateTime, ConvertError> {
        if !ts.is_finite() {
            return Err(infinite(
                &format!("timestamp {ts}"),
                "time::PrimitiveDateTime",
            ));
        }
        let micros = ts.micros_since_2000();
        let date = i32::try_from(micros.div_euclid(USECS_PER_DAY))
            .ok()
            .and_then(|d| d.checked_add(PG_EPOCH_JULIAN_DAY))
            .and_then(|jd| ::time::Date::from_julian_day(jd).ok());
        let time = time_of_day(micros.rem_euclid(USECS_PER_DAY));
        date.zip(time)
            .map(|(d, t)| PrimitiveDateTime::new(d, t))
            .ok_or_else(|| ConvertError::new(format!("timestamp {ts} is out of time's range")))
    }
}

impl TryFrom<TimestampTz> for OffsetDateTime {
    type Error = ConvertError;

    /// The instant at offset +00:00; fails for the infinities and values beyond time's range.
    fn try_from(ts: TimestampTz) -> Result<OffsetDateTime, ConvertError> {
        if !ts.is_finite() {
            return Err(infinite(
                &format!("timestamptz {ts}"),
                "time::OffsetDateTime",
            ));
        }
        let nanos = (i128::from(ts.micros_since_2000()) + UNIX_TO_PG_MICROS) * 1000;
        OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .map_err(|_| ConvertError::new(format!("timestamptz {ts} is out of time's range")))
    }
}

// ---- ToSql / FromSql -----------------------------------------------------------------------

through!(::time::Date, Date, DATE);
through!(PrimitiveDateTime, Timestamp, TIMESTAMP);

impl ToSql for ::time::Time {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if *ty != Type::TIME {
            return Err(cannot_encode::<Self>(ty));
        }
        Time::from(self).to_sql(ty, out)
    }

    fn accepts(&self, ty: &Type) -> bool {
        *ty == Type::TIME
    }

    fn type_hint(&self) -> Option<Type> {
        Some(Type::TIME)
    }
}

impl<'a> FromSql<'a> for ::time::Time {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::TIME {
            return Err(cannot_decode::<Self>(ty));
        }
        Ok(::time::Time::try_from(Time::from_sql(ty, raw)?)?)
    }

    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::TIME {
            return Err(cannot_decode::<Self>(ty));
        }
        Ok(::time::Time::try_from(Time::from_sql_text(ty, raw)?)?)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIME
    }
}

impl ToSql for OffsetDateTime {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if *ty != Type::TIMESTAMPTZ {
            return Err(cannot_encode::<Self>(ty));
        }
        TimestampTz::try_from(self)?.to_sql(ty, out)
    }

    fn accepts(&self, ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }

    fn type_hint(&self) -> Option<Type> {
        Some(Type::TIMESTAMPTZ)
    }
}

impl<'a> FromSql<'a> for OffsetDateTime {
    /// Binary values carry no zone: the instant at +00:00.
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::TIMESTAMPTZ {
            return Err(cannot_decode::<Self>(ty));
        }
        Ok(OffsetDateTime::try_from(TimestampTz::from_sql(ty, raw)?)?)
    }

    /// Text values keep the offset the session time zone printed them with.
    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::TIMESTAMPTZ {
            return Err(cannot_decode::<Self>(ty));
        }
        let (ts, offset) = TimestampTz::parse_with_offset(utf8("timestamptz", raw)?)?;
        let utc = OffsetDateTime::try_from(ts)?;
        let zone = UtcOffset::from_whole_seconds(offset).map_err(|_| {
            ConvertError::new(format!(
                "UTC offset of {offset} seconds is out of time's range"
            ))
        })?;
        Ok(utc.checked_to_offset(zone).ok_or_else(|| {
            ConvertError::new(format!(
                "timestamptz {ts} at offset {offset} s is out of time's range"
            ))
        })?)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }
}
