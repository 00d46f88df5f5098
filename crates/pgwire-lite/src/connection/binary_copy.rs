//! Typed rows over binary COPY, like tokio-postgres's `BinaryCopyInWriter` and
//! `BinaryCopyOutStream`: values are encoded and decoded with [`ToSql`] and [`FromSql`] for the
//! column types the caller names (binary COPY carries no types of its own).

use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_core::Stream;

use super::copy::{CopyInSink, CopyOutStream};
use crate::error::{Error, Result};
use crate::types::{FromSql, IsNull, ToSql, Type};

/// The binary COPY signature, then flags (0) and header-extension length (0).
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The signature alone (the first 11 bytes of [`HEADER`]).
const SIGNATURE_LEN: usize = 11;

/// Rows are queued until this much is waiting, then handed to the sink.
const FLUSH_AT: usize = 64 * 1024;

/// Writes typed rows into a `COPY ... FROM STDIN (FORMAT binary)`.
///
/// ```no_run
/// # async fn f(conn: &mut pgwire_lite::Connection) -> pgwire_lite::Result<()> {
/// use pgwire_lite::{BinaryCopyInWriter, Type};
/// let sink = conn.copy_in("COPY t (id, name) FROM STDIN (FORMAT binary)").await?;
/// let mut w = BinaryCopyInWriter::new(sink, &[Type::INT4, Type::TEXT]);
/// w.write(&[&1i32, &"one"]).await?;
/// assert_eq!(w.finish().await?, 1);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct BinaryCopyInWriter<'a> {
    sink: CopyInSink<'a>,
    types: Vec<Type>,
    buf: BytesMut,
}

impl<'a> BinaryCopyInWriter<'a> {
    /// A writer for rows whose columns have these types, in the COPY statement's column order.
    pub fn new(sink: CopyInSink<'a>, types: &[Type]) -> Self {
        let mut buf = BytesMut::with_capacity(FLUSH_AT);
        buf.put_slice(HEADER);
        BinaryCopyInWriter {
            sink,
            types: types.to_vec(),
            buf,
        }
    }

    /// Queues one row. A value that does not fit its column's type is refused before anything
    /// of the row is queued.
    pub async fn write(&mut self, values: &[&(dyn ToSql + Sync)]) -> Result<()> {
        if values.len() != self.types.len() {
            return Err(Error::Conversion(format!(
                "the COPY has {} columns but the row has {} values",
                self.types.len(),
                values.len()
            )));
        }
        let start = self.buf.len();
        if let Err(e) = self.encode_row(values) {
            self.buf.truncate(start);
            return Err(e);
        }
        if self.buf.len() >= FLUSH_AT {
            let chunk = self.buf.split().freeze();
            self.sink.send(chunk).await?;
        }
        Ok(())
    }

    fn encode_row(&mut self, values: &[&(dyn ToSql + Sync)]) -> Result<()> {
        let n = i16::try_from(values.len())
            .map_err(|_| Error::Conversion("more than 32767 columns in a COPY row".into()))?;
        self.buf.put_i16(n);
        for (i, (v, ty)) in values.iter().zip(&self.types).enumerate() {
            if !v.accepts(ty) {
                return Err(Error::Conversion(format!(
                    "cannot send COPY column {} of Rust type {} as PostgreSQL type {ty}",
                    i + 1,
                    v.type_name()
                )));
            }
            let len_at = self.buf.len();
            self.buf.put_i32(0);
            let encoded = v
                .to_sql(ty, &mut self.buf)
                .map_err(|e| Error::Conversion(format!("COPY column {}: {e}", i + 1)))?;
            let len = match encoded {
                IsNull::Yes => -1,
                IsNull::No => i32::try_from(self.buf.len() - len_at - 4).map_err(|_| {
                    Error::Conversion(format!("COPY column {} is over 2 GiB", i + 1))
                })?,
            };
            self.buf[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
        }
        Ok(())
    }

    /// Sends what is queued and the trailer, ends the COPY and returns the rows copied.
    pub async fn finish(mut self) -> Result<u64> {
        self.buf.put_i16(-1);
        let chunk = self.buf.split().freeze();
        self.sink.send(chunk).await?;
        self.sink.finish().await
    }

    /// Aborts the COPY with `reason` (see [`CopyInSink::abort`]).
    pub async fn abort(self, reason: &str) -> Result<()> {
        self.sink.abort(reason).await
    }
}

/// One row of a binary COPY OUT, its values read with [`FromSql`].
#[derive(Debug)]
pub struct BinaryCopyOutRow {
    types: Arc<[Type]>,
    data: Bytes,
    fields: Vec<Option<Range<usize>>>,
}

impl BinaryCopyOutRow {
    /// The number of values.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// The row has no values.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Reads value `idx` as `T`.
    pub fn try_get<'a, T: FromSql<'a>>(&'a self, idx: usize) -> Result<T> {
        let (Some(ty), Some(field)) = (self.types.get(idx), self.fields.get(idx)) else {
            return Err(Error::Conversion(format!(
                "COPY row has {} values, no value {idx}",
                self.fields.len()
            )));
        };
        if !T::accepts(ty) {
            return Err(Error::Conversion(format!(
                "cannot read COPY value {idx} of type {ty} as {}",
                std::any::type_name::<T>()
            )));
        }
        let r = match field {
            Some(range) => self.data.get(range.clone()).map(|raw| T::from_sql(ty, raw)),
            None => Some(T::from_sql_null(ty)),
        };
        match r {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(Error::Conversion(format!(
                "cannot read COPY value {idx} of type {ty} as {}: {e}",
                std::any::type_name::<T>()
            ))),
            None => Err(Error::Conversion(format!("COPY value {idx} out of range"))),
        }
    }
}

/// Reads typed rows from a `COPY ... TO STDOUT (FORMAT binary)`: a
/// [`Stream<Item = Result<BinaryCopyOutRow>>`](futures_core::Stream).
#[derive(Debug)]
pub struct BinaryCopyOutStream<'a> {
    inner: CopyOutStream<'a>,
    types: Arc<[Type]>,
    buf: BytesMut,
    header_read: bool,
    trailer_read: bool,
    /// The last item (the end, or an error) was returned.
    done: bool,
}

impl<'a> BinaryCopyOutStream<'a> {
    /// A reader for rows whose columns have these types.
    pub fn new(inner: CopyOutStream<'a>, types: &[Type]) -> Self {
        BinaryCopyOutStream {
            inner,
            types: types.into(),
            buf: BytesMut::new(),
            header_read: false,
            trailer_read: false,
            done: false,
        }
    }

    /// The next whole row in the buffer, if one is there.
    fn parse(&mut self) -> Result<Option<BinaryCopyOutRow>> {
        if !self.header_read {
            if self.buf.len() < HEADER.len() {
                return Ok(None);
            }
            if self.buf[..SIGNATURE_LEN] != HEADER[..SIGNATURE_LEN] {
                return Err(bad("the binary COPY signature is missing"));
            }
            let ext = u32::from_be_bytes([self.buf[15], self.buf[16], self.buf[17], self.buf[18]]);
            let skip = HEADER.len() + ext as usize;
            if self.buf.len() < skip {
                return Ok(None);
            }
            self.buf.advance(skip);
            self.header_read = true;
        }
        if self.trailer_read || self.buf.len() < 2 {
            return Ok(None);
        }
        let n = i16::from_be_bytes([self.buf[0], self.buf[1]]);
        if n == -1 {
            self.trailer_read = true;
            self.buf.advance(2);
            return Ok(None);
        }
        if usize::try_from(n).ok() != Some(self.types.len()) {
            return Err(bad(format!(
                "a row of {n} values; {} column types were given",
                self.types.len()
            )));
        }
        let mut at = 2;
        let mut fields = Vec::with_capacity(self.types.len());
        for _ in 0..self.types.len() {
            let Some(len) = self.buf.get(at..at + 4) else {
                return Ok(None);
            };
            let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
            at += 4;
            match usize::try_from(len) {
                Ok(len) => {
                    if self.buf.len() < at + len {
                        return Ok(None);
                    }
                    fields.push(Some(at..at + len));
                    at += len;
                }
                Err(_) if len == -1 => fields.push(None),
                Err(_) => return Err(bad(format!("a value of length {len}"))),
            }
        }
        Ok(Some(BinaryCopyOutRow {
            types: self.types.clone(),
            data: self.buf.split_to(at).freeze(),
            fields,
        }))
    }
}

fn bad(what: impl std::fmt::Display) -> Error {
    Error::Conversion(format!("malformed binary COPY data: {what}"))
}

impl Stream for BinaryCopyOutStream<'_> {
    type Item = Result<BinaryCopyOutRow>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let end = match this.parse() {
                Ok(Some(row)) => return Poll::Ready(Some(Ok(row))),
                Ok(None) => match ready!(Pin::new(&mut this.inner).poll_next(cx)) {
                    Some(Ok(chunk)) => {
                        this.buf.extend_from_slice(&chunk);
                        continue;
                    }
                    Some(Err(e)) => Some(Err(e)),
                    None if this.trailer_read && this.buf.is_empty() => None,
                    None => Some(Err(bad("the data ended without its trailer"))),
                },
                Err(e) => Some(Err(e)),
            };
            this.done = true;
            return Poll::Ready(end);
        }
    }
}
