//! `serde` (feature `serde`): results serialize, rows deserialize (the rules are in the
//! `types` module docs).

use std::borrow::Cow;
use std::fmt;

use ::serde::de::value::{BorrowedStrDeserializer, SeqDeserializer, StringDeserializer};
use ::serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use ::serde::ser::{Error as _, SerializeMap, SerializeSeq};
use ::serde::{Deserialize, Serialize, Serializer};

use super::array::Array;
use super::datetime::Iso8601;
use super::text::is_text_like;
use super::{Format, Numeric, Type, Value};
use crate::error::Error;
use crate::row::{QueryResult, Row, RowMap};

/// How deep a `json` document may nest when serialized (serde_json's own default limit).
const JSON_DEPTH_LIMIT: usize = 128;

// ==== Serialize ==============================================================================

/// `\x` and two lowercase hex digits per byte, as the server prints bytea.
struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\\x")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A `"char"` as the server's `charout` prints it: the byte itself when ASCII, nothing for
/// zero, `\ooo` octal for bytes with the high bit set.
struct CharText(i8);

impl fmt::Display for CharText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0.to_ne_bytes()[0];
        match b {
            0 => Ok(()),
            1..=0x7f => write!(f, "{}", char::from(b)),
            _ => write!(f, "\\{b:03o}"),
        }
    }
}

fn serialize_float<S: Serializer>(v: f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(v)
    } else if v.is_nan() {
        s.serialize_str("NaN")
    } else if v > 0.0 {
        s.serialize_str("Infinity")
    } else {
        s.serialize_str("-Infinity")
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_none(),
            Value::Bool(v) => s.serialize_bool(*v),
            Value::Int2(v) => s.serialize_i16(*v),
            Value::Int4(v) => s.serialize_i32(*v),
            Value::Int8(v) => s.serialize_i64(*v),
            Value::Oid(v) => s.serialize_u32(*v),
            Value::Float4(v) if v.is_finite() => s.serialize_f32(*v),
            Value::Float4(v) => serialize_float(f64::from(*v), s),
            Value::Float8(v) => serialize_float(*v, s),
            Value::Numeric(n) => s.collect_str(n),
            Value::Text(t) => s.serialize_str(t),
            Value::Bytea(b) => s.collect_str(&Hex(b)),
            Value::Char(c) => s.collect_str(&CharText(*c)),
            Value::Date(d) => s.collect_str(&Iso8601(*d)),
            Value::Time(t) => s.collect_str(t),
            Value::Timestamp(t) => s.collect_str(&Iso8601(*t)),
            Value::TimestampTz(t) => s.collect_str(&Iso8601(*t)),
            Value::Interval(i) => s.collect_str(i),
            Value::Uuid(u) => s.collect_str(u),
            Value::Json(j) | Value::Jsonb(j) => RawJson {
                text: &j.0,
                depth: 0,
            }
            .serialize(s),
            Value::Array { array, .. } => Nested {
                dims: &array.dims,
                elements: &array.elements,
            }
            .serialize(s),
            Value::Unknown {
                format: Format::Text,
                raw,
                ..
            } => match std::str::from_utf8(raw) {
                Ok(t) => s.serialize_str(t),
                Err(_) => s.collect_str(&Hex(raw)),
            },
            Value::Unknown { raw, .. } => s.collect_str(&Hex(raw)),
            Value::Enum(label) => s.serialize_str(label),
            Value::Inet(v) | Value::Cidr(v) => s.collect_str(v),
            Value::MacAddr(v) => s.collect_str(v),
            // As `to_json` writes a composite: an object of its fields, in order.
            Value::Composite(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (name, value) in fields {
                    map.serialize_entry(name, value)?;
                }
                map.end()
            }
            // `to_json` writes a range as its text (`"[1,5)"`); its bounds are values here, so
            // a reader gets them as such: `"empty"`, or an object of the bounds and whether
            // each is inclusive (an unbounded side is `null`).
            Value::Range(r) => match r.as_ref() {
                super::Range::Empty => s.serialize_str("empty"),
                super::Range::Bounds(lower, upper) => {
                    use std::ops::Bound;
                    let side = |b: &Bound<Value>| match b {
                        Bound::Included(v) => (Some(v.clone()), true),
                        Bound::Excluded(v) => (Some(v.clone()), false),
                        Bound::Unbounded => (None, false),
                    };
                    let ((lo, lo_inc), (hi, hi_inc)) = (side(lower), side(upper));
                    let mut map = s.serialize_map(Some(4))?;
                    map.serialize_entry("lower", &lo)?;
                    map.serialize_entry("upper", &hi)?;
                    map.serialize_entry("lower_inc", &lo_inc)?;
                    map.serialize_entry("upper_inc", &hi_inc)?;
                    map.end()
                }
            },
        }
    }
}

/// One dimension of an array: a sequence of elements, or of sub-arrays for the outer ones.
struct Nested<'a> {
    dims: &'a [(usize, i32)],
    elements: &'a [Option<Value>],
}

impl Serialize for Nested<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.dims {
            [] | [_] => {
                let mut seq = s.serialize_seq(Some(self.elements.len()))?;
                for e in self.elements {
                    seq.serialize_element(e)?;
                }
                seq.end()
            }
            [(len, _), inner @ ..] => {
                // `Array`'s fields are public: a shape that does not add up is an error here,
                // not a panic.
                let chunk: usize = inner.iter().map(|&(l, _)| l).product();
                if chunk.checked_mul(*len) != Some(self.elements.len()) {
                    return Err(S::Error::custom(format!(
                        "array of {} elements does not match its dimensions {:?}",
                        self.elements.len(),
                        self.dims
                    )));
                }
                let mut seq = s.serialize_seq(Some(*len))?;
                if chunk > 0 {
                    for sub in self.elements.chunks(chunk) {
                        seq.serialize_element(&Nested {
                            dims: inner,
                            elements: sub,
                        })?;
                    }
                }
                seq.end()
            }
        }
    }
}

impl Serialize for RowMap {
    /// A map from column name to value, in column order.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Serialize for Row {
    /// As its [`RowMap`] does: a map from column name to value, in column order. A value that
    /// cannot be decoded is an error.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (i, c) in self.columns().iter().enumerate() {
            let v: Value = self.try_get(i).map_err(S::Error::custom)?;
            map.serialize_entry(c.name(), &v)?;
        }
        map.end()
    }
}

impl Serialize for QueryResult {
    /// A sequence of rows, each a map from column name to value in column order: the JSON of
    /// [`result()`](QueryResult::result).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for row in self.rows() {
            seq.serialize_element(row)?;
        }
        seq.end()
    }
}

// ---- json documents, embedded --------------------------------------------------------------

/// One JSON value as text, serialized as the structure it describes. The server validated it,
/// but a hostile server could send anything: every malformation is an error, never a panic.
struct RawJson<'a> {
    text: &'a str,
    depth: usize,
}

fn json_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

/// The end (exclusive) of the JSON value starting at `start` (no leading whitespace), found
/// without recursion; `None` if it is malformed or unterminated.
fn json_value_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    let mut depth = 0usize;
    loop {
        match *b.get(i)? {
            b'"' => i = json_string_end(b, i)?,
            b'{' | b'[' => {
                depth += 1;
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                i += 1;
            }
            _ if depth == 0 => {
                // A scalar: up to the next delimiter.
                while b
                    .get(i)
                    .is_some_and(|&c| !matches!(c, b',' | b']' | b'}' | b':') && !json_ws(c))
                {
                    i += 1;
                }
                return (i > start).then_some(i);
            }
            _ => i += 1,
        }
        if depth == 0 {
            return Some(i);
        }
    }
}

/// The end (exclusive) of the string whose opening quote is at `start`.
fn json_string_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// Four hex digits of a `\uXXXX` escape.
fn hex4(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    let mut v = 0;
    for _ in 0..4 {
        v = v * 16 + chars.next()?.to_digit(16)?;
    }
    Some(v)
}

/// The contents of a JSON string literal (quotes included in `lit`), unescaped.
fn json_unescape(lit: &str) -> Option<Cow<'_, str>> {
    let inner = lit.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = chars.next()?;
        out.push(match e {
            '"' | '\\' | '/' => e,
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => {
                let hi = hex4(&mut chars)?;
                if (0xD800..0xDC00).contains(&hi) {
                    // A surrogate pair: `\uD83D\uDE00`.
                    if chars.next()? != '\\' || chars.next()? != 'u' {
                        return None;
                    }
                    let lo = hex4(&mut chars)?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return None;
                    }
                    char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))?
                } else {
                    char::from_u32(hi)?
                }
            }
            _ => return None,
        });
    }
    Some(Cow::Owned(out))
}

impl RawJson<'_> {
    /// The members of an object or the elements of an array (`body` is between the brackets),
    /// each as the text of its key (objects) and of its value.
    fn items(body: &str, object: bool) -> Option<Vec<(Option<&str>, &str)>> {
        let b = body.as_bytes();
        let mut items = Vec::new();
        let mut i = 0;
        let skip_ws = |i: &mut usize| {
            while b.get(*i).copied().is_some_and(json_ws) {
                *i += 1;
            }
        };
        skip_ws(&mut i);
        if i == b.len() {
            return Some(items);
        }
        loop {
            skip_ws(&mut i);
            let key = if object {
                if b.get(i) != Some(&b'"') {
                    return None;
                }
                let end = json_string_end(b, i)?;
                let k = body.get(i..end)?;
                i = end;
                skip_ws(&mut i);
                if b.get(i) != Some(&b':') {
                    return None;
                }
                i += 1;
                skip_ws(&mut i);
                Some(k)
            } else {
                None
            };
            let end = json_value_end(b, i)?;
            items.push((key, body.get(i..end)?));
            i = end;
            skip_ws(&mut i);
            match b.get(i) {
                None => return Some(items),
                Some(b',') => i += 1,
                Some(_) => return None,
            }
        }
    }
}

impl Serialize for RawJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let bad = || S::Error::custom("malformed json value from the server");
        if self.depth > JSON_DEPTH_LIMIT {
            return Err(S::Error::custom(format!(
                "json value nested deeper than {JSON_DEPTH_LIMIT} levels"
            )));
        }
        let t = self
            .text
            .trim_matches(|c: char| c.is_ascii() && json_ws(c as u8));
        let child = |text| RawJson {
            text,
            depth: self.depth + 1,
        };
        match t.as_bytes().first() {
            Some(b'{') => {
                let body = t.get(1..t.len() - 1).filter(|_| t.ends_with('}'));
                let items = body.and_then(|b| RawJson::items(b, true)).ok_or_else(bad)?;
                let mut map = s.serialize_map(Some(items.len()))?;
                for (k, v) in items {
                    let key = k.and_then(json_unescape).ok_or_else(bad)?;
                    map.serialize_entry(&*key, &child(v))?;
                }
                map.end()
            }
            Some(b'[') => {
                let body = t.get(1..t.len() - 1).filter(|_| t.ends_with(']'));
                let items = body
                    .and_then(|b| RawJson::items(b, false))
                    .ok_or_else(bad)?;
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for (_, v) in items {
                    seq.serialize_element(&child(v))?;
                }
                seq.end()
            }
            Some(b'"') => s.serialize_str(&json_unescape(t).ok_or_else(bad)?),
            _ => match t {
                "true" => s.serialize_bool(true),
                "false" => s.serialize_bool(false),
                "null" => s.serialize_unit(),
                _ => serialize_json_number(t, s),
            },
        }
    }
}

fn serialize_json_number<S: Serializer>(t: &str, s: S) -> Result<S::Ok, S::Error> {
    let numeric = t
        .bytes()
        .all(|c| c.is_ascii_digit() || b"+-.eE".contains(&c))
        && t.bytes().any(|c| c.is_ascii_digit());
    if !numeric {
        return Err(S::Error::custom("malformed json value from the server"));
    }
    if let Ok(v) = t.parse::<i64>() {
        return s.serialize_i64(v);
    }
    if let Ok(v) = t.parse::<u64>() {
        return s.serialize_u64(v);
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => s.serialize_f64(v),
        _ => Err(S::Error::custom(format!(
            "json number {} is beyond the range of f64",
            super::codec::snippet(t)
        ))),
    }
}

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
