//! `serde_json` (feature `serde_json`): `serde_json::Value` and [`SerdeJson<T>`] for `json` and
//! `jsonb`.
//!
//! Our std-only [`Json`](super::Json) keeps a document as its text; these parse it. Parameters
//! are serialized straight into the request buffer; results are parsed straight from the row.

use std::fmt;
use std::ops::{Deref, DerefMut};

use bytes::{BufMut, BytesMut};
use serde::{Deserialize, Serialize};

use super::codec::{cannot_decode, cannot_encode, err, len_i32};
use super::{BoxError, FromSql, IsNull, ToSql, Type};

/// The version byte that prefixes jsonb in binary format.
const JSONB_VERSION: u8 = 1;

/// A `json` or `jsonb` value as any serde type: `SerdeJson(my_struct)` as a parameter is sent
/// as its JSON, and `SerdeJson<MyStruct>` reads a column by deserializing its JSON.
///
/// Our [`Json`](super::Json) stays the text of a document, so that turning this feature on
/// changes nothing for code that uses it; this is the typed wrapper (sqlx and tokio-postgres
/// call theirs `Json<T>`). `serde_json::Value` needs no wrapper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SerdeJson<T>(pub T);

impl<T> SerdeJson<T> {
    /// The wrapped value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for SerdeJson<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for SerdeJson<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T> From<T> for SerdeJson<T> {
    fn from(v: T) -> SerdeJson<T> {
        SerdeJson(v)
    }
}

fn accepts(ty: &Type) -> bool {
    matches!(*ty, Type::JSON | Type::JSONB)
}

/// Serializes `value` into `out` as a `json` or `jsonb` parameter; on error `out` is left as it
/// was.
fn write_json<T: Serialize + ?Sized>(
    value: &T,
    ty: &Type,
    out: &mut BytesMut,
) -> Result<IsNull, BoxError> {
    let start = out.len();
    if *ty == Type::JSONB {
        out.put_u8(JSONB_VERSION);
    }
    let result = serde_json::to_writer((&mut *out).writer(), value)
        .map_err(|e| {
            err(format!(
                "cannot serialize {} as JSON: {e}",
                std::any::type_name::<T>()
            ))
        })
        .and_then(|()| len_i32("json value", out.len() - start));
    if let Err(e) = result {
        out.truncate(start);
        return Err(e);
    }
    Ok(IsNull::No)
}

/// The JSON text of a binary value: jsonb's starts with its version byte.
fn json_text<'a>(ty: &Type, raw: &'a [u8]) -> Result<&'a [u8], BoxError> {
    match *ty {
        Type::JSONB => match raw.split_first() {
            Some((&JSONB_VERSION, rest)) => Ok(rest),
            Some((v, _)) => Err(err(format!("unsupported jsonb version {v}"))),
            None => Err(err("invalid jsonb value: missing version byte")),
        },
        _ => Ok(raw),
    }
}

fn read_json<'a, T: Deserialize<'a>>(ty: &Type, text: &'a [u8]) -> Result<T, BoxError> {
    serde_json::from_slice(text).map_err(|e| {
        err(format!(
            "cannot read {ty} as {}: {e}",
            std::any::type_name::<T>()
        ))
    })
}

impl<T: Serialize + fmt::Debug> ToSql for SerdeJson<T> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if !accepts(ty) {
            return Err(cannot_encode::<Self>(ty));
        }
        write_json(&self.0, ty, out)
    }

    fn accepts(&self, ty: &Type) -> bool {
        accepts(ty)
    }

    /// `jsonb`, the type people store; a `json` parameter is accepted as well.
    fn type_hint(&self) -> Option<Type> {
        Some(Type::JSONB)
    }
}

impl<'a, T: Deserialize<'a>> FromSql<'a> for SerdeJson<T> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if !accepts(ty) {
            return Err(cannot_decode::<Self>(ty));
        }
        read_json(ty, json_text(ty, raw)?).map(SerdeJson)
    }

    /// Text format has no version byte, for jsonb either.
    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if !accepts(ty) {
            return Err(cannot_decode::<Self>(ty));
        }
        read_json(ty, raw).map(SerdeJson)
    }

    fn accepts(ty: &Type) -> bool {
        accepts(ty)
    }
}

impl ToSql for serde_json::Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if !accepts(ty) {
            return Err(cannot_encode::<Self>(ty));
        }
        write_json(self, ty, out)
    }

    fn accepts(&self, ty: &Type) -> bool {
        accepts(ty)
    }

    /// `jsonb`, the type people store; a `json` parameter is accepted as well.
    fn type_hint(&self) -> Option<Type> {
        Some(Type::JSONB)
    }
}

impl<'a> FromSql<'a> for serde_json::Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if !accepts(ty) {
            return Err(cannot_decode::<Self>(ty));
        }
        read_json(ty, json_text(ty, raw)?)
    }

    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if !accepts(ty) {
            return Err(cannot_decode::<Self>(ty));
        }
        read_json(ty, raw)
    }

    fn accepts(ty: &Type) -> bool {
        accepts(ty)
    }
}
