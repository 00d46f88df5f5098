//! Text-like types (`text`, `varchar`, `bpchar`, `name`) and `bytea`.

use bytes::{BufMut, BytesMut};

use super::codec::{cannot_decode, cannot_encode, err, len_i32, utf8};
use super::{BoxError, FromSql, IsNull, ToSql, Type};

/// The types whose values are plain UTF-8 text in both formats.
pub(crate) fn is_text_like(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    )
}

/// Text-like types and enums: an enum label is its UTF-8 text in both formats, so `&str` and
/// `String` bind to enum parameters and read enum columns.
pub(crate) fn is_text_or_enum(ty: &Type) -> bool {
    is_text_like(ty) || ty.is_enum()
}

impl ToSql for str {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if !is_text_or_enum(ty) {
            return Err(cannot_encode::<str>(ty));
        }
        len_i32("text value", self.len())?;
        out.put_slice(self.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(&self, ty: &Type) -> bool {
        is_text_or_enum(ty)
    }

    fn type_hint(&self) -> Option<Type> {
        Some(Type::TEXT)
    }
}

impl ToSql for String {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        self.as_str().to_sql(ty, out)
    }

    fn accepts(&self, ty: &Type) -> bool {
        is_text_or_enum(ty)
    }

    fn type_hint(&self) -> Option<Type> {
        Some(Type::TEXT)
    }
}

impl<'a> FromSql<'a> for &'a str {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if !is_text_or_enum(ty) {
            return Err(cannot_decode::<&str>(ty));
        }
        utf8("text", raw)
    }

    /// Text types read the same in both formats.
    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Self::from_sql(ty, raw)
    }

    fn accepts(ty: &Type) -> bool {
        is_text_or_enum(ty)
    }
}

impl<'a> FromSql<'a> for String {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if !is_text_or_enum(ty) {
            return Err(cannot_decode::<String>(ty));
        }
        utf8("text", raw).map(str::to_owned)
    }

    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Self::from_sql(ty, raw)
    }

    fn accepts(ty: &Type) -> bool {
        is_text_or_enum(ty)
    }
}

// ---- bytea -------------------------------------------------------------------------------

impl ToSql for [u8] {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if *ty != Type::BYTEA {
            return Err(cannot_encode::<[u8]>(ty));
        }
        len_i32("bytea value", self.len())?;
        out.put_slice(self);
        Ok(IsNull::No)
    }

    fn accepts(&self, ty: &Type) -> bool {
        *ty == Type::BYTEA
    }

    fn type_hint(&self) -> Option<Type> {
        Some(Type::BYTEA)
    }
}

impl ToSql for Vec<u8> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        self.as_slice().to_sql(ty, out)
    }

    fn accepts(&self, ty: &Type) -> bool {
        *ty == Type::BYTEA
    }

    fn type_hint(&self) -> Option<Type> {
        Some(Type::BYTEA)
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes bytea's text form: hex (`\x0102`, the default since 9.0) or the legacy escape
/// format (`\\` for a backslash, `\ooo` octal, other bytes as themselves).
pub(crate) fn bytea_from_text(raw: &[u8]) -> Result<Vec<u8>, BoxError> {
    if let Some(hex) = raw.strip_prefix(b"\\x") {
        // The server writes no whitespace, but its parser skips it; so do we.
        let mut out = Vec::with_capacity(hex.len() / 2);
        let mut digits = hex.iter().filter(|c| !c.is_ascii_whitespace());
        while let Some(&hi) = digits.next() {
            let lo = digits.next().copied();
            match (hex_val(hi), lo.and_then(hex_val)) {
                (Some(h), Some(l)) => out.push(h << 4 | l),
                _ => {
                    return Err(err(
                        "invalid bytea value: bad hex digit or odd number of digits",
                    ));
                }
            }
        }
        return Ok(out);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&c) = raw.get(i) {
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        match raw.get(i + 1..i + 4) {
            Some(&[b'\\', ..]) => {
                out.push(b'\\');
                i += 2;
            }
            Some(&[a @ b'0'..=b'3', b @ b'0'..=b'7', c @ b'0'..=b'7']) => {
                out.push((a - b'0') << 6 | (b - b'0') << 3 | (c - b'0'));
                i += 4;
            }
            _ if raw.get(i + 1) == Some(&b'\\') => {
                out.push(b'\\');
                i += 2;
            }
            _ => return Err(err("invalid bytea value: bad escape sequence")),
        }
    }
    Ok(out)
}

impl<'a> FromSql<'a> for &'a [u8] {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::BYTEA {
            return Err(cannot_decode::<&[u8]>(ty));
        }
        Ok(raw)
    }

    /// Text-format bytea is hex or escaped, so it cannot be borrowed.
    fn from_sql_text(ty: &Type, _raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::BYTEA {
            return Err(cannot_decode::<&[u8]>(ty));
        }
        Err(err(
            "bytea in text format (simple query) must be decoded: read it as Vec<u8>, not &[u8]",
        ))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::BYTEA
    }
}

impl<'a> FromSql<'a> for Vec<u8> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::BYTEA {
            return Err(cannot_decode::<Vec<u8>>(ty));
        }
        Ok(raw.to_vec())
    }

    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::BYTEA {
            return Err(cannot_decode::<Vec<u8>>(ty));
        }
        bytea_from_text(raw)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::BYTEA
    }
}
