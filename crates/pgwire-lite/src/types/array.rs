//! Arrays of any element type, any number of dimensions (up to PostgreSQL's 6), NULL elements
//! and arbitrary lower bounds, in binary and text format.

use std::borrow::Cow;

use bytes::{BufMut, BytesMut};

use super::codec::{
    Reader, cannot_decode, cannot_encode, err, len_i32, snippet, utf8, write_nullable,
};
use super::{BoxError, FromSql, IsNull, ToSql, Type};

/// PostgreSQL's `MAXDIM`: no array has more dimensions.
pub(crate) const MAX_DIMS: usize = 6;

/// A PostgreSQL array of any shape.
///
/// `dims` lists each dimension's length and lower bound (PostgreSQL's default lower bound is
/// 1; `'[0:1]={a,b}'` has lower bound 0); `elements` holds the values in row-major order, `None`
/// for NULL. An empty array has no dimensions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Array<T> {
    /// `(length, lower bound)` per dimension, outermost first.
    pub dims: Vec<(usize, i32)>,
    /// The elements in row-major order; their number is the product of the lengths.
    pub elements: Vec<Option<T>>,
}

impl<T> Default for Array<T> {
    fn default() -> Self {
        Array {
            dims: Vec::new(),
            elements: Vec::new(),
        }
    }
}

impl<T> Array<T> {
    /// A one-dimensional array with lower bound 1 (empty if `elements` is).
    pub fn from_vec(elements: Vec<Option<T>>) -> Array<T> {
        let dims = if elements.is_empty() {
            Vec::new()
        } else {
            vec![(elements.len(), 1)]
        };
        Array { dims, elements }
    }

    /// An array of the given shape; fails if the element count is not the product of the
    /// lengths, there are more than 6 dimensions, or an upper bound overflows.
    pub fn new(dims: Vec<(usize, i32)>, elements: Vec<Option<T>>) -> Result<Array<T>, BoxError> {
        check_shape(&dims, elements.len())?;
        Ok(Array { dims, elements })
    }

    /// The element at these subscripts (one per dimension, in PostgreSQL's numbering, which
    /// starts at the lower bound): `None` out of bounds, `Some(None)` for a NULL element.
    pub fn get(&self, subscripts: &[i32]) -> Option<Option<&T>> {
        if subscripts.len() != self.dims.len() || self.dims.is_empty() {
            return None;
        }
        let mut index = 0usize;
        for (&s, &(len, lb)) in subscripts.iter().zip(&self.dims) {
            let offset = usize::try_from(i64::from(s) - i64::from(lb)).ok()?;
            if offset >= len {
                return None;
            }
            index = index.checked_mul(len)?.checked_add(offset)?;
        }
        self.elements.get(index).map(Option::as_ref)
    }
}

/// Checks that `dims` describes `count` elements.
fn check_shape(dims: &[(usize, i32)], count: usize) -> Result<(), BoxError> {
    if dims.len() > MAX_DIMS {
        return Err(err(format!(
            "array has {} dimensions, PostgreSQL allows at most {MAX_DIMS}",
            dims.len()
        )));
    }
    let mut total: usize = if dims.is_empty() { 0 } else { 1 };
    for &(len, lb) in dims {
        let len_i = len_i32("array dimension", len)?;
        if i64::from(lb) + i64::from(len_i) - 1 > i64::from(i32::MAX) {
            return Err(err(format!(
                "array upper bound overflows: lower bound {lb}, length {len}"
            )));
        }
        total = total
            .checked_mul(len)
            .ok_or_else(|| err("array has too many elements"))?;
    }
    if total != count {
        return Err(err(format!(
            "array dimensions {dims:?} describe {total} elements, but there are {count}"
        )));
    }
    Ok(())
}

// ---- binary format -----------------------------------------------------------------------

/// An array in binary format, elements not yet decoded.
pub(crate) struct RawArray<'a> {
    pub(crate) element_type: Type,
    pub(crate) dims: Vec<(usize, i32)>,
    pub(crate) elements: Vec<Option<&'a [u8]>>,
}

/// Parses the binary array header and splits the elements (the layout of `array_send`).
pub(crate) fn parse_binary(raw: &[u8]) -> Result<RawArray<'_>, BoxError> {
    let mut r = Reader::new("array", raw);
    let ndim = r.i32()?;
    let flags = r.i32()?;
    let element_type = Type::from_oid(r.u32()?);
    let ndim = usize::try_from(ndim)
        .ok()
        .filter(|&n| n <= MAX_DIMS)
        .ok_or_else(|| {
            err(format!(
                "invalid array value: {ndim} dimensions (0 to {MAX_DIMS} allowed)"
            ))
        })?;
    if flags != 0 && flags != 1 {
        return Err(err(format!("invalid array value: flags {flags}")));
    }
    let mut dims = Vec::with_capacity(ndim);
    let mut total: usize = if ndim == 0 { 0 } else { 1 };
    for _ in 0..ndim {
        let len = r.i32()?;
        let lb = r.i32()?;
        let len = usize::try_from(len)
            .map_err(|_| err(format!("invalid array value: negative dimension {len}")))?;
        if i64::from(lb) + i64::try_from(len).unwrap_or(i64::MAX) - 1 > i64::from(i32::MAX) {
            return Err(err("invalid array value: upper bound overflows"));
        }
        total = total
            .checked_mul(len)
            .ok_or_else(|| err("invalid array value: too many elements"))?;
        dims.push((len, lb));
    }
    // Each element takes at least its 4-byte length: refuse counts the bytes cannot hold
    // before allocating for them.
    if total > r.remaining() / 4 {
        return Err(err(format!(
            "invalid array value: {total} elements cannot fit in {} bytes",
            r.remaining()
        )));
    }
    if total == 0 {
        // A zero-length dimension makes an empty array, as the server treats it.
        dims.clear();
    }
    let mut elements = Vec::with_capacity(total);
    for _ in 0..total {
        let len = r.i32()?;
        if len == -1 {
            elements.push(None);
        } else {
            let len = usize::try_from(len)
                .map_err(|_| err(format!("invalid array value: element length {len}")))?;
            elements.push(Some(r.take(len)?));
        }
    }
    r.finish()?;
    Ok(RawArray {
        element_type,
        dims,
        elements,
    })
}

/// Writes an array of `elements` with the given shape as `ty`, whose element type must be
/// known. Leaves `out` as it was on error.
pub(crate) fn encode<E: ToSql>(
    ty: &Type,
    element_type: Type,
    dims: &[(usize, i32)],
    elements: &[E],
    out: &mut BytesMut,
) -> Result<IsNull, BoxError> {
    check_shape(dims, elements.len())?;
    let start = out.len();
    let result = (|| {
        let ndim = if elements.is_empty() { 0 } else { dims.len() };
        out.put_i32(len_i32("array dimension count", ndim)?);
        let flags_at = out.len();
        out.put_i32(0);
        out.put_u32(element_type.oid());
        for &(len, lb) in dims.iter().take(ndim) {
            out.put_i32(len_i32("array dimension", len)?);
            out.put_i32(lb);
        }
        // Elements of a domain array are sent as the domain's base type.
        let base = element_type.base();
        let mut has_null = false;
        for e in elements {
            if !e.accepts(base) {
                return Err(err(format!(
                    "cannot encode array element {e:?} as {element_type} (array type {ty})"
                )));
            }
            has_null |= write_nullable(e, base, out)?;
        }
        if has_null {
            if let Some(slot) = out.get_mut(flags_at..flags_at + 4) {
                slot.copy_from_slice(&1i32.to_be_bytes());
            }
        }
        Ok(IsNull::No)
    })();
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// The array type's element type, or an error naming what was attempted.
fn element_of<T: ?Sized>(ty: &Type, encode: bool) -> Result<Type, BoxError> {
    ty.array_element().ok_or_else(|| {
        if encode {
            cannot_encode::<T>(ty)
        } else {
            cannot_decode::<T>(ty)
        }
    })
}

// ---- text format -------------------------------------------------------------------------

/// The whitespace the server's array parser skips (`array_isspace`: C's isspace in the C
/// locale, which includes vertical tab).
fn is_array_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C)
}

/// An array in text format, elements unescaped but not yet decoded.
pub(crate) struct TextArray<'a> {
    pub(crate) dims: Vec<(usize, i32)>,
    pub(crate) elements: Vec<Option<Cow<'a, str>>>,
}

struct TextParser<'a> {
    s: &'a str,
    pos: usize,
    /// Length found for each nesting level so far.
    lens: Vec<Option<usize>>,
    /// Nesting depth at which scalar elements sit, once known.
    ndim: Option<usize>,
    elements: Vec<Option<Cow<'a, str>>>,
}

impl<'a> TextParser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_array_space) {
            self.pos += 1;
        }
    }

    fn fail(&self, what: &str) -> BoxError {
        err(format!(
            "invalid array value: {what} at byte {} of {}",
            self.pos,
            snippet(self.s)
        ))
    }

    fn int(&mut self) -> Result<i32, BoxError> {
        let start = self.pos;
        if matches!(self.peek(), Some(b'-' | b'+')) {
            self.pos += 1;
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        self.s
            .get(start..self.pos)
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| self.fail("bad bound"))
    }

    /// `[lb:ub][lb:ub]=` decoration, if present: (lower, upper) per dimension.
    fn decoration(&mut self) -> Result<Vec<(i32, i32)>, BoxError> {
        let mut bounds = Vec::new();
        while self.peek() == Some(b'[') {
            if bounds.len() == MAX_DIMS {
                return Err(self.fail("too many dimensions"));
            }
            self.pos += 1;
            let first = self.int()?;
            let (lb, ub) = if self.peek() == Some(b':') {
                self.pos += 1;
                (first, self.int()?)
            } else {
                (1, first)
            };
            if self.peek() != Some(b']') {
                return Err(self.fail("expected ']'"));
            }
            self.pos += 1;
            bounds.push((lb, ub));
        }
        if !bounds.is_empty() {
            self.skip_ws();
            if self.peek() != Some(b'=') {
                return Err(self.fail("expected '=' after dimensions"));
            }
            self.pos += 1;
            self.skip_ws();
        }
        Ok(bounds)
    }

    /// One `{...}` level at nesting `depth` (0 = outermost); the cursor is on the `{`.
    fn level(&mut self, depth: usize) -> Result<(), BoxError> {
        if depth >= MAX_DIMS {
            return Err(self.fail("too many dimensions"));
        }
        self.pos += 1;
        if self.lens.len() <= depth {
            self.lens.push(None);
        }
        self.skip_ws();
        let mut count = 0usize;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            // Only `{}` as a whole is an empty array.
            if depth != 0 {
                return Err(self.fail("empty sub-array"));
            }
            self.ndim = Some(0);
            return Ok(());
        }
        loop {
            self.skip_ws();
            if self.peek() == Some(b'{') {
                if self.ndim.is_some_and(|n| n <= depth + 1) {
                    return Err(self.fail("unexpected '{'"));
                }
                self.level(depth + 1)?;
            } else {
                match self.ndim {
                    None => self.ndim = Some(depth + 1),
                    Some(n) if n == depth + 1 => {}
                    Some(_) => return Err(self.fail("sub-arrays and elements mixed")),
                }
                let element = self.element()?;
                self.elements.push(element);
            }
            count += 1;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.fail("expected ',' or '}'")),
            }
        }
        match self.lens.get_mut(depth) {
            Some(slot @ None) => *slot = Some(count),
            Some(Some(n)) if *n == count => {}
            _ => return Err(self.fail("sub-arrays of different lengths")),
        }
        Ok(())
    }

    /// One element: quoted (`"a \"b\""`), or unquoted up to `,`/`}` where the unquoted
    /// word `NULL` (any case) is NULL. Borrowed unless escapes had to be removed.
    fn element(&mut self) -> Result<Option<Cow<'a, str>>, BoxError> {
        let quoted = self.peek() == Some(b'"');
        if quoted {
            self.pos += 1;
        }
        let start = self.pos;
        // Created at the first backslash; until then the element is a slice of the input.
        let mut owned: Option<String> = None;
        // End of the content: unquoted elements lose trailing whitespace, but not escaped
        // characters. `end` indexes the input, `owned_end` the unescaped copy.
        let mut end = start;
        let mut owned_end = 0;
        loop {
            let c = self
                .peek()
                .ok_or_else(|| self.fail("unterminated element"))?;
            match c {
                b'"' if quoted => {
                    self.pos += 1;
                    break;
                }
                b',' | b'}' if !quoted => break,
                b'{' | b'"' if !quoted => {
                    return Err(self.fail("unexpected character in element"));
                }
                _ => {}
            }
            let escaped = c == b'\\';
            if escaped {
                if owned.is_none() {
                    owned = Some(self.s.get(start..self.pos).unwrap_or("").to_owned());
                }
                self.pos += 1;
            }
            let ch = self
                .s
                .get(self.pos..)
                .and_then(|t| t.chars().next())
                .ok_or_else(|| self.fail("dangling backslash"))?;
            self.pos += ch.len_utf8();
            if let Some(buf) = owned.as_mut() {
                buf.push(ch);
            }
            if quoted || escaped || !u8::try_from(ch).is_ok_and(is_array_space) {
                end = self.pos;
                owned_end = owned.as_ref().map_or(0, String::len);
            }
        }
        let text = match owned {
            Some(mut s) => {
                s.truncate(owned_end);
                Cow::Owned(s)
            }
            None => {
                let t = self.s.get(start..end).unwrap_or("");
                if !quoted && t.eq_ignore_ascii_case("NULL") {
                    return Ok(None);
                }
                Cow::Borrowed(t)
            }
        };
        if !quoted && text.is_empty() {
            return Err(self.fail("empty unquoted element"));
        }
        Ok(Some(text))
    }
}

/// Parses PostgreSQL's text form of an array (`array_out`): `{1,2,NULL}`, `{{1,2},{3,4}}`,
/// `{"a b","c\"d"}`, `[0:1]={a,b}`. Elements are separated by commas (every built-in type
/// except `box` uses a comma).
pub(crate) fn parse_text(s: &str) -> Result<TextArray<'_>, BoxError> {
    let mut p = TextParser {
        s,
        pos: 0,
        lens: Vec::new(),
        ndim: None,
        elements: Vec::new(),
    };
    p.skip_ws();
    let bounds = p.decoration()?;
    if p.peek() != Some(b'{') {
        return Err(p.fail("expected '{'"));
    }
    p.level(0)?;
    p.skip_ws();
    if p.pos != s.len() {
        return Err(p.fail("junk after array"));
    }
    let ndim = p.ndim.unwrap_or(0);
    if ndim == 0 {
        if !bounds.is_empty() {
            return Err(p.fail("dimensions given for an empty array"));
        }
        return Ok(TextArray {
            dims: Vec::new(),
            elements: Vec::new(),
        });
    }
    let lens: Vec<usize> = p.lens.iter().take(ndim).map(|l| l.unwrap_or(0)).collect();
    let dims: Vec<(usize, i32)> = if bounds.is_empty() {
        lens.iter().map(|&l| (l, 1)).collect()
    } else {
        if bounds.len() != ndim {
            return Err(p.fail("dimension decoration does not match the nesting"));
        }
        let mut dims = Vec::with_capacity(ndim);
        for (&(lb, ub), &len) in bounds.iter().zip(&lens) {
            if i64::from(ub) - i64::from(lb) + 1 != i64::try_from(len).unwrap_or(-1) {
                return Err(p.fail("dimension decoration does not match the element count"));
            }
            dims.push((len, lb));
        }
        dims
    };
    check_shape(&dims, p.elements.len())?;
    Ok(TextArray {
        dims,
        elements: p.elements,
    })
}

// ---- ToSql / FromSql ---------------------------------------------------------------------

/// The natural array type of a list of elements: the array of the first element's type,
/// provided every element fits it.
fn array_hint<E: ToSql>(elements: &[E]) -> Option<Type> {
    let hint = elements.iter().find_map(ToSql::type_hint)?;
    let array = hint.array_type()?;
    elements.iter().all(|e| e.accepts(&hint)).then_some(array)
}

/// Whether every element can be sent as the element type of `ty`. Empty or all-NULL lists fit
/// every array type.
fn elements_accept<E: ToSql>(elements: &[E], ty: &Type) -> bool {
    ty.array_element()
        .is_some_and(|e| elements.iter().all(|v| v.accepts(e.base())))
}

impl<T: ToSql> ToSql for [T] {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let element = element_of::<[T]>(ty, true)?;
        encode(ty, element, &[(self.len(), 1)], self, out)
    }

    fn accepts(&self, ty: &Type) -> bool {
        elements_accept(self, ty)
    }

    fn type_hint(&self) -> Option<Type> {
        array_hint(self)
    }
}

impl<T: ToSql> ToSql for Vec<T> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        self.as_slice().to_sql(ty, out)
    }

    fn accepts(&self, ty: &Type) -> bool {
        self.as_slice().accepts(ty)
    }

    fn type_hint(&self) -> Option<Type> {
        self.as_slice().type_hint()
    }
}

impl<T: ToSql> ToSql for Array<T> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let element = element_of::<Array<T>>(ty, true)?;
        encode(ty, element, &self.dims, &self.elements, out)
    }

    fn accepts(&self, ty: &Type) -> bool {
        elements_accept(&self.elements, ty)
    }

    fn type_hint(&self) -> Option<Type> {
        array_hint(&self.elements)
    }
}

/// The shape and the decoded elements of an array.
type Decoded<U> = (Vec<(usize, i32)>, Vec<U>);

/// Decodes every element of a binary array with `f`, checking the element type first.
fn decode_binary<T, U>(
    ty: &Type,
    raw: &[u8],
    mut f: impl FnMut(&Type, usize, Option<&[u8]>) -> Result<U, BoxError>,
) -> Result<Decoded<U>, BoxError>
where
    T: for<'b> FromSql<'b>,
{
    let a = parse_binary(raw)?;
    // The header names the element type by OID; the array type knows it by name and kind
    // (an enum's labels), and a domain's elements read as its base type.
    let element = match ty.array_element() {
        Some(e) if e.oid() == a.element_type.oid() || e.base().oid() == a.element_type.oid() => {
            e.base().clone()
        }
        Some(_) => {
            return Err(err(format!(
                "invalid {ty} value: elements are of type {}",
                a.element_type
            )));
        }
        None => a.element_type,
    };
    if !T::accepts(&element) {
        return Err(cannot_decode::<T>(&element));
    }
    let mut out = Vec::with_capacity(a.elements.len());
    for (i, e) in a.elements.into_iter().enumerate() {
        out.push(f(&element, i, e)?);
    }
    Ok((a.dims, out))
}

/// Decodes every element of a text array with `f`.
fn decode_text<T, U>(
    ty: &Type,
    raw: &[u8],
    mut f: impl FnMut(&Type, usize, Option<&[u8]>) -> Result<U, BoxError>,
) -> Result<Decoded<U>, BoxError>
where
    T: for<'b> FromSql<'b>,
{
    let element = element_of::<T>(ty, false)?.base().clone();
    if !T::accepts(&element) {
        return Err(cannot_decode::<T>(&element));
    }
    let a = parse_text(utf8("array", raw)?)?;
    let mut out = Vec::with_capacity(a.elements.len());
    for (i, e) in a.elements.iter().enumerate() {
        out.push(f(&element, i, e.as_deref().map(str::as_bytes))?);
    }
    Ok((a.dims, out))
}

/// Adds the element position to an element's error.
fn in_element(i: usize, e: BoxError) -> BoxError {
    err(format!("array element {}: {e}", i + 1))
}

fn nullable<T: for<'b> FromSql<'b>>(
    text: bool,
) -> impl Fn(&Type, usize, Option<&[u8]>) -> Result<Option<T>, BoxError> {
    move |ty, i, raw| match raw {
        None => Ok(None),
        Some(r) if text => T::from_sql_text(ty, r)
            .map(Some)
            .map_err(|e| in_element(i, e)),
        Some(r) => T::from_sql(ty, r).map(Some).map_err(|e| in_element(i, e)),
    }
}

fn plain<T: for<'b> FromSql<'b>>(
    text: bool,
) -> impl Fn(&Type, usize, Option<&[u8]>) -> Result<T, BoxError> {
    move |ty, i, raw| {
        match raw {
            None => T::from_sql_null(ty),
            Some(r) if text => T::from_sql_text(ty, r),
            Some(r) => T::from_sql(ty, r),
        }
        .map_err(|e| in_element(i, e))
    }
}

impl<'a, T: for<'b> FromSql<'b>> FromSql<'a> for Array<T> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let (dims, elements) = decode_binary::<T, _>(ty, raw, nullable::<T>(false))?;
        Ok(Array { dims, elements })
    }

    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let (dims, elements) = decode_text::<T, _>(ty, raw, nullable::<T>(true))?;
        Ok(Array { dims, elements })
    }

    fn accepts(ty: &Type) -> bool {
        ty.array_element().is_some_and(|e| T::accepts(e.base()))
    }
}

fn one_dimension(ty: &Type, dims: &[(usize, i32)]) -> Result<(), BoxError> {
    if dims.len() > 1 {
        return Err(err(format!(
            "{ty} value has {} dimensions: read it as Array<T>, not Vec<T>",
            dims.len()
        )));
    }
    Ok(())
}

/// One-dimensional arrays of any lower bound (the bound is dropped). Use `Vec<Option<T>>`
/// when elements may be NULL.
impl<'a, T: for<'b> FromSql<'b>> FromSql<'a> for Vec<T> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let (dims, elements) = decode_binary::<T, _>(ty, raw, plain::<T>(false))?;
        one_dimension(ty, &dims)?;
        Ok(elements)
    }

    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let (dims, elements) = decode_text::<T, _>(ty, raw, plain::<T>(true))?;
        one_dimension(ty, &dims)?;
        Ok(elements)
    }

    fn accepts(ty: &Type) -> bool {
        ty.array_element().is_some_and(|e| T::accepts(e.base()))
    }
}
