//! [`FromRow`]: a whole row into a Rust struct, by column name.
//!
//! Usually derived (`#[derive(FromRow)]` from pool-core's `derive` feature); the helpers here
//! are what the derived code calls, and give every error the column and the field it concerns.

use crate::error::Error;
use crate::row::{QueryResult, Row, RowIndex};
use crate::types::FromSql;

/// A type built from one row.
pub trait FromRow: Sized {
    /// Builds the value from `row`.
    ///
    /// # Errors
    /// [`Error::Conversion`] naming the column and the field when a column is missing, holds
    /// NULL for a field that is not an `Option`, or holds a type the field cannot take.
    fn from_row(row: &Row) -> Result<Self, Error>;
}

impl QueryResult {
    /// Every row as a `T` ([`FromRow`]), in order; the first row that fails stops it.
    pub fn rows_as<T: FromRow>(&self) -> Result<Vec<T>, Error> {
        self.rows().iter().map(T::from_row).collect()
    }

    /// The only row as a `T`: an error unless there is exactly one row.
    pub fn one_as<T: FromRow>(&self) -> Result<T, Error> {
        match self.rows() {
            [row] => T::from_row(row),
            rows => Err(Error::RowCount {
                call: "one_as",
                expected: "exactly one row",
                got: rows.len(),
            }),
        }
    }
}

impl Row {
    /// This row as a `T` ([`FromRow`]).
    pub fn to<T: FromRow>(&self) -> Result<T, Error> {
        T::from_row(self)
    }
}

/// Reads column `column` into field `field` of `ty` (the derived code's call): like
/// [`Row::try_get`], with the field and the struct named in the error.
pub fn field<'a, T: FromSql<'a>>(
    row: &'a Row,
    column: &str,
    field: &str,
    ty: &str,
) -> Result<T, Error> {
    row.try_get(column).map_err(|e| in_field(e, field, ty))
}

/// [`field`] with a hint: the derived code passes the field's position among the struct's
/// fields, and when the column there has the field's name (the usual `SELECT` in struct
/// order) it is read by index, without looking the name up among the columns.
pub fn field_at<'a, T: FromSql<'a>>(
    row: &'a Row,
    position: usize,
    column: &str,
    field: &str,
    ty: &str,
) -> Result<T, Error> {
    match row.columns().get(position) {
        Some(c) if c.name() == column => row.try_get(position).map_err(|e| in_field(e, field, ty)),
        _ => self::field(row, column, field, ty),
    }
}

/// Like [`field`], for a field marked `default`: a missing column gives `T::default()` (a
/// column that is there must still read as `T`).
pub fn field_or_default<'a, T: FromSql<'a> + Default>(
    row: &'a Row,
    column: &str,
    field: &str,
    ty: &str,
) -> Result<T, Error> {
    if column.index(row.columns()).is_none() {
        return Ok(T::default());
    }
    self::field(row, column, field, ty)
}

/// A flattened field's error, naming the outer field too.
pub fn flattened<T: FromRow>(row: &Row, field: &str, ty: &str) -> Result<T, Error> {
    T::from_row(row).map_err(|e| in_field(e, field, ty))
}

fn in_field(e: Error, field: &str, ty: &str) -> Error {
    match e {
        Error::Conversion(m) => Error::Conversion(format!("{ty}.{field}: {m}")),
        e => e,
    }
}
