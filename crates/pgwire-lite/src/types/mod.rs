//! Conversions between Rust values and PostgreSQL values.
//!
//! Parameters are always sent in binary format. Results of the extended protocol arrive in
//! binary format; results of the simple protocol arrive in text format, so every [`FromSql`]
//! implementation reads both. Text decoding assumes the session settings the connection
//! establishes: `DateStyle=ISO`, `IntervalStyle=postgres`, `client_encoding=UTF8`.
//!
//! | PostgreSQL | Rust (default, std only) |
//! |---|---|
//! | `bool` | `bool` |
//! | `int2` / `int4` / `int8` | `i16` / `i32` / `i64` (narrower ints are accepted for wider columns and parameters) |
//! | `float4` / `float8` | `f32` / `f64` (`f32` accepted for `float8`) |
//! | `numeric` | [`Numeric`] (exact, with NaN and ±Infinity) |
//! | `text`, `varchar`, `bpchar`, `name` | `String`, `&str` |
//! | `"char"` | `i8` |
//! | `bytea` | `Vec<u8>`, `&[u8]` |
//! | `date`, `time`, `timestamp`, `timestamptz`, `interval` | [`Date`], [`Time`], [`Timestamp`], [`TimestampTz`] (or `std::time::SystemTime`), [`Interval`] |
//! | `uuid` | [`Uuid`], `[u8; 16]` |
//! | `json`, `jsonb` | [`Json`] |
//! | `oid` | `u32` |
//! | `inet`, `cidr` | [`Inet`] (`std::net::IpAddr` + prefix) |
//! | `macaddr` | [`MacAddr`] |
//! | `int4range`, `int8range`, `numrange`, `daterange`, `tsrange`, `tstzrange`, user ranges | [`Range<T>`] |
//! | user enums | `String`, `&str`, or a `#[derive(ToSql, FromSql)]` Rust enum |
//! | user domains | whatever reads and binds its base type |
//! | user composites, `record` | [`Value::Composite`], a `#[derive(ToSql, FromSql)]` struct, [`composite::Composite`] |
//! | arrays | `Vec<T>`, `&[T]` (1-D), [`Array<T>`] (N-D, lower bounds kept) |
//! | NULL | `Option<T>` |
//! | anything | [`Value`] |
//!
//! The types above are our own std-only representations, always there. Optional features, named
//! after the crates, add `ToSql`/`FromSql` (both formats, arrays included) for other crates'
//! types, and conversions between those and ours (`From`/`TryFrom`):
//!
//! | feature | PostgreSQL | Rust |
//! |---|---|---|
//! | `chrono` | `date`, `time`, `timestamp` | `NaiveDate`, `NaiveTime`, `NaiveDateTime` |
//! | `chrono` | `timestamptz` | `DateTime<Utc>`, `DateTime<FixedOffset>` (any `DateTime<Tz>` as a parameter) |
//! | `time` | `date`, `time`, `timestamp`, `timestamptz` | `Date`, `Time`, `PrimitiveDateTime`, `OffsetDateTime` |
//! | `uuid` | `uuid` | `uuid::Uuid` |
//! | `rust_decimal` | `numeric` | `Decimal` |
//! | `serde_json` | `json`, `jsonb` | `serde_json::Value`, [`SerdeJson<T>`](SerdeJson) for any `T: Serialize`/`Deserialize` |
//! | `serde` | — | `Serialize` for [`Value`], [`RowMap`](crate::RowMap), [`Row`](crate::Row), [`QueryResult`](crate::QueryResult); [`Row::deserialize`](crate::Row::deserialize) into any `T: Deserialize` |
//!
//! Values these types cannot hold are errors, never clamped or rounded: `infinity` dates and
//! timestamps, `24:00:00`, `NaN`/`Infinity` and more than 28 decimal places for `Decimal`, and
//! dates before the server's earliest (4714-11-24 BC) as parameters. Sub-microsecond parts of
//! `chrono`/`time` values are dropped when sent (rounded down to the microsecond, the server's
//! resolution). `DateTime<FixedOffset>` and `OffsetDateTime` read in text format keep the
//! session time zone's offset; in binary format they are in UTC.
//!
//! # serde
//!
//! ## Serializing
//!
//! [`Value`] serializes as PostgreSQL's own `to_json` writes each type, so a result reads the
//! same whether the server or this crate made the JSON:
//!
//! | value | serialized as |
//! |---|---|
//! | NULL | none (`null`) |
//! | `bool`, `int2/4/8`, `oid` | bool, integer (`to_json` quotes an `oid`; it is a number) |
//! | `float4`/`float8` | number; `NaN`, `Infinity`, `-Infinity` as those strings |
//! | `numeric` | string (`"12.50"`): exact, whatever the reader's number type |
//! | text types, `interval`, `uuid` | string, as the server prints it |
//! | `"char"` | one-character string, as the server prints it |
//! | `bytea` | string in the server's hex form, `"\\x0102"` |
//! | `date`, `time`, `timestamp`, `timestamptz` | ISO 8601 string: `"2024-01-02"`, `"2024-01-02T03:04:05.5"`, `"2024-01-02T03:04:05.5+00:00"` (UTC); `"infinity"`, `"-infinity"`. BC years are ISO's astronomical ones (44 BC is `"-0043-03-15"`) where `to_json` writes `"0044-03-15 BC"`, which JSON date parsers do not read |
//! | `json`, `jsonb` | the document itself, embedded (keys in their order; numbers as `i64`/`u64` when whole and in range, else as the nearest `f64`; at most 128 levels deep) |
//! | arrays | sequences, nested for several dimensions (lower bounds dropped) |
//! | types this crate does not decode | their text as a string, or `"\\x..."` hex of binary bytes |
//!
//! [`RowMap`](crate::RowMap) and [`Row`](crate::Row) serialize as maps from column name to value, in column order (a
//! name used twice appears twice, as in `row_to_json`); [`QueryResult`](crate::QueryResult) as a sequence of them.
//!
//! ## Deserializing
//!
//! [`Row::deserialize`](crate::Row::deserialize) fills any `T: Deserialize` from one row: a struct's fields (or a map's
//! keys) by column name — exact first, then ignoring ASCII case — and a tuple's elements by
//! position. `Option` fields read NULL as `None` (and a missing column as `None`, as serde does
//! for absent `Option` fields); NULL into any other field is an error naming the column.
//! [`QueryResult::deserialize`](crate::QueryResult::deserialize) does it for every row. A column reads into whatever Rust type
//! fits what it [serializes](#serializing) as, and also: `numeric` into integers (when whole)
//! and floats (nearest), `bytea` into `Vec<u8>`/`&[u8]`, text into `&str` borrowed from the
//! row, `json`/`jsonb` into any `T: Deserialize` (or `String` for their text), and text or enum
//! labels into unit enums.
//!
//! # Types that are not built in
//!
//! The first statement that mentions a type whose OID is not one of the [`Type`] constants
//! (an enum, a domain, a composite, an extension's type) makes the connection look it up in
//! `pg_type` — its name, its [`Kind`], and what it is made of — in a request of its own after
//! the statement's Describe is settled. The result goes into the [`TypeCache`], which a pool
//! shares between its connections: one lookup per type per pool, none for built-in types.
//! Type errors then name the type (`ut.mood`, schema-qualified outside `public`), not its OID.
//!
//! A domain column is reported by the server as its base type; a domain parameter keeps its
//! name ([`Type::base`] is what values are sent as).
//!
//! Array elements are read into owned types (`Vec<String>`, not `Vec<&str>`): text-format
//! elements may need unescaping, so they cannot borrow from the row.

use std::fmt;
use std::sync::Arc;

/// Re-exported for `ToSql` implementations (and the derives), so they need no `bytes`
/// dependency of their own.
pub use bytes::BytesMut;

pub use crate::error::BoxError;

/// `ToSql`/`FromSql` for a foreign type that converts through one of ours: `$ours` must be
/// `TryFrom<&$ext>` (for parameters) and `$ext: TryFrom<$ours>` (for results), both with
/// errors that say why the value does not fit.
#[cfg(any(feature = "chrono", feature = "time"))]
macro_rules! through {
    ($ext:ty, $ours:ty, $pg:ident) => {
        impl ToSql for $ext {
            fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
                if *ty != Type::$pg {
                    return Err(cannot_encode::<$ext>(ty));
                }
                <$ours>::try_from(self)?.to_sql(ty, out)
            }

            fn accepts(&self, ty: &Type) -> bool {
                *ty == Type::$pg
            }

            fn type_hint(&self) -> Option<Type> {
                Some(Type::$pg)
            }
        }

        impl<'a> FromSql<'a> for $ext {
            fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
                if *ty != Type::$pg {
                    return Err(cannot_decode::<$ext>(ty));
                }
                Ok(<$ext>::try_from(<$ours>::from_sql(ty, raw)?)?)
            }

            fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
                if *ty != Type::$pg {
                    return Err(cannot_decode::<$ext>(ty));
                }
                Ok(<$ext>::try_from(<$ours>::from_sql_text(ty, raw)?)?)
            }

            fn accepts(ty: &Type) -> bool {
                *ty == Type::$pg
            }
        }
    };
}

mod array;
mod cache;
mod codec;
pub mod composite;
mod datetime;
pub mod enums;
mod misc;
mod net;
mod numeric;
mod primitives;
mod range;
mod text;
mod value;

#[cfg(feature = "chrono")]
mod chrono;
#[cfg(feature = "rust_decimal")]
mod rust_decimal;
#[cfg(feature = "serde")]
mod serde;
#[cfg(feature = "serde_json")]
mod serde_json;
#[cfg(feature = "time")]
mod time;
#[cfg(feature = "uuid")]
mod uuid;

#[cfg(test)]
mod tests;

pub use array::Array;
pub use cache::{MAX_CACHED_TYPES, TypeCache};
pub use datetime::{Date, Interval, Time, Timestamp, TimestampTz};
pub use misc::{Json, Uuid};
pub use net::{Inet, MacAddr};
pub use numeric::Numeric;
pub use range::Range;
pub use value::Value;

#[cfg(feature = "serde_json")]
pub use self::serde_json::SerdeJson;

/// A value that does not fit the Rust type it was converted to (`infinity` into a
/// `chrono::NaiveDate`, `1.5` into an `i64`); the message says which value and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertError(String);

impl ConvertError {
    pub(crate) fn new(msg: impl Into<String>) -> ConvertError {
        ConvertError(msg.into())
    }
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConvertError {}

/// A PostgreSQL type, identified by its OID.
///
/// Built-in types are constants (`Type::INT4`) and cost nothing to clone. Any other type
/// (an enum, a domain, a composite, an extension's type) is looked up in `pg_type` the first
/// time a statement mentions it and then carries its name and [`Kind`]; see [`TypeCache`].
/// A type the lookup has not reached yet prints as `oid N` and reads as [`Value::Unknown`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Type(Repr);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    /// A built-in type, or one not looked up (yet).
    Oid(u32),
    /// A type looked up in `pg_type`.
    Other(Arc<OtherType>),
}

macro_rules! builtin_types {
    ($($name:ident = $oid:literal, $pg:literal;)*) => {
        impl Type {
            $(
                #[doc = concat!("`", $pg, "` (OID ", stringify!($oid), ").")]
                pub const $name: Type = Type(Repr::Oid($oid));
            )*

            /// The SQL name of a built-in type.
            fn builtin_name(oid: u32) -> Option<&'static str> {
                match oid {
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
    CIDR = 650, "cidr";
    FLOAT4 = 700, "float4";
    FLOAT8 = 701, "float8";
    UNKNOWN = 705, "unknown";
    MACADDR = 829, "macaddr";
    INET = 869, "inet";
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
    MACADDR_ARRAY = 1040, "macaddr[]";
    INET_ARRAY = 1041, "inet[]";
    CIDR_ARRAY = 651, "cidr[]";
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
    RECORD = 2249, "record";
    RECORD_ARRAY = 2287, "record[]";
    VOID = 2278, "void";
    UUID = 2950, "uuid";
    UUID_ARRAY = 2951, "uuid[]";
    JSONB = 3802, "jsonb";
    JSONB_ARRAY = 3807, "jsonb[]";
    JSON_ARRAY = 199, "json[]";
    INT4_RANGE = 3904, "int4range";
    INT4_RANGE_ARRAY = 3905, "int4range[]";
    NUM_RANGE = 3906, "numrange";
    NUM_RANGE_ARRAY = 3907, "numrange[]";
    TS_RANGE = 3908, "tsrange";
    TS_RANGE_ARRAY = 3909, "tsrange[]";
    TSTZ_RANGE = 3910, "tstzrange";
    TSTZ_RANGE_ARRAY = 3911, "tstzrange[]";
    DATE_RANGE = 3912, "daterange";
    DATE_RANGE_ARRAY = 3913, "daterange[]";
    INT8_RANGE = 3926, "int8range";
    INT8_RANGE_ARRAY = 3927, "int8range[]";
}

/// Built-in array types and their element types, both ways.
const ARRAY_TYPES: &[(Type, Type)] = &[
    (Type::BOOL_ARRAY, Type::BOOL),
    (Type::BYTEA_ARRAY, Type::BYTEA),
    (Type::CHAR_ARRAY, Type::CHAR),
    (Type::NAME_ARRAY, Type::NAME),
    (Type::INT2_ARRAY, Type::INT2),
    (Type::INT4_ARRAY, Type::INT4),
    (Type::INT8_ARRAY, Type::INT8),
    (Type::TEXT_ARRAY, Type::TEXT),
    (Type::OID_ARRAY, Type::OID),
    (Type::BPCHAR_ARRAY, Type::BPCHAR),
    (Type::VARCHAR_ARRAY, Type::VARCHAR),
    (Type::FLOAT4_ARRAY, Type::FLOAT4),
    (Type::FLOAT8_ARRAY, Type::FLOAT8),
    (Type::TIMESTAMP_ARRAY, Type::TIMESTAMP),
    (Type::DATE_ARRAY, Type::DATE),
    (Type::TIME_ARRAY, Type::TIME),
    (Type::TIMESTAMPTZ_ARRAY, Type::TIMESTAMPTZ),
    (Type::INTERVAL_ARRAY, Type::INTERVAL),
    (Type::NUMERIC_ARRAY, Type::NUMERIC),
    (Type::UUID_ARRAY, Type::UUID),
    (Type::JSON_ARRAY, Type::JSON),
    (Type::JSONB_ARRAY, Type::JSONB),
    (Type::INET_ARRAY, Type::INET),
    (Type::CIDR_ARRAY, Type::CIDR),
    (Type::MACADDR_ARRAY, Type::MACADDR),
    (Type::RECORD_ARRAY, Type::RECORD),
    (Type::INT4_RANGE_ARRAY, Type::INT4_RANGE),
    (Type::INT8_RANGE_ARRAY, Type::INT8_RANGE),
    (Type::NUM_RANGE_ARRAY, Type::NUM_RANGE),
    (Type::DATE_RANGE_ARRAY, Type::DATE_RANGE),
    (Type::TS_RANGE_ARRAY, Type::TS_RANGE),
    (Type::TSTZ_RANGE_ARRAY, Type::TSTZ_RANGE),
];

/// Built-in range types and their subtypes.
const RANGE_TYPES: &[(Type, Type)] = &[
    (Type::INT4_RANGE, Type::INT4),
    (Type::INT8_RANGE, Type::INT8),
    (Type::NUM_RANGE, Type::NUMERIC),
    (Type::DATE_RANGE, Type::DATE),
    (Type::TS_RANGE, Type::TIMESTAMP),
    (Type::TSTZ_RANGE, Type::TIMESTAMPTZ),
];

impl Type {
    /// The element type of an array type (`int4[]` -> `int4`, `mood[]` -> `mood`), `None`
    /// for other types.
    pub fn array_element(&self) -> Option<Type> {
        match &self.0 {
            Repr::Oid(_) => ARRAY_TYPES
                .iter()
                .find(|(a, _)| a == self)
                .map(|(_, e)| e.clone()),
            Repr::Other(o) => match &o.kind {
                Kind::Array(e) => Some(e.clone()),
                _ => None,
            },
        }
    }

    /// The array type whose elements are of this built-in type (`int4` -> `int4[]`).
    pub fn array_type(&self) -> Option<Type> {
        ARRAY_TYPES
            .iter()
            .find(|(_, e)| e == self)
            .map(|(a, _)| a.clone())
    }

    /// The subtype of a range type (`int4range` -> `int4`), `None` for other types.
    pub fn range_subtype(&self) -> Option<Type> {
        match &self.0 {
            Repr::Oid(_) => RANGE_TYPES
                .iter()
                .find(|(r, _)| r == self)
                .map(|(_, s)| s.clone()),
            Repr::Other(o) => match &o.kind {
                Kind::Range(s) => Some(s.clone()),
                _ => None,
            },
        }
    }

    /// The type with this OID: a built-in type, or an unresolved one (see [`Type`]).
    pub const fn from_oid(oid: u32) -> Type {
        Type(Repr::Oid(oid))
    }

    /// The type's OID.
    pub fn oid(&self) -> u32 {
        match &self.0 {
            Repr::Oid(oid) => *oid,
            Repr::Other(o) => o.oid,
        }
    }

    /// The type's SQL name: the built-in name, or `pg_type.typname` (schema-qualified unless
    /// the schema is `public` or `pg_catalog`) for a looked-up type; `None` for a type not
    /// looked up.
    pub fn name(&self) -> Option<&str> {
        match &self.0 {
            Repr::Oid(oid) => Type::builtin_name(*oid),
            Repr::Other(o) => Some(&o.name),
        }
    }

    /// What kind of type this is. Built-in types are [`Kind::Base`], except arrays and ranges;
    /// an unresolved type is [`Kind::Base`] too.
    pub fn kind(&self) -> Kind {
        match &self.0 {
            Repr::Other(o) => o.kind.clone(),
            Repr::Oid(_) => {
                if let Some(e) = self.array_element() {
                    Kind::Array(e)
                } else if let Some(s) = self.range_subtype() {
                    Kind::Range(s)
                } else {
                    Kind::Base
                }
            }
        }
    }

    /// The labels of an enum type, in order; `None` for other types.
    pub fn enum_labels(&self) -> Option<&[String]> {
        match &self.0 {
            Repr::Other(o) => match &o.kind {
                Kind::Enum(labels) => Some(labels),
                _ => None,
            },
            Repr::Oid(_) => None,
        }
    }

    /// The fields of a composite type, in order; `None` for other types.
    pub fn fields(&self) -> Option<&[Field]> {
        match &self.0 {
            Repr::Other(o) => match &o.kind {
                Kind::Composite(fields) => Some(fields),
                _ => None,
            },
            Repr::Oid(_) => None,
        }
    }

    /// The type values of this type are sent and read as: a domain's base type (through any
    /// number of domains), the type itself otherwise. Domains have their base type's formats.
    pub fn base(&self) -> &Type {
        let mut t = self;
        // Domain chains are finite: the lookup builds them bottom-up with a depth cap.
        while let Repr::Other(o) = &t.0 {
            match &o.kind {
                Kind::Domain(b) => t = b,
                _ => break,
            }
        }
        t
    }

    /// Whether this is an enum type.
    pub fn is_enum(&self) -> bool {
        self.enum_labels().is_some()
    }

    /// A type known to this crate without a lookup: every built-in constant.
    pub(crate) fn is_builtin(&self) -> bool {
        match &self.0 {
            Repr::Oid(oid) => Type::builtin_name(*oid).is_some(),
            Repr::Other(_) => false,
        }
    }

    /// Whether this type still needs a lookup: not built in, not looked up.
    pub(crate) fn is_unresolved(&self) -> bool {
        matches!(self.0, Repr::Oid(_)) && !self.is_builtin()
    }

    /// A looked-up type.
    pub(crate) fn other(oid: u32, name: String, kind: Kind) -> Type {
        Type(Repr::Other(Arc::new(OtherType {
            oid,
            name: name.into(),
            kind,
        })))
    }
}

/// A type looked up in `pg_type`.
#[derive(PartialEq, Eq, Hash)]
struct OtherType {
    oid: u32,
    name: Box<str>,
    kind: Kind,
}

/// What kind of type a [`Type`] is (`pg_type.typtype`, and what it is made of).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A base type (built in or from an extension), a pseudo-type, or a type not looked up.
    Base,
    /// An enum type, with its labels in order.
    Enum(Vec<String>),
    /// A domain over the given type.
    Domain(Type),
    /// A composite type (a table's row type or `CREATE TYPE ... AS (...)`), with its fields.
    Composite(Vec<Field>),
    /// An array of the given type.
    Array(Type),
    /// A range over the given subtype.
    Range(Type),
    /// A multirange over the given range type.
    Multirange(Type),
}

/// One field of a composite type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Field {
    name: String,
    type_: Type,
}

impl Field {
    pub(crate) fn new(name: String, type_: Type) -> Field {
        Field { name, type_ }
    }

    /// The field's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The field's type.
    pub fn type_(&self) -> &Type {
        &self.type_
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
            None => write!(f, "oid {}", self.oid()),
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

    /// The Rust type's name, for error messages (a parameter's value is never printed: it may
    /// be a secret).
    fn type_name(&self) -> &'static str {
        std::any::type_name::<Self>()
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

/// A [`FromSql`] type that borrows nothing from the row (`String`, `i32`, `Vec<T>`, [`Value`]).
pub trait FromSqlOwned: for<'a> FromSql<'a> {}

impl<T> FromSqlOwned for T where T: for<'a> FromSql<'a> {}

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
