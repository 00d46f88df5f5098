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
mod tests;
