//! `Value`: any PostgreSQL value, for code that does not know column types in advance.

use bytes::BytesMut;

use super::array::{self, Array};
use super::codec::{cannot_encode, err};
use super::composite::{Composite, write_composite};
use super::text::is_text_like;
use super::{
    BoxError, Date, Format, FromSql, Inet, Interval, IsNull, Json, MacAddr, Numeric, Range, Time,
    Timestamp, TimestampTz, ToSql, Type, Uuid,
};

/// Any PostgreSQL value.
///
/// Reading a `Value` never fails on a well-formed value: types this crate does not know (and
/// text-format values it cannot parse, e.g. dates under a non-ISO `DateStyle`) become
/// [`Value::Unknown`] with the raw bytes. Sending a `Value` back as a parameter sends what was
/// read, so the server compares it equal.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// SQL NULL (of any type).
    Null,
    /// `bool`.
    Bool(bool),
    /// `int2`.
    Int2(i16),
    /// `int4`.
    Int4(i32),
    /// `int8`.
    Int8(i64),
    /// `float4`.
    Float4(f32),
    /// `float8`.
    Float8(f64),
    /// `numeric`.
    Numeric(Numeric),
    /// `text`, `varchar`, `bpchar`, `name` (and `unknown` literals).
    Text(String),
    /// `bytea`.
    Bytea(Vec<u8>),
    /// `"char"`: a single byte.
    Char(i8),
    /// `date`.
    Date(Date),
    /// `time`.
    Time(Time),
    /// `timestamp`.
    Timestamp(Timestamp),
    /// `timestamptz`.
    TimestampTz(TimestampTz),
    /// `interval`.
    Interval(Interval),
    /// `uuid`.
    Uuid(Uuid),
    /// `json`.
    Json(Json),
    /// `jsonb`.
    Jsonb(Json),
    /// `oid`.
    Oid(u32),
    /// A label of an enum type.
    Enum(String),
    /// A composite value (a row type, `CREATE TYPE ... AS`, or an anonymous `ROW(...)`): its
    /// fields in order, named as the type names them (`f1`, `f2`, ... for anonymous records).
    /// Sent back as a parameter, fields are matched to the parameter type's fields by name.
    Composite(Vec<(String, Value)>),
    /// A range (built-in or user-defined); the bounds are [`Value`]s of the subtype.
    Range(Box<Range<Value>>),
    /// `inet`.
    Inet(Inet),
    /// `cidr`.
    Cidr(Inet),
    /// `macaddr`.
    MacAddr(MacAddr),
    /// An array (of any element type this enum can hold).
    Array {
        /// The type of the elements (`int4` for an `int4[]`).
        element_type: Type,
        /// The elements and shape; `None` elements are NULL.
        array: Array<Value>,
    },
    /// A value of a type this crate does not decode, kept as it arrived.
    Unknown {
        /// The column type.
        ty: Type,
        /// The format `raw` is in.
        format: Format,
        /// The value's bytes.
        raw: Vec<u8>,
    },
}

impl Value {
    /// True for [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The type this value is naturally sent as (`None` for NULL and text-format unknowns,
    /// letting the server infer).
    pub fn type_hint(&self) -> Option<Type> {
        Some(match self {
            Value::Null => return None,
            Value::Bool(_) => Type::BOOL,
            Value::Int2(_) => Type::INT2,
            Value::Int4(_) => Type::INT4,
            Value::Int8(_) => Type::INT8,
            Value::Float4(_) => Type::FLOAT4,
            Value::Float8(_) => Type::FLOAT8,
            Value::Numeric(_) => Type::NUMERIC,
            Value::Text(_) => Type::TEXT,
            Value::Bytea(_) => Type::BYTEA,
            Value::Char(_) => Type::CHAR,
            Value::Date(_) => Type::DATE,
            Value::Time(_) => Type::TIME,
            Value::Timestamp(_) => Type::TIMESTAMP,
            Value::TimestampTz(_) => Type::TIMESTAMPTZ,
            Value::Interval(_) => Type::INTERVAL,
            Value::Uuid(_) => Type::UUID,
            Value::Json(_) => Type::JSON,
            Value::Jsonb(_) => Type::JSONB,
            Value::Oid(_) => Type::OID,
            Value::Inet(_) => Type::INET,
            Value::Cidr(_) => Type::CIDR,
            Value::MacAddr(_) => Type::MACADDR,
            Value::Range(r) => return r.type_hint(),
            // The server knows these types by name only: let it infer them.
            Value::Enum(_) | Value::Composite(_) => return None,
            Value::Array { element_type, .. } => return element_type.array_type(),
            Value::Unknown {
                ty,
                format: Format::Binary,
                ..
            } => ty.clone(),
            Value::Unknown { .. } => return None,
        })
    }

    /// The value of `bool`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The value of any integer type (`int2`, `int4`, `int8`, `oid`).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int2(v) => Some((*v).into()),
            Value::Int4(v) => Some((*v).into()),
            Value::Int8(v) => Some(*v),
            Value::Oid(v) => Some((*v).into()),
            _ => None,
        }
    }

    /// The value of `float4` or `float8`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float4(v) => Some((*v).into()),
            Value::Float8(v) => Some(*v),
            _ => None,
        }
    }

    /// The text of a text-like, enum, `json` or `jsonb` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) | Value::Enum(s) | Value::Json(Json(s)) | Value::Jsonb(Json(s)) => {
                Some(s)
            }
            _ => None,
        }
    }

    /// The bytes of a `bytea`.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytea(b) => Some(b),
            _ => None,
        }
    }

    /// Decodes a non-NULL value of type `ty`.
    fn decode(ty: &Type, raw: &[u8], format: Format) -> Result<Value, BoxError> {
        let text = format == Format::Text;
        let result = Value::decode_known(ty, raw, text);
        match result {
            Some(Ok(v)) => Ok(v),
            // Text we cannot parse is still readable as text; bad binary is a broken server.
            Some(Err(_)) if text => Ok(Value::unknown(ty, raw, format)),
            Some(Err(e)) => Err(e),
            None => Ok(Value::unknown(ty, raw, format)),
        }
    }

    fn unknown(ty: &Type, raw: &[u8], format: Format) -> Value {
        Value::Unknown {
            ty: ty.clone(),
            format,
            raw: raw.to_vec(),
        }
    }

    /// `None` for types decoded as [`Value::Unknown`].
    fn decode_known(ty: &Type, raw: &[u8], text: bool) -> Option<Result<Value, BoxError>> {
        fn d<'a, T: FromSql<'a>>(ty: &Type, raw: &'a [u8], text: bool) -> Result<T, BoxError> {
            if text {
                T::from_sql_text(ty, raw)
            } else {
                T::from_sql(ty, raw)
            }
        }
        // Domains read as their base type.
        let ty = ty.base();
        Some(match *ty {
            Type::INET => d(ty, raw, text).map(Value::Inet),
            Type::CIDR => d(ty, raw, text).map(Value::Cidr),
            Type::MACADDR => d(ty, raw, text).map(Value::MacAddr),
            Type::BOOL => d(ty, raw, text).map(Value::Bool),
            Type::INT2 => d(ty, raw, text).map(Value::Int2),
            Type::INT4 => d(ty, raw, text).map(Value::Int4),
            Type::INT8 => d(ty, raw, text).map(Value::Int8),
            Type::FLOAT4 => d(ty, raw, text).map(Value::Float4),
            Type::FLOAT8 => d(ty, raw, text).map(Value::Float8),
            Type::NUMERIC => d(ty, raw, text).map(Value::Numeric),
            Type::BYTEA => d(ty, raw, text).map(Value::Bytea),
            Type::CHAR => d(ty, raw, text).map(Value::Char),
            Type::DATE => d(ty, raw, text).map(Value::Date),
            Type::TIME => d(ty, raw, text).map(Value::Time),
            Type::TIMESTAMP => d(ty, raw, text).map(Value::Timestamp),
            Type::TIMESTAMPTZ => d(ty, raw, text).map(Value::TimestampTz),
            Type::INTERVAL => d(ty, raw, text).map(Value::Interval),
            Type::UUID => d(ty, raw, text).map(Value::Uuid),
            Type::JSON => d(ty, raw, text).map(Value::Json),
            Type::JSONB => d(ty, raw, text).map(Value::Jsonb),
            Type::OID => d(ty, raw, text).map(Value::Oid),
            ref t if is_text_like(t) => d(ty, raw, text).map(Value::Text),
            ref t if t.is_enum() => d(ty, raw, text).map(Value::Enum),
            ref t if *t == Type::RECORD || t.fields().is_some() => {
                let format = if text { Format::Text } else { Format::Binary };
                Value::decode_composite(ty, raw, format)
            }
            ref t if t.range_subtype().is_some() => {
                d(ty, raw, text).map(|r| Value::Range(Box::new(r)))
            }
            ref t => {
                let element_type = t.array_element()?;
                if text {
                    Value::decode_text_array(element_type.base().clone(), raw)
                } else {
                    Value::decode_binary_array(ty, raw)
                }
            }
        })
    }

    fn decode_composite(ty: &Type, raw: &[u8], format: Format) -> Result<Value, BoxError> {
        let c = Composite::parse(ty, raw, format)?;
        let mut fields = Vec::with_capacity(c.len());
        for i in 0..c.len() {
            let Some((fty, value)) = c.raw(i) else {
                break;
            };
            let name = c.name(i);
            let v = match value {
                None => Value::Null,
                Some(r) => Value::decode(fty, r, c.format())
                    .map_err(|e| err(format!("field \"{name}\" of {ty}: {e}")))?,
            };
            fields.push((name.into_owned(), v));
        }
        Ok(Value::Composite(fields))
    }

    fn decode_binary_array(ty: &Type, raw: &[u8]) -> Result<Value, BoxError> {
        let mut a = array::parse_binary(raw)?;
        // The header names the element type by OID; the array type knows it by name and kind.
        match ty.array_element() {
            Some(e)
                if e.oid() == a.element_type.oid() || e.base().oid() == a.element_type.oid() =>
            {
                a.element_type = e;
            }
            _ => {
                return Err(err(format!(
                    "invalid {ty} value: elements are of type {}",
                    a.element_type
                )));
            }
        }
        // PostgreSQL has no arrays of arrays: a server claiming so gets raw elements rather
        // than recursion.
        let nested = a.element_type.base().array_element().is_some();
        let mut elements = Vec::with_capacity(a.elements.len());
        for (i, e) in a.elements.into_iter().enumerate() {
            elements.push(match e {
                None => None,
                Some(r) if nested => Some(Value::unknown(&a.element_type, r, Format::Binary)),
                Some(r) => Some(
                    Value::decode(&a.element_type, r, Format::Binary)
                        .map_err(|e| err(format!("array element {}: {e}", i + 1)))?,
                ),
            });
        }
        Ok(Value::Array {
            element_type: a.element_type.clone(),
            array: Array {
                dims: a.dims,
                elements,
            },
        })
    }

    fn decode_text_array(element_type: Type, raw: &[u8]) -> Result<Value, BoxError> {
        let s = std::str::from_utf8(raw).map_err(|e| err(format!("invalid array value: {e}")))?;
        let a = array::parse_text(s)?;
        let mut elements = Vec::with_capacity(a.elements.len());
        for e in &a.elements {
            elements.push(match e {
                None => None,
                Some(t) => Some(Value::decode(&element_type, t.as_bytes(), Format::Text)?),
            });
        }
        Ok(Value::Array {
            element_type,
            array: Array {
                dims: a.dims,
                elements,
            },
        })
    }
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Value::decode(ty, raw, Format::Binary)
    }

    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Value::decode(ty, raw, Format::Text)
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Value::Null)
    }

    /// Every type.
    fn accepts(_: &Type) -> bool {
        true
    }
}

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Bool(v) => v.to_sql(ty, out),
            Value::Int2(v) => v.to_sql(ty, out),
            Value::Int4(v) => v.to_sql(ty, out),
            Value::Int8(v) => v.to_sql(ty, out),
            Value::Float4(v) => v.to_sql(ty, out),
            Value::Float8(v) => v.to_sql(ty, out),
            Value::Numeric(v) => v.to_sql(ty, out),
            Value::Text(v) => v.to_sql(ty, out),
            Value::Bytea(v) => v.to_sql(ty, out),
            Value::Char(v) => v.to_sql(ty, out),
            Value::Date(v) => v.to_sql(ty, out),
            Value::Time(v) => v.to_sql(ty, out),
            Value::Timestamp(v) => v.to_sql(ty, out),
            Value::TimestampTz(v) => v.to_sql(ty, out),
            Value::Interval(v) => v.to_sql(ty, out),
            Value::Uuid(v) => v.to_sql(ty, out),
            Value::Json(v) | Value::Jsonb(v) => v.to_sql(ty, out),
            Value::Oid(v) => v.to_sql(ty, out),
            Value::Enum(v) => v.to_sql(ty, out),
            Value::Composite(fields) => {
                let values: Vec<(&str, &dyn ToSql)> = fields
                    .iter()
                    .map(|(n, v)| (n.as_str(), v as &dyn ToSql))
                    .collect();
                write_composite(ty, &values, out)
            }
            Value::Range(r) => r.to_sql(ty, out),
            Value::Inet(v) | Value::Cidr(v) => v.to_sql(ty, out),
            Value::MacAddr(v) => v.to_sql(ty, out),
            Value::Array { array, .. } => array.to_sql(ty, out),
            Value::Unknown { raw, .. } => {
                if !self.accepts(ty) {
                    return Err(cannot_encode::<Value>(ty));
                }
                super::codec::len_i32("value", raw.len())?;
                out.extend_from_slice(raw);
                Ok(IsNull::No)
            }
        }
    }

    /// What the inner Rust value accepts (so integers widen, text goes to any text-like
    /// type); NULL fits every type; an unknown value fits its own type if it is in binary, or
    /// a text-like type if it is text.
    fn accepts(&self, ty: &Type) -> bool {
        match self {
            Value::Null => true,
            Value::Bool(v) => v.accepts(ty),
            Value::Int2(v) => v.accepts(ty),
            Value::Int4(v) => v.accepts(ty),
            Value::Int8(v) => v.accepts(ty),
            Value::Float4(v) => v.accepts(ty),
            Value::Float8(v) => v.accepts(ty),
            Value::Numeric(v) => v.accepts(ty),
            Value::Text(v) => v.accepts(ty),
            Value::Bytea(v) => v.accepts(ty),
            Value::Char(v) => v.accepts(ty),
            Value::Date(v) => v.accepts(ty),
            Value::Time(v) => v.accepts(ty),
            Value::Timestamp(v) => v.accepts(ty),
            Value::TimestampTz(v) => v.accepts(ty),
            Value::Interval(v) => v.accepts(ty),
            Value::Uuid(v) => v.accepts(ty),
            Value::Json(v) | Value::Jsonb(v) => v.accepts(ty),
            Value::Oid(v) => v.accepts(ty),
            Value::Enum(v) => v.accepts(ty),
            Value::Composite(fields) => {
                let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
                super::composite::composite_accepts(ty, &names)
            }
            Value::Range(r) => r.accepts(ty),
            Value::Inet(v) | Value::Cidr(v) => v.accepts(ty),
            Value::MacAddr(v) => v.accepts(ty),
            Value::Array { array, .. } => array.accepts(ty),
            Value::Unknown {
                ty: own,
                format: Format::Binary,
                ..
            } => own == ty,
            Value::Unknown { .. } => is_text_like(ty),
        }
    }

    fn type_hint(&self) -> Option<Type> {
        Value::type_hint(self)
    }
}

macro_rules! value_from {
    ($($t:ty => $v:ident),* $(,)?) => {
        $(
            impl From<$t> for Value {
                fn from(v: $t) -> Value {
                    Value::$v(v.into())
                }
            }
        )*
    };
}

value_from! {
    bool => Bool, i16 => Int2, i32 => Int4, i64 => Int8, f32 => Float4, f64 => Float8,
    Numeric => Numeric, String => Text, &str => Text, Vec<u8> => Bytea, &[u8] => Bytea,
    i8 => Char, Date => Date, Time => Time, Timestamp => Timestamp,
    TimestampTz => TimestampTz, Interval => Interval, Uuid => Uuid, u32 => Oid,
    MacAddr => MacAddr, Inet => Inet,
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}
