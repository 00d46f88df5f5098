//! `uuid` and `json`/`jsonb`.

use std::fmt;
use std::str::FromStr;

use bytes::{BufMut, BytesMut};

use super::codec::{cannot_decode, cannot_encode, err, fixed, len_i32, snippet, utf8};
use super::{BoxError, FromSql, IsNull, ToSql, Type};

// ---- uuid --------------------------------------------------------------------------------

/// A PostgreSQL `uuid`: 16 bytes, shown as `a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// The UUID with these bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Uuid {
        Uuid(bytes)
    }

    /// The 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for Uuid {
    /// Lowercase, hyphenated, as the server prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uuid({self})")
    }
}

impl FromStr for Uuid {
    type Err = BoxError;

    /// Reads what the server's `uuid_in` reads: 32 hex digits, optionally in braces, with an
    /// optional hyphen after any group of four digits.
    fn from_str(s: &str) -> Result<Uuid, BoxError> {
        let bad = || err(format!("invalid uuid value: {}", snippet(s)));
        let body = match s.strip_prefix('{') {
            Some(inner) => inner.strip_suffix('}').ok_or_else(bad)?,
            None => s,
        };
        let mut out = [0u8; 16];
        let mut nibbles = 0usize;
        let mut prev_hyphen = true; // no hyphen at the start
        for c in body.bytes() {
            if c == b'-' {
                if prev_hyphen || nibbles % 4 != 0 || nibbles == 32 {
                    return Err(bad());
                }
                prev_hyphen = true;
                continue;
            }
            prev_hyphen = false;
            let v = char::from(c).to_digit(16).ok_or_else(bad)?;
            let slot = out.get_mut(nibbles / 2).ok_or_else(bad)?;
            *slot = *slot << 4 | u8::try_from(v).map_err(|_| bad())?;
            nibbles += 1;
        }
        if nibbles != 32 || prev_hyphen {
            return Err(bad());
        }
        Ok(Uuid(out))
    }
}

impl ToSql for Uuid {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        self.0.to_sql(ty, out)
    }

    fn accepts(&self, ty: &Type) -> bool {
        *ty == Type::UUID
    }

    fn type_hint(&self) -> Option<Type> {
        Some(Type::UUID)
    }
}

impl<'a> FromSql<'a> for Uuid {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        <[u8; 16]>::from_sql(ty, raw).map(Uuid)
    }

    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        <[u8; 16]>::from_sql_text(ty, raw).map(Uuid)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::UUID
    }
}

impl ToSql for [u8; 16] {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if *ty != Type::UUID {
            return Err(cannot_encode::<[u8; 16]>(ty));
        }
        out.put_slice(self);
        Ok(IsNull::No)
    }

    fn accepts(&self, ty: &Type) -> bool {
        *ty == Type::UUID
    }

    fn type_hint(&self) -> Option<Type> {
        Some(Type::UUID)
    }
}

impl<'a> FromSql<'a> for [u8; 16] {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::UUID {
            return Err(cannot_decode::<[u8; 16]>(ty));
        }
        fixed("uuid", raw)
    }

    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::UUID {
            return Err(cannot_decode::<[u8; 16]>(ty));
        }
        utf8("uuid", raw)?.parse::<Uuid>().map(|u| u.0)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::UUID
    }
}

// ---- json / jsonb ------------------------------------------------------------------------

/// The version byte that prefixes jsonb in binary format.
const JSONB_VERSION: u8 = 1;

/// A `json` or `jsonb` document, kept as its text (no JSON library is involved: parse it with
/// whatever you use). The text is not validated on our side; the server validates parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Json(pub String);

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ToSql for Json {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match *ty {
            Type::JSON => {}
            Type::JSONB => out.put_u8(JSONB_VERSION),
            _ => return Err(cannot_encode::<Json>(ty)),
        }
        len_i32("json value", self.0.len() + 1)?;
        out.put_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(&self, ty: &Type) -> bool {
        matches!(*ty, Type::JSON | Type::JSONB)
    }

    /// `jsonb`, the type people store; a `json` parameter is accepted as well.
    fn type_hint(&self) -> Option<Type> {
        Some(Type::JSONB)
    }
}

impl<'a> FromSql<'a> for Json {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let text = match *ty {
            Type::JSON => raw,
            Type::JSONB => match raw.split_first() {
                Some((&JSONB_VERSION, rest)) => rest,
                Some((v, _)) => return Err(err(format!("unsupported jsonb version {v}"))),
                None => return Err(err("invalid jsonb value: missing version byte")),
            },
            _ => return Err(cannot_decode::<Json>(ty)),
        };
        Ok(Json(
            utf8(if *ty == Type::JSON { "json" } else { "jsonb" }, text)?.to_owned(),
        ))
    }

    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if !<Json as FromSql>::accepts(ty) {
            return Err(cannot_decode::<Json>(ty));
        }
        Ok(Json(utf8("json", raw)?.to_owned()))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::JSON | Type::JSONB)
    }
}
