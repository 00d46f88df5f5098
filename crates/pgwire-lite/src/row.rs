//! Rows, columns and query results.
//!
//! A [`Row`] holds the DataRow body as a [`Bytes`] slice of the connection's read buffer (a
//! reference count, not a copy) and the shared column list. Column values are located and
//! decoded only when asked for, so reading one column of a wide row costs nothing for the others.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::error::Error;
use crate::types::{Format, FromSql, Type, Value};

/// One column of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    name: Box<str>,
    type_: Type,
    format: Format,
    table_oid: u32,
    column_id: i16,
}

impl Column {
    pub(crate) fn new(
        name: &str,
        type_: Type,
        format: Format,
        table_oid: u32,
        column_id: i16,
    ) -> Self {
        Column {
            name: name.into(),
            type_,
            format,
            table_oid,
            column_id,
        }
    }

    /// The column's name (its alias, as in the query's select list).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The column's type.
    pub fn type_(&self) -> &Type {
        &self.type_
    }

    /// The same column with its type replaced by the looked-up one.
    pub(crate) fn with_type(&self, type_: Type) -> Column {
        Column {
            type_,
            ..self.clone()
        }
    }

    /// The format its values arrive in: binary for the extended protocol, text for the simple one.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The OID of the table the column comes from, if it comes straight from one.
    pub fn table_oid(&self) -> Option<u32> {
        (self.table_oid != 0).then_some(self.table_oid)
    }

    /// The column's attribute number in that table, if it comes straight from one.
    pub fn column_id(&self) -> Option<i16> {
        (self.column_id != 0).then_some(self.column_id)
    }
}

/// Something that selects a column: its position (`usize`) or its name (`&str`).
pub trait RowIndex: fmt::Display + sealed::Sealed {
    /// The position of the column in `columns`, if there is one.
    fn index(&self, columns: &[Column]) -> Option<usize>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for usize {}
    impl Sealed for str {}
    impl<T: ?Sized + Sealed> Sealed for &T {}
}

impl RowIndex for usize {
    fn index(&self, columns: &[Column]) -> Option<usize> {
        (*self < columns.len()).then_some(*self)
    }
}

impl RowIndex for str {
    fn index(&self, columns: &[Column]) -> Option<usize> {
        // An exact match first, then a case-insensitive one, as tokio-postgres does.
        columns.iter().position(|c| c.name() == self).or_else(|| {
            columns
                .iter()
                .position(|c| c.name().eq_ignore_ascii_case(self))
        })
    }
}

impl<T: ?Sized + RowIndex> RowIndex for &T {
    fn index(&self, columns: &[Column]) -> Option<usize> {
        T::index(*self, columns)
    }
}

/// One row of a result.
pub struct Row {
    columns: Arc<[Column]>,
    /// The DataRow body: Int16 count, then per value an Int32 length (-1 = NULL) and the bytes.
    /// Checked by the decoder, so walking it cannot go out of bounds.
    body: Bytes,
    /// A hint: value `cursor >> 32` starts (its length field) at byte `cursor as u32` of the
    /// body. Reading columns in order then walks the lengths once in all, not once per column,
    /// without storing offsets per row (which would cost an allocation). Any stored value is a
    /// valid pair for this row, so concurrent readers can only make it less useful, never wrong.
    cursor: AtomicU64,
}

/// The cursor of a row nobody has read yet: value 0 starts after the Int16 count.
const CURSOR_START: u64 = 2;

impl Clone for Row {
    fn clone(&self) -> Self {
        Row {
            columns: self.columns.clone(),
            body: self.body.clone(),
            cursor: AtomicU64::new(self.cursor.load(Ordering::Relaxed)),
        }
    }
}

impl Row {
    pub(crate) fn new(columns: Arc<[Column]>, body: Bytes) -> Row {
        Row {
            columns,
            body,
            cursor: AtomicU64::new(CURSOR_START),
        }
    }

    /// The columns of this row.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The number of columns.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// True for a row with no columns.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The byte range of value `idx` in the body, `None` for NULL (or a missing column, which the
    /// callers rule out first).
    fn range(&self, idx: usize) -> Option<Range<usize>> {
        let b = &self.body[..];
        let hint = self.cursor.load(Ordering::Relaxed);
        let (mut i, mut pos) = ((hint >> 32) as usize, (hint & 0xffff_ffff) as usize);
        if i > idx {
            (i, pos) = (0, CURSOR_START as usize);
        }
        loop {
            let len = b.get(pos..pos + 4)?;
            let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
            pos += 4;
            let value = usize::try_from(len).ok().map(|l| pos..pos + l);
            pos += value.as_ref().map_or(0, |r| r.len());
            if i == idx {
                // Body offsets fit in 32 bits: a DataRow is capped far below 4 GiB.
                if let Ok(next) = u32::try_from(pos) {
                    self.cursor.store(
                        ((idx as u64 + 1) << 32) | u64::from(next),
                        Ordering::Relaxed,
                    );
                }
                return value;
            }
            i += 1;
        }
    }

    /// The raw bytes of a value (`None` for NULL), in the column's format.
    pub fn raw<I: RowIndex>(&self, idx: I) -> Result<Option<&[u8]>, Error> {
        let i = self.find(&idx)?;
        Ok(self.range(i).and_then(|r| self.body.get(r)))
    }

    fn find<I: RowIndex>(&self, idx: &I) -> Result<usize, Error> {
        idx.index(&self.columns).ok_or_else(|| {
            Error::Conversion(format!(
                "no column {idx} in this row (columns: {})",
                self.columns
                    .iter()
                    .map(|c| c.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    /// Reads a column as `T`.
    ///
    /// # Errors
    /// When there is no such column, when the column's type cannot be read as `T` (an `int4` as
    /// a `String`), when a NULL is read into a type that is not an `Option`, or when the value is
    /// malformed. The message names the column and both types.
    pub fn try_get<'a, I, T>(&'a self, idx: I) -> Result<T, Error>
    where
        I: RowIndex,
        T: FromSql<'a>,
    {
        let i = self.find(&idx)?;
        let col = &self.columns[i];
        let declared = col.type_();
        // Domains read as their base type; errors still name the domain.
        let ty = declared.base();
        if !T::accepts(ty) {
            return Err(Error::Conversion(format!(
                "cannot read column \"{}\" of type {declared} as {}",
                col.name(),
                std::any::type_name::<T>()
            )));
        }
        let raw = self.range(i).and_then(|r| self.body.get(r));
        crate::types::decode(ty, col.format(), raw).map_err(|e| {
            Error::Conversion(format!(
                "cannot read column \"{}\" of type {declared} as {}: {e}",
                col.name(),
                std::any::type_name::<T>()
            ))
        })
    }

    /// Reads a column as `T`.
    ///
    /// # Panics
    /// On every error [`try_get`](Row::try_get) returns, with the same message — as
    /// tokio-postgres's and sqlx's `get` do. Use `try_get` where the column's type or presence
    /// is not known ahead.
    #[track_caller]
    pub fn get<'a, I, T>(&'a self, idx: I) -> T
    where
        I: RowIndex,
        T: FromSql<'a>,
    {
        match self.try_get(idx) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }

    /// All values as dynamic [`Value`]s, in column order.
    pub fn values(&self) -> Result<Vec<Value>, Error> {
        (0..self.len()).map(|i| self.try_get(i)).collect()
    }

    /// This row as a name → value map (psqlpy's dict per row).
    ///
    /// A value that cannot be decoded (malformed bytes) becomes [`Value::Unknown`] carrying its raw
    /// bytes rather than failing the whole row.
    pub fn to_map(&self) -> RowMap {
        let values = (0..self.len())
            .map(|i| {
                self.try_get::<_, Value>(i).unwrap_or_else(|_| {
                    let col = &self.columns[i];
                    let raw = self.range(i).and_then(|r| self.body.get(r));
                    Value::Unknown {
                        ty: col.type_().clone(),
                        format: col.format(),
                        raw: raw.unwrap_or_default().to_vec(),
                    }
                })
            })
            .collect();
        RowMap {
            columns: self.columns.clone(),
            values,
        }
    }
}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.name(), self.try_get::<_, Value>(i).ok())),
            )
            .finish()
    }
}

/// One row as an ordered map from column name to [`Value`]: what psqlpy's `result()` gives per
/// row.
#[derive(Clone, PartialEq)]
pub struct RowMap {
    columns: Arc<[Column]>,
    values: Vec<Value>,
}

impl RowMap {
    /// The value of the column named `name` (exact match first, then case-insensitive).
    pub fn get(&self, name: &str) -> Option<&Value> {
        name.index(&self.columns).and_then(|i| self.values.get(i))
    }

    /// The number of columns.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True for a row with no columns.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The column names, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|c| c.name())
    }

    /// The values, in column order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// `(name, value)` pairs, in column order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.keys().zip(self.values.iter())
    }

    /// Consumes the map into its values, in column order.
    pub fn into_values(self) -> Vec<Value> {
        self.values
    }
}

impl std::ops::Index<&str> for RowMap {
    type Output = Value;

    /// # Panics
    /// When there is no column of that name.
    #[track_caller]
    fn index(&self, name: &str) -> &Value {
        match self.get(name) {
            Some(v) => v,
            None => panic!("no column \"{name}\" in this row"),
        }
    }
}

impl fmt::Debug for RowMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// The rows of one result. Most statements return no row or one; keeping those inline means a
/// cached single-row query allocates nothing for its result.
#[derive(Clone, Default)]
pub(crate) enum Rows {
    #[default]
    Zero,
    One(Row),
    Many(Vec<Row>),
}

impl Rows {
    pub(crate) fn push(&mut self, row: Row) {
        *self = match std::mem::take(self) {
            Rows::Zero => Rows::One(row),
            Rows::One(first) => Rows::Many(vec![first, row]),
            Rows::Many(mut v) => {
                v.push(row);
                Rows::Many(v)
            }
        };
    }

    pub(crate) fn as_slice(&self) -> &[Row] {
        match self {
            Rows::Zero => &[],
            Rows::One(r) => std::slice::from_ref(r),
            Rows::Many(v) => v,
        }
    }

    fn into_vec(self) -> Vec<Row> {
        match self {
            Rows::Zero => Vec::new(),
            Rows::One(r) => vec![r],
            Rows::Many(v) => v,
        }
    }
}

/// The outcome of one statement: its rows (if any) and its command tag.
#[derive(Clone, Default)]
pub struct QueryResult {
    columns: Option<Arc<[Column]>>,
    rows: Rows,
    /// The CommandComplete tag, a slice of its frame (checked UTF-8 by the decoder), so keeping it
    /// costs no allocation.
    tag: Option<Bytes>,
}

impl QueryResult {
    pub(crate) fn new(columns: Option<Arc<[Column]>>, rows: Rows, tag: Option<Bytes>) -> Self {
        QueryResult { columns, rows, tag }
    }

    /// The shared column list, if the statement returns rows.
    pub(crate) fn shared_columns(&self) -> Option<Arc<[Column]>> {
        self.columns.clone()
    }

    /// The same result with the columns replaced (by ones with looked-up types), in every row
    /// too. `columns` must describe the same values.
    pub(crate) fn with_columns(mut self, columns: Arc<[Column]>) -> QueryResult {
        match &mut self.rows {
            Rows::Zero => {}
            Rows::One(r) => r.columns = columns.clone(),
            Rows::Many(v) => v.iter_mut().for_each(|r| r.columns = columns.clone()),
        }
        self.columns = Some(columns);
        self
    }

    /// The rows.
    pub fn rows(&self) -> &[Row] {
        self.rows.as_slice()
    }

    /// Consumes the result into its rows.
    pub fn into_rows(self) -> Vec<Row> {
        self.rows.into_vec()
    }

    /// Consumes the result into its only row: `None` unless there is exactly one.
    pub fn into_single_row(self) -> Option<Row> {
        match self.rows {
            Rows::One(r) => Some(r),
            _ => None,
        }
    }

    /// The columns (empty for a statement that returns no rows).
    pub fn columns(&self) -> &[Column] {
        self.columns.as_deref().unwrap_or(&[])
    }

    /// One name → value map per row, in column order — psqlpy's `QueryResult.result()`.
    pub fn result(&self) -> Vec<RowMap> {
        self.rows().iter().map(Row::to_map).collect()
    }

    /// The number of rows the statement returned or affected, from its command tag
    /// (`INSERT 0 5` → 5). 0 for commands without a count.
    pub fn rows_affected(&self) -> u64 {
        self.command_tag()
            .map(crate::protocol::backend::rows_affected)
            .unwrap_or(0)
    }

    /// The command tag, e.g. `SELECT 3` or `CREATE TABLE`; `None` for an empty query.
    pub fn command_tag(&self) -> Option<&str> {
        self.tag
            .as_deref()
            .and_then(|t| std::str::from_utf8(t).ok())
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.rows().len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows().is_empty()
    }
}

impl fmt::Debug for QueryResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueryResult")
            .field("command_tag", &self.command_tag())
            .field("rows", &self.rows())
            .finish()
    }
}

impl<'a> IntoIterator for &'a QueryResult {
    type Item = &'a Row;
    type IntoIter = std::slice::Iter<'a, Row>;

    fn into_iter(self) -> Self::IntoIter {
        self.rows().iter()
    }
}

impl IntoIterator for QueryResult {
    type Item = Row;
    type IntoIter = std::vec::IntoIter<Row>;

    fn into_iter(self) -> Self::IntoIter {
        self.rows.into_vec().into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Row {
        // Four values: "ab", NULL, "", "xyz".
        let body: &[u8] = b"\0\x04\0\0\0\x02ab\xff\xff\xff\xff\0\0\0\0\0\0\0\x03xyz";
        let cols: Arc<[Column]> = (0..4)
            .map(|i| Column::new(&format!("c{i}"), Type::TEXT, Format::Text, 0, 0))
            .collect();
        Row::new(cols, Bytes::from_static(body))
    }

    #[test]
    fn values_in_any_order_and_repeated() {
        let r = row();
        let expect = |i: usize| match i {
            0 => Some(&b"ab"[..]),
            1 => None,
            2 => Some(&b""[..]),
            _ => Some(&b"xyz"[..]),
        };
        for order in [
            [0, 1, 2, 3],
            [3, 2, 1, 0],
            [2, 2, 0, 3],
            [1, 3, 3, 1],
            [3, 0, 3, 0],
        ] {
            let r = r.clone();
            for i in order {
                assert_eq!(r.raw(i).unwrap(), expect(i), "order {order:?}, column {i}");
            }
        }
        assert!(r.raw(4).is_err());
        assert_eq!(r.get::<_, &str>("c3"), "xyz");
        assert_eq!(r.get::<_, Option<&str>>("c1"), None);
    }
}
