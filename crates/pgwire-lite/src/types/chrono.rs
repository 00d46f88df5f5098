//! `chrono` (feature `chrono`): `NaiveDate`, `NaiveTime`, `NaiveDateTime`, `DateTime<Utc>` and
//! `DateTime<FixedOffset>` for `date`, `time`, `timestamp` and `timestamptz`.
//!
//! Every conversion goes through our own types ([`Date`], [`Time`], [`Timestamp`],
//! [`TimestampTz`]), which are PostgreSQL's layout: the same arithmetic in binary and text, no
//! allocation. What chrono cannot hold (`infinity`, `24:00:00`) and what the server cannot
//! (dates before 4714-11-24 BC) are errors that name the value.

use ::chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc,
};
use bytes::BytesMut;

use super::codec::{cannot_decode, cannot_encode, utf8};
use super::datetime::{PG_MIN_DATE_DAYS, PG_MIN_TIMESTAMP, USECS_PER_DAY, USECS_PER_SEC};
use super::{
    BoxError, ConvertError, Date, FromSql, IsNull, Time, Timestamp, TimestampTz, ToSql, Type,
};

/// `NaiveDate::from_ymd(2000, 1, 1).num_days_from_ce()`: PostgreSQL's epoch in chrono's count.
const PG_EPOCH_CE_DAYS: i32 = 730_120;

fn infinite(what: &str, target: &str) -> ConvertError {
    ConvertError::new(format!("{what} cannot be represented as {target}"))
}

// ---- our types from chrono's --------------------------------------------------------------

/// Days since 2000-01-01, checked against the server's earliest date.
fn pg_days(d: &NaiveDate) -> Result<i32, ConvertError> {
    // chrono's range (±262143 years) keeps this far from overflow.
    let days = d.num_days_from_ce() - PG_EPOCH_CE_DAYS;
    if days < PG_MIN_DATE_DAYS {
        return Err(ConvertError::new(format!(
            "date {d} is before PostgreSQL's earliest date, 4714-11-24 BC"
        )));
    }
    Ok(days)
}

/// Microseconds since midnight, sub-microsecond parts dropped; a leap second (chrono's
/// `23:59:60`) counts into the next minute, as the server reads `23:59:60`.
fn micros_of_day(t: &NaiveTime) -> i64 {
    i64::from(t.num_seconds_from_midnight()) * USECS_PER_SEC + i64::from(t.nanosecond() / 1000)
}

/// Microseconds since 2000-01-01 00:00:00, checked against the server's earliest timestamp.
fn pg_micros(dt: &NaiveDateTime) -> Result<i64, ConvertError> {
    // chrono's range keeps this within i64 (about 8.3e18 at most).
    let days = i64::from(dt.date().num_days_from_ce() - PG_EPOCH_CE_DAYS);
    let micros = days * USECS_PER_DAY + micros_of_day(&dt.time());
    if micros < PG_MIN_TIMESTAMP {
        return Err(ConvertError::new(format!(
            "timestamp {dt} is before PostgreSQL's earliest timestamp, 4714-11-24 00:00:00 BC"
        )));
    }
    Ok(micros)
}

impl TryFrom<&NaiveDate> for Date {
    type Error = ConvertError;

    /// Fails for dates before PostgreSQL's earliest, 4714-11-24 BC.
    fn try_from(d: &NaiveDate) -> Result<Date, ConvertError> {
        pg_days(d).map(Date::from_days_since_2000)
    }
}

impl TryFrom<NaiveDate> for Date {
    type Error = ConvertError;

    /// Fails for dates before PostgreSQL's earliest, 4714-11-24 BC.
    fn try_from(d: NaiveDate) -> Result<Date, ConvertError> {
        Date::try_from(&d)
    }
}

impl TryFrom<&NaiveTime> for Time {
    type Error = ConvertError;

    /// Rounds down to the microsecond; fails for a leap second at 23:59:60 (past 24:00:00).
    fn try_from(t: &NaiveTime) -> Result<Time, ConvertError> {
        Time::from_micros(micros_of_day(t))
            .ok_or_else(|| ConvertError::new(format!("time {t} (a leap second) is past 24:00:00")))
    }
}

impl TryFrom<NaiveTime> for Time {
    type Error = ConvertError;

    /// As for `&NaiveTime`.
    fn try_from(t: NaiveTime) -> Result<Time, ConvertError> {
        Time::try_from(&t)
    }
}

impl TryFrom<&NaiveDateTime> for Timestamp {
    type Error = ConvertError;

    /// Rounds down to the microsecond (a leap second reads as the next minute's first second,
    /// as the server reads `23:59:60`); fails before 4714-11-24 BC.
    fn try_from(dt: &NaiveDateTime) -> Result<Timestamp, ConvertError> {
        pg_micros(dt).map(Timestamp::from_micros_since_2000)
    }
}

impl TryFrom<NaiveDateTime> for Timestamp {
    type Error = ConvertError;

    /// As for `&NaiveDateTime`.
    fn try_from(dt: NaiveDateTime) -> Result<Timestamp, ConvertError> {
        Timestamp::try_from(&dt)
    }
}

impl<Tz: TimeZone> TryFrom<&DateTime<Tz>> for TimestampTz {
    type Error = ConvertError;

    /// The same instant (any time zone); as for `NaiveDateTime` otherwise.
    fn try_from(dt: &DateTime<Tz>) -> Result<TimestampTz, ConvertError> {
        pg_micros(&dt.naive_utc()).map(TimestampTz::from_micros_since_2000)
    }
}

impl<Tz: TimeZone> TryFrom<DateTime<Tz>> for TimestampTz {
    type Error = ConvertError;

    /// As for `&DateTime<Tz>`.
    fn try_from(dt: DateTime<Tz>) -> Result<TimestampTz, ConvertError> {
        TimestampTz::try_from(&dt)
    }
}

// ---- chrono's types from ours --------------------------------------------------------------

impl TryFrom<Date> for NaiveDate {
    type Error = ConvertError;

    /// Fails for the infinities and dates beyond chrono's range (±262143 years).
    fn try_from(d: Date) -> Result<NaiveDate, ConvertError> {
        if !d.is_finite() {
            return Err(infinite(&format!("date {d}"), "chrono::NaiveDate"));
        }
        d.days_since_2000()
            .checked_add(PG_EPOCH_CE_DAYS)
            .and_then(NaiveDate::from_num_days_from_ce_opt)
            .ok_or_else(|| {
                ConvertError::new(format!("date {d} is out of chrono::NaiveDate's range"))
            })
    }
}

impl TryFrom<Time> for NaiveTime {
    type Error = ConvertError;

    /// Fails for `24:00:00`, which chrono has no value for.
    fn try_from(t: Time) -> Result<NaiveTime, ConvertError> {
        let micros = t.micros();
        u32::try_from(micros / USECS_PER_SEC)
            .ok()
            .zip(u32::try_from(micros % USECS_PER_SEC * 1000).ok())
            .and_then(|(secs, nanos)| NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos))
            .ok_or_else(|| infinite(&format!("time {t}"), "chrono::NaiveTime"))
    }
}

/// The UTC wall-clock reading of microseconds since 2000-01-01; `None` beyond chrono's range.
/// (The caller words the error: formatting it here would allocate on every call.)
fn naive_from_micros(micros: i64) -> Option<NaiveDateTime> {
    let days = i32::try_from(micros.div_euclid(USECS_PER_DAY)).ok();
    let rem = micros.rem_euclid(USECS_PER_DAY);
    let date = days
        .and_then(|d| d.checked_add(PG_EPOCH_CE_DAYS))
        .and_then(NaiveDate::from_num_days_from_ce_opt);
    let time = u32::try_from(rem / USECS_PER_SEC)
        .ok()
        .zip(u32::try_from(rem % USECS_PER_SEC * 1000).ok())
        .and_then(|(s, n)| NaiveTime::from_num_seconds_from_midnight_opt(s, n));
    date.zip(time).map(|(d, t)| d.and_time(t))
}

impl TryFrom<Timestamp> for NaiveDateTime {
    type Error = ConvertError;

    /// Fails for the infinities and values beyond chrono's range.
    fn try_from(ts: Timestamp) -> Result<NaiveDateTime, ConvertError> {
        if !ts.is_finite() {
            return Err(infinite(
                &format!("timestamp {ts}"),
                "chrono::NaiveDateTime",
            ));
        }
        naive_from_micros(ts.micros_since_2000())
            .ok_or_else(|| ConvertError::new(format!("timestamp {ts} is out of chrono's range")))
    }
}

impl TryFrom<TimestampTz> for DateTime<Utc> {
    type Error = ConvertError;

    /// Fails for the infinities and values beyond chrono's range.
    fn try_from(ts: TimestampTz) -> Result<DateTime<Utc>, ConvertError> {
        if !ts.is_finite() {
            return Err(infinite(
                &format!("timestamptz {ts}"),
                "chrono::DateTime<Utc>",
            ));
        }
        naive_from_micros(ts.micros_since_2000())
            .ok_or_else(|| ConvertError::new(format!("timestamptz {ts} is out of chrono's range")))
            .map(|n| n.and_utc())
    }
}

impl TryFrom<TimestampTz> for DateTime<FixedOffset> {
    type Error = ConvertError;

    /// The instant at offset +00:00; fails as for `DateTime<Utc>`.
    fn try_from(ts: TimestampTz) -> Result<DateTime<FixedOffset>, ConvertError> {
        DateTime::<Utc>::try_from(ts).map(|d| d.fixed_offset())
    }
}

// ---- ToSql / FromSql -----------------------------------------------------------------------

through!(NaiveDate, Date, DATE);
through!(NaiveTime, Time, TIME);
through!(NaiveDateTime, Timestamp, TIMESTAMP);
/// Any `DateTime<Tz>` is sent as the instant it names; `Utc` and `FixedOffset` are read back
/// (chrono's `Local` needs its `clock` feature: read `DateTime<Utc>` and convert).
impl<Tz: TimeZone> ToSql for DateTime<Tz> {
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

impl<'a> FromSql<'a> for DateTime<Utc> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::TIMESTAMPTZ {
            return Err(cannot_decode::<Self>(ty));
        }
        Ok(DateTime::<Utc>::try_from(TimestampTz::from_sql(ty, raw)?)?)
    }

    /// Any session time zone: the instant is the same.
    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::TIMESTAMPTZ {
            return Err(cannot_decode::<Self>(ty));
        }
        Ok(DateTime::<Utc>::try_from(TimestampTz::from_sql_text(
            ty, raw,
        )?)?)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }
}

impl<'a> FromSql<'a> for DateTime<FixedOffset> {
    /// Binary values carry no zone: the instant at +00:00.
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::TIMESTAMPTZ {
            return Err(cannot_decode::<Self>(ty));
        }
        Ok(DateTime::<FixedOffset>::try_from(TimestampTz::from_sql(
            ty, raw,
        )?)?)
    }

    /// Text values keep the offset the session time zone printed them with.
    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::TIMESTAMPTZ {
            return Err(cannot_decode::<Self>(ty));
        }
        let (ts, offset) = TimestampTz::parse_with_offset(utf8("timestamptz", raw)?)?;
        let utc = DateTime::<Utc>::try_from(ts)?;
        let zone = FixedOffset::east_opt(offset).ok_or_else(|| {
            ConvertError::new(format!(
                "UTC offset of {offset} seconds is out of chrono's range"
            ))
        })?;
        Ok(utc.with_timezone(&zone))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }
}
