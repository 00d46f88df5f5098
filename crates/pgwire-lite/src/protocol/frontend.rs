//! Frontend (client → server) message encoders.
//!
//! Each function appends one whole message to a caller-owned `BytesMut`: tag, a length
//! placeholder, the body, then the length back-patched after `i32::try_from`. On any error the
//! buffer is truncated back to where the message started, so a half-written message can never
//! reach the socket. A whole request is built in one buffer and sent with one write.

use bytes::{BufMut, BytesMut};

use crate::error::{BoxError, Error};
use crate::types::IsNull;

/// The most parameters one Bind can carry: the count is an Int16 on the wire.
pub const MAX_PARAMS: usize = u16::MAX as usize;

/// Protocol version 3.0, as sent in the StartupMessage.
pub const PROTOCOL_3_0: i32 = 196_608;

/// The request code of a CancelRequest (1234 << 16 | 5678).
const CANCEL_REQUEST_CODE: i32 = 80_877_102;

/// The request code of an SSLRequest (1234 << 16 | 5679).
const SSL_REQUEST_CODE: i32 = 80_877_103;

/// Writes `tag`, then the body produced by `body`, with the length field back-patched.
#[inline]
fn write_message<F>(buf: &mut BytesMut, tag: Option<u8>, body: F) -> Result<(), Error>
where
    F: FnOnce(&mut BytesMut) -> Result<(), Error>,
{
    let start = buf.len();
    if let Some(tag) = tag {
        buf.put_u8(tag);
    }
    let len_at = buf.len();
    buf.put_i32(0);
    if let Err(e) = body(buf) {
        buf.truncate(start);
        return Err(e);
    }
    // The length counts itself but not the tag.
    match length_field(buf.len() - len_at).and_then(server_accepts) {
        Ok(len) => {
            buf[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
            Ok(())
        }
        Err(e) => {
            buf.truncate(start);
            Err(e)
        }
    }
}

/// The largest length field PostgreSQL accepts in a message (`PQ_LARGE_MESSAGE_LIMIT`,
/// `MaxAllocSize - 1` in its pqcomm.h): the server refuses anything longer by closing the
/// connection, so the client refuses it first, with an error that says why.
pub const MAX_SERVER_MESSAGE_LEN: usize = 0x3fff_fffe;

fn server_accepts(len: i32) -> Result<i32, Error> {
    match usize::try_from(len) {
        Ok(n) if n <= MAX_SERVER_MESSAGE_LEN => Ok(len),
        _ => Err(Error::Conversion(format!(
            "message of {len} bytes is over PostgreSQL's limit of {MAX_SERVER_MESSAGE_LEN} bytes \
             (1 GiB) per message"
        ))),
    }
}

/// A message length as the Int32 the protocol carries. Anything over `i32::MAX` would wrap (a
/// 4 GiB + 5 body would claim 5 bytes) and let the rest of the payload be read as forged
/// messages (RUSTSEC-2024-0363, pgx GHSA-mrww-27vc-gghv): an error, never a cast.
fn length_field(n: usize) -> Result<i32, Error> {
    i32::try_from(n)
        .map_err(|_| Error::Conversion(format!("message of {n} bytes is longer than 2 GiB")))
}

/// Appends a NUL-terminated string; embedded NULs would end it early, so they are refused.
#[inline]
fn put_cstr(buf: &mut BytesMut, s: &[u8], what: &str) -> Result<(), Error> {
    if s.contains(&0) {
        return Err(Error::Conversion(format!("{what} contains a NUL byte")));
    }
    buf.put_slice(s);
    buf.put_u8(0);
    Ok(())
}

/// StartupMessage: protocol 3.0 and `name`/`value` pairs (user, database, options, ...).
pub fn startup_message<'a, I>(params: I, buf: &mut BytesMut) -> Result<(), Error>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    write_message(buf, None, |buf| {
        buf.put_i32(PROTOCOL_3_0);
        for (name, value) in params {
            put_cstr(buf, name.as_bytes(), "a startup parameter name")?;
            put_cstr(buf, value.as_bytes(), name)?;
        }
        buf.put_u8(0);
        Ok(())
    })
}

/// PasswordMessage with a cleartext or MD5-hashed password.
pub fn password_message(password: &[u8], buf: &mut BytesMut) -> Result<(), Error> {
    write_message(buf, Some(b'p'), |buf| {
        put_cstr(buf, password, "the password")
    })
}

/// SASLInitialResponse: the chosen mechanism and the client-first-message.
pub fn sasl_initial_response(
    mechanism: &str,
    data: &[u8],
    buf: &mut BytesMut,
) -> Result<(), Error> {
    write_message(buf, Some(b'p'), |buf| {
        put_cstr(buf, mechanism.as_bytes(), "the SASL mechanism")?;
        let len = length_field(data.len())?;
        buf.put_i32(len);
        buf.put_slice(data);
        Ok(())
    })
}

/// SASLResponse: the client-final-message.
pub fn sasl_response(data: &[u8], buf: &mut BytesMut) -> Result<(), Error> {
    write_message(buf, Some(b'p'), |buf| {
        buf.put_slice(data);
        Ok(())
    })
}

/// Query (simple query protocol).
pub fn query(sql: &str, buf: &mut BytesMut) -> Result<(), Error> {
    write_message(buf, Some(b'Q'), |buf| {
        put_cstr(buf, sql.as_bytes(), "the query string")
    })
}

/// Parse: prepare `sql` as statement `name` ("" = unnamed) with declared parameter types
/// (0 = let the server infer).
pub fn parse<I>(name: &str, sql: &str, param_types: I, buf: &mut BytesMut) -> Result<(), Error>
where
    I: ExactSizeIterator<Item = u32>,
{
    write_message(buf, Some(b'P'), |buf| {
        put_cstr(buf, name.as_bytes(), "the statement name")?;
        put_cstr(buf, sql.as_bytes(), "the query string")?;
        let n = param_count(param_types.len())?;
        buf.put_u16(n);
        for oid in param_types {
            buf.put_u32(oid);
        }
        Ok(())
    })
}

fn param_count(n: usize) -> Result<u16, Error> {
    u16::try_from(n).map_err(|_| {
        Error::Conversion(format!(
            "{n} parameters given; the protocol allows at most {MAX_PARAMS}"
        ))
    })
}

/// Bind: all parameters in binary format, all results in binary format.
///
/// `encode(i, buf)` appends parameter `i`'s value and says whether it is NULL; the 4-byte length
/// in front of it is written here.
pub fn bind<F>(
    portal: &str,
    statement: &str,
    n_params: usize,
    mut encode: F,
    buf: &mut BytesMut,
) -> Result<(), Error>
where
    F: FnMut(usize, &mut BytesMut) -> Result<IsNull, Error>,
{
    write_message(buf, Some(b'B'), |buf| {
        put_cstr(buf, portal.as_bytes(), "the portal name")?;
        put_cstr(buf, statement.as_bytes(), "the statement name")?;
        let n = param_count(n_params)?;
        // One format code applies to every parameter: binary.
        if n > 0 {
            buf.put_u16(1);
            buf.put_u16(1);
        } else {
            buf.put_u16(0);
        }
        buf.put_u16(n);
        for i in 0..n_params {
            let len_at = buf.len();
            buf.put_i32(0);
            match encode(i, buf)? {
                IsNull::Yes => {
                    buf.truncate(len_at + 4);
                    buf[len_at..len_at + 4].copy_from_slice(&(-1i32).to_be_bytes());
                }
                IsNull::No => {
                    let n = buf.len() - len_at - 4;
                    let len = i32::try_from(n).map_err(|_| {
                        Error::Conversion(format!("parameter ${} is longer than 2 GiB", i + 1))
                    })?;
                    if n > MAX_SERVER_MESSAGE_LEN {
                        return Err(Error::Conversion(format!(
                            "parameter ${} is {n} bytes, over PostgreSQL's limit of \
                             {MAX_SERVER_MESSAGE_LEN} bytes (1 GiB) per message",
                            i + 1
                        )));
                    }
                    buf[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
                }
            }
        }
        // One result format code for all columns: binary.
        buf.put_u16(1);
        buf.put_u16(1);
        Ok(())
    })
}

/// Wraps a `ToSql` error with the parameter's position, for [`bind`]'s callback.
pub fn param_error(i: usize, e: BoxError) -> Error {
    Error::Conversion(format!("cannot encode parameter ${}: {e}", i + 1))
}

/// What Describe and Close name: a prepared statement.
pub const STATEMENT: u8 = b'S';
/// What Describe and Close name: a portal.
pub const PORTAL: u8 = b'P';

/// Describe a statement ([`STATEMENT`]) or a portal ([`PORTAL`]).
pub fn describe(kind: u8, name: &str, buf: &mut BytesMut) -> Result<(), Error> {
    write_message(buf, Some(b'D'), |buf| {
        buf.put_u8(kind);
        put_cstr(buf, name.as_bytes(), "the statement name")
    })
}

/// Execute a portal; `max_rows` 0 means all rows.
pub fn execute(portal: &str, max_rows: i32, buf: &mut BytesMut) -> Result<(), Error> {
    write_message(buf, Some(b'E'), |buf| {
        put_cstr(buf, portal.as_bytes(), "the portal name")?;
        buf.put_i32(max_rows);
        Ok(())
    })
}

/// Close a statement ([`STATEMENT`]) or a portal ([`PORTAL`]).
pub fn close(kind: u8, name: &str, buf: &mut BytesMut) -> Result<(), Error> {
    write_message(buf, Some(b'C'), |buf| {
        buf.put_u8(kind);
        put_cstr(buf, name.as_bytes(), "the statement name")
    })
}

/// CopyFail: aborts a COPY FROM STDIN the client cannot serve.
pub fn copy_fail(message: &str, buf: &mut BytesMut) -> Result<(), Error> {
    write_message(buf, Some(b'f'), |buf| {
        put_cstr(buf, message.as_bytes(), "the CopyFail message")
    })
}

/// CopyData: one chunk of COPY FROM STDIN data (any split; the server reassembles the stream).
pub fn copy_data(data: &[u8], buf: &mut BytesMut) -> Result<(), Error> {
    write_message(buf, Some(b'd'), |buf| {
        buf.put_slice(data);
        Ok(())
    })
}

/// CopyDone: the end of COPY FROM STDIN data.
pub fn copy_done(buf: &mut BytesMut) {
    buf.put_slice(&[b'c', 0, 0, 0, 4]);
}

/// Sync: ends an extended-query request; the server answers with ReadyForQuery.
pub fn sync(buf: &mut BytesMut) {
    buf.put_slice(&[b'S', 0, 0, 0, 4]);
}

/// Flush: asks the server to send what it has without ending the request.
pub fn flush(buf: &mut BytesMut) {
    buf.put_slice(&[b'H', 0, 0, 0, 4]);
}

/// Terminate: a polite goodbye before closing the socket.
pub fn terminate(buf: &mut BytesMut) {
    buf.put_slice(&[b'X', 0, 0, 0, 4]);
}

/// CancelRequest for the backend `process_id` with its secret key (4 to 256 bytes).
pub fn cancel_request(process_id: i32, secret_key: &[u8], buf: &mut BytesMut) -> Result<(), Error> {
    write_message(buf, None, |buf| {
        buf.put_i32(CANCEL_REQUEST_CODE);
        buf.put_i32(process_id);
        buf.put_slice(secret_key);
        Ok(())
    })
}

/// SSLRequest: asks the server to switch to TLS before the startup packet. The server answers
/// with one byte, `S` or `N`, outside any message framing.
pub fn ssl_request(buf: &mut BytesMut) -> Result<(), Error> {
    write_message(buf, None, |buf| {
        buf.put_i32(SSL_REQUEST_CODE);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_request_layout() {
        let mut buf = BytesMut::new();
        ssl_request(&mut buf).unwrap();
        assert_eq!(&buf[..], &[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
    }

    #[test]
    fn startup_layout() {
        let mut b = BytesMut::new();
        startup_message([("user", "u"), ("database", "d")], &mut b).unwrap();
        let expected: &[u8] = b"\0\0\0\x1b\0\x03\0\0user\0u\0database\0d\0\0";
        assert_eq!(&b[..], expected);
    }

    #[test]
    fn query_and_sync() {
        let mut b = BytesMut::new();
        query("SELECT 1", &mut b).unwrap();
        sync(&mut b);
        assert_eq!(&b[..], b"Q\0\0\0\x0dSELECT 1\0S\0\0\0\x04");
    }

    #[test]
    fn nul_in_query_is_refused_and_buffer_untouched() {
        let mut b = BytesMut::new();
        sync(&mut b);
        let err = query("SELECT 1\0; DROP TABLE x", &mut b).unwrap_err();
        assert!(err.to_string().contains("NUL"), "{err}");
        assert_eq!(&b[..], b"S\0\0\0\x04");
    }

    #[test]
    fn nul_in_startup_value_is_refused() {
        let mut b = BytesMut::new();
        let err = startup_message([("application_name", "a\0b")], &mut b).unwrap_err();
        assert!(err.to_string().contains("application_name"), "{err}");
        assert!(b.is_empty());
    }

    #[test]
    fn parse_layout() {
        let mut b = BytesMut::new();
        parse("s1", "SELECT $1", [23u32].into_iter(), &mut b).unwrap();
        assert_eq!(&b[..], b"P\0\0\0\x17s1\0SELECT $1\0\0\x01\0\0\0\x17");
    }

    #[test]
    fn bind_layout_with_null() {
        let mut b = BytesMut::new();
        bind(
            "",
            "s1",
            2,
            |i, buf| {
                if i == 0 {
                    buf.put_i32(7);
                    Ok(IsNull::No)
                } else {
                    Ok(IsNull::Yes)
                }
            },
            &mut b,
        )
        .unwrap();
        let expected: &[u8] =
            b"B\0\0\0\x1e\0s1\0\0\x01\0\x01\0\x02\0\0\0\x04\0\0\0\x07\xff\xff\xff\xff\0\x01\0\x01";
        assert_eq!(&b[..], expected);
    }

    #[test]
    fn too_many_params_is_an_error() {
        let mut b = BytesMut::new();
        let err = bind("", "", MAX_PARAMS + 1, |_, _| Ok(IsNull::Yes), &mut b).unwrap_err();
        assert!(err.to_string().contains("65535"), "{err}");
        assert!(b.is_empty());
        let err = parse("", "x", std::iter::repeat_n(0, MAX_PARAMS + 1), &mut b).unwrap_err();
        assert!(err.to_string().contains("at most"), "{err}");
    }

    #[test]
    fn encode_error_truncates_whole_message() {
        let mut b = BytesMut::new();
        sync(&mut b);
        let err = bind("", "", 1, |i, _| Err(param_error(i, "boom".into())), &mut b).unwrap_err();
        assert!(err.to_string().contains("$1"), "{err}");
        assert_eq!(&b[..], b"S\0\0\0\x04");
    }

    #[test]
    fn lengths_over_2_gib_are_refused_not_wrapped() {
        // The length path alone, so the test allocates nothing.
        assert_eq!(length_field(5).unwrap(), 5);
        assert_eq!(length_field(i32::MAX as usize).unwrap(), i32::MAX);
        assert!(length_field(i32::MAX as usize + 1).is_err());
        // 4 GiB + 5 must not become 5.
        let err = length_field((1usize << 32) + 5).unwrap_err();
        assert!(err.to_string().contains("2 GiB"), "{err}");
    }

    #[test]
    fn cancel_request_layout() {
        let mut b = BytesMut::new();
        cancel_request(42, &[1, 2, 3, 4], &mut b).unwrap();
        assert_eq!(
            &b[..],
            b"\0\0\0\x10\x04\xd2\x16\x2e\0\0\0\x2a\x01\x02\x03\x04"
        );
    }
}
