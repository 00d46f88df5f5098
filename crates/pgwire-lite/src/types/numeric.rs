//! `numeric`: an exact decimal kept in PostgreSQL's own base-10000 layout.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use bytes::{BufMut, BytesMut};

use super::codec::{Reader, cannot_decode, cannot_encode, err, snippet, utf8};
use super::{BoxError, ConvertError, FromSql, IsNull, ToSql, Type};

/// Sign words of the binary format (`NUMERIC_POS`, ... in PostgreSQL's numeric.c).
const SIGN_POS: u16 = 0x0000;
const SIGN_NEG: u16 = 0x4000;
const SIGN_NAN: u16 = 0xC000;
const SIGN_PINF: u16 = 0xD000;
const SIGN_NINF: u16 = 0xF000;
/// The largest display scale the format can carry (`NUMERIC_DSCALE_MAX`).
const DSCALE_MAX: u16 = 0x3FFF;
/// Limit on the decimal exponent accepted in text, far beyond what the format can hold, only
/// so the arithmetic below stays in range.
const EXPONENT_LIMIT: i64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Finite { negative: bool },
    NaN,
    Infinity,
    NegInfinity,
}

/// An exact PostgreSQL `numeric`, including `NaN`, `Infinity` and `-Infinity`.
///
/// Stored as PostgreSQL stores it: base-10000 digits, the weight (power of 10000) of the first
/// digit, and the display scale (digits shown after the decimal point). Nothing is ever
/// rounded: `1e-1000` and 1000-digit integers come back as they were sent.
///
/// Equality is representational: `1.5` and `1.50` have different display scales and are not
/// equal (they print differently), though the server compares them equal; [`cmp_value`]
/// compares as the server does. Ordering is by numeric value as in PostgreSQL (`-Infinity` <
/// every number < `Infinity` < `NaN`, and `NaN` equals itself), with equal values ordered by
/// display scale (`1.5 < 1.50`) so that it agrees with `==`.
///
/// Converts exactly from and to the integer types (`i128` included, `TryFrom` where the value
/// might not fit or not be whole), from `f64` (exact shortest decimal), to `f64` with
/// [`to_f64`](Numeric::to_f64) (nearest), and from and to text with `FromStr`/`Display`.
///
/// [`cmp_value`]: Numeric::cmp_value
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Numeric {
    kind: Kind,
    /// Base-10000 digits, most significant first, no leading or trailing zero digits.
    digits: Vec<u16>,
    /// Power of 10000 of `digits[0]`.
    weight: i16,
    /// Decimal digits after the point when displayed.
    dscale: u16,
}

impl Numeric {
    /// `NaN`.
    pub fn nan() -> Numeric {
        Numeric::special(Kind::NaN)
    }

    /// `Infinity` (PostgreSQL 14+).
    pub fn infinity() -> Numeric {
        Numeric::special(Kind::Infinity)
    }

    /// `-Infinity` (PostgreSQL 14+).
    pub fn neg_infinity() -> Numeric {
        Numeric::special(Kind::NegInfinity)
    }

    fn special(kind: Kind) -> Numeric {
        Numeric {
            kind,
            digits: Vec::new(),
            weight: 0,
            dscale: 0,
        }
    }

    /// True for `NaN`.
    pub fn is_nan(&self) -> bool {
        self.kind == Kind::NaN
    }

    /// True for `Infinity` and `-Infinity`.
    pub fn is_infinite(&self) -> bool {
        matches!(self.kind, Kind::Infinity | Kind::NegInfinity)
    }

    /// True for ordinary numbers.
    pub fn is_finite(&self) -> bool {
        matches!(self.kind, Kind::Finite { .. })
    }

    /// True for numbers below zero, including `-Infinity`.
    pub fn is_negative(&self) -> bool {
        matches!(
            self.kind,
            Kind::Finite { negative: true } | Kind::NegInfinity
        )
    }

    /// The number of digits shown after the decimal point.
    pub fn scale(&self) -> u16 {
        self.dscale
    }

    /// Builds a finite value from PostgreSQL's parts, normalizing leading/trailing zero
    /// digits and dropping digits the display scale hides (as the server's `numeric_recv`).
    fn finite(negative: bool, mut digits: Vec<u16>, mut weight: i16, dscale: u16) -> Numeric {
        // Leading zero digits: each one lowers the weight of what follows.
        let lead = digits.iter().take_while(|&&d| d == 0).count();
        digits.drain(..lead);
        weight = weight.saturating_sub(i16::try_from(lead).unwrap_or(i16::MAX));
        // Digits beyond the display scale: digit i has weight `weight - i`; the decimal
        // places it covers are 4*(i - weight - 1) + 1 ..= 4*(i - weight).
        let keep_places = i64::from(dscale);
        let mut keep = digits.len();
        for (i, d) in digits.iter_mut().enumerate() {
            let last_place = 4 * (i as i64 - i64::from(weight));
            if last_place <= keep_places {
                continue;
            }
            let first_place = last_place - 3;
            if first_place > keep_places {
                keep = i;
                break;
            }
            // Partially visible: zero the hidden low decimal places.
            let hidden = u32::try_from(last_place - keep_places).unwrap_or(0);
            let p = 10u16.pow(hidden);
            *d = *d / p * p;
        }
        digits.truncate(keep);
        while digits.last() == Some(&0) {
            digits.pop();
        }
        if digits.is_empty() {
            weight = 0;
        }
        Numeric {
            kind: Kind::Finite {
                negative: negative && !digits.is_empty(),
            },
            digits,
            weight,
            dscale,
        }
    }

    /// Decodes the binary format.
    pub(crate) fn decode(raw: &[u8]) -> Result<Numeric, BoxError> {
        let mut r = Reader::new("numeric", raw);
        let ndigits = r.i16()?;
        let weight = r.i16()?;
        let sign = r.u16()?;
        let dscale = r.u16()?;
        let ndigits = usize::try_from(ndigits).map_err(|_| {
            err(format!(
                "invalid numeric value: negative digit count {ndigits}"
            ))
        })?;
        // Each digit is two bytes: check before allocating.
        if ndigits.saturating_mul(2) != r.remaining() {
            return Err(err(format!(
                "invalid numeric value: {ndigits} digits need {} bytes, got {}",
                ndigits.saturating_mul(2),
                r.remaining()
            )));
        }
        let kind = match sign {
            SIGN_POS => Kind::Finite { negative: false },
            SIGN_NEG => Kind::Finite { negative: true },
            SIGN_NAN => Kind::NaN,
            SIGN_PINF => Kind::Infinity,
            SIGN_NINF => Kind::NegInfinity,
            _ => {
                return Err(err(format!(
                    "invalid numeric value: bad sign word {sign:#06x}"
                )));
            }
        };
        // Special values carry no meaningful scale (PostgreSQL 15 sends stray bits there).
        let Kind::Finite { negative } = kind else {
            return Ok(Numeric::special(kind));
        };
        if dscale > DSCALE_MAX {
            return Err(err(format!(
                "invalid numeric value: bad display scale {dscale}"
            )));
        }
        let mut digits = Vec::with_capacity(ndigits);
        for _ in 0..ndigits {
            let d = r.u16()?;
            if d >= 10000 {
                return Err(err(format!(
                    "invalid numeric value: digit {d} out of range"
                )));
            }
            digits.push(d);
        }
        Ok(Numeric::finite(negative, digits, weight, dscale))
    }

    pub(crate) fn encode(&self, out: &mut BytesMut) -> Result<(), BoxError> {
        let sign = match self.kind {
            Kind::Finite { negative: false } => SIGN_POS,
            Kind::Finite { negative: true } => SIGN_NEG,
            Kind::NaN => SIGN_NAN,
            Kind::Infinity => SIGN_PINF,
            Kind::NegInfinity => SIGN_NINF,
        };
        let ndigits = i16::try_from(self.digits.len())
            .map_err(|_| err("numeric value has too many digits for PostgreSQL"))?;
        out.reserve(8 + 2 * self.digits.len());
        out.put_i16(ndigits);
        out.put_i16(self.weight);
        out.put_u16(sign);
        out.put_u16(self.dscale);
        for &d in &self.digits {
            out.put_u16(d);
        }
        Ok(())
    }

    /// The base-10000 digit of weight `w` (zero outside the stored digits).
    fn digit_at(&self, w: i64) -> u16 {
        usize::try_from(i64::from(self.weight) - w)
            .ok()
            .and_then(|i| self.digits.get(i).copied())
            .unwrap_or(0)
    }
}

impl Numeric {
    /// An integer from its sign and magnitude.
    fn from_integer(negative: bool, magnitude: u128) -> Numeric {
        let mut digits = Vec::new();
        let mut rest = magnitude;
        while rest > 0 {
            // `rest % 10000` < 10000 always fits.
            digits.push(u16::try_from(rest % 10000).unwrap_or(0));
            rest /= 10000;
        }
        digits.reverse();
        let weight = i16::try_from(digits.len()).unwrap_or(1) - 1;
        Numeric::finite(negative, digits, weight, 0)
    }

    /// Compares numeric values as the server does, ignoring the display scale: `1.5` and
    /// `1.50` are equal, `NaN` equals `NaN` and is greater than everything else.
    pub fn cmp_value(&self, other: &Numeric) -> Ordering {
        // Rank of the kinds; finite numbers of opposite signs are ordered by rank too.
        fn rank(k: Kind, zero: bool) -> u8 {
            match k {
                Kind::NegInfinity => 0,
                Kind::Finite { negative: true } => 1,
                Kind::Finite { negative: false } if zero => 2,
                Kind::Finite { negative: false } => 3,
                Kind::Infinity => 4,
                Kind::NaN => 5,
            }
        }
        let (ra, rb) = (
            rank(self.kind, self.digits.is_empty()),
            rank(other.kind, other.digits.is_empty()),
        );
        if ra != rb || !matches!(ra, 1 | 3) {
            return ra.cmp(&rb);
        }
        // Same sign, both non-zero: digits are normalized (no leading or trailing zero digit),
        // so the weight orders magnitudes first, then the digits lexicographically.
        let magnitude = self
            .weight
            .cmp(&other.weight)
            .then_with(|| self.digits.cmp(&other.digits));
        if ra == 1 {
            magnitude.reverse()
        } else {
            magnitude
        }
    }

    /// The nearest `f64` (what the server's `numeric::float8` cast gives): `NaN` and the
    /// infinities map to their `f64` counterparts, values beyond `f64`'s range to ±infinity.
    pub fn to_f64(&self) -> f64 {
        // Rust's float parsing is correctly rounded, so the decimal text is the exact route.
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    /// The integer value, if this is a whole number within `i128` (a zero fraction, like
    /// `5.00`, is whole).
    fn to_i128(&self) -> Option<i128> {
        let Kind::Finite { negative } = self.kind else {
            return None;
        };
        // Digits below weight 0 are the fraction: whole numbers have none (no trailing zeros).
        let last_weight = i64::from(self.weight) - i64::try_from(self.digits.len()).ok()? + 1;
        if !self.digits.is_empty() && last_weight < 0 {
            return None;
        }
        // Negative values accumulate below zero: i128::MIN's magnitude does not fit in i128.
        let mut v: i128 = 0;
        for w in (0..=i64::from(self.weight)).rev() {
            let d = i128::from(self.digit_at(w));
            v = v.checked_mul(10_000)?;
            v = if negative {
                v.checked_sub(d)?
            } else {
                v.checked_add(d)?
            };
        }
        Some(v)
    }
}

impl PartialOrd for Numeric {
    fn partial_cmp(&self, other: &Numeric) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Numeric {
    /// By value (see [`cmp_value`](Numeric::cmp_value)), then by display scale so that only
    /// `==` values compare equal.
    fn cmp(&self, other: &Numeric) -> Ordering {
        self.cmp_value(other)
            .then_with(|| self.dscale.cmp(&other.dscale))
    }
}

impl From<i128> for Numeric {
    fn from(v: i128) -> Numeric {
        Numeric::from_integer(v < 0, v.unsigned_abs())
    }
}

impl From<u64> for Numeric {
    fn from(v: u64) -> Numeric {
        Numeric::from_integer(false, v.into())
    }
}

impl From<i64> for Numeric {
    fn from(v: i64) -> Numeric {
        Numeric::from_integer(v < 0, v.unsigned_abs().into())
    }
}

impl From<f64> for Numeric {
    /// `NaN` and the infinities map to their numeric counterparts; finite values to the
    /// shortest decimal that reads back as the same `f64` (`0.1` is `0.1`, not the binary
    /// fraction's 55 digits). The server's own `float8::numeric` cast keeps 15 significant
    /// digits instead.
    fn from(v: f64) -> Numeric {
        if v.is_nan() {
            return Numeric::nan();
        }
        if v.is_infinite() {
            return if v > 0.0 {
                Numeric::infinity()
            } else {
                Numeric::neg_infinity()
            };
        }
        // Display never uses an exponent and is the shortest round-tripping decimal; the
        // parse of it cannot fail (at most 1079 digits, far within the format's limits).
        format!("{v}").parse().unwrap_or_else(|_| Numeric::nan())
    }
}

/// Why a [`Numeric`] does not fit an integer type.
fn not_integer(n: &Numeric, target: &str) -> ConvertError {
    ConvertError::new(format!(
        "numeric {n} is not a whole number within the range of {target}"
    ))
}

impl TryFrom<&Numeric> for i128 {
    type Error = ConvertError;

    /// The exact value of a whole number (`5.00` included); an error for fractions, `NaN`,
    /// the infinities and values out of range.
    fn try_from(n: &Numeric) -> Result<i128, ConvertError> {
        n.to_i128().ok_or_else(|| not_integer(n, "i128"))
    }
}

impl TryFrom<&Numeric> for i64 {
    type Error = ConvertError;

    /// As for `i128`, within `i64`.
    fn try_from(n: &Numeric) -> Result<i64, ConvertError> {
        n.to_i128()
            .and_then(|v| i64::try_from(v).ok())
            .ok_or_else(|| not_integer(n, "i64"))
    }
}

impl TryFrom<Numeric> for i128 {
    type Error = ConvertError;

    fn try_from(n: Numeric) -> Result<i128, ConvertError> {
        i128::try_from(&n)
    }
}

impl TryFrom<Numeric> for i64 {
    type Error = ConvertError;

    fn try_from(n: Numeric) -> Result<i64, ConvertError> {
        i64::try_from(&n)
    }
}

impl From<i32> for Numeric {
    fn from(v: i32) -> Numeric {
        Numeric::from(i64::from(v))
    }
}

impl From<i16> for Numeric {
    fn from(v: i16) -> Numeric {
        Numeric::from(i64::from(v))
    }
}

impl fmt::Display for Numeric {
    /// PostgreSQL's own output: `NaN`, `Infinity`, `-Infinity`, or plain decimal notation with
    /// exactly [`scale`](Numeric::scale) digits after the point.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let negative = match self.kind {
            Kind::NaN => return f.write_str("NaN"),
            Kind::Infinity => return f.write_str("Infinity"),
            Kind::NegInfinity => return f.write_str("-Infinity"),
            Kind::Finite { negative } => negative,
        };
        let mut s = String::new();
        if negative {
            s.push('-');
        }
        if self.weight < 0 {
            s.push('0');
        } else {
            for w in (0..=i64::from(self.weight)).rev() {
                let d = self.digit_at(w);
                if w == i64::from(self.weight) {
                    s.push_str(&d.to_string());
                } else {
                    s.push_str(&format!("{d:04}"));
                }
            }
        }
        if self.dscale > 0 {
            s.push('.');
            for place in 1..=i64::from(self.dscale) {
                // Decimal place `place` after the point has exponent -place.
                let x = -place;
                let d = self.digit_at(x.div_euclid(4));
                let p = 10u16.pow(u32::try_from(x.rem_euclid(4)).unwrap_or(0));
                let digit = (d / p) % 10;
                s.push(char::from(b'0' + u8::try_from(digit).unwrap_or(0)));
            }
        }
        f.pad(&s)
    }
}

impl fmt::Debug for Numeric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Numeric({self})")
    }
}

/// Why a string is not a numeric.
fn bad(s: &str) -> BoxError {
    err(format!("invalid numeric value: {}", snippet(s)))
}

impl FromStr for Numeric {
    type Err = BoxError;

    /// Reads what PostgreSQL's `numeric_in` reads: `NaN`, `[+-]Infinity`/`inf`, and
    /// `[+-]digits[.digits][e[+-]digits]`. The display scale is the number of digits after
    /// the point, less the exponent (never below zero), as the server computes it.
    fn from_str(input: &str) -> Result<Numeric, BoxError> {
        let s = input.trim();
        let (negative, body) = match s.as_bytes().first() {
            Some(b'-') => (true, s.get(1..).unwrap_or("")),
            Some(b'+') => (false, s.get(1..).unwrap_or("")),
            _ => (false, s),
        };
        if body.eq_ignore_ascii_case("nan") {
            return if s.len() == body.len() {
                Ok(Numeric::nan())
            } else {
                Err(bad(input))
            };
        }
        if body.eq_ignore_ascii_case("infinity") || body.eq_ignore_ascii_case("inf") {
            return Ok(if negative {
                Numeric::neg_infinity()
            } else {
                Numeric::infinity()
            });
        }
        let (mantissa, exponent) = match body.find(['e', 'E']) {
            Some(i) => {
                let e = body.get(i + 1..).ok_or_else(|| bad(input))?;
                let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad(input));
                }
                // Saturate: anything past the limit is rejected below either way.
                let mut v: i64 = 0;
                for b in digits.bytes() {
                    v = (v * 10 + i64::from(b - b'0')).min(EXPONENT_LIMIT + 1);
                }
                let v = if e.starts_with('-') { -v } else { v };
                (body.get(..i).ok_or_else(|| bad(input))?, v)
            }
            None => (body, 0),
        };
        if exponent.abs() > EXPONENT_LIMIT {
            return Err(err(format!(
                "invalid numeric value: exponent out of range in {}",
                snippet(input)
            )));
        }
        let (int_part, frac_part) = match mantissa.find('.') {
            Some(i) => (
                mantissa.get(..i).unwrap_or(""),
                mantissa.get(i + 1..).unwrap_or(""),
            ),
            None => (mantissa, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad(input));
        }
        if !int_part
            .bytes()
            .chain(frac_part.bytes())
            .all(|b| b.is_ascii_digit())
        {
            return Err(bad(input));
        }
        let all: Vec<u8> = int_part
            .bytes()
            .chain(frac_part.bytes())
            .map(|b| b - b'0')
            .collect();
        // Decimal exponent just above the first digit: value = 0.d1d2... * 10^dexp.
        let mut dexp = i64::try_from(int_part.len()).map_err(|_| bad(input))? + exponent;
        let ndec = i64::try_from(all.len()).map_err(|_| bad(input))?;
        let dscale = (ndec - dexp).max(0);
        let dscale = u16::try_from(dscale)
            .ok()
            .filter(|&d| d <= DSCALE_MAX)
            .ok_or_else(|| {
                err(format!(
                    "invalid numeric value: more than {DSCALE_MAX} digits after the point in {}",
                    snippet(input)
                ))
            })?;
        let lead = all.iter().take_while(|&&d| d == 0).count();
        let trail = all.iter().rev().take_while(|&&d| d == 0).count();
        let significant = if lead == all.len() {
            &[][..]
        } else {
            all.get(lead..all.len() - trail).unwrap_or(&[])
        };
        dexp -= i64::try_from(lead).map_err(|_| bad(input))?;
        if significant.is_empty() {
            return Ok(Numeric::finite(false, Vec::new(), 0, dscale));
        }
        // Digit k (0-based) of `significant` has decimal exponent dexp - 1 - k.
        let weight = (dexp - 1).div_euclid(4);
        let weight = i16::try_from(weight).map_err(|_| {
            err(format!(
                "invalid numeric value: too many digits before the point in {}",
                snippet(input)
            ))
        })?;
        let last_exp = dexp - i64::try_from(significant.len()).map_err(|_| bad(input))?;
        let ngroups = i64::from(weight) - last_exp.div_euclid(4) + 1;
        let mut digits = vec![0u16; usize::try_from(ngroups).map_err(|_| bad(input))?];
        for (k, &d) in significant.iter().enumerate() {
            let x = dexp - 1 - k as i64;
            let idx =
                usize::try_from(i64::from(weight) - x.div_euclid(4)).map_err(|_| bad(input))?;
            let p = 10u16.pow(u32::try_from(x.rem_euclid(4)).unwrap_or(0));
            if let Some(slot) = digits.get_mut(idx) {
                *slot += u16::from(d) * p;
            }
        }
        Ok(Numeric::finite(negative, digits, weight, dscale))
    }
}

impl ToSql for Numeric {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if *ty != Type::NUMERIC {
            return Err(cannot_encode::<Numeric>(ty));
        }
        self.encode(out)?;
        Ok(IsNull::No)
    }

    fn accepts(&self, ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    fn type_hint(&self) -> Option<Type> {
        Some(Type::NUMERIC)
    }
}

impl<'a> FromSql<'a> for Numeric {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::NUMERIC {
            return Err(cannot_decode::<Numeric>(ty));
        }
        Numeric::decode(raw)
    }

    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::NUMERIC {
            return Err(cannot_decode::<Numeric>(ty));
        }
        utf8("numeric", raw)?.parse()
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(s: &str) -> Numeric {
        s.parse().unwrap()
    }

    fn round_trip(v: &Numeric) -> Numeric {
        let mut buf = BytesMut::new();
        v.to_sql(&Type::NUMERIC, &mut buf).unwrap();
        Numeric::from_sql(&Type::NUMERIC, &buf).unwrap()
    }

    #[test]
    fn postgres_literals_display_like_postgres() {
        for (input, shown) in [
            ("0", "0"),
            ("-0", "0"),
            ("0.00", "0.00"),
            ("1.50", "1.50"),
            ("-1.5", "-1.5"),
            ("12345e20", "1234500000000000000000000"),
            ("-0.000001e-20", "-0.00000000000000000000000001"),
            ("1.2e3", "1200"),
            ("1.23456e2", "123.456"),
            ("9999.9999", "9999.9999"),
            ("10000", "10000"),
            ("0.0001", "0.0001"),
            (".5", "0.5"),
            ("5.", "5"),
            ("+7", "7"),
            ("NaN", "NaN"),
            ("nan", "NaN"),
            ("Infinity", "Infinity"),
            ("-Infinity", "-Infinity"),
            ("-inf", "-Infinity"),
        ] {
            assert_eq!(n(input).to_string(), shown, "{input}");
        }
    }

    #[test]
    fn wire_layout_matches_postgres() {
        // SELECT '-12345.678'::numeric sent in binary: 3 digits, weight 1, NEG, dscale 3.
        let mut buf = BytesMut::new();
        n("-12345.678").to_sql(&Type::NUMERIC, &mut buf).unwrap();
        assert_eq!(
            &buf[..],
            &[0, 3, 0, 1, 0x40, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1A, 0x7C][..]
        );
        let mut buf = BytesMut::new();
        Numeric::infinity()
            .to_sql(&Type::NUMERIC, &mut buf)
            .unwrap();
        assert_eq!(&buf[..], &[0, 0, 0, 0, 0xD0, 0, 0, 0][..]);
        assert!(
            Numeric::from_sql(&Type::NUMERIC, &[0, 0, 0, 0, 0xF0, 0, 0, 0x20]) // numeric_send('-Infinity'), PG 15
                .unwrap()
                .is_negative()
        );
        assert!(
            Numeric::from_sql(&Type::NUMERIC, &[0, 0, 0, 0, 0xC0, 0, 0, 0])
                .unwrap()
                .is_nan()
        );
    }

    #[test]
    fn huge_and_tiny_values_are_exact() {
        let tiny = n("1e-1000");
        let shown = tiny.to_string();
        assert_eq!(shown.len(), 1002);
        assert!(shown.starts_with("0.000") && shown.ends_with('1'));
        assert_eq!(round_trip(&tiny), tiny);
        let big: String = "9876543210".repeat(100);
        let v = n(&big);
        assert_eq!(v.to_string(), big);
        assert_eq!(round_trip(&v), v);
        let neg = n(&format!("-{big}.{big}"));
        assert_eq!(neg.to_string(), format!("-{big}.{big}"));
        assert_eq!(round_trip(&neg), neg);
    }

    #[test]
    fn integers_convert_exactly() {
        for v in [0, 1, -1, 9999, 10000, i64::MAX, i64::MIN] {
            assert_eq!(Numeric::from(v).to_string(), v.to_string());
        }
    }

    #[test]
    fn hidden_digits_are_truncated_like_numeric_recv() {
        // 1.23456 with dscale 2 on the wire reads as 1.23.
        let raw = [0, 3, 0, 0, 0, 0, 0, 2, 0, 1, 0x09, 0x29, 0x17, 0x70];
        assert_eq!(
            Numeric::from_sql(&Type::NUMERIC, &raw).unwrap().to_string(),
            "1.23"
        );
    }

    #[test]
    fn malformed_is_an_error() {
        for bad in [
            "",
            "-",
            ".",
            "1e",
            "1e+",
            "abc",
            "1.2.3",
            "1e99999999",
            "--1",
            "NaNx",
            "-NaN",
            "1 2",
        ] {
            assert!(bad.parse::<Numeric>().is_err(), "{bad}");
        }
        for raw in [
            &[][..],
            &[0, 1, 0, 0, 0, 0, 0, 0][..],             // digit missing
            &[0xff, 0xff, 0, 0, 0, 0, 0, 0][..],       // negative count
            &[0, 1, 0, 0, 0, 0, 0, 0, 0x27, 0x10][..], // digit 10000
            &[0, 0, 0, 0, 0x12, 0x34, 0, 0][..],       // bad sign
            &[0, 0, 0, 0, 0, 0, 0x40, 0][..],          // bad dscale
        ] {
            assert!(Numeric::from_sql(&Type::NUMERIC, raw).is_err(), "{raw:?}");
        }
    }

    proptest! {
        #[test]
        fn decimal_strings_round_trip(neg in any::<bool>(), int in "[0-9]{1,40}", frac in "[0-9]{0,40}", exp in -60i64..60) {
            let s = format!("{}{int}.{frac}e{exp}", if neg { "-" } else { "" });
            let v = n(&s);
            prop_assert_eq!(round_trip(&v), v.clone());
            // Display is canonical: parsing it gives the same value back.
            prop_assert_eq!(n(&v.to_string()), v);
        }

        #[test]
        fn binary_decoder_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(v) = Numeric::from_sql(&Type::NUMERIC, &raw) {
                // Whatever decodes re-encodes to something that decodes the same.
                prop_assert_eq!(round_trip(&v), v.clone());
                let _ = v.to_string();
            }
        }

        #[test]
        fn text_decoder_never_panics(s in "[-+0-9.eE a-zA-Z]{0,30}") {
            let _ = s.parse::<Numeric>();
        }
    }
}
