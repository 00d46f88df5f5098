//! `serde` (feature `serde`): results serialize, rows deserialize (the rules are in the
//! `types` module docs).

use std::borrow::Cow;
use std::fmt;

use ::serde::ser::{Error as _, SerializeMap, SerializeSeq};
use ::serde::{Serialize, Serializer};

use super::datetime::Iso8601;
use super::{Format, Value};
use crate::row::{QueryResult, Row, RowMap};

mod de;

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
