//! Range types (`int4range`, `int8range`, `numrange`, `daterange`, `tsrange`, `tstzrange`, and
//! user-defined ones) as [`Range<T>`].

use std::borrow::Cow;
use std::ops::Bound;

use bytes::{BufMut, BytesMut};

use super::codec::{Reader, cannot_decode, cannot_encode, err, utf8, write_nullable};
use super::{BoxError, FromSql, IsNull, RANGE_TYPES, ToSql, Type};

// The flags byte of `range_send` (PostgreSQL's rangetypes.h).
const RANGE_EMPTY: u8 = 0x01;
const RANGE_LB_INC: u8 = 0x02;
const RANGE_UB_INC: u8 = 0x04;
const RANGE_LB_INF: u8 = 0x08;
const RANGE_UB_INF: u8 = 0x10;

/// A range value: empty, or a lower and an upper bound, each inclusive, exclusive or
/// unbounded ([`std::ops::Bound`]).
///
/// The server canonicalizes discrete ranges: `[1,5]` of `int4range` reads back as `[1,6)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Range<T> {
    /// The empty range.
    Empty,
    /// A range with these bounds.
    Bounds(Bound<T>, Bound<T>),
}

impl<T> Range<T> {
    /// `[lower, upper)`: the form discrete ranges are canonicalized to.
    pub fn half_open(lower: T, upper: T) -> Range<T> {
        Range::Bounds(Bound::Included(lower), Bound::Excluded(upper))
    }

    /// Whether this is the empty range.
    pub fn is_empty(&self) -> bool {
        matches!(self, Range::Empty)
    }

    /// The lower bound (`None` for the empty range).
    pub fn lower(&self) -> Option<Bound<&T>> {
        match self {
            Range::Empty => None,
            Range::Bounds(l, _) => Some(l.as_ref()),
        }
    }

    /// The upper bound (`None` for the empty range).
    pub fn upper(&self) -> Option<Bound<&T>> {
        match self {
            Range::Empty => None,
            Range::Bounds(_, u) => Some(u.as_ref()),
        }
    }
}

fn bound_value<T>(b: &Bound<T>) -> Option<&T> {
    match b {
        Bound::Included(v) | Bound::Excluded(v) => Some(v),
        Bound::Unbounded => None,
    }
}

impl<T: ToSql> ToSql for Range<T> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let Some(sub) = ty.range_subtype() else {
            return Err(cannot_encode::<Self>(ty));
        };
        let sub = sub.base().clone();
        let (lower, upper) = match self {
            Range::Empty => {
                out.put_u8(RANGE_EMPTY);
                return Ok(IsNull::No);
            }
            Range::Bounds(l, u) => (l, u),
        };
        let mut flags = 0;
        flags |= match lower {
            Bound::Included(_) => RANGE_LB_INC,
            Bound::Excluded(_) => 0,
            Bound::Unbounded => RANGE_LB_INF,
        };
        flags |= match upper {
            Bound::Included(_) => RANGE_UB_INC,
            Bound::Excluded(_) => 0,
            Bound::Unbounded => RANGE_UB_INF,
        };
        let start = out.len();
        out.put_u8(flags);
        for v in [lower, upper].into_iter().filter_map(bound_value) {
            let written = if v.accepts(&sub) {
                write_nullable(v, &sub, out)
            } else {
                Err(err(format!(
                    "cannot encode range bound of Rust type {} as {sub} (range type {ty})",
                    v.type_name()
                )))
            };
            match written {
                Ok(false) => {}
                Ok(true) => {
                    out.truncate(start);
                    return Err(err(format!("a bound of a {ty} value is NULL")));
                }
                Err(e) => {
                    out.truncate(start);
                    return Err(e);
                }
            }
        }
        Ok(IsNull::No)
    }

    fn accepts(&self, ty: &Type) -> bool {
        let Some(sub) = ty.range_subtype() else {
            return false;
        };
        match self {
            Range::Empty => true,
            Range::Bounds(l, u) => [l, u]
                .into_iter()
                .filter_map(bound_value)
                .all(|v| v.accepts(sub.base())),
        }
    }

    /// The built-in range type of the bounds' type, when there is one.
    fn type_hint(&self) -> Option<Type> {
        let Range::Bounds(l, u) = self else {
            return None;
        };
        let sub = [l, u]
            .into_iter()
            .filter_map(bound_value)
            .find_map(ToSql::type_hint)?;
        RANGE_TYPES
            .iter()
            .find(|(_, s)| *s == sub)
            .map(|(r, _)| r.clone())
    }
}

impl<'a, T: FromSql<'a>> FromSql<'a> for Range<T> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let sub = subtype_of::<T>(ty)?;
        let sub = sub.base();
        let mut r = Reader::new("range", raw);
        let [flags] = <[u8; 1]>::try_from(r.take(1)?).map_err(|_| err("internal: short read"))?;
        if flags & RANGE_EMPTY != 0 {
            r.finish()?;
            return Ok(Range::Empty);
        }
        let mut bound = |inf: u8, inc: u8| -> Result<Bound<T>, BoxError> {
            if flags & inf != 0 {
                return Ok(Bound::Unbounded);
            }
            let len = r.i32()?;
            let len = usize::try_from(len)
                .map_err(|_| err(format!("invalid {ty} value: bound length {len}")))?;
            let v = T::from_sql(sub, r.take(len)?)?;
            Ok(if flags & inc != 0 {
                Bound::Included(v)
            } else {
                Bound::Excluded(v)
            })
        };
        let lower = bound(RANGE_LB_INF, RANGE_LB_INC)?;
        let upper = bound(RANGE_UB_INF, RANGE_UB_INC)?;
        r.finish()?;
        Ok(Range::Bounds(lower, upper))
    }

    /// `empty`, or `[` / `(`, the lower bound, `,`, the upper bound, `]` / `)`; a missing bound
    /// is unbounded; bounds may be double-quoted with `\` or `""` escapes (`range_out`).
    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let sub = subtype_of::<T>(ty)?;
        let sub = sub.base();
        let s = utf8("range", raw)?.trim();
        if s.eq_ignore_ascii_case("empty") {
            return Ok(Range::Empty);
        }
        let bad = || err(format!("invalid {ty} value: {}", super::codec::snippet(s)));
        let lower_inc = match s.as_bytes().first() {
            Some(b'[') => true,
            Some(b'(') => false,
            _ => return Err(bad()),
        };
        let upper_inc = match s.as_bytes().last() {
            Some(b']') => true,
            Some(b')') => false,
            _ => return Err(bad()),
        };
        let inner = s.get(1..s.len() - 1).ok_or_else(bad)?;
        let mut fields = split_fields(inner, 2).ok_or_else(bad)?.into_iter();
        let (Some(l), Some(u), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(bad());
        };
        // Text bounds are owned (they may be unescaped): only owned T can borrow nothing.
        let bound = |f: Option<Cow<'_, str>>, inc: bool| -> Result<Bound<T>, BoxError> {
            let Some(text) = f else {
                return Ok(Bound::Unbounded);
            };
            let v = match text {
                Cow::Borrowed(b) => {
                    // A slice of `raw`: may be borrowed by T.
                    let start = (b.as_ptr() as usize)
                        .checked_sub(raw.as_ptr() as usize)
                        .ok_or_else(bad)?;
                    let piece = raw.get(start..start + b.len()).ok_or_else(bad)?;
                    T::from_sql_text(sub, piece)?
                }
                Cow::Owned(_) => return Err(unescaped_bound()),
            };
            Ok(if inc {
                Bound::Included(v)
            } else {
                Bound::Excluded(v)
            })
        };
        let lower = bound(l, lower_inc)?;
        let upper = bound(u, upper_inc)?;
        Ok(Range::Bounds(lower, upper))
    }

    fn accepts(ty: &Type) -> bool {
        ty.range_subtype().is_some_and(|s| T::accepts(s.base()))
    }
}

/// A bound that needed unescaping is not a slice of the row, so it cannot be lent to `T` for
/// the row's lifetime. No built-in range subtype prints escapes (only quotes, which are
/// borrowed fine); a user range over text would, and is readable in binary.
fn unescaped_bound() -> BoxError {
    err(
        "a range bound in text format needs unescaping; read it with the extended protocol (binary)",
    )
}

fn subtype_of<T>(ty: &Type) -> Result<Type, BoxError> {
    ty.range_subtype().ok_or_else(|| cannot_decode::<T>(ty))
}

/// Splits the inside of a text-format record or range into its fields: `,`-separated, each
/// empty (NULL / unbounded, returned as `None`), unquoted, or double-quoted with `\x` and `""`
/// escapes (`record_out`, `range_out`). A field without escapes is borrowed from `s`. `None`
/// on malformed input or more than `max` fields.
pub(crate) fn split_fields(s: &str, max: usize) -> Option<Vec<Option<Cow<'_, str>>>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        if out.len() >= max {
            return None;
        }
        // Find the field's end, honouring quotes and escapes.
        let start = i;
        let mut quoted = false;
        let mut escaped = false;
        while let Some(&c) = b.get(i) {
            match c {
                b',' if !quoted => break,
                b'"' if quoted && b.get(i + 1) == Some(&b'"') => {
                    escaped = true;
                    i += 2;
                }
                b'"' => {
                    quoted = !quoted;
                    i += 1;
                }
                b'\\' => {
                    escaped = true;
                    i += 2;
                }
                _ => i += 1,
            }
        }
        if quoted || i > b.len() {
            return None;
        }
        let raw = s.get(start..i)?;
        let field = if raw.is_empty() {
            None
        } else if !escaped && !raw.contains('"') {
            Some(Cow::Borrowed(raw))
        } else if !escaped && raw.len() >= 2 && raw.starts_with('"') && raw.ends_with('"') {
            let inner = raw.get(1..raw.len() - 1)?;
            if inner.contains('"') {
                Some(Cow::Owned(unescape(raw)?))
            } else {
                Some(Cow::Borrowed(inner))
            }
        } else {
            Some(Cow::Owned(unescape(raw)?))
        };
        out.push(field);
        if i >= b.len() {
            return Some(out);
        }
        i += 1;
    }
}

/// Removes the quotes and escapes of one field.
fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                out.push('"');
            }
            '"' => quoted = !quoted,
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_forms() {
        let r = Range::half_open(1i32, 5);
        let mut buf = BytesMut::new();
        r.to_sql(&Type::INT4_RANGE, &mut buf).unwrap();
        assert_eq!(
            &buf[..],
            &[2, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 5]
        );
        assert_eq!(Range::<i32>::from_sql(&Type::INT4_RANGE, &buf).unwrap(), r);
        assert_eq!(
            Range::<i32>::from_sql(&Type::INT4_RANGE, &[1]).unwrap(),
            Range::Empty
        );
        let unb = Range::<i32>::from_sql(&Type::INT4_RANGE, &[0x18]).unwrap();
        assert_eq!(unb, Range::Bounds(Bound::Unbounded, Bound::Unbounded));
        // Truncated bound, negative length, trailing bytes.
        assert!(Range::<i32>::from_sql(&Type::INT4_RANGE, &[2, 0, 0, 0, 4, 0]).is_err());
        assert!(Range::<i32>::from_sql(&Type::INT4_RANGE, &[0x12, 255, 255, 255, 255]).is_err());
        assert!(Range::<i32>::from_sql(&Type::INT4_RANGE, &[1, 0]).is_err());
        assert!(Range::<i32>::from_sql(&Type::INT4, &[1]).is_err());
    }

    #[test]
    fn text_forms() {
        let t = |s: &str| Range::<i64>::from_sql_text(&Type::INT8_RANGE, s.as_bytes());
        assert_eq!(t("[1,5)").unwrap(), Range::half_open(1, 5));
        assert_eq!(t("empty").unwrap(), Range::Empty);
        assert_eq!(
            t("(,7]").unwrap(),
            Range::Bounds(Bound::Unbounded, Bound::Included(7))
        );
        assert!(t("[1,5").is_err());
        assert!(t("[1,2,3)").is_err());
        let f = split_fields(r#""a ""b""",,c\,d"#, 8).unwrap();
        assert_eq!(
            f,
            vec![
                Some(Cow::Owned("a \"b\"".into())),
                None,
                Some(Cow::Owned("c,d".into()))
            ]
        );
    }
}
