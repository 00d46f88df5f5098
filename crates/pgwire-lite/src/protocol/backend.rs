//! Backend (server → client) messages: framing and decoding.
//!
//! Two steps, as in mini-redis: [`check_frame`] looks only at the 5-byte header and says whether a
//! whole frame is buffered (and whether its length is acceptable); [`decode`] parses one complete
//! frame into a [`BackendMessage`] that borrows from it. Nothing here panics or allocates because
//! a length field said so; every malformed input is [`Error::Protocol`] saying what was wrong.
//! Variable bodies (DataRow, RowDescription, ErrorResponse) are validated once at decode time and
//! then read through small iterators.

use std::ops::Range;

use crate::error::{DbError, Error};

/// Default cap on one message's length field: pgx's cap (about 1 GiB), which is also PostgreSQL's
/// own limit on a single field value (`MaxAllocSize`).
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 1 << 30;

/// libpq's rule (fe-protocol3.c, `VALID_LONG_MESSAGE_TYPE`): only RowDescription, DataRow,
/// CopyData, FunctionCallResponse, ErrorResponse, NoticeResponse and NotificationResponse may
/// be longer than 30,000 bytes; we add ParameterDescription and ParameterStatus, which a
/// legitimate server sends longer too. Anything else that long is a corrupt stream.
pub const MAX_SHORT_MESSAGE_LEN: usize = 30_000;

/// The cap on an Authentication message during startup: SASL payloads are a few hundred bytes;
/// a larger one is a hostile server (npgsql#1206).
pub const MAX_AUTH_MESSAGE_LEN: usize = 8 * 1024;

/// Protocol 3.2 allows cancel keys of up to 256 bytes (PostgreSQL 18 sends 32).
pub const MAX_CANCEL_KEY_LEN: usize = 256;

/// The size of a message header: the tag byte and the Int32 length.
pub const HEADER_LEN: usize = 5;

/// The tag bytes of the backend messages the connection dispatches on before decoding, named
/// as on the "Message Formats" page.
pub mod tag {
    /// NoticeResponse.
    pub const NOTICE_RESPONSE: u8 = b'N';
    /// ParameterStatus.
    pub const PARAMETER_STATUS: u8 = b'S';
    /// NotificationResponse.
    pub const NOTIFICATION_RESPONSE: u8 = b'A';
    /// CommandComplete.
    pub const COMMAND_COMPLETE: u8 = b'C';
    /// ErrorResponse.
    pub const ERROR_RESPONSE: u8 = b'E';
}

/// ReadyForQuery's transaction status bytes.
pub mod transaction_status {
    /// Not in a transaction block.
    pub const IDLE: u8 = b'I';
    /// In a transaction block.
    pub const IN_TRANSACTION: u8 = b'T';
    /// In a failed transaction block.
    pub const FAILED: u8 = b'E';
}

/// Whether a message with this tag is asynchronous: the server may send it at any time, between
/// or inside the responses to requests, so it is handled before any request sees it.
#[inline]
pub fn is_async(tag: u8) -> bool {
    matches!(
        tag,
        tag::NOTICE_RESPONSE | tag::PARAMETER_STATUS | tag::NOTIFICATION_RESPONSE
    )
}

/// libpq's long-message list, plus the two messages PostgreSQL itself can send longer than
/// 30,000 bytes: ParameterDescription (4 bytes per parameter, up to 65,535 parameters) and
/// ParameterStatus (a reported setting such as `search_path` has no length limit).
fn may_be_long(tag: u8) -> bool {
    matches!(
        tag,
        b'T' | b'D' | b'd' | b'V' | b'E' | b'N' | b'A' | b't' | b'S'
    )
}

/// Looks at the header at the start of `buf`.
///
/// Returns `Ok(Some(n))` when a whole frame of `n` bytes (header included) is buffered,
/// `Ok(None)` when more bytes are needed (never an error), and an error when the header itself is
/// invalid: a length below 4, a length over `max_len`, or a short-message type that claims more
/// than [`MAX_SHORT_MESSAGE_LEN`].
#[inline]
pub fn check_frame(buf: &[u8], max_len: usize) -> Result<Option<usize>, Error> {
    let Some(header) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let tag = header[0];
    let len = i32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    let len = match usize::try_from(len) {
        Ok(l) if l >= 4 => l,
        _ => {
            return Err(Error::protocol(format!(
                "message {} has an invalid length {len} (must be at least 4)",
                tag_name(tag)
            )));
        }
    };
    let cap = if may_be_long(tag) {
        max_len
    } else {
        max_len.min(MAX_SHORT_MESSAGE_LEN)
    };
    if len > cap {
        return Err(Error::protocol(format!(
            "message {} claims {len} bytes, over the limit of {cap}",
            tag_name(tag)
        )));
    }
    let total = len + 1;
    Ok(if buf.len() >= total {
        Some(total)
    } else {
        None
    })
}

/// A readable name for a message tag, for errors.
pub fn tag_name(tag: u8) -> String {
    let name = match tag {
        b'R' => "Authentication",
        b'K' => "BackendKeyData",
        b'2' => "BindComplete",
        b'3' => "CloseComplete",
        b'C' => "CommandComplete",
        b'd' => "CopyData",
        b'c' => "CopyDone",
        b'G' => "CopyInResponse",
        b'H' => "CopyOutResponse",
        b'W' => "CopyBothResponse",
        b'D' => "DataRow",
        b'I' => "EmptyQueryResponse",
        b'E' => "ErrorResponse",
        b'V' => "FunctionCallResponse",
        b'v' => "NegotiateProtocolVersion",
        b'n' => "NoData",
        b'N' => "NoticeResponse",
        b'A' => "NotificationResponse",
        b't' => "ParameterDescription",
        b'S' => "ParameterStatus",
        b'1' => "ParseComplete",
        b's' => "PortalSuspended",
        b'Z' => "ReadyForQuery",
        b'T' => "RowDescription",
        _ => return format!("with unknown tag 0x{tag:02x}"),
    };
    format!("{name} ('{}')", tag as char)
}

/// One decoded backend message, borrowing from its frame. Names follow the "Message Formats"
/// page of the PostgreSQL documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendMessage<'a> {
    /// Authentication succeeded.
    AuthenticationOk,
    /// Kerberos V5 is required (unsupported).
    AuthenticationKerberosV5,
    /// A cleartext password is required.
    AuthenticationCleartextPassword,
    /// An MD5-hashed password is required.
    AuthenticationMD5Password {
        /// The salt to hash with.
        salt: [u8; 4],
    },
    /// SCM credentials are required (unsupported).
    AuthenticationSCMCredential,
    /// GSSAPI is required (unsupported).
    AuthenticationGSS,
    /// GSSAPI or SSPI continuation data (unsupported).
    AuthenticationGSSContinue,
    /// SSPI is required (unsupported).
    AuthenticationSSPI,
    /// SASL is required; the server's mechanisms in its order of preference.
    AuthenticationSASL {
        /// The mechanism names.
        mechanisms: Vec<&'a str>,
    },
    /// A SASL challenge (SCRAM server-first-message).
    AuthenticationSASLContinue {
        /// The challenge.
        data: &'a [u8],
    },
    /// SASL outcome data (SCRAM server-final-message).
    AuthenticationSASLFinal {
        /// The outcome data.
        data: &'a [u8],
    },
    /// The backend's process id and cancel key.
    BackendKeyData {
        /// The backend process id.
        process_id: i32,
        /// The secret key (4 to 256 bytes).
        secret_key: &'a [u8],
    },
    /// Bind completed.
    BindComplete,
    /// Close completed.
    CloseComplete,
    /// A command completed.
    CommandComplete {
        /// The command tag, e.g. `INSERT 0 1`.
        tag: &'a str,
    },
    /// COPY data.
    CopyData {
        /// The data.
        data: &'a [u8],
    },
    /// COPY finished.
    CopyDone,
    /// The server is ready to receive COPY data.
    CopyInResponse,
    /// The server is about to send COPY data.
    CopyOutResponse,
    /// Streaming replication COPY.
    CopyBothResponse,
    /// One row.
    DataRow(DataRowBody<'a>),
    /// The query string was empty.
    EmptyQueryResponse,
    /// An error.
    ErrorResponse(ErrorFields<'a>),
    /// A function call result.
    FunctionCallResponse,
    /// The server does not support the requested minor version or some options.
    NegotiateProtocolVersion {
        /// The newest minor version the server supports.
        newest_minor: i32,
        /// Protocol options the server did not recognise.
        unrecognized: Vec<&'a str>,
    },
    /// The statement returns no rows.
    NoData,
    /// A notice (never an error).
    NoticeResponse(ErrorFields<'a>),
    /// A LISTEN/NOTIFY notification.
    NotificationResponse {
        /// The notifying backend's process id.
        process_id: i32,
        /// The channel name.
        channel: &'a str,
        /// The payload.
        payload: &'a str,
    },
    /// The parameter types of a prepared statement.
    ParameterDescription(ParameterDescriptionBody<'a>),
    /// A run-time parameter's value.
    ParameterStatus {
        /// The parameter name.
        name: &'a str,
        /// Its value.
        value: &'a str,
    },
    /// Parse completed.
    ParseComplete,
    /// Execute's row limit was reached.
    PortalSuspended,
    /// The server is ready for a new request.
    ReadyForQuery {
        /// `I` idle, `T` in a transaction, `E` in a failed transaction.
        status: u8,
    },
    /// The columns of the rows that follow.
    RowDescription(RowDescriptionBody<'a>),
}

/// A cursor over a message body that checks every read.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, pos: 0, what }
    }

    fn short(&self, need: usize) -> Error {
        Error::protocol(format!(
            "{} is truncated: needed {need} more bytes at offset {}, {} left",
            self.what,
            self.pos,
            self.remaining()
        ))
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.short(n))?;
        let s = self.buf.get(self.pos..end).ok_or_else(|| self.short(n))?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    fn i16(&mut self) -> Result<i16, Error> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32, Error> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u32(&mut self) -> Result<u32, Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A value length: -1 is NULL (`None`), anything else below 0 is an error.
    fn value_len(&mut self) -> Result<Option<usize>, Error> {
        let len = self.i32()?;
        match usize::try_from(len) {
            Ok(l) => Ok(Some(l)),
            Err(_) if len == -1 => Ok(None),
            Err(_) => Err(Error::protocol(format!(
                "{} has an invalid value length {len}",
                self.what
            ))),
        }
    }

    /// A count field: non-negative, and small enough that `min_each` bytes per item fit in what is
    /// left — checked before anything is allocated for the items.
    fn count(&mut self, min_each: usize) -> Result<usize, Error> {
        let n = self.i16()?;
        let n = usize::try_from(n)
            .map_err(|_| Error::protocol(format!("{} has a negative count {n}", self.what)))?;
        self.check_count(n, min_each)
    }

    /// A count the server writes as an unsigned 16-bit value although the documentation says
    /// Int16: ParameterDescription's, which reaches 65,535 (the Bind limit) and would read as -1.
    fn unsigned_count(&mut self, min_each: usize) -> Result<usize, Error> {
        let n = self.i16()?;
        self.check_count(usize::from(u16::from_be_bytes(n.to_be_bytes())), min_each)
    }

    fn check_count(&self, n: usize, min_each: usize) -> Result<usize, Error> {
        if n.saturating_mul(min_each) > self.remaining() {
            return Err(Error::protocol(format!(
                "{} claims {n} items but only {} bytes follow",
                self.what,
                self.remaining()
            )));
        }
        Ok(n)
    }

    fn cstr_bytes(&mut self) -> Result<&'a [u8], Error> {
        let rest = &self.buf[self.pos..];
        let nul = rest.iter().position(|&b| b == 0).ok_or_else(|| {
            Error::protocol(format!(
                "{} has a string without its NUL terminator",
                self.what
            ))
        })?;
        self.pos += nul + 1;
        Ok(&rest[..nul])
    }

    fn cstr(&mut self) -> Result<&'a str, Error> {
        let b = self.cstr_bytes()?;
        std::str::from_utf8(b)
            .map_err(|_| Error::protocol(format!("{} has a string that is not UTF-8", self.what)))
    }

    fn rest(&mut self) -> &'a [u8] {
        let r = &self.buf[self.pos..];
        self.pos = self.buf.len();
        r
    }

    fn finish(&self) -> Result<(), Error> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(Error::protocol(format!(
                "{} has {} unexpected bytes after its contents",
                self.what,
                self.remaining()
            )))
        }
    }
}

/// Decodes one complete frame (header included), as delimited by [`check_frame`].
pub fn decode(frame: &[u8]) -> Result<BackendMessage<'_>, Error> {
    let Some((&tag, rest)) = frame.split_first() else {
        return Err(Error::protocol("empty frame"));
    };
    let body = rest
        .get(4..)
        .ok_or_else(|| Error::protocol("frame shorter than its header"))?;
    decode_body(tag, body)
}

/// Decodes a message body (without the 5-byte header) of type `tag`.
pub fn decode_body(tag: u8, body: &[u8]) -> Result<BackendMessage<'_>, Error> {
    use BackendMessage as M;
    let exact = |n: usize, m: BackendMessage<'static>| {
        if body.len() == n {
            Ok(m)
        } else {
            Err(Error::protocol(format!(
                "message {} has a {}-byte body, expected {n}",
                tag_name(tag),
                body.len()
            )))
        }
    };
    match tag {
        b'1' => exact(0, M::ParseComplete),
        b'2' => exact(0, M::BindComplete),
        b'3' => exact(0, M::CloseComplete),
        b'n' => exact(0, M::NoData),
        b's' => exact(0, M::PortalSuspended),
        b'I' => exact(0, M::EmptyQueryResponse),
        b'c' => exact(0, M::CopyDone),
        b'Z' => {
            let status = match body {
                [s @ (b'I' | b'T' | b'E')] => *s,
                [s] => {
                    return Err(Error::protocol(format!(
                        "ReadyForQuery has unknown transaction status 0x{s:02x}"
                    )));
                }
                _ => return exact(1, M::ReadyForQuery { status: 0 }),
            };
            Ok(M::ReadyForQuery { status })
        }
        b'R' => decode_auth(body),
        b'K' => {
            let mut r = Reader::new(body, "BackendKeyData");
            let process_id = r.i32()?;
            let secret_key = r.rest();
            if !(4..=MAX_CANCEL_KEY_LEN).contains(&secret_key.len()) {
                return Err(Error::protocol(format!(
                    "BackendKeyData has a {}-byte cancel key (4 to {MAX_CANCEL_KEY_LEN} allowed)",
                    secret_key.len()
                )));
            }
            Ok(M::BackendKeyData {
                process_id,
                secret_key,
            })
        }
        b'C' => {
            let mut r = Reader::new(body, "CommandComplete");
            let tag = r.cstr()?;
            r.finish()?;
            Ok(M::CommandComplete { tag })
        }
        b'd' => Ok(M::CopyData { data: body }),
        b'G' | b'H' | b'W' => {
            let what = match tag {
                b'G' => "CopyInResponse",
                b'H' => "CopyOutResponse",
                _ => "CopyBothResponse",
            };
            let mut r = Reader::new(body, what);
            r.u8()?;
            let n = r.count(2)?;
            r.take(n * 2)?;
            r.finish()?;
            Ok(match tag {
                b'G' => M::CopyInResponse,
                b'H' => M::CopyOutResponse,
                _ => M::CopyBothResponse,
            })
        }
        b'D' => DataRowBody::parse(body).map(M::DataRow),
        b'E' => ErrorFields::parse(body, "ErrorResponse").map(M::ErrorResponse),
        b'N' => ErrorFields::parse(body, "NoticeResponse").map(M::NoticeResponse),
        b'V' => {
            let mut r = Reader::new(body, "FunctionCallResponse");
            if let Some(len) = r.value_len()? {
                r.take(len)?;
            }
            r.finish()?;
            Ok(M::FunctionCallResponse)
        }
        b'v' => {
            let mut r = Reader::new(body, "NegotiateProtocolVersion");
            let newest_minor = r.i32()?;
            let n = r.i32()?;
            let n = usize::try_from(n)
                .ok()
                .filter(|&n| n <= r.remaining())
                .ok_or_else(|| {
                    Error::protocol(format!("NegotiateProtocolVersion has a bad count {n}"))
                })?;
            let mut unrecognized = Vec::with_capacity(n);
            for _ in 0..n {
                unrecognized.push(r.cstr()?);
            }
            r.finish()?;
            Ok(M::NegotiateProtocolVersion {
                newest_minor,
                unrecognized,
            })
        }
        b'A' => {
            let mut r = Reader::new(body, "NotificationResponse");
            let process_id = r.i32()?;
            let channel = r.cstr()?;
            let payload = r.cstr()?;
            r.finish()?;
            Ok(M::NotificationResponse {
                process_id,
                channel,
                payload,
            })
        }
        b't' => ParameterDescriptionBody::parse(body).map(M::ParameterDescription),
        b'S' => {
            let mut r = Reader::new(body, "ParameterStatus");
            let name = r.cstr()?;
            let value = r.cstr()?;
            r.finish()?;
            Ok(M::ParameterStatus { name, value })
        }
        b'T' => RowDescriptionBody::parse(body).map(M::RowDescription),
        _ => Err(Error::protocol(format!(
            "unexpected message {} ({} bytes)",
            tag_name(tag),
            body.len()
        ))),
    }
}

fn decode_auth(body: &[u8]) -> Result<BackendMessage<'_>, Error> {
    use BackendMessage as M;
    let mut r = Reader::new(body, "Authentication");
    let kind = r.i32()?;
    let msg = match kind {
        0 => M::AuthenticationOk,
        2 => M::AuthenticationKerberosV5,
        3 => M::AuthenticationCleartextPassword,
        5 => {
            let s = r.take(4)?;
            M::AuthenticationMD5Password {
                salt: [s[0], s[1], s[2], s[3]],
            }
        }
        6 => M::AuthenticationSCMCredential,
        7 => M::AuthenticationGSS,
        8 => {
            r.rest();
            M::AuthenticationGSSContinue
        }
        9 => M::AuthenticationSSPI,
        10 => {
            let mut mechanisms = Vec::new();
            loop {
                let m = r.cstr()?;
                if m.is_empty() {
                    break;
                }
                mechanisms.push(m);
            }
            M::AuthenticationSASL { mechanisms }
        }
        11 => M::AuthenticationSASLContinue { data: r.rest() },
        12 => M::AuthenticationSASLFinal { data: r.rest() },
        other => {
            return Err(Error::protocol(format!(
                "unknown authentication request type {other}"
            )));
        }
    };
    r.finish()?;
    Ok(msg)
}

/// A DataRow body whose value lengths have all been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRowBody<'a> {
    count: usize,
    /// The bytes after the column count.
    values: &'a [u8],
}

impl<'a> DataRowBody<'a> {
    fn parse(body: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body, "DataRow");
        let count = r.count(4)?;
        let values = &body[2..];
        for _ in 0..count {
            if let Some(len) = r.value_len()? {
                r.take(len)?;
            }
        }
        r.finish()?;
        Ok(DataRowBody { count, values })
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True for a row of zero columns.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The values: `None` for NULL, else the byte range within the DataRow *body* (the frame
    /// minus its 5-byte header), so callers can slice a shared buffer instead of copying.
    pub fn ranges(&self) -> DataRowRanges<'a> {
        DataRowRanges {
            buf: self.values,
            pos: 0,
            left: self.count,
        }
    }
}

/// Iterator over a checked DataRow's value ranges. See [`DataRowBody::ranges`].
#[derive(Debug, Clone)]
pub struct DataRowRanges<'a> {
    buf: &'a [u8],
    pos: usize,
    left: usize,
}

impl Iterator for DataRowRanges<'_> {
    type Item = Option<Range<usize>>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // Lengths were validated in DataRowBody::parse, but stay defensive: a short buffer ends
        // the iteration instead of panicking.
        let len = self.buf.get(self.pos..self.pos + 4)?;
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        self.pos += 4;
        // Negative is NULL (parse allowed only -1).
        let Ok(len) = usize::try_from(len) else {
            return Some(None);
        };
        // +2: the ranges are relative to the body, which starts with the Int16 count.
        let start = self.pos + 2;
        self.pos += len;
        Some(Some(start..start + len))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for DataRowRanges<'_> {}

/// One column of a RowDescription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDescription<'a> {
    /// The column name.
    pub name: &'a str,
    /// The OID of the source table, or 0.
    pub table_oid: u32,
    /// The attribute number in the source table, or 0.
    pub column_id: i16,
    /// The data type's OID.
    pub type_oid: u32,
    /// The data type's size (negative for variable width).
    pub type_size: i16,
    /// The type modifier.
    pub type_modifier: i32,
    /// The format code: 0 text, 1 binary.
    pub format: i16,
}

/// A RowDescription body, checked once at decode time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowDescriptionBody<'a> {
    count: usize,
    fields: &'a [u8],
}

/// The fixed part of a RowDescription field after its name.
const FIELD_FIXED_LEN: usize = 18;

impl<'a> RowDescriptionBody<'a> {
    fn parse(body: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body, "RowDescription");
        let count = r.count(FIELD_FIXED_LEN + 1)?;
        let fields = &body[2..];
        for _ in 0..count {
            r.cstr()?;
            r.take(FIELD_FIXED_LEN)?;
        }
        r.finish()?;
        Ok(RowDescriptionBody { count, fields })
    }

    /// The number of columns.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when there are no columns.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The columns, in order.
    pub fn fields(&self) -> Fields<'a> {
        Fields {
            r: Reader::new(self.fields, "RowDescription"),
            left: self.count,
        }
    }
}

/// Iterator over the columns of a checked RowDescription.
pub struct Fields<'a> {
    r: Reader<'a>,
    left: usize,
}

impl<'a> Iterator for Fields<'a> {
    type Item = FieldDescription<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let r = &mut self.r;
        // Validated at decode time; a failure here just ends the iteration.
        Some(FieldDescription {
            name: r.cstr().ok()?,
            table_oid: r.u32().ok()?,
            column_id: r.i16().ok()?,
            type_oid: r.u32().ok()?,
            type_size: r.i16().ok()?,
            type_modifier: r.i32().ok()?,
            format: r.i16().ok()?,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Fields<'_> {}

/// A ParameterDescription body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterDescriptionBody<'a> {
    oids: &'a [u8],
}

impl<'a> ParameterDescriptionBody<'a> {
    fn parse(body: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body, "ParameterDescription");
        let n = r.unsigned_count(4)?;
        let oids = r.take(n * 4)?;
        r.finish()?;
        Ok(ParameterDescriptionBody { oids })
    }

    /// The number of parameters.
    pub fn len(&self) -> usize {
        self.oids.len() / 4
    }

    /// True when the statement has no parameters.
    pub fn is_empty(&self) -> bool {
        self.oids.is_empty()
    }

    /// The parameter type OIDs.
    pub fn oids(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        self.oids
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }
}

/// The fields of an ErrorResponse or NoticeResponse, checked at decode time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorFields<'a> {
    buf: &'a [u8],
}

impl<'a> ErrorFields<'a> {
    fn parse(body: &'a [u8], what: &'static str) -> Result<Self, Error> {
        let mut r = Reader::new(body, what);
        loop {
            if r.u8()? == 0 {
                break;
            }
            // Values are not required to be UTF-8 here: before client_encoding takes effect
            // (startup) the server may use its own encoding; they are read lossily.
            r.cstr_bytes()?;
        }
        r.finish()?;
        Ok(ErrorFields { buf: body })
    }

    /// The `(field type, value)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &'a [u8])> + 'a {
        let mut r = Reader::new(self.buf, "ErrorResponse");
        std::iter::from_fn(move || {
            let code = r.u8().ok().filter(|&c| c != 0)?;
            let value = r.cstr_bytes().ok()?;
            Some((code, value))
        })
    }

    /// Builds a [`DbError`] from the fields. Missing mandatory fields become empty strings.
    pub fn to_db_error(&self) -> DbError {
        let mut e = DbError::default();
        for (code, value) in self.iter() {
            let s = String::from_utf8_lossy(value).into_owned();
            let num = || s.parse::<u32>().ok();
            match code {
                b'S' => e.severity = s,
                b'V' => e.severity_nonlocalized = Some(s),
                b'C' => e.code = s,
                b'M' => e.message = s,
                b'D' => e.detail = Some(s),
                b'H' => e.hint = Some(s),
                b'P' => e.position = num(),
                b'p' => e.internal_position = num(),
                b'q' => e.internal_query = Some(s),
                b'W' => e.where_ = Some(s),
                b's' => e.schema = Some(s),
                b't' => e.table = Some(s),
                b'c' => e.column = Some(s),
                b'd' => e.datatype = Some(s),
                b'n' => e.constraint = Some(s),
                b'F' => e.file = Some(s),
                b'L' => e.line = num(),
                b'R' => e.routine = Some(s),
                // Unknown field types must be ignored, as the protocol documentation says.
                _ => {}
            }
        }
        e
    }
}

/// The number of rows a command affected, from its CommandComplete tag (`INSERT 0 5` → 5,
/// `SELECT 3` → 3, `CREATE TABLE` → 0).
pub fn rows_affected(tag: &str) -> u64 {
    tag.rsplit_once(' ')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use BackendMessage as M;

    fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&i32::try_from(body.len() + 4).unwrap().to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn dec(tag: u8, body: &[u8]) -> Result<M<'static>, Error> {
        let f: &'static [u8] = Box::leak(frame(tag, body).into_boxed_slice());
        assert_eq!(
            check_frame(f, DEFAULT_MAX_MESSAGE_LEN).unwrap(),
            Some(f.len())
        );
        decode(f)
    }

    fn err(tag: u8, body: &[u8]) -> String {
        match dec(tag, body) {
            Err(Error::Protocol(m)) => m,
            other => panic!("expected a protocol error, got {other:?}"),
        }
    }

    #[test]
    fn check_frame_needs_whole_frame() {
        let f = frame(b'Z', b"I");
        for cut in 0..f.len() {
            assert_eq!(check_frame(&f[..cut], 1 << 20).unwrap(), None, "cut {cut}");
        }
        assert_eq!(check_frame(&f, 1 << 20).unwrap(), Some(6));
    }

    #[test]
    fn check_frame_rejects_bad_lengths() {
        let e = check_frame(b"Z\0\0\0\x03", 1 << 20).unwrap_err();
        assert!(e.to_string().contains("invalid length 3"), "{e}");
        let e = check_frame(b"Z\xff\xff\xff\xff", 1 << 20).unwrap_err();
        assert!(e.to_string().contains("invalid length -1"), "{e}");
        // A short-message type may not claim more than libpq allows, even when the cap is larger.
        let e = check_frame(b"Z\0\x01\0\0", 1 << 30).unwrap_err();
        assert!(e.to_string().contains("over the limit of 30000"), "{e}");
        // A DataRow may be long, up to the configured cap.
        assert_eq!(check_frame(b"D\0\x01\0\0", 1 << 30).unwrap(), None);
        let e = check_frame(b"D\x7f\xff\xff\xff", 1 << 30).unwrap_err();
        assert!(e.to_string().contains("over the limit"), "{e}");
    }

    #[test]
    fn simple_messages() {
        assert_eq!(dec(b'1', b"").unwrap(), M::ParseComplete);
        assert_eq!(dec(b'2', b"").unwrap(), M::BindComplete);
        assert_eq!(dec(b'3', b"").unwrap(), M::CloseComplete);
        assert_eq!(dec(b'n', b"").unwrap(), M::NoData);
        assert_eq!(dec(b's', b"").unwrap(), M::PortalSuspended);
        assert_eq!(dec(b'I', b"").unwrap(), M::EmptyQueryResponse);
        assert_eq!(dec(b'c', b"").unwrap(), M::CopyDone);
        assert_eq!(dec(b'Z', b"T").unwrap(), M::ReadyForQuery { status: b'T' });
        assert!(err(b'1', b"x").contains("expected 0"));
        assert!(err(b'Z', b"").contains("expected 1"));
        assert!(err(b'Z', b"X").contains("unknown transaction status"));
    }

    #[test]
    fn authentication_messages() {
        assert_eq!(dec(b'R', &[0, 0, 0, 0]).unwrap(), M::AuthenticationOk);
        assert_eq!(
            dec(b'R', &[0, 0, 0, 3]).unwrap(),
            M::AuthenticationCleartextPassword
        );
        assert_eq!(
            dec(b'R', &[0, 0, 0, 5, 9, 8, 7, 6]).unwrap(),
            M::AuthenticationMD5Password { salt: [9, 8, 7, 6] }
        );
        assert_eq!(
            dec(b'R', b"\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0").unwrap(),
            M::AuthenticationSASL {
                mechanisms: vec!["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]
            }
        );
        assert_eq!(
            dec(b'R', b"\0\0\0\x0br=abc").unwrap(),
            M::AuthenticationSASLContinue { data: b"r=abc" }
        );
        assert_eq!(
            dec(b'R', b"\0\0\0\x0cv=xyz").unwrap(),
            M::AuthenticationSASLFinal { data: b"v=xyz" }
        );
        for (k, m) in [
            (2u8, M::AuthenticationKerberosV5),
            (6, M::AuthenticationSCMCredential),
            (7, M::AuthenticationGSS),
            (9, M::AuthenticationSSPI),
        ] {
            assert_eq!(dec(b'R', &[0, 0, 0, k]).unwrap(), m);
        }
        assert!(err(b'R', &[0, 0, 0, 5, 1]).contains("truncated"));
        assert!(err(b'R', &[0, 0, 0, 0, 1]).contains("unexpected bytes"));
        assert!(err(b'R', &[0, 0, 0, 42]).contains("unknown authentication request type 42"));
        assert!(err(b'R', b"\0\0\0\x0aSCRAM").contains("NUL"));
    }

    #[test]
    fn backend_key_data_any_length() {
        let mut body = vec![0, 0, 0, 7];
        body.extend_from_slice(&[1; 32]);
        match dec(b'K', &body).unwrap() {
            M::BackendKeyData {
                process_id,
                secret_key,
            } => {
                assert_eq!(process_id, 7);
                assert_eq!(secret_key.len(), 32);
            }
            m => panic!("{m:?}"),
        }
        assert!(err(b'K', &[0, 0, 0, 7, 1, 2, 3]).contains("cancel key"));
        let mut long = vec![0, 0, 0, 7];
        long.extend_from_slice(&[1; 257]);
        assert!(err(b'K', &long).contains("cancel key"));
    }

    #[test]
    fn command_complete_and_rows_affected() {
        assert_eq!(
            dec(b'C', b"INSERT 0 5\0").unwrap(),
            M::CommandComplete { tag: "INSERT 0 5" }
        );
        assert_eq!(rows_affected("INSERT 0 5"), 5);
        assert_eq!(rows_affected("UPDATE 12"), 12);
        assert_eq!(rows_affected("SELECT 3"), 3);
        assert_eq!(rows_affected("CREATE TABLE"), 0);
        assert_eq!(rows_affected("BEGIN"), 0);
        assert!(err(b'C', b"INSERT").contains("NUL"));
    }

    #[test]
    fn data_row() {
        let body = b"\0\x03\0\0\0\x02ab\xff\xff\xff\xff\0\0\0\0";
        let M::DataRow(row) = dec(b'D', body).unwrap() else {
            panic!()
        };
        assert_eq!(row.len(), 3);
        let ranges: Vec<_> = row.ranges().collect();
        assert_eq!(ranges, vec![Some(6..8), None, Some(16..16)]);
        assert_eq!(&body[6..8], b"ab");
    }

    #[test]
    fn parameter_description_counts_up_to_65535() {
        let mut body = vec![0xff, 0xff];
        body.extend(std::iter::repeat_n([0u8, 0, 0, 23], 65_535).flatten());
        let M::ParameterDescription(p) = dec(b't', &body).unwrap() else {
            panic!()
        };
        assert_eq!(p.len(), 65_535);
        // Its frame is over 30,000 bytes, and allowed to be.
        let f = frame(b't', &body);
        assert_eq!(
            check_frame(&f, DEFAULT_MAX_MESSAGE_LEN).unwrap(),
            Some(f.len())
        );
        let f = frame(b'S', &[b'x'; 40_000]);
        assert_eq!(
            check_frame(&f, DEFAULT_MAX_MESSAGE_LEN).unwrap(),
            Some(f.len())
        );
        // Other short messages are still capped.
        let f = frame(b'K', &[0; 40_000]);
        assert!(check_frame(&f, DEFAULT_MAX_MESSAGE_LEN).is_err());
    }

    #[test]
    fn data_row_hostile() {
        // A count far larger than the bytes present: rejected before allocating.
        assert!(err(b'D', b"\x7f\xff").contains("claims 32767 items"));
        assert!(err(b'D', b"\xff\xff").contains("negative count"));
        // A value length pointing past the end.
        assert!(err(b'D', b"\0\x01\0\0\0\x09ab").contains("truncated"));
        // The last value checked too.
        assert!(err(b'D', b"\0\x02\0\0\0\0\0\0\0\x05").contains("truncated"));
        assert!(err(b'D', b"\0\x01\xff\xff\xff\xfe").contains("invalid value length -2"));
        assert!(err(b'D', b"\0\x01\0\0\0\0x").contains("unexpected bytes"));
    }

    fn field(name: &str, oid: u32, format: i16) -> Vec<u8> {
        let mut v = name.as_bytes().to_vec();
        v.push(0);
        v.extend_from_slice(&1234u32.to_be_bytes());
        v.extend_from_slice(&2i16.to_be_bytes());
        v.extend_from_slice(&oid.to_be_bytes());
        v.extend_from_slice(&4i16.to_be_bytes());
        v.extend_from_slice(&(-1i32).to_be_bytes());
        v.extend_from_slice(&format.to_be_bytes());
        v
    }

    #[test]
    fn row_description() {
        let mut body = vec![0, 2];
        body.extend(field("id", 23, 1));
        body.extend(field("name", 25, 0));
        let M::RowDescription(rd) = dec(b'T', &body).unwrap() else {
            panic!()
        };
        let f: Vec<_> = rd.fields().collect();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].name, "id");
        assert_eq!(f[0].type_oid, 23);
        assert_eq!(f[0].table_oid, 1234);
        assert_eq!(f[1].name, "name");
        assert_eq!(f[1].format, 0);
        body.pop();
        assert!(err(b'T', &body).contains("truncated"));
        assert!(err(b'T', b"\0\x05ab\0").contains("claims 5 items"));
    }

    #[test]
    fn parameter_description() {
        let M::ParameterDescription(p) = dec(b't', b"\0\x02\0\0\0\x17\0\0\0\x19").unwrap() else {
            panic!()
        };
        assert_eq!(p.oids().collect::<Vec<_>>(), vec![23, 25]);
        assert!(err(b't', b"\0\x02\0\0\0\x17").contains("claims 2 items"));
    }

    #[test]
    fn error_response_all_fields() {
        let body = b"SERROR\0VERROR\0C42P01\0Mno table\0Ddetail\0Hhint\0P12\0p3\0qiq\0Wwhere\0sschem\0ttab\0ccol\0ddt\0ncon\0Ffile.c\0L99\0Rroutine\0Zunknown\0\0";
        let M::ErrorResponse(f) = dec(b'E', body).unwrap() else {
            panic!()
        };
        let e = f.to_db_error();
        assert_eq!(e.code(), "42P01");
        assert_eq!(e.severity(), "ERROR");
        assert_eq!(e.message, "no table");
        assert_eq!(e.detail.as_deref(), Some("detail"));
        assert_eq!(e.hint.as_deref(), Some("hint"));
        assert_eq!(e.position, Some(12));
        assert_eq!(e.internal_position, Some(3));
        assert_eq!(e.internal_query.as_deref(), Some("iq"));
        assert_eq!(e.where_.as_deref(), Some("where"));
        assert_eq!(e.schema.as_deref(), Some("schem"));
        assert_eq!(e.table.as_deref(), Some("tab"));
        assert_eq!(e.column.as_deref(), Some("col"));
        assert_eq!(e.datatype.as_deref(), Some("dt"));
        assert_eq!(e.constraint.as_deref(), Some("con"));
        assert_eq!(e.file.as_deref(), Some("file.c"));
        assert_eq!(e.line, Some(99));
        assert_eq!(e.routine.as_deref(), Some("routine"));
        assert!(err(b'E', b"SERROR\0").contains("truncated"));
        assert!(err(b'E', b"SERROR").contains("NUL"));
        // Non-UTF-8 field values are read lossily, not rejected.
        let M::NoticeResponse(n) = dec(b'N', b"Mb\xffd\0\0").unwrap() else {
            panic!()
        };
        assert_eq!(n.to_db_error().message, "b\u{fffd}d");
    }

    #[test]
    fn misc_messages() {
        assert_eq!(
            dec(b'S', b"client_encoding\0UTF8\0").unwrap(),
            M::ParameterStatus {
                name: "client_encoding",
                value: "UTF8"
            }
        );
        assert_eq!(
            dec(b'A', b"\0\0\0\x01chan\0hi\0").unwrap(),
            M::NotificationResponse {
                process_id: 1,
                channel: "chan",
                payload: "hi"
            }
        );
        assert_eq!(
            dec(b'v', b"\0\0\0\0\0\0\0\x01_pq_.x\0").unwrap(),
            M::NegotiateProtocolVersion {
                newest_minor: 0,
                unrecognized: vec!["_pq_.x"]
            }
        );
        assert!(err(b'v', b"\0\0\0\0\x7f\0\0\0").contains("bad count"));
        assert_eq!(dec(b'G', b"\0\0\x01\0\0").unwrap(), M::CopyInResponse);
        assert_eq!(dec(b'H', b"\x01\0\0").unwrap(), M::CopyOutResponse);
        assert_eq!(dec(b'd', b"xyz").unwrap(), M::CopyData { data: b"xyz" });
        assert_eq!(dec(b'V', b"\0\0\0\x02ab").unwrap(), M::FunctionCallResponse);
        assert!(err(b'V', b"\0\0\0\x09ab").contains("truncated"));
        assert!(err(b'q', b"").contains("unknown tag 0x71"));
        assert!(err(b'S', b"a\xff\0b\0").contains("not UTF-8"));
    }

    #[test]
    fn garbage_never_panics() {
        // Every tag with every short body; a cheap, deterministic sweep (the fuzz target goes
        // further).
        let bodies: [&[u8]; 8] = [
            b"",
            b"\0",
            b"\xff",
            b"\0\0",
            b"\xff\xff\xff\xff",
            b"\0\x01\0\0\0\x01",
            b"\x7f\xff\x7f\xff\x7f\xff",
            b"\0\0\0\x0a\0",
        ];
        for tag in 0..=255u8 {
            for body in bodies {
                let _ = decode_body(tag, body);
            }
        }
    }
}
