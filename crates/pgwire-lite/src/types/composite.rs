//! Composite types (row types, `CREATE TYPE ... AS (...)`) and anonymous records: the field
//! splitting that [`Value`](super::Value) and `#[derive(ToSql, FromSql)]` structs share.

use std::borrow::Cow;

use bytes::{BufMut, BytesMut};

use super::codec::{Reader, err, len_i32, utf8, write_nullable};
use super::range::split_fields;
use super::{BoxError, Format, FromSql, IsNull, ToSql, Type};

/// PostgreSQL's limit on the columns of a row type (`MaxHeapAttributeNumber`): a record claiming
/// more fields is malformed.
const MAX_FIELDS: usize = 1600;

/// One field of a composite value, its bytes not decoded yet.
#[derive(Debug)]
struct RawField<'a> {
    type_: Type,
    value: Option<&'a [u8]>,
}

/// The fields of one composite (or anonymous record) value, split but not decoded.
///
/// Used by derived [`FromSql`] impls for structs; fields are found by name (the composite
/// type's field names, `f1`, `f2`, ... for an anonymous record).
#[derive(Debug)]
pub struct Composite<'a> {
    ty: Type,
    format: Format,
    fields: Vec<RawField<'a>>,
}

impl<'a> Composite<'a> {
    /// Splits a non-NULL value of composite type `ty` in `format`.
    pub fn parse(ty: &Type, raw: &'a [u8], format: Format) -> Result<Composite<'a>, BoxError> {
        let known = ty.base().fields();
        let fields = match format {
            Format::Binary => parse_binary(ty, known, raw)?,
            Format::Text => parse_text(ty, known, raw)?,
        };
        Ok(Composite {
            ty: ty.clone(),
            format,
            fields,
        })
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True for a composite with no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The name of field `i`: the composite type's, or `f1`, `f2`, ... for an anonymous record.
    pub fn name(&self, i: usize) -> Cow<'_, str> {
        match self.ty.base().fields().and_then(|k| k.get(i)) {
            Some(f) => Cow::Borrowed(f.name()),
            None => anonymous(i),
        }
    }

    /// The position of the field named `name`.
    fn position(&self, name: &str) -> Option<usize> {
        match self.ty.base().fields() {
            Some(k) => k.iter().position(|f| f.name() == name),
            None => (0..self.fields.len()).find(|&i| anonymous(i) == name),
        }
    }

    /// Decodes field number `i` (from 0) as `T`.
    pub fn get_index<T: FromSql<'a>>(&self, i: usize) -> Result<T, BoxError> {
        let f = self
            .fields
            .get(i)
            .ok_or_else(|| err(format!("{} has no field number {}", self.ty, i + 1)))?;
        let ty = f.type_.base();
        if !T::accepts(ty) {
            return Err(err(format!(
                "cannot read field \"{}\" of {} (type {}) as {}",
                self.name(i),
                self.ty,
                f.type_,
                std::any::type_name::<T>()
            )));
        }
        super::decode(ty, self.format, f.value).map_err(|e| {
            err(format!(
                "cannot read field \"{}\" of {} (type {}) as {}: {e}",
                self.name(i),
                self.ty,
                f.type_,
                std::any::type_name::<T>()
            ))
        })
    }

    /// Decodes the field named `name` as `T`.
    pub fn get<T: FromSql<'a>>(&self, name: &str) -> Result<T, BoxError> {
        let i = self.position(name).ok_or_else(|| {
            err(format!(
                "{} has no field \"{name}\" (fields: {})",
                self.ty,
                (0..self.fields.len())
                    .map(|i| self.name(i))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        self.get_index(i)
    }

    /// The raw value of field `i` in this composite's format (`None` for NULL), with its type.
    pub(crate) fn raw(&self, i: usize) -> Option<(&Type, Option<&'a [u8]>)> {
        self.fields.get(i).map(|f| (&f.type_, f.value))
    }

    /// The wire format the fields are in.
    pub(crate) fn format(&self) -> Format {
        self.format
    }
}

/// The name of field `i` of an anonymous record, as PostgreSQL names them.
fn anonymous(i: usize) -> Cow<'static, str> {
    Cow::Owned(format!("f{}", i + 1))
}

/// `record_send`: Int32 count, then per field Uint32 type OID, Int32 length (-1 for NULL), bytes.
fn parse_binary<'a>(
    ty: &Type,
    known: Option<&[super::Field]>,
    raw: &'a [u8],
) -> Result<Vec<RawField<'a>>, BoxError> {
    let mut r = Reader::new("record", raw);
    let n = r.i32()?;
    let n = usize::try_from(n)
        .ok()
        .filter(|&n| n <= MAX_FIELDS && n <= r.remaining() / 8)
        .ok_or_else(|| err(format!("invalid {ty} value: {n} fields")))?;
    if let Some(k) = known {
        if k.len() != n {
            return Err(err(format!(
                "invalid {ty} value: {n} fields, the type has {}",
                k.len()
            )));
        }
    }
    let mut fields = Vec::with_capacity(n);
    for i in 0..n {
        let oid = r.u32()?;
        let len = r.i32()?;
        let value = match len {
            -1 => None,
            l => Some(
                r.take(
                    usize::try_from(l)
                        .map_err(|_| err(format!("invalid {ty} value: field length {l}")))?,
                )?,
            ),
        };
        let type_ = match known.and_then(|k| k.get(i)) {
            Some(f) if f.type_().oid() == oid || f.type_().base().oid() == oid => f.type_().clone(),
            Some(f) => {
                return Err(err(format!(
                    "invalid {ty} value: field \"{}\" arrived as {} but is of type {}",
                    f.name(),
                    Type::from_oid(oid),
                    f.type_()
                )));
            }
            None => Type::from_oid(oid),
        };
        fields.push(RawField { type_, value });
    }
    r.finish()?;
    Ok(fields)
}

/// `record_out`: `(f1,f2,...)`, an empty field is NULL, fields quoted when needed.
fn parse_text<'a>(
    ty: &Type,
    known: Option<&[super::Field]>,
    raw: &'a [u8],
) -> Result<Vec<RawField<'a>>, BoxError> {
    let s = utf8("record", raw)?;
    let bad = || err(format!("invalid {ty} value: {}", super::codec::snippet(s)));
    let inner = s
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(bad)?;
    let split = if inner.is_empty() && known.is_some_and(<[_]>::is_empty) {
        Vec::new()
    } else {
        split_fields(inner, MAX_FIELDS).ok_or_else(bad)?
    };
    if let Some(k) = known {
        if k.len() != split.len() {
            return Err(err(format!(
                "invalid {ty} value: {} fields, the type has {}",
                split.len(),
                k.len()
            )));
        }
    }
    let mut fields = Vec::with_capacity(split.len());
    for (i, f) in split.into_iter().enumerate() {
        let value = match f {
            None => None,
            Some(Cow::Borrowed(b)) => Some(slice_of(raw, b).ok_or_else(bad)?),
            Some(Cow::Owned(_)) => {
                return Err(err(format!(
                    "field {} of a {ty} value in text format needs unescaping; read it with \
                     the extended protocol (binary)",
                    i + 1
                )));
            }
        };
        let type_ = match known.and_then(|k| k.get(i)) {
            Some(f) => f.type_().clone(),
            // Text records do not say their field types: read them as text.
            None => Type::UNKNOWN,
        };
        fields.push(RawField { type_, value });
    }
    Ok(fields)
}

/// `part` (a slice of `raw` seen as text) as a slice of `raw` with `raw`'s lifetime.
fn slice_of<'a>(raw: &'a [u8], part: &str) -> Option<&'a [u8]> {
    let start = (part.as_ptr() as usize).checked_sub(raw.as_ptr() as usize)?;
    raw.get(start..start.checked_add(part.len())?)
}

/// Writes a composite value of type `ty` in binary: one value per field of the type, found
/// by field name in `values`. Used by derived [`ToSql`] impls for structs.
///
/// # Errors
/// When `ty` is not a composite type, a field of the type has no value, a value names no
/// field of the type, or a value does not fit its field's type.
pub fn write_composite(
    ty: &Type,
    values: &[(&str, &dyn ToSql)],
    out: &mut BytesMut,
) -> Result<IsNull, BoxError> {
    let Some(fields) = ty.base().fields() else {
        return Err(err(format!("{ty} is not a composite type")));
    };
    if let Some((extra, _)) = values
        .iter()
        .find(|(n, _)| !fields.iter().any(|f| f.name() == *n))
    {
        return Err(err(format!("composite type {ty} has no field \"{extra}\"")));
    }
    let start = out.len();
    out.put_i32(len_i32("record field count", fields.len())?);
    for f in fields {
        let r = match values.iter().find(|(n, _)| *n == f.name()) {
            None => Err(err(format!(
                "no value for field \"{}\" of composite type {ty}",
                f.name()
            ))),
            Some((_, v)) => {
                out.put_u32(f.type_().oid());
                let base = f.type_().base();
                if v.accepts(base) {
                    write_nullable(*v, base, out).map(|_| ())
                } else {
                    Err(err(format!(
                        "cannot send field \"{}\" of composite type {ty} (type {}) from Rust \
                         type {}",
                        f.name(),
                        f.type_(),
                        v.type_name()
                    )))
                }
            }
        };
        if let Err(e) = r {
            out.truncate(start);
            return Err(e);
        }
    }
    Ok(IsNull::No)
}

/// Whether `ty` is a composite type whose field names are exactly `names` (in any order): what
/// a derived struct's `accepts` asks.
pub fn composite_accepts(ty: &Type, names: &[&str]) -> bool {
    ty.base().fields().is_some_and(|fields| {
        fields.len() == names.len() && fields.iter().all(|f| names.contains(&f.name()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_binary_record_and_hostile_counts() {
        // (int4 7, NULL text)
        let raw = [
            0, 0, 0, 2, 0, 0, 0, 23, 0, 0, 0, 4, 0, 0, 0, 7, 0, 0, 0, 25, 255, 255, 255, 255,
        ];
        let c = Composite::parse(&Type::RECORD, &raw, Format::Binary).unwrap();
        assert_eq!(c.get::<i32>("f1").unwrap(), 7);
        assert_eq!(c.get::<Option<String>>("f2").unwrap(), None);
        assert!(c.get::<String>("f2").is_err());
        assert!(
            c.get::<i32>("nope")
                .unwrap_err()
                .to_string()
                .contains("f1, f2")
        );
        // A count the bytes cannot hold, a negative count, a length past the end.
        assert!(Composite::parse(&Type::RECORD, &[0, 0, 1, 0], Format::Binary).is_err());
        assert!(Composite::parse(&Type::RECORD, &[255, 0, 0, 0], Format::Binary).is_err());
        let long = [0, 0, 0, 1, 0, 0, 0, 23, 0, 0, 0, 9, 0, 0, 0, 7];
        assert!(Composite::parse(&Type::RECORD, &long, Format::Binary).is_err());
    }

    #[test]
    fn anonymous_text_record() {
        let c = Composite::parse(&Type::RECORD, br#"(1,,"a b","")"#, Format::Text).unwrap();
        assert_eq!(c.len(), 4);
        assert_eq!(c.get::<&str>("f1").unwrap(), "1");
        assert_eq!(c.get::<Option<&str>>("f2").unwrap(), None);
        assert_eq!(c.get::<&str>("f3").unwrap(), "a b");
        assert_eq!(c.get::<&str>("f4").unwrap(), "");
        assert!(Composite::parse(&Type::RECORD, b"(1,2", Format::Text).is_err());
    }
}
