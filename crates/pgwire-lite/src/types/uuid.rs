//! `uuid` (feature `uuid`): `uuid::Uuid` for `uuid`, the same 16 bytes as our [`Uuid`].

use bytes::BytesMut;

use super::codec::{cannot_decode, cannot_encode};
use super::{BoxError, FromSql, IsNull, ToSql, Type, Uuid};

impl From<::uuid::Uuid> for Uuid {
    fn from(u: ::uuid::Uuid) -> Uuid {
        Uuid(u.into_bytes())
    }
}

impl From<Uuid> for ::uuid::Uuid {
    fn from(u: Uuid) -> ::uuid::Uuid {
        ::uuid::Uuid::from_bytes(u.0)
    }
}

impl ToSql for ::uuid::Uuid {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if *ty != Type::UUID {
            return Err(cannot_encode::<Self>(ty));
        }
        self.as_bytes().to_sql(ty, out)
    }

    fn accepts(&self, ty: &Type) -> bool {
        *ty == Type::UUID
    }

    fn type_hint(&self) -> Option<Type> {
        Some(Type::UUID)
    }
}

impl<'a> FromSql<'a> for ::uuid::Uuid {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::UUID {
            return Err(cannot_decode::<Self>(ty));
        }
        <[u8; 16]>::from_sql(ty, raw).map(::uuid::Uuid::from_bytes)
    }

    /// The server's `uuid_out` form, read by our own parser (hyphenated, lowercase).
    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::UUID {
            return Err(cannot_decode::<Self>(ty));
        }
        <[u8; 16]>::from_sql_text(ty, raw).map(::uuid::Uuid::from_bytes)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::UUID
    }
}
