//! Conversions between Rust values and PostgreSQL values.
//!
//! Parameters are always sent in binary format. Results of the extended protocol arrive in
//! binary format; results of the simple protocol arrive in text format, so every [`FromSql`]
//! implementation reads both.

use std::fmt;

use bytes::BytesMut;

pub use crate::error::BoxError;

/// A PostgreSQL type, identified by its OID.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Type(u32);

macro_rules! builtin_types {
    ($($name:ident = $oid:literal, $pg:literal;)*) => {
        impl Type {
            $(
                #[doc = concat!("`", $pg, "` (OID ", stringify!($oid), ").")]
                pub const $name: Type = Type($oid);
            )*

            /// The type's SQL name for built-in types, `None` for others.
            pub fn name(&self) -> Option<&'static str> {
                match self.0 {
                    $( $oid => Some($pg), )*
                    _ => None,
                }
            }
        }
    };
}

builtin_types! {
    BOOL = 16, "bool";
    BYTEA = 17, "bytea";
    CHAR = 18, "\"char\"";
    NAME = 19, "name";
    INT8 = 20, "int8";
    INT2 = 21, "int2";
    INT4 = 23, "int4";
    TEXT = 25, "text";
    OID = 26, "oid";
    JSON = 114, "json";
    FLOAT4 = 700, "float4";
    FLOAT8 = 701, "float8";
    UNKNOWN = 705, "unknown";
    BOOL_ARRAY = 1000, "bool[]";
    BYTEA_ARRAY = 1001, "bytea[]";
    CHAR_ARRAY = 1002, "\"char\"[]";
    NAME_ARRAY = 1003, "name[]";
    INT2_ARRAY = 1005, "int2[]";
    INT4_ARRAY = 1007, "int4[]";
    TEXT_ARRAY = 1009, "text[]";
    OID_ARRAY = 1028, "oid[]";
    BPCHAR_ARRAY = 1014, "bpchar[]";
    VARCHAR_ARRAY = 1015, "varchar[]";
    INT8_ARRAY = 1016, "int8[]";
    FLOAT4_ARRAY = 1021, "float4[]";
    FLOAT8_ARRAY = 1022, "float8[]";
    BPCHAR = 1042, "bpchar";
    VARCHAR = 1043, "varchar";
    DATE = 1082, "date";
    TIME = 1083, "time";
    TIMESTAMP = 1114, "timestamp";
    TIMESTAMP_ARRAY = 1115, "timestamp[]";
    DATE_ARRAY = 1182, "date[]";
    TIME_ARRAY = 1183, "time[]";
    TIMESTAMPTZ = 1184, "timestamptz";
    TIMESTAMPTZ_ARRAY = 1185, "timestamptz[]";
    INTERVAL = 1186, "interval";
    INTERVAL_ARRAY = 1187, "interval[]";
    NUMERIC_ARRAY = 1231, "numeric[]";
    NUMERIC = 1700, "numeric";
    VOID = 2278, "void";
    UUID = 2950, "uuid";
    UUID_ARRAY = 2951, "uuid[]";
    JSONB = 3802, "jsonb";
    JSONB_ARRAY = 3807, "jsonb[]";
    JSON_ARRAY = 199, "json[]";
}

impl Type {
    /// The type with this OID.
    pub const fn from_oid(oid: u32) -> Type {
        Type(oid)
    }

    /// The type's OID.
    pub const fn oid(&self) -> u32 {
        self.0
    }
}

impl fmt::Debug for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "oid {}", self.0),
        }
    }
}

/// Whether an encoded value is SQL NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsNull {
    /// The value is NULL; nothing was written.
    Yes,
    /// The value was written.
    No,
}

/// The wire format of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// PostgreSQL's text representation (simple-query results).
    Text,
    /// PostgreSQL's binary representation (extended-query parameters and results).
    Binary,
}

/// A Rust value that can be sent as a query parameter.
///
/// The trait is object safe: parameters are passed as `&[&(dyn ToSql + Sync)]`.
pub trait ToSql: fmt::Debug {
    /// Writes the value in binary format for the parameter type `ty` into `out`.
    ///
    /// Only called after [`accepts`](ToSql::accepts) returned true for `ty`. Returns
    /// [`IsNull::Yes`] (writing nothing) for NULL.
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError>;

    /// Whether this value can be encoded as a parameter of type `ty` without loss.
    fn accepts(&self, ty: &Type) -> bool;

    /// The type this value is naturally sent as, used to declare parameter types when the
    /// server is not asked first. `None` lets the server infer the type.
    fn type_hint(&self) -> Option<Type> {
        None
    }
}

/// A Rust value that can be read from a column.
///
/// The lifetime lets a value borrow from the row (`&str`, `&[u8]`).
pub trait FromSql<'a>: Sized {
    /// Decodes a non-NULL value in binary format.
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError>;

    /// Decodes a non-NULL value in text format.
    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError>;

    /// Decodes a NULL. Fails unless the type has a NULL (like `Option<T>`).
    fn from_sql_null(ty: &Type) -> Result<Self, BoxError> {
        Err(format!("unexpected NULL for a non-Option Rust type (column type {ty})").into())
    }

    /// Whether a column of type `ty` can be decoded into this type.
    fn accepts(ty: &Type) -> bool;
}

/// Decodes an optional raw value in either format.
pub fn decode<'a, T: FromSql<'a>>(
    ty: &Type,
    format: Format,
    raw: Option<&'a [u8]>,
) -> Result<T, BoxError> {
    match (raw, format) {
        (None, _) => T::from_sql_null(ty),
        (Some(r), Format::Binary) => T::from_sql(ty, r),
        (Some(r), Format::Text) => T::from_sql_text(ty, r),
    }
}
