//! Small checked helpers shared by the per-type codecs.
//!
//! Everything here treats its input as hostile: reads are bounds-checked and return errors,
//! never panic.

use bytes::{BufMut, BytesMut};

use super::{BoxError, IsNull, ToSql, Type};

/// A boxed error from a message.
pub(crate) fn err(msg: impl Into<String>) -> BoxError {
    msg.into().into()
}

/// The error returned when `to_sql` is called for a type that `accepts` rejects.
pub(crate) fn cannot_encode<T: ?Sized>(ty: &Type) -> BoxError {
    err(format!(
        "cannot encode Rust type {} as PostgreSQL type {ty}",
        std::any::type_name::<T>()
    ))
}

/// The error returned when `from_sql` is called for a type that `accepts` rejects.
pub(crate) fn cannot_decode<T: ?Sized>(ty: &Type) -> BoxError {
    err(format!(
        "cannot decode PostgreSQL type {ty} as Rust type {}",
        std::any::type_name::<T>()
    ))
}

/// Exactly `N` bytes, or "invalid int4 value: expected 4 bytes, got 3".
pub(crate) fn fixed<const N: usize>(what: &str, raw: &[u8]) -> Result<[u8; N], BoxError> {
    <[u8; N]>::try_from(raw).map_err(|_| {
        err(format!(
            "invalid {what} value: expected {N} bytes, got {}",
            raw.len()
        ))
    })
}

/// The raw bytes as UTF-8 text.
pub(crate) fn utf8<'a>(what: &str, raw: &'a [u8]) -> Result<&'a str, BoxError> {
    std::str::from_utf8(raw).map_err(|e| err(format!("invalid {what} value: not UTF-8 ({e})")))
}

/// Shortens `s` for use in an error message (hostile input can be long).
pub(crate) fn snippet(s: &str) -> String {
    const MAX: usize = 64;
    if s.len() <= MAX {
        return format!("{s:?}");
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}...", s.get(..end).unwrap_or(""))
}

/// Parses a text value with `FromStr`, with an error naming the type and the text.
pub(crate) fn parse_text<T: std::str::FromStr>(what: &str, raw: &[u8]) -> Result<T, BoxError> {
    let s = utf8(what, raw)?;
    s.parse()
        .map_err(|_| err(format!("invalid {what} value: {}", snippet(s))))
}

/// A bounds-checked reader over a binary value.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(what: &'static str, buf: &'a [u8]) -> Self {
        Reader { buf, what }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], BoxError> {
        if n > self.buf.len() {
            return Err(err(format!(
                "invalid {} value: needs {n} more bytes, only {} left",
                self.what,
                self.buf.len()
            )));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], BoxError> {
        let b = self.take(N)?;
        <[u8; N]>::try_from(b).map_err(|_| err("internal: short read"))
    }

    pub(crate) fn i16(&mut self) -> Result<i16, BoxError> {
        self.array().map(i16::from_be_bytes)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, BoxError> {
        self.array().map(u16::from_be_bytes)
    }

    pub(crate) fn i32(&mut self) -> Result<i32, BoxError> {
        self.array().map(i32::from_be_bytes)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, BoxError> {
        self.array().map(u32::from_be_bytes)
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(&self) -> Result<(), BoxError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(err(format!(
                "invalid {} value: {} trailing bytes",
                self.what,
                self.buf.len()
            )))
        }
    }
}

/// Writes a length-prefixed value (`-1` for NULL), as array elements are framed. Returns
/// whether the value was NULL.
pub(crate) fn write_nullable<T: ToSql + ?Sized>(
    value: &T,
    ty: &Type,
    out: &mut BytesMut,
) -> Result<bool, BoxError> {
    let start = out.len();
    out.put_i32(0);
    let result = value.to_sql(ty, out);
    let len = match result {
        Ok(IsNull::No) => {
            let written = out.len() - start - 4;
            match i32::try_from(written) {
                Ok(l) => l,
                Err(_) => {
                    out.truncate(start);
                    return Err(err(format!(
                        "value of {written} bytes is too long for PostgreSQL (max {} bytes)",
                        i32::MAX
                    )));
                }
            }
        }
        Ok(IsNull::Yes) => {
            out.truncate(start + 4);
            -1
        }
        Err(e) => {
            out.truncate(start);
            return Err(e);
        }
    };
    if let Some(slot) = out.get_mut(start..start + 4) {
        slot.copy_from_slice(&len.to_be_bytes());
    }
    Ok(len == -1)
}

/// Checks a length about to be written into a binary value.
pub(crate) fn len_i32(what: &str, n: usize) -> Result<i32, BoxError> {
    i32::try_from(n).map_err(|_| err(format!("{what} too long: {n} exceeds {}", i32::MAX)))
}
