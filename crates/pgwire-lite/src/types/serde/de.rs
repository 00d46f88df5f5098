//! Deserializing rows into any `T: Deserialize` (the rules are in the `types` module docs).

use std::fmt;

use ::serde::Deserialize;
use ::serde::de::value::{BorrowedStrDeserializer, SeqDeserializer, StringDeserializer};
use ::serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};

use super::super::array::Array;
use super::super::datetime::Iso8601;
use super::super::text::is_text_like;
use super::super::{Format, Numeric, Type, Value};
use crate::error::Error;
use crate::row::{QueryResult, Row};
// ==== Deserialize ============================================================================

/// The error of reading a row into a Rust type; converted to [`Error::Conversion`] with the
/// type's name and the row's columns added.
#[derive(Debug)]
struct DeError(String);

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError(msg.to_string())
    }
}

fn json_err(e: serde_json::Error) -> DeError {
    DeError(format!("in its json: {e}"))
}

fn null_error() -> DeError {
    DeError("is NULL, but the field is not an Option".to_owned())
}

/// Runs `f` on a serde_json deserializer over `text`, then checks nothing follows the value.
fn json_borrowed<'de, T>(
    text: &'de [u8],
    f: impl FnOnce(
        &mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
    ) -> serde_json::Result<T>,
) -> Result<T, DeError> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let v = f(&mut de).map_err(json_err)?;
    de.end().map_err(json_err)?;
    Ok(v)
}

/// As [`json_borrowed`] for text owned by a [`Value`]: nothing can borrow from it.
fn json_owned<T>(
    text: &str,
    f: impl FnOnce(
        &mut serde_json::Deserializer<serde_json::de::IoRead<&[u8]>>,
    ) -> serde_json::Result<T>,
) -> Result<T, DeError> {
    let mut de = serde_json::Deserializer::from_reader(text.as_bytes());
    let v = f(&mut de).map_err(json_err)?;
    de.end().map_err(json_err)?;
    Ok(v)
}

impl Row {
    /// Reads this row into any `T: Deserialize`: struct fields by column name, tuples by
    /// position, `Option` for NULL; text, bytea and json may be borrowed from the row. See
    /// [the `serde` section](crate::types#serde) of the `types` docs for what each column reads as.
    ///
    /// # Errors
    /// [`Error::Conversion`] naming the column (a NULL into a non-`Option` field, a type that
    /// does not fit) or the missing field, with the row's columns listed.
    pub fn deserialize<'a, T: Deserialize<'a>>(&'a self) -> Result<T, Error> {
        T::deserialize(RowDeserializer { row: self }).map_err(|e| {
            Error::Conversion(format!(
                "cannot deserialize a row into {}: {e} (columns: {})",
                std::any::type_name::<T>(),
                self.columns()
                    .iter()
                    .map(|c| c.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }
}

impl QueryResult {
    /// Reads every row into a `T` with [`Row::deserialize`].
    ///
    /// # Errors
    /// The first row's error, with its position.
    pub fn deserialize<'a, T: Deserialize<'a>>(&'a self) -> Result<Vec<T>, Error> {
        self.rows()
            .iter()
            .enumerate()
            .map(|(i, row)| {
                row.deserialize().map_err(|e| match e {
                    Error::Conversion(m) => Error::Conversion(format!("row {}: {m}", i + 1)),
                    e => e,
                })
            })
            .collect()
    }
}

/// A whole row: a map of columns (or a sequence, for tuples).
struct RowDeserializer<'de> {
    row: &'de Row,
}

impl<'de> RowDeserializer<'de> {
    /// The only column, for a row read as a single value.
    fn single(self) -> Result<ColumnDeserializer<'de>, DeError> {
        match self.row.len() {
            1 => Ok(ColumnDeserializer {
                row: self.row,
                idx: 0,
            }),
            n => Err(DeError(format!(
                "a row of {n} columns reads into a struct, a map or a tuple, not a single value"
            ))),
        }
    }
}

macro_rules! row_single {
    ($($method:ident $(($($arg:ident : $t:ty),*))?;)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($($arg: $t,)*)? visitor: V) -> Result<V::Value, DeError> {
            self.single()?.$method($($($arg,)*)? visitor)
        }
    )*};
}

impl<'de> Deserializer<'de> for RowDeserializer<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_map(Columns {
            row: self.row,
            next: 0,
            fields: &[],
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_map(Columns {
            row: self.row,
            next: 0,
            fields,
        })
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_seq(Columns {
            row: self.row,
            next: 0,
            fields: &[],
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    row_single! {
        deserialize_bool; deserialize_i8; deserialize_i16; deserialize_i32; deserialize_i64;
        deserialize_i128; deserialize_u8; deserialize_u16; deserialize_u32; deserialize_u64;
        deserialize_u128; deserialize_f32; deserialize_f64; deserialize_char; deserialize_str;
        deserialize_string; deserialize_bytes; deserialize_byte_buf; deserialize_unit;
        deserialize_identifier;
        deserialize_unit_struct(name: &'static str);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
    }
}

/// The columns of a row as map entries (keys are column names, matched to `fields` ignoring
/// case when no field has the exact name) or as sequence elements.
struct Columns<'de> {
    row: &'de Row,
    next: usize,
    fields: &'static [&'static str],
}

impl<'de> Columns<'de> {
    fn key(&self, idx: usize) -> &'de str {
        let name = self.row.columns().get(idx).map_or("", |c| c.name());
        if self.fields.contains(&name) {
            return name;
        }
        self.fields
            .iter()
            .find(|f| f.eq_ignore_ascii_case(name))
            .copied()
            .unwrap_or(name)
    }
}

impl<'de> MapAccess<'de> for Columns<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        if self.next >= self.row.len() {
            return Ok(None);
        }
        seed.deserialize(BorrowedStrDeserializer::new(self.key(self.next)))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let idx = self.next;
        self.next += 1;
        column(self.row, idx, seed)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.row.len().saturating_sub(self.next))
    }
}

impl<'de> SeqAccess<'de> for Columns<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        if self.next >= self.row.len() {
            return Ok(None);
        }
        let idx = self.next;
        self.next += 1;
        column(self.row, idx, seed).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.row.len().saturating_sub(self.next))
    }
}

/// Deserializes column `idx`, its errors prefixed with the column's name and type.
fn column<'de, S: DeserializeSeed<'de>>(
    row: &'de Row,
    idx: usize,
    seed: S,
) -> Result<S::Value, DeError> {
    seed.deserialize(ColumnDeserializer { row, idx })
        .map_err(|e| {
            let (name, ty) = row
                .columns()
                .get(idx)
                .map_or(("?", Type::UNKNOWN), |c| (c.name(), c.type_().clone()));
            DeError(format!("column \"{name}\" ({ty}) {e}"))
        })
}

/// One column's value.
struct ColumnDeserializer<'de> {
    row: &'de Row,
    idx: usize,
}

/// What a column holds, as far as deserializing it goes.
enum Col<'de> {
    /// Text-like values read the same in both formats, and borrow from the row.
    Str(&'de str),
    /// A `json`/`jsonb` document's text, borrowed from the row.
    Json(&'de [u8]),
    /// Anything else (NULL included), decoded.
    Other(Value),
}

impl<'de> ColumnDeserializer<'de> {
    fn col(&self) -> Result<Col<'de>, DeError> {
        let c = self
            .row
            .columns()
            .get(self.idx)
            .ok_or_else(|| DeError("missing".to_owned()))?;
        let ty = c.type_();
        let raw = self.row.raw(self.idx).map_err(|e| DeError(e.to_string()))?;
        let Some(raw) = raw else {
            return Ok(Col::Other(Value::Null));
        };
        if is_text_like(ty) {
            return std::str::from_utf8(raw)
                .map(Col::Str)
                .map_err(|e| DeError(format!("is not UTF-8: {e}")));
        }
        if *ty == Type::JSON || *ty == Type::JSONB {
            let text = match (*ty == Type::JSONB, c.format()) {
                (true, Format::Binary) => match raw.split_first() {
                    Some((1, rest)) => rest,
                    _ => return Err(DeError("has an unsupported jsonb version".to_owned())),
                },
                _ => raw,
            };
            return Ok(Col::Json(text));
        }
        self.row
            .try_get::<_, Value>(self.idx)
            .map(Col::Other)
            .map_err(|e| DeError(e.to_string()))
    }
}

macro_rules! column_forward {
    ($($method:ident $(($($arg:ident : $t:ty),*))?;)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($($arg: $t,)*)? visitor: V) -> Result<V::Value, DeError> {
            match self.col()? {
                Col::Str(s) => BorrowedStrDeserializer::<DeError>::new(s).$method($($($arg,)*)? visitor),
                Col::Json(t) => json_borrowed(t, |d| d.$method($($($arg,)*)? visitor)),
                Col::Other(v) => ValueDeserializer(v).$method($($($arg,)*)? visitor),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for ColumnDeserializer<'de> {
    type Error = DeError;

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.col()? {
            Col::Other(Value::Null) => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.col()? {
            Col::Str(s) => visitor.visit_borrowed_str(s),
            // The document's text, not a JSON string inside it.
            Col::Json(t) => std::str::from_utf8(t)
                .map_err(|e| DeError(format!("is not UTF-8: {e}")))
                .and_then(|s| visitor.visit_borrowed_str(s)),
            Col::Other(v) => ValueDeserializer(v).deserialize_str(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let binary_bytea = self
            .row
            .columns()
            .get(self.idx)
            .is_some_and(|c| *c.type_() == Type::BYTEA && c.format() == Format::Binary);
        if binary_bytea {
            if let Ok(Some(raw)) = self.row.raw(self.idx) {
                return visitor.visit_borrowed_bytes(raw);
            }
        }
        match self.col()? {
            Col::Str(s) => visitor.visit_borrowed_bytes(s.as_bytes()),
            Col::Json(t) => visitor.visit_borrowed_bytes(t),
            Col::Other(v) => ValueDeserializer(v).deserialize_bytes(visitor),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    column_forward! {
        deserialize_any; deserialize_bool; deserialize_i8; deserialize_i16; deserialize_i32;
        deserialize_i64; deserialize_i128; deserialize_u8; deserialize_u16; deserialize_u32;
        deserialize_u64; deserialize_u128; deserialize_f32; deserialize_f64; deserialize_char;
        deserialize_unit; deserialize_seq; deserialize_map; deserialize_identifier;
        deserialize_ignored_any;
        deserialize_unit_struct(name: &'static str);
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
    }
}

/// A decoded value (array elements, and columns of types that cannot be borrowed).
struct ValueDeserializer(Value);

impl ValueDeserializer {
    /// An array's elements as a sequence: 1-D arrays directly, the outer dimension of N-D ones
    /// as sequences of sub-arrays.
    fn array_seq(element_type: Type, array: Array<Value>) -> Vec<Value> {
        let Array { dims, elements } = array;
        match dims.as_slice() {
            [] | [_] => elements
                .into_iter()
                .map(|e| e.unwrap_or(Value::Null))
                .collect(),
            [(len, _), inner @ ..] => {
                let chunk: usize = inner.iter().map(|&(l, _)| l).product();
                let mut rest = elements.into_iter();
                (0..*len)
                    .map(|_| Value::Array {
                        element_type: element_type.clone(),
                        array: Array {
                            dims: inner.to_vec(),
                            elements: rest.by_ref().take(chunk).collect(),
                        },
                    })
                    .collect()
            }
        }
    }

    /// The value as a whole number for an integer field.
    fn integer<'de, V: Visitor<'de>>(n: &Numeric, visitor: V) -> Result<V::Value, DeError> {
        let v = i128::try_from(n).map_err(|e| DeError(e.to_string()))?;
        match i64::try_from(v) {
            Ok(small) => visitor.visit_i64(small),
            Err(_) => visitor.visit_i128(v),
        }
    }
}

fn seq_of<'de, V: Visitor<'de>>(values: Vec<Value>, visitor: V) -> Result<V::Value, DeError> {
    let mut seq = SeqDeserializer::new(values.into_iter().map(ValueDeserializer));
    let v = visitor.visit_seq(&mut seq)?;
    seq.end()?;
    Ok(v)
}

impl<'de> IntoDeserializer<'de, DeError> for ValueDeserializer {
    type Deserializer = ValueDeserializer;

    fn into_deserializer(self) -> ValueDeserializer {
        self
    }
}

macro_rules! value_forward {
    ($($method:ident $(($($arg:ident : $t:ty),*))?;)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($($arg: $t,)*)? visitor: V) -> Result<V::Value, DeError> {
            match self.0 {
                Value::Null => Err(null_error()),
                Value::Json(j) | Value::Jsonb(j) => json_owned(&j.0, |d| d.$method($($($arg,)*)? visitor)),
                v => ValueDeserializer(v).deserialize_any(visitor),
            }
        }
    )*};
}

macro_rules! value_integer {
    ($($method:ident;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            match self.0 {
                Value::Null => Err(null_error()),
                Value::Numeric(n) => ValueDeserializer::integer(&n, visitor),
                Value::Json(j) | Value::Jsonb(j) => json_owned(&j.0, |d| d.$method(visitor)),
                v => ValueDeserializer(v).deserialize_any(visitor),
            }
        }
    )*};
}

macro_rules! value_float {
    ($($method:ident;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            match self.0 {
                Value::Null => Err(null_error()),
                Value::Numeric(n) => visitor.visit_f64(n.to_f64()),
                Value::Json(j) | Value::Jsonb(j) => json_owned(&j.0, |d| d.$method(visitor)),
                v => ValueDeserializer(v).deserialize_any(visitor),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for ValueDeserializer {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(v) => visitor.visit_bool(v),
            Value::Int2(v) => visitor.visit_i16(v),
            Value::Int4(v) => visitor.visit_i32(v),
            Value::Int8(v) => visitor.visit_i64(v),
            Value::Oid(v) => visitor.visit_u32(v),
            Value::Char(v) => visitor.visit_i8(v),
            Value::Float4(v) => visitor.visit_f32(v),
            Value::Float8(v) => visitor.visit_f64(v),
            Value::Numeric(n) => visitor.visit_string(n.to_string()),
            Value::Text(t) => visitor.visit_string(t),
            Value::Bytea(b) => visitor.visit_byte_buf(b),
            Value::Date(d) => visitor.visit_string(Iso8601(d).to_string()),
            Value::Time(t) => visitor.visit_string(t.to_string()),
            Value::Timestamp(t) => visitor.visit_string(Iso8601(t).to_string()),
            Value::TimestampTz(t) => visitor.visit_string(Iso8601(t).to_string()),
            Value::Interval(i) => visitor.visit_string(i.to_string()),
            Value::Uuid(u) => visitor.visit_string(u.to_string()),
            Value::Json(j) | Value::Jsonb(j) => json_owned(&j.0, |d| d.deserialize_any(visitor)),
            Value::Array {
                element_type,
                array,
            } => seq_of(ValueDeserializer::array_seq(element_type, array), visitor),
            Value::Unknown {
                format: Format::Text,
                raw,
                ..
            } => match String::from_utf8(raw) {
                Ok(s) => visitor.visit_string(s),
                Err(e) => visitor.visit_byte_buf(e.into_bytes()),
            },
            Value::Unknown { raw, .. } => visitor.visit_byte_buf(raw),
            Value::Enum(label) => visitor.visit_string(label),
            Value::Inet(v) | Value::Cidr(v) => visitor.visit_string(v.to_string()),
            Value::MacAddr(v) => visitor.visit_string(v.to_string()),
            Value::Composite(fields) => {
                let mut map = ::serde::de::value::MapDeserializer::new(
                    fields
                        .into_iter()
                        .map(|(name, value)| (name, ValueDeserializer(value))),
                );
                let v = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(v)
            }
            Value::Range(_) => Err(DeError(
                "is a range: read it as pgwire_lite::Range or Value, not through serde".into(),
            )),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            v => visitor.visit_some(ValueDeserializer(v)),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            v => ValueDeserializer(v).deserialize_any(visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Null => Err(null_error()),
            // The document's text.
            Value::Json(j) | Value::Jsonb(j) => visitor.visit_string(j.0),
            v => ValueDeserializer(v).deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Null => Err(null_error()),
            Value::Uuid(u) => visitor.visit_bytes(u.as_bytes()),
            Value::Text(t) => visitor.visit_byte_buf(t.into_bytes()),
            Value::Json(j) | Value::Jsonb(j) => visitor.visit_byte_buf(j.0.into_bytes()),
            v => ValueDeserializer(v).deserialize_any(visitor),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Null => Err(null_error()),
            // `Vec<u8>` asks for a sequence.
            Value::Bytea(b) => {
                let mut seq = SeqDeserializer::<_, DeError>::new(b.into_iter());
                let v = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(v)
            }
            Value::Json(j) | Value::Jsonb(j) => json_owned(&j.0, |d| d.deserialize_seq(visitor)),
            v => ValueDeserializer(v).deserialize_any(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Null => Err(null_error()),
            Value::Text(t) => visitor.visit_enum(StringDeserializer::<DeError>::new(t)),
            Value::Json(j) | Value::Jsonb(j) => {
                json_owned(&j.0, |d| d.deserialize_enum(name, variants, visitor))
            }
            // An enum label of a type this crate does not know: its text in either format.
            Value::Unknown { raw, .. } => match String::from_utf8(raw) {
                Ok(s) => visitor.visit_enum(StringDeserializer::<DeError>::new(s)),
                Err(_) => Err(DeError("is not a text value to read as an enum".to_owned())),
            },
            v => ValueDeserializer(v).deserialize_any(visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    value_integer! {
        deserialize_i8; deserialize_i16; deserialize_i32; deserialize_i64; deserialize_i128;
        deserialize_u8; deserialize_u16; deserialize_u32; deserialize_u64; deserialize_u128;
    }

    value_float! {
        deserialize_f32; deserialize_f64;
    }

    value_forward! {
        deserialize_bool; deserialize_char; deserialize_map; deserialize_identifier;
        deserialize_unit_struct(name: &'static str);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Json;

    fn ser(text: &str) -> Result<String, serde_json::Error> {
        serde_json::to_string(&Value::Jsonb(Json(text.to_owned())))
    }

    #[test]
    fn embedded_json_keeps_order_and_unescapes() {
        let s = ser(
            r#" {"b": [1, -2, 3.5, 18446744073709551615], "a": "x\"\u00e9\ud83e\udd80", "c": {}} "#,
        );
        assert_eq!(
            s.unwrap(),
            r#"{"b":[1,-2,3.5,18446744073709551615],"a":"x\"é🦀","c":{}}"#
        );
    }

    #[test]
    fn hostile_json_is_an_error_not_a_panic() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        for bad in [
            "",
            "{",
            "[1,",
            "{\"a\" 1}",
            "{1: 2}",
            "\"\\x\"",
            "\"\\ud83e\"",
            "tru",
            "1e999",
            "[1 2]",
            "{\"a\":}",
            "]",
            "\"unterminated",
            &deep,
        ] {
            assert!(ser(bad).is_err(), "{bad:?}");
        }
    }
}
