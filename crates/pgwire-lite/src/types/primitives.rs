//! bool, integers, floats, `oid`, `"char"`, and the wrappers (`Option`, references, `Box`).

use bytes::{BufMut, BytesMut};

use super::codec::{cannot_decode, cannot_encode, err, fixed, parse_text, utf8};
use super::{BoxError, FromSql, IsNull, Numeric, ToSql, Type};

// ---- Option, references, Box -------------------------------------------------------------

impl<T: ToSql> ToSql for Option<T> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Some(v) => v.to_sql(ty, out),
            None => Ok(IsNull::Yes),
        }
    }

    fn accepts(&self, ty: &Type) -> bool {
        // NULL fits every column; a present value must fit on its own.
        match self {
            Some(v) => v.accepts(ty),
            None => true,
        }
    }

    fn type_hint(&self) -> Option<Type> {
        self.as_ref().and_then(ToSql::type_hint)
    }
}

impl<'a, T: FromSql<'a>> FromSql<'a> for Option<T> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        T::from_sql(ty, raw).map(Some)
    }

    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        T::from_sql_text(ty, raw).map(Some)
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(None)
    }

    fn accepts(ty: &Type) -> bool {
        T::accepts(ty)
    }
}

impl<T: ToSql + ?Sized> ToSql for &T {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        (**self).to_sql(ty, out)
    }

    fn accepts(&self, ty: &Type) -> bool {
        (**self).accepts(ty)
    }

    fn type_hint(&self) -> Option<Type> {
        (**self).type_hint()
    }
}

impl<T: ToSql + ?Sized> ToSql for Box<T> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        (**self).to_sql(ty, out)
    }

    fn accepts(&self, ty: &Type) -> bool {
        (**self).accepts(ty)
    }

    fn type_hint(&self) -> Option<Type> {
        (**self).type_hint()
    }
}

// ---- bool --------------------------------------------------------------------------------

impl ToSql for bool {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if *ty != Type::BOOL {
            return Err(cannot_encode::<bool>(ty));
        }
        out.put_u8(u8::from(*self));
        Ok(IsNull::No)
    }

    fn accepts(&self, ty: &Type) -> bool {
        *ty == Type::BOOL
    }

    fn type_hint(&self) -> Option<Type> {
        Some(Type::BOOL)
    }
}

impl<'a> FromSql<'a> for bool {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::BOOL {
            return Err(cannot_decode::<bool>(ty));
        }
        // Like the server's boolrecv: any non-zero byte is true.
        let [b] = fixed::<1>("bool", raw)?;
        Ok(b != 0)
    }

    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::BOOL {
            return Err(cannot_decode::<bool>(ty));
        }
        match raw {
            b"t" | b"true" => Ok(true),
            b"f" | b"false" => Ok(false),
            _ => Err(err(format!(
                "invalid bool value: {}",
                super::codec::snippet(&String::from_utf8_lossy(raw))
            ))),
        }
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::BOOL
    }
}

// ---- integers ----------------------------------------------------------------------------

/// Reads an integer column of any width no wider than `T`.
fn int_binary<T>(ty: &Type, raw: &[u8]) -> Result<T, BoxError>
where
    T: From<i16> + TryFrom<i64>,
{
    let v: i64 = match *ty {
        Type::INT2 => i16::from_be_bytes(fixed("int2", raw)?).into(),
        Type::INT4 => i32::from_be_bytes(fixed("int4", raw)?).into(),
        Type::INT8 => i64::from_be_bytes(fixed("int8", raw)?),
        _ => return Err(cannot_decode::<T>(ty)),
    };
    // Only reachable with a width that `accepts` allowed, so this never narrows.
    T::try_from(v).map_err(|_| {
        err(format!(
            "{ty} value {v} out of range for {}",
            std::any::type_name::<T>()
        ))
    })
}

fn int_text<T: std::str::FromStr>(ty: &Type, raw: &[u8]) -> Result<T, BoxError> {
    match *ty {
        Type::INT2 => parse_text("int2", raw),
        Type::INT4 => parse_text("int4", raw),
        Type::INT8 => parse_text("int8", raw),
        _ => Err(cannot_decode::<T>(ty)),
    }
}

/// Writes `v` as `ty`, widening as needed; `accepts` has already refused narrowing.
fn int_to_sql<T: Into<i64> + Copy>(
    v: T,
    ty: &Type,
    out: &mut BytesMut,
) -> Result<IsNull, BoxError> {
    let v: i64 = v.into();
    match *ty {
        Type::INT2 => out.put_i16(i16::try_from(v).map_err(|_| cannot_encode::<T>(ty))?),
        Type::INT4 => out.put_i32(i32::try_from(v).map_err(|_| cannot_encode::<T>(ty))?),
        Type::INT8 => out.put_i64(v),
        Type::NUMERIC => return Numeric::from(v).to_sql(ty, out),
        _ => return Err(cannot_encode::<T>(ty)),
    }
    Ok(IsNull::No)
}

macro_rules! int_impl {
    ($t:ty, $hint:expr, [$($to:ident),*], [$($from:ident),*]) => {
        impl ToSql for $t {
            fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
                if !ToSql::accepts(self, ty) {
                    return Err(cannot_encode::<$t>(ty));
                }
                int_to_sql(*self, ty, out)
            }

            /// Its own type and every wider integer type, and `numeric`: lossless widening only.
            fn accepts(&self, ty: &Type) -> bool {
                matches!(*ty, $(Type::$to)|*)
            }

            fn type_hint(&self) -> Option<Type> {
                Some($hint)
            }
        }

        impl<'a> FromSql<'a> for $t {
            fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
                if !<$t as FromSql>::accepts(ty) {
                    return Err(cannot_decode::<$t>(ty));
                }
                int_binary(ty, raw)
            }

            fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
                if !<$t as FromSql>::accepts(ty) {
                    return Err(cannot_decode::<$t>(ty));
                }
                int_text(ty, raw)
            }

            /// Its own type and every narrower integer type.
            fn accepts(ty: &Type) -> bool {
                matches!(*ty, $(Type::$from)|*)
            }
        }
    };
}

int_impl!(i16, Type::INT2, [INT2, INT4, INT8, NUMERIC], [INT2]);
int_impl!(i32, Type::INT4, [INT4, INT8, NUMERIC], [INT2, INT4]);
int_impl!(i64, Type::INT8, [INT8, NUMERIC], [INT2, INT4, INT8]);

// ---- floats ------------------------------------------------------------------------------

/// Text floats: the server writes `NaN`, `Infinity`, `-Infinity`; Rust's parser reads those
/// (case-insensitively) as well as the shortest round-trip digits PostgreSQL 12+ prints.
fn float_text<T: std::str::FromStr>(what: &str, raw: &[u8]) -> Result<T, BoxError> {
    parse_text(what, raw)
}

impl ToSql for f32 {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match *ty {
            Type::FLOAT4 => out.put_f32(*self),
            Type::FLOAT8 => out.put_f64(f64::from(*self)),
            _ => return Err(cannot_encode::<f32>(ty)),
        }
        Ok(IsNull::No)
    }

    fn accepts(&self, ty: &Type) -> bool {
        matches!(*ty, Type::FLOAT4 | Type::FLOAT8)
    }

    fn type_hint(&self) -> Option<Type> {
        Some(Type::FLOAT4)
    }
}

impl ToSql for f64 {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if *ty != Type::FLOAT8 {
            return Err(cannot_encode::<f64>(ty));
        }
        out.put_f64(*self);
        Ok(IsNull::No)
    }

    fn accepts(&self, ty: &Type) -> bool {
        *ty == Type::FLOAT8
    }

    fn type_hint(&self) -> Option<Type> {
        Some(Type::FLOAT8)
    }
}

impl<'a> FromSql<'a> for f32 {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::FLOAT4 {
            return Err(cannot_decode::<f32>(ty));
        }
        Ok(f32::from_be_bytes(fixed("float4", raw)?))
    }

    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::FLOAT4 {
            return Err(cannot_decode::<f32>(ty));
        }
        float_text("float4", raw)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::FLOAT4
    }
}

impl<'a> FromSql<'a> for f64 {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        match *ty {
            Type::FLOAT4 => Ok(f32::from_be_bytes(fixed("float4", raw)?).into()),
            Type::FLOAT8 => Ok(f64::from_be_bytes(fixed("float8", raw)?)),
            _ => Err(cannot_decode::<f64>(ty)),
        }
    }

    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        match *ty {
            // Parse as f32 first so the value equals the binary path's widened f32.
            Type::FLOAT4 => float_text::<f32>("float4", raw).map(f64::from),
            Type::FLOAT8 => float_text("float8", raw),
            _ => Err(cannot_decode::<f64>(ty)),
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::FLOAT4 | Type::FLOAT8)
    }
}

// ---- oid ---------------------------------------------------------------------------------

impl ToSql for u32 {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if *ty != Type::OID {
            return Err(cannot_encode::<u32>(ty));
        }
        out.put_u32(*self);
        Ok(IsNull::No)
    }

    fn accepts(&self, ty: &Type) -> bool {
        *ty == Type::OID
    }

    fn type_hint(&self) -> Option<Type> {
        Some(Type::OID)
    }
}

impl<'a> FromSql<'a> for u32 {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::OID {
            return Err(cannot_decode::<u32>(ty));
        }
        Ok(u32::from_be_bytes(fixed("oid", raw)?))
    }

    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::OID {
            return Err(cannot_decode::<u32>(ty));
        }
        parse_text("oid", raw)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::OID
    }
}

// ---- "char" ------------------------------------------------------------------------------

impl ToSql for i8 {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if *ty != Type::CHAR {
            return Err(cannot_encode::<i8>(ty));
        }
        out.put_i8(*self);
        Ok(IsNull::No)
    }

    fn accepts(&self, ty: &Type) -> bool {
        *ty == Type::CHAR
    }

    fn type_hint(&self) -> Option<Type> {
        Some(Type::CHAR)
    }
}

/// `"char"` in text: empty for `\0`, `\ooo` octal for bytes with the high bit set (PG 14+),
/// else the byte itself.
pub(crate) fn char_from_text(raw: &[u8]) -> Result<i8, BoxError> {
    let byte = match raw {
        [] => 0,
        [b] => *b,
        [b'\\', a, b, c] if [a, b, c].iter().all(|d| (b'0'..=b'7').contains(d)) => {
            let v = u32::from(a - b'0') * 64 + u32::from(b - b'0') * 8 + u32::from(c - b'0');
            u8::try_from(v).map_err(|_| err("invalid \"char\" value: octal escape above 255"))?
        }
        _ => {
            let s = utf8("\"char\"", raw)?;
            return Err(err(format!(
                "invalid \"char\" value: {}",
                super::codec::snippet(s)
            )));
        }
    };
    Ok(i8::from_ne_bytes([byte]))
}

impl<'a> FromSql<'a> for i8 {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::CHAR {
            return Err(cannot_decode::<i8>(ty));
        }
        Ok(i8::from_be_bytes(fixed("\"char\"", raw)?))
    }

    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::CHAR {
            return Err(cannot_decode::<i8>(ty));
        }
        char_from_text(raw)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::CHAR
    }
}
