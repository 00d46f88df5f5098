//! Reading PostgreSQL's text output of the date/time types (`DateStyle=ISO`,
//! `IntervalStyle=postgres`), every step checked: the server's text is input like any other.

use super::*;

/// A cursor over ASCII text, every step checked.
pub(super) struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(s: &'a str) -> Self {
        Cursor {
            s: s.as_bytes(),
            pos: 0,
        }
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    pub(super) fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn done(&self) -> bool {
        self.pos >= self.s.len()
    }

    /// Between `min` and `max` decimal digits.
    pub(super) fn number(&mut self, min: usize, max: usize) -> Option<i64> {
        let start = self.pos;
        let mut v: i64 = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            if self.pos - start == max {
                return None;
            }
            v = v.checked_mul(10)?.checked_add(i64::from(c - b'0'))?;
            self.pos += 1;
        }
        (self.pos - start >= min).then_some(v)
    }

    /// `.ffffff` (1 to 6 digits) as microseconds, or 0 when there is no point.
    pub(super) fn fraction(&mut self) -> Option<i64> {
        if !self.eat(b'.') {
            return Some(0);
        }
        let start = self.pos;
        let v = self.number(1, 6)?;
        let n = u32::try_from(self.pos - start).ok()?;
        Some(v * 10i64.pow(6 - n))
    }

    pub(super) fn rest_is(&self, tail: &[u8]) -> bool {
        self.s.get(self.pos..) == Some(tail)
    }
}

/// `Y-MM-DD` as an astronomical (year, month, day), before any BC suffix is applied.
pub(super) fn parse_ymd(c: &mut Cursor<'_>) -> Option<(i64, u32, u32)> {
    let y = c.number(1, 9)?;
    if !c.eat(b'-') {
        return None;
    }
    let m = u32::try_from(c.number(2, 2)?).ok()?;
    if !c.eat(b'-') {
        return None;
    }
    let d = u32::try_from(c.number(2, 2)?).ok()?;
    Some((y, m, d))
}

/// `HH:MM:SS[.ffffff]` as microseconds since midnight (24:00:00 allowed, as for `time`).
pub(super) fn parse_hms(c: &mut Cursor<'_>) -> Option<i64> {
    let h = c.number(2, 2)?;
    if !c.eat(b':') {
        return None;
    }
    let m = c.number(2, 2)?;
    if !c.eat(b':') {
        return None;
    }
    let s = c.number(2, 2)?;
    let frac = c.fraction()?;
    if m > 59 || s > 60 {
        return None;
    }
    let v = h * USECS_PER_HOUR + m * USECS_PER_MINUTE + s * USECS_PER_SEC + frac;
    (v <= USECS_PER_DAY).then_some(v)
}

/// `±HH[:MM[:SS]]` as seconds east of UTC.
pub(super) fn parse_offset(c: &mut Cursor<'_>) -> Option<i64> {
    let negative = match c.peek()? {
        b'+' => false,
        b'-' => true,
        _ => return None,
    };
    c.pos += 1;
    let h = c.number(2, 2)?;
    let mut secs = h * 3600;
    if c.eat(b':') {
        secs += c.number(2, 2)? * 60;
        if c.eat(b':') {
            secs += c.number(2, 2)?;
        }
    }
    Some(if negative { -secs } else { secs })
}

/// Applies a trailing ` BC` and checks the date: the day count since 2000-01-01.
pub(super) fn finish_date(c: &mut Cursor<'_>, (y, m, d): (i64, u32, u32)) -> Option<i64> {
    let year = if c.rest_is(b" BC") {
        c.pos += 3;
        1 - y
    } else {
        y
    };
    // Text has no year 0: 1 BC is followed by 1 AD.
    if y == 0 || m == 0 || m > 12 || d == 0 || d > days_in_month(year, m) {
        return None;
    }
    c.done()
        .then(|| days_from_civil(year, m, d) - UNIX_TO_PG_DAYS)
}

/// A timestamp as printed with DateStyle ISO: `Y-MM-DD HH:MM:SS[.f][±offset][ BC]`, returned as
/// microseconds since 2000-01-01 in UTC (the offset, if allowed and present, is subtracted).
pub(super) fn parse_timestamp(s: &str, with_offset: bool) -> Option<i64> {
    parse_timestamp_offset(s, with_offset).map(|(micros, _)| micros)
}

/// As [`parse_timestamp`], also returning the offset in seconds east of UTC (0 without one).
pub(super) fn parse_timestamp_offset(s: &str, with_offset: bool) -> Option<(i64, i32)> {
    let mut c = Cursor::new(s);
    let ymd = parse_ymd(&mut c)?;
    if !c.eat(b' ') {
        return None;
    }
    let time = parse_hms(&mut c)?;
    let offset = if with_offset {
        parse_offset(&mut c)?
    } else {
        0
    };
    let days = finish_date(&mut c, ymd)?;
    let micros = days
        .checked_mul(USECS_PER_DAY)?
        .checked_add(time)?
        .checked_sub(offset.checked_mul(USECS_PER_SEC)?)
        .filter(|v| *v != i64::MAX && *v != i64::MIN)?;
    Some((micros, i32::try_from(offset).ok()?))
}

pub(super) fn bad_text(what: &str, s: &str) -> BoxError {
    err(format!("invalid {what} value: {}", snippet(s)))
}

pub(super) fn parse_interval(s: &str) -> Option<Interval> {
    let mut months: i32 = 0;
    let mut days: i32 = 0;
    let mut micros: i64 = 0;
    let mut tokens = s.split(' ').filter(|t| !t.is_empty());
    let mut any = false;
    while let Some(tok) = tokens.next() {
        any = true;
        if tok.contains(':') {
            let (negative, body) = match tok.as_bytes().first()? {
                b'-' => (true, tok.get(1..)?),
                b'+' => (false, tok.get(1..)?),
                _ => (false, tok),
            };
            let mut c = Cursor::new(body);
            let h = c.number(1, 10)?;
            if !c.eat(b':') {
                return None;
            }
            let m = c.number(2, 2)?;
            if !c.eat(b':') {
                return None;
            }
            let sec = c.number(2, 2)?;
            let frac = c.fraction()?;
            if !c.done() || m > 59 || sec > 59 {
                return None;
            }
            // In i128: i64::MIN microseconds prints as an hour count whose positive value
            // does not fit in i64.
            let abs = i128::from(h) * i128::from(USECS_PER_HOUR)
                + i128::from(m * USECS_PER_MINUTE + sec * USECS_PER_SEC + frac);
            let t = if negative { -abs } else { abs };
            micros = i64::try_from(i128::from(micros) + t).ok()?;
            continue;
        }
        let n: i64 = tok.parse().ok()?;
        let unit = tokens.next()?;
        match unit {
            "year" | "years" => {
                months = months.checked_add(i32::try_from(n.checked_mul(12)?).ok()?)?;
            }
            "mon" | "mons" => months = months.checked_add(i32::try_from(n).ok()?)?,
            "day" | "days" => days = days.checked_add(i32::try_from(n).ok()?)?,
            _ => return None,
        }
    }
    any.then_some(Interval {
        months,
        days,
        micros,
    })
}
