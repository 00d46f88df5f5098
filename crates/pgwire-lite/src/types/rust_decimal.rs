//! `rust_decimal` (feature `rust_decimal`): `Decimal` for `numeric`.
//!
//! A `Decimal` is a 96-bit integer and a scale of 0 to 28, so it holds fewer values than a
//! `numeric`. Reading never rounds: `NaN`, `±Infinity`, magnitudes of 2^96 and more (in units
//! of the scale), and non-zero digits past the 28th decimal place are errors. Trailing zeros past
//! the 28th place are dropped (the value is the same; only its display scale shrinks to 28).
//! Binary values are converted straight from PostgreSQL's base-10000 digits, without
//! allocating.

use ::rust_decimal::Decimal;
use bytes::{BufMut, BytesMut};

use super::codec::{Reader, cannot_decode, cannot_encode, err, snippet, utf8};
use super::{BoxError, ConvertError, FromSql, IsNull, Numeric, ToSql, Type};

/// `Decimal::MAX_SCALE`.
const MAX_SCALE: u32 = 28;
/// A `Decimal`'s integer part is below 2^96.
const MANTISSA_LIMIT: u128 = 1 << 96;
/// Sign words of the binary format (see numeric.rs).
const SIGN_POS: u16 = 0x0000;
const SIGN_NEG: u16 = 0x4000;
const SIGN_NAN: u16 = 0xC000;
const SIGN_PINF: u16 = 0xD000;
const SIGN_NINF: u16 = 0xF000;

/// The error for a value that is valid but does not fit, naming it (only on this path do we
/// pay for printing the numeric).
fn does_not_fit(raw: &[u8], why: &str) -> BoxError {
    let shown = Numeric::decode(raw)
        .map(|n| snippet(&n.to_string()))
        .unwrap_or_else(|_| "value".to_owned());
    err(format!(
        "numeric {shown} cannot be represented as rust_decimal::Decimal: {why}"
    ))
}

/// Decodes the binary `numeric` format into a `Decimal`, exactly or not at all.
fn decode(raw: &[u8]) -> Result<Decimal, BoxError> {
    let mut r = Reader::new("numeric", raw);
    let ndigits = r.i16()?;
    let weight = r.i16()?;
    let sign = r.u16()?;
    let dscale = r.u16()?;
    let negative = match sign {
        SIGN_POS => false,
        SIGN_NEG => true,
        SIGN_NAN => {
            return Err(err(
                "numeric NaN cannot be represented as rust_decimal::Decimal",
            ));
        }
        SIGN_PINF | SIGN_NINF => {
            return Err(err(format!(
                "numeric {}Infinity cannot be represented as rust_decimal::Decimal",
                if sign == SIGN_NINF { "-" } else { "" }
            )));
        }
        _ => {
            return Err(err(format!(
                "invalid numeric value: bad sign word {sign:#06x}"
            )));
        }
    };
    let ndigits = usize::try_from(ndigits).map_err(|_| {
        err(format!(
            "invalid numeric value: negative digit count {ndigits}"
        ))
    })?;
    if ndigits.saturating_mul(2) != r.remaining() {
        return Err(err(format!(
            "invalid numeric value: {ndigits} digits need {} bytes, got {}",
            ndigits.saturating_mul(2),
            r.remaining()
        )));
    }
    let scale = u32::from(dscale).min(MAX_SCALE);
    let mut mantissa: u128 = 0;
    for i in 0..ndigits {
        let d = r.u16()?;
        if d >= 10000 {
            return Err(err(format!(
                "invalid numeric value: digit {d} out of range"
            )));
        }
        if d == 0 {
            continue;
        }
        // Digit i is worth d * 10000^(weight - i); scaled by 10^scale that is
        // d * 10^(4 * (weight - i) + scale). `i` < 32768, so this stays small.
        let exp = 4 * (i64::from(weight) - i as i64) + i64::from(scale);
        let term = if exp >= 0 {
            u32::try_from(exp)
                .ok()
                .and_then(|e| 10u128.checked_pow(e))
                .and_then(|p| p.checked_mul(u128::from(d)))
                .ok_or_else(|| does_not_fit(raw, "out of range"))?
        } else {
            // Below the last decimal place kept: only zeros may be dropped.
            let drop = u32::try_from(-exp).unwrap_or(u32::MAX);
            let p = 10u128.checked_pow(drop).unwrap_or(u128::MAX);
            if u128::from(d) % p != 0 {
                return Err(does_not_fit(raw, "more than 28 decimal places"));
            }
            u128::from(d) / p
        };
        mantissa = mantissa
            .checked_add(term)
            .filter(|&m| m < MANTISSA_LIMIT)
            .ok_or_else(|| does_not_fit(raw, "out of range"))?;
    }
    // Below 2^96: each 32-bit part fits.
    let part = |shift: u32| u32::try_from((mantissa >> shift) & 0xffff_ffff).unwrap_or(0);
    Ok(Decimal::from_parts(
        part(0),
        part(32),
        part(64),
        negative && mantissa != 0,
        scale,
    ))
}

/// Encodes a `Decimal` in the binary `numeric` format, without allocating.
fn encode(d: &Decimal, out: &mut BytesMut) {
    let scale = d.scale();
    // Base-10000 digits line up with the decimal point: pad the scale to a multiple of 4.
    let pad = (4 - scale % 4) % 4;
    // Below 2^96 * 1000 < 2^106: no overflow.
    let mut m = d.mantissa().unsigned_abs() * 10u128.pow(pad);
    let frac_groups = i32::try_from((scale + pad) / 4).unwrap_or(0);
    // At most 8 base-10000 digits (10^32 > 2^106), least significant first.
    let mut groups = [0u16; 9];
    let mut n = 0;
    while m > 0 {
        if let Some(g) = groups.get_mut(n) {
            *g = u16::try_from(m % 10000).unwrap_or(0);
        }
        m /= 10000;
        n += 1;
    }
    let low = groups.iter().take(n).take_while(|&&g| g == 0).count();
    let ndigits = n - low;
    let weight = if ndigits == 0 {
        0
    } else {
        i32::try_from(n).unwrap_or(0) - 1 - frac_groups
    };
    out.reserve(8 + 2 * ndigits);
    // At most 9 digits and a weight within ±8: the casts cannot truncate.
    out.put_i16(i16::try_from(ndigits).unwrap_or(0));
    out.put_i16(i16::try_from(weight).unwrap_or(0));
    out.put_u16(if d.is_sign_negative() && ndigits > 0 {
        SIGN_NEG
    } else {
        SIGN_POS
    });
    out.put_u16(u16::try_from(scale).unwrap_or(0));
    for g in groups.iter().take(n).skip(low).rev() {
        out.put_u16(*g);
    }
}

impl From<Decimal> for Numeric {
    /// Exact, scale kept (`1.50` stays `1.50`).
    fn from(d: Decimal) -> Numeric {
        let mut buf = BytesMut::with_capacity(32);
        encode(&d, &mut buf);
        // Our own encoding always decodes; NaN would only ever flag a bug here.
        Numeric::decode(&buf).unwrap_or_else(|_| Numeric::nan())
    }
}

impl TryFrom<&Numeric> for Decimal {
    type Error = ConvertError;

    /// Exact or an error: `NaN`, the infinities, out-of-range values and non-zero digits past
    /// the 28th decimal place do not fit.
    fn try_from(n: &Numeric) -> Result<Decimal, ConvertError> {
        let mut buf = BytesMut::new();
        n.encode(&mut buf)
            .map_err(|e| ConvertError::new(e.to_string()))?;
        decode(&buf).map_err(|e| ConvertError::new(e.to_string()))
    }
}

impl TryFrom<Numeric> for Decimal {
    type Error = ConvertError;

    /// As for `&Numeric`.
    fn try_from(n: Numeric) -> Result<Decimal, ConvertError> {
        Decimal::try_from(&n)
    }
}

impl ToSql for Decimal {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if *ty != Type::NUMERIC {
            return Err(cannot_encode::<Decimal>(ty));
        }
        encode(self, out);
        Ok(IsNull::No)
    }

    fn accepts(&self, ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    fn type_hint(&self) -> Option<Type> {
        Some(Type::NUMERIC)
    }
}

impl<'a> FromSql<'a> for Decimal {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::NUMERIC {
            return Err(cannot_decode::<Decimal>(ty));
        }
        decode(raw)
    }

    /// Through [`Numeric`], so the rules are the binary format's.
    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::NUMERIC {
            return Err(cannot_decode::<Decimal>(ty));
        }
        let n: Numeric = utf8("numeric", raw)?.parse()?;
        Ok(Decimal::try_from(&n)?)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(s: &str) -> Decimal {
        let d: Decimal = s.parse().unwrap();
        let mut buf = BytesMut::new();
        encode(&d, &mut buf);
        // Our encoding is what the server's numeric_send would give for the same value.
        let n: Numeric = s.parse().unwrap();
        let mut expected = BytesMut::new();
        n.encode(&mut expected).unwrap();
        assert_eq!(buf, expected, "{s}");
        decode(&buf).unwrap()
    }

    #[test]
    fn exact_both_ways() {
        for s in [
            "0",
            "0.00",
            "1",
            "-1",
            "1.50",
            "12345.678",
            "-0.0001",
            "10000",
            "79228162514264337593543950335",
            "-79228162514264337593543950335",
            "0.0000000000000000000000000001",
            "7.9228162514264337593543950335",
            "1234567890123456789012345678",
            "0.1234567890123456789012345678",
        ] {
            let d = round_trip(s);
            assert_eq!(d.to_string(), s, "{s}");
        }
    }

    #[test]
    fn no_rounding_ever() {
        for s in [
            "NaN",
            "Infinity",
            "-Infinity",
            "79228162514264337593543950336",
            "0.00000000000000000000000000001",
            "1e30",
        ] {
            let n: Numeric = s.parse().unwrap();
            let e = Decimal::try_from(&n).unwrap_err().to_string();
            assert!(e.contains("rust_decimal::Decimal"), "{s}: {e}");
        }
        // Zeros past the 28th place are not rounding.
        let n: Numeric = "1.000000000000000000000000000000".parse().unwrap();
        assert_eq!(
            Decimal::try_from(&n).unwrap().to_string(),
            "1.0000000000000000000000000000"
        );
    }

    #[test]
    fn hostile_bytes_are_errors() {
        for raw in [
            &[][..],
            &[0, 1, 0, 0, 0, 0, 0, 0][..],
            &[0xff, 0xff, 0, 0, 0, 0, 0, 0][..],
            &[0, 1, 0x7f, 0xff, 0, 0, 0, 0, 0, 1][..],
            &[0, 1, 0x80, 0, 0, 0, 0x3f, 0xff, 0, 1][..],
            &[0, 0, 0, 0, 0x12, 0x34, 0, 0][..],
        ] {
            assert!(decode(raw).is_err(), "{raw:?}");
        }
    }
}
