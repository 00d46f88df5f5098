//! What derived `ToSql`/`FromSql` impls for Rust enums call: PostgreSQL enum labels.

use bytes::BytesMut;

use super::codec::{err, utf8};
use super::{BoxError, IsNull, Type};

/// Whether `ty` is named `name` (unqualified, or schema-qualified as [`Type`] prints it);
/// `None` matches every type.
pub fn name_matches(ty: &Type, name: Option<&str>) -> bool {
    let Some(want) = name else {
        return true;
    };
    let ty = ty.base();
    ty.name().is_some_and(|n| {
        n == want
            || n.rsplit_once('.')
                .is_some_and(|(_, unqualified)| unqualified == want)
    })
}

/// Whether `ty` is an enum type (through domains) named `name` (if given) that has every one
/// of `labels`. The PostgreSQL enum may have more labels than the Rust enum has variants:
/// sending works, and reading an extra label is an error naming it.
pub fn enum_accepts(ty: &Type, name: Option<&str>, labels: &[&str]) -> bool {
    name_matches(ty, name)
        && ty
            .base()
            .enum_labels()
            .is_some_and(|have| labels.iter().all(|l| have.iter().any(|h| h == l)))
}

/// Writes `label` as a value of the enum type `ty`.
pub fn write_label(
    ty: &Type,
    name: Option<&str>,
    labels: &[&str],
    label: &str,
    rust_type: &str,
    out: &mut BytesMut,
) -> Result<IsNull, BoxError> {
    if !enum_accepts(ty, name, labels) {
        return Err(err(format!(
            "cannot send Rust enum {rust_type} as PostgreSQL type {ty}{}",
            match ty.base().enum_labels() {
                Some(have) => format!(" (its labels: {})", have.join(", ")),
                None => " (not an enum)".to_string(),
            }
        )));
    }
    out.extend_from_slice(label.as_bytes());
    Ok(IsNull::No)
}

/// The label of an enum value (the same in text and binary format).
pub fn read_label<'a>(ty: &Type, raw: &'a [u8]) -> Result<&'a str, BoxError> {
    if !ty.base().is_enum() {
        return Err(err(format!("PostgreSQL type {ty} is not an enum")));
    }
    utf8("enum", raw)
}

/// The error for a label the Rust enum has no variant for.
pub fn unknown_label(ty: &Type, label: &str, rust_type: &str) -> BoxError {
    err(format!(
        "label {} of PostgreSQL enum {ty} has no variant in Rust enum {rust_type}",
        super::codec::snippet(label)
    ))
}
